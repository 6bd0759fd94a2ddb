"""Model-based welfare: exact pieces against brute force, and planted-truth behaviour."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from welfare_reference import elementary_symmetric as _elementary_symmetric

from prism_stats import census
from prism_stats.model import load_spec
from prism_stats.welfare import (
    exclusion_gaps,
    expected_gaps,
    model_welfare,
    pool_shares,
    summarise_welfare,
    true_welfare,
)
from prism_stats.welfare.model_based import chosen_probabilities
from prism_stats.welfare.results import SUMMARY_COLUMNS, WelfareResultError

LLMS = ["command", "claude-instant-1", "palm-2"]


def test_elementary_symmetric_polynomials_by_brute_force():
    a = np.array([0.2, 0.5, 0.9, 0.3])
    e = _elementary_symmetric(a[None, :], 3)[:, 0]
    for k in range(4):
        assert e[k] == pytest.approx(sum(np.prod(c) for c in itertools.combinations(a, k)) if k else 1.0)


def test_chosen_probabilities_match_simulation():
    rng = np.random.default_rng(3)
    eta = np.array([[[70.0, 60.0], [65.0, 66.0], [50.0, 70.0], [60.0, 55.0], [58.0, 58.0]]])  # (1, M=5, C=2)
    sigma = np.array([12.0])
    p = chosen_probabilities(eta, sigma)[0]
    # Simulate: m shown with k-1 uniform rivals, k in {2,3,4} with probability ~ k * count.
    sizes, counts = np.array([2, 3, 4]), np.array([225, 1545, 6241])
    w = sizes * counts / (sizes * counts).sum()
    n = 20_000
    for m in (0, 2, 4):
        for c in range(2):
            k = rng.choice(sizes, size=n, p=w)
            wins = 0
            others = [j for j in range(5) if j != m]
            for kk in (2, 3, 4):
                sel = k == kk
                rivals = np.array([rng.choice(others, kk - 1, replace=False) for _ in range(sel.sum())])
                y_m = eta[0, m, c] + sigma[0] * rng.standard_normal(sel.sum())
                y_r = eta[0, rivals, c] + sigma[0] * rng.standard_normal(rivals.shape)
                wins += (y_m[:, None] > y_r).all(axis=1).sum()
            assert p[m, c] == pytest.approx(wins / n, abs=0.015)


def test_pool_shares():
    frame = census.frame("uk")
    shares = pool_shares(frame, ["representative", "male", "over45"],
                         custom={"young": (frame["age"] == "18-24").to_numpy()})
    assert np.allclose(shares["representative"], frame["share"])
    assert shares["male"][(frame["sex"] == "Female").to_numpy()].sum() == 0
    assert shares["male"].sum() == pytest.approx(1.0)
    with pytest.raises(WelfareResultError):
        pool_shares(frame, ["martians"])


def _planted(sigma: float = 1e-3) -> tuple[xr.Dataset, object]:
    """Males strongly prefer command, females claude-instant-1; palm-2 is worst for all."""
    spec = load_spec("ratings").replace(demographics=("gender",), llm_interactions=("gender",))
    ds = xr.Dataset(
        {
            "intercept": (("chain", "draw"), [[60.0]]),
            "sigma": (("chain", "draw"), [[sigma]]),
            "sigma_participant": (("chain", "draw"), [[10.0]]),
            "llm_effect": (("chain", "draw", "llm"), [[[2.0, 1.0, -3.0]]]),
            "gender_effect": (("chain", "draw", "gender"), [[[0.0, 0.0]]]),
            "llm_gender": (("chain", "draw", "llm", "gender"), [[[[6.0, -6.0], [-6.0, 6.0], [0.0, 0.0]]]]),
        },
        coords={"chain": [0], "draw": [0], "llm": LLMS, "gender": ["Male", "Female"]},
    )
    return ds, spec


def test_planted_preferences_give_the_expected_picks_and_gaps():
    params, spec = _planted()
    ds = model_welfare((params, spec), "uk", rules=("mean",), replicates=200, draws=None, seed=1)
    picks = ds["chosen_llm"].sel(country="uk", rule="mean")
    # a male-only jury always picks command; a large representative one picks whichever
    # sex is the majority of the draw -- never palm-2 (picks are LLM names)
    assert (picks.sel(scheme="male_100") == LLMS[0]).all()
    assert not (picks == LLMS[2]).any()
    gaps = exclusion_gaps(ds).set_index(["target", "pool"])
    # non-male welfare is worse under male juries than under representative ones
    assert gaps.loc[("nonmale", "male"), "gap_mean"] < -1.0
    assert gaps.loc[("nonmale", "male"), "p_worse"] > 0.3
    # white / over45 pools do not exclude on gender: no gap for non-male targets beyond noise
    assert abs(gaps.loc[("nonmale", "white"), "gap_mean"]) < abs(gaps.loc[("nonmale", "male"), "gap_mean"])
    s = summarise_welfare(ds)
    assert tuple(s.columns) == SUMMARY_COLUMNS
    assert ((s.regret_mean >= 0) & (s.p_optimal.between(0, 1))).all()


def test_welfare_is_reproducible_and_thins_draws(small_run):
    a = model_welfare(small_run, "us", rules=("mean", "veto"), replicates=50, draws=40, seed=9)
    b = model_welfare(small_run, "us", rules=("mean", "veto"), replicates=50, draws=40, seed=9)
    assert a["chosen_llm"].equals(b["chosen_llm"])
    assert a.sizes["chain"] * a.sizes["draw"] == 40
    assert set(a["welfare"].dims) >= {"chain", "draw", "replicate", "scheme", "target"}
    eg = expected_gaps(a)
    assert {"gap_mean", "gap_q05", "gap_q95", "p_negative"} <= set(eg.columns)
    assert (eg.gap_q05 <= eg.gap_q95).all()


def test_true_welfare_under_the_generator(synth_small):
    truth = xr.open_dataset(synth_small / "truth" / "params.nc").load()
    tw = true_welfare(truth, "uk", replicates=300, seed=2)
    assert tw.attrs["method"] == "truth"
    s = summarise_welfare(tw)
    assert ((s.regret_mean >= 0) & (s.p_optimal.between(0, 1))).all()
    # the welfare table of the mean rule is the generator's closed-form population means
    pop = pd.read_csv(synth_small / "truth" / "population_means.csv")
    pop = pop[(pop.country == "uk") & (pop.group == "nonmale")].set_index("llm")["mean"]
    lw = tw["llm_welfare"].sel(country="uk", rule="mean", target="nonmale").to_series()
    assert np.allclose(lw.loc[pop.index].to_numpy(), pop.to_numpy(), atol=1e-6)
