"""The compiled welfare kernels draw from the same distributions as the former NumPy code.

Exact pieces (binomial draws, chosen probabilities) against scipy and the former
implementation (``tests/welfare_reference.py``); jury picks and the whole welfare grid
against the former implementation on a fixed seed, to Monte Carlo tolerance; and the
results do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import welfare_reference as ref
from scipy import stats

from prism_stats.welfare import model_welfare
from prism_stats.welfare.model_based import _rule_tables, chosen_probabilities, pool_shares
from prism_stats.welfare.sampling import BinomialTables, pick_by_noisy_mean, pick_by_votes


@pytest.mark.parametrize("n", [1, 10, 100])
@pytest.mark.parametrize("p", [0.0, 0.3 / 512, 1 / 512, 0.013, 0.35, 0.5 + 1e-9, 0.9991, 1.0])
def test_binomial_tables_draw_the_binomial(n, p):
    x = BinomialTables(n).sample(np.full(200_000, p), np.random.default_rng(7))
    if p in (0.0, 1.0):
        assert (x == round(n * p)).all()
        return
    observed = np.bincount(x, minlength=n + 1)
    expected = stats.binom.pmf(np.arange(n + 1), n, p) * len(x)
    pooled_obs, pooled_exp = [], []
    acc_o = acc_e = 0.0
    for o, e in zip(observed, expected, strict=True):  # pool sparse cells (expected >= 20)
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 20:
            pooled_obs.append(acc_o)
            pooled_exp.append(acc_e)
            acc_o = acc_e = 0.0
    if len(pooled_exp) < 2:  # nearly all mass at one value
        assert abs(x.mean() - n * p) < 5 * np.sqrt(n * p * (1 - p) / len(x)) + 1e-12
        return
    pooled_obs[-1] += acc_o
    pooled_exp[-1] += acc_e
    chi2 = stats.chisquare(pooled_obs, pooled_exp)
    assert chi2.pvalue > 1e-4, (n, p, chi2)


def test_chosen_probability_kernel_equals_the_former_implementation():
    rng = np.random.default_rng(1)
    eta = rng.normal(60, 8, (4, 21, 7))
    sigma = np.array([12.0, 20.0, 25.0, 3.0])
    np.testing.assert_allclose(chosen_probabilities(eta, sigma, threads=2),
                               ref.chosen_probabilities(eta, sigma), rtol=1e-12, atol=1e-14)


def _pick_frequencies(picks: np.ndarray, M: int) -> np.ndarray:
    return np.stack([np.bincount(row, minlength=M) for row in picks]) / picks.shape[1]


@pytest.mark.parametrize("rule", ["mean", "chosen", "veto"])
def test_picks_match_the_former_implementation(rule):
    """Per posterior draw, the distribution of the pick over 20,000 juries agrees with the
    former implementation within Monte Carlo error (near-ties included)."""
    rng = np.random.default_rng(3)
    S, M, C, R, n = 3, 5, 4, 20_000, 20
    if rule == "mean":
        table = 60 + rng.normal(0, 1.5, (S, M, C))
        table[:, 1] = table[:, 0]  # an exact tie in expectation
    else:
        base = 0.08 if rule == "veto" else 0.35
        table = np.clip(base + rng.normal(0, 0.03, (S, M, C)), 0, 1)
        table[:, 2] = table[:, 3]
    sigma = np.array([10.0, 15.0, 20.0])
    comps = np.random.default_rng(4).multinomial(n, np.full(C, 1 / C), size=R)
    old = ref.picks(rule, table, comps, sigma, np.random.default_rng(5))
    avg = np.ascontiguousarray(np.einsum("rc,smc->srm", comps.astype(float), table) / n)
    new = np.empty((S, R), dtype=np.int16)
    if rule == "mean":
        pick_by_noisy_mean(avg, sigma / np.sqrt(n), np.random.default_rng(6), new)
    else:
        t = BinomialTables(n)
        pick_by_votes(avg, n, rule == "veto", np.random.default_rng(6), t.cdf, t.guide, t.grid, new)
    f_old, f_new = _pick_frequencies(old, M), _pick_frequencies(new, M)
    se = np.sqrt(np.maximum(f_old * (1 - f_old), 1e-4) * 2 / R)
    assert np.all(np.abs(f_new - f_old) < 4.5 * se), (f_old, f_new)


@pytest.mark.slow
@pytest.mark.mcmc
def test_welfare_grid_matches_the_former_implementation_and_ignores_threads(small_run):
    """The whole grid: identical results on 1 and 2 threads; welfare means and pick shares
    of every (rule, scheme) agree with the former implementation on the same tables and
    jury compositions, within Monte Carlo tolerance."""
    kw = {"replicates": 300, "draws": 40, "seed": 11, "sizes": (10, 100), "pools": ("representative", "male")}
    one = model_welfare(small_run, "uk", threads=1, **kw)
    two = model_welfare(small_run, "uk", threads=2, **kw)
    np.testing.assert_array_equal(one["chosen_llm"].values, two["chosen_llm"].values)

    from prism_stats import census
    from prism_stats.model.predict import rating_noise_sd
    from prism_stats.welfare.model_based import _thin

    params = _thin(small_run.posterior, kw["draws"])
    frame = census.frame("uk")
    tables = _rule_tables(params, small_run.spec, frame, "uk", ("mean", "chosen", "veto"), kw["seed"])
    sigma = rating_noise_sd(params)
    shares = pool_shares(frame, ["representative", "male"])
    M = tables["mean"].shape[1]
    for scheme in one["scheme"].values:
        pool, size = str(one["pool"].sel(scheme=scheme).values), int(one["size"].sel(scheme=scheme).values)
        comps = np.random.default_rng(99).multinomial(size, shares[pool], size=kw["replicates"])
        for rule in ("mean", "chosen", "veto"):
            old = ref.picks(rule, tables[rule], comps, sigma, np.random.default_rng(12))
            picked = one["chosen_llm"].sel(country="uk", rule=rule, scheme=scheme).values  # LLM names
            new = pd.Index(one["llm"].values).get_indexer(picked.ravel()).reshape(old.shape[0], -1)
            assert (new >= 0).all()
            f_old = np.bincount(old.ravel(), minlength=M) / old.size
            f_new = np.bincount(new.ravel(), minlength=M) / new.size
            # juries differ in composition as well as noise: allow for both
            assert np.abs(f_new - f_old).max() < 0.03, (rule, scheme, f_old.round(3), f_new.round(3))
