"""Running many fits: seeds, one file per task, retries, and serial or Dask execution.

Both the simulation-based calibration (:mod:`prism_stats.sweeps.sbc`) and the
specification sweeps (:mod:`prism_stats.sweeps.sweep`) are a list of independent
:class:`Task` objects run by :func:`run_tasks`, serially in this process or on a Dask
cluster (a :class:`distributed.LocalCluster` by default, or any scheduler address), under
the rules that make PyMC/nutpie fits safe and reproducible at scale:

* **One fit per single-threaded worker process.** :func:`dask_client` starts local workers
  with one thread each (BLAS/OpenMP pinned to one thread). On a cluster whose workers have
  more threads, :func:`fit_slot` still serialises fits within a process.
* **Compile once, then swap data.** :func:`process_cached` keeps compiled models (and
  loaded data) per worker process, so a worker compiles a model the first time it needs
  it and later tasks reuse it (``compiled.with_data(...)`` for SBC).
* **No concurrent cold compiles in one cache.** PyTensor's compile and numba caches are
  not safe for concurrent writers, so every worker process claims its own compile
  directory (:class:`CompileDirPlugin`: ``<root>/slot-<i>``, held with an exclusive file
  lock for the life of the process, and reused, warm, by the next run).
* **Seeds from one root.** Task seeds are children of ``numpy.random.SeedSequence(root)``
  (:func:`replicate_seed` for numbered replicates, :func:`keyed_seed` for named tasks such
  as grid points), recorded as ``(root, spawn_key)`` with every result
  (:func:`seed_record`). A child does not depend on how many tasks there are, so a run can
  be extended (more replicates, more grid points) without changing finished results.
* **One file per task, aggregated afterwards; only summaries travel.** A task function
  writes its own output files atomically and returns a small summary dict; the driver
  never receives posterior draws.
* **Resumable.** A task whose output files all exist is skipped (files are written
  atomically, so existing means complete).
* **Retried once, then reported.** A failing task is resubmitted ``retries`` times (default
  once, with the same seed); a task that still fails is listed in the :class:`RunReport`
  and in ``failures.json`` with its error and traceback, never dropped silently.
* **Progress:** one bar over all tasks (finished, skipped and failed).

Workers read their inputs and write their outputs by path: on a cluster of several
machines the output folder (and the data folder of a sweep) must be on a file system that
every worker sees under the same path.

The task function must be importable on the workers (a module-level function of an
installed package) and must not need objects that import PyMC when unpickled, so that the
compile-directory plugin can act before PyTensor is first imported in the worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import now_iso, write_json_atomic

log = logging.getLogger(__name__)

#: Environment of local worker processes: one BLAS/OpenMP/numba thread per process.
THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
#: Environment variable that overrides the default root of the per-worker compile dirs.
COMPILE_ROOT_ENV = "PRISM_STATS_COMPILE_ROOT"


class ExecutionError(RuntimeError):
    """Tasks could not be run as asked (bad cluster, invalid tasks, ...)."""


# --- seeds --------------------------------------------------------------------------------

def replicate_seed(root: int, index: int) -> np.random.SeedSequence:
    """Seed of replicate *index*: child ``index`` of ``SeedSequence(root)``.

    Identical to ``SeedSequence(root).spawn(n)[index]`` for any ``n > index``.
    """
    if index < 0:
        raise ExecutionError(f"replicate index must be >= 0, got {index}")
    return np.random.SeedSequence(int(root), spawn_key=(int(index),))


def keyed_seed(root: int, name: str) -> np.random.SeedSequence:
    """Seed of a named task (e.g. a grid point): a child of ``SeedSequence(root)`` whose
    spawn key is derived from the SHA-256 of *name*, so it is stable when tasks are added,
    removed or reordered."""
    key = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
    return np.random.SeedSequence(int(root), spawn_key=(key,))


def seed_int(seq: np.random.SeedSequence) -> int:
    """A non-negative 63-bit integer seed drawn from *seq* (for samplers taking ints)."""
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def seed_record(seq: np.random.SeedSequence) -> dict[str, Any]:
    """``{"root": ..., "spawn_key": [...]}``: enough to recreate *seq*."""
    return {"root": int(seq.entropy), "spawn_key": [int(k) for k in seq.spawn_key]}


# --- tasks and reports --------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """One independent unit of work.

    Attributes
    ----------
    key : str
        Unique name (``"rep-0007"``, a grid-point id, ...).
    payload : dict
        The task function's argument; must be picklable without importing PyMC.
    outputs : tuple of Path
        Files the task writes; the task is finished when all exist.
    """

    key: str
    payload: Mapping[str, Any]
    outputs: tuple[Path, ...]

    def done(self) -> bool:
        """Whether every output file exists (outputs are written atomically)."""
        return bool(self.outputs) and all(Path(p).exists() for p in self.outputs)


@dataclass
class TaskOutcome:
    """What happened to one task.

    ``status`` is ``"done"`` (computed now), ``"skipped"`` (outputs already there) or
    ``"failed"`` (every attempt raised); ``errors`` holds one ``type: message`` line per
    failed attempt and ``tracebacks`` their tracebacks.
    """

    key: str
    status: str
    attempts: int = 0
    summary: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    seconds: float | None = None


@dataclass
class RunReport:
    """Outcome of :func:`run_tasks`: one :class:`TaskOutcome` per task, in task order."""

    outcomes: dict[str, TaskOutcome]
    executor: dict[str, Any]
    seconds: float
    started: str

    def keys(self, status: str) -> list[str]:
        """Keys of the tasks with *status*."""
        return [k for k, o in self.outcomes.items() if o.status == status]

    @property
    def n_done(self) -> int:
        return len(self.keys("done"))

    @property
    def n_skipped(self) -> int:
        return len(self.keys("skipped"))

    @property
    def n_failed(self) -> int:
        return len(self.keys("failed"))

    @property
    def failures(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes.values() if o.status == "failed"]

    @property
    def retried(self) -> list[str]:
        """Tasks that needed more than one attempt (finished or not)."""
        return [k for k, o in self.outcomes.items() if o.attempts > 1]

    def summary_line(self) -> str:
        line = (f"{len(self.outcomes)} tasks: {self.n_done} computed, {self.n_skipped} reused, "
                f"{self.n_failed} failed ({self.seconds:.1f}s, {self.executor.get('kind', '?')})")
        if self.retried:
            line += f"; retried: {', '.join(self.retried)}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "seconds": self.seconds,
            "executor": self.executor,
            "n_tasks": len(self.outcomes),
            "n_done": self.n_done,
            "n_skipped": self.n_skipped,
            "n_failed": self.n_failed,
            "retried": self.retried,
            "failures": [failure_record(o) for o in self.failures],
        }


def failure_record(outcome: TaskOutcome) -> dict[str, Any]:
    """JSON-ready description of a failed task."""
    return {"key": outcome.key, "attempts": outcome.attempts, "errors": outcome.errors,
            "tracebacks": outcome.tracebacks}


class FailedTasksError(RuntimeError):
    """Raised by callers that require every task to finish; carries the report."""

    def __init__(self, report: RunReport, where: str = "") -> None:
        self.report = report
        keys = ", ".join(o.key for o in report.failures)
        first = report.failures[0].errors[-1] if report.failures else ""
        super().__init__(f"{report.n_failed} task(s) failed after retrying{where}: {keys} "
                         f"(last error of the first: {first})")


# --- per-process state (worker side) ------------------------------------------------------

_PROCESS_CACHE: dict[Any, Any] = {}
_CACHE_LOCK = threading.Lock()
_FIT_LOCK = threading.RLock()


def process_cached(key: Any, factory: Callable[[], Any], *, max_items: int = 8) -> tuple[Any, bool]:
    """Return ``(value, hit)``: the value cached under *key* in this process, else
    ``factory()`` (stored; the oldest entries are evicted beyond *max_items*)."""
    with _CACHE_LOCK:
        if key in _PROCESS_CACHE:
            return _PROCESS_CACHE[key], True
    value = factory()
    with _CACHE_LOCK:
        _PROCESS_CACHE[key] = value
        while len(_PROCESS_CACHE) > max_items:
            _PROCESS_CACHE.pop(next(iter(_PROCESS_CACHE)))
    return value, False


def clear_process_cache() -> None:
    """Forget every cached compiled model and dataset of this process."""
    with _CACHE_LOCK:
        _PROCESS_CACHE.clear()


@contextlib.contextmanager
def fit_slot() -> Iterator[None]:
    """Hold this process's fit lock: at most one compile/fit at a time per process, even
    on a worker with several threads (PyTensor compilation is not thread-safe)."""
    with _FIT_LOCK:
        yield


# --- compile directories ------------------------------------------------------------------

def default_compile_root() -> Path:
    """``$PRISM_STATS_COMPILE_ROOT``, else ``$XDG_CACHE_HOME/prism-stats/compile`` (or
    ``~/.cache/...``), evaluated on the machine that calls it."""
    if os.environ.get(COMPILE_ROOT_ENV):
        return Path(os.environ[COMPILE_ROOT_ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "prism-stats" / "compile"


_SLOT_HANDLES: list[Any] = []  # keeps the slot locks open for the life of the process


def claim_compile_slot(root: str | os.PathLike[str] | None = None, max_slots: int = 256) -> Path:
    """Claim a compile directory no other live process uses: the first ``<root>/slot-<i>``
    whose lock file this process can lock exclusively (kept locked until it exits).

    Slots are reused by later runs, so their caches stay warm; two processes never share
    one at the same time. Without POSIX locks (Windows) a per-process directory is used.
    """
    root = Path(root) if root is not None else default_compile_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        slot = root / f"pid-{os.getpid()}"
        slot.mkdir(exist_ok=True)
        return slot
    for i in range(max_slots):
        slot = root / f"slot-{i}"
        slot.mkdir(exist_ok=True)
        handle = open(slot / ".lock", "a+")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {now_iso()}\n")
        handle.flush()
        _SLOT_HANDLES.append(handle)
        return slot
    raise ExecutionError(f"all {max_slots} compile slots under {root} are in use")


def use_compile_dir(path: Path) -> bool:
    """Point PyTensor (and its numba cache) at *path* for this process.

    Returns False, changing nothing, when PyTensor is already imported here (its
    configuration is read at import time).
    """
    if "pytensor" in sys.modules:
        return False
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",")
             if f and not f.startswith("base_compiledir=")]
    flags.append(f"base_compiledir={path}")
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    return True


try:  # the plugin base class is optional: serial runs do not need distributed
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover
    _WorkerPlugin = object  # type: ignore[assignment,misc]


class CompileDirPlugin(_WorkerPlugin):  # type: ignore[misc,valid-type]
    """Dask worker plugin: give each worker process its own PyTensor compile directory.

    Runs when the worker registers, before any task (and so before PyTensor is imported
    there). *root* is resolved on the worker (default :func:`default_compile_root`).
    """

    name = "prism-stats-compile-dir"

    def __init__(self, root: str | None = None) -> None:
        self.root = root

    def setup(self, worker: Any) -> None:
        slot = claim_compile_slot(self.root)
        applied = use_compile_dir(slot)
        os.environ["PRISM_STATS_COMPILE_DIR"] = str(slot) if applied else "unchanged (pytensor already imported)"


def worker_environment() -> dict[str, Any]:
    """Facts about the calling process (run on each worker by :func:`describe_workers`)."""
    return {
        "pid": os.getpid(),
        "host": os.uname().nodename if hasattr(os, "uname") else "",
        "compile_dir": os.environ.get("PRISM_STATS_COMPILE_DIR", "default"),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "pytensor_imported": "pytensor" in sys.modules,
    }


def describe_workers(client: Any) -> list[dict[str, Any]]:
    """One dict per worker: address, name, threads, pid, compile directory."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    env = client.run(worker_environment)
    out = []
    for address, w in sorted(info.items()):
        out.append({"address": address, "name": str(w.get("name")), "nthreads": int(w.get("nthreads", 0)),
                    **env.get(address, {})})
    return out


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2, *,
                compile_root: str | os.PathLike[str] | None = None,
                quiet: bool = True) -> Iterator[Any]:
    """A Dask client: a new :class:`~distributed.LocalCluster` of *workers* single-threaded
    processes, or a connection to *scheduler* (``tcp://host:8786``).

    Every worker gets :class:`CompileDirPlugin`. Workers of an external cluster with
    several threads are accepted (fits are still serialised per process by
    :func:`fit_slot`); a warning says that the extra threads stay idle.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover
        raise ExecutionError("Dask execution needs the [dask] extra: pip install 'prism-stats[dask]' "
                             "(or run serially: no workers or scheduler)") from exc
    cluster = None
    level = logging.ERROR if quiet else logging.WARNING
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise ExecutionError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
        else:
            if workers < 1:
                raise ExecutionError(f"workers must be >= 1, got {workers}")
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=level, env=dict(THREAD_ENV))
            client = Client(cluster)
        try:
            client.register_plugin(CompileDirPlugin(None if compile_root is None else str(compile_root)))
            threads = {a: w.get("nthreads", 1) for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
            if not threads:
                raise ExecutionError(f"the Dask cluster at {scheduler or 'local'} has no workers")
            multi = [a for a, n in threads.items() if n > 1]
            if multi:
                log.warning("%d Dask worker(s) have more than one thread; fits run one at a time "
                            "per process, so the extra threads stay idle (start workers with "
                            "--nthreads 1 and more processes instead)", len(multi))
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def executor_description(client: Any | None) -> dict[str, Any]:
    """``{"kind": "serial"}`` or the scheduler address and the workers' setup."""
    if client is None:
        return {"kind": "serial", "pid": os.getpid()}
    return {"kind": "dask", "scheduler": client.scheduler.address, "workers": describe_workers(client)}


