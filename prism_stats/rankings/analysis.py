"""The preference-diversity analysis in four calls, each returning one result object.

* :func:`classical_rankings` -- battles, pair counts, every classical method with its
  participant bootstrap for the whole sample and every subgroup, and the two Rank
  Centrality normalisations side by side (:class:`ClassicalRankings`);
* :func:`model_rankings` -- rank distributions from the choice model and/or the rating
  model, for census groups (post-stratified, UK and US) and sample groups, with the
  agreement table against the study's ranking (:class:`ModelRankings`);
* :func:`stated_analysis` -- attribute correlations with clustering and the
  stated-vs-revealed model (:class:`StatedAnalysis`);
* :func:`score_use` -- per-rater normalisation, expressivity and centrality, and
  disagreement on identical responses (:class:`ScoreUse`).

:mod:`prism_stats.rankings.outputs` writes each result to a folder; the CLI
(``prism-stats rankings`` / ``stated``) and the pipeline's rankings stages call these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr

from .._display import ResultDisplay
from .battles import RankingError, battles, outcome_shares, pair_counts, win_rate_matrix
from .bootstrap import METHODS
from .centrality import compare_normalisations
from .groups import MIN_GROUP_SIZE, STUDY_GROUPINGS, GroupingSpec, SubgroupRankings, resolve_grouping, subgroup_rankings
from .model_based import (
    agreement_summary,
    agreement_table,
    census_choice_draws,
    census_rating_draws,
    indistinguishable_pairs,
    rank_distribution,
    rank_table,
    sample_group_draws,
)

#: The classical method the model is compared with, and the subgroup figures show.
HEADLINE = "rc_corrected"


@dataclass(repr=False)
class ClassicalRankings(ResultDisplay):
    """The study's rankings of the whole sample and every subgroup.

    Attributes
    ----------
    battles : DataFrame
        Every battle (:func:`~prism_stats.rankings.battles.battles`).
    counts : xarray.Dataset
        Whole-sample pair counts (``wins``, ``ties``, ``battles``) and ``win_rate``.
    subgroups : SubgroupRankings
        Point values, bootstrap medians and intervals, ranks and rank intervals per
        (grouping, group, ranking, llm); grouping ``"all"`` is the whole sample.
    normalisations : DataFrame
        Rank Centrality, original vs corrected normalisation.
    bootstrap : xarray.Dataset or None
        The whole-sample bootstrap replicates (None with ``replicates=0``).
    summary : dict
        Battle counts and outcome shares.
    """

    battles: pd.DataFrame
    counts: xr.Dataset
    subgroups: SubgroupRankings
    normalisations: pd.DataFrame
    bootstrap: xr.Dataset | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def overall(self) -> pd.DataFrame:
        """The whole-sample rows of :attr:`subgroups`."""
        t = self.subgroups.table
        return t[t["grouping"] == "all"].reset_index(drop=True)

    def _display_tables(self) -> dict[str, Any]:
        return {"overall": self.overall, "normalisations": self.normalisations}


def classical_rankings(data: Any, *, by: Sequence[GroupingSpec] | GroupingSpec = tuple(STUDY_GROUPINGS),
                       names: Sequence[str] | None = None, min_group_size: int = MIN_GROUP_SIZE,
                       replicates: int = 1000, seed: int = 0, methods: Sequence[str] = METHODS,
                       level: float = 0.90) -> ClassicalRankings:
    """Battles and every classical ranking, whole sample and subgroups (see the module docstring)."""
    bt = battles(data)
    if bt.empty:
        raise RankingError("no opening battles in the data")
    counts = pair_counts(bt)
    counts["win_rate"] = win_rate_matrix(counts)
    shares = outcome_shares(bt)
    subgroups = subgroup_rankings(data, by, min_group_size=min_group_size, replicates=replicates,
                                  seed=seed, methods=methods, level=level, battle_table=bt, names=names)
    boot = subgroups.bootstraps.get(("all", "all"))
    summary = {"n_battles": len(bt), "n_interactions": int(bt["interaction"].nunique()),
               "n_participants": int(bt["participant"].nunique()),
               "share_a": float(shares["a"]), "share_b": float(shares["b"]), "share_tie": float(shares["tie"]),
               "tie_margin": float(bt.attrs.get("tie_margin", 5.0)),
               "n_llms": int(counts.sizes["llm"])}
    return ClassicalRankings(battles=bt, counts=counts, subgroups=subgroups,
                             normalisations=compare_normalisations(bt), bootstrap=boot, summary=summary)


@dataclass(repr=False)
class ModelRankings(ResultDisplay):
    """Model-based rank distributions and their agreement with the study's ranking.

    Attributes
    ----------
    ranks : DataFrame
        One row per (source, grouping, group, llm): ``expected_rank, p_best, rank_lo,
        rank_hi, n_undecided``. Sources ``choice`` and ``rating``; groupings
        ``census_uk`` / ``census_us`` (post-stratified) or a sample grouping.
    p_rank : DataFrame
        P(rank = k): ``source, grouping, group, llm, rank, p``.
    undecided : DataFrame
        Pairs the draws cannot order (0.05 < P(m beats m') < 0.95).
    agreement, agreement_summary : DataFrame
        The study's point ranks inside the model's 90% intervals (see
        :func:`~prism_stats.rankings.model_based.agreement_table`).
    notes : list of str
        What was not computed and why.
    """

    ranks: pd.DataFrame
    p_rank: pd.DataFrame
    undecided: pd.DataFrame
    agreement: pd.DataFrame
    agreement_summary: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _participant_groups(data: Any, bt: pd.DataFrame, specs: Sequence[GroupingSpec],
                        names: Sequence[str] | None, min_group_size: int,
                        notes: list[str]) -> dict[str, dict[str, list[str]]]:
    """grouping -> group -> participant ids (participant-unit groupings at the minimum size)."""
    out: dict[str, dict[str, list[str]]] = {"all": {"all": sorted(set(bt["participant"].astype(str)))}}
    mapping_names = list(names or [])
    person = bt["participant"].astype(str)
    for spec in specs:
        nm = None if isinstance(spec, str) else (mapping_names.pop(0) if mapping_names else None)
        g = resolve_grouping(data, bt, spec, name=nm)
        if g.unit != "participant":
            notes.append(f"{g.name}: no model-based ranking (no model has an LLM x {g.name} term)")
            continue
        groups = {}
        for label, mask in g.masks.items():
            members = sorted(set(person[mask]))
            if len(members) >= min_group_size:
                groups[label] = members
        out[g.name] = groups
    return out


def _tidy(ds: xr.Dataset, source: str, grouping: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ranks = rank_table(ds, source=source, grouping=grouping)
    p = ds["p_rank"].to_dataframe(name="p").reset_index()
    p.insert(0, "grouping", grouping)
    p.insert(0, "source", source)
    pairs = indistinguishable_pairs(ds)
    pairs.insert(0, "grouping", grouping)
    pairs.insert(0, "source", source)
    return ranks, p, pairs


def model_rankings(data: Any, *, run: Any = None, choice_run: Any = None,
                   by: Sequence[GroupingSpec] | GroupingSpec = tuple(STUDY_GROUPINGS),
                   names: Sequence[str] | None = None, classical: ClassicalRankings | None = None,
                   countries: Sequence[str] = ("uk", "us"), min_group_size: int = MIN_GROUP_SIZE,
                   seed: int = 0, choice_draws: int = 200, choice_sets: int = 400,
                   level: float = 0.90, harmonisation: str = "default",
                   ranking: str = HEADLINE) -> ModelRankings:
    """Rank distributions from the fitted models (see :mod:`prism_stats.rankings.model_based`).

    Parameters
    ----------
    run : Run, optional
        A fitted rating model (``source="rating"``).
    choice_run : ChoiceRun, optional
        A fitted choice model (``source="choice"``).
    classical : ClassicalRankings, optional
        For the agreement table (default: computed without bootstrap).
    choice_draws, choice_sets : int
        Posterior draws and Monte Carlo opening sets of the post-stratified choice
        probabilities (:func:`prism_stats.model.choice.cell_choice_probabilities`).
    """
    if run is None and choice_run is None:
        raise RankingError("model_rankings needs a fitted rating model (run) and/or choice model")
    specs = [by] if isinstance(by, (str, Mapping, pd.Series)) else list(by)
    notes: list[str] = []
    bt = classical.battles if classical is not None else battles(data)
    groups = _participant_groups(data, bt, specs, names, min_group_size, notes)
    frames: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []
    sources = [(s, r) for s, r in (("choice", choice_run), ("rating", run)) if r is not None]
    for source, fitted in sources:
        for country in countries:
            if source == "rating":
                draws = census_rating_draws(fitted, country, data=data, seed=seed, harmonisation=harmonisation)
            else:
                draws = census_choice_draws(fitted, country, draws=choice_draws, n_sets=choice_sets,
                                            seed=seed, harmonisation=harmonisation)
            frames.append(_tidy(rank_distribution(draws, level=level), source, f"census_{country}"))
        post = fitted.posterior
        factors = tuple(f for f in ("age", "gender", "ethnicity", "education", "religion", "english")
                        if f"llm_{f}" in post)
        for grouping, members in groups.items():
            if not members:
                notes.append(f"{source}: grouping {grouping!r} has no group of at least {min_group_size}")
                continue
            draws = sample_group_draws(post, data.participants, members, factors=factors, seed=seed)
            frames.append(_tidy(rank_distribution(draws, level=level), source, grouping))
    ranks = pd.concat([f[0] for f in frames], ignore_index=True)
    p_rank = pd.concat([f[1] for f in frames], ignore_index=True)
    undecided = pd.concat([f[2] for f in frames], ignore_index=True)
    if classical is None:
        classical_table = subgroup_rankings(data, specs, min_group_size=min_group_size, replicates=0,
                                            seed=seed, methods=(ranking,), battle_table=bt, names=names).table
    else:
        classical_table = classical.subgroups.table
    sample_ranks = ranks[~ranks["grouping"].str.startswith("census_")]
    # REP samples are the study's stand-ins for the census populations
    rep = ranks[ranks["grouping"].str.startswith("census_") & (ranks["group"] == "all")].copy()
    rep["group"] = rep["grouping"].str[len("census_"):].str.upper() + " REP"
    rep["grouping"] = "rep"
    agreement = agreement_table(classical_table, pd.concat([sample_ranks, rep], ignore_index=True),
                                ranking=ranking)
    return ModelRankings(ranks=ranks, p_rank=p_rank, undecided=undecided, agreement=agreement,
                         agreement_summary=agreement_summary(agreement), notes=notes,
                         meta={"level": level, "ranking": ranking, "countries": list(countries),
                               "sources": [s for s, _ in sources], "min_group_size": min_group_size,
                               "seed": seed, "choice_draws": choice_draws, "choice_sets": choice_sets})


@dataclass(repr=False)
class StatedAnalysis(ResultDisplay):
    """Attribute correlations (clustered) and, when fitted, the stated-vs-revealed model."""

    correlations: Any
    fit: Any = None

    def dependence(self) -> pd.DataFrame | None:
        return None if self.fit is None else self.fit.summary()


def stated_analysis(data: Any, *, fit: bool = True, attribute_set: str = "performance", chains: int = 2,
                    draws: int = 500, tune: int = 500, seed: int = 20240422,
                    progress: bool = False) -> StatedAnalysis:
    """Correlations with clustering, and (``fit=True``) the hierarchical model."""
    from .stated import attribute_correlations
    from .stated_model import fit_stated

    corr = attribute_correlations(data)
    fitted = fit_stated(data, attribute_set=attribute_set, chains=chains, draws=draws, tune=tune,
                        seed=seed, progress=progress) if fit else None
    return StatedAnalysis(correlations=corr, fit=fitted)


@dataclass(repr=False)
class ScoreUse(ResultDisplay):
    """Scale use per rater and disagreement on identical responses."""

    raters: pd.DataFrame
    disagreement: pd.DataFrame
    sites: pd.DataFrame


def score_use(data: Any) -> ScoreUse:
    """Per-rater expressivity/centrality and the inter- vs intra-rater disagreement."""
    from .score_use import identical_response_disagreement, rater_scale_use

    summary, sites = identical_response_disagreement(data.ratings)
    return ScoreUse(raters=rater_scale_use(data.ratings), disagreement=summary, sites=sites)


__all__ = ["HEADLINE", "ClassicalRankings", "ModelRankings", "ScoreUse", "StatedAnalysis",
           "classical_rankings", "model_rankings", "score_use", "stated_analysis"]
