"""Smoke tests of the benchmark scripts in ``benchmarks/`` (so that they cannot rot).

The fast tests import each script's ``main`` and run it with ``--dry-run``, and check the
helpers that compute printed figures (growth exponent, posterior shift, tables, the R
formula and the average-rater LLM means of ``peers``) against hand-computed values. The
``peers`` tests that need R (``Rscript`` with lme4 and rstanarm) are skipped without it.
The ``slow`` tests run every script end to end at a trivial size (40 participants, 30
tuning + 30 draws, tiny welfare grid) with the data cache in a temporary folder; they
check that every figure the issue asks for is produced, not the timings themselves (no
timing assertions in tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = ("fit_scaling", "fit_variants", "postprocess", "recovery", "rankings", "topics_stage", "peers",
           "compile_reuse")


def load(name: str):
    """Import ``benchmarks/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRISM_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("name", SCRIPTS)
def test_dry_run_prints_plan(name, capsys, cache):
    assert load(name).main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cores" in out and "load average" in out  # machine description and load
    assert "would" in out


def test_dry_run_lists_every_size_and_variant(capsys, cache):
    load("fit_scaling").main(["--dry-run"])
    out = capsys.readouterr().out
    for n in (150, 500, 1500, 5000, 15000):
        assert f"would fit {n} participants" in out
    variants = load("fit_variants")
    variants.main(["--dry-run"])
    out = capsys.readouterr().out
    for v in variants.VARIANTS:
        assert f"would run {v}:" in out
    assert "PYTENSOR_FLAGS" in out  # the float32 variant runs under its own flags


def test_growth_exponent_and_helpers():
    sys.path.insert(0, str(BENCH))
    from _common import growth_exponent

    x = [1e3, 1e4, 1e5]
    assert growth_exponent(x, [v**1.5 for v in x]) == pytest.approx(1.5)
    assert growth_exponent(x, [3 * v for v in x]) == pytest.approx(1.0)
    assert math.isnan(growth_exponent([10.0], [1.0]))
    variants = load("fit_variants")
    base = {"a": {"mean": [0.0, 1.0], "sd": [1.0, 2.0]}, "b": {"mean": [5.0], "sd": [0.5]}}
    other = {"a": {"mean": [0.1, 2.0], "sd": [1.0, 2.0]}, "b": {"mean": [5.4], "sd": [0.5]}}
    shift, where = variants.shift_from(base, other)
    assert shift == pytest.approx(0.8) and where == "b"


