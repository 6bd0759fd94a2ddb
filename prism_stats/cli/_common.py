"""Helpers shared by the CLI modules: clean error exits and lazy loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).


def abort(message: str, code: int = 2) -> NoReturn:
    """Print *message* to stderr and exit with *code* (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_data_or_abort(folder: str | Path | None, *, strict: bool = True, required: bool = True) -> Any:
    """Load a PRISM release folder, turning data errors into clean exits.

    With ``required=False`` a missing/invalid folder gives ``None`` instead.
    """
    from ..data import load_prism

    try:
        return load_prism(folder, strict=strict)
    except Exception as exc:  # the data layer's errors carry file:line:field messages
        if not required:
            return None
        abort(str(exc))


def load_run_or_abort(folder: str | Path) -> Any:
    """Open a run folder, or exit with a clear message."""
    from ..model import Run
    from ..model.fit import RunError

    try:
        return Run.load(folder)
    except (RunError, FileNotFoundError, OSError) as exc:
        abort(str(exc))
