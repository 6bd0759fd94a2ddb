"""The exact simultaneous ECDF test of SBC ranks (no MCMC; fast)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from prism_stats.sweeps import calibration as cal
from prism_stats.sweeps.sbc_replicate import ranks_of, thin_indices


def _brute_force_prob(n, z, lower, upper, sims=40000, seed=0):
    rng = np.random.default_rng(seed)
    u = np.sort(rng.uniform(size=(sims, n)), axis=1)
    counts = np.stack([np.searchsorted(row, z, side="left") for row in u])
    return np.mean(np.all((counts >= lower) & (counts <= upper), axis=1))


def test_prob_inside_matches_brute_force():
    n, L = 12, 9
    z = cal.rank_boundaries(L) / (L + 1)
    lower = np.maximum(0, np.round(n * z - 3)).astype(int)
    upper = np.minimum(n, np.round(n * z + 2)).astype(int)
    exact = cal.prob_inside(n, z, lower, upper)
    assert 0.2 < exact < 0.95  # a band that actually binds
    assert abs(exact - _brute_force_prob(n, z, lower, upper)) < 0.01


def test_prob_inside_of_trivial_band_is_one_and_of_empty_band_zero():
    n, L = 7, 4
    z = cal.rank_boundaries(L) / (L + 1)
    assert cal.prob_inside(n, z, np.zeros(L, int), np.full(L, n)) == pytest.approx(1.0)
    assert cal.prob_inside(n, z, np.full(L, n), np.full(L, n)) < 1e-3


def test_pvalues_are_uniform_under_the_null():
    rng = np.random.default_rng(1)
    N, L = 30, 49
    p = np.array([cal.ecdf_pvalue(rng.integers(0, L + 1, N), L)[0] for _ in range(1500)])
    # an exact test on discrete ranks: P(p <= a) <= a, and close to a
    for a in (0.05, 0.2, 0.5):
        assert (p <= a).mean() <= a + 0.02
        assert (p <= a).mean() >= a - 0.05


def test_band_coverage_and_agreement_with_the_pvalue():
    N, L, alpha = 25, 39, 0.05
    band = cal.simultaneous_band(N, L, alpha)
    assert band.coverage >= 1 - alpha
    assert band.coverage < 1 - alpha + 0.02
    # outside the band <=> p <= alpha, on random and skewed rank sets
    rng = np.random.default_rng(3)
    bounds = cal.rank_boundaries(L)
    for k in range(300):
        a = 1.0 + 0.8 * (k % 3)
        ranks = np.minimum(L, (rng.beta(a, 1.0, N) * (L + 1)).astype(int))
        counts = np.searchsorted(np.sort(ranks), bounds, side="left")
        outside = bool(np.any((counts < band.lower) | (counts > band.upper)))
        p, _ = cal.ecdf_pvalue(ranks, L)
        assert outside == (p <= alpha)


def test_exact_band_threshold_agrees_with_the_arviz_simulation():
    """On a fine rank grid the exact threshold equals arviz-stats' simulated one (up to
    simulation noise), which is the same Säilynoja et al. construction."""
    from arviz_stats.ecdf_utils import simulate_confidence_bands

    N = 20
    L = N * 250 - 1  # boundaries exactly at j / N, the points arviz evaluates
    band = cal.simultaneous_band(N, L, 0.05, max_points=N - 1)
    assert np.allclose(band.z, np.arange(1, N) / N)
    simulated = 1 - simulate_confidence_bands(N, 1, band.z, 0.95, 4000, np.random.default_rng(1))
    assert simulated == pytest.approx(band.threshold, rel=0.15)


def test_skewed_and_overdispersed_ranks_are_flagged():
    L = 99
    rng = np.random.default_rng(5)
    too_high = np.minimum(L, (rng.beta(3, 1, 40) * (L + 1)).astype(int))
    u_shaped = np.where(rng.random(40) < 0.5, rng.integers(0, 5, 40), rng.integers(95, 100, 40))
    assert cal.ecdf_pvalue(too_high, L)[0] < 1e-4
    assert cal.ecdf_pvalue(u_shaped, L)[0] < 1e-4
    assert cal.ecdf_pvalue(np.full(10, L), L)[0] < 1e-10


def test_holm_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005 (<= .05/4), 0.01 (<= .05/3), 0.03 (> .05/2): stop
    assert cal.holm(p, 0.05).tolist() == [True, False, False, True, False]


def test_calibration_test_flags_only_the_bad_quantity():
    rng = np.random.default_rng(7)
    R, L = 60, 49
    good = rng.integers(0, L + 1, (R, 5))
    bad = np.minimum(L, (rng.beta(4, 1, (R, 1)) * (L + 1)).astype(int))
    ranks = xr.Dataset(
        {"rank": (("replicate", "quantity"), np.hstack([good, bad]))},
        coords={"replicate": np.arange(R), "quantity": [f"q{i}" for i in range(6)],
                "variable": ("quantity", ["a"] * 5 + ["b"])},
        attrs={"n_draws": L},
    )
    res = cal.calibration_test(ranks)
    assert res.flagged == ["q5"]
    assert not res.passed
    assert res.by_variable().set_index("variable").loc["b", "flagged"] == 1
    assert "FAIL" in str(res)
    assert cal.calibration_test(ranks.isel(quantity=slice(0, 5))).passed


def test_ranks_and_thinning():
    rng = np.random.default_rng(0)
    draws = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    truth = np.array([2.5, 5.0])
    r = np.array([ranks_of(truth, draws, rng) for _ in range(400)])
    assert set(r[:, 0]) == {2}
    assert set(r[:, 1]) == {0, 1, 2, 3}  # all tied: uniform over 0..3
    idx = thin_indices(1000, 99)
    assert len(idx) == 99 and idx[0] == 0 and idx[-1] < 1000
    assert np.all(np.diff(idx) >= 10)
    with pytest.raises(ValueError, match="sample more draws"):
        thin_indices(50, 99)
