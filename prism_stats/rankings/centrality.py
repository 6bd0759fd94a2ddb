"""Rank Centrality (Negahban et al.) as the original study computed it, and corrected.

The original (SPEC §3.6, ``ranking.compute_rank_centrality``) builds a Markov chain on
the LLMs from the comparisons (winner, loser) -- a tie is entered in both directions:

1. ``A`` (n x n) starts at the prior ``alpha`` (1) off the diagonal, 0 on it, and
   ``A[w, l] += 1`` for each comparison won by w against l;
2. each off-diagonal entry is divided by a *pair total* and by ``d_max = n - 1``;
3. the diagonal gets ``1 - column sum`` (a column-stochastic matrix: ``A[i, j]`` is
   the probability of moving from j to i);
4. the score vector is ``A^1000 @ uniform`` (sums to 1; the uniform level is 1/n).

The two normalisations differ only in step 2 (SPEC §5.4):

``"original"`` (the published scores)
    The pair totals are ``A[triu] + A[tril] + 1e-6``, the strictly upper and strictly
    lower triangles **each flattened in row-major order** and added elementwise, and
    the k-th upper and the k-th lower entry are both divided by the k-th total. Row-major
    order pairs (i, j) with (j, i) only for n <= 3: for n = 4 the third upper entry
    (0, 3) is divided by ``A[0, 3] + A[2, 1]``. The result depends on the order of the
    LLMs, which the original takes from its comparisons (most wins first:
    :func:`prism_stats.rankings.battles.winner_order`).

``"corrected"``
    ``A[i, j] / (A[i, j] + A[j, i])``: the share of the comparisons between i and j
    that i won, as Rank Centrality intends. Order-free; its fixed point is the stationary
    distribution of ``choix.rank_centrality(n, data, alpha)`` (which the tests check).

Scores are returned as a ``pandas.Series`` over the LLM short names (vocabulary order)
with ``attrs`` ``normalisation``, ``alpha``, ``iterations`` and ``residual``
(``max |A s - s|``: how far 1000 steps are from the fixed point).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .battles import RankingError, pair_counts, win_counts, winner_order

NORMALISATIONS: tuple[str, ...] = ("original", "corrected")
#: Added to the original's pair totals "to prevent division by zero".
_EPS = 1e-6


def transition_matrix(comparisons: np.ndarray, *, alpha: float = 1.0,
                      normalisation: str = "corrected") -> np.ndarray:
    """The column-stochastic Rank Centrality matrix of a comparison-count matrix.

    Parameters
    ----------
    comparisons : (..., n, n) array
        ``comparisons[w, l]`` = comparisons won by w against l (ties in both cells), in
        the item order the normalisation should see; leading dims are a stack.
    alpha : float
        Prior count added to every off-diagonal cell.
    normalisation : {"original", "corrected"}
    """
    if normalisation not in NORMALISATIONS:
        raise RankingError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    C = np.asarray(comparisons, dtype=float)
    n = C.shape[-1]
    if C.ndim < 2 or C.shape[-2] != n or n < 2:
        raise RankingError("Rank Centrality needs a square comparison matrix of at least 2 items")
    off = ~np.eye(n, dtype=bool)
    A = np.where(off, C + alpha, 0.0)
    if normalisation == "original":
        upper, lower = np.triu_indices(n, 1), np.tril_indices(n, -1)
        totals = A[..., upper[0], upper[1]] + A[..., lower[0], lower[1]] + _EPS
        A[..., upper[0], upper[1]] /= totals
        A[..., lower[0], lower[1]] /= totals
    else:
        pair = A + np.swapaxes(A, -1, -2)
        A = np.divide(A, pair, out=np.zeros_like(A), where=pair > 0)
    A /= n - 1  # d_max: every pair is connected through the prior
    diag = 1.0 - A.sum(axis=-2)
    idx = np.arange(n)
    A[..., idx, idx] = diag
    return A


def rank_centrality_array(comparisons: np.ndarray, *, alpha: float = 1.0,
                          normalisation: str = "corrected", iterations: int = 1000,
                          order: Sequence[int] | None = None) -> tuple[np.ndarray, float]:
    """Scores (in the input's item order) and the fixed-point residual.

    *order* is the item order the normalisation sees (a permutation of the input's
    indices; default the input order). Only the original normalisation depends on it.
    """
    C = np.asarray(comparisons, dtype=float)
    n = C.shape[0]
    perm = np.arange(n) if order is None else np.asarray(order, dtype=int)
    if sorted(perm.tolist()) != list(range(n)):
        raise RankingError("order must be a permutation of the items")
    A = transition_matrix(C[np.ix_(perm, perm)], alpha=alpha, normalisation=normalisation)
    s = np.linalg.matrix_power(A, int(iterations)) @ np.full(n, 1.0 / n)
    residual = float(np.max(np.abs(A @ s - s)))
    out = np.empty(n)
    out[perm] = s
    return out, residual


def rank_centrality_batch(comparisons: np.ndarray, *, alpha: float = 1.0,
                          normalisation: str = "corrected", iterations: int = 1000,
                          orders: np.ndarray | None = None) -> np.ndarray:
    """Scores for a stack of comparison matrices (R, n, n) -> (R, n), input item order.

    ``orders`` (R, n): the item order each matrix's normalisation sees (default: input
    order); only the original normalisation depends on it.
    """
    C = np.asarray(comparisons, dtype=float)
    R, n, _ = C.shape
    if orders is None:
        orders = np.tile(np.arange(n), (R, 1))
    rows = np.arange(R)[:, None, None]
    permuted = C[rows, orders[:, :, None], orders[:, None, :]]
    A = transition_matrix(permuted, alpha=alpha, normalisation=normalisation)
    s = np.linalg.matrix_power(A, int(iterations)) @ np.full(n, 1.0 / n)
    out = np.empty_like(s)
    np.put_along_axis(out, orders, s, axis=1)
    return out


def _comparisons_and_order(x: Any, llms: Any, normalisation: str) -> tuple[np.ndarray, list[str], list[int]]:
    if isinstance(x, pd.DataFrame):
        counts = pair_counts(x, llms)
        names = [str(m) for m in counts["llm"].values]
        order_names = winner_order(x) if normalisation == "original" else names
        order_names = [m for m in order_names if m in names] + [m for m in names if m not in order_names]
    elif isinstance(x, xr.Dataset):
        counts = x
        names = [str(m) for m in counts["llm"].values]
        totals = win_counts(counts).sum("opponent").values
        # Without the battle sequence: most wins first, equal totals in vocabulary order.
        order_names = [names[i] for i in np.argsort(-totals, kind="stable")]
    else:
        raise RankingError("expected a battle table (DataFrame) or pair counts (xarray.Dataset)")
    comparisons = win_counts(counts).values
    index = {m: i for i, m in enumerate(names)}
    return comparisons, names, [index[m] for m in order_names]


def rank_centrality(x: Any, *, alpha: float = 1.0, normalisation: str = "corrected",
                    iterations: int = 1000, llms: Any = None) -> pd.Series:
    """Rank Centrality scores per LLM (sum 1; higher is better).

    Parameters
    ----------
    x : DataFrame or xarray.Dataset
        A battle table (:func:`~prism_stats.rankings.battles.battles`) or its pair counts
        (:func:`~prism_stats.rankings.battles.pair_counts`). With counts only, the
        original normalisation orders LLMs by win totals (equal totals in vocabulary
        order) instead of by first appearance.
    alpha : float
        Prior count per pair (1 in the study).
    normalisation : {"corrected", "original"}
        See the module docstring.
    iterations : int
        Power of the transition matrix (1000 in the study).
    llms : sequence of str, optional
        LLMs to rank (default: those in the battles).
    """
    comparisons, names, order = _comparisons_and_order(x, llms, normalisation)
    scores, residual = rank_centrality_array(comparisons, alpha=alpha, normalisation=normalisation,
                                             iterations=iterations, order=order)
    out = pd.Series(scores, index=pd.Index(names, name="llm"), name=f"rc_{normalisation}")
    out.attrs.update(normalisation=normalisation, alpha=float(alpha), iterations=int(iterations),
                     residual=residual)
    return out


def compare_normalisations(x: Any, *, alpha: float = 1.0, iterations: int = 1000,
                           llms: Any = None) -> pd.DataFrame:
    """Both normalisations side by side: scores, ranks (1 = best) and the rank change.

    Columns ``rc_original``, ``rc_corrected``, ``rank_original``, ``rank_corrected``,
    ``rank_change`` (corrected minus original), sorted by the original's ranking.
    """
    orig = rank_centrality(x, alpha=alpha, normalisation="original", iterations=iterations, llms=llms)
    corr = rank_centrality(x, alpha=alpha, normalisation="corrected", iterations=iterations, llms=llms)
    table = pd.DataFrame({"rc_original": orig, "rc_corrected": corr})
    table["rank_original"] = table["rc_original"].rank(ascending=False, method="min").astype(int)
    table["rank_corrected"] = table["rc_corrected"].rank(ascending=False, method="min").astype(int)
    table["rank_change"] = table["rank_corrected"] - table["rank_original"]
    table.attrs.update(alpha=float(alpha), iterations=int(iterations),
                       residual_original=orig.attrs["residual"], residual_corrected=corr.attrs["residual"])
    return table.sort_values("rank_original", kind="stable")
