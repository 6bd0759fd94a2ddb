"""Shared helpers of the benchmark scripts: machine description, load, cached synthetic
data, fresh-subprocess workers and the printed tables.

Every fit runs in a fresh Python subprocess (``_worker.py``) so that its peak resident
memory (``VmHWM`` of ``/proc/self/status``) and its compilation are its own, not left
over from a previous size. The synthetic releases are generated once per (size, seed),
written as JSONL to a temporary folder, read back with :func:`prism_stats.data.load_prism`
(the same path a user takes) and cached as a pickle of the tidy tables under
``$PRISM_BENCH_CACHE`` (default ``/tmp/prism-bench``), outside the repository.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_worker.py"
RESULT_PREFIX = "BENCH-RESULT "
DEFAULT_SEED = 20240422


class BenchmarkError(RuntimeError):
    """A benchmark worker failed; the message carries the tail of its output."""


def cache_dir() -> Path:
    """Where generated data and run folders go (never the repository)."""
    path = Path(os.environ.get("PRISM_BENCH_CACHE", "/tmp/prism-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def load1() -> float:
    """The 1-minute load average (record it beside every timing: the machine is shared)."""
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and library versions, date and git revision."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("pymc", "pytensor", "nutpie", "numba", "arviz", "numpy", "pandas", "xarray"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - reported as such
            versions[pkg] = "missing"
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "prism_stats"],
                               capture_output=True, text=True, timeout=10,
                               check=False).stdout.strip()
        rev = rev + (" (+ uncommitted changes in prism_stats/)" if dirty else "")
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - no git
        rev = "unknown"
    return {
        "date": date.today().isoformat(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git": rev,
        "load1_at_start": load1(),
    }


def print_machine(info: Mapping[str, Any]) -> None:
    v = info["versions"]
    print(f"# {info['date']}  {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM")
    print(f"# Python {info['python']}; " + ", ".join(f"{k} {x}" for k, x in v.items()))
    print(f"# prism-stats git {info['git']}; 1-min load average at start {info['load1_at_start']}")
    sys.stdout.flush()


def run_worker(task: str, config: Mapping[str, Any], *, env: Mapping[str, str] | None = None,
               timeout: float | None = None, verbose: bool = False) -> dict[str, Any]:
    """Run one worker task in a fresh subprocess and return its result dict.

    The result carries ``peak_rss_mb`` (the worker's own ``VmHWM``), ``wall_s`` of the
    whole subprocess (imports included) and the 1-minute load average before and after.
    """
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONHASHSEED", "0")
    before = load1()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(WORKER), task, json.dumps(dict(config))],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=str(REPO), check=False,
    )
    wall = time.perf_counter() - t0
    lines = proc.stdout.splitlines()
    found = [ln for ln in lines if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).splitlines()[-40:])
        raise BenchmarkError(f"worker {task} {dict(config)} failed (exit {proc.returncode}):\n{tail}")
    if verbose:
        sys.stderr.write(proc.stderr)
    result = json.loads(found[-1][len(RESULT_PREFIX):])
    result.update(process_wall_s=wall, load1_before=before, load1_after=load1())
    return result


def prepare_data(participants: int, seed: int = DEFAULT_SEED, *, verbose: bool = False) -> dict[str, Any]:
    """Generate (once) the synthetic release of *participants* and cache its tidy tables.

    Returns the worker's description: ``path`` of the pickle, rating and participant
    counts, and the seconds spent generating, writing and loading.
    """
    info_path = cache_dir() / "data" / f"synth_n{participants}_s{seed}.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if Path(info["path"]).exists():
            info["cached"] = True
            return info
    info = run_worker("prepare", {"participants": participants, "seed": seed}, verbose=verbose)
    info["cached"] = False
    return info


def growth_exponent(x: Sequence[float], y: Sequence[float]) -> float:
    """Slope of log(y) on log(x) by least squares (cost ~ x**slope); NaN with < 2 points."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y, strict=True)
           if a and b and a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return float("nan")
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if spec and isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def print_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]],
                *, file=None) -> None:
    """Print *rows* as a Markdown table; *columns* are (key, header, format spec)."""
    file = file or sys.stdout
    rows = list(rows)
    cells = [[_cell(r.get(k), f) for k, _, f in columns] for r in rows]
    heads = [h for _, h, _ in columns]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |", file=file)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for c in cells:
        print("| " + " | ".join(x.rjust(w) for x, w in zip(c, widths, strict=True)) + " |", file=file)
    file.flush()


def write_json(path: str | os.PathLike[str] | None, obj: Any) -> None:
    """Save the raw results (``--json``) for RESULTS.md."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(obj, indent=1, default=str))


#: Columns of the per-fit table printed by fit_scaling and fit_variants.
FIT_COLUMNS: list[tuple[str, str, str]] = [
    ("participants", "participants", "d"),
    ("n_ratings", "ratings", "d"),
    ("n_cells", "cells", "d"),
    ("compile_s", "compile s", ".1f"),
    ("sampling_s", "sampling s", ".1f"),
    ("post_s", "post s", ".1f"),
    ("wall_s", "wall s", ".1f"),
    ("min_ess_bulk", "min ESS bulk", ".0f"),
    ("min_ess_tail", "min ESS tail", ".0f"),
    ("ess_per_s", "ESS/s (sampling)", ".1f"),
    ("ess_per_wall_s", "ESS/s (wall)", ".1f"),
    ("steps_per_draw", "steps/draw", ".1f"),
    ("us_per_grad", "us/grad", ".0f"),
    ("max_rhat", "max R-hat", ".4f"),
    ("divergences", "div", "d"),
    ("peak_rss_mb", "peak RSS MB", ".0f"),
    ("load1_before", "load before", ".2f"),
    ("load1_after", "load after", ".2f"),
]
