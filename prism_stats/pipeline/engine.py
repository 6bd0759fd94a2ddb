"""The resumable stage runner: fingerprints, the manifest and locking.

A pipeline is a list of :class:`Stage` objects -- data, not code paths: a name, the
function that does the work, the upstream stages it depends on, the configuration
sections it reads, whether it reads the data or the model spec, and the outputs it
produces (paths relative to the output folder). Before a stage runs, its
**fingerprint** is computed: the SHA-256 of

* the data hash (stages that read the data), the effective model spec and sampler
  settings (stages that depend on the spec), the configuration sections it reads and
  its own parameters (e.g. the country), which include every seed;
* the prism-stats version (and, for stages that sample, the versions of the sampling
  stack);
* the fingerprints of its upstream stages.

A stage is *reused* when ``OUT/manifest.json`` records it as ``done`` with the same
fingerprint and all its recorded outputs exist; otherwise its stale outputs are removed
and it runs. Any change thus recomputes exactly what depends on it.

Crash safety: every file is written to a temporary name and renamed into place
(:func:`prism_stats._io.atomic_path`), and the manifest marks a stage ``done`` only
after all its outputs are in place. A run killed at any point therefore leaves complete
files or none (left-over temporary ``.*.part`` files are removed by the next run), and
the next run redoes only the stage that was interrupted and what follows it. A lock
file (``OUT/.pipeline.lock``, an advisory ``flock`` released by the kernel even on
SIGKILL) keeps two runs from writing the same folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import (
    MANIFEST_FILE,
    MANIFEST_KIND,
    MANIFEST_SCHEMA,
    now_iso,
    read_manifest,
    sha256_json,
    write_json_atomic,
)
from .context import PipelineError, Stage, StageContext, StageError, user_errors

LOCK_FILE = ".pipeline.lock"


def _installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def fingerprint_inputs(stage: Stage, ctx: StageContext, upstream: Mapping[str, str]) -> dict[str, Any]:
    """Everything a stage's result depends on (hashed by :func:`fingerprint`)."""
    inputs: dict[str, Any] = {
        "stage": stage.name,
        "prism_stats": __version__,
        "params": dict(stage.params),
        "config": {s: ctx.config.fingerprint_section(s) for s in stage.config},
        "upstream": {d: upstream[d] for d in stage.depends},
    }
    if stage.uses_data:
        inputs["data_hash"] = ctx.data_hash
    if stage.uses_spec:
        inputs["spec"] = ctx.spec_fingerprint
    if stage.versions:
        inputs["versions"] = {p: _installed_version(p) for p in stage.versions}
    return inputs


