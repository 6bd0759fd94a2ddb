"""Small numerical helpers of the synthetic generator: quota allocation and raking.

The generator hits published margins by *allocating* integer quotas (unbiased
randomised rounding, so that a scaled-down dataset keeps the right proportions in
expectation and the full-size one reproduces the published counts) and by *raking*
plausible conditional priors (iterative proportional fitting) to the margins before
assigning categories row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import ndtr


class SynthError(ValueError):
    """Invalid input to the synthetic generator (sizes, truth parameters, options)."""


def allocate(weights: Sequence[float] | np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Integer counts proportional to *weights* that sum exactly to *n*.

    Each cell gets ``floor(q)`` or ``floor(q) + 1`` of its exact quota ``q``, with the
    fractional parts rounded by systematic sampling in a random cell order, so every
    cell's count is unbiased for its quota and the total is exact.
    """
    w = np.asarray(weights, dtype=float)
    if n < 0 or np.any(w < 0) or (n > 0 and w.sum() <= 0):
        raise SynthError(
            f"allocate: need n >= 0 and non-negative weights with a positive sum (n={n})"
        )
    if n == 0:
        return np.zeros(len(w), dtype=int)
    quota = w / w.sum() * n
    base = np.floor(quota)
    frac = quota - base
    extra_total = round(n - base.sum())
    out = base.astype(int)
    if extra_total > 0:
        perm = rng.permutation(len(w))
        cum = np.cumsum(frac[perm])
        cum[-1] = extra_total  # guard against round-off in the last interval
        points = rng.uniform() + np.arange(extra_total)
        hit = np.searchsorted(cum, points, side="right")
        np.add.at(out, perm[hit], 1)
    return out


def quota_sample(
    labels: Sequence, weights: Sequence[float] | np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """*n* labels in random order whose counts are ``allocate(weights, n)``."""
    counts = allocate(weights, n, rng)
    out = np.repeat(np.asarray(labels, dtype=object), counts)
    rng.shuffle(out)
    return out


def rake(
    prior: np.ndarray, row_totals: np.ndarray, col_targets: np.ndarray, *, iterations: int = 500
) -> np.ndarray:
    """Iterative proportional fitting of ``prior`` (rows x columns) to both margins.

    *prior* holds conditional probabilities (each row a distribution over columns);
    the result keeps the row totals exactly and the column totals as closely as the
    prior's zero pattern allows. A small floor keeps every column reachable.
    """
    prior = np.asarray(prior, dtype=float)
    rows = np.asarray(row_totals, dtype=float)
    cols = np.asarray(col_targets, dtype=float)
    if cols.sum() <= 0:
        raise SynthError("rake: the column targets are all zero")
    cols = cols * rows.sum() / cols.sum()
    p = prior / prior.sum(axis=1, keepdims=True)
    p = 0.999 * p + 0.001 / p.shape[1]
    m = p * rows[:, None]
    for _ in range(iterations):
        col = m.sum(axis=0)
        m *= np.divide(cols, col, out=np.zeros_like(col), where=col > 0)
        row = m.sum(axis=1)
        m *= np.divide(rows, row, out=np.zeros_like(row), where=row > 0)[:, None]
        if np.abs(m.sum(axis=0) - cols).max() < 1e-6:
            break
    return m


def rake_assign(
    parent: np.ndarray,
    prior: np.ndarray,
    col_targets: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Child category codes for people with parent codes *parent*.

    ``prior[r]`` is the prior distribution of the child given parent ``r``; it is raked
    so that the child margin matches *col_targets* (scaled to the number of people),
    then each parent group gets its allocated child counts in random order.
    """
    parent = np.asarray(parent, dtype=int)
    n_rows = prior.shape[0]
    row_totals = np.bincount(parent, minlength=n_rows).astype(float)
    fitted = rake(prior, row_totals, col_targets)
    out = np.empty(len(parent), dtype=int)
    for r in np.flatnonzero(row_totals):
        members = np.flatnonzero(parent == r)
        codes = np.repeat(np.arange(prior.shape[1]), allocate(fitted[r], len(members), rng))
        rng.shuffle(codes)
        out[members] = codes
    return out


def margin(counts: Mapping[str, int], levels: Sequence[str]) -> np.ndarray:
    """The counts of *levels* (in that order) as a float array."""
    return np.array([counts.get(level, 0) for level in levels], dtype=float)


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log-normal distribution with this mean and sd."""
    s2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - s2 / 2), float(np.sqrt(s2))


def discrete_lognormal(mean: float, sd: float, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Support ``lo..hi`` and probabilities of a log-normal discretised to integers.

    Probabilities are the log-normal mass of ``[k - 0.5, k + 0.5)`` renormalised over
    the support, so exact expectations over the distribution are simple sums.
    """
    mu, sigma = lognormal_params(mean, sd)
    support = np.arange(lo, hi + 1)
    edges = np.concatenate([support - 0.5, [hi + 0.5]])
    cdf = ndtr((np.log(np.maximum(edges, 1e-9)) - mu) / sigma)
    p = np.diff(cdf)
    return support, p / p.sum()


def text_lengths(
    n: int, moments: tuple[float, float, int, int], rng: np.random.Generator
) -> np.ndarray:
    """*n* character lengths from a log-normal with the published mean/sd, clipped to range."""
    mean, sd, lo, hi = moments
    mu, sigma = lognormal_params(mean, sd)
    return np.clip(np.rint(rng.lognormal(mu, sigma, n)), lo, hi).astype(int)


def slider(
    n: int, mean: float, sd: float, lo: int, hi: int, rng: np.random.Generator
) -> np.ndarray:
    """*n* integer slider values on ``lo..hi`` from a beta with the given mean and sd."""
    m = (mean - lo) / (hi - lo)
    v = (sd / (hi - lo)) ** 2
    v = min(v, 0.95 * m * (1 - m))
    k = m * (1 - m) / v - 1
    x = rng.beta(m * k, (1 - m) * k, n)
    return np.rint(lo + x * (hi - lo)).astype(int)
