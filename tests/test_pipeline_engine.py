"""The stage runner on toy stages: reuse, recomputation of dependants, failures,
interrupted writers, locking; and the release hash / synthetic-data helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prism_stats._io import atomic_path
from prism_stats.pipeline import (
    ConsoleReporter,
    PipelineConfig,
    PipelineError,
    Stage,
    StageContext,
    StageError,
    ensure_synthetic,
    execute,
    read_manifest,
    release_hash,
)
from prism_stats.pipeline.data import SYNTH_MARKER


class Recorder:
    """Toy stage actions that write one file each and count their calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: set[str] = set()
        self.crash: set[str] = set()

    def action(self, name: str):
        def act(ctx: StageContext) -> list[Path]:
            self.calls.append(name)
            if name in self.fail:
                raise StageError(f"{name} cannot run on these data")
            if name in self.crash:
                raise RuntimeError("a bug")
            path = ctx.out / f"{name}.txt"
            upstream = "".join((ctx.out / f"{d}.txt").read_text() for d in ctx.stage.depends)
            with atomic_path(path) as tmp:
                tmp.write_text(f"{name}({upstream})")
            return [path]

        return act


def toy_stages(rec: Recorder) -> list[Stage]:
    return [
        Stage("a", rec.action("a"), config=("data",), outputs=("a.txt",)),
        Stage("b", rec.action("b"), depends=("a",), config=("welfare",), outputs=("b.txt",)),
        Stage("c", rec.action("c"), depends=("a",), config=("compare",), outputs=("c.txt",)),
        Stage("d", rec.action("d"), depends=("b", "c"), config=("supplement",), outputs=("d.txt",)),
    ]


def run(out: Path, rec: Recorder, config: PipelineConfig | None = None, **kwargs):
    ctx = StageContext(out, config or PipelineConfig(), out, ConsoleReporter(quiet=True))
    return execute(toy_stages(rec), ctx, **kwargs)


def test_first_run_computes_everything_second_reuses_everything(tmp_path):
    rec = Recorder()
    first = run(tmp_path, rec)
    assert rec.calls == ["a", "b", "c", "d"] and first.ran == ["a", "b", "c", "d"]
    assert (tmp_path / "d.txt").read_text() == "d(b(a())c(a()))"
    manifest = read_manifest(tmp_path)
    assert all(r["status"] == "done" for r in manifest["stages"].values())
    assert manifest["stages"]["b"]["inputs"]["upstream"] == {"a": manifest["stages"]["a"]["fingerprint"]}
    rec.calls.clear()
    second = run(tmp_path, rec)
    assert rec.calls == [] and second.reused == ["a", "b", "c", "d"]
    assert read_manifest(tmp_path)["stages"]["a"]["finished_at"] == manifest["stages"]["a"]["finished_at"]


def test_a_config_change_recomputes_exactly_its_dependants(tmp_path):
    rec = Recorder()
    run(tmp_path, rec)
    rec.calls.clear()
    changed = PipelineConfig().replace(welfare={"replicates": 7})
    result = run(tmp_path, rec, changed)
    assert rec.calls == ["b", "d"]
    assert result.reused == ["a", "c"]
    rec.calls.clear()
    run(tmp_path, rec, changed.replace(data={"strict": False}))
    assert rec.calls == ["a", "b", "c", "d"]


def test_missing_output_is_recomputed(tmp_path):
    rec = Recorder()
    run(tmp_path, rec)
    (tmp_path / "c.txt").unlink()
    rec.calls.clear()
    run(tmp_path, rec)
    # c's fingerprint did not change, so d (whose inputs are the same) is reused
    assert rec.calls == ["c"]


def test_force_recomputes_a_stage_and_everything_downstream(tmp_path):
    rec = Recorder()
    run(tmp_path, rec)
    rec.calls.clear()
    run(tmp_path, rec, force=["c"])
    assert rec.calls == ["c", "d"]
    rec.calls.clear()
    run(tmp_path, rec, force=True)
    assert rec.calls == ["a", "b", "c", "d"]
    with pytest.raises(PipelineError, match="unknown stage"):
        run(tmp_path, rec, force=["zzz"])


def test_until_stops_and_a_later_run_continues(tmp_path):
    rec = Recorder()
    run(tmp_path, rec, until="b")
    assert rec.calls == ["a", "b"]
    rec.calls.clear()
    run(tmp_path, rec)
    assert rec.calls == ["c", "d"]


def test_a_failed_stage_is_recorded_and_the_rerun_continues_there(tmp_path):
    rec = Recorder()
    rec.fail = {"c"}
    with pytest.raises(StageError, match="stage 'c' failed: c cannot run"):
        run(tmp_path, rec)
    manifest = read_manifest(tmp_path)
    assert manifest["stages"]["c"]["status"] == "failed"
    assert "cannot run" in manifest["stages"]["c"]["error"]
    assert "d" not in manifest["stages"]
    assert manifest["invocations"][-1]["status"] == "failed"
    rec.fail, rec.calls = set(), []
    run(tmp_path, rec)
    assert rec.calls == ["c", "d"]


