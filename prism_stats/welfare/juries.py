"""Design-based jury (welfare) analysis: a re-implementation of the original study.

Source: the PRISM welfare case study (Kirk et al. 2024, notebooks ``11b_welfare_analysis``
and ``11c_welfare_analysis_imputed``; SPEC.md §3.11, §5.8).  The method:

1. **Tables.** From the opening-turn (``turn == 0``) ratings of the balanced subset
   (the *utterance* flag ``balanced``), per participant x LLM means of the score
   (rule ``"mean"``), of ``chosen`` (rule ``"chosen"``) and of the veto indicator
   ``score <= 10`` (rule ``"veto"``); NaN where the participant never saw the LLM.
2. **Pools** ("seats of power", sampled *with replacement*): a country's REP sample
   (``in_uk_rep`` / ``in_us_rep``) or its male, white (``ethnicity_simplified ==
   "White"``) or over-45 (45-54, 55-64, 65+) members.
3. **Juries.** Representative juries of 10/20/50/100 and juries of 100 from each skewed
   pool, 1,000 replicates each.  A jury scores each LLM by the mean of its members'
   per-user values, ignoring NaN (a rater drawn twice counts twice); an LLM nobody in
   the jury saw scores 1 (``mean``), 0 (``chosen``) or 1 (``veto``, on the ``1 - veto
   rate`` scale).  The jury picks the highest-scoring LLM; ties are broken at random.
4. **Welfare** of a pick for a target population (all REP, non-male, non-white,
   under-45) = the mean over the target's members of their per-user value of the
   picked LLM, ignoring members who never saw it.  Regret = the best achievable welfare
   (max over LLMs) minus the welfare of the pick.
5. **Imputed variant** (``imputed=True``; the original's notebook 11c): each table is
   first completed by chained-equations imputation with a Bayesian ridge regression
   (:func:`iterative_impute`), then clipped to [1, 100] (ratings) or [0, 1] (shares).

Each rule measures welfare on its own table (as the original did for ratings and
choices): the ``veto`` rule's welfare is the *non-veto rate* ``1 - veto`` so that
higher is better for every rule.  The original defined the veto rule but never ran it.

Randomness
----------
By default every random step draws from ``numpy.random.Generator`` streams derived
from one seed: the juries of a (country, pool, size) from
``SeedSequence([seed, 0, country, pool, size])`` and the tie-breaks of a rule from
``SeedSequence([seed, 1, country, pool, size, rule])``.  Hence the juries are shared by
all rules and all targets (paired comparisons), and a scheme's results do not depend
on which other schemes, rules or countries were requested.

``legacy_python_random=True`` instead replays the original's ``random.seed(1)`` loop
with Python's ``random.Random`` (a private instance, never the global state).  Exact
reproduction of the original pickles requires: both countries in the order
``("us", "uk")``; rules ``("mean", "chosen")`` (rating block before choice block); all
four targets and the default seven schemes; 1,000 replicates; seed 1; the
participants table in ``survey.jsonl`` order (pools are drawn by position) and the
ratings table in ``utterances.jsonl`` order (the model order used for tie-breaking is
the order of first appearance among the filtered ratings).  The picks are then
identical; the welfare values agree up to floating-point summation order.  In that
mode the juries are drawn afresh for each target, as in the original, so
``chosen_llm`` gets a ``target`` dimension.  The imputed variant cannot be reproduced
bit-for-bit because the imputer is a re-implementation (see :func:`iterative_impute`).
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import xarray as xr

from .. import __version__
from ..vocab import (
    AGE_OVER45,
    COUNTRIES_MRP,
    LLM_BY_SHORT_NAME,
    LLM_SHORT_NAMES,
    VETO_THRESHOLD,
)
from .results import (
    JURY_SIZES,
    POOLS,
    RULES,
    SKEWED_SIZE,
    TARGETS,
    Scheme,
    build_schemes,
    scheme_coords,
    welfare_dataset,
)

#: Jury score of an LLM nobody in the jury saw, per rule (on the utility scale).
UNSEEN_VALUE: dict[str, float] = {"mean": 1.0, "chosen": 0.0, "veto": 1.0}
#: Clipping range of the imputed tables (the original's ``round_rating``/``round_choice``).
IMPUTE_BOUNDS: dict[str, tuple[float, float]] = {
    "mean": (1.0, 100.0),
    "chosen": (0.0, 1.0),
    "veto": (0.0, 1.0),
}

PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "participant",
    "gender",
    "age",
    "ethnicity_simplified",
    "in_uk_rep",
    "in_us_rep",
)
RATING_COLUMNS: tuple[str, ...] = ("participant", "turn", "llm", "score", "chosen", "balanced")

# Stable integer codes of the random streams (never reorder: they key the seeds).
_STREAM_JURY, _STREAM_TIES = 0, 1
# Cap on the elements of one gathered (replicate, rater, llm) block.
_BLOCK_ELEMENTS = 4_000_000


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


# --- imputation ---------------------------------------------------------------------------


def bayesian_ridge(
    X: np.ndarray,
    y: np.ndarray,
    *,
    max_iter: int = 300,
    tol: float = 1e-3,
    alpha_1: float = 1e-6,
    alpha_2: float = 1e-6,
    lambda_1: float = 1e-6,
    lambda_2: float = 1e-6,
) -> tuple[np.ndarray, float]:
    """Bayesian ridge regression by evidence maximisation (MacKay 1992).

    The model ``y = X b + c + e``, ``e ~ N(0, 1/alpha)``, ``b ~ N(0, 1/lambda)``, with
    Gamma(1e-6, 1e-6) hyperpriors on both precisions; alpha and lambda are updated by
    the fixed-point equations until the coefficients change by less than *tol* (L1),
    starting from ``alpha = 1/var(y)`` and ``lambda = 1``.  This follows the
    algorithm and defaults of scikit-learn's ``BayesianRidge`` (the estimator the
    original study's imputer used), with an intercept from centring.

    Returns
    -------
    coef, intercept
        The posterior mean of the coefficients and the intercept.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_offset = X.mean(axis=0)
    y_offset = float(y.mean())
    Xc = X - x_offset
    yc = y - y_offset
    n, p = Xc.shape
    alpha = 1.0 / (np.var(yc) + np.finfo(np.float64).eps)
    lam = 1.0
    xty = Xc.T @ yc
    U, S, Vh = scipy.linalg.svd(Xc, full_matrices=False)
    eig = S**2

    def posterior_mean(alpha: float, lam: float) -> tuple[np.ndarray, float]:
        if n > p:
            coef = np.linalg.multi_dot([Vh.T, Vh / (eig + lam / alpha)[:, None], xty])
        else:
            coef = np.linalg.multi_dot([Xc.T, U / (eig + lam / alpha)[None, :], U.T, yc])
        return coef, float(np.sum((yc - Xc @ coef) ** 2))

    coef_old = None
    for it in range(max_iter):
        coef, sse = posterior_mean(alpha, lam)
        gamma = float(np.sum((alpha * eig) / (lam + alpha * eig)))
        lam = (gamma + 2 * lambda_1) / (float(np.sum(coef**2)) + 2 * lambda_2)
        alpha = (n - gamma + 2 * alpha_1) / (sse + 2 * alpha_2)
        if it != 0 and coef_old is not None and np.sum(np.abs(coef_old - coef)) < tol:
            break
        coef_old = coef.copy()
    coef, _ = posterior_mean(alpha, lam)
    return coef, y_offset - float(x_offset @ coef)


