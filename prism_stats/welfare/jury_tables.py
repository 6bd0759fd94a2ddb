"""The jury analysis' input: per participant x LLM tables of each rule, and the pools.

:func:`jury_tables` turns the opening-turn ratings of the balanced subset into one
participant x LLM table per rule (mean score, chosen share, veto rate; NaN where the
participant never saw the LLM), with the pool and target memberships of every
participant (:class:`JuryTables`); see :mod:`prism_stats.welfare.juries` for the method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from prism_stats.vocab import (
    AGE_OVER45,
    COUNTRIES_MRP,
    LLM_BY_SHORT_NAME,
    LLM_SHORT_NAMES,
    VETO_THRESHOLD,
)

from .imputation import IMPUTE_BOUNDS, iterative_impute
from .results import POOLS, RULES, TARGETS

PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "participant",
    "gender",
    "age",
    "ethnicity_simplified",
    "in_uk_rep",
    "in_us_rep",
)
RATING_COLUMNS: tuple[str, ...] = ("participant", "turn", "llm", "score", "chosen", "balanced")


class JuryInputError(ValueError):
    """The input tables cannot be used for the jury analysis (names the offending field)."""


# --- input tables -------------------------------------------------------------------------


def _input_frames(data: Any) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    if isinstance(data, Mapping):
        try:
            participants, ratings = data["participants"], data["ratings"]
        except KeyError as err:
            raise JuryInputError(
                f"tables mapping lacks {err.args[0]!r}; need 'participants' and 'ratings'"
            ) from None
        return participants, ratings, data.get("data_hash")
    if hasattr(data, "participants") and hasattr(data, "ratings"):
        return data.participants, data.ratings, getattr(data, "data_hash", None)
    raise JuryInputError(
        "expected a PrismData (attributes 'participants', 'ratings'), a mapping with those "
        f"tables, or JuryTables; got {type(data).__name__}"
    )


def _require(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise JuryInputError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise JuryInputError(f"{table} table lacks column(s) {missing} (has {list(df.columns)})")


def _as_bool(series: pd.Series, table: str) -> np.ndarray:
    if series.isna().any():
        bad = series.index[series.isna()][:5].tolist()
        raise JuryInputError(f"{table}.{series.name}: missing values (rows {bad} ...)")
    values = series.to_numpy()
    if values.dtype == bool:
        return values
    uniq = set(pd.unique(values).tolist())
    if uniq <= {True, False}:
        return values.astype(bool)
    if uniq <= {"True", "False", "true", "false"}:
        return np.isin(values, ["True", "true"])
    raise JuryInputError(f"{table}.{series.name}: not boolean, values {sorted(map(str, uniq))[:5]}")


def _llm_order(labels: Sequence[str]) -> list[str]:
    known = [m for m in LLM_SHORT_NAMES if m in set(labels)]
    return known + sorted(set(labels) - set(known))


def _original_column_name(llm: str) -> str:
    """The original's pivot column: the part of the long model name after the last '/'."""
    m = LLM_BY_SHORT_NAME.get(llm)
    return m.long_name.split("/")[-1] if m is not None else llm


