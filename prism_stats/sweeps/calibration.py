"""Uniformity of SBC ranks: exact simultaneous ECDF bands and the calibration test.

Under a calibrated model, the rank of a true value among ``L`` posterior draws is
uniform on ``{0, ..., L}``. For ``N`` replicates, the count ``S_j`` of ranks below a
boundary ``b_j`` is Binomial(``N``, ``z_j``) with ``z_j = b_j / (L + 1)``, and the counts
at successive boundaries form a multinomial process. Following Säilynoja, Bürkner &
Vehtari (2022, "Graphical test for discrete uniformity and its applications in
goodness-of-fit evaluation and multiple sample comparison", Statistics and Computing
32:32), the test statistic of one quantity is the smallest two-sided pointwise tail
probability along the ECDF,

    T = min_j 2 min(F_j(S_j), 1 - F_j(S_j - 1)),       F_j = CDF of Binomial(N, z_j),

and the simultaneous band at level ``1 - alpha`` contains, at every boundary, the counts
whose pointwise tail probability is not below the threshold ``t*`` at which
``P(T <= t*) > alpha``. Their "optimised" method computes ``P(T > t)`` exactly by a
recursion over the boundaries, which is what :func:`prob_inside` does (conditional
binomial transitions of the cumulative count), so the band and the p-value
``p = P_H0(T <= T_obs)`` are exact for discrete ranks and need no simulation. An ECDF is
outside the band exactly when ``p <= alpha``, so the test and the ECDF-difference plot
always agree.

(``arviz_stats.ecdf_utils`` offers a *simulated* band for continuous PIT values; the
tests check that the exact band agrees with it for fine rank grids.)

Across quantities the decision uses Holm's step-down adjustment of the per-quantity
p-values (family-wise error ``alpha``): the run passes when no quantity is rejected, which
is the same as no quantity lying outside its band at level ``1 - alpha / K``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

#: Default family-wise error rate of the calibration test.
ALPHA = 0.05
#: Most ECDF evaluation points used (rank boundaries; fewer when L is smaller).
MAX_POINTS = 200
#: Tail probabilities that agree to this relative tolerance are the same value (the
#: symmetric points z and 1 - z give mathematically equal tails through cdf and sf).
_RTOL = 1e-9


def rank_boundaries(n_draws: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Rank boundaries ``b_j`` (1..L) at which the ECDF is evaluated for ranks 0..L.

    Every boundary when ``L <= max_points``, else ``max_points`` evenly spaced ones.
    """
    L = int(n_draws)
    if L < 1:
        raise ValueError(f"need at least one posterior draw per rank, got L={L}")
    if L <= max_points:
        return np.arange(1, L + 1)
    return np.unique(np.round(np.linspace(0, L + 1, max_points + 2)[1:-1]).astype(int))


