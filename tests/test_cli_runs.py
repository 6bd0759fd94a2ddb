"""The command line on real (tiny) fits: a single chain, the convergence gate and
``--allow-unconverged``, damaged or mismatched run folders, moved or changed data, locked
folders, output sets, and SIGTERM during ``run``.

Two fits are shared by the whole module (PyMC's sampler, whose compiled model is cached
between processes): a one-chain ``fit`` and a ``run`` pipeline of 2 x 40 draws. Both are
far too short to converge, which is what the gate tests need.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from prism_stats.cli import app

pytestmark = pytest.mark.mcmc

runner = CliRunner()
PARTICIPANTS, DATA_SEED = 150, 20240422  # big enough for raking both countries
TINY_CONFIG = """\
countries = ["uk", "us"]
[sampling]
sampler = "pymc"
chains = 2
draws = 40
tune = 40
[diagnostics]
ppc_draws = 20
crosscheck = false
[welfare]
replicates = 10
draws = 10
rules = ["mean"]
sizes = [10]
[compare]
se = "none"
[rankings]
enabled = false
[supplement]
dpi = 40
formats = ["png"]
welfare_rules = ["mean"]
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def assert_error(res, code: int, needle: str) -> None:
    assert res.exit_code == code, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], res.output
    assert "Traceback" not in res.output


def no_temporaries(folder: Path) -> bool:
    """No stray temporary file and no command lock left (the pipeline's own lock file stays)."""
    return not [p for p in folder.rglob(".*") if p.suffix == ".part" or p.name == ".prism-stats.lock"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from prism_stats.synth import synthesize

    folder = tmp_path_factory.mktemp("cli_runs") / "release"
    synthesize(folder, PARTICIPANTS, DATA_SEED)
    return folder


@pytest.fixture(scope="module")
def one_chain(release, tmp_path_factory):
    """``fit --chains 1 --strict``: the fit is saved, the gate cannot judge, exit 3."""
    out = tmp_path_factory.mktemp("one_chain") / "run"
    res = invoke("fit", "--data", release, "--out", out, "--chains", "1", "--draws", "40", "--tune", "40",
                 "--sampler", "pymc", "--seed", "1", "--no-progress", "--strict")
    return out, res


@pytest.fixture(scope="module")
def gated(release, tmp_path_factory):
    """``run`` stopped by the gate, then continued with --allow-unconverged (and the record)."""
    base = tmp_path_factory.mktemp("gated")
    config = base / "run.toml"
    config.write_text(TINY_CONFIG)
    out = base / "out"
    args = ["run", "--data", release, "--out", out, "--config", config, "--no-progress"]
    stopped = invoke(*args)
    after_stop = sorted(p.name for p in (out / "run").iterdir())
    manifest_after_stop = json.loads((out / "manifest.json").read_text())
    allowed = invoke(*args, "--allow-unconverged")
    return {"out": out, "config": config, "args": args, "stopped": stopped, "after_stop": after_stop,
            "manifest_after_stop": manifest_after_stop, "allowed": allowed}


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


# --- a single chain --------------------------------------------------------------------------------


def test_fit_with_one_chain_saves_the_run_and_the_gate_cannot_judge(one_chain):
    run, res = one_chain
    assert res.exit_code == 3, res.output  # --strict: the gate failed
    assert "max R-hat          n/a (needs 2 chains)" in res.output
    assert "convergence cannot be judged" in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in run.iterdir()) == ["diagnostics.json", "posterior.nc", "run.json"]
    diag = json.loads((run / "diagnostics.json").read_text())
    assert diag["passed"] is False and diag["max_rhat"] is None and diag["n_chains"] == 1
    res = invoke("diagnose", run, "--strict")
    assert res.exit_code == 3 and "convergence cannot be judged" in res.output
    assert invoke("diagnose", run).exit_code == 0  # without --strict the verdict is only printed


