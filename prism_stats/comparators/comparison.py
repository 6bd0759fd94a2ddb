"""The comparison table: per-LLM raw, REP, raked and MRP means, their ranks and agreement.

:func:`comparison_table` computes, for one country, the raw mean of residents, the
REP-sample mean, the raked mean (clustered SEs, :mod:`prism_stats.weights`) and the MRP
mean, the rank of every LLM under each estimator and the rank correlations;
:func:`compare_tables` is the one writer of its display tables (used for the run folder
and the supplement); :func:`write_country_comparison` rakes, compares and writes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from prism_stats import vocab
from prism_stats._io import write_json_atomic, write_text_atomic
from prism_stats.tabular import (
    MISSING,
    Table,
    format_number,
    interval,
    latex_problems,
    markdown_problems,
)
from prism_stats.weights import (
    WeightingResult,
    default_participant_weights,
    weighted_llm_estimates,
)

from .regressions import ComparatorError

# --- the comparison table ---------------------------------------------------------------------

ESTIMATORS: tuple[str, ...] = ("raw", "rep", "raked", "mrp")
_REP_FLAG = {"uk": "in_uk_rep", "us": "in_us_rep"}


@dataclass(frozen=True)
class Comparison:
    """Per-LLM estimates under the four estimators, ranks and rank correlations.

    ``table`` (index ``llm``): ``n_ratings`` (residents' opening-turn ratings),
    ``raw_mean``, ``raw_se``, ``rep_mean``, ``rep_se``, ``raked_mean``, ``raked_se``,
    ``mrp_mean``, ``mrp_q05``, ``mrp_q95``, ``rank_raw`` ... ``rank_mrp`` (1 = highest
    mean). ``rank_correlations``: one row per pair of estimators with ``n_llms``,
    ``spearman``, ``spearman_p``, ``kendall``, ``kendall_p``.
    """

    country: str
    table: pd.DataFrame
    rank_correlations: pd.DataFrame
    weighting: dict[str, object]
    notes: dict[str, object] = field(default_factory=dict)

    def tables(self) -> list[Table]:
        """The display tables (LLM x estimator, rank correlations) of :func:`comparison_tables`."""
        return comparison_tables({self.country: self.table.reset_index()},
                                 {self.country: self.rank_correlations},
                                 {self.country: {"weighting": self.weighting}})

    def to_markdown(self) -> str:
        """Both tables as Markdown."""
        return "\n".join(t.to_markdown() for t in self.tables())

    def to_latex(self) -> str:
        """Both tables as booktabs LaTeX."""
        return "\n".join(t.to_latex() for t in self.tables())

    def write(self, folder: str | Path, stem: str | None = None) -> list[Path]:
        """Write ``<stem>.csv``, ``<stem>_ranks.csv``, ``<stem>.tex`` and ``<stem>.md``."""
        folder = Path(folder)
        stem = stem or f"compare_{self.country}"
        tex, md = self.to_latex(), self.to_markdown()
        problems = latex_problems(tex) + markdown_problems(md)
        if problems:
            raise ComparatorError(f"comparison table {stem!r} is malformed: {'; '.join(problems)}")
        paths = [
            write_text_atomic(folder / f"{stem}.csv", self.table.reset_index().to_csv(index=False)),
            write_text_atomic(
                folder / f"{stem}_ranks.csv", self.rank_correlations.to_csv(index=False)
            ),
            write_text_atomic(folder / f"{stem}.tex", tex),
            write_text_atomic(folder / f"{stem}.md", md),
        ]
        return paths


def _ranks(values: pd.Series) -> pd.Series:
    return values.rank(ascending=False, method="min")


def rank_correlations(table: pd.DataFrame, estimators: Sequence[str] = ESTIMATORS) -> pd.DataFrame:
    """Spearman and Kendall (tau-b) correlations between the estimators' LLM means.

    Each pair uses the LLMs with both estimates; fewer than 3 gives NaN.
    """
    rows = []
    for a, b in itertools.combinations(estimators, 2):
        x, y = table[f"{a}_mean"], table[f"{b}_mean"]
        ok = x.notna() & y.notna()
        n = int(ok.sum())
        if n >= 3 and x[ok].nunique() > 1 and y[ok].nunique() > 1:
            sp = stats.spearmanr(x[ok], y[ok])
            kt = stats.kendalltau(x[ok], y[ok])
            rows.append((a, b, n, sp.statistic, sp.pvalue, kt.statistic, kt.pvalue))
        else:
            rows.append((a, b, n, math.nan, math.nan, math.nan, math.nan))
    return pd.DataFrame(
        rows,
        columns=[
            "estimator_a",
            "estimator_b",
            "n_llms",
            "spearman",
            "spearman_p",
            "kendall",
            "kendall_p",
        ],
    )


def _unit_weights(ids: pd.Index) -> pd.Series:
    return pd.Series(1.0, index=pd.Index(ids.astype(str), name="participant"))


def comparison_table(
    participants: pd.DataFrame,
    ratings: pd.DataFrame,
    country: str,
    *,
    weighting: WeightingResult,
    poststrat: pd.DataFrame | None = None,
    turn: int = 0,
    se: str = "linearisation",
    n_boot: int = 500,
    rng: np.random.Generator | int | None = None,
    llms: Sequence[str] = vocab.LLM_SHORT_NAMES,
) -> Comparison:
    """Per-LLM raw, REP, raked and MRP means of one country, their ranks and agreement.

    Parameters
    ----------
    participants, ratings
        Tidy tables (``PrismData``).
    country
        ``"uk"`` or ``"us"``.
    weighting
        The raking (or post-stratification) result of the country's residents, e.g.
        :func:`prism_stats.weights.default_participant_weights`.
    poststrat
        The MRP output ``poststrat_<country>.csv`` (columns ``country, group, llm,
        mean, q05, q95, ...``); its ``group == "all"`` rows are used. ``None``: no MRP
        column.
    turn
        The turn whose scores are compared (0: the opening turn).
    se, n_boot, rng
        Standard errors of the raw, REP and raked means (see
        :func:`prism_stats.weights.weighted_llm_estimates`).

    Notes
    -----
    Raw: unweighted mean over residents (``reside_country``). REP: unweighted mean over
    the release's REP sample (``in_uk_rep`` / ``in_us_rep``; membership, not residence,
    defines it). Raked: residents in the weighting sample, weighted by their
    participant's weight. All three use every rating of *turn*; SEs are clustered by
    participant.
    """
    country = country.lower()
    if country not in _REP_FLAG:
        raise ComparatorError(f"unknown country {country!r}; expected 'uk' or 'us'")
    people = participants.set_index(participants["participant"].astype(str))
    iso = vocab.COUNTRY_ISO3[country]
    residents = people.index[
        (people["reside_country"].astype("string") == iso).fillna(False).to_numpy()
    ]
    rep = people.index[people[_REP_FLAG[country]].fillna(False).to_numpy(dtype=bool)]
    outsiders = set(weighting.weights.index.astype(str)) - set(residents)
    if outsiders:
        raise ComparatorError(
            f"the weighting includes {len(outsiders)} participant(s) who are not residents of "
            f"{iso} (e.g. {sorted(outsiders)[:3]}): were the weights computed for {country}?"
        )
    kwargs = {"turn": turn, "se": se, "n_boot": n_boot, "rng": rng, "llms": llms}
    raw = weighted_llm_estimates(ratings, _unit_weights(residents), **kwargs)
    rep_est = weighted_llm_estimates(ratings, _unit_weights(rep), **kwargs)
    raked = weighted_llm_estimates(ratings, weighting, **kwargs)

    table = pd.DataFrame(index=pd.Index(list(llms), name="llm"))
    table["n_ratings"] = raw["n_ratings"]
    table["raw_mean"], table["raw_se"] = raw["mean_rating"], raw["mean_rating_se"]
    table["rep_mean"], table["rep_se"] = rep_est["mean_rating"], rep_est["mean_rating_se"]
    table["raked_mean"], table["raked_se"] = raked["mean_rating"], raked["mean_rating_se"]
    if poststrat is not None:
        missing = {"group", "llm", "mean", "q05", "q95"} - set(poststrat.columns)
        if missing:
            raise ComparatorError(f"poststrat table lacks columns {sorted(missing)}")
        ps = poststrat[poststrat["group"].astype(str) == "all"]
        if "country" in ps:
            ps = ps[ps["country"].astype(str).str.lower() == country]
        if ps["llm"].duplicated().any():
            raise ComparatorError("poststrat table has several 'all' rows for an LLM")
        ps = ps.set_index(ps["llm"].astype(str))
        unknown = sorted(set(ps.index) - set(llms))
        if unknown:
            raise ComparatorError(f"poststrat table names unknown LLMs {unknown}")
        table["mrp_mean"] = ps["mean"].reindex(table.index).astype(float)
        table["mrp_q05"] = ps["q05"].reindex(table.index).astype(float)
        table["mrp_q95"] = ps["q95"].reindex(table.index).astype(float)
    else:
        table["mrp_mean"] = table["mrp_q05"] = table["mrp_q95"] = np.nan
    for e in ESTIMATORS:
        table[f"rank_{e}"] = _ranks(table[f"{e}_mean"])
    return Comparison(
        country=country,
        table=table,
        rank_correlations=rank_correlations(table),
        weighting=weighting.summary(),
        notes={
            "turn": turn,
            "se": se,
            "n_residents": len(residents),
            "n_rep": len(rep),
            "n_ratings_residents": int(raw["n_ratings"].sum()),
            "n_ratings_rep": int(rep_est["n_ratings"].sum()),
        },
    )


def comparison_tables(compare: Mapping[str, pd.DataFrame],
                      ranks: Mapping[str, pd.DataFrame],
                      weights: Mapping[str, Mapping[str, Any]] | None = None) -> list[Table]:
    """Raw vs REP vs raked vs MRP per LLM (one table per country) and the rank correlations.

    *compare*: ``{country: compare_<c>.csv}``; *ranks*: ``{country: compare_<c>_ranks.csv}``;
    *weights*: ``{country: compare_<c>_weights.json}`` (for the caption).
    """
    tables = []
    for c, t in compare.items():
        t = t.sort_values("mrp_mean", ascending=False) if t["mrp_mean"].notna().any() else t

        def mean_se(m: float, s: float) -> str:
            if not np.isfinite(m):
                return MISSING
            return f"{m:.1f} ({s:.1f})" if np.isfinite(s) else f"{m:.1f}"

        def rank(v: float) -> str:
            return MISSING if not np.isfinite(v) else str(int(v))

        display = pd.DataFrame({
            "LLM": t["llm"],
            "n": t["n_ratings"].map(lambda v: f"{int(v):,}"),
            "Raw": [mean_se(m, s) for m, s in zip(t["raw_mean"], t["raw_se"], strict=True)],
            "REP": [mean_se(m, s) for m, s in zip(t["rep_mean"], t["rep_se"], strict=True)],
            "Raked": [mean_se(m, s) for m, s in zip(t["raked_mean"], t["raked_se"], strict=True)],
            "MRP": [interval(m, lo, hi) for m, lo, hi in zip(t["mrp_mean"], t["mrp_q05"], t["mrp_q95"], strict=True)],
            **{f"rank {e}": t[f"rank_{e}"].map(rank) for e in ESTIMATORS},
        })
        w = (weights or {}).get(c, {}).get("weighting", {})
        extra = ""
        if w:
            extra = (f" Raking margins: {', '.join(w.get('margins', []))}; n = {w.get('n')}, Kish "
                     f"design effect {float(w.get('kish_deff', float('nan'))):.2f}.")
        tables.append(Table(
            f"compare_{c}", f"Raw vs REP vs raked vs MRP, {c.upper()}",
            f"{c.upper()}: mean opening-turn rating per LLM under four estimators: raw mean of "
            "residents, REP-sample mean and raked mean (SE clustered by participant), MRP posterior "
            "mean [90% interval]; rank 1 = highest." + extra,
            t.reset_index(drop=True), display=display, align="lrrrrr" + "r" * 4))
    rows = []
    for c, r in ranks.items():
        r = r.copy()
        r.insert(0, "country", c)
        rows.append(r)
    if rows:
        rc = pd.concat(rows, ignore_index=True)
        display = pd.DataFrame({
            "Country": rc["country"].str.upper(),
            "Estimators": [f"{a} vs {b}" for a, b in zip(rc["estimator_a"], rc["estimator_b"], strict=True)],
            "LLMs": rc["n_llms"].map(lambda v: str(int(v))),
            "Spearman": rc["spearman"].map(lambda v: format_number(v, 3)),
            "Kendall": rc["kendall"].map(lambda v: format_number(v, 3)),
        })
        tables.append(Table(
            "compare_rank_correlations", "Rank agreement between estimators",
            "Agreement of the LLM rankings under the four estimators: Spearman rank correlation and "
            "Kendall's tau-b over the LLMs with both estimates.",
            rc, display=display, align="llrrr"))
    return tables


def write_country_comparison(
    out_dir: str | Path,
    data,
    country: str,
    poststrat: pd.DataFrame,
    *,
    harmonisation: str = "default",
    bounds: tuple[float, float] | None = None,
    se: str = "linearisation",
    n_boot: int = 500,
    seed: int = 20240101,
) -> tuple[Comparison, WeightingResult, list[Path]]:
    """Rake a country's residents, build its comparison table and write every output.

    Writes ``compare_<country>.csv`` / ``_ranks.csv`` / ``.tex`` / ``.md`` (see
    :meth:`Comparison.write`), the weighting summary ``compare_<country>_weights.json``
    and the balance table ``compare_<country>_balance.csv``. Shared by the ``compare``
    command and the pipeline's compare stage.
    """
    out_dir = Path(out_dir)
    weighting = default_participant_weights(data.participants, country,
                                            harmonisation=harmonisation, bounds=bounds)
    comparison = comparison_table(data.participants, data.ratings, country, weighting=weighting,
                                  poststrat=poststrat, se=se, n_boot=n_boot, rng=seed)
    written = [Path(p) for p in comparison.write(out_dir)]
    written.append(write_json_atomic(out_dir / f"compare_{country}_weights.json", {
        "weighting": comparison.weighting, "notes": comparison.notes,
        "harmonisation": harmonisation, "data_hash": getattr(data, "data_hash", None)}))
    written.append(write_text_atomic(out_dir / f"compare_{country}_balance.csv",
                                     weighting.balance.to_csv(index=False)))
    return comparison, weighting, written