@lru_cache(maxsize=32)
def _transitions(n: int, z: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Transition matrices of the cumulative count between successive boundaries."""
    s = np.arange(n + 1)
    out = []
    prev = 0.0
    for zj in z:
        q = 0.0 if prev >= 1.0 else (zj - prev) / (1.0 - prev)
        k = s[None, :] - s[:, None]  # increments s -> s'
        m = stats.binom.pmf(k, (n - s)[:, None], q)
        out.append(np.where(k >= 0, m, 0.0))
        prev = zj
    return tuple(out)


def prob_inside(n: int, z: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Exact probability that the ECDF counts of *n* uniform ranks stay within
    ``[lower_j, upper_j]`` at every evaluation point ``z_j``."""
    mats = _transitions(int(n), tuple(float(x) for x in z))
    v = np.zeros(n + 1)
    v[0] = 1.0
    idx = np.arange(n + 1)
    for m, lo, hi in zip(mats, lower, upper, strict=True):
        v = v @ m
        v[(idx < lo) | (idx > hi)] = 0.0
    return float(v.sum())


def _tails(n: int, z: np.ndarray) -> np.ndarray:
    """Pointwise two-sided tail probability of every count: (points, n + 1)."""
    c = np.arange(n + 1)[None, :]
    zz = z[:, None]
    cdf = stats.binom.cdf(c, n, zz)
    upper = stats.binom.sf(c - 1, n, zz)  # P(S >= c)
    return np.minimum(1.0, 2.0 * np.minimum(cdf, upper))


def _interval(tails: np.ndarray, keep) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest allowed count per point (empty rows give lo > hi)."""
    allowed = keep(tails)
    any_ = allowed.any(axis=1)
    lo = np.where(any_, allowed.argmax(axis=1), tails.shape[1])
    hi = np.where(any_, tails.shape[1] - 1 - allowed[:, ::-1].argmax(axis=1), -1)
    return lo, hi


def _counts(ranks: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(ranks), bounds, side="left")  # #(rank < b)


def ecdf_pvalue(ranks: np.ndarray, n_draws: int, *, max_points: int = MAX_POINTS) -> tuple[float, float]:
    """Exact p-value of the simultaneous ECDF test of uniformity of *ranks* on 0..L.

    Returns ``(p_value, statistic)``; the statistic is the smallest pointwise two-sided
    tail probability (see module docstring). Non-finite ranks are ignored.
    """
    r = np.asarray(ranks, dtype=float)
    r = r[np.isfinite(r)]
    n = len(r)
    if n == 0:
        return float("nan"), float("nan")
    if r.min() < 0 or r.max() > n_draws:
        raise ValueError(f"ranks must lie in 0..{n_draws}")
    bounds = rank_boundaries(n_draws, max_points)
    z = bounds / (n_draws + 1)
    tails = _tails(n, z)
    counts = _counts(r, bounds)
    t_obs = float(tails[np.arange(len(z)), counts].min())
    lo, hi = _interval(tails, lambda t: t > t_obs * (1 + _RTOL))
    p = 1.0 - prob_inside(n, z, lo, hi)
    return float(min(max(p, 0.0), 1.0)), t_obs


@dataclass(frozen=True)
class Band:
    """A simultaneous ECDF band for *n* ranks on 0..L.

    Attributes
    ----------
    z : ndarray
        Evaluation points (expected ECDF values, ``b_j / (L + 1)``).
    lower, upper : ndarray
        Smallest and largest count inside the band at each point (as ECDF values:
        divide by ``n``).
    level : float
        Simultaneous coverage ``1 - alpha`` (exact coverage is at least this).
    coverage : float
        The exact coverage of the band.
    threshold : float
        The pointwise tail-probability threshold ``t*``.
    """

    z: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: int
    level: float
    coverage: float
    threshold: float


@lru_cache(maxsize=64)
def simultaneous_band(n: int, n_draws: int, alpha: float = ALPHA, *,
                      max_points: int = MAX_POINTS) -> Band:
    """The exact simultaneous ``1 - alpha`` band of the ECDF of *n* ranks on 0..L."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    bounds = rank_boundaries(n_draws, max_points)
    z = bounds / (n_draws + 1)
    tails = _tails(n, z)
    values = np.unique(tails)
    values = values[np.concatenate(([True], np.diff(values) > _RTOL * values[1:]))]

    def p_at_most(t: float) -> float:  # P(T <= t)
        lo, hi = _interval(tails, lambda x: x > t * (1 + _RTOL))
        return 1.0 - prob_inside(n, z, lo, hi)

    # smallest attainable t with P(T <= t) > alpha (P is nondecreasing in t)
    left, right = 0, len(values) - 1
    while left < right:
        mid = (left + right) // 2
        if p_at_most(values[mid]) > alpha:
            right = mid
        else:
            left = mid + 1
    t_star = float(values[left])
    lo, hi = _interval(tails, lambda x: x >= t_star * (1 - _RTOL))
    coverage = prob_inside(n, z, lo, hi)
    return Band(z=z, lower=lo, upper=hi, n=n, level=1 - alpha, coverage=coverage, threshold=t_star)


def holm(pvalues: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down rejections (family-wise error *alpha*); NaN p-values never reject."""
    p = np.asarray(pvalues, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    reject = np.zeros(p.shape, dtype=bool)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    for i, j in enumerate(order):
        if p[j] <= alpha / (m - i):
            reject[j] = True
        else:
            break
    return reject


@dataclass
class CalibrationResult:
    """Per-quantity uniformity tests of SBC ranks and the overall verdict.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per quantity: ``quantity``, ``variable``, ``kind``, ``n`` (replicates),
        ``p_value`` (exact simultaneous ECDF test), ``statistic``, ``max_ecdf_diff``
        (largest ``|ECDF - uniform|``), ``mean_rank`` (scaled to 0-1; 0.5 expected) and
        ``flagged`` (rejected by Holm's procedure at family-wise ``alpha``).
    alpha : float
    n_draws : int
        ``L`` (ranks are 0..L).
    n_replicates : int
    """

    table: pd.DataFrame
    alpha: float
    n_draws: int
    n_replicates: int

    @property
    def flagged(self) -> list[str]:
        """Quantities whose ranks are not uniform (after the multiplicity adjustment)."""
        return self.table.loc[self.table["flagged"], "quantity"].tolist()

    @property
    def passed(self) -> bool:
        """No quantity flagged."""
        return not bool(self.table["flagged"].any())

    def by_variable(self) -> pd.DataFrame:
        """Quantities, flagged quantities and the smallest p-value per variable."""
        g = self.table.groupby("variable", sort=False)
        return pd.DataFrame({
            "quantities": g.size(),
            "flagged": g["flagged"].sum().astype(int),
            "min_p_value": g["p_value"].min(),
        }).reset_index()

    def __str__(self) -> str:
        k = len(self.table)
        verdict = "PASS" if self.passed else f"FAIL ({len(self.flagged)} of {k} quantities flagged)"
        lines = [
            f"SBC calibration: {self.n_replicates} replicates, ranks 0..{self.n_draws}, {k} quantities",
            f"test: exact simultaneous ECDF test per quantity, Holm-adjusted at alpha = {self.alpha}",
            f"verdict: {verdict}",
        ]
        worst = self.table.nsmallest(min(5, k), "p_value")
        for row in worst.itertuples():
            mark = "FLAG" if row.flagged else "ok"
            lines.append(f"  {mark:4s} p = {row.p_value:.3g}  mean rank {row.mean_rank:.2f}  {row.quantity}")
        return "\n".join(lines)


def calibration_test(ranks: xr.Dataset | xr.DataArray, alpha: float = ALPHA, *,
                     n_draws: int | None = None) -> CalibrationResult:
    """Test every quantity's SBC ranks for uniformity (see module docstring).

    Parameters
    ----------
    ranks : xarray.Dataset or DataArray
        The rank dataset of :func:`prism_stats.sweeps.sbc.run_sbc` (variable ``rank``,
        dims ``replicate``, ``quantity``; attribute ``n_draws``), or the rank DataArray.
    alpha : float
        Family-wise error rate.
    n_draws : int, optional
        ``L``; read from the attributes when omitted.
    """
    da = ranks["rank"] if isinstance(ranks, xr.Dataset) else ranks
    L = int(n_draws if n_draws is not None else (ranks.attrs.get("n_draws") or da.attrs["n_draws"]))
    values = da.transpose("replicate", "quantity").values.astype(float)
    q = da["quantity"].values
    variable = da["variable"].values if "variable" in da.coords else q
    kind = da["kind"].values if "kind" in da.coords else np.full(len(q), "")
    rows = []
    for j in range(values.shape[1]):
        r = values[:, j]
        r = r[np.isfinite(r)]
        p, t = ecdf_pvalue(r, L)
        if len(r):
            ecdf = _counts(r, rank_boundaries(L)) / len(r)
            diff = float(np.abs(ecdf - rank_boundaries(L) / (L + 1)).max())
            mean_rank = float(r.mean() / L)
        else:
            diff = mean_rank = float("nan")
        rows.append({"quantity": str(q[j]), "variable": str(variable[j]), "kind": str(kind[j]),
                     "n": len(r), "p_value": p, "statistic": t, "max_ecdf_diff": diff,
                     "mean_rank": mean_rank})
    table = pd.DataFrame(rows)
    table["flagged"] = holm(table["p_value"].to_numpy(), alpha) if len(table) else []
    return CalibrationResult(table=table, alpha=alpha, n_draws=L, n_replicates=values.shape[0])