def fingerprint(inputs: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a stage's inputs."""
    return sha256_json(inputs)


# --- the manifest ------------------------------------------------------------------------------


def _new_manifest() -> dict[str, Any]:
    return {"kind": MANIFEST_KIND, "schema": MANIFEST_SCHEMA, "created_at": now_iso(),
            "updated_at": now_iso(), "stages": {}, "invocations": []}


@contextlib.contextmanager
def _lock(out: Path, wait: bool) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): run unlocked
        yield
        return
    path = out / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PipelineError(f"another prism-stats pipeline ({holder}) is writing {out}; "
                                "wait for it to finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def summarise_warnings(caught: Sequence[warnings.WarningMessage], limit: int = 8) -> list[str]:
    """Distinct warnings raised during a stage, one line each with its count.

    Libraries warn freely (statsmodels, arviz); the stage output stays readable and the
    warnings are kept in the manifest rather than lost.
    """
    counts: dict[str, int] = {}
    for w in caught:
        first = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        key = f"{w.category.__name__}: {first[:200]}"
        counts[key] = counts.get(key, 0) + 1
    lines = [f"{k}" + (f" (x{n})" if n > 1 else "") for k, n in counts.items()]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more kinds of warning"]
    return lines


def remove_partial_files(folder: Path) -> list[Path]:
    """Delete temporary ``.<name>.part`` files left by an interrupted writer."""
    removed = []
    for path in folder.rglob(".*.part"):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _rel(path: str | os.PathLike[str], out: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = out / p
    try:
        return p.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        raise PipelineError(f"stage output {p} lies outside the output folder {out}") from None


def _remove_outputs(out: Path, rels: Sequence[str]) -> None:
    root = out.resolve()
    for rel in rels:
        p = (out / rel).resolve()
        if p == root or root not in p.parents:  # never outside OUT, never OUT itself
            continue
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


# --- the runner ----------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    """What a pipeline invocation did.

    Attributes
    ----------
    out : Path
    manifest : dict
        The manifest as written at the end.
    ran, reused : list of str
        Stages computed in this invocation, and stages reused from an earlier one.
    """

    out: Path
    manifest: dict[str, Any]
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, list[Path]]:
        """Every stage's outputs (absolute paths), in stage order."""
        return {name: [self.out / p for p in rec.get("outputs", [])]
                for name, rec in self.manifest["stages"].items() if rec.get("status") == "done"}

    def summary(self) -> str:
        """A plain-text summary: per stage its status, time and outputs."""
        lines = [f"Pipeline output: {self.out}"]
        for name, rec in self.manifest["stages"].items():
            how = "ran" if name in self.ran else ("reused" if name in self.reused else rec.get("status"))
            lines.append(f"  {name:<18} {how:<7} {rec.get('duration_s', 0):7.1f} s")
            for p in rec.get("outputs", []):
                lines.append(f"      {p}")
        return "\n".join(lines)


def execute(
    stages: Sequence[Stage],
    ctx: StageContext,
    *,
    force: Sequence[str] | bool = (),
    until: str | None = None,
    wait: bool = False,
    meta: Callable[[StageContext], Mapping[str, Any]] | None = None,
) -> PipelineResult:
    """Run *stages* in order in ``ctx.out``, reusing the unchanged ones.

    Parameters
    ----------
    stages : sequence of Stage
        In dependency order (every ``depends`` entry names an earlier stage).
    ctx : StageContext
    force : sequence of str or bool
        Stages to recompute even when unchanged (``True``: all), together with every
        stage downstream of them.
    until : str, optional
        Stop after this stage.
    wait : bool
        Wait for another run on the same folder to finish instead of failing.
    meta : callable, optional
        ``meta(ctx)`` gives extra top-level manifest entries (data folder and hash,
        config, versions); called at the start and again at the end.

    Returns
    -------
    PipelineResult

    Raises
    ------
    PipelineError
        When a stage fails (the manifest records the failure first).
    """
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise PipelineError(f"duplicate stage names in {names}")
    for i, s in enumerate(stages):
        missing = [d for d in s.depends if d not in names[:i]]
        if missing:
            raise PipelineError(f"stage {s.name!r} depends on {missing}, which do not run before it")
    if until is not None and until not in names:
        raise PipelineError(f"--until: unknown stage {until!r} (stages: {', '.join(names)})")
    forced = set(names) if force is True else set(force or ())
    unknown = forced - set(names)
    if unknown:
        raise PipelineError(f"--force: unknown stage(s) {sorted(unknown)} (stages: {', '.join(names)})")
    for s in stages:  # a forced stage's dependants are recomputed with it
        if forced & set(s.depends):
            forced.add(s.name)

    out = ctx.out
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out, wait):
        for p in remove_partial_files(out):
            ctx.reporter.note(f"removed an incomplete file left by an interrupted run: {_rel(p, out)}")
        manifest = read_manifest(out) or _new_manifest()
        if meta is not None:
            manifest.update(dict(meta(ctx)))
        invocation = {"started_at": now_iso(), "pid": os.getpid(), "ran": [], "reused": [],
                      "status": "running"}
        manifest.setdefault("invocations", []).append(invocation)
        manifest["invocations"] = manifest["invocations"][-50:]
        records: dict[str, Any] = manifest.setdefault("stages", {})

        def save() -> None:
            manifest["updated_at"] = now_iso()
            manifest["stage_order"] = names
            write_json_atomic(out / MANIFEST_FILE, manifest)

        result = PipelineResult(out=out, manifest=manifest)
        total = len(stages) if until is None else names.index(until) + 1
        for index, stage in enumerate(stages[:total], start=1):
            ctx.stage = stage
            inputs = fingerprint_inputs(stage, ctx, ctx.fingerprints)
            fp = fingerprint(inputs)
            ctx.fingerprints[stage.name] = fp
            old = records.get(stage.name) or {}
            if (stage.name not in forced and old.get("status") == "done"
                    and old.get("fingerprint") == fp
                    and all((out / p).exists() for p in old.get("outputs", []))):
                ctx.reporter.stage_reused(index, total, stage, old)
                result.reused.append(stage.name)
                invocation["reused"].append(stage.name)
                continue
            _remove_outputs(out, list(old.get("outputs", [])) + list(stage.outputs))
            record: dict[str, Any] = {"status": "running", "fingerprint": fp, "inputs": inputs,
                                      "started_at": now_iso(), "pid": os.getpid()}
            records[stage.name] = record
            save()
            ctx.reporter.stage_start(index, total, stage)
            t0 = time.perf_counter()
            caught: list[warnings.WarningMessage] = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("default")
                    produced = stage.action(ctx)
                rels = list(dict.fromkeys(_rel(p, out) for p in produced))
                missing = [p for p in stage.outputs if not (out / p).exists()]
                if missing:
                    raise PipelineError(f"stage {stage.name!r} did not produce {missing}")
            except KeyboardInterrupt:
                record.update(status="interrupted", finished_at=now_iso(),
                              duration_s=time.perf_counter() - t0)
                invocation["status"] = "interrupted"
                save()
                raise
            except BaseException as exc:
                message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, user_errors()) else str(exc)
                record.update(status="failed", finished_at=now_iso(),
                              duration_s=time.perf_counter() - t0, error=message)
                if not isinstance(exc, user_errors()):
                    record["traceback"] = traceback.format_exc(limit=20)
                invocation.update(status="failed", finished_at=now_iso())
                save()
                ctx.reporter.stage_failed(index, total, stage, message)
                if isinstance(exc, user_errors()):
                    # Keep the kind of a StageError (e.g. a failed convergence gate).
                    kind = type(exc) if isinstance(exc, StageError) else StageError
                    raise kind(f"stage {stage.name!r} failed: {exc}") from exc
                raise
            record.update(status="done", finished_at=now_iso(),
                          duration_s=round(time.perf_counter() - t0, 3), outputs=rels)
            summary = summarise_warnings(caught)
            if summary:
                record["warnings"] = summary
                for line in summary:
                    ctx.reporter.note(f"warning: {line}")
            record.pop("pid", None)
            result.ran.append(stage.name)
            invocation["ran"].append(stage.name)
            save()
            ctx.reporter.stage_done(index, total, stage, record)
        # Stages no longer part of the pipeline (e.g. a country dropped from the config)
        # keep their record but are marked so the supplement ignores them.
        for name, rec in records.items():
            if name not in names and rec.get("status") == "done":
                rec["status"] = "obsolete"
        invocation.update(status="done" if until is None else f"stopped after {until}",
                          finished_at=now_iso())
        if meta is not None:
            manifest.update(dict(meta(ctx)))
        save()
    return result
