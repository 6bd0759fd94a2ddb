"""Find, fetch and read the PRISM release files.

A release is a folder holding ``survey.jsonl``, ``conversations.jsonl``,
``utterances.jsonl`` and optionally ``metadata.jsonl`` (each plain or gzip-compressed
``.gz``). The files may sit at the folder's root or in sub-folders (the GitHub
repository keeps them under ``data/`` and the metadata under ``data/metadata/``), so
they are searched for by name. The Hugging Face Hub copy is fetched with
``huggingface_hub`` when it is installed and the machine is online.

Reading is deliberately simple and fast: the whole file is read once (for the
SHA-256 of its content), split on newlines and parsed line by line with
:func:`json.loads`, so every record keeps its line number for error messages.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema


class PrismDataError(Exception):
    """Base class of the data layer's errors (bad input, never a bug)."""


class PrismDataNotFound(PrismDataError, FileNotFoundError):
    """The release files are not where they were looked for (or could not be fetched)."""


# --- instructions ---------------------------------------------------------------------------


def how_to_obtain(missing: Iterable[str] = (), folder: str | os.PathLike[str] | None = None) -> str:
    """A message that says which files are missing and how to get the release.

    Parameters
    ----------
    missing
        File names that were not found.
    folder
        The folder that was searched.
    """
    lines = []
    missing = list(missing)
    if missing:
        where = f" in {str(folder)!r}" if folder is not None else ""
        lines.append(f"PRISM release file(s) not found{where}: {', '.join(missing)}.")
    lines += [
        "The data layer expects a folder holding these files (plain or .gz, at the folder's",
        (
            f"root or in sub-folders): {', '.join(schema.REQUIRED_FILES)}"
            f" and optionally {schema.METADATA.filename}."
        ),
        "Obtain them from:",
        f"  - the Hugging Face Hub: {schema.HUB_URL} (DOI {schema.DOI});",
        (
            "    e.g. `huggingface-cli download HannahRoseKirk/prism-alignment --repo-type dataset"
            " --local-dir prism`,"
        ),
        "    or load_prism(hub=True) (needs `pip install huggingface_hub` and a network);",
        f"  - the authors' GitHub repository: {schema.GITHUB_URL} (folder data/).",
        "Then pass the folder: load_prism('prism') or `prism-stats data validate --data prism`.",
        "Without the real data, `prism-stats synth` writes a synthetic release in the same schema.",
    ]
    return "\n".join(lines)


# --- finding files --------------------------------------------------------------------------


def _candidates(name: str) -> tuple[str, str]:
    return (name, name + ".gz")


def find_release_files(
    folder: str | os.PathLike[str],
    *,
    roles: Iterable[str] | None = None,
    max_depth: int = 4,
) -> tuple[dict[str, Path], list[str]]:
    """Locate the release files inside *folder* (recursively, by name).

    Parameters
    ----------
    folder
        The release folder.
    roles
        Which files to look for (``"survey"``, ``"conversations"``, ``"utterances"``,
        ``"metadata"``); default all.
    max_depth
        How many folder levels below *folder* are searched (hidden folders are skipped).

    Returns
    -------
    found, notes
        ``{role: path}`` for every file found, and notes on choices made (for example a
        plain file preferred over its ``.gz`` twin). When a name occurs more than once the
        shallowest copy wins; at equal depth the plain file wins over ``.gz``.

    Raises
    ------
    PrismDataNotFound
        If *folder* does not exist or is not a folder.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise PrismDataNotFound(f"Release folder {str(root)!r} does not exist.\n" + how_to_obtain())
    if not root.is_dir():
        raise PrismDataNotFound(
            f"{str(root)!r} is a file; pass the folder that holds the release files.\n"
            + how_to_obtain()
        )
    wanted = [schema.FILE_BY_ROLE[r] for r in (roles or schema.FILE_BY_ROLE)]
    names = {n: spec.role for spec in wanted for n in _candidates(spec.filename)}
    hits: dict[str, list[tuple[int, int, Path]]] = {}
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).parts) - base_depth
        dirnames[:] = (
            sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
        )
        for fn in filenames:
            role = names.get(fn)
            if role is not None:
                hits.setdefault(role, []).append((depth, fn.endswith(".gz"), Path(dirpath) / fn))
    found: dict[str, Path] = {}
    notes: list[str] = []
    for role, options in hits.items():
        options.sort()
        found[role] = options[0][2]
        if len(options) > 1:
            others = ", ".join(str(p.relative_to(root)) for _, _, p in options[1:])
            notes.append(f"{role}: using {found[role].relative_to(root)} (also found: {others})")
    return found, notes


# --- the Hugging Face Hub -------------------------------------------------------------------


def download_from_hub(
    repo_id: str = schema.HUB_REPO_ID,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    metadata: bool = False,
) -> Path:
    """Fetch the release from the Hugging Face Hub and return the local snapshot folder.

    Uses ``huggingface_hub.snapshot_download`` (imported lazily; install it with
    ``pip install huggingface_hub`` or the ``hub`` extra). Only the release files are
    downloaded (the metadata file, ~100k rows, only when *metadata* is true). When the
    Hub cannot be reached, a copy already in the local cache is used.

    Raises
    ------
    PrismDataNotFound
        When ``huggingface_hub`` is missing, or the Hub is unreachable and nothing is
        cached; the message says how to obtain the files by hand.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise PrismDataNotFound(
            "Downloading from the Hugging Face Hub needs the `huggingface_hub` package "
            "(pip install huggingface_hub, or prism-stats[hub]).\n" + how_to_obtain()
        ) from None
    names = [schema.SURVEY.filename, schema.CONVERSATIONS.filename, schema.UTTERANCES.filename]
    if metadata:
        names.append(schema.METADATA.filename)
    # The Hub layout has moved files between the root and sub-folders over time, so
    # match the names anywhere in the repository.
    patterns = [p for n in names for p in (n, n + ".gz", f"*/{n}", f"*/{n}.gz")]
    kwargs: dict[str, Any] = {
        "repo_id": repo_id,
        "repo_type": "dataset",
        "allow_patterns": patterns,
    }
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    try:
        return Path(snapshot_download(**kwargs))
    except Exception as online_error:  # noqa: BLE001 - any failure becomes one clear message
        try:  # offline: a copy already in the local Hub cache will do
            return Path(snapshot_download(**kwargs, local_files_only=True))
        except Exception:  # noqa: BLE001, S110 - reported below with the online error
            pass
        reason = f"{type(online_error).__name__}: {online_error}".strip()
        first_line = reason.splitlines()[0] if reason else type(online_error).__name__
        raise PrismDataNotFound(
            f"Could not download {repo_id!r} from the Hugging Face Hub ({first_line}); "
            "no cached copy either. Are you offline?\n" + how_to_obtain()
        ) from None


