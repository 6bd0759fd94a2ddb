"""CLI commands of the model stage: fit, diagnose, ppc, loo, poststratify, crosscheck."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._common import abort, load_data_or_abort, load_run_or_abort

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

COUNTRY_HELP = "Post-stratification country: uk or us."


def register(app: typer.Typer) -> None:
    """Add the model-stage commands to *app*."""
    app.command("fit")(fit_cmd)
    app.command("diagnose")(diagnose_cmd)
    app.command("ppc")(ppc_cmd)
    app.command("loo")(loo_cmd)
    app.command("poststratify")(poststratify_cmd)
    app.command("crosscheck")(crosscheck_cmd)


def fit_cmd(
    data: Path = typer.Option(..., "--data", help="Folder with the PRISM release files."),
    model: str = typer.Option("ratings", "--model", help="Spec name in models/ or a TOML path."),
    out: Path = typer.Option(..., "--out", help="Run folder to write."),
    chains: int | None = typer.Option(None, help="Chains (default: the spec's)."),
    draws: int | None = typer.Option(None, help="Posterior draws per chain."),
    tune: int | None = typer.Option(None, help="Tuning steps per chain."),
    seed: int | None = typer.Option(None, help="Random seed."),
    sampler: str | None = typer.Option(None, help="nutpie (default) or pymc."),
    strict: bool = typer.Option(False, "--strict", help="Exit 3 when R-hat > 1.01, ESS < 400 or any divergence."),
    lenient: bool = typer.Option(False, "--lenient", help="Exclude invalid rows (reported) instead of failing."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show sampling progress."),
) -> None:
    """Fit a rating-model spec and save the run folder."""
    from ..model import diagnose, fit
    from ..model.spec import SpecError, load_spec

    try:
        spec = load_spec(model)
    except SpecError as exc:
        abort(str(exc))
    prism = load_data_or_abort(data, strict=not lenient)
    typer.echo(f"fitting {spec.name!r} ({spec.family}, {spec.turns} turns, {spec.subset}) ...")
    run = fit(prism, spec, chains=chains, draws=draws, tune=tune, seed=seed, sampler=sampler,
              progress=progress, out=out)
    diag = diagnose(run)
    t = run.meta["timings"]
    typer.echo(f"saved {out}  (compile {t.get('compile_s') or 0:.1f}s, sampling {t['sampling_s']:.1f}s)")
    typer.echo(str(diag))
    if strict and not diag.passed:
        raise typer.Exit(3)


def diagnose_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    strict: bool = typer.Option(False, "--strict", help="Exit 3 when the gate fails."),
    rhat_max: float = typer.Option(1.01, help="R-hat threshold."),
    ess_min: float = typer.Option(400, help="ESS threshold (bulk and tail)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Convergence diagnostics of a run (R-hat, ESS, divergences, E-BFMI)."""
    from ..model import diagnose

    r = load_run_or_abort(run)
    diag = diagnose(r, rhat_max=rhat_max, ess_min=ess_min)
    typer.echo(json.dumps(diag.to_dict(), indent=2, default=float) if as_json else str(diag))
    if strict and not diag.passed:
        raise typer.Exit(3)


def ppc_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    out: Path | None = typer.Option(None, help="Folder for the figures (default: RUN/figures)."),
    draws: int = typer.Option(200, help="Posterior draws used."),
    seed: int = typer.Option(0, help="Seed of the replicated data."),
    prior: bool = typer.Option(True, "--prior/--no-prior", help="Also draw the prior predictive check."),
) -> None:
    """Posterior (and prior) predictive check figures (PNG and PDF)."""
    import matplotlib.pyplot as plt

    from ..model import predictive_checks, prior_predictive
    from ..model.plots import plot_predictive

    r = load_run_or_abort(run)
    out = out or run / "figures"
    out.mkdir(parents=True, exist_ok=True)
    scores = _observed_scores(r)
    figs = {"ppc": plot_predictive(predictive_checks(r, n_draws=draws, seed=seed, observed_scores=scores))}
    if prior:
        figs["prior_predictive"] = plot_predictive(
            prior_predictive(r.design, r.spec, n_draws=draws, seed=seed, observed_scores=scores),
            title="Prior predictive checks")
    for name, fig in figs.items():
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{name}.{ext}", dpi=150)
        plt.close(fig)
        typer.echo(f"wrote {out / name}.png/.pdf")


def _observed_scores(r):
    """The individual ratings of a run's design (re-read from its data folder when possible)."""
    if not r.data_folder:
        return None
    try:
        from ..data import load_prism
        from ..model.design import select_ratings

        kept, _ = select_ratings(load_prism(r.data_folder, strict=False).ratings, r.spec)
        return kept["score"].to_numpy(dtype=float)
    except Exception:  # the figure is still useful without the observed histogram
        return None


def loo_cmd(
    runs: list[Path] = typer.Argument(..., help="One or more run folders (same data)."),
) -> None:
    """Leave-one-participant-out PSIS-LOO; compares specs when given several runs."""
    from ..model import compare, loo

    loaded = {str(p): load_run_or_abort(p) for p in runs}
    if len(loaded) == 1:
        typer.echo(str(loo(next(iter(loaded.values())))))
        return
    try:
        typer.echo(compare({Path(k).name: v for k, v in loaded.items()}).to_string())
    except ValueError as exc:
        abort(str(exc))


def poststratify_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    country: str = typer.Option(..., help=COUNTRY_HELP),
    harmonisation: str = typer.Option("default", help="Census harmonisation (default or original)."),
    seed: int = typer.Option(0, help="Seed for effects of levels unseen in the data."),
) -> None:
    """MRP: write RUN/poststrat_<country>.nc and .csv."""
    from ..poststrat import PoststratError, poststratify

    r = load_run_or_abort(run)
    data = load_data_or_abort(r.data_folder, strict=False, required=False) if r.data_folder else None
    if data is None:
        typer.echo("note: the run's data folder is unavailable; raw/REP means left empty", err=True)
    try:
        res = poststratify(r, country, data=data, harmonisation=harmonisation, seed=seed)
    except PoststratError as exc:
        abort(str(exc))
    nc, csv = res.save(run)
    s = res.summary()
    top = s.loc[s["group"] == "all"].head(5)
    typer.echo(f"wrote {nc} and {csv}\n" + top[["llm", "mean", "q05", "q95", "p_best"]].to_string(index=False))


def crosscheck_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    out: Path | None = typer.Option(None, help="CSV to write (default: RUN/crosscheck_mixedlm.csv)."),
) -> None:
    """Frequentist cross-check: statsmodels MixedLM LLM effects beside the Bayesian ones."""
    from ..model.crosscheck import mixedlm_crosscheck

    r = load_run_or_abort(run)
    data = load_data_or_abort(r.data_folder, strict=False) if r.data_folder else abort(
        "the run's data folder is unknown; cannot refit MixedLM")
    table = mixedlm_crosscheck(r, data)
    out = out or run / "crosscheck_mixedlm.csv"
    table.to_csv(out, index=False)
    typer.echo(table.to_string(index=False))
    typer.echo(f"correlation of LLM effects (Bayes vs REML): {table.attrs['correlation']:.4f}\nwrote {out}")
