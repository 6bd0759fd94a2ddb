"""Release flags (balanced subset, UK/US REP samples) and the JSONL writers.

Everything here reproduces the original release procedures on synthetic data:

* :func:`balanced_subset` -- SPEC §1.5: keep participants who have all three
  conversation types, and of each type keep as many conversations as the
  participant's rarest type has (a seeded random choice).
* :func:`rep_samples` -- SPEC §2.2: base pool = balanced participants with study
  locale ``uk`` / ``us``, binary gender and a known census ethnicity; for each of the
  60 census cells (``census.frame(country, harmonisation="original")``) draw
  ``int(share x 300) + 1`` people without replacement (seeded), or everybody when the
  cell has fewer.
* :func:`release_records` / :func:`write_release` -- the four JSONL files with the
  exact field order and nesting of :mod:`prism_stats.data.schema`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from prism_stats import census, vocab
from prism_stats._io import atomic_path

from . import tables as T
from .text import prompts, prose, response_texts
from .util import slider, text_lengths

PNTS = vocab.PREFER_NOT
REP_SAMPLE_N = 300
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# --- flags ----------------------------------------------------------------------------------


def balanced_subset(conversations: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Conversation flags of the balanced subset (SPEC §1.5 rule, seeded sampling).

    Parameters
    ----------
    conversations
        With columns ``participant`` and ``conversation_type``.
    rng
        Source of the random choice of which conversations of a type are kept.

    Returns
    -------
    numpy.ndarray
        Boolean flag per conversation row.
    """
    types = list(vocab.CONVERSATION_TYPES)
    counts = pd.crosstab(conversations["participant"], conversations["conversation_type"])
    counts = counts.reindex(columns=types, fill_value=0)
    keep_n = counts.min(axis=1)  # 0 when a type is missing
    key = pd.Series(rng.random(len(conversations)), index=conversations.index)
    rank = key.groupby([conversations["participant"], conversations["conversation_type"]]).rank(
        method="first"
    )
    limit = conversations["participant"].map(keep_n).to_numpy()
    return (rank.to_numpy() <= limit) & (limit > 0)


@dataclass
class RepSample:
    """One country's REP sample: flags and the cell table (target / available / selected)."""

    country: str
    flags: np.ndarray
    cells: pd.DataFrame

    @property
    def size(self) -> int:
        return int(self.flags.sum())


def rep_samples(
    participants: pd.DataFrame, balanced_users: np.ndarray, rng: np.random.Generator
) -> dict[str, RepSample]:
    """UK and US representative-sample flags by the original cell procedure (SPEC §2.2).

    Parameters
    ----------
    participants
        Synthetic participants (``study_locale``, ``gender``, ``age_band``,
        ``ethnicity_categorised``).
    balanced_users
        Participant flag ``included_in_balanced_subset``.
    rng
        Seeded source of the within-cell draws.
    """
    out = {}
    for country in vocab.COUNTRIES_MRP:
        cf = census.frame(country, harmonisation="original")
        eth = participants["ethnicity_categorised"].map(vocab.CENSUS_ETHNICITY_FROM_CATEGORISED)
        pool = (
            balanced_users
            & (participants["study_locale"].to_numpy() == country)
            & participants["gender"].isin(vocab.CENSUS_SEXES).to_numpy()
            & eth.notna().to_numpy()
            & participants["age_band"].isin(vocab.CENSUS_AGES).to_numpy()
        )
        cell = (
            participants["age_band"].astype(str)
            + "|"
            + participants["gender"].astype(str)
            + "|"
            + eth.astype(str)
        ).to_numpy()
        flags = np.zeros(len(participants), dtype=bool)
        rows = []
        for label, share in zip(cf["cell"], cf["share"], strict=True):
            members = np.flatnonzero(pool & (cell == label))
            target = int(share * REP_SAMPLE_N) + 1
            take = members if len(members) <= target else rng.choice(members, target, replace=False)
            flags[take] = True
            rows.append(
                {"cell": label, "target": target, "available": len(members), "selected": len(take)}
            )
        out[country] = RepSample(country, flags, pd.DataFrame(rows))
    return out


# --- texts and conversation-level answers ------------------------------------------------------


@dataclass
class ReleaseTexts:
    """Every free text of a synthetic release (aligned with the design tables)."""

    responses: list[str]
    prompts: list[str]  # one per interaction (running ``interaction`` index)
    open_feedback: list[str]
    performance: list[dict]
    choice: list[dict]
    extra: dict = field(default_factory=dict)


