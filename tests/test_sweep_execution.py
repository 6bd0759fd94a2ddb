"""Task execution for SBC and sweeps: seeds, resumability, retries, Dask workers.

The task functions here are cheap (no MCMC); they are shipped to Dask workers by value.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from prism_stats.sweeps import execution as ex
from prism_stats.sweeps.execution import Task, run_tasks

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def write_square(payload):
    """Write x**2 (and the worker pid) to the task's output; fail on request."""
    out = Path(payload["output"])
    marker = payload.get("fail_marker")
    if payload.get("always_fail"):
        raise RuntimeError(f"task {payload['x']} always fails")
    if marker and not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise ValueError(f"flaky task {payload['x']} (first attempt)")
    time.sleep(payload.get("sleep", 0.0))
    value = {"x": payload["x"], "square": payload["x"] ** 2, "pid": os.getpid(),
             "draw": float(np.random.default_rng(ex.replicate_seed(7, payload["x"])).random())}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, out)
    return {"x": payload["x"], "pid": os.getpid()}


def _tasks(folder: Path, n: int, extra: dict | None = None) -> list[Task]:
    extra = extra or {}
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        payload = {"x": i, "output": str(folder / f"t{i}.json"), **extra.get(i, {})}
        out.append(Task(f"t{i}", payload, (folder / f"t{i}.json",)))
    return out


def test_seeds_are_children_of_one_root():
    children = np.random.SeedSequence(42).spawn(5)
    for i, child in enumerate(children):
        mine = ex.replicate_seed(42, i)
        assert np.array_equal(mine.generate_state(4), child.generate_state(4))
    rec = ex.seed_record(ex.replicate_seed(42, 3))
    assert rec == {"root": 42, "spawn_key": [3]}
    again = np.random.SeedSequence(rec["root"], spawn_key=tuple(rec["spawn_key"]))
    assert ex.seed_int(again) == ex.seed_int(ex.replicate_seed(42, 3))
    assert ex.seed_int(ex.keyed_seed(1, "abc")) == ex.seed_int(ex.keyed_seed(1, "abc"))
    assert ex.seed_int(ex.keyed_seed(1, "abc")) != ex.seed_int(ex.keyed_seed(1, "abd"))
    assert 0 <= ex.seed_int(ex.keyed_seed(1, "abc")) < 2**63


def test_serial_run_retries_once_reports_failures_and_resumes(tmp_path):
    tasks = _tasks(tmp_path / "out", 5, {1: {"fail_marker": str(tmp_path / "flaky")},
                                         3: {"always_fail": True}})
    report = run_tasks(tasks, write_square, progress=False, failures_path=tmp_path / "failures.json")
    assert report.keys("done") == ["t0", "t1", "t2", "t4"]
    assert report.keys("failed") == ["t3"]
    assert report.outcomes["t1"].attempts == 2 and report.retried == ["t1", "t3"]
    assert report.outcomes["t3"].attempts == 2
    assert "always fails" in report.outcomes["t3"].errors[-1]
    failures = json.loads((tmp_path / "failures.json").read_text())["failures"]
    assert [f["key"] for f in failures] == ["t3"] and "Traceback" in failures[0]["tracebacks"][0]
    assert "1 failed" in report.summary_line()
    with pytest.raises(ex.FailedTasksError, match="t3"):
        raise ex.FailedTasksError(report)
    # rerun: finished tasks are not recomputed, the failed one is tried again
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("t*.json")}
    tasks[3] = Task("t3", {"x": 3, "output": str(tmp_path / "out" / "t3.json")}, tasks[3].outputs)
    again = run_tasks(tasks, write_square, progress=False, failures_path=tmp_path / "failures.json")
    assert again.keys("skipped") == ["t0", "t1", "t2", "t4"] and again.keys("done") == ["t3"]
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    assert json.loads((tmp_path / "failures.json").read_text())["failures"] == []


def test_duplicate_keys_are_refused(tmp_path):
    t = _tasks(tmp_path, 1)
    with pytest.raises(ex.ExecutionError, match="unique"):
        run_tasks(t + t, write_square, progress=False)


def test_compile_slots_are_exclusive_between_processes(tmp_path):
    mine = ex.claim_compile_slot(tmp_path)
    code = textwrap.dedent(f"""
        from prism_stats.sweeps.execution import claim_compile_slot
        print(claim_compile_slot({str(tmp_path)!r}))
    """)
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert mine.name == "slot-0"
    assert Path(other.stdout.strip()).name == "slot-1"  # slot-0 is held by this process
    # a finished process releases its slot
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert Path(again.stdout.strip()).name == "slot-1"


@pytest.mark.slow
def test_dask_run_equals_serial_run_and_retries(tmp_path):
    serial = run_tasks(_tasks(tmp_path / "serial", 6), write_square, progress=False)
    extra = {2: {"fail_marker": str(tmp_path / "flaky")}, 4: {"always_fail": True}}
    with ex.dask_client(workers=2, compile_root=tmp_path / "compile") as client:
        workers = ex.describe_workers(client)
        report = run_tasks(_tasks(tmp_path / "dask", 6, extra), write_square, client=client,
                           progress=False, label="test")
    assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers)
    dirs = {w["compile_dir"] for w in workers}
    assert len(dirs) == 2 and all(str(tmp_path / "compile") in d for d in dirs)
    assert all(w["omp_threads"] == "1" for w in workers)
    assert report.executor["kind"] == "dask"
    assert report.keys("failed") == ["t4"] and report.outcomes["t2"].attempts == 2
    assert {o.summary["pid"] for o in report.outcomes.values() if o.summary} <= {w["pid"] for w in workers}
    for i in (0, 1, 2, 3, 5):  # identical results for the same seeds
        a = json.loads((tmp_path / "serial" / f"t{i}.json").read_text())
        b = json.loads((tmp_path / "dask" / f"t{i}.json").read_text())
        assert (a["square"], a["draw"]) == (b["square"], b["draw"])
    assert serial.n_done == 6


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(tmp_path):
    """SIGKILL a driver mid-run; the rerun reuses what finished and completes the rest."""
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sweep_execution import _tasks, write_square
        from prism_stats.sweeps.execution import run_tasks
        from pathlib import Path
        tasks = _tasks(Path({str(out)!r}), 8, {{i: {{"sleep": 0.4}} for i in range(8)}})
        run_tasks(tasks, write_square, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("t*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(out.glob("t*.json"))
    assert 3 <= len(finished) < 8
    mtimes = {p.name: p.stat().st_mtime_ns for p in finished}
    report = run_tasks(_tasks(out, 8), write_square, progress=False)
    assert report.n_skipped == len(finished) and report.n_done == 8 - len(finished)
    assert {p.name: p.stat().st_mtime_ns for p in finished} == mtimes
    assert not list(out.glob("*.tmp"))
