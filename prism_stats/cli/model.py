"""CLI commands of the model stage: fit, diagnose, ppc, loo, poststratify, crosscheck."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import abort, check_output, load_data, load_run, output_folder, progress_steps, run_data
from ._common import usage_error
from ._options import (
    EXIT_CODES_EPILOG,
    EXIT_GATE,
    EXIT_INTERRUPTED,
    ChainsOpt,
    CountryList,
    DataOpt,
    DrawsOpt,
    HarmonisationOpt,
    Harmonisation,
    LenientOpt,
    ModelOpt,
    ProgressOpt,
    RunArg,
    SamplerOpt,
    TuneOpt,
    default_countries,
)

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

RunDataOpt = Annotated[Path | None, typer.Option(
    "--data", help="The release the run was fitted to, when it has moved (checked against the "
    "data hash the run recorded).", show_default=False)]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Exit 3 when the convergence gate fails (R-hat > 1.01, ESS < 400, divergences, "
    "or a single chain).")]

#: Files in a run folder that belong to the fit that made them (replaced by `fit --force`).
DERIVED = ("poststrat_*", "welfare_*", "compare_*", "crosscheck_*", "convergence.csv", "ppc.nc",
           "prior_predictive.nc", "loo.json")


def register(app: typer.Typer) -> None:
    """Add the model-stage commands to *app*."""
    for name, func in (("fit", fit_cmd), ("diagnose", diagnose_cmd), ("ppc", ppc_cmd),
                       ("loo", loo_cmd), ("poststratify", poststratify_cmd),
                       ("crosscheck", crosscheck_cmd)):
        app.command(name, epilog=EXIT_CODES_EPILOG)(func)


def load_spec_or_exit(model: str):
    """The model spec named by ``--model`` (exit 2 naming the option when unknown or invalid)."""
    from ..model.spec import SpecError, load_spec

    try:
        return load_spec(model)
    except SpecError as exc:
        usage_error(f"--model: {exc}")


def fit_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.", show_default=False)],
    data: DataOpt = None,
    model: ModelOpt = "ratings",
    chains: ChainsOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Sampling seed (default: the spec's).",
                                             show_default=False)] = None,
    sampler: SamplerOpt = None,
    strict: StrictOpt = False,
    lenient: LenientOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a run already in --out (and the "
                                        "results derived from it there).")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Fit a rating-model spec and save the run folder.

    Options, the data and the output folder are checked before sampling starts; the run
    folder (posterior.nc, run.json, diagnostics.json) is written as one set.
    """
    from ..model import DesignError, diagnose, fit
    from ..model.fit import META_FILE, POSTERIOR_FILE, RunError
    from ..model.spec import SpecError

    spec = load_spec_or_exit(model)
    if data is None:
        usage_error("--data: no release folder given")
    check_output(out)
    existing = [f for f in (META_FILE, POSTERIOR_FILE) if (out / f).exists()]
    if existing and not force:
        usage_error(f"--out {out} already holds a run ({', '.join(existing)}); pass --force to replace "
                    "it, or choose another folder")
    prism = load_data(data, strict=not lenient)
    with output_folder(out) as folder:
        typer.echo(f"fitting {spec.name!r} ({spec.family}, {spec.turns} turns, {spec.subset}) ...")
        try:
            run = fit(prism, spec, chains=chains, draws=draws, tune=tune, seed=seed,
                      sampler=None if sampler is None else sampler.value, progress=progress)
        except SpecError as exc:
            usage_error(str(exc))
        except DesignError as exc:
            abort(str(exc))
        except RunError as exc:  # nutpie returns early on Ctrl-C / SIGTERM: nothing is saved
            abort(str(exc), EXIT_INTERRUPTED)
        stale = sorted({p for pattern in DERIVED for p in folder.glob(pattern)}) if force else []
        for path in stale:  # results of the replaced fit must not pass for this one's
            path.unlink()
        run.save(folder)
    diag = diagnose(run)
    t = run.meta["timings"]
    typer.echo(f"saved {out}  (compile {t.get('compile_s') or 0:.1f}s, sampling {t['sampling_s']:.1f}s)")
    if stale:
        typer.echo(f"removed {len(stale)} result file(s) of the replaced run: "
                   + ", ".join(p.name for p in stale))
    typer.echo(str(diag))
    if strict and not diag.passed:
        raise typer.Exit(EXIT_GATE)