def attribute_dicts(
    n: int, moments: dict[str, tuple[float, float]], any_null: float, rng: np.random.Generator
) -> list[dict]:
    """Performance / choice attribute dicts (1-100 sliders, some N/A as null)."""
    keys = list(vocab.ATTRIBUTE_KEYS)
    values = {k: slider(n, *moments[k], 1, 100, rng) for k in keys}
    # Which attributes people tick N/A for: mostly the value-laden ones.
    na_weight = np.array([0.3, 0.03, 0.06, 0.15, 0.25, 0.18, 0.03])
    has_null = rng.random(n) < any_null
    n_null = np.minimum(1 + rng.geometric(0.55, n) - 1, len(keys))
    out = []
    for i in range(n):
        d = {k: int(values[k][i]) for k in keys}
        if has_null[i]:
            for j in rng.choice(
                len(keys), size=n_null[i], replace=False, p=na_weight / na_weight.sum()
            ):
                d[keys[j]] = None
        out.append(d)
    return out


# --- records -------------------------------------------------------------------------------


def _location(birth: str, reside: str) -> dict:
    def parts(iso: str) -> tuple[str, str, str]:
        if iso == PNTS:
            return PNTS, PNTS, PNTS
        c = vocab.COUNTRY_BY_ISO3[iso]
        return c.name, c.region, c.subregion

    b_name, b_region, b_sub = parts(birth)
    r_name, r_region, r_sub = parts(reside)
    same = PNTS if PNTS in (birth, reside) else ("Yes" if birth == reside else "No")
    return {
        "birth_country": b_name,
        "birth_countryISO": birth,
        "birth_region": b_region,
        "birth_subregion": b_sub,
        "reside_country": r_name,
        "reside_region": r_region,
        "reside_subregion": r_sub,
        "reside_countryISO": reside,
        "same_birth_reside_country": same,
        "special_region": vocab.special_region(
            None if birth == PNTS else vocab.COUNTRY_BY_ISO3[birth]
        ),
    }


_RELIGION_SIMPLE = vocab.RELIGION_SIMPLIFIED_FROM_CATEGORISED
_ETHNICITY_SIMPLE = vocab.ETHNICITY_SIMPLIFIED_FROM_CATEGORISED


def survey_records(
    participants: pd.DataFrame, balanced_users: np.ndarray, rep: dict[str, RepSample]
) -> list[dict]:
    """``survey.jsonl`` records in release field order."""
    p = participants
    out = []
    for i, row in enumerate(p.itertuples(index=False)):
        out.append(
            {
                "user_id": row.user_id,
                "survey_only": bool(row.survey_only),
                "num_completed_conversations": int(row.num_completed_conversations),
                "timing_duration_s": int(row.timing_duration_s),
                "timing_duration_mins": round(int(row.timing_duration_s) / 60, 2),
                "generated_datetime": row.generated_datetime.strftime(_DATETIME_FORMAT),
                "consent": "Yes, I consent to take part",
                "consent_age": "I certify that I am 18 years of age or over",
                "lm_familiarity": row.lm_familiarity,
                "lm_indirect_use": row.lm_indirect_use,
                "lm_direct_use": row.lm_direct_use,
                "lm_frequency_use": row.lm_frequency_use
                if isinstance(row.lm_frequency_use, str)
                else None,
                "self_description": row.self_description,
                "system_string": row.system_string,
                "age": row.age,
                "gender": row.gender,
                "employment_status": row.employment_status,
                "education": row.education,
                "marital_status": row.marital_status,
                "english_proficiency": row.english_proficiency,
                "study_id": row.study_id,
                "study_locale": row.study_locale,
                "religion": {
                    "self_described": row.religion_self_described,
                    "categorised": row.religion_categorised,
                    "simplified": _RELIGION_SIMPLE[row.religion_categorised],
                },
                "ethnicity": {
                    "self_described": row.ethnicity_self_described,
                    "categorised": row.ethnicity_categorised,
                    "simplified": _ETHNICITY_SIMPLE[row.ethnicity_categorised],
                },
                "location": _location(row.birth_iso, row.reside_iso),
                "lm_usecases": row.lm_usecases,
                "stated_prefs": row.stated_prefs,
                "order_lm_usecases": row.order_lm_usecases,
                "order_stated_prefs": row.order_stated_prefs,
                "included_in_US_REP": bool(rep["us"].flags[i]),
                "included_in_UK_REP": bool(rep["uk"].flags[i]),
                "included_in_balanced_subset": bool(balanced_users[i]),
            }
        )
    return out