def iterative_impute(
    X: np.ndarray,
    *,
    max_iter: int = 10,
    tol: float = 1e-3,
    regressor: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]] = bayesian_ridge,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Chained-equations (MICE-style) imputation of a matrix, deterministic.

    Re-implements the procedure of scikit-learn's ``IterativeImputer`` with its
    defaults, which the original study used (11c, ``IterativeImputer(random_state=1)``;
    with these defaults the random state plays no role):

    1. fill each column's missing cells with the column's observed mean;
    2. visit the columns in ascending order of their share of missing cells (stable
       order for ties); regress each column's observed cells on all other columns'
       current values with :func:`bayesian_ridge` and replace its missing cells by
       the posterior-mean predictions;
    3. repeat step 2 up to *max_iter* rounds, stopping early when the largest absolute
       row sum of the change over a round falls below ``tol * max|observed|``.

    Observed cells are never changed; all-missing columns are left missing.  The
    result matches scikit-learn's up to floating-point rounding but bit-for-bit
    equality is not promised (different BLAS/LAPACK paths and library versions).

    Returns
    -------
    filled, info
        The completed matrix and ``{"n_iter", "converged", "n_missing"}``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {X.shape}")
    out = X.copy()
    missing = np.isnan(X)
    valid = ~missing.all(axis=0)
    info: dict[str, Any] = {
        "n_iter": 0,
        "converged": True,
        "n_missing": int(missing[:, valid].sum()),
    }
    Xv = X[:, valid]
    mask = missing[:, valid]
    if not mask.any():
        return out, info
    col_means = np.array([Xv[~mask[:, j], j].mean() for j in range(Xv.shape[1])])
    Xt = np.where(mask, col_means[None, :], Xv)
    if Xt.shape[1] == 1 or max_iter == 0:
        out[:, valid] = Xt
        info["converged"] = max_iter > 0
        return out, info
    order = np.argsort(mask.mean(axis=0), kind="mergesort")
    threshold = tol * np.max(np.abs(Xv[~mask]))
    previous = Xt.copy()
    converged = False
    n_cols = Xt.shape[1]
    for it in range(1, max_iter + 1):
        info["n_iter"] = it
        for j in order:
            rows = mask[:, j]
            if not rows.any():
                continue  # a complete column: its fit would not change anything
            others = np.r_[0:j, j + 1 : n_cols]
            coef, intercept = regressor(Xt[~rows][:, others], Xt[~rows, j])
            Xt[rows, j] = Xt[rows][:, others] @ coef + intercept
        change = np.linalg.norm(Xt - previous, ord=np.inf)
        if change < threshold:
            converged = True
            break
        previous = Xt.copy()
    info["converged"] = converged
    if not converged:
        warnings.warn(
            f"iterative imputation did not converge in {max_iter} rounds (as scikit-learn, "
            "the last round's values are used)",
            RuntimeWarning,
            stacklevel=2,
        )
    out[:, valid] = Xt
    return out, info


