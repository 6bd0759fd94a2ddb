"""Helpers shared by the commands: clean exits, loading inputs, safe outputs, progress.

Every failure a user can cause ends in one ``error: ...`` line on stderr and the
documented exit code (:data:`prism_stats.cli._options.EXIT_CODES_EPILOG`), never a
traceback: inputs are checked before any work (:func:`load_data`, :func:`load_run`,
:func:`check_output`), outputs are written as a set under a folder lock
(:func:`output_folder`), SIGTERM is handled like Ctrl-C (:func:`install_signal_handlers`),
and anything unforeseen is reported in one line by :class:`SafeGroup`
(``PRISM_STATS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from .._io import FolderLockedError, folder_lock, remove_partial_files, write_set
from ._options import EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

DEBUG_ENV = "PRISM_STATS_DEBUG"


def abort(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with *code* (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    """A bad option value or an unusable path given on the command line (exit 2)."""
    abort(message, EXIT_USAGE)


# --- the safety net -----------------------------------------------------------------------------


class SafeGroup(TyperGroup):
    """The command group: turns interrupts and unforeseen errors into one-line exits.

    Ctrl-C and SIGTERM exit 130 with a note (writers have removed their temporary files
    on the way out); an ``OSError`` (disk full, permission denied) or any other
    unexpected exception prints one ``error:`` line and exits 1.
    """

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Run the command line; usage errors print one ``error:`` line (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except UsageError as exc:
            message = exc.format_message().replace(": Value error, ", ": ")
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(EXIT_RUNTIME)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            typer.echo("\ninterrupted: nothing half-written was kept", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            name = getattr(exc, "filename", None)
            if isinstance(exc, OSError) and name:
                abort(f"{name}: {exc.strerror or exc}")
            first = str(exc).splitlines()[0] if str(exc) else ""
            abort(f"{type(exc).__name__}: {first} (unexpected; set {DEBUG_ENV}=1 for the traceback)")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    """Handle SIGTERM like Ctrl-C (``KeyboardInterrupt``), so clean-up code runs.

    Only possible in the main thread; elsewhere (e.g. a test runner's thread) nothing changes.
    """
    with contextlib.suppress(ValueError, AttributeError):
        signal.signal(signal.SIGTERM, _raise_interrupt)


# --- inputs ------------------------------------------------------------------------------------


def print_exclusions(data: Any) -> None:
    """Print the exclusion report of leniently loaded data (nothing when nothing was excluded)."""
    exclusions = getattr(data, "exclusions", None)
    if exclusions is not None and exclusions.total():
        typer.echo(str(exclusions), err=True)


def load_data(folder: str | Path | None, *, strict: bool = True, option: str = "--data") -> Any:
    """Load a PRISM release; exit 2 when it is missing, 1 when it is invalid.

    With ``strict=False`` invalid rows are excluded and the exclusion report is printed;
    no usable rating left is an error.
    """
    from ..data import PrismDataError, PrismDataNotFound, load_prism

    if folder is None:
        usage_error(f"{option}: no release folder given")
    try:
        data = load_prism(folder, strict=strict)
    except PrismDataNotFound as exc:
        usage_error(f"{option}: {exc}")
    except PrismDataError as exc:  # file:line:field messages from the data layer
        abort(f"{exc}" + ("\n(use --lenient to exclude invalid rows)" if strict else ""))
    if not strict:
        print_exclusions(data)
        if len(data.ratings) == 0:
            abort(f"{folder}: no usable ratings remain after the exclusions")
    return data


def load_run(folder: str | Path) -> Any:
    """Open a run folder; exit 2 when it is not one, 1 when it is damaged or inconsistent."""
    from ..model.fit import META_FILE, POSTERIOR_FILE, Run, RunError

    folder = Path(folder)
    if not folder.is_dir():
        usage_error(f"run folder {str(folder)!r} does not exist"
                    + (" (it is a file)" if folder.exists() else ""))
    if not (folder / META_FILE).is_file() and not (folder / POSTERIOR_FILE).is_file():
        usage_error(f"{folder} is not a run folder (no {META_FILE} or {POSTERIOR_FILE}); "
                    "fit one with `prism-stats fit`")
    try:
        return Run.load(folder)
    except RunError as exc:
        abort(str(exc))


def load_run_meta(folder: str | Path) -> dict[str, Any]:
    """A run folder's ``run.json`` only (for commands that do not need the posterior).

    Exit 2 when *folder* is not a run folder, 1 when ``run.json`` is damaged.
    """
    import json

    from ..model.fit import META_FILE

    folder = Path(folder)
    if not folder.is_dir():
        usage_error(f"run folder {str(folder)!r} does not exist" + (" (it is a file)" if folder.exists() else ""))
    path = folder / META_FILE
    if not path.is_file():
        usage_error(f"{path} not found: is {folder} a run folder? (fit one with `prism-stats fit`)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        abort(f"{path} is damaged: not valid JSON ({exc})")
    if not isinstance(meta, dict) or not isinstance(meta.get("data"), dict):
        abort(f"{path} has no 'data' entry: not written by `prism-stats fit`, or damaged")
    return meta


def run_data(run: Any, override: str | Path | None = None, *, required: bool = True) -> Any:
    """The data a run was fitted on, checked against the data hash the run recorded.

    *run* is a :class:`~prism_stats.model.Run` or its ``run.json`` dict. *override*
    (``--data``) points to the release when it has moved. Returns ``None`` (after a
    note) when the data are not needed (``required=False``) and cannot be found.
    """
    from ..data import PrismDataError, load_prism

    meta = run if isinstance(run, dict) else run.meta
    recorded = (meta.get("data") or {}).get("data_hash")
    recorded_folder = (meta.get("data") or {}).get("folder")
    folder = Path(override) if override is not None else (Path(recorded_folder) if recorded_folder else None)
    where = f"--data {folder}" if override is not None else f"the run's data folder {folder}"
    problem = None
    if folder is None:
        problem = "the run does not record its data folder"
    elif not folder.is_dir():
        problem = f"{where} does not exist (moved or deleted?)"
    if problem is None:
        try:
            data = load_prism(folder, strict=False)
        except PrismDataError as exc:
            problem = f"{where} cannot be read: {str(exc).splitlines()[0]}"
        else:
            if recorded and data.data_hash != recorded:
                abort(f"{where} holds different data from the ones the run was fitted to "
                      f"(hash {data.data_hash[:12]}, run: {recorded[:12]}); the release changed "
                      "since the fit, or --data points to another one")
            return data
    if override is not None:
        usage_error(problem)
    if required:
        abort(f"{problem}; pass --data with the release the run was fitted to")
    typer.echo(f"note: {problem}; pass --data to use it", err=True)
    return None


# --- outputs -----------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(path: str | Path, option: str = "--out", *, kind: str = "folder") -> Path:
    """Check that *path* can be written (before any work); exit 2 naming the option if not.

    *kind* ``"folder"``: *path* must be a folder or not exist yet; ``"file"``: a file (or
    nothing) whose folder can be created. Either way the nearest existing ancestor
    must be a writable folder.
    """
    path = Path(path).expanduser()
    if path.exists():
        if kind == "folder" and not path.is_dir():
            usage_error(f"{option} {path}: exists and is a file, not a folder")
        if kind == "file" and path.is_dir():
            usage_error(f"{option} {path}: is a folder; give a file name")
    base = path if path.is_dir() else _nearest_existing(path.parent if kind == "file" else path)
    if not base.is_dir():
        usage_error(f"{option} {path}: {base} is a file, so no folder can be created there")
    if not os.access(base, os.W_OK | os.X_OK):
        usage_error(f"{option} {path}: {base} is not writable")
    return path


@contextlib.contextmanager
def output_folder(folder: str | Path, option: str = "--out", *, atomic: bool = True) -> Iterator[Path]:
    """Write into *folder* safely: checked, locked, as one set, cleaned up on failure.

    The folder is created when needed, locked against a second prism-stats writer
    (which fails at once, exit 1), stray temporary files of an interrupted writer are
    removed, and with *atomic* every file written inside the block is renamed into
    place only when the block succeeds. On failure (or Ctrl-C / SIGTERM) the temporary
    files are removed and a folder this call created is removed again when nothing
    else is in it.
    """
    folder = check_output(folder, option)
    created = not folder.exists()
    ok = False
    try:
        with folder_lock(folder, remove=True):
            remove_partial_files(folder, recursive=False)
            with write_set() if atomic else contextlib.nullcontext():
                yield folder
            ok = True
    except FolderLockedError as exc:
        abort(str(exc))
    finally:
        if not ok and created:
            _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    """Remove *folder* when it holds nothing but empty folders and the lock file."""
    if not folder.is_dir():
        return
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != ".prism-stats.lock"]
    if not files:
        shutil.rmtree(folder, ignore_errors=True)


# --- progress ----------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_steps(total: int, *, enabled: bool = True, label: str = "") -> Iterator[Any]:
    """A rich progress bar on stderr with elapsed time: ``step(description)`` per step.

    Yields ``advance(description=None)``: call it with the next step's description
    before the step starts; the bar advances when the next call (or the block's end)
    comes. Disabled (a no-op) with ``enabled=False`` or when stderr is not a terminal.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
    from rich.progress import TimeElapsedColumn

    console = Console(stderr=True, highlight=False)
    if not enabled or not console.is_terminal:
        yield lambda description=None: None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        started = [False]

        def advance(description: str | None = None) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            if description is not None:
                bar.update(task, description=description)

        yield advance
        bar.update(task, completed=total)


def callback_progress(total: int, *, enabled: bool = True, label: str = "") -> Any:
    """A rich progress bar driven by a ``callback(done)`` (done = units finished so far)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, highlight=False)
    if not enabled or not console.is_terminal:
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar() -> Iterator[Any]:
        with Progress(TextColumn(label, markup=False), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as p:
            task = p.add_task(label, total=total)
            yield lambda done: p.update(task, completed=done)

    return bar()