# --- running ------------------------------------------------------------------------------

def _progress(enabled: bool, label: str, total: int):
    # local: rich only when a progress bar is shown
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, disable=not enabled, transient=False)
    return progress


def _status(outcomes: Mapping[str, TaskOutcome]) -> str:
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("done", "skipped", "failed")}
    return f"computed {counts['done']} · reused {counts['skipped']} · failed {counts['failed']}"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_tasks(
    tasks: Sequence[Task],
    fn: Callable[[Mapping[str, Any]], dict[str, Any]],
    *,
    client: Any | None = None,
    retries: int = 1,
    progress: bool = True,
    label: str = "tasks",
    failures_path: str | os.PathLike[str] | None = None,
) -> RunReport:
    """Run ``fn(task.payload)`` for every unfinished task, serially or on Dask.

    Parameters
    ----------
    tasks : sequence of Task
        Unique keys; tasks whose outputs all exist are skipped (resumability).
    fn : callable
        Module-level function writing the task's outputs and returning a small summary.
    client : distributed.Client, optional
        Run on this cluster; ``None`` runs serially in this process.
    retries : int
        Extra attempts for a failing task (default 1: retried once).
    progress : bool
        Show one progress bar over all tasks (on stderr).
    label : str
        Name of the tasks in the progress bar and in Dask task keys.
    failures_path : path, optional
        Write the failed tasks (errors and tracebacks) there as JSON (an empty list when
        none failed, so a stale file never survives a successful rerun).

    Returns
    -------
    RunReport
    """
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ExecutionError(f"task keys must be unique; repeated: {dup[:5]}")
    if retries < 0:
        raise ExecutionError(f"retries must be >= 0, got {retries}")
    t0 = time.perf_counter()
    started = now_iso()
    outcomes: dict[str, TaskOutcome] = {}
    todo: list[Task] = []
    for task in tasks:
        if task.done():
            outcomes[task.key] = TaskOutcome(task.key, "skipped")
        else:
            todo.append(task)
    with _progress(progress, label, len(tasks)) as bar:
        bar_id = bar.add_task(label, total=len(tasks), completed=len(outcomes), status=_status(outcomes))
        if client is None:
            _run_serial(todo, fn, retries, outcomes, bar, bar_id)
        else:
            _run_dask(todo, fn, retries, outcomes, bar, bar_id, client, label)
    ordered = {k: outcomes[k] for k in keys}
    report = RunReport(ordered, executor_description(client), time.perf_counter() - t0, started)
    if failures_path is not None:
        write_json_atomic(failures_path, {"written": now_iso(),
                                          "failures": [failure_record(o) for o in report.failures]})
    return report


