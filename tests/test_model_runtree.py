"""The run's ArviZ DataTree: groups, shared names, labelled coords, the new-rater replicates
(checked against their closed-form distribution), ArviZ functions on a real run, the
convergence gate (one chain, E-BFMI, tree depth) and run folders of the earlier format."""

from __future__ import annotations

import json
import shutil

import arviz_plots as azp
import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from scipy import stats
from tidy_sim import simulate_tidy

from prism_stats.model import Run, RunError, build_design, diagnose, load_spec, loo, loo_pit
from prism_stats.model.convergence import Diagnostics
from prism_stats.model.runtree import (
    GROUPS,
    OBSERVED,
    drop_unused_coords,
    observed_scores,
    replicated_scores,
)

# --- no MCMC -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def truth_design():
    part, rat, truth = simulate_tidy(30, 14, seed=5, n_llms=6)
    spec = load_spec("ratings")
    design = build_design((part, rat), spec)
    # the truth in the design's level order (the linear predictor indexes by position)
    truth = truth.sel({d: design.coords[d] for d in truth.dims if d in design.coords})
    return rat, truth, design, spec


def test_observed_scores_are_the_participant_means(truth_design):
    rat, _, design, _ = truth_design
    obs = observed_scores(design)
    expected = rat.groupby("participant")["score"].mean()
    assert obs.dims == ("participant",) and obs.name == OBSERVED
    np.testing.assert_allclose(obs.to_series().loc[expected.index], expected, rtol=1e-12)


def test_replicated_scores_follow_the_new_rater_distribution(truth_design):
    """Gaussian family: a new rater's mean over the participant's cells is
    Normal(sum n_c eta_c / n_p, sigma_participant^2 + sigma^2 / n_p)."""
    _, truth, design, spec = truth_design
    K = 4000
    params = truth.isel(draw=np.zeros(K, dtype=int)).assign_coords(draw=np.arange(K))
    rep = replicated_scores(params, design, spec, np.random.default_rng(1))
    assert rep.dims == ("chain", "draw", "participant")
    assert list(rep["participant"].values) == design.coords["participant"]
    # the expected value leaves the participant's own effect out
    from prism_stats.model.predict import linear_predictor

    eta = linear_predictor(truth, design, spec, participant=False)[0]
    c = design.cells
    n = c["n"].to_numpy(float)
    p = c["participant"].to_numpy()
    n_p = np.bincount(p, n)
    mean = np.bincount(p, n * eta) / n_p
    var = truth["sigma_participant"].item() ** 2 + truth["sigma"].item() ** 2 / n_p
    draws = rep.values[0]
    z_mean = (draws.mean(0) - mean) / np.sqrt(var / K)
    assert np.abs(z_mean).max() < 4.5
    # sample variance: se of s^2 is about var * sqrt(2 / (K - 1))
    z_var = (draws.var(0, ddof=1) - var) / (var * np.sqrt(2 / (K - 1)))
    assert np.abs(z_var).max() < 4.5
    # seeded: the same generator state gives the same replicates
    again = replicated_scores(params, design, spec, np.random.default_rng(1))
    assert np.array_equal(again.values, rep.values)


def test_censored_replicates_simulate_the_cells_and_agree_away_from_the_bounds(truth_design):
    """The censored family simulates clipped ratings cell by cell; with the linear predictor
    far from 1 and 100 its participant means match the Gaussian new-rater means."""
    _, truth, design, spec = truth_design
    K = 1500
    params = truth.isel(draw=np.zeros(K, dtype=int)).assign_coords(draw=np.arange(K))
    params = params.assign(sigma=params["sigma"] * 0 + 6.0, sigma_participant=params["sigma_participant"] * 0 + 4.0)
    gauss = replicated_scores(params, design, spec, np.random.default_rng(3)).values[0]
    cens = replicated_scores(params, design, spec.replace(family="censored"), np.random.default_rng(4)).values[0]
    se = np.sqrt(gauss.var(0) / K + cens.var(0) / K)
    assert np.abs((gauss.mean(0) - cens.mean(0)) / se).max() < 4.5
    assert cens.min() >= 1 and cens.max() <= 100  # clipped ratings


def test_drop_unused_coords():
    ds = xr.Dataset({"a": ("llm", [1.0, 2.0])}, coords={"llm": ["x", "y"], "age_free": [1, 2, 3]})
    assert list(drop_unused_coords(ds).coords) == ["llm"]


def _diag(n_chains=2, bfmi=(1.0, 1.0), saturated=0, n_draws=1000, rhat=1.001):
    import pandas as pd

    table = pd.DataFrame({"max_rhat": [rhat if n_chains > 1 else np.nan], "min_ess_bulk": [900.0],
                          "min_ess_tail": [800.0], "size": [1]}, index=["x"])
    return Diagnostics(table=table, divergences=0, bfmi=list(bfmi), n_chains=n_chains,
                       n_draws=n_draws, treedepth_saturated=saturated)


def test_gate_adds_ebfmi_and_tree_depth_and_cannot_judge_one_chain():
    assert _diag().passed
    low = _diag(bfmi=(0.9, 0.25))
    assert not low.passed and any("E-BFMI" in f and "chain 1" in f for f in low.failures())
    deep = _diag(saturated=30)  # 1.5% of 2,000 draws
    assert not deep.passed and any("tree depth" in f for f in deep.failures())
    assert _diag(saturated=10).passed  # 0.5%: tolerated
    one = _diag(n_chains=1, bfmi=(1.0,))
    assert not one.passed and "cannot be judged" in one.failures()[0]
    assert one.to_dict()["max_rhat"] is None  # JSON null, not NaN
    json.dumps(one.to_dict(), allow_nan=False)
    assert "n/a" in str(one)


