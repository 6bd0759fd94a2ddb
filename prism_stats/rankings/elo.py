"""Elo ratings from battles: online Elo, MLE-Elo as the original, and unpenalised Bradley-Terry.

All three put LLMs on the Elo scale, where a rating difference d means the first LLM is
expected to win ``1 / (1 + base^(-d / scale))`` of its battles (base 10, scale 400).

* :func:`online_elo` -- the sequential update the study took from FastChat: every LLM
  starts at 1000; for each battle in order, ``E_a = 1 / (1 + 10^((R_b - R_a)/400))``,
  ``R_a += K (S_a - E_a)`` and ``R_b += K ((1 - S_a) - E_b)`` with ``K = 4`` and
  ``S_a`` = 1 (a wins), 0 (b wins) or 0.5 (tie). The result depends on the battle order
  (see :mod:`prism_stats.rankings.battles` for the order used).
* :func:`mle_elo` -- the study's "MLE-Elo" (SPEC §3.6 and quirk 5): a logistic
  regression without intercept of "a won" on ``+ln 10`` for a and ``-ln 10`` for b,
  fitted with **scikit-learn's default L2 penalty (C = 1)**, every battle entered twice
  and a tie as one win for each side; ratings ``400 beta + 1000`` shifted so that
  flan-t5-xxl is at 800. The duplicated rows are entered as sample weights of the
  distinct (pair, outcome) rows, which gives scikit-learn the identical objective and is
  thousands of times smaller (a test checks it against literal duplication).
* :func:`bradley_terry` -- the same model **without the penalty**: the maximum-likelihood
  Bradley-Terry fit of the same comparison counts (``choix.ilsr_pairwise_dense``),
  converted to the Elo scale and anchored the same way. It exists only when the
  comparison graph is strongly connected; otherwise the ratings are NaN (the reason is in
  ``attrs["note"]``).

Every function returns a ``pandas.Series`` indexed by LLM short name (vocabulary order).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from .battles import RankingError, battle_codes, llms_in, pair_counts

K_FACTOR: float = 4.0
SCALE: float = 400.0
BASE: float = 10.0
INITIAL: float = 1000.0
#: The original anchors MLE-Elo at the lowest-rated LLM of PRISM.
ANCHOR: tuple[str, float] = ("flan-t5-xxl", 800.0)


def _compile_kernels() -> tuple[Any, Any]:
    """The online-Elo update loops (one pass; many bootstrap passes), compiled by numba."""
    from numba import njit, prange

    @njit(cache=False)
    def update(a, b, outcome, i, ratings, k, scale, base):  # pragma: no cover - compiled
        ra = ratings[a[i]]
        rb = ratings[b[i]]
        ea = 1.0 / (1.0 + np.exp((rb - ra) * np.log(base) / scale))
        eb = 1.0 - ea  # = 1 / (1 + base^((ra - rb)/scale)), one exponential fewer
        o = outcome[i]
        sa = 1.0 if o == 0 else (0.0 if o == 1 else 0.5)
        ratings[a[i]] = ra + k * (sa - ea)
        ratings[b[i]] = rb + k * (1.0 - sa - eb)

    @njit(cache=False)
    def one_pass(a, b, outcome, order, ratings, k, scale, base):  # pragma: no cover - compiled
        for i in order:
            update(a, b, outcome, i, ratings, k, scale, base)
        return ratings

    @njit(cache=False, parallel=True)
    def resampled(a, b, outcome, by_unit, starts, ends, drawn, ratings, k, scale, base):  # pragma: no cover
        for r in prange(drawn.shape[0]):  # replicates are independent
            for u in drawn[r]:
                for j in range(starts[u], ends[u]):
                    update(a, b, outcome, by_unit[j], ratings[r], k, scale, base)
        return ratings

    return one_pass, resampled


_KERNELS: Any = None


def _kernels() -> tuple[Any, Any]:
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _compile_kernels()
    return _KERNELS


def elo_pass(a: np.ndarray, b: np.ndarray, outcome: np.ndarray, order: np.ndarray, n_llms: int, *,
             k: float = K_FACTOR, scale: float = SCALE, base: float = BASE,
             initial: float = INITIAL) -> np.ndarray:
    """Online Elo over the coded battles ``order`` (indices, in sequence): ratings (M,)."""
    ratings = np.full(n_llms, float(initial))
    return _kernels()[0](a, b, outcome, np.asarray(order, dtype=np.int64), ratings,
                         float(k), float(scale), float(base))


def elo_resampled(a: np.ndarray, b: np.ndarray, outcome: np.ndarray, by_unit: np.ndarray,
                  starts: np.ndarray, ends: np.ndarray, drawn: np.ndarray, n_llms: int, *,
                  k: float = K_FACTOR, scale: float = SCALE, base: float = BASE,
                  initial: float = INITIAL) -> np.ndarray:
    """Online Elo of many resamples: (R, M).

    Replicate r runs over the battles of the units ``drawn[r]`` in draw order; unit u's
    battles are ``by_unit[starts[u]:ends[u]]`` (in their own order).
    """
    ratings = np.full((drawn.shape[0], n_llms), float(initial))
    return _kernels()[1](a, b, outcome, by_unit.astype(np.int64), starts.astype(np.int64),
                         ends.astype(np.int64), drawn.astype(np.int64), ratings,
                         float(k), float(scale), float(base))


def online_elo(battle_table: pd.DataFrame, *, k: float = K_FACTOR, scale: float = SCALE,
               base: float = BASE, initial: float = INITIAL, llms: Any = None) -> pd.Series:
    """Online Elo ratings after one pass over the battles in table order."""
    names = llms_in(battle_table, llms)
    a, b, outcome = battle_codes(battle_table, names)
    ratings = elo_pass(a, b, outcome, np.arange(len(a)), len(names), k=k, scale=scale, base=base,
                       initial=initial)
    out = pd.Series(ratings, index=pd.Index(names, name="llm"), name="elo")
    out.attrs.update(k=k, scale=scale, base=base, initial=initial, n_battles=len(a))
    return out


def _counts(x: Any, llms: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if isinstance(x, pd.DataFrame):
        x = pair_counts(x, llms)
    if not isinstance(x, xr.Dataset):
        raise RankingError("expected a battle table (DataFrame) or pair counts (xarray.Dataset)")
    return x["wins"].values, x["ties"].values, [str(m) for m in x["llm"].values]


def design_rows(wins: np.ndarray, ties: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The original's duplicated design as distinct rows with weights.

    For each pair i < j: a row "i beat j" with weight ``2 wins[i, j] + ties[i, j]`` and a
    row "j beat i" (entered as i vs j, y = 0) with weight ``2 wins[j, i] + ties[i, j]``.
    Returns (first LLM index, second LLM index, y, weight), zero-weight rows dropped.
    """
    n = wins.shape[0]
    i, j = np.triu_indices(n, 1)
    w1 = 2 * wins[i, j] + ties[i, j]
    w0 = 2 * wins[j, i] + ties[i, j]
    first = np.concatenate([i, i])
    second = np.concatenate([j, j])
    y = np.concatenate([np.ones(len(i)), np.zeros(len(i))])
    weight = np.concatenate([w1, w0])
    keep = weight > 0
    return first[keep], second[keep], y[keep], weight[keep]


