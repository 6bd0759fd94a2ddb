"""Every classical ranking of one set of battles, with a participant bootstrap.

Methods (:data:`METHODS`; higher is better for all):

``win_rate``        average pairwise win rate (ties as non-wins; SPEC §3.7)
``raw_wins``        comparisons won, a tie counted for both (the study's raw ordering)
``elo``             online Elo (K 4, base 10, scale 400, start 1000), battles in order
``mle_elo``         the study's L2-penalised MLE-Elo, flan-t5-xxl = 800
``bradley_terry``   the same without the penalty (NaN where not estimable)
``rc_original``     Rank Centrality with the original's normalisation (SPEC §5.4)
``rc_corrected``    Rank Centrality, corrected normalisation

**Bootstrap.** A replicate draws as many participants as there are, with replacement
(all battles of a drawn participant come along, once per draw), and recomputes every
method on the pooled battles. Resampling participants rather than battles (as the
original's ``get_bootstrap_result`` did) respects that a participant's battles share
their scale use and taste. Online Elo sees the drawn participants' battles in draw
order (each participant's in their original order). The random stream is
``numpy.random.default_rng(SeedSequence(seed))``: the same seed gives the same
replicates. Ranks are 1 = best, ties share the smallest rank.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .battles import (
    RankingError,
    average_win_rate,
    battle_codes,
    count_arrays,
    counts_dataset,
    llms_in,
    raw_win_totals,
)
from .centrality import rank_centrality, rank_centrality_batch
from .elo import (
    ANCHOR,
    anchor_batch,
    bradley_terry,
    elo_pass,
    elo_resampled,
    logistic_elo_batch,
    mle_elo,
)

METHODS: tuple[str, ...] = (
    "win_rate", "raw_wins", "elo", "mle_elo", "bradley_terry", "rc_original", "rc_corrected",
)
#: What each method's value is, for captions.
METHOD_LABELS: dict[str, str] = {
    "win_rate": "average pairwise win rate",
    "raw_wins": "comparisons won (ties for both)",
    "elo": "online Elo",
    "mle_elo": "MLE-Elo (L2, C = 1)",
    "bradley_terry": "Bradley-Terry MLE (no penalty)",
    "rc_original": "Rank Centrality (original normalisation)",
    "rc_corrected": "Rank Centrality (corrected)",
}
DEFAULT_REPLICATES = 1000


def _check_methods(methods: Sequence[str]) -> list[str]:
    methods = list(methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise RankingError(f"unknown ranking method(s) {unknown}; choose from {list(METHODS)}")
    return methods


def _rc_orders(wins: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Item order of the original normalisation without a battle sequence: most wins first."""
    return np.argsort(-(wins + ties).sum(axis=-1), axis=-1, kind="stable")


