"""CLI commands of the design-based comparators: ``rake`` and ``compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import abort, callback_progress, check_output, load_data, load_run_meta, output_folder, run_data
from ._common import usage_error
from ._options import (
    EXIT_CODES_EPILOG,
    CountryList,
    DataOpt,
    Harmonisation,
    HarmonisationOpt,
    LegacyDataArg,
    LenientOpt,
    ProgressOpt,
    RunArg,
    StandardError,
    WeightMethod,
    data_folder,
    default_countries,
    flatten,
    merge_alias,
)

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

#: Variables of the census frame that margins can use (``prism_stats.census.frame``).
CENSUS_VARIABLES = ("age", "sex", "ethnicity")

BoundsOpt = Annotated[str | None, typer.Option(
    "--bounds", metavar="LO,HI", help="Trimming bounds of the raking factors relative to the mean "
    "weight (0 < LO < 1 < HI).", show_default=False)]


def _parse_bounds(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        usage_error(f"--bounds takes 'LO,HI' (e.g. 0.3,3), not {text!r}")
    if not 0 < lo < 1 < hi:
        usage_error(f"--bounds {text}: need 0 < LO < 1 < HI")
    return lo, hi


def register(app: typer.Typer) -> None:
    """Add this module's commands to *app*."""
    app.command("rake", epilog=EXIT_CODES_EPILOG)(rake_cmd)
    app.command("compare", epilog=EXIT_CODES_EPILOG)(compare_cmd)


def rake_cmd(
    legacy: LegacyDataArg = None,
    data: DataOpt = None,
    country: CountryList = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder (weights_<c>.csv, .json, _balance.csv per country); a "
        "name ending in .csv writes that file for a single country.", show_default=False)] = None,
    margins: Annotated[str, typer.Option(
        "--margins", help="Margins, comma-separated; '*' crosses (age*sex).")] = "age,sex,ethnicity,age*sex",
    bounds: BoundsOpt = None,
    harmonisation: HarmonisationOpt = Harmonisation.default,
    method: Annotated[WeightMethod, typer.Option("--method", help="Weighting method.")] = WeightMethod.rake,
    lenient: LenientOpt = False,
) -> None:
    """Weight the resident participants of each country to its census margins."""
    from prism_stats._io import write_json_atomic, write_text_atomic
    from prism_stats.weights import WeightingError, parse_margins, participant_weights

    folder = data_folder(data, legacy)
    countries = default_countries(country)
    if out is None:
        usage_error("--out: no output folder given")
    single_file = out.suffix.lower() == ".csv"
    if single_file and len(countries) > 1:
        usage_error(f"--out {out} is one CSV file but {len(countries)} countries are asked for; give a "
                    "folder (or one --country)")
    check_output(out, kind="file" if single_file else "folder")
    try:
        margin_list = parse_margins(margins)
    except WeightingError as err:
        usage_error(f"--margins: {err}")
    names = {n for m in margin_list for n in ((m,) if isinstance(m, str) else m)}
    if names - set(CENSUS_VARIABLES):
        usage_error(f"--margins: unknown variable(s) {sorted(names - set(CENSUS_VARIABLES))}; use "
                    f"{', '.join(CENSUS_VARIABLES)} and crossings such as age*sex")
    trim = _parse_bounds(bounds)
    prism = load_data(folder, strict=not lenient)
    results = {}
    summaries = {}
    with output_folder(out.parent if single_file else out) as dest:
        for c in countries:
            try:
                results[c] = participant_weights(prism.participants, c, method=method.value,
                                                 margins=margin_list, harmonisation=harmonisation.value,
                                                 bounds=trim)
            except WeightingError as err:
                abort(f"{c.upper()}: {err}")
        for c, result in results.items():
            csv = out if single_file else dest / f"weights_{c}.csv"
            write_text_atomic(csv, result.weights.rename("weight").reset_index().to_csv(index=False))
            summaries[c] = result.summary() | {"data_hash": getattr(prism, "data_hash", None)}
            write_json_atomic(csv.with_suffix(".json"), summaries[c])
            write_text_atomic(csv.with_name(csv.stem + "_balance.csv"), result.balance.to_csv(index=False))
    typer.echo(json.dumps(summaries if len(summaries) > 1 else next(iter(summaries.values())),
                          indent=2, default=str))


def _poststrat_table(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        abort(f"{path}: cannot be read ({err})")


def compare_cmd(
    run: RunArg,
    country: CountryList = None,
    harmonisation: HarmonisationOpt = Harmonisation.default,
    bounds: BoundsOpt = None,
    se: Annotated[StandardError, typer.Option("--se", help="Standard errors of the design-based means.")]
    = StandardError.linearisation,
    replicates: Annotated[int | None, typer.Option(
        "--replicates", min=1, help="Bootstrap replicates (--se bootstrap; default 500).",
        show_default=False)] = None,
    n_boot: Annotated[int | None, typer.Option("--n-boot", min=1, hidden=True)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstrap.")] = 20240101,
    data: Annotated[Path | None, typer.Option(
        "--data", help="The release the run was fitted to, when it has moved (checked against the "
        "data hash the run recorded).", show_default=False)] = None,
    progress: ProgressOpt = True,
) -> None:
    """Raw, REP, raked and MRP means per LLM, ranks and rank correlations.

    Writes, per country (default: those with RUN/poststrat_<c>.csv), RUN/compare_<c>.csv,
    _ranks.csv, .tex (booktabs), .md, and the weighting diagnostics
    compare_<c>_weights.json / _balance.csv. MRP from a fit that failed its convergence
    gate is marked (column mrp_converged, and in the captions).
    """
    from prism_stats.comparators import ComparatorError, write_country_comparison
    from prism_stats.weights import WeightingError

    n = merge_alias(replicates, n_boot, "--replicates", "--n-boot") or 500
    trim = _parse_bounds(bounds)
    meta = load_run_meta(run)  # the posterior itself is not needed here
    check_output(run, "RUN")
    run = Path(run)
    countries = flatten(country) or [c for c in ("uk", "us") if (run / f"poststrat_{c}.csv").is_file()]
    if not countries:
        usage_error(f"{run} has no poststrat_<country>.csv: run `prism-stats poststratify {run}` first")
    tables = {}
    for c in countries:
        path = run / f"poststrat_{c}.csv"
        if not path.is_file():
            usage_error(f"{path} not found: run `prism-stats poststratify {run} --country {c}` first")
        tables[c] = _poststrat_table(path)
    prism = run_data(meta, data)
    written: list[Path] = []
    with output_folder(run, "RUN") as folder:
        for c in countries:
            bar = callback_progress(3 * n, enabled=progress and se is StandardError.bootstrap,
                                    label=f"bootstrap {c.upper()}")
            with bar as tick:
                try:
                    comparison, _, paths = write_country_comparison(
                        prism, c, tables[c], out=folder, harmonisation=harmonisation.value, bounds=trim,
                        se=se.value, replicates=n, seed=seed,
                        progress=None if tick is None else (lambda done, total, tick=tick: tick(done)))
                except (WeightingError, ComparatorError) as err:
                    abort(f"{c.upper()}: {err}")
            typer.echo(comparison.to_markdown())
            written += paths
    for p in written:
        typer.echo(f"wrote {p}")
