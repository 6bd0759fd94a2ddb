"""CLI commands of the design-based comparators: ``rake`` and ``compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

# Each command imports what it needs inside its function: `prism-stats --help` starts in
# ~0.2 s instead of ~5 s (the model layer loads PyMC).

COUNTRY_HELP = "Country of the census frame: uk or us."


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _load_data(folder: Path):
    try:
        from prism_stats.data import load_prism
    except ImportError as err:  # the data layer is a separate module
        _fail(f"cannot import prism_stats.data.load_prism ({err})")
    return load_prism(folder)


def _parse_bounds(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        _fail(f"--bounds takes 'LO,HI' (e.g. 0.3,3), not {text!r}")
    return lo, hi


def register(app: typer.Typer) -> None:
    """Add this module's commands to *app*."""

    @app.command("rake")
    def rake_command(
        data: Annotated[Path, typer.Argument(help="Folder of the PRISM release files.")],
        country: Annotated[str, typer.Option("--country", "-c", help=COUNTRY_HELP)],
        out: Annotated[Path, typer.Option("--out", "-o", help="CSV of participant weights.")],
        margins: Annotated[
            str, typer.Option(help="Margins, comma-separated; '*' crosses (age*sex).")
        ] = "age,sex,ethnicity,age*sex",
        bounds: Annotated[
            str | None, typer.Option(help="Trimming bounds LO,HI relative to the mean weight.")
        ] = None,
        harmonisation: Annotated[str, typer.Option(help="Census harmonisation.")] = "default",
        method: Annotated[str, typer.Option(help="rake or poststratify.")] = "rake",
    ) -> None:
        """Weight a country's resident participants to its census margins."""
        from prism_stats._io import write_json_atomic, write_text_atomic
        from prism_stats.weights import WeightingError, parse_margins, participant_weights

        prism = _load_data(data)
        try:
            result = participant_weights(
                prism.participants,
                country,
                method=method,  # type: ignore[arg-type]
                margins=parse_margins(margins),
                harmonisation=harmonisation,
                bounds=_parse_bounds(bounds),
            )
        except WeightingError as err:
            _fail(str(err))
        write_text_atomic(out, result.weights.rename("weight").reset_index().to_csv(index=False))
        summary = result.summary() | {"data_hash": getattr(prism, "data_hash", None)}
        write_json_atomic(out.with_suffix(".json"), summary)
        write_text_atomic(
            out.with_name(out.stem + "_balance.csv"), result.balance.to_csv(index=False)
        )
        typer.echo(json.dumps(summary, indent=2, default=str))

    @app.command("compare")
    def compare_command(
        run: Annotated[
            Path, typer.Argument(help="Run folder (with run.json and poststrat_<country>.csv).")
        ],
        country: Annotated[str, typer.Option("--country", "-c", help=COUNTRY_HELP)],
        harmonisation: Annotated[
            str, typer.Option(help="Census harmonisation for raking.")
        ] = "default",
        bounds: Annotated[
            str | None, typer.Option(help="Trimming bounds LO,HI relative to the mean weight.")
        ] = None,
        se: Annotated[str, typer.Option(help="linearisation or bootstrap.")] = "linearisation",
        n_boot: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 500,
        seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 20240101,
    ) -> None:
        """Raw, REP, raked and MRP means per LLM, ranks and rank correlations.

        Writes RUN/compare_<country>.csv, _ranks.csv, .tex (booktabs), .md, and the
        weighting diagnostics compare_<country>_weights.json / _balance.csv.
        """
        import pandas as pd

        from prism_stats.comparators import ComparatorError, write_country_comparison
        from prism_stats.weights import WeightingError

        country = country.lower()
        if country not in ("uk", "us"):
            _fail(f"--country must be uk or us, not {country!r}")
        run_json = run / "run.json"
        if not run_json.is_file():
            _fail(f"{run_json} not found: is {run} a run folder?")
        try:
            meta = json.loads(run_json.read_text(encoding="utf-8"))
            data_folder = Path(meta["data"]["folder"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            _fail(f"{run_json}: no data.folder entry ({err})")
        poststrat_path = run / f"poststrat_{country}.csv"
        if not poststrat_path.is_file():
            _fail(f"{poststrat_path} not found: run the post-stratification stage first")
        poststrat = pd.read_csv(poststrat_path)
        prism = _load_data(data_folder)
        expected_hash = meta["data"].get("data_hash")
        actual_hash = getattr(prism, "data_hash", None)
        if expected_hash and actual_hash and expected_hash != actual_hash:
            _fail(
                f"the data in {data_folder} (hash {actual_hash[:12]}) are not the data the run "
                f"was fitted to (hash {expected_hash[:12]})"
            )
        try:
            comparison, _, paths = write_country_comparison(
                run, prism, country, poststrat, harmonisation=harmonisation,
                bounds=_parse_bounds(bounds), se=se, n_boot=n_boot, seed=seed)
        except (WeightingError, ComparatorError) as err:
            _fail(str(err))
        typer.echo(comparison.to_markdown())
        for p in paths:
            typer.echo(f"wrote {p}")
