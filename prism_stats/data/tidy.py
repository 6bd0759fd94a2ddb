"""Tidy tables of the PRISM release: :class:`PrismData` and :func:`load_prism`.

The contract (ARCHITECTURE.md, "PrismData") is four pandas tables:

- ``participants``: one row per survey participant (survey-only ones included);
- ``conversations``: one row per conversation;
- ``ratings``: one row per scored response (utterance);
- ``choice_sets``: one row per opening-turn interaction (the 2-4 LLMs shown, their
  scores and the chosen one),

plus ``exclusions`` (what lenient loading left out, by reason), ``source`` (folder,
files, SHA-256 of each) and ``data_hash``. Categorical columns use the vocabularies of
:mod:`prism_stats.vocab` as their category lists, in vocabulary order, so codes are
stable across subsets and datasets; "Prefer not to say" is its own level. (The
categoricals are not flagged ``ordered``: "Prefer not to say" sits at the end of every
list and must not compare as "older" or "more educated".)

The tables are built column-wise from the validated records (one list comprehension
per column, then vectorised pandas), so the full release loads, validates and tidies in
a few seconds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prism_stats import _io, vocab

from . import schema
from .io import PrismDataNotFound, download_from_hub, how_to_obtain
from .issues import ExclusionReport, PrismValidationError, ValidationReport
from .summary import Summary, describe
from .validate import CheckedRelease, check_release, read_release

__all__ = ["CHOICE_SLOTS", "PrismData", "load_prism"]

#: Column suffixes of the (up to four) LLMs shown at an opening turn.
CHOICE_SLOTS: tuple[str, ...] = ("a", "b", "c", "d")
#: Environment variable naming a default release folder for ``load_prism()``.
DATA_ENV = "PRISM_DATA"

_SHORT_NAME = {m.long_name: m.short_name for m in vocab.LLMS}


def _cat(values: Iterable[Any], categories: Iterable[str]) -> pd.Categorical:
    return pd.Categorical(list(values), categories=list(categories))


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _str(values: list[Any]) -> pd.Series:
    return pd.Series(values, dtype="str")


@dataclass
class PrismData:
    """The PRISM release as tidy tables.

    Attributes
    ----------
    participants, conversations, ratings, choice_sets
        The tidy tables (see ARCHITECTURE.md and :func:`load_prism`).
    exclusions
        Rows left out in lenient mode, counted by file and reason (empty after a strict
        load, except for derived units such as incomplete choice sets).
    source
        ``{"folder", "files" (role -> path relative to the folder), "sha256" (role ->
        hex digest of the decompressed content), "hub" (repository id or None)}``.
    data_hash
        SHA-256 over the per-file hashes (identifies the input, not a subset).
    metadata
        The optional text-instance flags (language, PII, moderation) or ``None``.
    report
        The :class:`ValidationReport` (warnings included) of the load.
    selection
        The subsetting steps applied since loading (e.g. ``("balanced_only",)``).
    """

    participants: pd.DataFrame
    conversations: pd.DataFrame
    ratings: pd.DataFrame
    choice_sets: pd.DataFrame
    exclusions: ExclusionReport
    source: dict[str, Any]
    data_hash: str
    metadata: pd.DataFrame | None = None
    report: ValidationReport | None = field(default=None, repr=False)
    selection: tuple[str, ...] = ()

    # -- convenience ---------------------------------------------------------------------

    def opening(self) -> pd.DataFrame:
        """Ratings of the opening turn (turn 0), where 2-4 different LLMs answer."""
        return self.ratings[self.ratings["turn"] == 0].reset_index(drop=True)

    def subset(
        self, participants: Iterable[str] | pd.Series | np.ndarray, label: str = "subset"
    ) -> PrismData:
        """The data of some participants only (all tables filtered consistently).

        Parameters
        ----------
        participants
            Participant ids, or a boolean mask aligned with ``self.participants``.
        label
            Recorded in ``selection``.
        """
        mask = np.asarray(participants)
        if mask.dtype == bool:
            if len(mask) != len(self.participants):
                raise ValueError(
                    f"boolean mask has {len(mask)} entries but there are {len(self.participants)} participants"
                )
            ids = set(self.participants.loc[mask, "participant"].tolist())
        else:
            ids = {str(p) for p in participants}
            unknown = ids - set(self.participants["participant"].tolist())
            if unknown:
                raise ValueError(f"unknown participant id(s): {sorted(unknown)[:5]}")
        return self._filter(lambda df: df["participant"].isin(ids), label)

    def balanced_only(self) -> PrismData:
        """The balanced subset: balanced conversations and their participants.

        Keeps participants flagged ``balanced`` and conversations, ratings and choice
        sets flagged ``balanced`` (the release's ``included_in_balanced_subset``).
        """
        return self._filter(lambda df: df["balanced"].to_numpy(dtype=bool), "balanced_only")

    def residents(self, country: str) -> PrismData:
        """Participants resident in *country* (ISO3 code, or ``"uk"``/``"us"``) and their data."""
        code = vocab.COUNTRY_ISO3.get(country.lower(), country.upper()) if country else country
        if code not in vocab.COUNTRY_BY_ISO3:
            raise ValueError(
                f"unknown country {country!r}: use an ISO3 code of prism_stats.vocab.COUNTRIES "
                f"(e.g. 'GBR', 'USA') or 'uk'/'us'"
            )
        ids = set(
            self.participants.loc[
                self.participants["reside_country"] == code, "participant"
            ].tolist()
        )
        return self._filter(lambda df: df["participant"].isin(ids), f"residents({code})")

    def _filter(self, keep: Any, label: str) -> PrismData:
        def f(df: pd.DataFrame | None) -> pd.DataFrame | None:
            if df is None:
                return None
            return df[keep(df)].reset_index(drop=True)

        meta = self.metadata
        if meta is not None:
            ids = set(f(self.participants)["participant"].tolist())  # type: ignore[index]
            meta = meta[meta["participant"].isin(ids)].reset_index(drop=True)
        return replace(
            self,
            participants=f(self.participants),
            conversations=f(self.conversations),
            ratings=f(self.ratings),
            choice_sets=f(self.choice_sets),
            metadata=meta,
            selection=self.selection + (label,),
        )

    def describe(self) -> Summary:
        """The descriptive table of the original study (see :func:`prism_stats.data.describe`)."""
        return describe(self)

    def __repr__(self) -> str:
        sel = f", selection={list(self.selection)}" if self.selection else ""
        return (
            f"PrismData(participants={len(self.participants):,}, conversations={len(self.conversations):,}, "
            f"ratings={len(self.ratings):,}, choice_sets={len(self.choice_sets):,}, "
            f"excluded={self.exclusions.total():,}, data_hash={self.data_hash[:12]}{sel})"
        )


# --- table builders ---------------------------------------------------------------------------


def _kept(checked: CheckedRelease, role: str) -> tuple[list[dict[str, Any]], np.ndarray]:
    rf = checked.raw[role]
    idx = np.flatnonzero(checked.keep[role])
    return [rf.records[i] for i in idx], idx


def build_participants(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``participants`` table from validated survey records."""
    col = lambda key: [r[key] for r in recs]
    sub = lambda key, inner: [r[key][inner] for r in recs]
    gender = col("gender")
    eth_cat = sub("ethnicity", "categorised")
    loc = lambda key: sub("location", key)
    data: dict[str, Any] = {
        "participant": _str(col("user_id")),
        "survey_only": np.asarray(col("survey_only"), dtype=bool),
        "n_conversations": np.asarray(col("num_completed_conversations"), dtype=np.int64),
        "age": _cat((vocab.AGE_FROM_RELEASE[a] for a in col("age")), vocab.AGE_BANDS),
        "gender": _cat(gender, vocab.GENDERS),
        "sex": _cat((g if g in vocab.CENSUS_SEXES else None for g in gender), vocab.CENSUS_SEXES),
        "ethnicity_categorised": _cat(eth_cat, vocab.ETHNICITY_CATEGORISED),
        "ethnicity_simplified": _cat(sub("ethnicity", "simplified"), vocab.ETHNICITY_SIMPLIFIED),
        "ethnicity": _cat(
            (vocab.CENSUS_ETHNICITY_FROM_CATEGORISED.get(e, vocab.PREFER_NOT) for e in eth_cat),
            vocab.ETHNICITY_GROUPS,
        ),
        "religion_categorised": _cat(sub("religion", "categorised"), vocab.RELIGION_CATEGORISED),
        "religion_simplified": _cat(sub("religion", "simplified"), vocab.RELIGION_SIMPLIFIED),
        "education": _cat(col("education"), vocab.EDUCATION),
        "employment": _cat(col("employment_status"), vocab.EMPLOYMENT),
        "marital": _cat(col("marital_status"), vocab.MARITAL),
        "english": _cat(col("english_proficiency"), vocab.ENGLISH),
        "lm_familiarity": _cat(col("lm_familiarity"), vocab.LM_FAMILIARITY),
        "lm_direct_use": _cat(col("lm_direct_use"), vocab.YES_NO_UNSURE),
        "lm_indirect_use": _cat(col("lm_indirect_use"), vocab.YES_NO_UNSURE),
        "lm_frequency_use": _cat(col("lm_frequency_use"), vocab.LM_FREQUENCY),
        "birth_country": _cat(loc("birth_countryISO"), vocab.COUNTRY_CODES),
        "reside_country": _cat(loc("reside_countryISO"), vocab.COUNTRY_CODES),
        "birth_region": _cat(loc("birth_region"), vocab.REGIONS),
        "birth_subregion": _cat(loc("birth_subregion"), vocab.SUBREGIONS),
        "reside_region": _cat(loc("reside_region"), vocab.REGIONS),
        "reside_subregion": _cat(loc("reside_subregion"), vocab.SUBREGIONS),
        "special_region": _cat(loc("special_region"), vocab.SPECIAL_REGIONS),
        "study_locale": _str(col("study_locale")),
        "study_id": _str(col("study_id")),
        "in_uk_rep": np.asarray(col("included_in_UK_REP"), dtype=bool),
        "in_us_rep": np.asarray(col("included_in_US_REP"), dtype=bool),
        "balanced": np.asarray(col("included_in_balanced_subset"), dtype=bool),
    }
    for key in vocab.STATED_PREF_KEYS:
        if key != "other_text":
            data[f"pref_{key}"] = np.asarray(sub("stated_prefs", key), dtype=float)
    for key in vocab.LM_USECASE_KEYS:
        if key != "other_text":
            data[f"usecase_{key}"] = pd.array(
                [None if v is None or _is_nan(v) else bool(v) for v in sub("lm_usecases", key)],
                dtype="boolean",
            )
    data["self_description"] = _str(col("self_description"))
    data["system_string"] = _str(col("system_string"))
    return pd.DataFrame(data)


def build_conversations(recs: list[dict[str, Any]], chosen_llm: list[str | None]) -> pd.DataFrame:
    """The ``conversations`` table from validated conversation records."""
    col = lambda key: [r[key] for r in recs]
    data: dict[str, Any] = {
        "conversation": _str(col("conversation_id")),
        "participant": _str(col("user_id")),
        "conversation_type": _cat(col("conversation_type"), vocab.CONVERSATION_TYPES),
        "balanced": np.asarray(col("included_in_balanced_subset"), dtype=bool),
        "n_turns": np.asarray(col("conversation_turns"), dtype=np.int64),
        "opening_prompt": _str(col("opening_prompt")),
        "open_feedback": _str(col("open_feedback")),
    }
    for prefix, key in (("perf", "performance_attributes"), ("choice", "choice_attributes")):
        for attr in vocab.ATTRIBUTE_KEYS:
            data[f"{prefix}_{attr}"] = np.asarray(
                [np.nan if (v := r[key][attr]) is None else v for r in recs], dtype=float
            )
    data["chosen_llm"] = _cat(chosen_llm, vocab.LLM_SHORT_NAMES)
    data["duration_s"] = np.asarray(col("timing_duration_s"), dtype=float)
    data["generated_datetime"] = pd.to_datetime(
        pd.Series(col("generated_datetime"), dtype=object), format="ISO8601", errors="coerce"
    )
    return pd.DataFrame(data)


def build_ratings(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``ratings`` table from validated utterance records."""
    col = lambda key: [r[key] for r in recs]
    return pd.DataFrame(
        {
            "utterance": _str(col("utterance_id")),
            "interaction": _str(col("interaction_id")),
            "conversation": _str(col("conversation_id")),
            "participant": _str(col("user_id")),
            "turn": np.asarray(col("turn"), dtype=np.int64),
            "within_turn": np.asarray(col("within_turn_id"), dtype=np.int64),
            "llm": _cat((_SHORT_NAME[m] for m in col("model_name")), vocab.LLM_SHORT_NAMES),
            "provider": _cat(col("model_provider"), vocab.PROVIDERS),
            "score": np.asarray(col("score"), dtype=np.int64),
            "chosen": np.asarray(col("if_chosen"), dtype=bool),
            "conversation_type": _cat(col("conversation_type"), vocab.CONVERSATION_TYPES),
            "balanced": np.asarray(col("included_in_balanced_subset"), dtype=bool),
            "prompt": _str(col("user_prompt")),
            "response": _str(col("model_response")),
        }
    )


def build_choice_sets(
    ratings: pd.DataFrame, expected_shown: pd.Series, exclusions: ExclusionReport
) -> pd.DataFrame:
    """One row per opening interaction: the LLMs shown (by ``within_turn_id``), scores, choice.

    Parameters
    ----------
    ratings
        The ``ratings`` table.
    expected_shown
        Responses at turn 0 per conversation id, according to ``conversation_history``;
        an interaction with fewer rated responses (some utterances excluded in lenient
        mode) is dropped and counted in *exclusions* under ``choice_sets``.
    exclusions
        Receives the dropped interactions.
    """
    op = ratings[ratings["turn"] == 0]
    codes, interactions = pd.factorize(op["interaction"], sort=False)
    order = np.lexsort((op["within_turn"].to_numpy(), codes))
    op = op.iloc[order]
    codes = codes[order]
    n = len(interactions)
    slot = np.zeros(len(op), dtype=np.int64)
    if len(op):
        starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
        slot = np.arange(len(op)) - np.repeat(starts, np.diff(np.r_[starts, len(op)]))
    n_shown = np.bincount(codes, minlength=n)
    first = op.drop_duplicates("interaction")  # aligned with `interactions` (sorted by code)
    max_slots = len(CHOICE_SLOTS)
    llm = np.full((n, max_slots), None, dtype=object)
    score = np.full((n, max_slots), np.nan)
    fits = slot < max_slots
    llm[codes[fits], slot[fits]] = op["llm"].astype(object).to_numpy()[fits]
    score[codes[fits], slot[fits]] = op["score"].to_numpy(dtype=float)[fits]
    chosen = op[op["chosen"].to_numpy()].drop_duplicates("interaction")
    chosen_llm = pd.Series(
        chosen["llm"].astype(object).to_numpy(), index=chosen["interaction"].to_numpy()
    )
    n_chosen = np.bincount(codes[op["chosen"].to_numpy()], minlength=n)
    data: dict[str, Any] = {
        "interaction": _str(first["interaction"].tolist()),
        "conversation": _str(first["conversation"].tolist()),
        "participant": _str(first["participant"].tolist()),
        "conversation_type": pd.Categorical(first["conversation_type"]),
        "balanced": first["balanced"].to_numpy(dtype=bool),
        "n_shown": n_shown.astype(np.int64),
    }
    for j, s in enumerate(CHOICE_SLOTS):
        data[f"llm_{s}"] = _cat(llm[:, j], vocab.LLM_SHORT_NAMES)
    for j, s in enumerate(CHOICE_SLOTS):
        data[f"score_{s}"] = score[:, j]
    data["chosen_llm"] = _cat(
        chosen_llm.reindex(first["interaction"].to_numpy()).tolist(), vocab.LLM_SHORT_NAMES
    )
    table = pd.DataFrame(data)
    expected = table["conversation"].map(expected_shown).to_numpy()
    complete = (n_shown == expected) & (n_chosen == 1)
    table_name = "choice_sets"
    exclusions.rows[table_name] = len(expected_shown)
    # Opening interactions whose every response was excluded never reach `op`.
    present = set(table["conversation"].tolist())
    for conv in expected_shown.index:
        if conv not in present:
            exclusions.add(table_name, "all opening responses excluded", conv)
    for inter in table.loc[~complete, "interaction"].tolist():
        exclusions.add(table_name, "some opening responses excluded", inter)
    return table[complete].reset_index(drop=True)


def build_metadata(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """The optional text-instance flags, one row per text."""
    col = lambda key: [r.get(key) for r in recs]
    mod = [r.get("moderation_flag") for r in recs]
    return pd.DataFrame(
        {
            "text_source": _cat(col("column_id"), schema.METADATA_COLUMNS),
            "participant": _str(col("user_id")),
            "conversation": _str(col("conversation_id")),
            "interaction": _str(col("interaction_id")),
            "utterance": _str(col("utterance_id")),
            "pii_flag": np.asarray(col("pii_flag"), dtype=bool),
            "pii_manual_flag": np.asarray(
                [np.nan if v is None else v for v in col("pii_manual_flag")], dtype=float
            ),
            "language": _str(col("language_flag")),
            "english": np.asarray(col("en_flag"), dtype=bool),
            "moderation_flagged": pd.array(
                [
                    m.get("flagged")
                    if isinstance(m, dict) and isinstance(m.get("flagged"), bool)
                    else None
                    for m in mod
                ],
                dtype="boolean",
            ),
        }
    )


def tidy(
    checked: CheckedRelease, folder: str | os.PathLike[str], hub: str | None = None
) -> PrismData:
    """Build :class:`PrismData` from a checked release (only the kept records are used)."""
    exclusions = checked.report.exclusions
    survey, _ = _kept(checked, "survey")
    convs, conv_idx = _kept(checked, "conversations")
    utts, _ = _kept(checked, "utterances")
    hist = checked.history
    opening = hist[hist["turn"] == 0]
    chosen_rows = opening[opening["chosen"].to_numpy(dtype=bool)].drop_duplicates("conv")
    chosen = dict(zip(chosen_rows["conv"].tolist(), chosen_rows["model"].tolist(), strict=True))
    chosen_llm = [_SHORT_NAME.get(chosen.get(k)) for k in conv_idx.tolist()]
    participants = build_participants(survey)
    conversations = build_conversations(convs, chosen_llm)
    ratings = build_ratings(utts)
    n_open = opening.groupby("conv").size().reindex(conv_idx, fill_value=0)
    expected_shown = pd.Series(
        n_open.to_numpy(dtype=np.int64), index=conversations["conversation"].tolist()
    )
    choice_sets = build_choice_sets(ratings, expected_shown, exclusions)
    metadata = None
    if "metadata" in checked.raw:
        meta_recs, _ = _kept(checked, "metadata")
        metadata = build_metadata(meta_recs)
    root = Path(folder)
    files = {role: rf.path for role, rf in checked.raw.items()}
    sha = {role: rf.sha256 for role, rf in checked.raw.items()}
    source = {
        "folder": str(root),
        "files": {role: _relative(p, root) for role, p in files.items()},
        "sha256": sha,
        "hub": hub,
    }
    data_hash = _io.sha256_json({schema.FILE_BY_ROLE[r].filename: h for r, h in sha.items()})
    return PrismData(
        participants=participants,
        conversations=conversations,
        ratings=ratings,
        choice_sets=choice_sets,
        exclusions=exclusions,
        source=source,
        data_hash=data_hash,
        metadata=metadata,
        report=checked.report,
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --- entry point ------------------------------------------------------------------------------


def load_prism(
    source: str | os.PathLike[str] | None = None,
    *,
    strict: bool = True,
    hub: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    metadata: bool | None = None,
) -> PrismData:
    """Read, validate and tidy a PRISM release.

    Parameters
    ----------
    source
        Folder holding ``survey.jsonl``, ``conversations.jsonl``, ``utterances.jsonl``
        and optionally ``metadata.jsonl`` (plain or ``.gz``, anywhere below the folder).
        ``None`` uses the ``PRISM_DATA`` environment variable. With ``hub=True``,
        an optional Hub repository id (default ``HannahRoseKirk/prism-alignment``).
    strict
        ``True``: any validation error raises :class:`PrismValidationError` (message
        ``file:line: field 'x': ...``). ``False``: invalid rows and their dependants are
        excluded and counted in ``PrismData.exclusions``.
    hub
        Fetch the release from the Hugging Face Hub (needs ``huggingface_hub`` and a
        network, or a cached copy).
    cache_dir
        Hub cache folder (default: the ``huggingface_hub`` default).
    metadata
        ``None``: read ``metadata.jsonl`` if present (not downloaded from the Hub);
        ``True``: require (and download) it; ``False``: ignore it.

    Returns
    -------
    PrismData

    Raises
    ------
    PrismDataNotFound
        Files missing, or the Hub unavailable; the message says how to get the data.
    PrismValidationError
        In strict mode, when the release has errors.

    Examples
    --------
    >>> data = load_prism("data/prism")                       # doctest: +SKIP
    >>> data.opening().groupby("llm", observed=True)["score"].mean()  # doctest: +SKIP
    """
    hub_repo = None
    if hub:
        hub_repo = str(source) if source is not None else schema.HUB_REPO_ID
        folder = download_from_hub(hub_repo, cache_dir=cache_dir, metadata=bool(metadata))
    else:
        if source is None:
            env = os.environ.get(DATA_ENV)
            if not env:
                raise PrismDataNotFound(
                    f"No release folder given (and ${DATA_ENV} is not set).\n" + how_to_obtain()
                )
            source = env
        folder = Path(source).expanduser()
    raw, notes = read_release(folder, metadata=metadata)
    checked = check_release(raw, str(folder), notes)
    if strict and checked.report.errors:
        raise PrismValidationError(checked.report)
    return tidy(checked, folder, hub_repo)