# --- a real run ---------------------------------------------------------------------------------


@pytest.mark.mcmc
def test_run_tree_has_every_group_with_shared_names_and_labels(small_run):
    tree = Run.load(small_run.folder).idata
    assert set(GROUPS) <= set(tree.children)
    for group in ("observed_data", "posterior_predictive", "prior_predictive", "log_likelihood"):
        assert list(tree[group].data_vars) == [OBSERVED], group
    obs, pp, ll = tree["observed_data"][OBSERVED], tree["posterior_predictive"][OBSERVED], \
        tree["log_likelihood"][OBSERVED]
    assert pp.dims == ll.dims == ("chain", "draw", "participant") and obs.dims == ("participant",)
    assert list(obs["participant"].values) == list(pp["participant"].values) == list(ll["participant"].values)
    assert pp.sizes["draw"] == tree["posterior"].sizes["draw"]
    for name in ("posterior", "prior"):
        coords = list(tree[name].coords)
        assert not [c for c in coords if c.endswith(("_free", "_free_c", "_free_nc"))], (name, coords)
        assert not [v for v in tree[name].data_vars if v.endswith("_z")]
        assert all(tree[name][d].dtype.kind in "OU" for d in ("llm", "participant"))
    assert tree["constant_data"]["obs_llm"].dtype.kind in "OU"
    assert tree.attrs["run_format"] == 2


@pytest.mark.mcmc
def test_arviz_functions_run_on_a_run(small_run):
    import matplotlib

    tree = small_run.idata
    summary = azs.summary(tree, var_names=["intercept", "sigma", "llm_effect"], round_to="none")
    assert {"mean", "ess_bulk", "r_hat"} <= set(summary.columns) and len(summary) == 23
    elpd = azs.loo(tree)
    assert elpd.n_data_points == tree["observed_data"].sizes["participant"]
    assert np.isclose(elpd.elpd, loo(small_run).elpd)
    pit = loo_pit(small_run)
    assert pit.dims == ("participant",) and float(pit.min()) >= 0 and float(pit.max()) <= 1
    # a well-specified model (synthetic data from it): LOO-PIT close to uniform
    assert stats.kstest(pit.values, "uniform").pvalue > 0.001
    assert azs.loo_pit(tree)[OBSERVED].shape == pit.shape
    for pc in (azp.plot_ppc_dist(tree, num_samples=20),
               azp.plot_ppc_dist(tree, group="prior_predictive", num_samples=20),
               azp.plot_forest(tree, var_names=["llm_effect"]),
               azp.plot_loo_pit(tree)):
        fig = pc.viz["chart"].item() if "chart" in pc.viz else None
        if isinstance(fig, matplotlib.figure.Figure):
            matplotlib.pyplot.close(fig)


@pytest.mark.mcmc
def test_one_chain_runs_are_saved_and_the_gate_cannot_judge_them(small_run, tmp_path):
    tree = small_run.idata
    one = xr.DataTree.from_dict({name: tree[name].to_dataset().isel(chain=[0]) if "chain" in tree[name].dims
                                 else tree[name].to_dataset() for name in tree.children})
    run = Run(spec=small_run.spec, design=small_run.design, idata=one, meta=dict(small_run.meta))
    run.save(tmp_path / "one")  # this crashed before (R-hat of one chain)
    diag = json.loads((tmp_path / "one" / "diagnostics.json").read_text())
    assert not diag["passed"] and diag["max_rhat"] is None
    assert "cannot be judged" in diag["failures"][0]
    assert np.isfinite(diagnose(run).min_ess_bulk)


@pytest.mark.mcmc
def test_earlier_run_folders_load_and_ask_for_a_refit(small_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(small_run.folder, old)
    tree = small_run.idata
    design = small_run.design
    # the format-1 layout: cell means as observed data, no predictive or prior groups
    legacy = xr.DataTree.from_dict({
        "posterior": tree["posterior"].to_dataset().assign_coords(country_free=["a", "b"]),
        "sample_stats": tree["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"cell_mean": ("obs_cell", design.cells["mean"].to_numpy()),
                                     "cell_n": ("obs_cell", design.cells["n"].to_numpy())}),
        "constant_data": design.to_dataset(),
        "log_likelihood": tree["log_likelihood"].to_dataset(),
    })
    (old / "posterior.nc").unlink()
    legacy.to_netcdf(old / "posterior.nc", engine="h5netcdf")
    meta = json.loads((old / "run.json").read_text())
    meta.pop("posterior_sha256")  # format-1 folders recorded no hash of the posterior
    (old / "run.json").write_text(json.dumps(meta))
    run = Run.load(old)
    assert run.meta["upgraded_from_format"] == 1
    assert "country_free" not in run.idata["posterior"].coords
    xr.testing.assert_allclose(run.idata["observed_data"][OBSERVED], tree["observed_data"][OBSERVED])
    assert np.isclose(loo(run).elpd, loo(small_run).elpd)  # what needs no refit still works
    with pytest.raises(RunError, match="refit"):
        loo_pit(run)
    assert "missing" in run._repr_html_()
    (old / "posterior.nc").write_bytes(b"not a netcdf file")
    with pytest.raises(RunError, match="damaged"):
        Run.load(old)


@pytest.mark.mcmc
def test_run_repr_is_short_and_html_lists_the_groups(small_run):
    text = repr(small_run)
    assert len(text) < 200 and "ratings" in text and "chains" in text
    page = small_run._repr_html_()
    assert "posterior_predictive" in page and len(page) < 5000
