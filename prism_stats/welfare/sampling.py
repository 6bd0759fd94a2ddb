"""Compiled kernels of the model-based juries: exact vote samplers, picks, chosen probabilities.

The model-based welfare grid (2 countries x 7 schemes x 1,000 juries x 1,000 posterior
draws x 21 LLMs) needs ~600 million Binomial vote counts and ~300 million Gaussian jury
means per run; NumPy's ``Generator.binomial`` with a different ``p`` per element spends
most of its time setting up each draw. The kernels here (numba, no Python objects, GIL
released) draw from exactly the same distributions:

- :class:`BinomialTables` draws ``Binomial(n, p)`` for any ``p`` in two exact stages:
  ``X ~ Binomial(n, a)`` by inversion of a tabulated CDF at the grid point ``a = ceil(p
  G) / G`` just above ``p`` (a guide table makes the search O(1)), then the thinning
  ``Y | X ~ Binomial(X, p / a)`` -- a binomial of X trials thinned with probability p/a is
  ``Binomial(n, p)``. Thinning removes ``D = X - Y ~ Binomial(X, 1 - p/a)`` trials, and
  ``1 - p/a < 1/(G p)`` is small, so D is 0 in most draws, which Bernoulli's inequality
  ``(1 - r)^X >= 1 - X r`` decides without a logarithm;
- the jury picks the LLM with the most votes (``chosen``) or the fewest (``veto``), or the
  highest noisy mean (``mean``); ties are broken uniformly at random (one uniform per
  tied jury, choosing among the tied LLMs in LLM order);
- :func:`chosen_probabilities_kernel` is the Gauss-Hermite evaluation of
  :func:`prism_stats.welfare.model_based.chosen_probabilities` with fused loops and the
  symmetry ``P(z + d) = 1 - P(-z - d)`` of the normal CDF (the nodes are symmetric).

Every kernel takes its own ``numpy.random.Generator``; callers give each unit of work a
generator spawned from one seed, so results do not depend on how units are spread over
threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import stats

#: Grid of success probabilities of the tabulated binomial CDFs.
GRID = 512

_JIT = {"nogil": True, "cache": True}


class BinomialTables:
    """CDF and guide tables of ``Binomial(n, a)`` at ``a = g / GRID`` for one *n*."""

    def __init__(self, n: int, grid: int = GRID) -> None:
        if n < 0:
            raise ValueError(f"binomial size must be >= 0, got {n}")
        self.n, self.grid = int(n), int(grid)
        a = np.arange(grid + 1) / grid
        cdf = stats.binom.cdf(np.arange(n + 1)[None, :], n, a[:, None])
        cdf[:, -1] = 1.0  # exact top: inversion always ends inside the support
        self.cdf = np.ascontiguousarray(cdf)
        # guide[g, j] = first k with cdf[g, k] >= j / (n + 1): the search starts there
        levels = np.arange(n + 1) / (n + 1)
        self.guide = np.stack([np.searchsorted(row, levels, side="left") for row in cdf]).astype(np.int64)

    def sample(self, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``Binomial(n, p)`` draws, one per element of *p* (for tests and small uses)."""
        p = np.ascontiguousarray(p, dtype=np.float64).ravel()
        out = np.empty(p.shape, dtype=np.int64)
        _binomial_into(rng, self.n, p, self.cdf, self.guide, self.grid, out)
        return out


@numba.njit(**_JIT)
def _invert_binomial(u, x, q):
    """Binomial(x, q), 0 < q < 1, from the uniform *u* by inversion from 0 (x * q small)."""
    pk = math.exp(x * math.log1p(-q))
    cum = pk
    k = 0
    ratio = q / (1.0 - q)
    while u > cum and k < x:
        pk = pk * (x - k) / (k + 1) * ratio
        k += 1
        cum += pk
    return k


