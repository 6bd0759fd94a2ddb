"""Locating release files (recursive, .gz) and fetching from the Hugging Face Hub (mocked)."""

from __future__ import annotations

import gzip
import shutil
import sys
import types
from pathlib import Path

import pytest
from data_helpers import FIXTURE, copy_release

from prism_stats.data import PrismDataNotFound, find_release_files, load_prism
from prism_stats.data.io import download_from_hub, read_jsonl


def test_files_found_in_subfolders(tmp_path: Path):
    # The GitHub layout: data/*.jsonl and data/metadata/metadata.jsonl
    copy_release(tmp_path / "repo" / "data")
    found, notes = find_release_files(tmp_path / "repo")
    assert {r: str(p.relative_to(tmp_path / "repo")) for r, p in found.items()} == {
        "survey": "data/survey.jsonl",
        "conversations": "data/conversations.jsonl",
        "utterances": "data/utterances.jsonl",
        "metadata": "data/metadata/metadata.jsonl",
    }
    assert notes == []
    assert len(load_prism(tmp_path / "repo").ratings) == 65


def test_shallowest_then_plain_copy_wins(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    shutil.copytree(folder, folder / "old_copy")
    with gzip.open(folder / "survey.jsonl.gz", "wb") as f:
        f.write(b"")
    found, notes = find_release_files(folder)
    assert found["survey"] == folder / "survey.jsonl"
    assert found["utterances"] == folder / "utterances.jsonl"
    assert any(
        n.startswith("survey: using survey.jsonl (also found: survey.jsonl.gz, old_copy")
        for n in notes
    )
    report = load_prism(folder).report
    assert report is not None and any("survey.jsonl.gz" in n for n in report.notes)


def test_hidden_folders_are_skipped(tmp_path: Path):
    copy_release(tmp_path / "r" / ".cache")
    found, _ = find_release_files(tmp_path / "r")
    assert found == {}
    with pytest.raises(
        PrismDataNotFound, match="survey.jsonl, conversations.jsonl, utterances.jsonl"
    ):
        load_prism(tmp_path / "r")


def test_passing_a_file_instead_of_a_folder():
    with pytest.raises(PrismDataNotFound, match="is a file; pass the folder"):
        load_prism(FIXTURE / "survey.jsonl")


def test_read_jsonl_keeps_line_numbers_and_salvages_ids(tmp_path: Path):
    path = tmp_path / "utterances.jsonl"
    path.write_text(
        '{"utterance_id": "ut0"}\n\n{"utterance_id": "ut1", "conversation_id": "c9", "sco\n7\n'
    )
    raw = read_jsonl(path, "utterances")
    assert raw.lines == [1] and raw.n_blank == 1 and raw.n_lines == 3
    assert raw.bad_lines[0][0] == 3 and raw.bad_lines[0][2] == "ut1"
    assert raw.salvaged[0] == {"utterance_id": "ut1", "conversation_id": "c9"}
    assert raw.bad_lines[1] == (4, "expected a JSON object, got an integer", None)


def test_invalid_utf8_is_reported_with_its_line(tmp_path: Path):
    folder = copy_release(tmp_path / "r", metadata=False)
    data = (folder / "survey.jsonl").read_bytes().split(b"\n")
    data[1] = data[1].replace(b"Faith", b"F\xffith")
    (folder / "survey.jsonl").write_bytes(b"\n".join(data))
    from prism_stats.data import validate_release

    report = validate_release(folder)
    assert str(report.errors[0]).startswith("survey.jsonl:2: not valid UTF-8")


# --- the Hub (huggingface_hub is mocked: the test machine is offline) -------------------------


def fake_hub(monkeypatch, snapshot_download) -> types.ModuleType:
    module = types.ModuleType("huggingface_hub")
    module.snapshot_download = snapshot_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    return module


def test_hub_download_is_used(monkeypatch, tmp_path: Path):
    calls = []

    def snapshot_download(**kwargs):
        calls.append(kwargs)
        dest = tmp_path / "snapshot"
        if not dest.exists():
            copy_release(dest, metadata=False)
        return str(dest)

    fake_hub(monkeypatch, snapshot_download)
    data = load_prism(hub=True, cache_dir=tmp_path / "cache")
    assert len(data.ratings) == 65 and data.source["hub"] == "HannahRoseKirk/prism-alignment"
    (call,) = calls
    assert call["repo_id"] == "HannahRoseKirk/prism-alignment"
    assert call["repo_type"] == "dataset"
    assert call["cache_dir"] == str(tmp_path / "cache")
    patterns = call["allow_patterns"]
    assert "utterances.jsonl" in patterns and "*/utterances.jsonl" in patterns
    assert not any("metadata" in p for p in patterns)  # not downloaded unless asked for
    download_from_hub(metadata=True)
    assert any("metadata.jsonl" in p for p in calls[-1]["allow_patterns"])


def test_hub_unavailable_gives_instructions(monkeypatch):
    def snapshot_download(**kwargs):
        raise OSError("Cannot reach https://huggingface.co: network is unreachable")

    fake_hub(monkeypatch, snapshot_download)
    with pytest.raises(PrismDataNotFound) as info:
        load_prism(hub=True)
    msg = str(info.value)
    assert "Could not download 'HannahRoseKirk/prism-alignment' from the Hugging Face Hub" in msg
    assert "network is unreachable" in msg and "Are you offline?" in msg
    assert "https://huggingface.co/datasets/HannahRoseKirk/prism-alignment" in msg
    assert "https://github.com/HannahKirk/prism-alignment" in msg
    assert "survey.jsonl, conversations.jsonl, utterances.jsonl" in msg
    assert info.value.__cause__ is None  # no chained traceback


def test_hub_falls_back_to_the_local_cache(monkeypatch, tmp_path: Path):
    cached = copy_release(tmp_path / "cached", metadata=False)

    def snapshot_download(**kwargs):
        if not kwargs.get("local_files_only"):
            raise ConnectionError("offline")
        return str(cached)

    fake_hub(monkeypatch, snapshot_download)
    assert len(load_prism(hub=True).conversations) == 11


def test_hub_package_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(PrismDataNotFound, match="needs the `huggingface_hub` package") as info:
        load_prism(hub=True)
    assert "https://github.com/HannahKirk/prism-alignment" in str(info.value)
