"""CLI commands of the welfare stage.

``juries``: the design-based reproduction of the original study's jury analysis
(:mod:`prism_stats.welfare.juries`).  The model-based ``welfare`` command is added here
next to it (see :func:`register`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import abort

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

_TABLE_SUFFIXES = (".parquet", ".csv")


def register(app: typer.Typer) -> None:
    """Add the welfare-stage commands to *app*."""
    app.command("juries")(juries_cmd)
    app.command("welfare")(welfare_cmd)


def _split(
    values: list[str] | None, name: str, allowed: tuple[Any, ...], cast: type = str
) -> list[Any]:
    """Repeatable and/or comma-separated option values, validated and de-duplicated."""
    if not values:
        return list(allowed)
    out: list[Any] = []
    for chunk in values:
        for item in str(chunk).split(","):
            item = item.strip()
            if not item:
                continue
            try:
                value = cast(item)
            except ValueError:
                abort(f"--{name}: {item!r} is not a valid {cast.__name__}")
            if cast is str and value not in allowed:
                abort(
                    f"--{name}: unknown value {item!r}; choose from {', '.join(map(str, allowed))}"
                )
            if value not in out:
                out.append(value)
    if not out:
        abort(f"--{name}: no value given")
    return out


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
    as a PRISM release folder and read with ``prism_stats.data.load_prism``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        abort(f"{folder}: not a folder")
    participants, ratings = _find_table(folder, "participants"), _find_table(folder, "ratings")
    if participants is not None and ratings is not None:
        from prism_stats._io import sha256_file, sha256_json

        return {
            "participants": _read_table(participants),
            "ratings": _read_table(ratings),
            "data_hash": sha256_json([sha256_file(participants), sha256_file(ratings)]),
        }
    from ._common import load_data_or_abort

    return load_data_or_abort(folder, strict=not lenient)


def juries_cmd(
    data_dir: Annotated[
        Path,
        typer.Argument(
            help="PRISM release folder, or a folder with participants/ratings tables (.parquet or .csv).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.", show_default=False)],
    country: Annotated[
        list[str], typer.Option("--country", "-c", help="uk and/or us (repeatable or comma list).")
    ],
    sizes: Annotated[
        str, typer.Option("--sizes", help="Representative jury sizes (comma list).")
    ] = "10,20,50,100",
    skewed_sizes: Annotated[
        str, typer.Option("--skewed-sizes", help="Jury sizes of the skewed pools (comma list).")
    ] = "100",
    pools: Annotated[
        str,
        typer.Option("--pools", help="Rater pools: representative,male,white,over45 (comma list)."),
    ] = "representative,male,white,over45",
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule", "-r", help="mean, chosen and/or veto (repeatable or comma list; default all)."
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="all, nonmale, nonwhite and/or under45 (default all)."),
    ] = None,
    replicates: Annotated[
        int, typer.Option("--replicates", "-n", min=1, help="Juries per scheme.")
    ] = 1000,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (recorded in the results).")
    ] = 1,
    imputed: Annotated[
        bool,
        typer.Option(
            "--imputed", help="Complete the tables by chained-equations imputation first (11c)."
        ),
    ] = False,
    legacy: Annotated[
        bool,
        typer.Option(
            "--legacy-python-random",
            help="Replay the original's random.seed/random.choices loop (exact reproduction needs "
            "--country us,uk --rule mean,chosen and the defaults).",
        ),
    ] = False,
    plots: Annotated[bool, typer.Option("--plots", help="Also write PNG figures.")] = False,
    lenient: Annotated[
        bool,
        typer.Option("--lenient", help="Release folders: exclude invalid rows instead of failing."),
    ] = False,
) -> None:
    """Jury (welfare) analysis of the original study, design-based.

    Writes, per country, welfare_<c>.nc (the dataset), welfare_<c>.csv (summary:
    country, rule, pool, size, target, welfare_mean, welfare_q05, welfare_q95,
    regret_mean, p_optimal), welfare_gaps_<c>.csv (exclusion gaps) and
    welfare_fosd_<c>.csv (first-order stochastic dominance against rep_100).
    """
    from prism_stats.vocab import COUNTRIES_MRP
    from prism_stats.welfare import (
        POOLS,
        RULES,
        TARGETS,
        JuryInputError,
        WelfareResultError,
        run_juries,
        summarise_welfare,
        write_welfare,
    )

    countries = _split(country, "country", COUNTRIES_MRP)
    rules = _split(rule, "rule", RULES)
    targets = _split(target, "target", TARGETS)
    pool_list = _split([pools], "pools", POOLS)
    size_list = _split([sizes], "sizes", (), cast=int)
    skewed_list = _split([skewed_sizes], "skewed-sizes", (), cast=int)
    if any(s < 1 for s in size_list + skewed_list):
        abort("jury sizes must be >= 1")

    data = load_jury_input(data_dir, lenient=lenient)
    try:
        ds = run_juries(
            data,
            countries,
            rules=rules,
            sizes=size_list,
            pools=pool_list,
            skewed_sizes=skewed_list,
            targets=targets,
            n_replicates=replicates,
            seed=seed,
            imputed=imputed,
            legacy_python_random=legacy,
        )
    except (JuryInputError, WelfareResultError) as exc:
        abort(str(exc), code=1)

    written: list[Path] = []
    for c in countries:
        written += list(write_welfare(ds, out, c).values())
        if plots:
            written += _write_plots(ds, out, c)
    summary = summarise_welfare(ds)
    typer.echo(
        f"juries: {', '.join(countries)}; rules {', '.join(rules)}; {ds.sizes['scheme']} schemes x "
        f"{replicates} replicates; seed {ds.attrs['seed']}{'; imputed' if imputed else ''}"
        f"{'; legacy python random' if legacy else ''}"
    )
    best = summary[(summary["target"] == targets[0])][
        ["country", "rule", "pool", "size", "welfare_mean", "p_optimal"]
    ]
    typer.echo(best.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in written:
        typer.echo(f"wrote {path}")


def welfare_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder of a fitted rating model.", show_default=False)],
    country: Annotated[str, typer.Option("--country", "-c", help="uk or us.")],
    sizes: Annotated[str, typer.Option("--sizes", help="Representative jury sizes (comma list).")] = "10,20,50,100",
    skewed_sizes: Annotated[
        str, typer.Option("--skewed-sizes", help="Jury sizes of the skewed pools (comma list).")
    ] = "100",
    pools: Annotated[
        str, typer.Option("--pools", help="Rater pools: representative,male,white,over45 (comma list).")
    ] = "representative,male,white,over45",
    rule: Annotated[
        list[str] | None,
        typer.Option("--rule", "-r", help="mean, chosen and/or veto (repeatable or comma list; default all)."),
    ] = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Juries per scheme.")] = 1000,
    draws: Annotated[
        int, typer.Option("--draws", min=1, help="Posterior draws used (evenly thinned).")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    harmonisation: Annotated[str, typer.Option(help="Census harmonisation (default or original).")] = "default",
    plots: Annotated[bool, typer.Option("--plots", help="Also write PNG figures.")] = False,
    exposure: Annotated[
        str, typer.Option("--exposure", help="full: every juror rates every LLM; matched: only the LLMs a "
                          "participant of the run saw (written to RUN/exposure_matched/).")
    ] = "full",
) -> None:
    """Model-based welfare: juries drawn from census pools, judged by the posterior.

    Writes RUN/welfare_<c>.nc (chosen LLM, welfare and regret per posterior draw x jury
    replicate), RUN/welfare_<c>.csv (country, rule, pool, size, target, welfare_mean,
    welfare_q05, welfare_q95, regret_mean, p_optimal), RUN/welfare_gaps_<c>.csv (gaps
    between single juries), RUN/welfare_expected_gaps_<c>.csv (posterior of the expected
    exclusion gap) and RUN/welfare_fosd_<c>.csv; with --exposure matched the same files
    in RUN/exposure_matched/.
    """
    from prism_stats._io import atomic_path
    from prism_stats.vocab import COUNTRIES_MRP
    from prism_stats.welfare import (
        EXPOSURE_FOLDERS,
        EXPOSURES,
        POOLS,
        RULES,
        WelfareResultError,
        summarise_welfare,
        write_welfare,
    )
    from prism_stats.welfare.model_based import expected_gaps, model_welfare

    from ._common import load_run_or_abort

    (c,) = _split([country], "country", COUNTRIES_MRP)
    rules = _split(rule, "rule", RULES)
    pool_list = _split([pools], "pools", POOLS)
    size_list = _split([sizes], "sizes", (), cast=int)
    skewed_list = _split([skewed_sizes], "skewed-sizes", (), cast=int)
    if any(x < 1 for x in size_list + skewed_list):
        abort("jury sizes must be >= 1")
    if exposure not in EXPOSURES:
        abort(f"--exposure must be one of {', '.join(EXPOSURES)}, got {exposure!r}")
    r = load_run_or_abort(run)
    try:
        ds = model_welfare(r, c, rules=rules, sizes=size_list, pools=pool_list,
                           skewed_sizes=skewed_list, replicates=replicates, draws=draws, seed=seed,
                           harmonisation=harmonisation, exposure=exposure)
    except WelfareResultError as exc:
        abort(str(exc), code=1)
    out = run / EXPOSURE_FOLDERS[exposure]
    written = list(write_welfare(ds, out, c).values())
    gaps = out / f"welfare_expected_gaps_{c}.csv"
    with atomic_path(gaps) as tmp:
        expected_gaps(ds).to_csv(tmp, index=False)
    written.append(gaps)
    if plots:
        written += _write_plots(ds, out, c)
    summary = summarise_welfare(ds)
    typer.echo(f"model-based welfare ({c}, {exposure} exposure): rules {', '.join(rules)}; {ds.sizes['scheme']} schemes x "
               f"{replicates} juries x {ds.attrs.get('n_draws')} posterior draws; seed {seed}")
    typer.echo(summary.loc[summary["target"] == "all", ["rule", "pool", "size", "welfare_mean",
                                                         "regret_mean", "p_optimal"]]
               .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in written:
        typer.echo(f"wrote {path}")


def _write_plots(ds: Any, out: Path, country: str) -> list[Path]:
    from prism_stats._io import atomic_path
    from prism_stats.welfare import plot_exclusion_gaps, plot_welfare_distributions

    paths = []
    for rule in ds["rule"].values:
        fig = plot_welfare_distributions(ds, country, str(rule))
        path = out / f"welfare_{country}_{rule}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format="png")
        paths.append(path)
    if any(p != "representative" for p in ds["pool"].values):
        fig = plot_exclusion_gaps(ds.sel(country=[country]))
        path = out / f"welfare_gaps_{country}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format="png")
        paths.append(path)
    return paths
