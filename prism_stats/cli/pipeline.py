"""CLI commands of the pipeline: ``run``, ``demo`` and ``supplement``.

Exit codes: 0 success; 1 a stage failed (the message says which and why; rerunning the
same command continues from that stage) or another run holds the output folder; 2 bad
options, configuration or data folder; 3 the convergence gate failed (the pipeline stops
before MRP and welfare unless ``--allow-unconverged``); 130 interrupted by Ctrl-C or
SIGTERM (the manifest records the stage as interrupted; rerun to continue).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import abort, check_output, usage_error
from ._options import (
    EXIT_CODES_EPILOG,
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    EXIT_USAGE,
    COUNTRY_METAVAR,
    DpiOpt,
    FormatsOpt,
    RULES,
    SamplerOpt,
    choice_list,
    flatten,
    merge_alias,
    parse_countries,
)

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Pipeline configuration (TOML; see configs/run.toml).",
                 show_default=False),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", metavar="SPEC", help="Model spec: a name in models/ or a TOML path.",
                                              show_default=False)]
SpecOpt = Annotated[str | None, typer.Option("--spec", hidden=True, help="Old name of --model.")]
ChainsOpt = Annotated[int | None, typer.Option("--chains", min=1, help="Chains.", show_default=False)]
DrawsOpt = Annotated[int | None, typer.Option("--draws", min=1, help="Posterior draws per chain.", show_default=False)]
TuneOpt = Annotated[int | None, typer.Option("--tune", min=1, help="Tuning steps per chain.", show_default=False)]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, help="Sampling seed.", show_default=False)]
# No short flag: -c is --config here.
CountryList = Annotated[list[str] | None, typer.Option(
    "--country", parser=parse_countries, metavar=COUNTRY_METAVAR,
    help="Countries, comma-separated or repeated: uk, us (UK, GB, GBR, USA accepted).", show_default=False)]
CountriesOpt = Annotated[str | None, typer.Option("--countries", hidden=True, help="Old name of --country.")]
ReplicatesOpt = Annotated[
    int | None, typer.Option("--replicates", min=1, help="Jury replicates per scheme.", show_default=False)]
ForceOpt = Annotated[
    list[str] | None,
    typer.Option("--force", metavar="STAGE", help="Recompute STAGE (and what follows it) although unchanged; "
                                 "repeatable; 'all' recomputes everything.", show_default=False),
]
UntilOpt = Annotated[str | None, typer.Option("--until", metavar="STAGE", help="Stop after this stage (e.g. fit).",
                                              show_default=False)]
AllowOpt = Annotated[bool | None, typer.Option(
    "--allow-unconverged/--stop-unconverged",
    help="Go on after a failed convergence gate (every later result is marked as from an unconverged "
    "fit) or stop before MRP and welfare (exit 3; the default, or [run] allow_unconverged).",
    show_default=False)]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait for another run on the same --out to finish.")]


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to *app*."""
    app.command("run", epilog=EXIT_CODES_EPILOG)(run_cmd)
    app.command("demo", epilog=EXIT_CODES_EPILOG)(demo_cmd)
    app.command("supplement", epilog=EXIT_CODES_EPILOG)(supplement_cmd)


def _config(path: Path | None, *, model: str | None, spec: str | None, chains: int | None,
            draws: int | None, tune: int | None, seed: int | None, sampler: Any,
            country: list | None, countries: str | None, replicates: int | None,
            allow_unconverged: bool | None) -> Any:
    """The configuration file (or the defaults) with the command-line flags applied."""
    from ..pipeline import ConfigError, load_config

    try:
        old = None if countries is None else parse_countries(countries)
    except typer.BadParameter as exc:
        usage_error(f"--countries: {exc}")
    country_list = merge_alias(flatten(country), old, "--country", "--countries")
    model = merge_alias(model, spec, "--model", "--spec")
    if path is not None and not Path(path).is_file():
        usage_error(f"--config {path}: " + ("is a folder" if Path(path).exists() else "does not exist"))
    try:
        cfg = load_config(path).replace(
            country_list, model={"spec": model},
            sampling={"chains": chains, "draws": draws, "tune": tune, "seed": seed,
                      "sampler": None if sampler is None else sampler.value},
            welfare={"replicates": replicates}, run={"allow_unconverged": allow_unconverged})
    except ConfigError as exc:
        usage_error(str(exc))
    from .model import load_spec_or_exit

    load_spec_or_exit(cfg.sections["model"]["spec"])  # an unknown spec fails before any stage runs
    return cfg


def _force(values: list[str] | None) -> list[str] | bool:
    if not values:
        return []
    items = [v.strip() for chunk in values for v in chunk.split(",") if v.strip()]
    return True if "all" in items else items


