"""Specification sweeps: grid files, point ids, fits shared across harmonisations, and
(slow) a sweep of 8 grid points on a 2-worker LocalCluster equal to the serial run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from prism_stats.cli import app
from prism_stats.sweeps.sweep import GridError, build_tasks, load_grid, run_sweep

GRIDS = Path(__file__).resolve().parents[1] / "models" / "grids"


def _write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_grids_resolve():
    small = load_grid(GRIDS / "small.toml")
    points = small.points("data")
    assert len(points) == 8 and len({p.id for p in points}) == 8
    assert len({p.fit_key for p in points}) == 4  # the harmonisation shares a fit
    assert {p.harmonisation for p in points} == {"default", "original"}
    assert small.synthetic == 120 and small.axis_names == ["llm_interactions", "country", "harmonisation"]
    big = load_grid(GRIDS / "multiverse.toml").points("data")
    assert len(big) == 128 and len({p.fit_key for p in big}) == 64
    censored = [p for p in big if p.choices["family"] == "censored"]
    assert all(p.spec.family == "censored" and p.spec.param("participant") == "noncentered" for p in censored)
    prior = [p.spec.prior("sigma_interaction") for p in big]
    assert sorted(set(prior)) == [2.0, 4.0]


def test_point_ids_are_stable_and_depend_on_what_matters(tmp_path):
    text = """
        base = "ratings"
        seed = 1
        [data]
        synthetic = 40
        [axes]
        subset = ["all", "balanced"]
    """
    a = load_grid(_write(tmp_path, text)).points("hash-a")
    b = load_grid(_write(tmp_path, text)).points("hash-a")
    assert [p.id for p in a] == [p.id for p in b]
    assert [p.id for p in a] != [p.id for p in load_grid(_write(tmp_path, text)).points("hash-b")]
    reseeded = load_grid(_write(tmp_path, text.replace("seed = 1", "seed = 2"))).points("hash-a")
    assert {p.id for p in reseeded}.isdisjoint({p.id for p in a})
    assert [p.spec.subset for p in a] == ["all", "balanced"]


def test_explicit_points_join_the_product_and_duplicates_merge(tmp_path):
    grid = load_grid(_write(tmp_path, """
        base = "ratings"
        [data]
        synthetic = 40
        [axes]
        family = ["gaussian", "censored"]
        [[points]]
        family = "gaussian"
        [[points]]
        family = "censored"
        "priors.sigma_llm" = 5.0
    """))
    points = grid.points("d")
    assert len(points) == 3  # the explicit gaussian point repeats a product point
    assert grid.axis_names == ["family", "priors.sigma_llm"]
    extra = [p for p in points if p.spec.prior("sigma_llm") == 5.0]
    assert len(extra) == 1 and extra[0].choices == {"family": "censored", "priors.sigma_llm": 5.0}
    base_value = next(p for p in points if p.choices["family"] == "gaussian").choices["priors.sigma_llm"]
    assert base_value == 10.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[axes]\nlikelihood = ['gaussian']", "unknown axis 'likelihood'"),
        ("[axes]\n'priors.sigma_x' = [1.0]", "unknown axis 'priors.sigma_x'"),
        ("[axes]\nfamily = ['poisson']", r"point 1 .*family must be one of"),
        ("[axes]\nfamily = []", "non-empty list"),
        ("[axes]\nharmonisation = ['census2011']", "harmonisation must be one of"),
        ("[data]\nfolder = 'x'\nsynthetic = 10", "both 'folder' and 'synthetic'"),
        ("[sampling]\nwarmup = 10", r"unknown key\(s\) in \[sampling\]"),
        ("colour = 1", "unknown top-level key"),
        ("base = 'nonexistent_spec'", "no model spec named"),
        ("[axes\nfamily = 1", "not valid TOML"),
    ],
)
def test_grid_errors_name_the_file_and_the_problem(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(GridError, match=match) as info:
        load_grid(path)
    assert str(path) in str(info.value)


def test_fit_groups_carry_their_points_and_seeds(tmp_path):
    grid = load_grid(GRIDS / "small.toml")
    tasks, _ = build_tasks(grid, tmp_path, "/data", "hash")
    assert len(tasks) == 4 and sum(len(t.payload["points"]) for t in tasks) == 8
    seeds = [t.payload["seed"] for t in tasks]
    assert all(s["root"] == grid.seed for s in seeds) and len({s["spawn_key"][0] for s in seeds}) == 4
    for t in tasks:
        assert {p["harmonisation"] for p in t.payload["points"]} == {"default", "original"}
        assert all(str(o).endswith("point.json") for o in t.outputs)


def test_cli_dry_run_lists_points(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "--grid", str(GRIDS / "small.toml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "8 grid points, 4 fits" in result.output
    bad = CliRunner().invoke(app, ["sweep", "--grid", str(_write(tmp_path, "[axes]\nfoo = [1]")), "--dry-run"])
    assert bad.exit_code == 2 and "unknown axis 'foo'" in bad.output


def test_missing_data_is_a_clear_error(tmp_path):
    grid = _write(tmp_path, "base = 'ratings'\n[axes]\nsubset = ['all']")
    with pytest.raises(GridError, match="no data"):
        run_sweep(grid, out=tmp_path / "out", progress=False)
    with pytest.raises(GridError, match="data .*nowhere"):
        run_sweep(grid, out=tmp_path / "out", data=tmp_path / "nowhere", progress=False)


# --- slow: real fits ----------------------------------------------------------------------

EIGHT_POINTS = """
name = "eight"
base = "ratings_additive"
seed = 7
[data]
synthetic = 60
synthetic_seed = 3
[sampling]
chains = 2
draws = 200
tune = 200
[welfare]
enabled = true
sizes = [20]
replicates = 20
[axes]
country = ["reside_country", "special_region"]
subset = ["all", "balanced"]
harmonisation = ["default", "original"]
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    grid = _write(root, EIGHT_POINTS)
    serial = run_sweep(grid, out=root / "serial", progress=False)
    dask = run_sweep(grid, out=root / "dask", workers=2, progress=False)
    return root, grid, serial, dask


