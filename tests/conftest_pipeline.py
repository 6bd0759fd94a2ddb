"""Shared set-up of the pipeline and report tests: one small pipeline, killed mid-fit and
resumed, whose outputs the report tests then render.

The scenario runs once per test session: under pytest-xdist the workers share it through
a folder next to their base temporary folders, guarded by a file lock, so only one
worker compiles and samples. Settings are small (150 synthetic participants, 2 chains
x 80 draws) so that it takes well under two minutes; results are real, not mocked. So
few draws fail the convergence gate: ``[run] allow_unconverged`` lets the pipeline go on
(its results are marked as from an unconverged fit).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SMALL_PARTICIPANTS = 150
SMALL_SEED = 20240422
SMALL_CONFIG = """\
countries = ["uk", "us"]
[run]
allow_unconverged = true
[sampling]
chains = 2
draws = 80
tune = 80
[diagnostics]
ppc_draws = 40
[welfare]
replicates = 40
draws = 40
[rankings]
replicates = 50
choice_model = false
stated_model = false
[supplement]
dpi = 72
welfare_rules = ["mean"]
"""
CLI = [sys.executable, "-c", "from prism_stats.cli import main; main()"]


@contextlib.contextmanager
def file_lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):  # not there yet, or being replaced
        return None


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", PYTHONUNBUFFERED="1", COLUMNS="120")
    return env


def kill_and_resume(base: Path) -> dict[str, Any]:
    """Run the pipeline in a subprocess, SIGKILL it while the fit stage runs, rerun it.

    Returns the manifests after the kill and after the rerun, the rerun's exit status
    and output, and what was on disk right after the kill.
    """
    from prism_stats.pipeline import ensure_synthetic

    data = ensure_synthetic(base / "data", SMALL_PARTICIPANTS, SMALL_SEED)
    config = base / "run.toml"
    config.write_text(SMALL_CONFIG)
    out = base / "out"
    args = [*CLI, "run", "--data", str(data), "--config", str(config), "--out", str(out), "--no-progress"]
    log = open(base / "killed_run.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=cli_env(),
                            start_new_session=True)
    seen_running = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            m = read_manifest(out)
            fit = (m or {}).get("stages", {}).get("fit", {})
            if fit.get("status") == "running":
                seen_running = seen_running or time.monotonic()
                # Kill a few seconds into the stage: the model is compiling or sampling.
                if time.monotonic() - seen_running > 4:
                    break
            time.sleep(0.2)
        alive = proc.poll() is None
        if alive:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group we started
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        log.close()
    if not alive or seen_running is None:
        raise AssertionError("the pipeline was not caught while fitting:\n"
                             + (base / "killed_run.log").read_text()[-3000:])
    killed = read_manifest(out)
    files_after_kill = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    t0 = time.monotonic()
    rerun = subprocess.run(args, capture_output=True, text=True, env=cli_env(), timeout=900,
                           check=False)
    return {
        "data": str(data),
        "config": str(config),
        "out": str(out),
        "killed_manifest": killed,
        "files_after_kill": files_after_kill,
        "rerun_returncode": rerun.returncode,
        "rerun_output": rerun.stdout + rerun.stderr,
        "rerun_seconds": time.monotonic() - t0,
        "final_manifest": read_manifest(out),
    }


@pytest.fixture(scope="session")
def small_pipeline(tmp_path_factory) -> dict[str, Any]:
    """The kill-and-resume scenario's record (see :func:`kill_and_resume`), shared."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    base = root / "prism_small_pipeline"
    with file_lock(root / "prism_small_pipeline.lock"):
        record_file = base / "scenario.json"
        if record_file.is_file():
            return json.loads(record_file.read_text())
        base.mkdir(parents=True, exist_ok=True)
        record = kill_and_resume(base)
        record_file.write_text(json.dumps(record, indent=1))
        return record