# --- reading --------------------------------------------------------------------------------


@dataclass
class RawFile:
    """The parsed lines of one release file.

    Attributes
    ----------
    role, path
        Which file (``"utterances"``) and where it was read from.
    records
        The parsed JSON objects, in file order.
    lines
        The 1-based line number of each record.
    bad_lines
        ``(line, message, salvaged_id)`` for each line that is not a JSON object;
        *salvaged_id* is the record's id recovered from the raw text when possible, so
        that dependants of a broken line can be attributed to it.
    salvaged
        For each bad line, every ``"<name>_id": "<value>"`` pair found in its raw text
        (e.g. the ``conversation_id`` of a truncated utterance line).
    sha256
        SHA-256 of the file's (decompressed) content.
    n_blank
        Number of blank lines skipped.
    """

    role: str
    path: Path
    records: list[dict[str, Any]]
    lines: list[int]
    bad_lines: list[tuple[int, str, str | None]] = field(default_factory=list)
    sha256: str = ""
    n_blank: int = 0
    salvaged: list[dict[str, str]] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return schema.FILE_BY_ROLE[self.role].filename

    @property
    def n_lines(self) -> int:
        """Non-blank lines (records plus unparseable lines)."""
        return len(self.records) + len(self.bad_lines)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise PrismDataError(
            f"{path.name}: cannot read the file ({type(e).__name__}: {e})"
        ) from None


def read_jsonl(path: str | os.PathLike[str], role: str) -> RawFile:
    """Parse one JSON-lines release file, keeping line numbers and unparseable lines.

    Blank lines are skipped (and counted). A line that is not valid JSON, or is valid
    JSON but not an object, is recorded in ``bad_lines`` rather than raising, so that a
    validator can report every problem at once.
    """
    path = Path(path)
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    bad: list[tuple[int, str, str | None]] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        bad.append((line, f"not valid UTF-8 (byte {e.start})", None))
        text = data.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")  # a byte-order mark written by some editors
    id_field = schema.FILE_BY_ROLE[role].id_field
    bad_line_numbers = {b[0] for b in bad}
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    salvaged: list[dict[str, str]] = [{} for _ in bad]
    n_blank = 0
    loads = json.loads
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw or raw.isspace():
            n_blank += 1
            continue
        try:
            obj = loads(raw)
        except ValueError as e:
            msg = getattr(e, "msg", str(e))
            col = getattr(e, "colno", None)
            where = f" at column {col}" if col else ""
            ids = dict(_ID_PATTERN.findall(raw))
            bad.append(
                (number, f"invalid JSON ({msg}{where})", ids.get(id_field) if id_field else None)
            )
            salvaged.append(ids)
            continue
        if type(obj) is not dict:
            bad.append((number, f"expected a JSON object, got {_json_type(obj)}", None))
            salvaged.append({})
            continue
        if number in bad_line_numbers:  # undecodable bytes: keep it out of the records
            continue
        records.append(obj)
        lines.append(number)
    # The final newline of a file produces one empty "line" that is not a blank line.
    if text.endswith("\n") or not text:
        n_blank -= 1
    order = sorted(range(len(bad)), key=lambda i: bad[i][0])
    return RawFile(
        role,
        path,
        records,
        lines,
        [bad[i] for i in order],
        digest,
        max(n_blank, 0),
        [salvaged[i] for i in order],
    )


#: ``"something_id": "value"`` in the raw text of a line that is not valid JSON.
_ID_PATTERN = re.compile(r'"(\w+_id)"\s*:\s*"([^"\\]*)"')


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