def _run_serial(todo, fn, retries, outcomes, bar, bar_id) -> None:
    for task in todo:
        outcome = TaskOutcome(task.key, "failed")
        for attempt in range(1, retries + 2):
            outcome.attempts = attempt
            t0 = time.perf_counter()
            try:
                outcome.summary = fn(task.payload)
            except Exception as exc:  # noqa: BLE001 - recorded, retried, then reported
                outcome.errors.append(_error_text(exc))
                outcome.tracebacks.append(traceback.format_exc())
                log.warning("task %s failed (attempt %d): %s", task.key, attempt, _error_text(exc))
                continue
            outcome.status = "done"
            outcome.seconds = time.perf_counter() - t0
            break
        outcomes[task.key] = outcome
        bar.update(bar_id, advance=1, status=_status(outcomes))


def _dask_key(label: str, key: str, attempt: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{label}-{key}")
    return f"{safe}-a{attempt}-{uuid.uuid4().hex[:8]}"


def _run_dask(todo, fn, retries, outcomes, bar, bar_id, client, label) -> None:
    from distributed import as_completed  # local: Dask only for parallel runs (see dask_client)

    if not todo:
        return
    futures: dict[Any, tuple[Task, TaskOutcome]] = {}

    def submit(task: Task, outcome: TaskOutcome) -> Any:
        outcome.attempts += 1
        fut = client.submit(fn, dict(task.payload), key=_dask_key(label, task.key, outcome.attempts),
                            pure=False)
        futures[fut] = (task, outcome)
        return fut

    pending = {t.key: TaskOutcome(t.key, "failed") for t in todo}
    queue = as_completed([submit(t, pending[t.key]) for t in todo])
    started = {t.key: time.perf_counter() for t in todo}
    for fut in queue:
        task, outcome = futures.pop(fut)
        if fut.status == "finished":
            outcome.summary = fut.result()
            outcome.status = "done"
            outcome.seconds = time.perf_counter() - started[task.key]
        else:
            try:
                exc = fut.exception()
                tb = fut.traceback()
                outcome.errors.append(_error_text(exc))
                outcome.tracebacks.append("".join(traceback.format_tb(tb)) if tb is not None else "")
            except Exception as err:  # noqa: BLE001 - e.g. a cancelled future
                outcome.errors.append(f"{fut.status}: {_error_text(err)}")
                outcome.tracebacks.append("")
            log.warning("task %s failed (attempt %d): %s", task.key, outcome.attempts, outcome.errors[-1])
            if outcome.attempts <= retries:
                queue.add(submit(task, outcome))
                fut.release()
                continue
        fut.release()
        outcomes[task.key] = outcome
        bar.update(bar_id, advance=1, status=_status(outcomes))