@pytest.mark.slow
@pytest.mark.mcmc
def test_dask_sweep_equals_serial_sweep(two_runs):
    _, _, serial, dask = two_runs
    assert len(serial.points) == 8 and not serial.missing and not dask.missing
    assert dask.report.executor["kind"] == "dask" and len(dask.report.executor["workers"]) == 2
    assert all(w["nthreads"] == 1 for w in dask.report.executor["workers"])
    assert serial.report.n_done == 4 and dask.report.n_done == 4
    pd.testing.assert_frame_equal(serial.table, dask.table, check_exact=True)
    t = serial.table
    est = t.loc[t["quantity"] == "population_mean"]
    assert set(est["country"]) == {"uk", "us"} and est["llm"].nunique() == 21
    assert {"country", "subset", "harmonisation"} <= set(t.columns)
    # ranks are 1..21 within each (point, country, group)
    ranks = est.groupby(["point", "country", "group"])["rank"].agg(["min", "max"])
    assert (ranks["min"] == 1).all() and (ranks["max"] <= 21).all()
    # points that differ only in the harmonisation share the fit: the UK frame is the same
    # under both harmonisations (identical estimates), the US frame is not
    assert "country_variable" in t.columns  # the spec axis, apart from the table's country
    pivot = est.pivot_table(index=["country", "group", "llm", "country_variable", "subset"],
                            columns="harmonisation", values="mean", aggfunc="first")
    uk, us = pivot.loc["uk"], pivot.loc["us"]
    assert (uk["default"] == uk["original"]).all()
    assert (us["default"] != us["original"]).any()
    for name in ("sweep.csv", "points.csv", "spec_curve.png", "grid.json", "failures.json"):
        assert (serial.out / name).exists(), name
    welfare_available = importlib.util.find_spec("prism_stats.welfare.model_based") is not None
    if welfare_available:
        assert (t["quantity"] == "exclusion_gap").any()
    else:
        assert serial.points["welfare"].str.contains("not available").all()


@pytest.mark.slow
@pytest.mark.mcmc
def test_rerun_reuses_finished_points(two_runs):
    root, grid, serial, _ = two_runs
    point = serial.points["point"].iloc[0]
    fit_key = serial.points.loc[serial.points["point"] == point, "fit_key"].iloc[0]
    sharing = serial.points.loc[serial.points["fit_key"] == fit_key, "point"].tolist()
    (root / "serial" / "points" / point / "point.json").unlink()
    others = [p for p in (root / "serial" / "points").glob("*/point.json")]
    mtimes = {p: p.stat().st_mtime_ns for p in others}
    again = run_sweep(grid, out=root / "serial", progress=False)
    assert again.report.n_done == 1 and again.report.n_skipped == 3
    assert [k for k in again.report.keys("done")] == [fit_key]
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.parent.name not in sharing)
    pd.testing.assert_frame_equal(again.table, serial.table, check_exact=True)
    info = json.loads((root / "serial" / "points" / point / "point.json").read_text())
    assert info["seed"]["root"] == 7 and info["diagnostics"]["divergences"] >= 0


@pytest.mark.slow
@pytest.mark.mcmc
def test_killed_sweep_resumes_with_its_finished_points(two_runs):
    """SIGKILL `prism-stats sweep` (driver, scheduler and workers) after its first fit; the
    rerun reuses the finished points and produces the same table as an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root, grid, serial, _ = two_runs
    out = root / "killed"
    cmd = [str(Path(sys.executable).parent / "prism-stats"), "sweep", "--grid", str(grid),
           "--out", str(out), "--workers", "2", "--no-progress"]
    log = root / "killed.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=stderr, stderr=subprocess.STDOUT)

    def complete_fits() -> set[str]:
        keys = [json.loads(p.read_text())["fit_key"] for p in out.glob("points/*/point.json")]
        return {k for k in keys if keys.count(k) == 2}  # each fit serves 2 points

    deadline = time.time() + 900
    while time.time() < deadline and not complete_fits() and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(out.glob("points/*/point.json"))
    assert 1 <= len(finished) < 8, log.read_text()[-2000:]
    fit_of = {p: json.loads(p.read_text())["fit_key"] for p in finished}
    complete = complete_fits()
    assert complete
    kept = {p: p.stat().st_mtime_ns for p, k in fit_of.items() if k in complete}
    again = run_sweep(grid, out=out, progress=False)
    assert sorted(again.report.keys("skipped")) == sorted(complete)
    assert again.report.n_done == 4 - len(complete)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    pd.testing.assert_frame_equal(again.table, serial.table, check_exact=True)