def ratings_batch(wins: np.ndarray, ties: np.ndarray, names: list[str],
                  methods: Sequence[str]) -> dict[str, np.ndarray]:
    """Every order-free method (online Elo excluded) on stacked count tables (R, M, M) -> (R, M).

    The regression methods use :func:`~prism_stats.rankings.elo.logistic_elo_batch`.
    """
    out: dict[str, np.ndarray] = {}
    n_battles = wins + np.swapaxes(wins, -1, -2) + ties
    for m in methods:
        if m == "win_rate":
            with _quiet():
                rate = np.where(n_battles > 0, wins / np.where(n_battles > 0, n_battles, 1), np.nan)
                idx = np.arange(rate.shape[-1])
                rate[..., idx, idx] = np.nan
                out[m] = np.nanmean(rate, axis=-1)
        elif m == "raw_wins":
            out[m] = (wins + ties).sum(axis=-1)
        elif m in ("mle_elo", "bradley_terry"):
            beta = logistic_elo_batch(wins, ties, penalised=(m == "mle_elo"))
            out[m] = anchor_batch(beta, names, ANCHOR)
        elif m in ("rc_original", "rc_corrected"):
            orders = _rc_orders(wins, ties) if m == "rc_original" else None
            out[m] = rank_centrality_batch(wins + ties, normalisation=m[3:], orders=orders)
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's all-NaN / empty-slice warnings (NaN is the documented answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def point_ratings(battle_table: pd.DataFrame, *, methods: Sequence[str] = METHODS,
                  llms: Any = None) -> pd.DataFrame:
    """Every method's value per LLM on the full battles (index ``llm``, one column per method).

    ``rc_original`` uses the original's item order (first appearance among the
    comparisons, :func:`~prism_stats.rankings.battles.winner_order`).
    """
    methods = _check_methods(methods)
    names = llms_in(battle_table, llms)
    if len(names) < 2:
        raise RankingError("rankings need battles between at least two LLMs")
    a, b, outcome = battle_codes(battle_table, names)
    counts = counts_dataset(*count_arrays(a, b, outcome, len(names)), names)
    values: dict[str, np.ndarray] = {}
    for m in methods:
        if m == "win_rate":
            values[m] = average_win_rate(counts).reindex(names).to_numpy()
        elif m == "raw_wins":
            values[m] = raw_win_totals(counts).reindex(names).to_numpy()
        elif m == "elo":
            values[m] = elo_pass(a, b, outcome, np.arange(len(a)), len(names))
        elif m == "mle_elo":
            values[m] = mle_elo(counts).to_numpy()
        elif m == "bradley_terry":
            values[m] = bradley_terry(counts).to_numpy()
        else:
            values[m] = rank_centrality(battle_table, normalisation=m[3:], llms=names).to_numpy()
    table = pd.DataFrame({m: values[m] for m in methods}, index=pd.Index(names, name="llm"))
    table.attrs["n_battles"] = len(battle_table)
    return table


