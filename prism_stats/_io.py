"""Small I/O helpers shared by every stage: atomic writes, figures, hashing, run metadata."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

#: The pipeline's record of its output folder (written by :mod:`prism_stats.pipeline`,
#: read by the report): ``OUT/manifest.json``.
MANIFEST_FILE = "manifest.json"
MANIFEST_KIND = "prism-stats pipeline"
#: Bump when the meaning of the manifest fields changes.
MANIFEST_SCHEMA = 1

#: Packages whose versions are recorded with every result.
TRACKED_PACKAGES: tuple[str, ...] = (
    "prism-stats",
    "pymc",
    "pytensor",
    "arviz",
    "nutpie",
    "numba",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "statsmodels",
    "h5netcdf",
)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to *target*; rename it onto *target* on success.

    An interrupted writer therefore never leaves a half-written result under the
    final name: either the old file (or nothing) or the complete new one is there.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp creates the file with mode 0600; give the result the mode a plain
            # open() would have given it (0666 less the umask), so others can read it.
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (read from /proc when possible: setting it to query it is racy)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Write *text* to *target* atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | os.PathLike[str], obj: Any) -> Path:
    """Write *obj* as indented JSON atomically (numpy scalars are converted)."""
    return write_text_atomic(target, json.dumps(obj, indent=2, default=_json_default) + "\n")


#: Resolution (dots per inch) of every raster figure the package writes.
FIGURE_DPI: int = 150


def save_figure(fig: Any, folder: str | os.PathLike[str], stem: str,
                formats: Sequence[str] = ("png", "pdf"), dpi: int = FIGURE_DPI) -> list[Path]:
    """Write *fig* as ``<stem>.<fmt>`` for each format, atomically, at its own size.

    The size is the figure's (no tight bounding box, so every PNG of a figure type has
    the same pixel size, ``size x dpi``). The figure is closed afterwards.
    """
    folder = Path(folder)
    paths = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
        paths.append(path)
    # local: pyplot is imported only once a figure exists (importing it picks a backend)
    import matplotlib.pyplot as plt

    plt.close(fig)  # releases pyplot-managed figures; a no-op for plain Figure objects
    return paths


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's content, decompressed for ``.gz`` files, read in blocks."""
    h = hashlib.sha256()
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of the canonical JSON form of *obj* (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The pipeline manifest of *out*, or ``None`` when there is none (or it is unreadable)."""
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        return None
    return manifest


def package_versions() -> dict[str, str]:
    """Installed versions of the tracked packages plus Python and the platform."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now_iso() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")