def diagnose_cmd(
    run: RunArg,
    strict: StrictOpt = False,
    rhat_max: Annotated[float, typer.Option("--rhat-max", min=1.0, help="R-hat threshold.")] = 1.01,
    ess_min: Annotated[float, typer.Option("--ess-min", min=0.0, help="ESS threshold (bulk and tail).")] = 400,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Convergence diagnostics of a run (R-hat, ESS, divergences, E-BFMI); --strict: exit 3 on failure."""
    from ..model import diagnose

    r = load_run(run)
    diag = diagnose(r, rhat_max=rhat_max, ess_min=ess_min)
    typer.echo(json.dumps(diag.to_dict(), indent=2, default=float) if as_json else str(diag))
    if strict and not diag.passed:
        raise typer.Exit(EXIT_GATE)


def ppc_cmd(
    run: RunArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the figures (default: RUN/figures).",
                                             show_default=False)] = None,
    draws: Annotated[int, typer.Option("--draws", min=1, help="Posterior draws used.")] = 200,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the replicated data.")] = 0,
    prior: Annotated[bool, typer.Option("--prior/--no-prior", help="Also draw the prior predictive check.")] = True,
    data: RunDataOpt = None,
) -> None:
    """Posterior (and prior) predictive check figures (PNG and PDF)."""
    from .._io import save_figure
    from ..model import predictive_checks, prior_predictive
    from ..model.plots import plot_predictive

    r = load_run(run)
    out = check_output(out if out is not None else Path(run) / "figures")
    scores = _observed_scores(r, data)
    with output_folder(out) as folder:
        figs = {"ppc": plot_predictive(predictive_checks(r, draws=draws, seed=seed, observed_scores=scores))}
        if prior:
            figs["prior_predictive"] = plot_predictive(
                prior_predictive(r.design, r.spec, draws=draws, seed=seed, observed_scores=scores),
                title="Prior predictive checks")
        for name, fig in figs.items():
            save_figure(fig, folder, name, formats=("png", "pdf"), dpi=150)
    for name in figs:
        typer.echo(f"wrote {out / name}.png/.pdf")


def _observed_scores(r, data_option):
    """The individual ratings of a run's design (re-read from its data, hash-checked)."""
    from ..model.design import select_ratings

    data = run_data(r, data_option, required=False)
    if data is None:
        return None
    kept, _ = select_ratings(data.ratings, r.spec)
    return kept["score"].to_numpy(dtype=float)


def loo_cmd(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN...", help="One or more run folders (same data).",
                                               show_default=False)],
) -> None:
    """Leave-one-participant-out PSIS-LOO; compares specs when given several runs."""
    from ..model import compare, loo

    loaded = {str(p): load_run(p) for p in runs}
    if len(loaded) == 1:
        typer.echo(str(loo(next(iter(loaded.values())))))
        return
    try:
        typer.echo(compare({Path(k).name: v for k, v in loaded.items()}).to_string())
    except ValueError as exc:
        abort(str(exc))


def poststratify_cmd(
    run: RunArg,
    country: CountryList = None,
    harmonisation: HarmonisationOpt = Harmonisation.default,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for effects of levels unseen in the data.")] = 0,
    data: RunDataOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """MRP: write RUN/poststrat_<country>.nc and .csv (both countries unless --country).

    A run that failed its convergence gate still post-stratifies, and its CSV says so
    (converged = False).
    """
    from ..poststrat import PoststratError, poststratify

    countries = default_countries(country)
    r = load_run(run)
    check_output(run, "RUN")
    prism = run_data(r, data, required=False)
    if prism is None:
        typer.echo("note: raw/REP sample means left empty", err=True)
    if not r.converged:
        typer.echo("note: the run failed its convergence gate; the results are marked converged = False",
                   err=True)
    written = []
    with output_folder(run, "RUN") as folder, progress_steps(len(countries), enabled=progress) as step:
        for c in countries:
            step(f"MRP {c.upper()}")
            try:
                res = poststratify(r, c, data=prism, harmonisation=harmonisation.value, seed=seed)
            except PoststratError as exc:
                abort(str(exc))
            written += res.save(folder)
            s = res.summary()
            top = s.loc[s["group"] == "all"].head(5)
            typer.echo(f"{c.upper()}:\n" + top[["llm", "mean", "q05", "q95", "p_best"]].to_string(index=False))
    for path in written:
        typer.echo(f"wrote {path}")


def crosscheck_cmd(
    run: RunArg,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for crosscheck_mixedlm.csv, or a .csv file name (default: RUN).",
        show_default=False)] = None,
    data: RunDataOpt = None,
) -> None:
    """Frequentist cross-check: statsmodels MixedLM LLM effects beside the Bayesian ones."""
    import numpy as np

    from .._io import write_text_atomic
    from ..model.crosscheck import mixedlm_crosscheck

    target = Path(out) if out is not None else Path(run)
    if target.suffix.lower() != ".csv":
        target = target / "crosscheck_mixedlm.csv"
    r = load_run(run)
    check_output(target, "--out", kind="file")
    prism = run_data(r, data)
    try:
        table = mixedlm_crosscheck(r, prism)
    except (np.linalg.LinAlgError, ValueError) as exc:  # REML can fail on small or unbalanced data
        abort(f"the MixedLM fit failed ({type(exc).__name__}: {exc})")
    with output_folder(target.parent, "--out"):
        write_text_atomic(target, table.to_csv(index=False))
    typer.echo(table.to_string(index=False))
    typer.echo(f"correlation of LLM effects (Bayes vs REML): {table.attrs['correlation']:.4f}\nwrote {target}")