def rank_values(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Ranks along *axis* (1 = highest value; ties share the smallest rank; NaN stays NaN)."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    ranks = stats.rankdata(np.where(finite, -v, np.inf), method="min", axis=axis).astype(float)
    ranks[~finite] = np.nan
    return ranks


def bootstrap_ratings(battle_table: pd.DataFrame, *, replicates: int = DEFAULT_REPLICATES,
                      seed: int | np.random.SeedSequence = 0, methods: Sequence[str] = METHODS,
                      llms: Any = None) -> xr.Dataset:
    """Participant-bootstrap replicates of every method.

    *seed* is an int or a ``numpy.random.SeedSequence``; the same seed gives the same
    replicates.

    Returns
    -------
    xarray.Dataset
        ``rating`` (replicate, ranking, llm) and ``rank`` (same dims; 1 = best), with
        attrs ``seed``, ``replicates``, ``n_participants``, ``n_battles``.
    """
    methods = _check_methods(methods)
    if replicates < 1:
        raise RankingError(f"replicates must be >= 1, got {replicates}")
    if "participant" not in battle_table.columns or battle_table["participant"].isna().any():
        raise RankingError("the participant bootstrap needs a participant for every battle")
    names = llms_in(battle_table, llms)
    M = len(names)
    a, b, outcome = battle_codes(battle_table, names)
    p_codes, people = pd.factorize(battle_table["participant"].astype(str))
    P = len(people)
    # battles grouped by participant (stable: each participant's battles keep their order)
    by_person = np.argsort(p_codes, kind="stable")
    starts = np.searchsorted(p_codes[by_person], np.arange(P))
    ends = np.searchsorted(p_codes[by_person], np.arange(P), side="right")
    cell = p_codes * M * M
    wins_p = np.zeros(P * M * M)
    np.add.at(wins_p, cell[outcome == 0] + a[outcome == 0] * M + b[outcome == 0], 1.0)
    np.add.at(wins_p, cell[outcome == 1] + b[outcome == 1] * M + a[outcome == 1], 1.0)
    ties_p = np.zeros(P * M * M)
    t = outcome == 2
    np.add.at(ties_p, cell[t] + a[t] * M + b[t], 1.0)
    wins_p = wins_p.reshape(P, M * M)
    ties_p = ties_p.reshape(P, M, M)
    ties_p = (ties_p + ties_p.transpose(0, 2, 1)).reshape(P, M * M)

    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    rng = np.random.default_rng(seq)
    drawn = rng.integers(0, P, size=(replicates, P))
    flat = (np.arange(replicates)[:, None] * P + drawn).ravel()
    n_draws = np.bincount(flat, minlength=replicates * P).reshape(replicates, P).astype(float)
    wins = (n_draws @ wins_p).reshape(replicates, M, M)
    ties = (n_draws @ ties_p).reshape(replicates, M, M)
    from threadpoolctl import threadpool_limits

    # tiny matrices: BLAS threads only add contention
    with threadpool_limits(limits=1, user_api="blas"):
        values = ratings_batch(wins, ties, names, [m for m in methods if m != "elo"])
    if "elo" in methods:
        values["elo"] = elo_resampled(a, b, outcome, by_person, starts, ends, drawn, M)
    out = np.stack([values[m] for m in methods], axis=1)
    coords = {"replicate": np.arange(replicates), "ranking": methods, "llm": names}
    ds = xr.Dataset({"rating": (("replicate", "ranking", "llm"), out),
                     "rank": (("replicate", "ranking", "llm"), rank_values(out, axis=2))},
                    coords=coords)
    ds.attrs.update(seed=str(seq.entropy), replicates=int(replicates), n_participants=int(P),
                    n_battles=len(battle_table), unit="participant")
    return ds


def summarise_bootstrap(point: pd.DataFrame, boot: xr.Dataset, *, level: float = 0.90) -> pd.DataFrame:
    """Per (method, llm): point value and rank, bootstrap median and interval, rank interval.

    Columns ``method, llm, value, rank, median, lo, hi, rank_median, rank_lo, rank_hi,
    p_top, n_failed`` (``lo``/``hi`` and the rank bounds are the central *level*
    bootstrap interval; ``p_top``: share of replicates ranking the LLM first;
    ``n_failed``: replicates where the method was not estimable).
    """
    q = [(1 - level) / 2, 0.5, 1 - (1 - level) / 2]
    methods = [str(m) for m in boot["ranking"].values if str(m) in point.columns]
    llms = [str(m) for m in boot["llm"].values]
    vals = boot["rating"].sel(ranking=methods).transpose("replicate", "ranking", "llm").values
    ranks = boot["rank"].sel(ranking=methods).transpose("replicate", "ranking", "llm").values
    with _quiet():
        vq = np.nanquantile(vals, q, axis=0)  # (3, K, M)
        rq = np.nanquantile(ranks, q, axis=0, method="inverted_cdf")
    ok = np.isfinite(ranks)
    p_top = np.where(ok.any(axis=0), (ranks == 1).sum(axis=0) / np.maximum(ok.sum(axis=0), 1), np.nan)
    point_vals = point.loc[llms, methods].to_numpy().T  # (K, M)
    point_rank = rank_values(point_vals, axis=1)
    rows = []
    for k, method in enumerate(methods):
        for j, llm in enumerate(llms):
            rows.append({
                "ranking": method, "llm": llm, "value": point_vals[k, j], "rank": point_rank[k, j],
                "median": vq[1, k, j], "lo": vq[0, k, j], "hi": vq[2, k, j],
                "rank_median": rq[1, k, j], "rank_lo": rq[0, k, j], "rank_hi": rq[2, k, j],
                "p_top": p_top[k, j], "n_failed": int((~ok[:, k, j]).sum()),
            })
    table = pd.DataFrame(rows)
    table.attrs.update(level=level, replicates=int(boot.sizes["replicate"]), seed=boot.attrs.get("seed"))
    return table
