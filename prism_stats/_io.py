"""Small I/O helpers shared by every stage: atomic writes, figures, hashing, run metadata."""

from __future__ import annotations

import contextlib
import contextvars
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

import numpy as np

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


#: The pending renames of the innermost :func:`write_set` (``None``: rename at once).
_WRITE_SET: contextvars.ContextVar[dict[Path, Path] | None] = contextvars.ContextVar(
    "prism_stats_write_set", default=None)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to *target*; rename it onto *target* on success.

    An interrupted writer therefore never leaves a half-written result under the
    final name: either the old file (or nothing) or the complete new one is there.
    Inside :func:`write_set` the rename waits for the end of the set.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    pending = _WRITE_SET.get()
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp creates the file with mode 0600; give the result the mode a plain
            # open() would have given it (0666 less the umask), so others can read it.
            os.chmod(tmp_path, 0o666 & ~_umask())
        if pending is None:
            os.replace(tmp_path, target)
        else:
            earlier = pending.pop(target.resolve(), None)
            if earlier is not None and earlier.exists():  # written twice in one set
                earlier.unlink()
            pending[target.resolve()] = tmp_path
    finally:
        if tmp_path.exists() and (pending is None or tmp_path not in pending.values()):
            tmp_path.unlink()


@contextlib.contextmanager
def write_set() -> Iterator[dict[Path, Path]]:
    """Write every file of a block as one set: all renamed into place at the end, or none.

    Inside the block, :func:`atomic_path` (and every writer built on it) writes to a
    temporary ``.<name>.*.part`` file and defers the rename; when the block ends
    normally the files are renamed in quick succession, and when it raises (an error,
    Ctrl-C, or SIGTERM turned into ``KeyboardInterrupt``) every temporary file is
    removed and no final name is touched. So the outputs of one command -- e.g.
    ``poststrat_uk.nc`` and ``.csv`` -- never come from different runs. Code inside the
    block must not read back what it wrote (it is not in place yet). Yields the
    pending ``{target: temporary}`` map.
    """
    outer = _WRITE_SET.get()
    pending: dict[Path, Path] = {}
    token = _WRITE_SET.set(pending)
    ok = False
    try:
        yield pending
        ok = True
    finally:
        _WRITE_SET.reset(token)
        if ok and outer is not None:
            outer.update(pending)  # nested: the outer set decides
        elif ok:
            for target, tmp in list(pending.items()):
                os.replace(tmp, target)
                del pending[target]
        else:
            for tmp in pending.values():
                tmp.unlink(missing_ok=True)


class FolderLockedError(RuntimeError):
    """Another prism-stats process is writing the folder."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], name: str = ".prism-stats.lock", *,
                wait: bool = False, what: str = "prism-stats command",
                remove: bool = False) -> Iterator[Path]:
    """Hold an exclusive advisory lock on *folder* (created) while the block runs.

    The lock is ``flock`` on ``folder/name``, released by the kernel even when the
    process is killed, so a stale lock file never blocks anyone; the file records the
    holder's pid. Without *wait* a second writer fails at once with
    :class:`FolderLockedError` naming the holder. With *remove* the lock file is
    deleted (still locked) when the block ends; only for writers that never *wait*,
    since a waiting process would then lock a file no longer in the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): run unlocked
        yield folder / name
        return
    path = folder / name
    with open(path, "a+", encoding="utf-8") as handle:
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderLockedError(f"another {what} ({holder}) is writing {folder}; wait for it "
                                    "to finish or write somewhere else") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield path
        finally:
            if remove:
                path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_partial_files(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Delete temporary ``.<name>.*.part`` files left by an interrupted writer.

    Call it only while holding the folder's lock (another writer's files are not stray).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in (folder.rglob(".*.part") if recursive else folder.glob(".*.part")):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


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


def new_figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` of a fixed size, outside pyplot's global state.

    No backend is chosen or forced (importing the package never touches the matplotlib
    backend), figures are not kept alive by pyplot, and a notebook shows a returned
    figure once. Inside a Jupyter kernel the PNG display of ``Figure`` objects is
    switched on (what ``%matplotlib inline`` does for pyplot figures), so the figure
    renders inline as a cell's value even when pyplot was never used.
    """
    from matplotlib.figure import Figure  # local: matplotlib only once a figure is drawn

    _enable_inline_display(Figure)
    return Figure(figsize=(width, height), layout="constrained")


def _enable_inline_display(figure_type: type) -> None:
    import sys

    if "ipykernel" not in sys.modules:  # not in a Jupyter kernel: nothing to do
        return
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(figure_type)  # already set (inline backend or an earlier figure)
    except KeyError:
        png.for_type(figure_type, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


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
    if getattr(fig.canvas, "manager", None) is not None:
        # a pyplot-managed figure (made by the caller): release it; our own figures
        # (new_figure) are not in pyplot's registry and need nothing
        import matplotlib.pyplot as plt

        plt.close(fig)
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


# --- figure checks (used by the supplement and every analysis that writes figures) ---

def _finite(values: Any) -> bool:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return False
    return arr.size > 0 and bool(np.isfinite(arr).any())


def axes_data(ax: Any) -> bool:
    """Whether an axes draws any finite data (lines, collections, patches or images)."""
    for line in ax.get_lines():
        x, y = line.get_data()
        if _finite(x) and _finite(y) and np.size(x) > 0:
            return True
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if len(offsets) and _finite(offsets):
            return True
        paths = coll.get_paths()
        if any(len(p.vertices) and _finite(p.vertices) for p in paths):
            return True
        arr = coll.get_array()
        if arr is not None and _finite(arr):
            return True
    for img in ax.get_images():
        if _finite(img.get_array()):
            return True
    return any(
        getattr(p, "get_height", None) is not None and np.isfinite(p.get_height()) and p.get_height() != 0
        for p in ax.patches
    )


def figure_data_problems(fig: Any) -> list[str]:
    """Axes of *fig* that show no finite data (colour bars excluded); empty when fine."""
    problems = []
    for i, ax in enumerate(fig.axes):
        if ax.get_label() == "<colorbar>" or not ax.get_visible():
            continue
        if not axes_data(ax):
            problems.append(f"axes {i} ({ax.get_title() or 'untitled'}) shows no data")
    if not fig.axes:
        problems.append("the figure has no axes")
    return problems
