"""`prism-stats data validate|summary`: exit codes, messages, JSON output (no tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import FIXTURE, copy_release, read_rows, set_field, write_rows
from typer.testing import CliRunner

from prism_stats.cli import app

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, ["data", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_validate_valid_release():
    result = run("validate", str(FIXTURE))
    assert result.exit_code == 0
    assert "VALID" in result.output and "utterances.jsonl" in result.output


def test_validate_invalid_release(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    set_field(folder, "utterances.jsonl", 17, "score", 101)
    result = run("validate", str(folder))
    assert result.exit_code == 1
    assert "utterances.jsonl:17: field 'score': 101 is outside 1..100" in result.output
    assert "INVALID" in result.output


def test_validate_lenient_keeps_going(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    set_field(folder, "utterances.jsonl", 17, "score", 101)
    result = run("validate", str(folder), "--lenient")
    assert result.exit_code == 0
    assert "Excluded rows: 2" in result.output  # the utterance and its metadata row
    assert "out of range (score)" in result.output and "parent utterance excluded" in result.output
    assert "utterances.jsonl 64" in result.output


def test_validate_lenient_with_nothing_usable(tmp_path: Path):
    folder = copy_release(tmp_path / "r", metadata=False)
    rows = read_rows(folder, "utterances.jsonl")
    for r in rows:
        r["score"] = 0
    write_rows(folder, "utterances.jsonl", rows)
    result = run("validate", str(folder), "--lenient")
    assert result.exit_code == 1
    assert "no usable ratings remain" in result.output


def test_validate_json(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    set_field(folder, "survey.jsonl", 2, "age", "Under 18")
    result = run("validate", str(folder), "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False and out["n_errors"] == 1
    assert out["errors"][0]["line"] == 2 and out["errors"][0]["field"] == "age"
    assert out["errors"][0]["value"] == "Under 18"
    assert (
        out["exclusions"]["files"]["conversations.jsonl"]["reasons"]["parent participant excluded"][
            "count"
        ]
        == 4
    )


def test_validate_missing_folder_is_a_clean_error(tmp_path: Path):
    result = run("validate", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert (
        "does not exist" in result.output
        and "huggingface.co/datasets/HannahRoseKirk" in result.output
    )


def test_validate_missing_file(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    (folder / "conversations.jsonl").unlink()
    result = run("validate", str(folder))
    assert result.exit_code == 2
    assert (
        "conversations.jsonl" in result.output
        and "github.com/HannahKirk/prism-alignment" in result.output
    )


def test_summary_text_and_json():
    result = run("summary", str(FIXTURE))
    assert result.exit_code == 0
    assert "Participants" in result.output and "Conversations per participant" in result.output
    result = run("summary", str(FIXTURE), "--json", "--compare")
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["overview"]["utterances"] == 65 and len(out["data_hash"]) == 64
    assert out["published_comparison"]["n_match"] < out["published_comparison"]["n"]


def test_summary_invalid_release(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    set_field(folder, "utterances.jsonl", 5, "score", 0)
    result = run("summary", str(folder))
    assert result.exit_code == 1
    assert "utterances.jsonl:5: field 'score': 0 is outside 1..100" in result.output
    assert "--lenient" in result.output
    result = run("summary", str(folder), "--lenient")
    assert result.exit_code == 0 and "Excluded rows" in result.output


@pytest.mark.parametrize("command", ["validate", "summary"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: prism-stats data {command}" in result.output and "--json" in result.output