# --- jury mechanics -----------------------------------------------------------------------


def jury_scores(utility: np.ndarray, juries: np.ndarray, *, unseen: float) -> np.ndarray:
    """Each jury's score of each LLM: the mean of its members' values, ignoring NaN.

    Parameters
    ----------
    utility
        ``(participant, llm)`` per-user values (higher is better).
    juries
        ``(replicate, size)`` integer positions into *utility*'s rows; a rater drawn
        twice counts twice.
    unseen
        Score of an LLM no jury member saw.

    Returns
    -------
    numpy.ndarray
        ``(replicate, llm)``.
    """
    utility = np.asarray(utility, dtype=np.float64)
    juries = np.asarray(juries, dtype=np.intp)
    n_rep, size = juries.shape
    out = np.empty((n_rep, utility.shape[1]))
    step = max(1, _BLOCK_ELEMENTS // max(1, size * utility.shape[1]))
    for start in range(0, n_rep, step):
        block = utility[juries[start : start + step]]  # (block, size, llm)
        seen = ~np.isnan(block)
        total = np.where(seen, block, 0.0).sum(axis=1)
        count = seen.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(count > 0, total / count, unseen)
    return out


def pick_best(
    scores: np.ndarray, rng: np.random.Generator, *, tie_rtol: float = 1e-12
) -> np.ndarray:
    """Position of the highest score in each row, ties broken uniformly at random.

    Scores within ``tie_rtol * |max|`` of the row maximum count as tied, so that two
    means that are equal in exact arithmetic but differ in the last bit because of
    summation order are treated as the tie they are (``tie_rtol=0``: exact comparison,
    as the original).  NaN never wins.
    """
    scores = np.asarray(scores, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(scores, axis=1, keepdims=True)
    tied = scores >= best - tie_rtol * np.abs(best)
    keys = rng.random(scores.shape)
    return np.argmax(np.where(tied, keys, -1.0), axis=1)


def population_welfare(utility: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Welfare of each LLM for a population: mean of members' values, ignoring NaN.

    Returns ``(llm,)``; NaN for an LLM no member saw (or an empty population).
    """
    block = np.asarray(utility, dtype=np.float64)[np.asarray(members, dtype=np.intp)]
    seen = ~np.isnan(block)
    count = seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(seen, block, 0.0).sum(axis=0) / count, np.nan)


# --- the analysis -------------------------------------------------------------------------


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _base_seed(seed: int | np.random.Generator | None) -> tuple[int, str]:
    if seed is None:
        return int(np.random.SeedSequence().entropy), "fresh entropy"
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1)), "drawn from a numpy Generator"
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and int(seed) >= 0:
        return int(seed), "given"
    raise JuryInputError(
        f"seed must be a non-negative int, a numpy Generator or None; got {seed!r}"
    )


def run_juries(
    data_or_tables: Any,
    countries: str | Sequence[str] = COUNTRIES_MRP,
    *,
    rules: str | Sequence[str] = RULES,
    sizes: Sequence[int] = JURY_SIZES,
    pools: Sequence[str] = POOLS,
    skewed_sizes: Sequence[int] = (SKEWED_SIZE,),
    targets: Sequence[str] = TARGETS,
    n_replicates: int = 1000,
    seed: int | np.random.Generator | None = None,
    imputed: bool | None = None,
    legacy_python_random: bool = False,
    tie_rtol: float = 1e-12,
    juries: Mapping[str, Mapping[str, Any]] | None = None,
    data_hash: str | None = None,
) -> xr.Dataset:
    """Simulate juries and the welfare their picks give each target population.

    Parameters
    ----------
    data_or_tables
        ``PrismData``, a mapping with ``participants`` and ``ratings`` tables, or
        :class:`JuryTables` (see :func:`jury_tables`).
    countries
        ``"uk"``, ``"us"`` or both (the ``country`` dimension, in this order).
    rules
        Subset of ``("mean", "chosen", "veto")``.
    sizes, pools, skewed_sizes
        The jury schemes (:func:`prism_stats.welfare.results.build_schemes`): the
        representative pool at every size in *sizes*, each skewed pool at every size
        in *skewed_sizes*; default the original seven schemes.
    targets
        Subset of ``("all", "nonmale", "nonwhite", "under45")``.
    n_replicates
        Juries per scheme (original: 1,000).
    seed
        An int, a ``numpy.random.Generator`` (a base seed is drawn from it) or
        ``None`` (fresh entropy); the base seed used is stored in ``attrs["seed"]``.
        With ``legacy_python_random`` an int for ``random.Random`` (default 1).
    imputed
        Use the imputed tables (11c); ``None``: no, or as given :class:`JuryTables` are.
    legacy_python_random
        Replay the original's ``random.seed(1)`` / ``random.choices`` loop; see the
        module docstring for what exact reproduction requires.  Ties are then
        detected by exact comparison, as the original.
    tie_rtol
        Relative tolerance within which scores count as tied (see :func:`pick_best`).
    juries
        Inject the juries instead of drawing them: ``{country: {scheme: labels}}`` with
        ``labels`` an ``(n_replicates, size)`` array of participant ids from the
        scheme's pool.  Schemes not given are drawn.  Tie-breaks still use *seed*.
    data_hash
        Recorded in the attributes (defaults to the data's own hash when known).

    Returns
    -------
    xarray.Dataset
        The shared welfare schema of :mod:`prism_stats.welfare.results`
        (``method="design"``).
    """
    countries = _as_list(countries)
    rules = _as_list(rules)
    for c in countries:
        if c not in COUNTRIES_MRP:
            raise JuryInputError(f"unknown country {c!r}; expected one of {COUNTRIES_MRP}")
    for rule in rules:
        _check_rule(rule)
    targets = list(targets)
    for t in targets:
        if t not in TARGETS:
            raise JuryInputError(f"unknown target {t!r}; expected one of {TARGETS}")
    if len(set(countries)) != len(countries) or len(set(rules)) != len(rules):
        raise JuryInputError("countries and rules must not repeat")
    if not countries or not rules or not targets:
        raise JuryInputError("need at least one country, rule and target")
    n_replicates = int(n_replicates)
    if n_replicates < 1:
        raise JuryInputError(f"n_replicates must be >= 1, got {n_replicates}")
    schemes = build_schemes(sizes, pools, skewed_sizes)
    tables = jury_tables(
        data_or_tables, None if len(countries) > 1 else countries[0], imputed=imputed, rules=rules
    )
    if legacy_python_random and juries:
        raise JuryInputError("injected juries cannot be combined with legacy_python_random")

    pool_pos = {c: {p: tables.pool(c, p) for p in POOLS} for c in countries}
    target_pos = {c: {t: tables.target(c, t) for t in targets} for c in countries}
    for c in countries:
        for s in schemes:
            if pool_pos[c][s.pool].size == 0:
                raise JuryInputError(
                    f"pool {s.pool!r} of {c!r} is empty: cannot draw scheme {s.name}"
                )
        for t, pos in target_pos[c].items():
            if pos.size == 0:
                warnings.warn(
                    f"target {t!r} of {c!r} is empty; its welfare is undefined",
                    RuntimeWarning,
                    stacklevel=2,
                )
    utilities = {rule: tables.utility(rule) for rule in rules}
    n_llm = len(tables.llms)

    # Welfare of each LLM for each target (does not depend on the juries).
    llm_welfare = np.full((len(countries), len(rules), len(targets), n_llm), np.nan)
    for ic, c in enumerate(countries):
        for ir, rule in enumerate(rules):
            for it, t in enumerate(targets):
                llm_welfare[ic, ir, it] = population_welfare(utilities[rule], target_pos[c][t])

    if legacy_python_random:
        legacy_seed = 1 if seed is None else seed
        if isinstance(legacy_seed, np.random.Generator) or not isinstance(
            legacy_seed, (int, np.integer)
        ):
            raise JuryInputError("legacy_python_random needs an int seed (the original used 1)")
        chosen = _legacy_loop(
            tables, countries, rules, targets, schemes, n_replicates, int(legacy_seed), pool_pos
        )
        chosen_dims = ("country", "rule", "target", "scheme", "replicate")
        base_seed, seed_source = int(legacy_seed), "python random.Random (legacy)"
    else:
        base_seed, seed_source = _base_seed(seed)
        injected = _injected(juries, tables, countries, schemes, n_replicates, pool_pos)
        chosen = np.empty((len(countries), len(rules), len(schemes), n_replicates), dtype=np.int16)
        for ic, c in enumerate(countries):
            ckey = COUNTRIES_MRP.index(c)
            for js, s in enumerate(schemes):
                skey = [ckey, POOLS.index(s.pool), s.size]
                drawn = injected.get((c, s.name))
                if drawn is None:
                    rng = np.random.default_rng(
                        np.random.SeedSequence([base_seed, _STREAM_JURY, *skey])
                    )
                    pool = pool_pos[c][s.pool]
                    drawn = pool[rng.integers(0, pool.size, size=(n_replicates, s.size))]
                for ir, rule in enumerate(rules):
                    scores = jury_scores(utilities[rule], drawn, unseen=UNSEEN_VALUE[rule])
                    rng_tie = np.random.default_rng(
                        np.random.SeedSequence([base_seed, _STREAM_TIES, *skey, RULES.index(rule)])
                    )
                    chosen[ic, ir, js] = pick_best(scores, rng_tie, tie_rtol=tie_rtol)
        chosen_dims = ("country", "rule", "scheme", "replicate")

    coords: dict[str, Any] = {
        "country": countries,
        "rule": rules,
        "target": targets,
        "llm": tables.llms,
        "replicate": np.arange(n_replicates),
        **scheme_coords(schemes),
    }
    chosen_coords = {k: v for k, v in coords.items() if k in chosen_dims or k in ("pool", "size")}
    chosen_da = xr.DataArray(chosen, dims=chosen_dims, coords=chosen_coords)
    lw_da = xr.DataArray(
        llm_welfare,
        dims=("country", "rule", "target", "llm"),
        coords={k: coords[k] for k in ("country", "rule", "target", "llm")},
    )
    attrs = {
        "seed": base_seed,
        "seed_source": seed_source,
        "n_replicates": n_replicates,
        "imputed": bool(tables.imputed),
        "legacy_python_random": bool(legacy_python_random),
        "juries_shared_across_targets": not legacy_python_random,
        "juries_shared_across_rules": not legacy_python_random,
        "injected_juries": json.dumps(sorted(f"{c}/{s}" for c, s in (juries_keys(juries)))),
        "tie_rtol": 0.0 if legacy_python_random else float(tie_rtol),
        "unseen_values": dict(UNSEEN_VALUE),
        "veto_threshold": VETO_THRESHOLD,
        "pool_sizes": {c: {p: int(v.size) for p, v in pool_pos[c].items()} for c in countries},
        "target_sizes": {c: {t: int(v.size) for t, v in target_pos[c].items()} for c in countries},
        "n_raters_in_tables": len(tables.participants),
        "report": json.loads(json.dumps(tables.report, default=_jsonable)),
        "data_hash": data_hash if data_hash is not None else tables.data_hash,
        "prism_stats_version": __version__,
        "source": "prism_stats.welfare.juries.run_juries",
    }
    return welfare_dataset(chosen_da, lw_da, method="design", attrs=attrs)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def juries_keys(juries: Mapping[str, Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    """``(country, scheme)`` pairs of an injected-juries mapping."""
    return [(c, s) for c, per in (juries or {}).items() for s in per]


def _injected(
    juries: Mapping[str, Mapping[str, Any]] | None,
    tables: JuryTables,
    countries: list[str],
    schemes: list[Scheme],
    n_replicates: int,
    pool_pos: dict[str, dict[str, np.ndarray]],
) -> dict[tuple[str, str], np.ndarray]:
    out: dict[tuple[str, str], np.ndarray] = {}
    if not juries:
        return out
    position = {p: i for i, p in enumerate(tables.participants)}
    by_name = {s.name: s for s in schemes}
    for c, per in juries.items():
        if c not in countries:
            raise JuryInputError(f"injected juries for country {c!r}, which is not being run")
        for name, labels in per.items():
            if name not in by_name:
                raise JuryInputError(
                    f"injected juries for scheme {name!r}, not among {list(by_name)}"
                )
            s = by_name[name]
            arr = np.asarray(labels, dtype=object)
            if arr.shape != (n_replicates, s.size):
                raise JuryInputError(
                    f"injected juries {c}/{name}: shape {arr.shape}, expected {(n_replicates, s.size)}"
                )
            unknown = [x for x in arr.ravel().tolist() if str(x) not in position]
            if unknown:
                raise JuryInputError(
                    f"injected juries {c}/{name}: unknown participants {unknown[:5]}"
                )
            pos = np.vectorize(lambda x: position[str(x)], otypes=[np.intp])(arr)
            outside = np.setdiff1d(pos, pool_pos[c][s.pool])
            if outside.size:
                ids = [tables.participants[i] for i in outside[:5]]
                raise JuryInputError(
                    f"injected juries {c}/{name}: {ids} not in pool {s.pool!r} of {c!r}"
                )
            out[(c, name)] = pos
    return out


def _legacy_loop(
    tables: JuryTables,
    countries: list[str],
    rules: list[str],
    targets: list[str],
    schemes: list[Scheme],
    n_replicates: int,
    seed: int,
    pool_pos: dict[str, dict[str, np.ndarray]],
) -> np.ndarray:
    """The original loop: rule block > country > target > scheme > replicate.

    Per replicate: ``random.choices(pool, k=size)``, the per-model ``np.nanmean`` over
    the drawn raters in the original's model order (unseen models get the fill
    value), then ``random.choice`` among the models whose score is ``>=`` the maximum.
    The per-row reductions below are the same pairwise sums as ``np.nanmean`` on each
    model's column, so the scores, and hence the ties, are bit-identical.
    """
    rng = random.Random(seed)
    llm_pos = {m: j for j, m in enumerate(tables.llms)}
    model_order = np.array([llm_pos[m] for m in tables.llm_first_seen], dtype=np.intp)
    out = np.empty(
        (len(countries), len(rules), len(targets), len(schemes), n_replicates), dtype=np.int16
    )
    for ir, rule in enumerate(rules):
        # The original's veto rule scores 1 - nanmean(veto); others nanmean(value).
        raw = np.asarray(tables.values.sel(rule=rule).values, dtype=np.float64)[:, model_order]
        fill = UNSEEN_VALUE[rule]
        for ic, c in enumerate(countries):
            for it in range(len(targets)):
                for js, s in enumerate(schemes):
                    pool = pool_pos[c][s.pool]
                    n_pool = len(pool)
                    for k in range(n_replicates):
                        drawn = rng.choices(range(n_pool), k=s.size)
                        block = np.ascontiguousarray(raw[pool[drawn]].T)  # (model, rater)
                        seen = ~np.isnan(block)
                        count = seen.sum(axis=1)
                        total = np.where(seen, block, 0.0).sum(axis=1)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            mean = total / count
                        score = 1.0 - mean if rule == "veto" else mean
                        score = np.where(count > 0, score, fill).tolist()
                        top = max(score)
                        winners = [i for i, v in enumerate(score) if v >= top]
                        out[ic, ir, it, js, k] = model_order[rng.choice(winners)]
    return out
