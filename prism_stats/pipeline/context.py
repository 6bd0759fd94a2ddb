"""What a stage is and sees: the :class:`Stage` record, its :class:`StageContext`, progress.

A :class:`Stage` declares one step of the pipeline as data (name, action, dependencies,
configuration sections, outputs); the :class:`StageContext` gives its action the output
folder, the configuration and lazily loaded shared objects; a :class:`Reporter` receives
the progress events (:class:`ConsoleReporter` prints them). The runner is
:mod:`prism_stats.pipeline.engine`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .data import release_hash

# The analysis layers (data, model, poststrat, welfare, comparators, report) are imported
# inside the functions that use them: `import prism_stats.pipeline` then takes ~0.3 s
# instead of ~5 s (the model layer loads PyMC), and a fully reused pipeline never loads them.


class PipelineError(RuntimeError):
    """The pipeline cannot run or a stage failed; the message says which and why."""


class StageError(PipelineError):
    """A stage failed for a reason the user can act on (bad data, impossible settings)."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types of the package that describe bad input rather than a bug.

    A stage raising one of these fails with its message (no traceback in the CLI).
    """
    from ..comparators import ComparatorError
    from ..data import PrismDataError
    from ..model import DesignError, RunError, SpecError
    from ..poststrat import PoststratError
    from ..weights import WeightingError
    from ..welfare import JuryInputError, WelfareResultError
    from .config import ConfigError

    return (StageError, ConfigError, PrismDataError, SpecError, DesignError, RunError,
            PoststratError, WeightingError, JuryInputError, WelfareResultError, ComparatorError)


# --- stages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline, declared as data.

    Attributes
    ----------
    name : str
        Unique name (``"fit"``, ``"poststratify_uk"``, ...).
    action : callable
        ``action(ctx) -> outputs``: does the work, writes files atomically under
        ``ctx.out`` and returns the paths it wrote (files or folders).
    depends : tuple of str
        Upstream stages; their fingerprints enter this one's.
    config : tuple of str
        Configuration sections the stage reads (hashed into the fingerprint).
    uses_data, uses_spec : bool
        Whether the data hash / the effective model spec enter the fingerprint.
    params : dict
        Stage parameters (e.g. ``{"country": "uk"}``), hashed too.
    outputs : tuple of str
        Outputs the stage must produce (relative to the output folder); checked after
        the stage ran, and removed before it reruns.
    versions : tuple of str
        Extra packages whose installed versions enter the fingerprint (the sampling
        stack for the fit).
    description : str
        One line shown in the progress output.
    """

    name: str
    action: Callable[[StageContext], Sequence[str | os.PathLike[str]]]
    depends: tuple[str, ...] = ()
    config: tuple[str, ...] = ()
    uses_data: bool = False
    uses_spec: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    description: str = ""


# --- progress ----------------------------------------------------------------------------------


class Reporter(Protocol):
    """Receives the pipeline's progress events (see :class:`ConsoleReporter`)."""

    def stage_start(self, index: int, total: int, stage: Stage) -> None: ...
    def stage_reused(self, index: int, total: int, stage: Stage, record: Mapping[str, Any]) -> None: ...
    def stage_done(self, index: int, total: int, stage: Stage, record: Mapping[str, Any]) -> None: ...
    def stage_failed(self, index: int, total: int, stage: Stage, message: str) -> None: ...
    def note(self, message: str) -> None: ...


