"""Exposure-matched model-based juries: fill rules, leniency, convergence to full information,
and a brute-force simulation of individual jurors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from prism_stats.welfare import model_welfare
from prism_stats.welfare.exposure import exposure_profiles, jury_exposure, unseen_value
from prism_stats.welfare.results import WelfareResultError
from prism_stats.welfare.sampling import pick_exposed_means, pick_exposed_votes


def _mean_picks(eta, seen, tau, taste2, noise2, seed, S=1):
    """Picks of the mean rule for one posterior draw repeated S times: (S, R)."""
    mean = np.einsum("rmc,mc->rm", seen.seen_cells, eta) / np.maximum(seen.n_seen, 1)
    mean = np.ascontiguousarray(np.broadcast_to(mean, (S, *mean.shape)))
    out = np.empty((S, mean.shape[1]), dtype=np.int64)
    pick_exposed_means(mean, seen.n_seen, seen.factor, seen.inv_exposure, np.full(S, tau),
                       np.full(S, taste2), np.full(S, noise2), unseen_value("mean"),
                       np.random.default_rng(seed), out)
    return out


def test_exposure_profiles_from_a_design_and_from_a_release(small_data):
    from prism_stats.model import build_design, load_spec

    design = build_design(small_data, load_spec("ratings"))
    prof = exposure_profiles(design)
    opening = small_data.ratings.loc[small_data.ratings["turn"] == 0]
    assert int(prof.sum()) == len(opening)  # the spec keeps every opening rating
    per_person = prof.sum("llm").values
    assert per_person.min() >= 2  # an opening set shows 2-4 LLMs
    balanced = exposure_profiles(small_data, balanced=True)
    assert int(balanced.sum()) == int(opening["balanced"].astype(bool).sum())
    assert int(exposure_profiles(small_data, balanced=False).sum()) == len(opening)
    aligned = exposure_profiles(prof, ["palm-2", "command", "not-an-llm"])
    assert list(aligned["llm"].values) == ["palm-2", "command", "not-an-llm"]
    assert int(aligned.sel(llm="not-an-llm").sum()) == 0


def test_fill_rules_for_llms_no_juror_saw():
    # nobody ever sees LLM 2; LLMs 0 and 1 are seen by every juror
    profiles = np.array([[1, 2, 0], [2, 1, 0]])
    comps = np.random.default_rng(0).multinomial(5, [0.5, 0.5], size=400)
    seen = jury_exposure(profiles, comps, np.random.default_rng(1))
    assert (seen.n_seen[:, 2] == 0).all() and (seen.n_seen[:, :2] == 5).all()
    eta = np.array([[50.0, 50.0], [48.0, 52.0], [99.0, 99.0]])  # LLM 2 would win if it were seen
    picks = _mean_picks(eta, seen, tau=5.0, taste2=4.0, noise2=100.0, seed=2)
    assert not (picks == 2).any()  # an unseen LLM scores 1 on the rating scale
    jurors = seen.showings.sum(axis=-1)
    for rule, lowest, expect_unseen in (("chosen", False, False), ("veto", True, True)):
        prob = np.full((1, *jurors.shape), 0.3)
        out = np.empty((1, len(comps)), dtype=np.int64)
        pick_exposed_votes(prob, jurors.astype(np.int64), seen.n_seen, lowest, unseen_value(rule),
                           np.random.default_rng(3), out)
        # chosen: unseen share 0, never above a seen LLM's; veto: unseen scores 1 (never vetoed),
        # so it wins unless a seen LLM also has no veto (then a random tie)
        if expect_unseen:
            assert (out == 2).mean() > 0.9
        else:
            assert (out == 2).mean() < 0.05  # only ties at share 0 (0.7^7 per LLM)


def test_leniency_enters_when_jurors_saw_different_llms():
    """Two jurors, one saw LLM 0 only, the other LLM 1 only: the difference of the jury
    means carries both participant effects; when both saw both, it cancels."""
    delta, tau, taste2, noise2 = 2.0, 6.0, 1.0, 4.0
    eta = np.array([[60.0 + delta], [60.0]])
    comps = np.full((40_000, 1), 2)
    apart = jury_exposure(np.array([[1, 0], [0, 1]]), comps, np.random.default_rng(4))
    split = (apart.n_seen == 1).all(axis=1)  # the jurors drew different profiles
    picks = _mean_picks(eta, apart, tau, taste2, noise2, seed=5)[0][split]
    p_apart = stats.norm.cdf(delta / np.sqrt(2 * (tau**2 + taste2 + noise2)))
    assert (picks == 0).mean() == pytest.approx(p_apart, abs=4 * np.sqrt(p_apart * (1 - p_apart) / split.sum()))
    together = jury_exposure(np.array([[1, 1]]), comps, np.random.default_rng(6))
    picks = _mean_picks(eta, together, tau, taste2, noise2, seed=7)[0]
    p_together = stats.norm.cdf(delta / np.sqrt(2 * (taste2 + noise2) / 2))
    assert (picks == 0).mean() == pytest.approx(p_together, abs=4 * np.sqrt(p_together * (1 - p_together) / len(picks)))
    assert p_together - p_apart > 0.2


def test_many_jurors_converge_to_full_information():
    """With many jurors each LLM is seen by many of them: the jurors' average expected
    rating tends to the pool's (the full-information jury mean) and the shared and
    independent noise vanish."""
    rng = np.random.default_rng(8)
    M, C = 6, 5
    eta = rng.normal(60, 5, (M, C))
    shares = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    profiles = np.stack([np.bincount(rng.choice(M, size=rng.integers(2, 9)), minlength=M) for _ in range(200)])
    gaps = []
    for n in (50, 5000):
        comps = rng.multinomial(n, shares, size=20)
        seen = jury_exposure(profiles, comps, np.random.default_rng(9))
        matched = np.einsum("rmc,mc->rm", seen.seen_cells, eta) / seen.n_seen
        full = comps @ eta.T / n
        gaps.append((np.abs(matched - full).max(), np.abs(seen.factor).max(), seen.inv_exposure.max()))
    assert gaps[1][0] < 0.35 * gaps[0][0] and gaps[1][0] < 0.3
    assert gaps[1][1] < 0.15 * gaps[0][1] and gaps[1][2] < 0.02 * gaps[0][2]


def test_matches_a_brute_force_simulation_of_jurors():
    """Individual jurors with their own effect, tastes and noisy ratings, averaged as the
    study averages them, against the exposure kernels (mean and chosen rules)."""
    rng = np.random.default_rng(10)
    M, C, n, R = 3, 2, 4, 30_000
    eta = np.array([[61.0, 59.0], [60.0, 60.5], [58.0, 63.0]])
    tau, omega, s = 4.0, 1.5, 6.0
    profiles = np.array([[1, 1, 0], [0, 2, 1], [1, 0, 1], [2, 1, 1], [0, 0, 1]])
    comps = rng.multinomial(n, [0.4, 0.6], size=R)
    seen = jury_exposure(profiles, comps, np.random.default_rng(11))
    fast = _mean_picks(eta, seen, tau, omega**2, s**2, seed=12)[0]

    brute_rng = np.random.default_rng(13)
    brute = np.empty(R, dtype=np.int64)
    p_choose = np.array([[0.5, 0.3], [0.2, 0.45], [0.35, 0.35]])
    brute_votes = np.empty(R, dtype=np.int64)
    for r in range(R):
        cells = np.repeat(np.arange(C), comps[r])
        counts = profiles[brute_rng.integers(len(profiles), size=n)]
        u = tau * brute_rng.standard_normal(n)
        total, share, k = np.zeros(M), np.zeros(M), np.zeros(M)
        for j in range(n):
            for m in range(M):
                if counts[j, m] == 0:
                    continue
                ratings = eta[m, cells[j]] + u[j] + omega * brute_rng.standard_normal() + \
                    s * brute_rng.standard_normal(counts[j, m])
                total[m] += ratings.mean()
                share[m] += (brute_rng.random(counts[j, m]) < p_choose[m, 0]).mean()
                k[m] += 1
        score = np.where(k > 0, total / np.maximum(k, 1), unseen_value("mean"))
        brute[r] = brute_rng.choice(np.flatnonzero(score == score.max()))
        vote = np.where(k > 0, share / np.maximum(k, 1), unseen_value("chosen"))
        brute_votes[r] = brute_rng.choice(np.flatnonzero(vote == vote.max()))
    f_fast, f_brute = np.bincount(fast, minlength=M) / R, np.bincount(brute, minlength=M) / R
    np.testing.assert_allclose(f_fast, f_brute, atol=4.5 * np.sqrt(0.25 * 2 / R))

    jurors = seen.showings.sum(axis=-1)
    prob = np.ascontiguousarray(np.broadcast_to(p_choose[:, 0], (1, *jurors.shape)))  # same p in both cells
    votes = np.empty((1, R), dtype=np.int64)
    pick_exposed_votes(prob, jurors.astype(np.int64), seen.n_seen, False, unseen_value("chosen"),
                       np.random.default_rng(14), votes)
    f_fast, f_brute = np.bincount(votes[0], minlength=M) / R, np.bincount(brute_votes, minlength=M) / R
    np.testing.assert_allclose(f_fast, f_brute, atol=4.5 * np.sqrt(0.25 * 2 / R))


def test_matched_exposure_needs_profiles_without_a_run():
    params = xr.Dataset({"intercept": (("chain", "draw"), [[60.0]])}, coords={"llm": ["command"]})
    with pytest.raises(WelfareResultError, match="exposure profiles"):
        model_welfare((params, None), "uk", exposure="matched")
    with pytest.raises(WelfareResultError, match="unknown exposure"):
        model_welfare((params, None), "uk", exposure="partial")


@pytest.mark.slow
@pytest.mark.mcmc
def test_matched_welfare_on_a_fitted_run(small_run):
    kw = {"replicates": 200, "draws": 30, "seed": 4, "sizes": (10, 100), "pools": ("representative", "male")}
    full = model_welfare(small_run, "uk", **kw)
    matched = model_welfare(small_run, "uk", exposure="matched", **kw)
    again = model_welfare(small_run, "uk", exposure="matched", threads=1, **kw)
    np.testing.assert_array_equal(matched["chosen_llm"].values, again["chosen_llm"].values)
    assert matched.attrs["exposure"] == "matched" and full.attrs["exposure"] == "full"
    assert matched.attrs["exposure_profiles"] == len(small_run.design.coords["participant"])
    # juries see fewer ratings per LLM: their picks are noisier, so they find each target's
    # best LLM less often than full-information juries of the same size
    p_full = float(full["regret"].sel(rule="mean").mean())
    p_matched = float(matched["regret"].sel(rule="mean").mean())
    assert p_matched > p_full


@pytest.mark.slow
@pytest.mark.mcmc
def test_cli_welfare_exposure_matched(small_run, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from prism_stats.cli import app

    run = tmp_path / "run"
    shutil.copytree(small_run.folder, run)
    args = ["welfare", str(run), "--country", "uk", "--sizes", "10", "--pools", "representative,male",
            "--replicates", "20", "--draws", "10"]
    result = CliRunner().invoke(app, [*args, "--exposure", "matched"])
    assert result.exit_code == 0, result.output
    assert "matched exposure" in result.output
    for name in ("welfare_uk.nc", "welfare_uk.csv", "welfare_expected_gaps_uk.csv"):
        assert (run / "exposure_matched" / name).is_file()
    assert not (run / "welfare_uk.nc").exists()  # full information goes to the run folder itself
    bad = CliRunner().invoke(app, [*args, "--exposure", "partial"])
    assert bad.exit_code == 2 and "'partial' is not one of 'full', 'matched'" in bad.output