def test_fit_refuses_to_replace_a_run_without_force(one_chain, release):
    run, _ = one_chain
    res = invoke("fit", "--data", release, "--out", run, "--chains", "1", "--draws", "5", "--sampler", "pymc")
    assert_error(res, 2, "already holds a run")


# --- results of an unconverged run are marked ---------------------------------------------------


def test_commands_on_a_one_chain_run_mark_their_results(one_chain, tmp_path):
    run = copy_run(one_chain[0], tmp_path / "run")
    (run / ".poststrat_uk.nc.x1y2.part").write_bytes(b"left by a killed writer")  # removed on the next write
    res = invoke("poststratify", run, "--country", "UK,usa", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "convergence gate" in res.output
    for c in ("uk", "us"):
        table = pd.read_csv(run / f"poststrat_{c}.csv")
        assert (table["converged"] == False).all()  # noqa: E712 - read back as a bool column
    res = invoke("welfare", run, "--country", "GB", "--replicates", "5", "--draws", "5", "--rule", "mean",
                 "--sizes", "10", "--pools", "representative,male", "--no-progress")
    assert res.exit_code == 0, res.output
    assert (pd.read_csv(run / "welfare_uk.csv")["converged"] == False).all()  # noqa: E712
    assert "converged" in pd.read_csv(run / "welfare_expected_gaps_uk.csv").columns
    res = invoke("compare", run, "--country", "uk", "--no-progress")
    assert res.exit_code == 0, res.output
    assert (pd.read_csv(run / "compare_uk.csv")["mrp_converged"] == False).all()  # noqa: E712
    assert "unconverged fit" in (run / "compare_uk.md").read_text()
    assert no_temporaries(run)


# --- the convergence gate in `run` -----------------------------------------------------------------


def test_run_stops_before_mrp_when_the_gate_fails(gated):
    res = gated["stopped"]
    assert res.exit_code == 3, res.output
    text = " ".join(res.output.split())
    assert "the convergence gate failed" in text and "Weakest parameters:" in text
    assert "--allow-unconverged" in text and "--draws" in text
    assert "Traceback" not in res.output
    manifest = gated["manifest_after_stop"]
    assert manifest["stages"]["gate"]["status"] == "failed"
    assert manifest["invocations"][-1]["status"] == "failed"
    assert "poststratify_uk" not in manifest["stages"] and "welfare_uk" not in manifest["stages"]
    assert not [n for n in gated["after_stop"] if n.startswith(("poststrat_", "welfare_", "compare_"))]
    assert "gate.json" in gated["after_stop"]  # the verdict is kept for the user


def test_allow_unconverged_goes_on_and_marks_every_result(gated):
    res, out = gated["allowed"], gated["out"]
    assert res.exit_code == 0, res.output
    run = out / "run"
    gate = json.loads((run / "gate.json").read_text())
    assert gate["passed"] is False and gate["allow_unconverged"] is True and gate["worst"]
    for c in ("uk", "us"):
        assert (pd.read_csv(run / f"poststrat_{c}.csv")["converged"] == False).all()  # noqa: E712
        assert (pd.read_csv(run / f"welfare_{c}.csv")["converged"] == False).all()  # noqa: E712
        assert (pd.read_csv(run / f"compare_{c}.csv")["mrp_converged"] == False).all()  # noqa: E712
        assert json.loads((run / f"compare_{c}_weights.json").read_text())["mrp_converged"] is False
    supplement = out / "supplement"
    manifest = json.loads((supplement / "manifest.json").read_text())
    assert manifest["converged"] is False
    captions = {t["name"]: t["caption"] for t in manifest["tables"] + manifest["figures"]}
    assert captions["mrp_llm"].startswith("From a fit that failed its convergence gate")
    assert captions["llm_forest"].startswith("From a fit that failed its convergence gate")
    assert not captions["descriptives_participants"].startswith("From a fit")  # not from the fit
    assert "WARNING: the model fit failed its convergence gate" in (supplement / "index.html").read_text()
    assert "WARNING: the model fit failed its convergence gate" in (supplement / "index.md").read_text()
    assert no_temporaries(out / "run")


def test_the_gate_is_judged_again_at_every_run_and_the_config_key_works(gated, tmp_path):
    again = invoke(*gated["args"])  # without the flag: stops again, later results stay as they were
    assert again.exit_code == 3, again.output
    config = tmp_path / "allow.toml"
    config.write_text(TINY_CONFIG + "[run]\nallow_unconverged = true\n")
    args = [a if a != gated["config"] else config for a in gated["args"]]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    manifest = json.loads((gated["out"] / "manifest.json").read_text())
    assert manifest["stages"]["gate"]["status"] == "done"
    assert manifest["invocations"][-1]["ran"] == ["gate"]  # nothing else recomputed


# --- damaged and mismatched run folders --------------------------------------------------------------


def _flip_bytes(run: Path) -> None:
    raw = bytearray((run / "posterior.nc").read_bytes())
    for i in range(4096, 4096 + 64):
        raw[i] ^= 0xFF
    (run / "posterior.nc").write_bytes(bytes(raw))


def _edit_meta(run: Path, change) -> None:
    meta = json.loads((run / "run.json").read_text())
    change(meta)
    (run / "run.json").write_text(json.dumps(meta))


DAMAGE = {
    "flipped bytes": (_flip_bytes, "does not belong to this run"),
    "empty posterior": (lambda r: (r / "posterior.nc").write_bytes(b""), "does not belong to this run"),
    "empty posterior, no hash": (lambda r: (_edit_meta(r, lambda m: m.pop("posterior_sha256")),
                                            (r / "posterior.nc").write_bytes(b"")),
                                 "posterior.nc is damaged or not a prism-stats posterior"),
    "run.json not JSON": (lambda r: (r / "run.json").write_text("{oops"), "run.json is damaged: not valid JSON"),
    "run.json without spec": (lambda r: _edit_meta(r, lambda m: m.pop("spec")), "has no 'spec' entry"),
    "run.json missing": (lambda r: (r / "run.json").unlink(), "not a complete run folder"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["diagnose", "poststratify", "welfare", "ppc", "loo", "crosscheck"])
def test_a_damaged_run_folder_is_named_as_such(one_chain, tmp_path, damage, command):
    run = copy_run(one_chain[0], tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    make, needle = DAMAGE[damage]
    make(run)
    res = invoke(command, run)
    assert_error(res, 1, needle)
    assert sorted(p.name for p in run.iterdir()) == [n for n in before if (run / n).exists()]  # nothing added


def test_compare_names_a_damaged_run_json(one_chain, tmp_path):
    run = copy_run(one_chain[0], tmp_path / "run")
    (run / "run.json").write_text("{oops")
    assert_error(invoke("compare", run, "--country", "uk"), 1, "not valid JSON")


def test_a_posterior_copied_from_another_run_is_detected(one_chain, gated, tmp_path):
    run = copy_run(one_chain[0], tmp_path / "run")
    shutil.copy(gated["out"] / "run" / "posterior.nc", run / "posterior.nc")
    for command in ("diagnose", "poststratify", "welfare"):
        assert_error(invoke(command, run), 1, "does not belong to this run")


# --- moved or changed data -----------------------------------------------------------------------------


def test_moved_data_are_named_and_can_be_pointed_to(one_chain, release, tmp_path):
    run = copy_run(one_chain[0], tmp_path / "run")
    moved = tmp_path / "moved"
    shutil.copytree(release, moved)
    _edit_meta(run, lambda m: m["data"].update(folder=str(tmp_path / "gone")))
    res = invoke("poststratify", run, "--country", "uk", "--no-progress")  # raw means are optional here
    assert res.exit_code == 0 and "does not exist (moved or deleted?)" in res.output, res.output
    assert pd.read_csv(run / "poststrat_uk.csv")["raw_mean"].isna().all()
    assert_error(invoke("compare", run, "--country", "uk"), 1, "does not exist (moved or deleted?)")
    assert_error(invoke("crosscheck", run), 1, "does not exist (moved or deleted?)")
    res = invoke("poststratify", run, "--country", "uk", "--data", moved, "--no-progress")
    assert res.exit_code == 0, res.output
    assert pd.read_csv(run / "poststrat_uk.csv")["raw_mean"].notna().any()
    assert_error(invoke("poststratify", run, "--data", tmp_path / "nowhere"), 2, "does not exist")


def test_changed_data_are_refused(one_chain, release, tmp_path):
    run = copy_run(one_chain[0], tmp_path / "run")
    changed = tmp_path / "changed"
    shutil.copytree(release, changed)
    lines = (changed / "utterances.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["score"] = 1 if row["score"] != 1 else 2
    lines[0] = json.dumps(row)
    (changed / "utterances.jsonl").write_text("\n".join(lines) + "\n")
    assert invoke("poststratify", run, "--country", "uk", "--no-progress").exit_code == 0  # the right data
    _edit_meta(run, lambda m: m["data"].update(folder=str(changed)))
    before = sorted(p.name for p in run.iterdir())
    for command in (["poststratify", run, "--country", "us"], ["compare", run, "--country", "uk"],
                    ["ppc", run, "--draws", "5"], ["crosscheck", run]):
        assert_error(invoke(*command), 1, "holds different data from the ones the run was fitted to")
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written


# --- outputs: location, lock, set ------------------------------------------------------------------------


def test_an_unwritable_run_folder_is_refused(one_chain, tmp_path, monkeypatch):
    import prism_stats.cli._common as common

    run = copy_run(one_chain[0], tmp_path / "run")
    monkeypatch.setattr(common.os, "access", lambda path, mode: not mode & common.os.W_OK)
    for command in (["poststratify", run], ["welfare", run], ["compare", run, "--country", "uk"]):
        assert_error(invoke(*command), 2, "is not writable")


def test_two_writers_of_one_run_folder(one_chain, tmp_path):
    from prism_stats._io import folder_lock

    run = copy_run(one_chain[0], tmp_path / "run")
    with folder_lock(run, remove=True):
        for command in (["poststratify", run], ["welfare", run, "--replicates", "5", "--draws", "5"]):
            assert_error(invoke(*command, "--no-progress"), 1, "is writing")
    assert not list(run.glob("poststrat_*")) and not list(run.glob("welfare_*"))


def test_poststratify_writes_its_files_as_one_set(one_chain, tmp_path, monkeypatch):
    """Interrupted after the .nc was written: neither file appears, and no .part is left."""
    import prism_stats.poststrat as ps

    run = copy_run(one_chain[0], tmp_path / "run")
    (run / "poststrat_uk.csv").write_text("country\nold\n")  # an earlier result stays as it was

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(ps.PoststratResult, "summary", interrupted)  # called after the .nc is staged
    res = invoke("poststratify", run, "--country", "uk", "--no-progress")
    assert res.exit_code == 130 and "nothing half-written" in res.output
    assert not (run / "poststrat_uk.nc").exists() and (run / "poststrat_uk.csv").read_text() == "country\nold\n"
    assert no_temporaries(run)


# --- SIGTERM during `run` -----------------------------------------------------------------------------------


def test_sigterm_during_the_fit_is_recorded_as_an_interruption(release, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TINY_CONFIG.replace("draws = 40\ntune = 40", "draws = 200000\ntune = 40"))
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", "from prism_stats.cli import main; main()", "run", "--data",
                             str(release), "--out", str(out), "--config", str(config), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                stage = json.loads((out / "manifest.json").read_text())["stages"].get("fit", {})
            except (OSError, ValueError):
                stage = {}
            if stage.get("status") == "running":
                time.sleep(3)  # compiling or sampling
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["fit"]["status"] == "interrupted"
    assert manifest["invocations"][-1]["status"] == "interrupted"
    assert not (out / "run" / "run.json").exists() and no_temporaries(out)
