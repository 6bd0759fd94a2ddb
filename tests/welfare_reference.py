"""The model-based jury picks as implemented before the compiled kernels (NumPy only).

Kept verbatim (apart from names) as the reference that the fast implementation in
:mod:`prism_stats.welfare.sampling` is tested against: same distributions, other random
streams.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from prism_stats.welfare.model_based import _GH_W, _GH_Z, OPENING_SET_COUNTS


def elementary_symmetric(a: np.ndarray, kmax: int) -> np.ndarray:
    """e_0..e_kmax of the values along the last axis: array (kmax+1, ...)."""
    e = np.zeros((kmax + 1, *a.shape[:-1]))
    e[0] = 1.0
    for j in range(a.shape[-1]):
        x = a[..., j]
        for k in range(kmax, 0, -1):
            e[k] = e[k] + x * e[k - 1]
    return e


def chosen_probabilities(eta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The former NumPy implementation of ``model_based.chosen_probabilities``."""
    S, M, C = eta.shape
    size_weight = {k: k * n for k, n in OPENING_SET_COUNTS.items() if k <= M}
    total = sum(size_weight.values())
    kmax = max(size_weight) - 1
    out = np.zeros((S, M, C))
    scaled = eta / sigma[:, None, None]
    for m in range(M):
        rivals = np.delete(scaled, m, axis=1)
        diff = scaled[:, m : m + 1, :] - rivals
        acc = np.zeros((S, C))
        for z, w in zip(_GH_Z, _GH_W, strict=True):
            a = special.ndtr(z + diff)
            e = elementary_symmetric(np.moveaxis(a, 1, -1), kmax)
            for k, sw in size_weight.items():
                acc += w * (sw / total) * e[k - 1] / special.comb(M - 1, k - 1)
        out[:, m, :] = acc
    return out


def picks(rule: str, table: np.ndarray, compositions: np.ndarray, sigma: np.ndarray,
          rng: np.random.Generator, chunk: int = 50) -> np.ndarray:
    """The former jury-picking loop of ``model_welfare`` for one (rule, scheme): (S, R)."""
    S = table.shape[0]
    K = compositions.astype(float)
    n = int(compositions[0].sum())
    out = np.empty((S, len(K)), dtype=np.int16)
    for start in range(0, S, chunk):
        sl = slice(start, min(start + chunk, S))
        avg = np.einsum("rc,smc->srm", K, table[sl], optimize=True) / n
        if rule == "mean":
            score = avg + (sigma[sl, None, None] / np.sqrt(n)) * rng.standard_normal(avg.shape)
        else:
            votes = rng.binomial(n, np.clip(avg, 0.0, 1.0)).astype(float)
            votes += 0.5 * rng.random(votes.shape)
            score = -votes if rule == "veto" else votes
        out[sl] = score.argmax(axis=-1)
    return out
