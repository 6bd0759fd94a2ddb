"""Rank distributions with uncertainty from the fitted models, and where they meet the study's.

Two models give an answer to "which LLM does group G prefer?", draw by draw:

* the **rating model** (:class:`prism_stats.model.Run`): the expected opening-turn
  rating of each LLM;
* the **choice model** (:class:`prism_stats.model.choice.ChoiceRun`): how often each LLM
  is picked as best of a random opening set (census groups), or its choice utility.

and for two kinds of group:

* **census groups, post-stratified** (``country`` uk/us x ``all, male, nonmale, white,
  nonwhite, under45, over45``): the rating model through
  :func:`prism_stats.poststrat.poststratify`, the choice model through
  :func:`prism_stats.model.choice.cell_choice_probabilities` weighted by the census
  (:func:`prism_stats.poststrat.group_means`) -- no MRP is re-implemented here;
* **sample groups** (any grouping of :mod:`prism_stats.rankings.groups` whose unit is the
  participant): the LLM-specific part of the linear predictor,
  ``llm_effect[m] + sum_f llm_f[m, level_f(p)]``, averaged over the group's members
  (through the group's share of each level). Terms common to all LLMs cancel in the
  ranks. A model only separates groups through the factors it crosses with the LLM
  (age, gender, ethnicity by default): its ranking for, say, religion groups differs
  from the overall one only by their age/gender/ethnicity composition. Groupings by
  conversation type are therefore not given a model-based ranking (no model has an LLM
  x conversation-type term), and the table says so.

From the draws (:func:`rank_distribution`): ``p_rank`` P(rank = k), ``expected_rank``,
``p_best``, the 90% rank interval (``rank_lo``, ``rank_hi``: the 5% and 95% quantiles of
the rank) and ``p_beats`` P(m ranks above m'). :func:`agreement_table` puts the study's
point ranking of every group beside these intervals; :func:`indistinguishable_pairs`
lists the pairs the data cannot order (0.05 < P(m beats m') < 0.95).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import census
from ..model.predict import stacked
from ..model.spec import DEMOGRAPHIC_COLUMNS
from .battles import RankingError

#: Probability bounds inside which two LLMs are "not told apart".
UNDECIDED: tuple[float, float] = (0.05, 0.95)


def _samples(da: xr.DataArray) -> xr.DataArray:
    dims = [d for d in ("chain", "draw") if d in da.dims]
    if dims:
        da = da.stack(sample=dims)
    if "sample" not in da.dims:
        raise RankingError("model draws need chain/draw or sample dims")
    return da.reset_index("sample", drop=True) if "sample" in da.indexes else da


def rank_distribution(values: xr.DataArray, *, level: float = 0.90) -> xr.Dataset:
    """Rank distributions of LLMs from posterior draws (higher value = better rank).

    Parameters
    ----------
    values : DataArray
        Dims ``llm``, sample dims (``chain``/``draw`` or ``sample``) and optionally
        ``group`` (any other dims are kept as they are).
    level : float
        Rank interval level (0.90: the 5% and 95% quantiles of the rank).

    Returns
    -------
    xarray.Dataset
        ``p_rank`` (..., llm, rank), ``expected_rank``, ``p_best``, ``rank_lo``,
        ``rank_hi`` (..., llm) and ``p_beats`` (..., llm, opponent).
    """
    v = _samples(values)
    other = [d for d in v.dims if d not in ("llm", "sample")]
    v = v.transpose(*other, "llm", "sample")
    arr = v.values  # (..., M, S)
    M = arr.shape[-2]
    ranks = M - np.argsort(np.argsort(arr, axis=-2), axis=-2)  # 1 = best (continuous: no ties)
    p_rank = np.stack([(ranks == k).mean(axis=-1) for k in range(1, M + 1)], axis=-1)
    cdf = np.cumsum(p_rank, axis=-1)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    rank_lo = 1 + (cdf < lo_q - 1e-12).sum(axis=-1)
    rank_hi = 1 + (cdf < hi_q - 1e-12).sum(axis=-1)
    beats = (arr[..., :, None, :] > arr[..., None, :, :]).mean(axis=-1)
    llms = [str(x) for x in v["llm"].values]
    coords = {d: v[d].values for d in other}
    base = (*other, "llm")
    ds = xr.Dataset(
        {
            "p_rank": ((*base, "rank"), p_rank),
            "expected_rank": (base, ranks.mean(axis=-1)),
            "p_best": (base, (ranks == 1).mean(axis=-1)),
            "rank_lo": (base, rank_lo.astype(float)),
            "rank_hi": (base, rank_hi.astype(float)),
            "p_beats": ((*base, "opponent"), beats),
        },
        coords={**coords, "llm": llms, "rank": np.arange(1, M + 1), "opponent": llms},
    )
    ds.attrs.update(level=level, n_samples=int(arr.shape[-1]))
    return ds


def rank_table(ds: xr.Dataset, **labels: str) -> pd.DataFrame:
    """One row per (group, llm): expected rank, P(best), rank interval, undecided rivals.

    ``n_undecided``: rivals m' with ``0.05 < P(m beats m') < 0.95``. Extra keyword
    arguments become constant columns (e.g. ``source="choice"``).
    """
    lo, hi = UNDECIDED
    undecided = ((ds["p_beats"] > lo) & (ds["p_beats"] < hi)).sum("opponent")
    table = xr.Dataset({
        "expected_rank": ds["expected_rank"], "p_best": ds["p_best"],
        "rank_lo": ds["rank_lo"], "rank_hi": ds["rank_hi"], "n_undecided": undecided,
    }).to_dataframe().reset_index()
    for k, v in reversed(list(labels.items())):
        table.insert(0, k, v)
    return table


def indistinguishable_pairs(ds: xr.Dataset, bounds: tuple[float, float] = UNDECIDED) -> pd.DataFrame:
    """Pairs (m, m') the draws cannot order: ``bounds[0] < P(m beats m') < bounds[1]``.

    One row per unordered pair (m listed first when its expected rank is better; equal
    expected ranks: alphabetical).
    """
    p = ds["p_beats"].to_dataframe().reset_index()
    er = ds["expected_rank"].to_dataframe().reset_index()
    keys = [c for c in er.columns if c not in ("llm", "expected_rank")]
    p = p.merge(er, on=[*keys, "llm"]).merge(
        er.rename(columns={"llm": "opponent", "expected_rank": "opponent_expected_rank"}),
        on=[*keys, "opponent"])
    first = (p["expected_rank"] < p["opponent_expected_rank"]) | (
        (p["expected_rank"] == p["opponent_expected_rank"]) & (p["llm"].astype(str) < p["opponent"].astype(str)))
    keep = (p["llm"] != p["opponent"]) & first
    keep &= (p["p_beats"] > bounds[0]) & (p["p_beats"] < bounds[1])
    return p.loc[keep, [*keys, "llm", "opponent", "p_beats"]].reset_index(drop=True)


# --- draws of each source -----------------------------------------------------------------------


def census_rating_draws(run: Any, country: str, *, data: Any = None, seed: int = 0,
                        harmonisation: str = "default") -> xr.DataArray:
    """Post-stratified expected ratings (chain, draw, llm, group) of one country (MRP)."""
    from ..poststrat import poststratify

    return poststratify(run, country, data=data, seed=seed, harmonisation=harmonisation).group_mean


def census_choice_draws(choice_run: Any, country: str, *, draws: int = 200, n_sets: int = 400,
                        seed: int = 0, harmonisation: str = "default") -> xr.DataArray:
    """Post-stratified P(picked as best of a random opening set) (sample, llm, group)."""
    from ..model.choice import cell_choice_probabilities
    from ..poststrat import group_means

    cells = cell_choice_probabilities(choice_run, country, harmonisation=harmonisation, draws=draws,
                                      n_sets=n_sets, seed=seed)
    frame = census.frame(country, harmonisation)
    return group_means(cells, frame, census.group_masks(frame))


def _level_shares(people: pd.DataFrame, factor: str, levels: Sequence[str]) -> np.ndarray:
    column = DEMOGRAPHIC_COLUMNS[factor]
    counts = people[column].astype(str).value_counts()
    shares = counts.reindex([str(x) for x in levels], fill_value=0).to_numpy(dtype=float)
    total = len(people)
    return shares / total if total else shares


def sample_group_draws(posterior: xr.Dataset, participants: pd.DataFrame,
                       groups: Mapping[str, Sequence[str]], *,
                       factors: Sequence[str] = ("age", "gender", "ethnicity"),
                       max_draws: int | None = 1000, seed: int = 0) -> xr.DataArray:
    """The LLM-specific linear predictor averaged over each group's members.

    Parameters
    ----------
    posterior : Dataset
        Draws with ``llm_effect`` (chain, draw, llm) and ``llm_<factor>`` (chain, draw,
        llm, <factor>) for the factors present (rating or choice model).
    participants : DataFrame
        The tidy participants table.
    groups : mapping
        Group label -> participant ids.
    max_draws : int, optional
        Thin to at most this many draws (evenly spaced; None: all).

    Returns
    -------
    DataArray (sample, llm, group)
    """
    base = stacked(posterior, "llm_effect")  # (S, M)
    S = base.shape[0]
    pick = np.arange(S) if max_draws is None or S <= max_draws else \
        np.unique(np.linspace(0, S - 1, max_draws).round().astype(int))
    base = base[pick]
    people = participants.set_index(participants["participant"].astype(str))
    out = np.zeros((len(pick), base.shape[1], len(groups)))
    for gi, (label, members) in enumerate(groups.items()):
        ids = [str(p) for p in members]
        missing = sorted(set(ids) - set(people.index))
        if missing:
            raise RankingError(f"group {label!r}: unknown participant(s) {missing[:3]}")
        if not ids:
            raise RankingError(f"group {label!r} has no members")
        sub = people.loc[ids]
        value = base.copy()
        for f in factors:
            name = f"llm_{f}"
            if name not in posterior:
                continue
            levels = [str(x) for x in posterior[f].values]
            value += stacked(posterior, name)[pick] @ _level_shares(sub, f, levels)
        out[:, :, gi] = value
    return xr.DataArray(out, dims=("sample", "llm", "group"),
                        coords={"sample": pick, "llm": [str(m) for m in posterior["llm"].values],
                                "group": list(groups)}, name="llm_score")


# --- the comparison with the study's rankings --------------------------------------------------


def agreement_table(classical: pd.DataFrame, model: pd.DataFrame, *,
                    ranking: str = "rc_corrected") -> pd.DataFrame:
    """The study's point rank of every (grouping, group, llm) beside the model's interval.

    Parameters
    ----------
    classical : DataFrame
        :attr:`SubgroupRankings.table <prism_stats.rankings.groups.SubgroupRankings.table>`.
    model : DataFrame
        :func:`rank_table` rows with ``source``, ``grouping``, ``group`` and ``llm``.
    ranking : str
        The classical method compared (default: corrected Rank Centrality).

    Returns
    -------
    DataFrame
        ``source, grouping, group, llm, study_rank, study_rank_lo, study_rank_hi,
        expected_rank, rank_lo, rank_hi, p_best, n_undecided, inside`` (the study's point
        rank lies in the model's interval), sorted by group and expected rank.
    """
    c = classical[classical["ranking"] == ranking]
    cols = {"rank": "study_rank", "rank_lo": "study_rank_lo", "rank_hi": "study_rank_hi"}
    c = c[["grouping", "group", "llm", *[k for k in cols if k in c.columns]]].rename(columns=cols)
    merged = model.merge(c, on=["grouping", "group", "llm"], how="inner")
    merged["inside"] = (merged["study_rank"] >= merged["rank_lo"]) & (merged["study_rank"] <= merged["rank_hi"])
    order = ["source", "grouping", "group", "llm", "study_rank", "study_rank_lo", "study_rank_hi",
             "expected_rank", "rank_lo", "rank_hi", "p_best", "n_undecided", "inside"]
    merged = merged[[c for c in order if c in merged.columns]]
    merged.attrs["ranking"] = ranking
    return merged.sort_values(["source", "grouping", "group", "expected_rank"], kind="stable").reset_index(drop=True)


def agreement_summary(agreement: pd.DataFrame) -> pd.DataFrame:
    """Per (source, grouping, group): LLMs ranked, share inside, mean interval width,
    and the LLMs that could be best (model 90% rank interval reaching rank 1)."""
    rows = []
    for (source, grouping, group), sub in agreement.groupby(["source", "grouping", "group"], sort=False):
        rows.append({
            "source": source, "grouping": grouping, "group": group, "n_llms": len(sub),
            "share_inside": float(sub["inside"].mean()),
            "mean_interval_width": float((sub["rank_hi"] - sub["rank_lo"] + 1).mean()),
            "could_be_best": ", ".join(sub.loc[sub["rank_lo"] == 1, "llm"].astype(str)),
            "study_best": ", ".join(sub.loc[sub["study_rank"] == 1, "llm"].astype(str)),
        })
    return pd.DataFrame(rows)