@numba.njit(**_JIT)
def _binomial_into(rng, n, p, cdf, guide, grid, out):
    """Exact ``Binomial(n, p[i])`` draws into ``out[i]`` from the tables of n.

    One loop over a vector rather than a per-draw helper: the same logic as a helper
    called once per draw was 2.2x slower per draw (68 against 31 ns, measured; the helper
    is not inlined, and the call itself -- with the generator and both tables as
    arguments -- cost more than the draw).
    """
    for i in range(p.shape[0]):
        q = p[i]
        if q <= 0.0:
            k = 0
        elif q >= 1.0:
            k = n
        else:
            g = min(math.ceil(q * grid), grid)
            a = g / grid
            u = rng.random()
            k = guide[g, int(u * (n + 1))]
            while cdf[g, k] < u:
                k += 1
            if k > 0 and q < a:  # thin X ~ Binomial(n, a) to Binomial(n, q)
                keep = q / a
                u = rng.random()
                if keep < 0.5:  # a = 1 / grid: k is tiny
                    k = _invert_binomial(u, k, keep)
                elif u > 1.0 - k * (1.0 - keep):  # P(D = 0) = (1 - r)^k >= 1 - k r
                    # D >= 1 is possible: invert D's distribution with the same uniform
                    k -= _invert_binomial(u, k, 1.0 - keep)
        out[i] = k


@numba.njit(**_JIT)
def _pick(scores, rng, tied):
    """Index of the largest score; ties broken uniformly at random (in index order)."""
    best = scores[0]
    for m in range(1, scores.shape[0]):
        best = max(best, scores[m])
    n_tied = 0
    for m in range(scores.shape[0]):
        if scores[m] == best:
            tied[n_tied] = m
            n_tied += 1
    if n_tied == 1:
        return tied[0]
    return tied[int(rng.random() * n_tied)]


@numba.njit(**_JIT)
def pick_by_votes(prob, n, lowest, rng, cdf, guide, grid, out):
    """Picks of juries voting ``Binomial(n, prob)`` per LLM.

    prob : (S, R, M) vote probabilities; out : (S, R) picks. ``lowest`` picks the fewest
    votes (veto), else the most (chosen).
    """
    S, R, M = prob.shape
    votes = np.empty(M, dtype=np.int64)
    scores = np.empty(M)
    tied = np.empty(M, dtype=np.int64)
    for s in range(S):
        for r in range(R):
            _binomial_into(rng, n, prob[s, r], cdf, guide, grid, votes)
            for m in range(M):
                scores[m] = -votes[m] if lowest else votes[m]
            out[s, r] = _pick(scores, rng, tied)


@numba.njit(**_JIT)
def pick_by_noisy_mean(mean, sd, rng, out):
    """Picks of juries whose mean ratings are ``mean + sd * N(0, 1)`` per LLM.

    mean : (S, R, M); sd : (S,) per sample; out : (S, R).
    """
    S, R, M = mean.shape
    scores = np.empty(M)
    tied = np.empty(M, dtype=np.int64)
    for s in range(S):
        for r in range(R):
            for m in range(M):
                scores[m] = mean[s, r, m] + sd[s] * rng.standard_normal()
            out[s, r] = _pick(scores, rng, tied)


@numba.njit(**_JIT)
def pick_exposed_means(mean, n_seen, factor, inv_exposure, tau, taste2, noise2, unseen, rng, out):
    """Picks of exposure-matched juries under the ``mean`` rule.

    A juror j rates the LLMs they were shown; LLM m's jury mean is the average over the
    ``k_m`` jurors who saw it of ``eta + u_j + v_jm + mean noise of their n_jm ratings``.
    With ``W[m, j] = 1[j saw m] / k_m`` the means are ``mean + W u + e``: ``W u`` has
    covariance ``tau^2 W W'`` and is drawn as ``tau * L z`` with ``L L' = W W'`` (one
    factor per jury, *factor*); ``e_m`` is independent with variance ``taste2 / k_m +
    noise2 * h_m``, ``h_m = sum_j (1 / n_jm) / k_m^2`` (*inv_exposure*).

    mean : (S, R, M) the jurors' average expected rating of each LLM they saw;
    n_seen : (R, M) k_m; factor : (R, M, K); inv_exposure : (R, M);
    tau, taste2, noise2 : (S,) participant sd, taste variance, noise variance per draw;
    unseen : the score of an LLM no juror saw. out : (S, R).
    """
    S, R, M = mean.shape
    K = factor.shape[2]
    scores = np.empty(M)
    tied = np.empty(M, dtype=np.int64)
    z = np.empty(K)
    for s in range(S):
        for r in range(R):
            for k in range(K):
                z[k] = rng.standard_normal()
            for m in range(M):
                if n_seen[r, m] == 0:
                    scores[m] = unseen
                    continue
                shared = 0.0
                for k in range(K):
                    shared += factor[r, m, k] * z[k]
                sd = math.sqrt(taste2[s] / n_seen[r, m] + noise2[s] * inv_exposure[r, m])
                scores[m] = mean[s, r, m] + tau[s] * shared + sd * rng.standard_normal()
            out[s, r] = _pick(scores, rng, tied)


