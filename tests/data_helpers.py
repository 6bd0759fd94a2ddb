"""Helpers for the data-layer tests: copy the hand-written fixture release and break it.

``tests/fixtures/release_mini`` is a tiny release in the exact PRISM schema (5
participants, 11 conversations, 25 interactions, 65 utterances, 111 metadata rows;
see its README.md for the quirks it reproduces). Tests copy it to a temporary folder
and change single lines to produce each kind of bad input.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "fixtures" / "release_mini"
FILES = ("survey.jsonl", "conversations.jsonl", "utterances.jsonl")
METADATA = Path("metadata") / "metadata.jsonl"


def copy_release(dest: Path, *, metadata: bool = True) -> Path:
    """Copy the fixture release into *dest* (created) and return *dest*."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(FIXTURE / name, dest / name)
    if metadata:
        (dest / "metadata").mkdir(exist_ok=True)
        shutil.copy(FIXTURE / METADATA, dest / METADATA)
    return dest


def read_rows(folder: Path, name: str) -> list[dict[str, Any]]:
    """The records of one release file (plain JSON lines)."""
    return [
        json.loads(line)
        for line in (folder / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """Overwrite one release file with *rows*."""
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def edit_row(
    folder: Path, name: str, line: int, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Apply *change* (in place) to the record at 1-based *line* of *name*; return it."""
    rows = read_rows(folder, name)
    change(rows[line - 1])
    write_rows(folder, name, rows)
    return rows[line - 1]


def set_field(folder: Path, name: str, line: int, field: str, value: Any) -> dict[str, Any]:
    """Set ``field`` (dotted for nested keys) of the record at *line* to *value*."""

    def change(row: dict[str, Any]) -> None:
        *parents, leaf = field.split(".")
        target = row
        for p in parents:
            target = target[p]
        target[leaf] = value

    return edit_row(folder, name, line, change)


def replace_line(folder: Path, name: str, line: int, text: str) -> None:
    """Replace the raw text of 1-based *line* (to write malformed JSON)."""
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    lines[line - 1] = text
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def find_line(folder: Path, name: str, **match: Any) -> int:
    """1-based line of the first record whose fields equal *match*."""
    for i, row in enumerate(read_rows(folder, name), start=1):
        if all(row.get(k) == v for k, v in match.items()):
            return i
    raise LookupError(f"no record in {name} matches {match}")
