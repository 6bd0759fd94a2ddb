"""CLI commands of the pipeline: ``run``, ``demo`` and ``supplement``.

Exit codes: 0 success; 1 a stage failed (the message says which and why; rerunning the
same command continues from that stage); 2 bad options, configuration or data folder;
3 the convergence gate failed with ``[diagnostics] strict = true``; 130 interrupted
(rerun to continue).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import abort

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Pipeline configuration (TOML; see configs/run.toml).",
                 show_default=False),
]
SpecOpt = Annotated[str | None, typer.Option("--spec", help="Model spec name or TOML path.", show_default=False)]
ChainsOpt = Annotated[int | None, typer.Option("--chains", min=1, help="Chains.", show_default=False)]
DrawsOpt = Annotated[int | None, typer.Option("--draws", min=1, help="Posterior draws per chain.", show_default=False)]
TuneOpt = Annotated[int | None, typer.Option("--tune", min=1, help="Tuning steps per chain.", show_default=False)]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, help="Sampling seed.", show_default=False)]
CountriesOpt = Annotated[
    str | None, typer.Option("--countries", help="Countries, comma list (uk,us).", show_default=False)]
ReplicatesOpt = Annotated[
    int | None, typer.Option("--replicates", min=1, help="Jury replicates per scheme.", show_default=False)]
ForceOpt = Annotated[
    list[str] | None,
    typer.Option("--force", help="Recompute STAGE (and what follows it) although unchanged; "
                                 "repeatable; 'all' recomputes everything.", show_default=False),
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Stop after this stage (e.g. fit).",
                                              show_default=False)]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show the sampler's progress bar.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait for another run on the same --out to finish.")]


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to *app*."""
    app.command("run")(run_cmd)
    app.command("demo")(demo_cmd)
    app.command("supplement")(supplement_cmd)


def _config(path: Path | None, *, spec: str | None, chains: int | None, draws: int | None,
            tune: int | None, seed: int | None, countries: str | None, replicates: int | None) -> Any:
    from ..pipeline import ConfigError, load_config

    try:
        cfg = load_config(path)
        country_list = None
        if countries is not None:
            country_list = [c.strip().lower() for c in countries.split(",") if c.strip()]
            if not country_list:
                abort("--countries: no country given")
        return cfg.replace(country_list, model={"spec": spec},
                           sampling={"chains": chains, "draws": draws, "tune": tune, "seed": seed},
                           welfare={"replicates": replicates})
    except ConfigError as exc:
        abort(str(exc))


def _force(values: list[str] | None) -> list[str] | bool:
    if not values:
        return []
    items = [v.strip() for chunk in values for v in chunk.split(",") if v.strip()]
    return True if "all" in items else items


def _execute(call: Any) -> Any:
    """Run a pipeline call, turning expected failures into clean exits."""
    from ..model import SpecError
    from ..pipeline import ConfigError, PipelineError
    from ..pipeline.stages import GateFailure

    try:
        return call()
    except GateFailure as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None
    except (ConfigError, SpecError) as exc:
        abort(str(exc))
    except PipelineError as exc:
        from ..pipeline import StageError

        abort(str(exc), code=1 if isinstance(exc, StageError) else 2)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: finished stages are kept; rerun the same command to continue",
                   err=True)
        raise typer.Exit(130) from None