@numba.njit(**_JIT)
def pick_exposed_votes(prob, showings, n_seen, lowest, unseen, rng, out):
    """Picks of exposure-matched juries under the ``chosen`` / ``veto`` rules.

    A juror's value of an LLM is their share of "chosen" (or of vetoes) over the times
    they were shown it; the jury's is the average over the ``k_m`` jurors who saw it. The
    jurors who saw m exactly ``a`` times contribute ``Binomial(a * G_am, p_am) / a`` to the
    sum (``p_am``: their cells' average probability, as in the full-information juries).

    prob : (S, R, A, M) p_am for a = 1..A; showings : (R, A, M) G_am; n_seen : (R, M);
    lowest : fewest vetoes win (the score is 1 - the veto share, as in the study); unseen
    : the score of an LLM no juror saw (on that scale). out : (S, R).
    """
    S, R, A, M = prob.shape
    scores = np.empty(M)
    tied = np.empty(M, dtype=np.int64)
    for s in range(S):
        for r in range(R):
            for m in range(M):
                if n_seen[r, m] == 0:
                    scores[m] = unseen
                    continue
                total = 0.0
                for a in range(A):
                    g = showings[r, a, m]
                    if g > 0:
                        total += rng.binomial((a + 1) * g, prob[s, r, a, m]) / (a + 1)
                share = total / n_seen[r, m]
                scores[m] = 1.0 - share if lowest else share
            out[s, r] = _pick(scores, rng, tied)


@numba.njit(**_JIT)
def _normal_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@numba.njit(**_JIT)
def chosen_probabilities_kernel(scaled, nodes, weights, sizes, size_factors, out):
    """P(a cell member picks LLM m when shown with k-1 random rivals), k ~ opening sets.

    scaled : (S, M, C) expected ratings over the rating noise sd; nodes, weights : the
    (symmetric) Gauss-Hermite rule, weights summing to 1; sizes : set sizes k;
    size_factors : each size's weight (summing to 1 over sizes) over ``comb(M - 1, k - 1)``
    (the number of rival sets). out : (S, M, C).
    """
    S, M, C = scaled.shape
    Z = nodes.shape[0]
    kmax = 0
    for k in sizes:
        kmax = max(kmax, k - 1)
    below = np.empty((Z, M, M))  # below[z, m, j] = P(rival j rates below m | node z)
    e = np.empty(kmax + 1)
    for s in range(S):
        for c in range(C):
            for m in range(M):
                for j in range(m + 1, M):
                    d = scaled[s, m, c] - scaled[s, j, c]
                    for zi in range(Z):
                        v = _normal_cdf(nodes[zi] + d)
                        below[zi, m, j] = v
                        below[Z - 1 - zi, j, m] = 1.0 - v  # node -z: P(z' - d) = 1 - P(z + d)
            for m in range(M):
                acc = 0.0
                for zi in range(Z):
                    e[:] = 0.0
                    e[0] = 1.0
                    for j in range(M):
                        if j == m:
                            continue
                        x = below[zi, m, j]
                        for k in range(kmax, 0, -1):
                            e[k] += x * e[k - 1]
                    part = 0.0
                    for t in range(sizes.shape[0]):
                        part += size_factors[t] * e[sizes[t] - 1]
                    acc += weights[zi] * part
                out[s, m, c] = acc


__all__ = [
    "GRID",
    "BinomialTables",
    "chosen_probabilities_kernel",
    "pick_by_noisy_mean",
    "pick_by_votes",
    "pick_exposed_means",
    "pick_exposed_votes",
]
