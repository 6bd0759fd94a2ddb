"""The pipeline commands' user-facing behaviour: clean errors (no tracebacks) for bad
options, configuration and data, and the demo's first stages."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from prism_stats.cli import app
from prism_stats.pipeline import ensure_synthetic, read_manifest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return ensure_synthetic(tmp_path_factory.mktemp("cli") / "release", participants=40, seed=3)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_clean(res, code: int, needle: str) -> None:
    assert res.exit_code == code, res.output
    assert needle in res.output
    assert "Traceback" not in res.output


def test_run_without_data_says_how_to_give_it(tmp_path):
    assert_clean(invoke("run", "--out", tmp_path / "o"), 2, "no data folder")


def test_run_with_a_missing_data_folder(tmp_path):
    assert_clean(invoke("run", "--data", tmp_path / "nope", "--out", tmp_path / "o"), 2, "does not exist")


def test_run_with_a_bad_config_names_the_key(tmp_path, tiny):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[sampling]\ndraws = -1\n")
    res = invoke("run", "--data", tiny, "--config", cfg, "--out", tmp_path / "o")
    assert_clean(res, 2, "sampling.draws must be a positive integer")
    assert str(cfg) in res.output


def test_unknown_spec_and_stage_names(tmp_path, tiny):
    assert_clean(invoke("run", "--data", tiny, "--out", tmp_path / "o", "--spec", "nosuch"), 2,
                 "no model spec named 'nosuch'")
    assert_clean(invoke("run", "--data", tiny, "--out", tmp_path / "o", "--until", "nosuch"), 2,
                 "unknown stage 'nosuch'")
    assert_clean(invoke("run", "--data", tiny, "--out", tmp_path / "o", "--countries", "uk,fr"), 2,
                 "unknown country 'fr'")


def test_output_inside_the_data_folder_is_refused(tiny):
    assert_clean(invoke("run", "--data", tiny, "--out", tiny / "out"), 2, "lies inside the data folder")


def test_invalid_data_fail_the_validate_stage_cleanly(tmp_path, tiny):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    lines = (broken / "survey.jsonl").read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # a truncated line
    (broken / "survey.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    res = invoke("run", "--data", broken, "--out", out, "--until", "validate")
    assert_clean(res, 1, "stage 'validate' failed")
    assert "survey.jsonl:3" in res.output
    rec = read_manifest(out)["stages"]["validate"]
    assert rec["status"] == "failed" and "survey.jsonl:3" in rec["error"]
    assert json.loads((out / "validate" / "validation.json").read_text())["errors"]


def test_lenient_config_excludes_and_counts(tmp_path, tiny):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    lines = (broken / "survey.jsonl").read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]
    (broken / "survey.jsonl").write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "run.toml"
    cfg.write_text("[data]\nstrict = false\n")
    out = tmp_path / "o"
    res = invoke("run", "--data", broken, "--config", cfg, "--out", out, "--until", "validate")
    assert res.exit_code == 0, res.output
    exclusions = json.loads((out / "validate" / "exclusions.json").read_text())
    assert json.dumps(exclusions).count("survey.jsonl") >= 1


def test_demo_writes_the_synthetic_release_then_validates(tmp_path):
    out = tmp_path / "demo"
    res = invoke("demo", "--out", out, "--participants", 30, "--until", "validate", "--quiet")
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert m["demo"] is True
    assert [m["stages"][s]["status"] for s in ("synthesize", "validate")] == ["done", "done"]
    assert (out / "data" / "truth" / "population_means.csv").is_file()
    assert "Manifest:" in res.output and "synthesize" in res.output
    again = invoke("demo", "--out", out, "--participants", 30, "--until", "validate")
    assert again.exit_code == 0 and "synthesize: unchanged, reused" in again.output


def test_supplement_of_a_folder_that_is_not_a_run(tmp_path):
    assert_clean(invoke("supplement", tmp_path, "--out", tmp_path / "s"), 2,
                 "neither a pipeline output folder nor a run folder")
    assert_clean(invoke("supplement", tmp_path, "--out", tmp_path / "s", "--formats", "gif"), 2,
                 "--formats")