def test_a_bug_is_reraised_with_its_traceback_recorded(tmp_path):
    rec = Recorder()
    rec.crash = {"b"}
    with pytest.raises(RuntimeError, match="a bug"):
        run(tmp_path, rec)
    rec_b = read_manifest(tmp_path)["stages"]["b"]
    assert rec_b["status"] == "failed" and "Traceback" in rec_b["traceback"]


def test_stale_outputs_are_removed_before_a_stage_reruns(tmp_path):
    rec = Recorder()
    run(tmp_path, rec)
    manifest = read_manifest(tmp_path)
    manifest["stages"]["b"]["outputs"].append("old_b_extra.txt")
    (tmp_path / "old_b_extra.txt").write_text("stale")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    run(tmp_path, rec, PipelineConfig().replace(welfare={"replicates": 3}))
    assert not (tmp_path / "old_b_extra.txt").exists()


def test_leftover_partial_files_are_removed(tmp_path):
    rec = Recorder()
    run(tmp_path, rec)
    sub = tmp_path / "run"
    sub.mkdir()
    partial = sub / ".posterior.nc.abc123.part"
    partial.write_bytes(b"half")
    run(tmp_path, rec)
    assert not partial.exists()


def test_outputs_outside_the_folder_are_refused(tmp_path):
    def bad(ctx):
        return [tmp_path.parent / "elsewhere.txt"]

    ctx = StageContext(tmp_path / "out", PipelineConfig(), tmp_path, ConsoleReporter(quiet=True))
    with pytest.raises(PipelineError, match="outside the output folder"):
        execute([Stage("x", bad)], ctx)


def test_declared_outputs_must_be_produced(tmp_path):
    ctx = StageContext(tmp_path, PipelineConfig(), tmp_path, ConsoleReporter(quiet=True))
    with pytest.raises(PipelineError, match=r"did not produce \['y.txt'\]"):
        execute([Stage("x", lambda c: [], outputs=("y.txt",))], ctx)


def test_dependencies_must_run_earlier(tmp_path):
    ctx = StageContext(tmp_path, PipelineConfig(), tmp_path, ConsoleReporter(quiet=True))
    with pytest.raises(PipelineError, match="depends on"):
        execute([Stage("x", lambda c: [], depends=("y",)), Stage("y", lambda c: [])], ctx)


def test_a_second_writer_is_refused_while_the_folder_is_locked(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".pipeline.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("pid 12345")
        handle.flush()
        with pytest.raises(PipelineError, match="is writing"):
            run(tmp_path, Recorder())
    run(tmp_path, Recorder())  # released: runs


def test_stages_dropped_from_the_pipeline_become_obsolete(tmp_path):
    rec = Recorder()
    run(tmp_path, rec)
    ctx = StageContext(tmp_path, PipelineConfig(), tmp_path, ConsoleReporter(quiet=True))
    execute(toy_stages(rec)[:2], ctx)
    stages = read_manifest(tmp_path)["stages"]
    assert stages["c"]["status"] == "obsolete" and stages["d"]["status"] == "obsolete"
    assert stages["a"]["status"] == "done"


def test_files_written_atomically_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = tmp_path / "x.txt"
        with atomic_path(path) as tmp:
            tmp.write_text("x")
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


# --- data helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    return ensure_synthetic(tmp_path_factory.mktemp("tiny") / "release", participants=40, seed=7)


def test_release_hash_equals_the_data_hash_of_load_prism(tiny_release):
    from prism_stats.data import load_prism

    assert release_hash(tiny_release) == load_prism(tiny_release).data_hash


def test_release_hash_of_an_empty_folder_says_what_is_missing(tmp_path):
    from prism_stats.data import PrismDataNotFound

    with pytest.raises(PrismDataNotFound, match="survey.jsonl"):
        release_hash(tmp_path)


def test_ensure_synthetic_reuses_and_regenerates(tiny_release):
    marker = tiny_release / SYNTH_MARKER
    stamp = (tiny_release / "survey.jsonl").stat().st_mtime_ns
    assert ensure_synthetic(tiny_release, participants=40, seed=7) == tiny_release
    assert (tiny_release / "survey.jsonl").stat().st_mtime_ns == stamp  # not rewritten
    recorded = json.loads(marker.read_text())
    with open(tiny_release / "survey.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")  # the content changed: regenerate
    ensure_synthetic(tiny_release, participants=40, seed=7)
    assert release_hash(tiny_release) == recorded["data_hash"]
