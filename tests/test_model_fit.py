"""Real (small, seeded) fits of the main spec: recovery against the synthetic truth, run
folders, diagnostics, predictive checks, LOO, MRP, the MixedLM cross-check and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from prism_stats.cli import app
from prism_stats.model import Run, diagnose, loo, predictive_checks, prior_predictive
from prism_stats.model.crosscheck import mixedlm_crosscheck
from prism_stats.poststrat import poststratify

pytestmark = pytest.mark.mcmc
runner = CliRunner()


def test_run_folder_round_trip_and_metadata(small_run, small_data):
    again = Run.load(small_run.folder)
    assert again.spec.to_dict() == small_run.spec.to_dict()
    assert np.array_equal(again.posterior["llm_effect"].values, small_run.posterior["llm_effect"].values)
    meta = json.loads((small_run.folder / "run.json").read_text())
    assert meta["data"]["data_hash"] == small_data.data_hash
    assert meta["data"]["folder"] and meta["seed"] == 11
    assert {"pymc", "arviz", "nutpie", "numpy"} <= set(meta["versions"])
    assert meta["design"]["n_ratings"] == int((small_data.ratings["turn"] == 0).sum())
    assert meta["design"]["filtered"]["later_turns"] == int((small_data.ratings["turn"] > 0).sum())
    # participants were marginalized out, then redrawn: every rater has draws
    assert again.posterior["participant_effect"].sizes["participant"] == meta["design"]["n_participants"]
    assert json.loads((small_run.folder / "diagnostics.json").read_text())["n_draws"] == 300


def test_diagnostics_and_predictive_checks(small_run, small_data):
    diag = diagnose(small_run)
    assert diag.max_rhat < 1.05 and diag.divergences == 0
    assert set(diag.table.index) >= {"intercept", "sigma", "llm_effect", "llm_gender", "participant_effect"}
    scores = small_data.ratings.loc[small_data.ratings.turn == 0, "score"].to_numpy(float)
    ppc = predictive_checks(small_run, draws=40, observed_scores=scores)
    assert ppc["llm_mean"].sizes["llm"] == 21
    # the model reproduces per-LLM means: observed means sit inside the replicated spread
    assert float(((ppc["llm_mean_ppp"] > 0.01) & (ppc["llm_mean_ppp"] < 0.99)).mean()) > 0.9
    # Gaussian replicates put mass outside the slider, the observed ratings do not
    outside = ppc["score_bin"] < 1
    assert float(ppc["score_density"].where(outside).sum("score_bin").mean()) > 0.01
    assert float(ppc["observed_score_density"].where(outside).sum()) == 0.0
    prior = prior_predictive(small_run.design, small_run.spec, draws=30)
    # the prior is wider than the posterior predictive, but on the rating scale
    assert float(prior["llm_mean"].std()) > float(ppc["llm_mean"].std())
    assert abs(float(prior["llm_mean"].median()) - 60) < 25


def test_loo_by_participant(small_run):
    result = loo(small_run)
    assert np.isfinite(result.elpd) and result.n_data_points == small_run.design.participant_levels.shape[0]
    assert float((np.asarray(result.pareto_k) > 0.7).mean()) < 0.05


def test_mrp_recovers_the_census_truth_better_than_raw_means(small_run, small_data, synth_small):
    truth = pd.read_csv(synth_small / "truth" / "population_means.csv")
    for country in ("uk", "us"):
        s = poststratify(small_run, country, data=small_data).summary()
        s = s.loc[s.group == "all"].merge(truth, on=["country", "group", "llm"], suffixes=("", "_true"))
        covered = ((s.q05 <= s.mean_true) & (s.mean_true <= s.q95)).mean()
        assert covered >= 0.85, (country, covered)
        rmse_mrp = np.sqrt(((s["mean"] - s.mean_true) ** 2).mean())
        rmse_raw = np.sqrt(((s.raw_mean - s.mean_true) ** 2).mean())
        assert rmse_mrp < rmse_raw, (country, rmse_mrp, rmse_raw)


def test_llm_effects_agree_with_mixedlm(small_run, small_data):
    table = mixedlm_crosscheck(small_run, small_data)
    assert len(table) == 21
    assert table.attrs["correlation"] >= 0.98


def test_cli_on_a_run_folder(small_run, tmp_path):
    folder = str(small_run.folder)
    res = runner.invoke(app, ["diagnose", folder, "--json"])
    assert res.exit_code == 0, res.output
    assert "max_rhat" in json.loads(res.output)
    res = runner.invoke(app, ["poststratify", folder, "--country", "uk"])
    assert res.exit_code == 0, res.output
    assert (small_run.folder / "poststrat_uk.csv").exists() and (small_run.folder / "poststrat_uk.nc").exists()
    res = runner.invoke(app, ["ppc", folder, "--out", str(tmp_path), "--draws", "20"])
    assert res.exit_code == 0, res.output
    for name in ("ppc.png", "ppc.pdf", "prior_predictive.png"):
        assert (tmp_path / name).stat().st_size > 1000
    res = runner.invoke(app, ["loo", folder])
    assert res.exit_code == 0 and "elpd" in res.output.lower()
    res = runner.invoke(app, ["poststratify", str(tmp_path / "nothing"), "--country", "uk"])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_cli_fit_and_strict_gate(synth_small, tmp_path):
    # One far too short chain: the fit completes (one chain used to crash the diagnostics),
    # the strict gate cannot judge convergence and must fail with exit code 3.
    args = ["fit", "--data", str(synth_small), "--out", str(tmp_path / "run"), "--draws", "30",
            "--tune", "30", "--seed", "3", "--chains", "1", "--no-progress"]
    res = runner.invoke(app, args + ["--strict"])
    assert res.exit_code == 3, res.output
    assert "FAIL" in res.output and "cannot be judged" in res.output
    assert (tmp_path / "run" / "posterior.nc").exists()
    res = runner.invoke(app, ["diagnose", str(tmp_path / "run"), "--strict"])
    assert res.exit_code == 3
    res = runner.invoke(app, ["fit", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "Traceback" not in res.output
