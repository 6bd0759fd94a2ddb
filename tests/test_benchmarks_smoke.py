"""Smoke tests of the benchmark scripts in ``benchmarks/`` (so that they cannot rot).

The fast tests import each script's ``main`` and run it with ``--dry-run``, and check the
helpers that compute printed figures (growth exponent, posterior shift, tables) against
hand-computed values. The ``slow`` tests run every script end to end at a trivial size
(40 participants, 30 tuning + 30 draws, tiny welfare grid) with the data cache in a
temporary folder; they check that every figure the issue asks for is produced, not the
timings themselves (no timing assertions in tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = ("fit_scaling", "fit_variants", "postprocess", "recovery", "compile_reuse")


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