@dataclass(frozen=True)
class JuryTables:
    """Per participant x LLM tables of the jury analysis.

    Attributes
    ----------
    values
        ``(rule, participant, llm)``: mean opening-turn rating (``rule="mean"``), chosen
        share (``"chosen"``) and veto rate, the share of ratings ``<= 10``
        (``"veto"``); NaN where the participant never saw the LLM (base variant).
        Participants are in participants-table order; LLMs in vocabulary order.
    n_ratings
        ``(participant, llm)``: number of opening-turn ratings behind each mean.
    members
        Participant attributes (``PARTICIPANT_COLUMNS``), one row per ``participant``
        of ``values``, same order.
    llm_first_seen
        LLMs in order of first appearance among the filtered ratings (the original's
        model order, used for tie-breaking in legacy mode).
    imputed
        Whether the tables were completed by :func:`iterative_impute`.
    country
        The country the tables were restricted to, or ``None`` (all participants).
    report
        Counts of everything left out or filled in (ratings dropped by turn and
        balanced flag, REP members without opening ratings, imputed cells, ...).
    data_hash
        The dataset's hash, when known.
    """

    values: xr.DataArray
    n_ratings: xr.DataArray
    members: pd.DataFrame
    llm_first_seen: tuple[str, ...]
    imputed: bool = False
    country: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    data_hash: str | None = None

    @property
    def llms(self) -> list[str]:
        """The ``llm`` coordinate."""
        return [str(x) for x in self.values["llm"].values]

    @property
    def participants(self) -> list[str]:
        """The ``participant`` coordinate."""
        return [str(x) for x in self.values["participant"].values]

    def utility(self, rule: str) -> np.ndarray:
        """``(participant, llm)`` values of *rule* oriented so that higher is better.

        ``mean`` and ``chosen`` as stored; ``veto`` as the non-veto rate ``1 - veto``.
        """
        _check_rule(rule)
        if rule not in self.values["rule"].values:
            raise JuryInputError(f"these tables were built without rule {rule!r}")
        v = np.asarray(self.values.sel(rule=rule).values, dtype=np.float64)
        return 1.0 - v if rule == "veto" else v

    def _rep(self, country: str) -> np.ndarray:
        if country not in COUNTRIES_MRP:
            raise JuryInputError(f"unknown country {country!r}; expected one of {COUNTRIES_MRP}")
        if self.country is not None and country != self.country:
            raise JuryInputError(
                f"these tables were restricted to {self.country!r}, not {country!r}"
            )
        return self.members[f"in_{country}_rep"].to_numpy(dtype=bool)

    def pool(self, country: str, pool: str) -> np.ndarray:
        """Positions (into ``participant``) of a rater pool, in table order."""
        rep = self._rep(country)
        m = self.members
        masks = {
            "representative": rep,
            "male": rep & (m["gender"] == "Male").to_numpy(dtype=bool),
            "white": rep & (m["ethnicity_simplified"] == "White").to_numpy(dtype=bool),
            "over45": rep & m["age"].isin(AGE_OVER45).to_numpy(dtype=bool),
        }
        if pool not in masks:
            raise JuryInputError(f"unknown pool {pool!r}; expected one of {POOLS}")
        return np.flatnonzero(masks[pool])

    def target(self, country: str, target: str) -> np.ndarray:
        """Positions of a welfare population (target), in table order."""
        rep = self._rep(country)
        m = self.members
        masks = {
            "all": rep,
            # "!= Male" / "!= White" / "not 45+" as the original: "Prefer not to say"
            # and non-binary participants count as non-male, etc.
            "nonmale": rep & (m["gender"] != "Male").to_numpy(dtype=bool),
            "nonwhite": rep & (m["ethnicity_simplified"] != "White").to_numpy(dtype=bool),
            "under45": rep & ~m["age"].isin(AGE_OVER45).to_numpy(dtype=bool),
        }
        if target not in masks:
            raise JuryInputError(f"unknown target {target!r}; expected one of {TARGETS}")
        return np.flatnonzero(masks[target])


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise JuryInputError(f"unknown rule {rule!r}; expected one of {RULES}")


