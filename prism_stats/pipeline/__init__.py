"""The end-to-end pipeline, resumable stage by stage: validate, fit, MRP, welfare, supplement.

The stages: validation, fit, diagnostics, MRP, welfare, comparators and the
supplementary materials.

>>> from prism_stats.pipeline import run_pipeline, run_demo
>>> result = run_pipeline("data/prism", "out")             # doctest: +SKIP
>>> print(result.summary())                                 # doctest: +SKIP
>>> run_demo("demo_output")                                 # doctest: +SKIP

The command line equivalents are ``prism-stats run --data DIR --out OUT [--config
run.toml]``, ``prism-stats demo --out OUT`` and ``prism-stats supplement RUN --out DIR``.
How a stage is reused or recomputed is described in :mod:`prism_stats.pipeline.engine`;
the stages and the output layout in :mod:`prism_stats.pipeline.stages`; the
configuration file in :mod:`prism_stats.pipeline.config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import MANIFEST_FILE, package_versions, read_manifest
from .config import DEFAULTS, ConfigError, PipelineConfig, load_config
from .context import ConsoleReporter, PipelineError, Reporter, Stage, StageContext, StageError
from .data import cached_fit, ensure_synthetic, release_hash
from .engine import PipelineResult, execute
from .notebook import NotebookSettings
from .stages import build_stages, stage_names

__all__ = [
    "DEFAULTS",
    "MANIFEST_FILE",
    "ConfigError",
    "ConsoleReporter",
    "NotebookSettings",
    "PipelineConfig",
    "PipelineError",
    "PipelineResult",
    "Reporter",
    "Stage",
    "StageContext",
    "StageError",
    "build_stages",
    "cached_fit",
    "ensure_synthetic",
    "execute",
    "load_config",
    "read_manifest",
    "release_hash",
    "run_demo",
    "run_pipeline",
    "stage_names",
]


def _as_config(config: PipelineConfig | str | Path | None) -> PipelineConfig:
    if isinstance(config, PipelineConfig):
        return config
    return load_config(config)


def _meta(ctx: StageContext, demo: bool) -> dict[str, Any]:
    spec = ctx.peek("spec")
    return {
        "prism_stats_version": __version__,
        "demo": demo,
        "config": ctx.config.to_dict(),
        "config_source": ctx.config.source,
        "data": {"folder": str(ctx.data_folder), "data_hash": ctx.peek("data_hash")},
        "spec": None if spec is None else {"name": spec.name, "source": spec.source,
                                           "model_hash": spec.model_hash(), "spec": spec.to_dict()},
        "versions": package_versions(),
    }


def run_pipeline(
    data: str | Path | None,
    out: str | Path,
    config: PipelineConfig | str | Path | None = None,
    *,
    force: Sequence[str] | bool = (),
    until: str | None = None,
    progress: bool = True,
    reporter: Reporter | None = None,
    wait: bool = False,
    demo: bool = False,
) -> PipelineResult:
    """Run the pipeline on a release folder, reusing every stage whose inputs are unchanged.

    Parameters
    ----------
    data : path or None
        The release folder; ``None`` takes ``[data] folder`` of the configuration.
    out : path
        The output folder (created; see :mod:`prism_stats.pipeline.stages` for its layout).
    config : PipelineConfig, path or None
        The configuration (a ``run.toml`` path, or ``None`` for the defaults).
    force : sequence of str or bool
        Stages to recompute although unchanged (with everything downstream); ``True``: all.
    until : str, optional
        Stop after this stage (e.g. ``"fit"``).
    progress : bool
        Show the sampler's progress bar.
    reporter : Reporter, optional
        Receives the per-stage progress events (default: lines on stdout).
    wait : bool
        Wait for another pipeline writing *out* instead of failing.
    demo : bool
        Generate the synthetic default into ``OUT/data`` first (see :func:`run_demo`).

    Returns
    -------
    PipelineResult

    Raises
    ------
    ConfigError, PipelineError, StageError
        Bad configuration, a locked output folder, or a failed stage (the manifest
        records the failure; rerunning continues from there).
    """
    cfg = _as_config(config)
    out = Path(out).expanduser().resolve()
    if demo:
        folder = out / "data"
    else:
        chosen = data if data is not None else cfg.sections["data"]["folder"]
        if chosen is None:
            raise PipelineError("no data folder: pass --data DIR or set [data] folder in the config")
        folder = Path(chosen).expanduser().resolve()
        if not folder.is_dir():
            raise PipelineError(f"data folder {str(folder)!r} does not exist "
                                "(`prism-stats synth --out DIR` writes a synthetic release)")
        # Data inside OUT is fine (the demo does it); OUT inside the data folder is not:
        # the release would then contain the pipeline's own files.
        if folder in out.parents or folder == out:
            raise PipelineError(f"the output folder {out} lies inside the data folder {folder}; "
                                "choose an --out outside it")
    ctx = StageContext(out, cfg, folder, reporter or ConsoleReporter(), progress=progress)
    stages = build_stages(cfg, demo=demo)
    return execute(stages, ctx, force=force, until=until, wait=wait,
                   meta=lambda c: _meta(c, demo))


def run_demo(
    out: str | Path,
    config: PipelineConfig | str | Path | None = None,
    *,
    participants: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> PipelineResult:
    """The pipeline on the embedded synthetic default (1,500 participants).

    The synthetic release is written to ``OUT/data`` (with its truth in
    ``OUT/data/truth``, which the supplement uses for a recovery table), then every
    stage runs with the configuration's settings (the defaults unless *config* says
    otherwise). Keyword arguments go to :func:`run_pipeline`.
    """
    cfg = _as_config(config).replace(demo={"participants": participants, "seed": seed})
    return run_pipeline(None, out, cfg, demo=True, **kwargs)