def _anchor(ratings: np.ndarray, names: list[str], anchor: tuple[str, float] | None) -> tuple[np.ndarray, str | None]:
    if anchor is None:
        return ratings, None
    name, value = anchor
    if name not in names or not np.isfinite(ratings[names.index(name)]):
        return ratings, None
    return ratings + (value - ratings[names.index(name)]), name


def mle_elo_array(wins: np.ndarray, ties: np.ndarray, *, C: float = 1.0, scale: float = SCALE,
                  base: float = BASE, initial: float = INITIAL) -> np.ndarray:
    """Unanchored penalised MLE-Elo (``scale * beta + initial``) from count arrays."""
    from sklearn.linear_model import LogisticRegression

    n = wins.shape[0]
    first, second, y, weight = design_rows(wins, ties)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return np.full(n, np.nan)
    X = np.zeros((len(y), n))
    X[np.arange(len(y)), first] = math.log(base)
    X[np.arange(len(y)), second] = -math.log(base)
    model = LogisticRegression(fit_intercept=False, C=C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(X, y, sample_weight=weight)
    return scale * model.coef_[0] + initial


def mle_elo(x: Any, *, C: float = 1.0, scale: float = SCALE, base: float = BASE,
            initial: float = INITIAL, anchor: tuple[str, float] | None = ANCHOR,
            llms: Any = None) -> pd.Series:
    """The study's MLE-Elo: L2-penalised (C = 1) logistic regression, anchored.

    Parameters
    ----------
    x : DataFrame or xarray.Dataset
        A battle table or its pair counts.
    C : float
        Inverse penalty strength (scikit-learn's default 1.0, as the study).
    anchor : (str, float) or None
        LLM and rating it is shifted to (``("flan-t5-xxl", 800)``); when that LLM has no
        battles, the ratings stay at ``400 beta + 1000`` and ``attrs["anchor"]`` is None.
    """
    wins, ties, names = _counts(x, llms)
    ratings, anchored = _anchor(mle_elo_array(wins, ties, C=C, scale=scale, base=base,
                                              initial=initial), names, anchor)
    out = pd.Series(ratings, index=pd.Index(names, name="llm"), name="mle_elo")
    out.attrs.update(C=C, penalty="l2", scale=scale, base=base, anchor=anchored)
    return out


def bradley_terry_array(wins: np.ndarray, ties: np.ndarray, *, scale: float = SCALE,
                        base: float = BASE) -> tuple[np.ndarray, str]:
    """Unpenalised Bradley-Terry on the Elo scale (centred at 0) and a note ("" if fine)."""
    import choix

    comparisons = 2 * wins + ties  # the same counts the duplicated design holds
    n = comparisons.shape[0]
    if (comparisons.sum(axis=1) == 0).any() or (comparisons.sum(axis=0) == 0).any():
        return np.full(n, np.nan), "not estimable: an LLM never wins or never loses"
    try:
        theta = choix.ilsr_pairwise_dense(comparisons, alpha=0.0, max_iter=1000, tol=1e-10)
    except (RuntimeError, ValueError) as exc:  # not strongly connected / no convergence
        return np.full(n, np.nan), f"not estimable: {exc}"
    return theta * scale / math.log(base), ""


def bradley_terry(x: Any, *, scale: float = SCALE, base: float = BASE, initial: float = INITIAL,
                  anchor: tuple[str, float] | None = ANCHOR, llms: Any = None) -> pd.Series:
    """MLE-Elo without the penalty (maximum-likelihood Bradley-Terry), anchored as the study."""
    wins, ties, names = _counts(x, llms)
    theta, note = bradley_terry_array(wins, ties, scale=scale, base=base)
    ratings, anchored = _anchor(theta + initial, names, anchor)
    out = pd.Series(ratings, index=pd.Index(names, name="llm"), name="bradley_terry")
    out.attrs.update(penalty=None, scale=scale, base=base, anchor=anchored, note=note)
    return out


# --- many fits at once (the bootstrap) ------------------------------------------------------


def logistic_elo_batch(wins: np.ndarray, ties: np.ndarray, *, penalised: bool = True, C: float = 1.0,
                       scale: float = SCALE, base: float = BASE, max_iter: int = 100,
                       tol: float = 1e-9) -> np.ndarray:
    """MLE-Elo (penalised) or Bradley-Terry (unpenalised) for a stack of count tables.

    Newton's method on the exact objective of :func:`mle_elo_array` (``C`` times the
    weighted log-loss of the duplicated design plus ``||beta||^2 / 2``) or, unpenalised,
    on the log-loss alone with the ratings' mean fixed at zero -- for all R tables at
    once. It reaches the optimum that scikit-learn's ``lbfgs`` (the original's solver,
    stopping at ``tol = 1e-4``) approaches to within a fraction of an Elo point, and the
    unpenalised optimum of ``choix``; the tests check both. A table whose unpenalised
    optimum does not exist (the comparison graph is not strongly connected: ratings run
    off to infinity) gets NaN.

    Parameters
    ----------
    wins, ties : (R, M, M) arrays
    Returns
    -------
    (R, M) array of ``scale * beta`` (unanchored, unshifted).
    """
    wins = np.asarray(wins, dtype=float)
    ties = np.asarray(ties, dtype=float)
    R, M, _ = wins.shape
    i, j = np.triu_indices(M, 1)
    X = np.zeros((len(i), M))
    X[np.arange(len(i)), i] = math.log(base)
    X[np.arange(len(i)), j] = -math.log(base)
    w1 = 2 * wins[:, i, j] + ties[:, i, j]  # (R, pairs): rows "i beat j"
    n = w1 + 2 * wins[:, j, i] + ties[:, i, j]  # all rows of the pair
    c = C if penalised else 1.0
    # unpenalised: fix the mean at 0 (the ones matrix) plus a negligible ridge so that a
    # diverging table (no optimum) stays solvable until it is flagged
    ridge = np.eye(M) if penalised else np.ones((M, M)) + 1e-10 * np.eye(M)
    beta = np.zeros((R, M))
    active = np.ones(R, dtype=bool)
    if not penalised:  # an LLM that never wins or never loses has no finite rating
        comp = 2 * wins + ties
        active &= ~((comp.sum(axis=2) == 0).any(axis=1) | (comp.sum(axis=1) == 0).any(axis=1))
    failed = ~active
    for _ in range(max_iter):
        if not active.any():
            break
        z = beta[active] @ X.T
        p = special.expit(z)
        grad = c * ((n[active] * p - w1[active]) @ X) + beta[active] @ ridge
        h = c * n[active] * p * (1.0 - p)
        H = _laplacian(h, i, j, M) * math.log(base) ** 2 + ridge
        step = np.linalg.solve(H, grad[..., None])[..., 0]
        # damp very long steps (a table drifting towards infinity, or a poor start)
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(big, 1e-300))
        beta[active] -= step
        done = np.abs(step).max(axis=1) < tol
        idx = np.flatnonzero(active)
        active[idx[done]] = False
        runaway = np.abs(beta[idx]).max(axis=1) > 50.0  # log-odds beyond any real rating gap
        active[idx[runaway]] = False
        failed[idx[runaway]] = True
    out = scale * beta
    out[failed | active] = np.nan
    return out


def _laplacian(h: np.ndarray, i: np.ndarray, j: np.ndarray, M: int) -> np.ndarray:
    """``sum_p h_p (e_i - e_j)(e_i - e_j)^T`` for a stack of pair weights h (R, pairs)."""
    L = np.zeros((h.shape[0], M, M))
    L[:, i, j] = -h
    L[:, j, i] = -h
    idx = np.arange(M)
    L[:, idx, idx] = -L.sum(axis=2)
    return L


def anchor_batch(ratings: np.ndarray, names: list[str], anchor: tuple[str, float] | None = ANCHOR,
                 initial: float = INITIAL) -> np.ndarray:
    """Shift each row of ``scale * beta`` (R, M) so the anchor LLM has its rating.

    Without the anchor LLM the rows are ``scale * beta + initial``.
    """
    out = ratings + initial
    if anchor is not None and anchor[0] in names:
        k = names.index(anchor[0])
        out = out + (anchor[1] - out[:, [k]])
    return out