def _summary(result: Any) -> None:
    """The final summary: every stage, what it produced and where."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"prism-stats pipeline: {result.out}", title_justify="left")
    table.add_column("stage")
    table.add_column("this run")
    table.add_column("time", justify="right")
    table.add_column("outputs")
    stages = result.manifest.get("stages", {})
    for name in result.manifest.get("stage_order", list(stages)):
        rec = stages.get(name) or {}
        how = ("computed" if name in result.ran else "reused" if name in result.reused
               else "not run")
        # Shallow paths first, so that e.g. supplement/index.html is shown before the tables.
        outs = sorted(rec.get("outputs", []), key=lambda p: p.count("/")) if how != "not run" else []
        shown = outs if len(outs) <= 4 else outs[:3] + [f"... and {len(outs) - 3} more"]
        duration = f"{rec.get('duration_s', 0):.1f} s" if how != "not run" else ""
        table.add_row(name, how, duration, "\n".join(shown))
    console.print(table)
    index = result.out / "supplement" / "index.html"
    if index.is_file():
        console.print(f"Supplement: [bold]{index}[/bold] (Markdown: {index.with_suffix('.md')})")
    console.print(f"Manifest:   {result.out / 'manifest.json'}")


def run_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.", show_default=False)],
    data: Annotated[Path | None, typer.Option("--data", help="PRISM release folder (or [data] folder in the config).",
                                              show_default=False)] = None,
    config: ConfigOpt = None,
    spec: SpecOpt = None,
    chains: ChainsOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    seed: SeedOpt = None,
    countries: CountriesOpt = None,
    replicates: ReplicatesOpt = None,
    force: ForceOpt = None,
    until: UntilOpt = None,
    progress: ProgressOpt = True,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Run the whole analysis: validate, fit, diagnostics, MRP (UK, US), welfare, compare, supplement.

    Stages whose inputs (data hash, spec, configuration, seeds, package version) are
    unchanged since the last run into OUT are reused; an interrupted run continues where
    it stopped. Flags override the configuration file.
    """
    from ..pipeline import ConsoleReporter, run_pipeline

    cfg = _config(config, spec=spec, chains=chains, draws=draws, tune=tune, seed=seed,
                  countries=countries, replicates=replicates)
    result = _execute(lambda: run_pipeline(data, out, cfg, force=_force(force), until=until,
                                           progress=progress and not quiet,
                                           reporter=ConsoleReporter(quiet=quiet), wait=wait))
    _summary(result)


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo_output"),
    config: ConfigOpt = None,
    participants: Annotated[int | None, typer.Option(
        "--participants", "-n", min=10, help="Synthetic participants (default 1,500).", show_default=False)] = None,
    data_seed: Annotated[int | None, typer.Option(
        "--data-seed", min=0, help="Seed of the synthetic data.", show_default=False)] = None,
    spec: SpecOpt = None,
    chains: ChainsOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    seed: SeedOpt = None,
    countries: CountriesOpt = None,
    replicates: ReplicatesOpt = None,
    force: ForceOpt = None,
    until: UntilOpt = None,
    progress: ProgressOpt = True,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """The whole analysis on the embedded synthetic PRISM (1,500 participants, known truth).

    Writes the synthetic release to OUT/data, then runs every stage of `prism-stats run`;
    the supplement (OUT/supplement/index.html) also shows how well the truth is recovered.
    """
    from ..pipeline import ConsoleReporter, run_demo

    cfg = _config(config, spec=spec, chains=chains, draws=draws, tune=tune, seed=seed,
                  countries=countries, replicates=replicates)
    result = _execute(lambda: run_demo(out, cfg, participants=participants, seed=data_seed,
                                       force=_force(force), until=until,
                                       progress=progress and not quiet,
                                       reporter=ConsoleReporter(quiet=quiet), wait=wait))
    _summary(result)


def supplement_cmd(
    run: Annotated[Path, typer.Argument(help="Pipeline output folder or run folder.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the supplement.", show_default=False)],
    dpi: Annotated[int, typer.Option("--dpi", min=50, help="Resolution of the PNG figures.")] = 150,
    formats: Annotated[str, typer.Option("--formats", help="Figure formats, comma list (png,pdf,svg).")] = "png,pdf",
    welfare_rules: Annotated[str | None, typer.Option(
        "--welfare-rules", help="Rules whose welfare distributions are drawn, comma list (default: all).",
        show_default=False)] = None,
) -> None:
    """Supplementary materials: tables (CSV, LaTeX, Markdown), figures (PNG, PDF), index and manifest."""
    from ..report import SupplementError, build_supplement

    fmts = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in fmts if f not in ("png", "pdf", "svg")]
    if bad or not fmts:
        abort(f"--formats: use png, pdf and/or svg, not {formats!r}")
    rules = None
    if welfare_rules is not None:
        from ..welfare import RULES

        rules = [r.strip() for r in welfare_rules.split(",") if r.strip()]
        if not rules or any(r not in RULES for r in rules):
            abort(f"--welfare-rules: use {', '.join(RULES)}, not {welfare_rules!r}")
    try:
        result = build_supplement(run, out, options={"dpi": dpi, "formats": fmts, "welfare_rules": rules})
    except SupplementError as exc:
        abort(str(exc))
    typer.echo(f"{len(result.tables)} tables and {len(result.figures)} figures written to {result.folder}")
    for s in result.skipped:
        typer.echo(f"  not produced: {s}")
    typer.echo(f"index: {result.index_html}\nmanifest: {result.manifest}")
