"""End to end on a small synthetic release: the pipeline killed (SIGKILL) while fitting
completes on rerun without redoing finished stages and leaves no half-written file;
unchanged reruns reuse everything; a configuration change recomputes its dependants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prism_stats.pipeline import ConsoleReporter, load_config, run_pipeline

pytest_plugins = ("conftest_pipeline",)  # the shared small-pipeline fixture
pytestmark = [pytest.mark.mcmc, pytest.mark.slow]

ALL_STAGES = ["validate", "fit", "diagnostics", "gate", "poststratify_uk", "poststratify_us",
              "welfare_uk", "welfare_us", "compare_uk", "compare_us", "rankings", "stated",
              "rankings_model", "supplement"]


def test_the_kill_hit_the_fit_stage(small_pipeline):
    killed = small_pipeline["killed_manifest"]
    assert killed["stages"]["validate"]["status"] == "done"
    assert killed["stages"]["fit"]["status"] == "running"
    assert "diagnostics" not in killed["stages"]
    # No result of the fit existed under its final name when it was killed.
    assert "run/posterior.nc" not in small_pipeline["files_after_kill"]
    assert killed["invocations"][-1]["status"] == "running"


def test_rerun_completes_without_redoing_finished_stages(small_pipeline):
    assert small_pipeline["rerun_returncode"] == 0, small_pipeline["rerun_output"][-3000:]
    killed, final = small_pipeline["killed_manifest"], small_pipeline["final_manifest"]
    stages = final["stages"]
    assert [s for s in final["stage_order"]] == ALL_STAGES
    assert all(stages[s]["status"] == "done" for s in ALL_STAGES)
    # validate was finished before the kill: reused, its record untouched
    for key in ("fingerprint", "started_at", "finished_at", "outputs"):
        assert stages["validate"][key] == killed["stages"]["validate"][key]
    last = final["invocations"][-1]
    assert last["reused"] == ["validate"]
    assert last["ran"] == ALL_STAGES[1:]
    assert last["status"] == "done"
    assert stages["fit"]["fingerprint"] == killed["stages"]["fit"]["fingerprint"]
    assert stages["fit"]["started_at"] >= killed["stages"]["fit"]["started_at"]
    assert "validate: unchanged, reused" in small_pipeline["rerun_output"]


def test_no_half_written_files_remain(small_pipeline):
    out = Path(small_pipeline["out"])
    leftovers = [p for p in out.rglob("*")
                 if p.name.endswith(".part") or (p.name.startswith(".") and p.name != ".pipeline.lock")]
    assert leftovers == []
    final = small_pipeline["final_manifest"]
    for rec in final["stages"].values():
        for rel in rec["outputs"]:
            path = out / rel
            assert path.exists() and (path.is_dir() or path.stat().st_size > 0), rel


def test_outputs_are_readable_and_consistent(small_pipeline):
    from prism_stats.data import load_prism
    from prism_stats.model import Run

    out = Path(small_pipeline["out"])
    run = Run.load(out / "run")
    assert run.posterior.sizes["draw"] == 80 and run.posterior.sizes["chain"] == 2
    data_hash = load_prism(small_pipeline["data"]).data_hash
    final = small_pipeline["final_manifest"]
    assert final["data"]["data_hash"] == data_hash == run.meta["data"]["data_hash"]
    assert final["stages"]["fit"]["inputs"]["data_hash"] == data_hash
    assert final["stages"]["fit"]["inputs"]["spec"]["sampling"]["draws"] == 80
    assert final["spec"]["name"] == "ratings"
    assert "pymc" in final["versions"]


def test_an_unchanged_rerun_reuses_every_stage(small_pipeline, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(small_pipeline["out"], out)
    cfg = load_config(small_pipeline["config"])
    result = run_pipeline(small_pipeline["data"], out, cfg, reporter=ConsoleReporter(quiet=True))
    assert result.ran == []
    assert result.reused == ALL_STAGES


def test_a_welfare_change_recomputes_only_welfare_and_the_supplement(small_pipeline, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(small_pipeline["out"], out)
    cfg = load_config(small_pipeline["config"]).replace(welfare={"replicates": 25},
                                                        supplement={"formats": ["png"], "dpi": 40})
    result = run_pipeline(small_pipeline["data"], out, cfg, reporter=ConsoleReporter(quiet=True))
    assert result.ran == ["welfare_uk", "welfare_us", "supplement"]
    import xarray as xr

    with xr.open_dataset(out / "run" / "welfare_uk.nc", engine="h5netcdf") as ds:
        assert ds.sizes["replicate"] == 25


def test_ctrl_c_is_recorded_and_exits_130(small_pipeline, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from conftest_pipeline import CLI, cli_env

    out = tmp_path / "out"
    args = [*CLI, "run", "--data", small_pipeline["data"], "--config", small_pipeline["config"],
            "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=cli_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if json.loads((out / "manifest.json").read_text())["stages"]["fit"]["status"] == "running":
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, output[-2000:]
    assert "rerun the same command to continue" in output and "Traceback" not in output
    fit = json.loads((out / "manifest.json").read_text())["stages"]["fit"]
    assert fit["status"] == "interrupted"
    assert not (out / "run" / "posterior.nc").exists()


def test_a_short_posterior_from_an_interrupted_sampler_is_not_accepted(small_pipeline, tmp_path,
                                                                       monkeypatch):
    # nutpie answers Ctrl-C by returning the draws made so far; the fit stage must notice.
    from prism_stats import model
    from prism_stats.model import Run
    from prism_stats.pipeline import StageContext
    from prism_stats.pipeline.stages import SamplingInterrupted, fit_stage

    source = Run.load(Path(small_pipeline["out"]) / "run")  # 2 chains x 80 draws

    def short_fit(data, spec, *, out, **kwargs):
        return source.save(out) and Run.load(out)

    monkeypatch.setattr(model, "fit", short_fit)
    cfg = load_config(small_pipeline["config"]).replace(sampling={"draws": 100})
    ctx = StageContext(tmp_path, cfg, Path(small_pipeline["data"]), ConsoleReporter(quiet=True))
    ctx.put("data", object())
    with pytest.raises(SamplingInterrupted, match="80 draws of 2 x 100"):
        fit_stage(ctx)
    assert not (tmp_path / "run" / "posterior.nc").exists()


def test_a_failed_gate_stops_the_pipeline_with_exit_3(small_pipeline, tmp_path):
    from typer.testing import CliRunner

    from prism_stats.cli import app

    out = tmp_path / "copy"
    shutil.copytree(small_pipeline["out"], out)
    text = Path(small_pipeline["config"]).read_text()
    assert "allow_unconverged = true" in text
    cfg = tmp_path / "stop.toml"
    cfg.write_text(text.replace("allow_unconverged = true", "allow_unconverged = false"))
    res = CliRunner().invoke(app, ["run", "--data", small_pipeline["data"], "--config", str(cfg),
                                   "--out", str(out), "--quiet"])
    # 2 chains x 80 draws cannot pass R-hat <= 1.01 and ESS >= 400
    assert res.exit_code == 3, res.output
    assert "convergence gate failed" in res.output and "Traceback" not in res.output
    assert "--allow-unconverged" in " ".join(res.output.split())
    manifest = json.loads((out / "manifest.json").read_text())
    stages = manifest["stages"]
    assert stages["diagnostics"]["status"] == "done" and stages["gate"]["status"] == "failed"
    last = manifest["invocations"][-1]  # only the gate was judged again, then the run stopped
    assert last["reused"] == ["validate", "fit", "diagnostics"] and last["status"] == "failed"