def _execute(call: Any) -> Any:
    """Run a pipeline call, turning expected failures into clean exits."""
    from .._io import FolderLockedError
    from ..model import SpecError
    from ..pipeline import ConfigError, PipelineError, StageError
    from ..pipeline.engine import PipelineLocked
    from ..pipeline.stages import GateFailure

    try:
        return call()
    except GateFailure as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_GATE) from None
    except (ConfigError, SpecError) as exc:
        usage_error(str(exc))
    except StageError as exc:
        abort(str(exc), EXIT_RUNTIME)
    except (FolderLockedError, PipelineLocked) as exc:  # another run holds the folder
        abort(str(exc), EXIT_RUNTIME)
    except PipelineError as exc:  # no data folder, OUT inside the data, unknown stage names
        usage_error(str(exc))
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: finished stages are kept and the manifest records the interrupted "
                   "stage; rerun the same command to continue", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _summary(result: Any) -> None:
    """The final summary: every stage, what it produced and where."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    from rich.markup import escape

    table = Table(title=escape(f"prism-stats pipeline: {result.out}"), title_justify="left")
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
        table.add_row(escape(name), how, duration, escape("\n".join(shown)))
    console.print(table)
    index = result.out / "supplement" / "index.html"
    if index.is_file():
        console.print(f"Supplement: {index} (Markdown: {index.with_suffix('.md')})", markup=False)
    console.print(f"Manifest:   {result.out / 'manifest.json'}", markup=False)


def run_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.", show_default=False)],
    data: Annotated[Path | None, typer.Option("--data", help="PRISM release folder (or [data] folder in the config).",
                                              show_default=False)] = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    spec: SpecOpt = None,
    chains: ChainsOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    seed: SeedOpt = None,
    sampler: SamplerOpt = None,
    country: CountryList = None,
    countries: CountriesOpt = None,
    replicates: ReplicatesOpt = None,
    allow_unconverged: AllowOpt = None,
    force: ForceOpt = None,
    until: UntilOpt = None,
    progress: ProgressOpt = True,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Run the whole analysis: validate, fit, diagnostics, gate, MRP (UK, US), welfare, compare, supplement.

    Stages whose inputs (data hash, spec, configuration, seeds, package version) are
    unchanged since the last run into OUT are reused; an interrupted run continues where
    it stopped. Flags override the configuration file. When the fit fails its
    convergence gate the run stops before MRP and welfare (exit 3) and names the worst
    parameters; --allow-unconverged goes on and marks every later result.
    """
    from ..pipeline import ConsoleReporter, run_pipeline

    cfg = _config(config, model=model, spec=spec, chains=chains, draws=draws, tune=tune, seed=seed,
                  sampler=sampler, country=country, countries=countries, replicates=replicates,
                  allow_unconverged=allow_unconverged)
    check_output(out)
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
    model: ModelOpt = None,
    spec: SpecOpt = None,
    chains: ChainsOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    seed: SeedOpt = None,
    sampler: SamplerOpt = None,
    country: CountryList = None,
    countries: CountriesOpt = None,
    replicates: ReplicatesOpt = None,
    allow_unconverged: AllowOpt = None,
    force: ForceOpt = None,
    until: UntilOpt = None,
    progress: ProgressOpt = True,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """The whole analysis on the embedded synthetic PRISM (1,500 participants, known truth).

    Writes the synthetic release to OUT/data, then runs every stage of `prism-stats run`;
    the supplement (OUT/supplement/index.html) also shows how well the truth is recovered.
    Unlike `run`, the demo goes on after a failed convergence gate unless
    --stop-unconverged is given (a showcase should be complete; every affected result is
    marked as from an unconverged fit).
    """
    from ..pipeline import ConsoleReporter, run_demo

    cfg = _config(config, model=model, spec=spec, chains=chains, draws=draws, tune=tune, seed=seed,
                  sampler=sampler, country=country, countries=countries, replicates=replicates,
                  allow_unconverged=True if allow_unconverged is None else allow_unconverged)
    check_output(out)
    result = _execute(lambda: run_demo(out, cfg, participants=participants, seed=data_seed,
                                       force=_force(force), until=until,
                                       progress=progress and not quiet,
                                       reporter=ConsoleReporter(quiet=quiet), wait=wait))
    _summary(result)


def supplement_cmd(
    run: Annotated[Path, typer.Argument(help="Pipeline output folder or run folder.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the supplement.", show_default=False)],
    dpi: DpiOpt = 150,
    formats: FormatsOpt = None,
    welfare_rules: Annotated[list[str] | None, typer.Option(
        "--welfare-rules", parser=choice_list(RULES), metavar="mean|chosen|veto[,...]",
        help="Rules whose welfare distributions are drawn (default: all).", show_default=False)] = None,
    recovery_benchmark: Annotated[Path | None, typer.Option(
        "--recovery-benchmark", metavar="CSV",
        help="Also include the package's recovery benchmark (the pooled table of "
             "benchmarks/recovery.py --csv): coverage and RMSE when the data are not built like the model.",
        show_default=False)] = None,
) -> None:
    """Supplementary materials: tables (CSV, LaTeX, Markdown), figures (PNG, PDF), index and manifest.

    A supplement of a fit that failed its convergence gate says so on its index page, in
    the captions of every model-based table and figure, and in its manifest.
    """
    from ..report import SupplementError, build_supplement
    from ._common import output_folder

    if not Path(run).is_dir():
        usage_error(f"{run} does not exist" + (" (it is a file)" if Path(run).exists() else ""))
    if recovery_benchmark is not None and not Path(recovery_benchmark).is_file():
        usage_error(f"--recovery-benchmark {recovery_benchmark}: "
                    + ("is a folder" if Path(recovery_benchmark).exists() else "does not exist"))
    check_output(out)
    fmts = flatten(formats) or ["png", "pdf"]
    rules = flatten(welfare_rules)
    options = {"dpi": dpi, "formats": fmts, "welfare_rules": rules,
               "recovery_benchmark": str(recovery_benchmark) if recovery_benchmark is not None else None}
    with output_folder(out, atomic=False) as folder:
        try:
            result = build_supplement(run, folder, options=options)
        except SupplementError as exc:
            abort(str(exc), EXIT_USAGE if "neither a pipeline output folder" in str(exc) else EXIT_RUNTIME)
    typer.echo(f"{len(result.tables)} tables and {len(result.figures)} figures written to {result.folder}")
    for s in result.skipped:
        typer.echo(f"  not produced: {s}")
    if result.converged is False:
        typer.echo("note: the fit failed its convergence gate; the supplement says so on every model-based item")
    typer.echo(f"index: {result.index_html}\nmanifest: {result.manifest}")
