"""CLI commands of the welfare stage: ``juries`` (design-based) and ``welfare`` (model-based).

``juries``: the design-based reproduction of the original study's jury analysis
(:mod:`prism_stats.welfare.juries`); ``welfare``: juries drawn from census pools and judged
by a fitted run's posterior (:mod:`prism_stats.welfare.model_based`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import abort, check_output, load_run, output_folder, progress_steps, usage_error
from ._options import (
    EXIT_CODES_EPILOG,
    TARGETS,
    CountryList,
    Exposure,
    Harmonisation,
    HarmonisationOpt,
    LegacyDataArg,
    LenientOpt,
    PoolsOpt,
    ProgressOpt,
    RuleOpt,
    RunArg,
    SizesOpt,
    SkewedSizesOpt,
    choice_list,
    data_folder,
    default_countries,
    flatten,
)

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

_TABLE_SUFFIXES = (".parquet", ".csv")
_DEFAULT_SIZES = [10, 20, 50, 100]


def register(app: typer.Typer) -> None:
    """Add the welfare-stage commands to *app*."""
    app.command("juries", epilog=EXIT_CODES_EPILOG)(juries_cmd)
    app.command("welfare", epilog=EXIT_CODES_EPILOG)(welfare_cmd)


def _find_table(folder: Path, stem: str) -> Path | None:
    for suffix in _TABLE_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _read_table(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, ImportError) as exc:  # unreadable file: say which
        abort(f"{path}: cannot be read ({exc})")


def load_jury_input(folder: Path, *, lenient: bool = False) -> Any:
    """Tidy tables for the jury analysis from *folder*.

    A folder holding ``participants`` and ``ratings`` tables (``.parquet`` or ``.csv``,
    columns of the ``PrismData`` contract) is read directly; anything else is treated
    as a PRISM release folder and read with ``prism_stats.data.load_prism`` (with
    *lenient*, invalid rows are excluded and the exclusion report printed).
    """
    folder = Path(folder)
    if not folder.is_dir():
        usage_error(f"--data {folder}: " + ("is a file, not a folder" if folder.exists() else "does not exist"))
    participants, ratings = _find_table(folder, "participants"), _find_table(folder, "ratings")
    if participants is not None and ratings is not None:
        from prism_stats._io import sha256_file, sha256_json

        return {
            "participants": _read_table(participants),
            "ratings": _read_table(ratings),
            "data_hash": sha256_json([sha256_file(participants), sha256_file(ratings)]),
        }
    from ._common import load_data

    return load_data(folder, strict=not lenient)


def juries_cmd(
    legacy: LegacyDataArg = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="PRISM release folder, or a folder with participants/ratings tables (.parquet or .csv).",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.", show_default=False)] = None,
    country: CountryList = None,
    sizes: SizesOpt = None,
    skewed_sizes: SkewedSizesOpt = None,
    pools: PoolsOpt = None,
    rule: RuleOpt = None,
    target: Annotated[list[str] | None, typer.Option(
        "--target", parser=choice_list(TARGETS), metavar="all|nonmale|nonwhite|under45[,...]",
        help="Welfare targets (default: all four).", show_default=False)] = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Juries per scheme.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (recorded in the results).")] = 1,
    imputed: Annotated[bool, typer.Option(
        "--imputed", help="Complete the tables by chained-equations imputation first (11c).")] = False,
    legacy_random: Annotated[bool, typer.Option(
        "--legacy-python-random",
        help="Replay the original's random.seed/random.choices loop (exact reproduction needs "
        "--country us,uk --rule mean,chosen and the defaults).")] = False,
    plots: Annotated[bool, typer.Option("--plots", help="Also write PNG figures.")] = False,
    lenient: LenientOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Jury (welfare) analysis of the original study, design-based.

    Writes, per country (both unless --country), welfare_<c>.nc (the dataset),
    welfare_<c>.csv (summary: country, rule, pool, size, target, welfare_mean,
    welfare_q05, welfare_q95, regret_mean, p_optimal), welfare_gaps_<c>.csv (exclusion
    gaps) and welfare_fosd_<c>.csv (first-order stochastic dominance against rep_100).
    """
    from prism_stats.welfare import (
        POOLS,
        RULES,
        JuryInputError,
        WelfareResultError,
        run_juries,
        summarise_welfare,
        write_welfare,
    )

    folder = data_folder(data, legacy)
    if out is None:
        usage_error("--out: no output folder given")
    countries = default_countries(country)
    rules = flatten(rule) or list(RULES)
    targets = flatten(target) or list(TARGETS)
    pool_list = flatten(pools) or list(POOLS)
    size_list = flatten(sizes) or list(_DEFAULT_SIZES)
    skewed_list = flatten(skewed_sizes) or [100]
    check_output(out)
    tables = load_jury_input(folder, lenient=lenient)
    written: list[Path] = []
    # Locked from the start: a second writer of --out fails at once, not after the juries.
    with output_folder(out) as dest:
        with progress_steps(1, enabled=progress) as step:
            step(f"juries {', '.join(c.upper() for c in countries)}: {len(rules)} rule(s) x {replicates} juries")
            try:
                ds = run_juries(tables, countries, rules=rules, sizes=size_list, pools=pool_list,
                                skewed_sizes=skewed_list, targets=targets, replicates=replicates,
                                seed=seed, imputed=imputed, legacy_python_random=legacy_random)
            except (JuryInputError, WelfareResultError) as exc:
                abort(str(exc))
        for c in countries:
            written += list(write_welfare(ds, dest, c).values())
            if plots:
                written += _write_plots(ds, dest, c)
    summary = summarise_welfare(ds)
    typer.echo(
        f"juries: {', '.join(countries)}; rules {', '.join(rules)}; {ds.sizes['scheme']} schemes x "
        f"{replicates} replicates; seed {ds.attrs['seed']}{'; imputed' if imputed else ''}"
        f"{'; legacy python random' if legacy_random else ''}"
    )
    best = summary[(summary["target"] == targets[0])][
        ["country", "rule", "pool", "size", "welfare_mean", "p_optimal"]
    ]
    typer.echo(best.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in written:
        typer.echo(f"wrote {path}")


def welfare_cmd(
    run: RunArg,
    country: CountryList = None,
    sizes: SizesOpt = None,
    skewed_sizes: SkewedSizesOpt = None,
    pools: PoolsOpt = None,
    rule: RuleOpt = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Juries per scheme.")] = 1000,
    draws: Annotated[int, typer.Option("--draws", min=1, help="Posterior draws used (evenly thinned).")] = 200,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    harmonisation: HarmonisationOpt = Harmonisation.default,
    plots: Annotated[bool, typer.Option("--plots", help="Also write PNG figures.")] = False,
    progress: ProgressOpt = True,
    exposure: Annotated[Exposure, typer.Option(
        "--exposure", help="full: every juror rates every LLM; matched: only the LLMs a participant of "
        "the run was shown in opening turns, with the study's fill rules (files in RUN/exposure_matched/).")
    ] = Exposure.full,
) -> None:
    """Model-based welfare: juries drawn from census pools, judged by the posterior.

    Writes, per country (both unless --country), RUN/welfare_<c>.nc (chosen LLM, welfare
    and regret per posterior draw x jury replicate), RUN/welfare_<c>.csv (country, rule,
    pool, size, target, welfare_mean, welfare_q05, welfare_q95, regret_mean, p_optimal,
    converged), RUN/welfare_gaps_<c>.csv (gaps between single juries),
    RUN/welfare_expected_gaps_<c>.csv (posterior of the expected exclusion gap) and
    RUN/welfare_fosd_<c>.csv. Results of a run that failed its convergence gate are
    marked converged = False. With --exposure matched the same files are written to
    RUN/exposure_matched/.
    """
    from prism_stats._io import atomic_path
    from prism_stats.welfare import (
        EXPOSURE_FOLDERS,
        POOLS,
        RULES,
        WelfareResultError,
        mark_converged,
        summarise_welfare,
        write_welfare,
    )
    from prism_stats.welfare.model_based import expected_gaps, model_welfare

    countries = default_countries(country)
    rules = flatten(rule) or list(RULES)
    pool_list = flatten(pools) or list(POOLS)
    size_list = flatten(sizes) or list(_DEFAULT_SIZES)
    skewed_list = flatten(skewed_sizes) or [100]
    r = load_run(run)
    dest = Path(run) / EXPOSURE_FOLDERS[exposure.value]
    check_output(dest, "RUN")
    converged = r.converged
    if not converged:
        typer.echo("note: the run failed its convergence gate; the results are marked converged = False",
                   err=True)
    results = {}
    written: list[Path] = []
    with output_folder(dest, "RUN") as folder:
        with progress_steps(len(countries), enabled=progress) as step:
            for c in countries:
                step(f"model-based welfare {c.upper()}: {len(rules)} rule(s) x {replicates} juries x {draws} draws")
                try:
                    ds = model_welfare(r, c, rules=rules, sizes=size_list, pools=pool_list,
                                       skewed_sizes=skewed_list, replicates=replicates, draws=draws,
                                       seed=seed, harmonisation=harmonisation.value,
                                       exposure=exposure.value)
                except WelfareResultError as exc:
                    abort(str(exc))
                ds.attrs["converged"] = int(converged)
                results[c] = ds
        for c, ds in results.items():
            written += list(write_welfare(ds, folder, c).values())
            gaps = folder / f"welfare_expected_gaps_{c}.csv"
            with atomic_path(gaps) as tmp:
                mark_converged(expected_gaps(ds), ds).to_csv(tmp, index=False)
            written.append(gaps)
            if plots:
                written += _write_plots(ds, folder, c)
    for c, ds in results.items():
        summary = summarise_welfare(ds)
        typer.echo(f"model-based welfare ({c}, {exposure.value} exposure): rules {', '.join(rules)}; {ds.sizes['scheme']} schemes x "
                   f"{replicates} juries x {ds.attrs.get('n_draws')} posterior draws; seed {seed}")
        typer.echo(summary.loc[summary["target"] == "all", ["rule", "pool", "size", "welfare_mean",
                                                             "regret_mean", "p_optimal"]]
                   .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in written:
        typer.echo(f"wrote {path}")


def _write_plots(ds: Any, out: Path, country: str) -> list[Path]:
    from prism_stats._io import save_figure
    from prism_stats.welfare import plot_exclusion_gaps, plot_welfare_distributions

    paths = []
    for rule in ds["rule"].values:
        fig = plot_welfare_distributions(ds, country, str(rule))
        paths += save_figure(fig, out, f"welfare_{country}_{rule}", formats=("png",), dpi=150)
    if any(p != "representative" for p in ds["pool"].values):
        fig = plot_exclusion_gaps(ds.sel(country=[country]))
        paths += save_figure(fig, out, f"welfare_gaps_{country}", formats=("png",), dpi=150)
    return paths