def jury_tables(
    data_or_tables: Any,
    country: str | None = None,
    *,
    imputed: bool | None = None,
    rules: str | Sequence[str] = RULES,
    impute_max_iter: int = 10,
    impute_tol: float = 1e-3,
) -> JuryTables:
    """Per participant x LLM mean tables of the jury analysis.

    Parameters
    ----------
    data_or_tables
        A ``PrismData`` (attributes ``participants`` and ``ratings``, see the data
        contract in ARCHITECTURE.md), a mapping with those two DataFrames (optionally
        ``data_hash``), or existing :class:`JuryTables` (restricted to *country*).
    country
        ``"uk"`` / ``"us"``: keep only that country's REP sample (the only raters the
        analysis uses).  ``None`` keeps every participant with an opening rating plus
        every REP member.
    imputed
        Complete each table with :func:`iterative_impute` and clip it (11c); ``None``
        means no for raw tables and "as they are" for :class:`JuryTables`.  As in
        the original, the imputation is fitted on *all* participants with opening
        ratings (all countries), with rows in sorted participant-id order and columns
        in the order of the original's pivot (sorted short model names), before the
        country restriction.  REP members with no opening rating at all stay NaN
        (counted in ``report``).
    rules
        The tables to build (default all three; imputation is the costly part).
    impute_max_iter, impute_tol
        Passed to :func:`iterative_impute` (scikit-learn's defaults).

    Returns
    -------
    JuryTables
    """
    rules = [rules] if isinstance(rules, str) else list(dict.fromkeys(rules))
    for rule in rules:
        _check_rule(rule)
    if isinstance(data_or_tables, JuryTables):
        tables = data_or_tables
        if imputed is not None and imputed != tables.imputed:
            raise JuryInputError(
                f"imputed={imputed} but the given JuryTables have imputed={tables.imputed}"
            )
        lacking = [r for r in rules if r not in tables.values["rule"].values]
        if lacking:
            raise JuryInputError(f"the given JuryTables lack the table(s) of rule(s) {lacking}")
        return _restrict(tables, country) if country is not None else tables
    imputed = bool(imputed)
    participants, ratings, data_hash = _input_frames(data_or_tables)
    _require(participants, PARTICIPANT_COLUMNS, "participants")
    _require(ratings, RATING_COLUMNS, "ratings")
    if participants["participant"].duplicated().any():
        dup = participants["participant"][participants["participant"].duplicated()].tolist()[:5]
        raise JuryInputError(f"participants.participant: duplicated ids {dup}")
    if country is not None and country not in COUNTRIES_MRP:
        raise JuryInputError(f"unknown country {country!r}; expected one of {COUNTRIES_MRP}")

    report: dict[str, Any] = {"ratings_in": len(ratings)}
    turn = pd.to_numeric(ratings["turn"], errors="coerce")
    balanced = _as_bool(ratings["balanced"], "ratings")
    keep = (turn == 0).to_numpy() & balanced
    report["ratings_dropped_later_turn"] = int(((turn != 0) | turn.isna()).sum())
    report["ratings_dropped_not_balanced"] = int(((turn == 0).to_numpy() & ~balanced).sum())
    r = ratings.loc[keep, ["participant", "llm", "score", "chosen"]]
    score = pd.to_numeric(r["score"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(score).any():
        raise JuryInputError(
            f"ratings.score: {int(np.isnan(score).sum())} opening-turn balanced rows have no score"
        )
    if r["chosen"].isna().any():
        raise JuryInputError(
            f"ratings.chosen: {int(r['chosen'].isna().sum())} opening-turn balanced rows are missing"
        )
    participant_ids = participants["participant"].astype(str).to_numpy()
    rated_ids = r["participant"].astype(str).to_numpy()
    unknown = sorted(set(rated_ids.tolist()) - set(participant_ids.tolist()))
    if unknown:
        raise JuryInputError(
            f"ratings.participant: {len(unknown)} id(s) not in the participants table, e.g. {unknown[:5]}"
        )
    if r["llm"].isna().any():
        raise JuryInputError(
            f"ratings.llm: {int(r['llm'].isna().sum())} opening-turn balanced rows have no LLM"
        )
    llm_labels = r["llm"].astype(str).to_numpy()
    first_seen = tuple(pd.unique(llm_labels).tolist())
    llms = _llm_order(first_seen)
    report["ratings_used"] = len(r)
    report["llms_never_rated"] = [m for m in LLM_SHORT_NAMES if m not in set(llms)]

    frame = pd.DataFrame(
        {
            "participant": rated_ids,
            "llm": llm_labels,
            "mean": score,
            "chosen": _as_bool(r["chosen"], "ratings").astype(np.float64),
            "veto": (score <= VETO_THRESHOLD).astype(np.float64),
        }
    )
    grouped = frame.groupby(["participant", "llm"], sort=False)
    means = grouped[["mean", "chosen", "veto"]].mean()
    counts = grouped.size()

    members = participants.loc[:, list(PARTICIPANT_COLUMNS)].copy()
    members["participant"] = participant_ids
    members["in_uk_rep"] = _as_bool(participants["in_uk_rep"], "participants")
    members["in_us_rep"] = _as_bool(participants["in_us_rep"], "participants")
    rated_set = set(rated_ids.tolist())
    has_rating = np.array([pid in rated_set for pid in participant_ids], dtype=bool)
    in_rep = members["in_uk_rep"].to_numpy() | members["in_us_rep"].to_numpy()
    members = members.loc[has_rating | in_rep].reset_index(drop=True)
    ids = members["participant"].tolist()
    report["rep_members_without_opening_ratings"] = {
        c: int((members[f"in_{c}_rep"] & ~members["participant"].isin(rated_set)).sum())
        for c in COUNTRIES_MRP
    }

    cube = np.full((len(rules), len(ids), len(llms)), np.nan)
    n_ratings = np.zeros((len(ids), len(llms)), dtype=np.int64)
    pos_p = {p: i for i, p in enumerate(ids)}
    pos_l = {m: j for j, m in enumerate(llms)}
    pi = np.array([pos_p[p] for p in means.index.get_level_values("participant")], dtype=np.intp)
    lj = np.array([pos_l[m] for m in means.index.get_level_values("llm")], dtype=np.intp)
    for k, rule in enumerate(rules):
        cube[k, pi, lj] = means[rule].to_numpy()
    n_ratings[pi, lj] = counts.reindex(means.index).to_numpy()

    imputer_info: dict[str, Any] = {}
    if imputed:
        rated_rows = np.flatnonzero([pid in rated_set for pid in ids])
        row_order = rated_rows[np.argsort(np.asarray(ids, dtype=object)[rated_rows], kind="stable")]
        col_order = np.argsort([_original_column_name(m) for m in llms], kind="stable")
        report["cells_imputed"] = int(np.isnan(cube[0][np.ix_(row_order, col_order)]).sum())
        for k, rule in enumerate(rules):
            block = cube[k][np.ix_(row_order, col_order)]
            filled, info = iterative_impute(block, max_iter=impute_max_iter, tol=impute_tol)
            lo, hi = IMPUTE_BOUNDS[rule]
            cube[k][np.ix_(row_order, col_order)] = np.clip(filled, lo, hi)
            imputer_info[rule] = info
        report["imputer"] = imputer_info

    values = xr.DataArray(
        cube,
        dims=("rule", "participant", "llm"),
        coords={"rule": list(rules), "participant": ids, "llm": llms},
        name="jury_table",
        attrs={"veto_threshold": VETO_THRESHOLD, "imputed": int(bool(imputed))},
    )
    n_da = xr.DataArray(
        n_ratings, dims=("participant", "llm"), coords={"participant": ids, "llm": llms}
    )
    tables = JuryTables(
        values=values,
        n_ratings=n_da,
        members=members,
        llm_first_seen=first_seen,
        imputed=bool(imputed),
        country=None,
        report=report,
        data_hash=data_hash,
    )
    return _restrict(tables, country) if country is not None else tables


def _restrict(tables: JuryTables, country: str) -> JuryTables:
    if tables.country is not None:
        if tables.country != country:
            raise JuryInputError(f"tables are restricted to {tables.country!r}, not {country!r}")
        return tables
    if country not in COUNTRIES_MRP:
        raise JuryInputError(f"unknown country {country!r}; expected one of {COUNTRIES_MRP}")
    rows = np.flatnonzero(tables.members[f"in_{country}_rep"].to_numpy(dtype=bool))
    return JuryTables(
        values=tables.values.isel(participant=rows),
        n_ratings=tables.n_ratings.isel(participant=rows),
        members=tables.members.iloc[rows].reset_index(drop=True),
        llm_first_seen=tables.llm_first_seen,
        imputed=tables.imputed,
        country=country,
        report=tables.report,
        data_hash=tables.data_hash,
    )