def test_print_table_formats(capsys):
    sys.path.insert(0, str(BENCH))
    from _common import print_table

    print_table([{"a": 1.23456, "b": None}], [("a", "A", ".2f"), ("b", "B", "")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| A") and "1.23" in lines[2] and "-" in lines[2]


@pytest.mark.slow
@pytest.mark.mcmc
def test_fit_scaling_end_to_end(cache, capsys):
    out_json = cache / "scaling.json"
    rc = load("fit_scaling").main(["--sizes", "40", "60", "--draws", "30", "--tune", "30",
                                   "--json", str(out_json)])
    assert rc == 0
    res = json.loads(out_json.read_text())
    assert [f["participants"] for f in res["fits"]] == [40, 60]
    for f in res["fits"]:
        for key in ("compile_s", "sampling_s", "wall_s", "min_ess_bulk", "min_ess_tail",
                    "ess_per_s", "max_rhat", "divergences", "peak_rss_mb", "load1_before"):
            assert f[key] is not None, key
        assert f["n_ratings"] > 0 and f["peak_rss_mb"] > 50
    assert set(res["exponents"])  # growth exponents were computed
    out = capsys.readouterr().out
    assert "Growth exponents" in out and "peak RSS MB" in out


@pytest.mark.slow
@pytest.mark.mcmc
def test_fit_variants_end_to_end(cache):
    # One variant per code path (the others differ only in their spec or sampler settings,
    # which the dry run lists): fit(), the non-aggregated pieces with a spec change, a
    # variant with its own environment, and compile-once reuse.
    out_json = cache / "variants.json"
    rc = load("fit_variants").main(["--participants", "40", "--draws", "30", "--tune", "30",
                                    "--variants", "default", "full_noncentered", "float32", "reuse",
                                    "--json", str(out_json)])
    res = json.loads(out_json.read_text())
    assert res["failures"] == [] and rc == 0
    by = {r["variant"]: r for r in res["variants"]}
    assert set(by) == {"default", "full_noncentered", "float32"}
    # the non-aggregated design has one cell per rating; the default collapses them
    full = by["full_noncentered"]
    assert full["n_cells"] == full["n_ratings"] > by["default"]["n_cells"]
    assert full["parameterisation"]["participant"] == "noncentered"
    assert by["float32"]["graph"]["floatX"] == "float32"
    assert by["default"]["shift_sd"] == 0.0
    assert res["reuse"]["second"]["min_ess_bulk"] > 0 and res["reuse"]["intercept_shift"] > 0


@pytest.mark.slow
@pytest.mark.mcmc
def test_postprocess_end_to_end(cache):
    out_json = cache / "post.json"
    rc = load("postprocess").main(["--participants", "40", "--fit-draws", "30", "--fit-tune", "30",
                                   "--replicates", "20", "--draws", "20", "--json", str(out_json)])
    assert rc == 0
    r = json.loads(out_json.read_text())["postprocess"]
    assert set(r["mrp"]) == {"uk", "us"}
    sizes = r["welfare_mean"]["per_country"]["uk"]["sizes"]
    assert sizes["replicate"] == 20 and sizes["scheme"] == 7 and sizes["target"] == 4
    assert r["welfare_3rules"]["per_country"]["us"]["sizes"]["rule"] == 3
    assert r["mrp_plus_welfare_mean_s"] > 0


@pytest.mark.slow
def test_postprocess_predict_only_end_to_end(cache):
    out_json = cache / "predict.json"
    rc = load("postprocess").main(["--predict-only", "--participants", "60", "--draws", "30",
                                   "--json", str(out_json)])
    assert rc == 0
    r = json.loads(out_json.read_text())["predict"]
    assert r["n_participants"] == 60 and r["draws"] == 30
    assert r["participant_draws_s"] > 0 and r["loglik_s"] > 0


@pytest.mark.slow
@pytest.mark.mcmc
def test_compile_reuse_end_to_end(cache):
    out_json = cache / "compile.json"
    rc = load("compile_reuse").main(["--participants", "40", "--spec", "ratings_additive",
                                     "--no-fastmath", "--json", str(out_json)])
    assert rc == 0
    steps = json.loads(out_json.read_text())["steps"]
    assert set(steps) == {"cold", "warm, same data", "new data, new process", "new data, same process"}
    assert steps["new data, same process"]["reused_b"] is True
    assert steps["new data, same process"]["compile_b_s"] < steps["cold"]["compile_a_s"]


@pytest.mark.slow
@pytest.mark.mcmc
def test_recovery_end_to_end(cache):
    out_json = cache / "recovery.json"
    args = ["--participants", "80", "--seeds", "3", "--draws", "30", "--tune", "30", "--replicates", "10",
            "--scenarios", "all", "--cache", str(cache / "recovery-cache")]
    rc = load("recovery").main([*args, "--skewed", "--json", str(out_json)])
    assert rc == 0
    release = json.loads(out_json.read_text())["releases"][0]
    assert release["seed"] == 3 and release["scenario"] == "all"
    assert isinstance(release["gate_passed"], bool) and release["fit_s"] > 0
    # a finished release is reused from the cache (resumable runs), not refitted
    assert load("recovery").main([*args, "--skewed", "--json", str(cache / "again.json")]) == 0
    again = json.loads((cache / "again.json").read_text())["releases"][0]
    assert again["fit_s"] == release["fit_s"] and again["mrp"] == release["mrp"]
    assert {(m["country"], m["group"]) for m in release["mrp"]} >= {("uk", "all"), ("us", "nonwhite")}
    assert len(release["optima"]) == 14 and len(release["gaps"]) == 24
    assert -1.0 <= release["mixedlm_correlation"] <= 1.0
    assert {row["llm"] for row in release["skewed"]} >= {"command", "palm-2"}


def test_recovery_pooling_arithmetic():
    """Skewed-sample figures pooled over releases, against hand computation."""
    import pandas as pd

    rec = load("recovery")
    rows = []
    for seed, errors in ((1, (2.0, 0.0, 1.0)), (2, (4.0, 2.0, -1.0))):
        for llm in ("command", "gpt-4"):  # command is planted, gpt-4 is not
            raw, raked, mrp = errors if llm == "command" else (1.0, 1.0, 1.0)
            rows.append({"seed": seed, "country": "uk", "llm": llm, "mean_true": 50.0, "raw_mean": 50 + raw,
                         "raked_mean": 50 + raked, "mean": 50 + mrp, "q05": 49.5 + mrp, "q95": 50.5 + mrp})
    table = pd.DataFrame(rows)
    moved = rec.movement(table).set_index("llms")
    # all LLMs: raw errors 2, 1, 4, 1 -> RMSE sqrt(22/4); MRP errors 1, 1, -1, 1 -> RMSE 1
    assert moved.loc["all 21", "rmse_raw"] == pytest.approx(math.sqrt(22 / 4))
    assert moved.loc["all 21", "mrp_removes"] == pytest.approx(1 - 1 / math.sqrt(22 / 4))
    assert moved.loc["planted 4", "rmse_raked"] == pytest.approx(math.sqrt(2.0))
    assert moved.loc["planted 4", "mrp_coverage90"] == 0.0  # intervals 50 +- 1 +- 0.5 miss 50
    bv, signed = rec.bias_variance(table)
    command = bv.set_index(["llms", "estimator"]).loc[("planted 4", "raw")]
    assert command["bias2"] == pytest.approx(9.0) and command["variance"] == pytest.approx(2.0)
    assert signed.set_index("llm").loc["command", "MRP"] == pytest.approx(0.0)


# --- peers: the package against rstanarm and lme4 ------------------------------------------

def _r_ready() -> bool:
    if shutil.which("Rscript") is None:
        return False
    sys.path.insert(0, str(BENCH))
    return load("peers").r_missing() is None


needs_r = pytest.mark.skipif(shutil.which("Rscript") is None or not _r_ready(),
                             reason="R with lme4 and rstanarm is not installed")

DEFAULT_FORMULA = ("score ~ (1|participant) + (1|llm) + (1|country) + conversation_type + age + "
                   "gender + ethnicity + (1|llm:age) + (1|llm:gender) + (1|llm:ethnicity) + "
                   "(1|llm:residence)")


def test_peers_dry_run_prints_formula(capsys, cache):
    assert load("peers").main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"R formula: {DEFAULT_FORMULA}" in out
    assert "'chains': 2, 'iter': 4000, 'warmup': 1000, 'adapt_delta': 0.9" in out  # rstanarm


def test_peers_formula_follows_the_spec():
    sys.path.insert(0, str(BENCH))
    from _peers_model import r_formula

    from prism_stats.model import load_spec

    spec = load_spec("ratings")
    assert r_formula(spec).formula == DEFAULT_FORMULA
    # pooling decides fixed vs random; one-level factors carry no term; turns add `later`
    f = r_formula(spec.replace(pooling={"demographic": "partial", "llm": "fixed"}, turns="all",
                               llm_interactions=("gender",), llm_residence="none"), levels={"country": 1})
    assert f.formula == ("score ~ (1|participant) + llm + conversation_type + later + (1|age) + "
                         "(1|gender) + (1|ethnicity) + (1|llm:gender)")
    assert any(n.startswith("country: one observed level") for n in f.notes)
    assert [t.scale for t in f.random_terms] == ["sigma_participant", "sigma_age", "sigma_gender",
                                                 "sigma_ethnicity", "sigma_llm_gender"]
    assert any("censored" in n and "DROPPED" in n for n in
               r_formula(spec.replace(family="censored")).notes)
    # the other LLM x residence forms, LLM x conversation type and the rater terms
    base = DEFAULT_FORMULA.removesuffix(" + (1|llm:residence)")
    ext = r_formula(spec.replace(llm_residence="region", llm_ctype=True, rater_llm=True,
                                 rater_scale=True))
    assert ext.formula == base + (" + (1|llm:region) + (1|llm:country) + "
                                  "(1|llm:conversation_type) + (1|participant:llm)")
    assert [t.term for t in ext.random_terms if t.rater] == ["participant", "participant:llm"]
    assert any(n.startswith("rater_scale DROPPED") for n in ext.notes)
    flat = r_formula(spec.replace(llm_residence="country"), levels={"region": 5})
    assert "(1|llm:region)" not in flat.formula and "(1|llm:country)" in flat.formula


def test_peers_skips_without_r(cache, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(cache))  # no Rscript on the path
    out_json = cache / "peers.json"
    assert load("peers").main(["--json", str(out_json)]) == 0
    assert "SKIPPED: Rscript not found" in capsys.readouterr().out
    assert json.loads(out_json.read_text())["skipped"] == "Rscript not found"


def test_peers_agreement_arithmetic():
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(BENCH))
    from _peers_model import agreement

    a = pd.Series([1.0, 2.0, 3.0], index=["x", "y", "z"])
    b = pd.Series([3.0, 1.0, 2.5], index=["z", "x", "y"])  # aligned by LLM name
    got = agreement(a, b)
    assert got["max_abs_diff"] == pytest.approx(0.5)
    assert got["rmse"] == pytest.approx(math.sqrt(0.25 / 3))
    assert got["mean_offset"] == pytest.approx(-0.5 / 3)
    assert got["correlation"] == pytest.approx(float(np.corrcoef([1, 2, 3], [1, 2.5, 3])[0, 1]))


@pytest.mark.slow
def test_peers_average_rater_llm_means(tmp_path):
    """On draws of the package's own prior (which satisfy its zero-sum constraints exactly)
    the grid average is intercept + llm_effect; with the constraints broken it is the
    rating-weighted average computed by hand."""
    import warnings

    import numpy as np
    import pymc as pm
    import xarray as xr

    sys.path.insert(0, str(BENCH))
    from _peers_model import average_grid, grid_labels, package_llm_means, rating_frame

    from prism_stats.data import load_prism
    from prism_stats.model import build_design, build_model, load_spec
    from prism_stats.synth import synthesize

    synthesize(tmp_path, 60, 3)
    spec = load_spec("ratings")
    design = build_design(load_prism(tmp_path), spec)
    grid = average_grid(design, spec)
    assert grid["weight"].sum() == pytest.approx(1.0)
    with build_model(design, spec), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(draws=10, random_seed=1)["prior"].to_dataset()
    means = package_llm_means(prior, design, spec, grid)
    assert means.dims == ("chain", "draw", "llm")
    np.testing.assert_allclose(means, prior["intercept"] + prior["llm_effect"], atol=1e-9)
    rng = np.random.default_rng(0)
    broken = prior.copy()
    broken["llm_age"] = broken["llm_age"] + rng.normal(size=broken["llm_age"].shape)
    broken["country_effect"] = broken["country_effect"] + 2.0
    w = design.level_weights("age")
    by_hand = (prior["intercept"] + prior["llm_effect"] + 2.0
               + ((broken["llm_age"] - prior["llm_age"]) * xr.DataArray(w, dims="age")).sum("age"))
    np.testing.assert_allclose(package_llm_means(broken, design, spec, grid),
                               by_hand.transpose("chain", "draw", "llm"), atol=1e-9)
    # all turns: R's rows carry `later`, and the average rater is at the opening turn
    spec_all = spec.replace(turns="all")
    full = build_design(load_prism(tmp_path), spec_all, collapse=False)
    frame = rating_frame(full, spec_all)
    assert len(frame) == full.n_ratings and set(frame["later"]) == {0, 1}
    assert {"country", "age", "gender", "ethnicity"} <= set(frame.columns)
    labelled = grid_labels(average_grid(full, spec_all), full)
    assert (labelled["later"] == 0).all() and set(labelled["conversation_type"]) <= set(frame[
        "conversation_type"])


def _balanced_frame(rng):
    import numpy as np
    import pandas as pd

    llm_effect = np.array([6.0, 3.0, 0.0, -2.0, -7.0])
    rows = [(p, m, t) for p in range(30) for m in range(5) for t in range(3)]
    p, m, t = (np.array(x) for x in zip(*rows, strict=True))
    u = rng.normal(0, 8, 30)
    score = 60 + u[p] + llm_effect[m] + np.array([2.0, 0.0, -2.0])[t] + rng.normal(0, 10, len(p))
    return pd.DataFrame({"score": score, "participant": [f"p{i}" for i in p],
                         "llm": [f"m{i}" for i in m], "conversation_type": [f"t{i}" for i in t]})


@needs_r
@pytest.mark.parametrize("llm_random", [False, True])
def test_peers_r_lme4_llm_means_balanced(tmp_path, llm_random):
    """Balanced data (every rater rates every LLM in every conversation type once): lme4's
    LLM means for an average rater are the raw LLM means (LLM fixed), or those means shrunk
    towards the grand mean by one factor (LLM random)."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(BENCH))
    from _peers_model import RFormula, RTerm, r_config

    peers = load("peers")
    frame = _balanced_frame(np.random.default_rng(5))
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    pd.DataFrame({"conversation_type": ["t0", "t1", "t2"], "weight": [1 / 3] * 3}).to_csv(
        tmp_path / "grid.csv", index=False)
    llm = RTerm("llm", True, "sigma_llm") if llm_random else RTerm("llm", False)
    formula = RFormula([RTerm("participant", True, "sigma_participant", rater=True), llm,
                        RTerm("conversation_type", False)])
    llms = {f"m{i}": f"model-{i}" for i in range(5)}
    cfg = r_config(tmp_path, formula, llms, {"chains": 1, "tune": 10, "draws": 10,
                                              "target_accept": 0.8, "seed": 1})
    r = peers.run_fitter("lme4", cfg, timeout=300)
    assert r["status"] == "ok", r["status"]
    got = r["draws"]["llm_mean"].isel(chain=0, draw=0).to_series()
    raw = frame.groupby("llm")["score"].mean().rename(index=llms).loc[got.index]
    if not llm_random:
        np.testing.assert_allclose(got, raw, atol=1e-6)
    else:
        grand = raw.mean()
        assert got.mean() == pytest.approx(grand, abs=1e-6)
        shrink = (got - grand) / (raw - grand)
        assert 0.5 < shrink.iloc[0] < 1 and np.ptp(shrink) < 1e-6
        assert float(r["draws"]["sigma_llm"].squeeze()) > 0


@needs_r
@pytest.mark.slow
@pytest.mark.mcmc
def test_peers_end_to_end(cache, capsys):
    out_json = cache / "peers.json"
    rc = load("peers").main(["--participants", "40", "--draws", "60", "--tune", "60",
                             "--json", str(out_json)])
    assert rc == 0
    res = json.loads(out_json.read_text())
    fits = {f["fitter"]: f for f in res["fits"]}
    assert set(fits) == {"package", "lme4", "rstanarm"}
    for name in ("package", "rstanarm"):
        f = fits[name]
        assert f["status"] == "ok" and f["min_ess_llm"] > 0 and f["ess_per_s"] > 0
        assert f["load1_before"] is not None and f["fit_s"] > 0
    settings = fits["rstanarm"]["settings"]
    assert settings["iter"] == 120 and settings["warmup"] == 60 and settings["chains"] == 2
    assert {p["pair"] for p in res["agreement"]} == {"package vs lme4", "package vs rstanarm",
                                                      "lme4 vs rstanarm"}
    for p in res["agreement"]:
        assert p["n_llms"] == 21 and p["correlation"] > 0.8  # the same model, the same data
    assert "ESS/s ratio package / rstanarm (LLM means)" in res["ratios"]
    assert "Agreement of the LLM means" in capsys.readouterr().out