class ConsoleReporter:
    """Prints one line per stage event (rich markup when rich is available).

    Parameters
    ----------
    quiet : bool
        Print nothing (errors are still raised).
    console : rich.console.Console, optional
        Where to print (default: a console on stdout).
    """

    def __init__(self, quiet: bool = False, console: Any = None) -> None:
        self.quiet = quiet
        if console is None and not quiet:
            try:
                from rich.console import Console

                console = Console(highlight=False)
            except ImportError:  # rich is a dependency; plain print is the fallback
                console = None
        self.console = console

    def _print(self, text: str, plain: str | None = None) -> None:
        if self.quiet:
            return
        if self.console is not None:
            self.console.print(text)
        else:
            print(plain if plain is not None else text, flush=True)

    def stage_start(self, index: int, total: int, stage: Stage) -> None:
        desc = f" - {stage.description}" if stage.description else ""
        self._print(f"[bold][{index}/{total}][/bold] {stage.name}{desc} ...",
                    f"[{index}/{total}] {stage.name}{desc} ...")

    def stage_reused(self, index: int, total: int, stage: Stage, record: Mapping[str, Any]) -> None:
        self._print(f"[dim][{index}/{total}] {stage.name}: unchanged, reused "
                    f"(finished {record.get('finished_at', '?')})[/dim]",
                    f"[{index}/{total}] {stage.name}: unchanged, reused")

    def stage_done(self, index: int, total: int, stage: Stage, record: Mapping[str, Any]) -> None:
        n = len(record.get("outputs", []))
        self._print(f"[green][{index}/{total}] {stage.name}: done[/green] in "
                    f"{record.get('duration_s', 0):.1f} s ({n} output{'s' if n != 1 else ''})",
                    f"[{index}/{total}] {stage.name}: done in {record.get('duration_s', 0):.1f} s")

    def stage_failed(self, index: int, total: int, stage: Stage, message: str) -> None:
        self._print(f"[red][{index}/{total}] {stage.name}: failed[/red] - {message}",
                    f"[{index}/{total}] {stage.name}: failed - {message}")

    def note(self, message: str) -> None:
        self._print(f"  {message}", f"  {message}")


# --- context ---------------------------------------------------------------------------------


class StageContext:
    """What a stage's action sees: the output folder, the configuration and lazily
    loaded shared objects (the data, the fitted run), so that a fully reused pipeline
    loads nothing.

    Attributes
    ----------
    out : Path
        The pipeline's output folder.
    config : PipelineConfig
    data_folder : Path
        The release folder.
    stage : Stage or None
        The stage being run.
    reporter : Reporter
    progress : bool
        Whether sampling shows its progress bar.
    """

    def __init__(self, out: Path, config: Any, data_folder: Path, reporter: Reporter,
                 progress: bool = True) -> None:
        self.out = out
        self.config = config
        self.data_folder = data_folder
        self.reporter = reporter
        self.progress = progress
        self.stage: Stage | None = None
        self.fingerprints: dict[str, str] = {}
        self._cache: dict[str, Any] = {}

    # well-known locations
    @property
    def run_dir(self) -> Path:
        """The run folder (``OUT/run``): posterior, diagnostics, MRP, welfare, compare."""
        return self.out / "run"

    @property
    def validate_dir(self) -> Path:
        return self.out / "validate"

    @property
    def supplement_dir(self) -> Path:
        return self.out / "supplement"

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per pipeline invocation, shared between stages."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def peek(self, key: str) -> Any:
        """A shared object if it is loaded already, else ``None`` (never loads)."""
        return self._cache.get(key)

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    def put(self, key: str, value: Any) -> None:
        self._cache[key] = value

    @property
    def data_hash(self) -> str:
        """SHA-256 of the release files (the same value as ``PrismData.data_hash``)."""
        return self.cached("data_hash", lambda: release_hash(self.data_folder))

    @property
    def data(self) -> Any:
        """The tidy data (:class:`~prism_stats.data.PrismData`), loaded on first use."""
        from ..data import load_prism

        return self.cached("data", lambda: load_prism(self.data_folder,
                                                      strict=self.config.sections["data"]["strict"]))

    @property
    def spec(self) -> Any:
        """The model spec of ``[model] spec``."""
        from ..model import load_spec

        return self.cached("spec", lambda: load_spec(self.config.sections["model"]["spec"]))

    @property
    def sampling(self) -> dict[str, Any]:
        """Effective sampler settings: the spec's ``[sampling]`` overridden by the config."""
        settings = dict(self.spec.sampling)
        settings.update({k: v for k, v in self.config.sections["sampling"].items() if v is not None})
        return settings

    @property
    def spec_fingerprint(self) -> dict[str, Any]:
        return {"name": self.spec.name, "model_hash": self.spec.model_hash(),
                "sampling": self.sampling}

    @property
    def run(self) -> Any:
        """The fitted :class:`~prism_stats.model.Run` (reopened from ``OUT/run``)."""
        from ..model import Run

        return self.cached("run", lambda: Run.load(self.run_dir))