def interaction_ids(conversation: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """``int{k}`` ids: k numbers the (conversation_id, turn) groups in sorted order.

    As in the release, groups are sorted on the conversation id *string* (so ``c10``
    sorts before ``c2``), then on the turn number.
    """
    keys = pd.DataFrame(
        {"cid": [f"c{c}" for c in conversation], "turn": np.asarray(turn, dtype=int)}
    )
    uniq = keys.drop_duplicates().sort_values(["cid", "turn"], ignore_index=True)
    uniq["k"] = np.arange(len(uniq))
    merged = keys.merge(uniq, on=["cid", "turn"], how="left", sort=False)
    return ("int" + merged["k"].astype(str)).to_numpy()


def conversation_and_utterance_records(
    participants: pd.DataFrame,
    conversations: pd.DataFrame,
    responses: pd.DataFrame,
    ratings: pd.DataFrame,
    texts: ReleaseTexts,
    balanced_conv: np.ndarray,
) -> tuple[list[dict], list[dict]]:
    """``conversations.jsonl`` and ``utterances.jsonl`` records in release field order."""
    user_ids = participants["user_id"].to_numpy()
    conv = responses["conversation"].to_numpy()
    turn = responses["turn"].to_numpy()
    within = responses["within_turn"].to_numpy()
    inter = responses["interaction"].to_numpy()
    llm = ratings["llm"].to_numpy()
    score = ratings["score"].to_numpy()
    chosen = ratings["chosen"].to_numpy()
    long_names = [m.long_name for m in vocab.LLMS]
    providers = [m.provider for m in vocab.LLMS]
    ctypes = conversations["conversation_type"].to_numpy()
    conv_user = user_ids[conversations["participant"].to_numpy()]
    int_ids = interaction_ids(conv, turn)

    utterances = []
    history: list[list[dict]] = [[] for _ in range(len(conversations))]
    last_inter = -1
    for row in range(len(responses)):
        c = int(conv[row])
        prompt = texts.prompts[inter[row]]
        if inter[row] != last_inter:
            history[c].append({"turn": int(turn[row]), "role": "user", "content": prompt})
            last_inter = inter[row]
        m = int(llm[row])
        history[c].append(
            {
                "turn": int(turn[row]),
                "role": "model",
                "content": texts.responses[row],
                "model_provider": providers[m],
                "model_name": long_names[m],
                "score": int(score[row]),
                "if_chosen": bool(chosen[row]),
                "within_turn_id": int(within[row]),
            }
        )
        utterances.append(
            {
                "utterance_id": f"ut{row}",
                "interaction_id": int_ids[row],
                "conversation_id": f"c{c}",
                "user_id": conv_user[c],
                "turn": int(turn[row]),
                "within_turn_id": int(within[row]),
                "included_in_balanced_subset": bool(balanced_conv[c]),
                "conversation_type": ctypes[c],
                "user_prompt": prompt,
                "model_response": texts.responses[row],
                "model_name": long_names[m],
                "model_provider": providers[m],
                "score": int(score[row]),
                "if_chosen": bool(chosen[row]),
            }
        )
    records = []
    for c, row in enumerate(conversations.itertuples(index=False)):
        dur = float(row.timing_duration_s)
        records.append(
            {
                "conversation_id": f"c{c}",
                "user_id": conv_user[c],
                "included_in_balanced_subset": bool(balanced_conv[c]),
                "generated_datetime": row.generated_datetime.strftime(_DATETIME_FORMAT),
                "timing_duration_s": dur,
                "timing_duration_mins": round(dur / 60, 2),
                "conversation_type": row.conversation_type,
                "opening_prompt": history[c][0]["content"],
                "conversation_turns": int(row.n_turns),
                "conversation_history": history[c],
                "performance_attributes": texts.performance[c],
                "choice_attributes": texts.choice[c],
                "open_feedback": texts.open_feedback[c],
            }
        )
    return records, utterances


_MODERATION_CATEGORIES = (
    "sexual",
    "hate",
    "harassment",
    "self-harm",
    "sexual/minors",
    "hate/threatening",
    "violence/graphic",
    "self-harm/intent",
    "self-harm/instructions",
    "harassment/threatening",
    "violence",
)
_OTHER_LANGUAGES = ("es", "fr", "it", "de", "nl", "pt", "la", "da")


def metadata_records(
    survey: list[dict], conversations: list[dict], utterances: list[dict], rng: np.random.Generator
) -> list[dict]:
    """``metadata.jsonl`` records: one per text instance, with simulated flags.

    Flags are simulated at the published rates (PII 1.0%, non-English ~1.2%,
    moderation 0.6%); they carry no signal.
    """
    rows: list[tuple[str, str, str | None, str | None, str | None, bool]] = []
    for u in utterances:
        rows.append(
            (
                "model_response",
                u["user_id"],
                u["conversation_id"],
                u["interaction_id"],
                u["utterance_id"],
                False,
            )
        )
    seen = set()
    for u in utterances:
        if u["interaction_id"] not in seen:
            seen.add(u["interaction_id"])
            rows.append(
                ("user_prompt", u["user_id"], u["conversation_id"], u["interaction_id"], None, True)
            )
    for c in conversations:
        rows.append(("open_feedback", c["user_id"], c["conversation_id"], None, None, True))
    for column in ("self_description", "system_string"):
        for s in survey:
            rows.append((column, s["user_id"], None, None, None, True))
    n = len(rows)
    pii = rng.random(n) < 1111 / 106554
    non_en = rng.random(n) < 0.012
    flagged = rng.random(n) < 634 / 106554
    lang = np.where(non_en, rng.choice(_OTHER_LANGUAGES, n), "en")
    out = []
    for i, (column, user, conv, inter, utt, human) in enumerate(rows):
        cats = dict.fromkeys(_MODERATION_CATEGORIES, False)
        if flagged[i]:
            cats[_MODERATION_CATEGORIES[rng.integers(len(_MODERATION_CATEGORIES))]] = True
        out.append(
            {
                "column_id": column,
                "user_id": user,
                "conversation_id": conv,
                "interaction_id": inter,
                "utterance_id": utt,
                "pii_flag": bool(pii[i]),
                "pii_manual_flag": 0.0 if (pii[i] and human) else None,
                "language_flag": str(lang[i]),
                "en_flag": bool(lang[i] == "en"),
                "moderation_flag": {"flagged": bool(flagged[i]), "categories": cats},
            }
        )
    return out


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict]) -> Path:
    """Write *records* as JSON lines (UTF-8, key order kept) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            dumps = json.JSONEncoder(
                ensure_ascii=False, separators=(", ", ": "), allow_nan=False
            ).encode
            f.writelines(dumps(r) + "\n" for r in records)
        _readable(tmp)
    return Path(path)


def _readable(path: Path) -> None:
    """Give a finished file the usual permissions (temporary files are created 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def release_texts(
    conversations: pd.DataFrame, responses: pd.DataFrame, llm: np.ndarray, rng: np.random.Generator
) -> ReleaseTexts:
    """All free texts of the release: responses carrying their features, prompts, feedback."""
    resp = response_texts(responses, llm, rng)
    # Identical A/B pairs share the text as well as the features.
    b_rows = np.flatnonzero(
        responses["identical_ab"].to_numpy() & (responses["within_turn"].to_numpy() == 1)
    )
    for b in b_rows:
        resp[b] = resp[b - 1]
    first = responses.drop_duplicates("interaction")
    is_open = first["turn"].to_numpy() == 0
    prompt_list = np.empty(len(first), dtype=object)
    prompt_list[np.flatnonzero(is_open)] = prompts(
        int(is_open.sum()), T.OPENING_PROMPT_CHARS, rng, opening=True
    )
    prompt_list[np.flatnonzero(~is_open)] = prompts(
        int((~is_open).sum()), T.USER_PROMPT_CHARS, rng, opening=False
    )
    n_c = len(conversations)
    feedback = prose(text_lengths(n_c, T.OPEN_FEEDBACK_CHARS, rng), rng)
    performance = attribute_dicts(n_c, T.PERFORMANCE_MOMENTS, T.PERFORMANCE_ANY_NULL, rng)
    choice = attribute_dicts(n_c, T.CHOICE_MOMENTS, T.CHOICE_ANY_NULL, rng)
    return ReleaseTexts(resp, list(prompt_list), feedback, performance, choice)
