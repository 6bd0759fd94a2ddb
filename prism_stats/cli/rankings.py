"""CLI commands of the preference-diversity analysis: rankings, stated, regressions.

``rankings``: the study's rankings (battles, win rates, Elo, MLE-Elo, Bradley-Terry, Rank
Centrality in both normalisations, participant bootstrap) for the whole sample and every
subgroup, score use, and optionally the model-based rank distributions
(:mod:`prism_stats.rankings`). ``stated``: stated vs revealed preferences. ``regressions``:
the original study's response-feature OLS and the demographic regression
(:mod:`prism_stats.comparators`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import abort, check_output, load_data, load_run, output_folder, usage_error
from ._options import (
    EXIT_CODES_EPILOG,
    REGRESSIONS,
    AttributeSet,
    CountryList,
    DataOpt,
    DpiOpt,
    FormatsOpt,
    LegacyDataArg,
    LenientOpt,
    Turn,
    choice_list,
    data_folder,
    default_countries,
    flatten,
    merge_alias,
    parse_countries,
)


def register(app: typer.Typer) -> None:
    """Add the preference-diversity commands to *app*."""
    app.command("rankings", epilog=EXIT_CODES_EPILOG)(rankings_cmd)
    app.command("stated", epilog=EXIT_CODES_EPILOG)(stated_cmd)
    app.command("regressions", epilog=EXIT_CODES_EPILOG)(regressions_cmd)


OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (created).", show_default=False)]


def _list(value: str | None, option: str) -> list[str]:
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if any(not v for v in items):
        usage_error(f"{option}: empty item in {value!r}")
    return items


def _formats(values: list | None) -> list[str]:
    return flatten(values) or ["png", "pdf"]


def _prepare(data: Path | None, legacy: Path | None, out: Path | None) -> tuple[Path, Path]:
    """The release folder and the checked output folder (before any work)."""
    folder = data_folder(data, legacy)
    if out is None:
        usage_error("--out: no output folder given")
    return folder, check_output(out)


def _group_file(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        usage_error(f"--group-file: {path} does not exist")
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as exc:
        usage_error(f"--group-file: {path} cannot be read ({exc})")
    if not {"participant", "group"} <= set(table.columns):
        usage_error(f"--group-file: {path} needs columns 'participant' and 'group' (has {list(table.columns)})")
    if table["participant"].duplicated().any():
        dup = table.loc[table["participant"].duplicated(), "participant"].iloc[0]
        usage_error(f"--group-file: {path}: participant {dup!r} appears twice")
    return table.set_index("participant")["group"]


def _write_items(out: Path, formats: list[str], dpi: int) -> None:
    from ..rankings.outputs import write_supplement_items

    with output_folder(out) as dest:
        written, skipped = write_supplement_items(dest, formats=formats, dpi=dpi)
    typer.echo(f"{len(written)} table and figure files in {out / 'tables'} and {out / 'figures'}")
    for s in skipped:
        typer.echo(f"  not produced: {s}")


def rankings_cmd(
    legacy: LegacyDataArg = None,
    data: DataOpt = None,
    out: OutOpt = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Groupings, comma list: gender, age, ethnicity, religion, region, conversation_type, "
        "rep, or any participants column (default: all seven study groupings; 'none' for none).",
        show_default=False)] = None,
    group_file: Annotated[Path | None, typer.Option(
        "--group-file", help="CSV with columns participant,group: an extra grouping named after the file.",
        show_default=False)] = None,
    min_group_size: Annotated[int, typer.Option(
        "--min-group-size", min=1, help="Groups with fewer participants are reported as too small, not ranked.")] = 20,
    replicates: Annotated[int, typer.Option(
        "--replicates", min=0, help="Participant-bootstrap replicates per group (0: point estimates only).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstrap (and of the model summaries).")] = 0,
    choice: Annotated[bool, typer.Option(
        "--choice/--no-choice", help="Also fit the hierarchical choice model and add its rank distributions.")] = False,
    run: Annotated[Path | None, typer.Option(
        "--run", help="A fitted rating-model run folder: add its (post-stratified) rank distributions.",
        show_default=False)] = None,
    chains: Annotated[int, typer.Option("--chains", min=1, help="Choice model: chains.")] = 2,
    draws: Annotated[int, typer.Option("--draws", min=10, help="Choice model: draws per chain.")] = 500,
    tune: Annotated[int, typer.Option("--tune", min=10, help="Choice model: tuning steps per chain.")] = 500,
    country: CountryList = None,
    countries: Annotated[str | None, typer.Option("--countries", hidden=True)] = None,
    formats: FormatsOpt = None,
    dpi: DpiOpt = 150,
    lenient: LenientOpt = False,
) -> None:
    """Who prefers which LLM: the study's rankings for every subgroup, with bootstrap intervals."""
    from ..rankings import RankingError
    from ..rankings.analysis import classical_rankings, score_use
    from ..rankings.groups import STUDY_GROUPINGS
    from ..rankings.outputs import write_classical, write_score_use

    folder, out = _prepare(data, legacy, out)
    try:
        old_countries = None if countries is None else parse_countries(countries)
    except typer.BadParameter as exc:
        usage_error(f"--countries: {exc}")
    country_list = merge_alias(flatten(country), old_countries, "--country", "--countries") \
        or default_countries(None)
    specs: list[Any] = list(STUDY_GROUPINGS) if by is None else (
        [] if by.strip().lower() == "none" else _list(by, "--by"))
    names: list[str] = []
    if group_file is not None:
        specs.append(_group_file(group_file))
        names.append(group_file.stem)
    fmts = _formats(formats)
    rating_run = load_run(run) if run is not None else None
    prism = load_data(folder, strict=not lenient)
    with output_folder(out) as dest:  # locked from the start: a second writer fails at once
        try:
            result = classical_rankings(prism, by=specs, names=names, min_group_size=min_group_size,
                                        replicates=replicates, seed=seed)
        except RankingError as exc:  # an unknown or empty grouping of --by / --group-file
            usage_error(str(exc))
        written = write_classical(result, dest) + write_score_use(score_use(prism), dest)
        written += _model_part(prism, result, dest, choice=choice, rating_run=rating_run, specs=specs,
                               names=names, countries=country_list, min_group_size=min_group_size,
                               seed=seed, chains=chains, draws=draws, tune=tune)
    typer.echo(f"{len(written)} result files in {out}")
    _write_items(out, fmts, dpi)


def _model_part(prism: Any, result: Any, out: Path, *, choice: bool, rating_run: Any, specs: list,
                names: list, countries: list[str], min_group_size: int, seed: int, chains: int,
                draws: int, tune: int) -> list[Path]:
    """The model-based rank distributions (choice model and/or a rating run), when asked for."""
    from ..rankings import RankingError
    from ..rankings.analysis import model_rankings
    from ..rankings.outputs import write_model

    written: list[Path] = []
    s = result.summary
    typer.echo(f"{s['n_battles']:,} battles from {s['n_interactions']:,} openers "
               f"(a {s['share_a']:.1%}, b {s['share_b']:.1%}, tie {s['share_tie']:.1%})")
    small = result.subgroups.too_small()
    if len(small):
        typer.echo(f"{len(small)} group(s) below {min_group_size} participants (not ranked): " + ", ".join(
            f"{g}={v} ({n})" for g, v, n in zip(small["grouping"], small["group"], small["n_participants"],
                                                 strict=True)))
    choice_run = None
    if choice:
        from ..model.choice import fit_choice

        typer.echo(f"fitting the choice model ({chains} chains x {draws} draws) ...")
        from ..model.convergence import diagnose

        choice_run = fit_choice(prism, chains=chains, draws=draws, tune=tune, seed=seed,
                                progress=False, out=out / "choice")
        d = diagnose(choice_run.idata)
        typer.echo(f"choice model: max R-hat {d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f} "
                   f"(LLM effects {d.table.loc['llm_effect', 'min_ess_bulk']:.0f}), {d.divergences} divergence(s)")
    if choice_run is not None or rating_run is not None:
        try:
            model = model_rankings(prism, run=rating_run, choice_run=choice_run, by=specs, names=names,
                                   classical=result, countries=countries,
                                   min_group_size=min_group_size, seed=seed)
        except RankingError as exc:
            abort(str(exc))
        written += write_model(model, out)
        for note in model.notes:
            typer.echo(f"  note: {note}")
    return written


def stated_cmd(
    legacy: LegacyDataArg = None,
    data: DataOpt = None,
    out: OutOpt = None,
    attributes: Annotated[AttributeSet, typer.Option(
        "--attributes", help="Attribute ratings the score is modelled on.")] = AttributeSet.performance,
    fit: Annotated[bool, typer.Option("--fit/--no-fit", help="Fit the hierarchical model (else correlations only).")] = True,
    chains: Annotated[int, typer.Option("--chains", min=1, help="Chains.")] = 2,
    draws: Annotated[int, typer.Option("--draws", min=10, help="Draws per chain.")] = 500,
    tune: Annotated[int, typer.Option("--tune", min=10, help="Tuning steps per chain.")] = 500,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 20240422,
    formats: FormatsOpt = None,
    dpi: DpiOpt = 150,
    lenient: LenientOpt = False,
) -> None:
    """Stated vs revealed preferences: attribute correlations (clustered) and the hierarchical model."""
    from ..rankings import RankingError
    from ..rankings.analysis import stated_analysis
    from ..rankings.outputs import write_stated

    folder, out = _prepare(data, legacy, out)
    fmts = _formats(formats)
    prism = load_data(folder, strict=not lenient)
    with output_folder(out) as dest:
        try:
            result = stated_analysis(prism, fit=fit, attribute_set=attributes.value, chains=chains,
                                     draws=draws, tune=tune, seed=seed)
        except RankingError as exc:
            abort(str(exc))
        written = write_stated(result, dest)
    if result.fit is not None:
        d = result.fit.meta["diagnostics"]
        typer.echo(f"{result.fit.meta['n_conversations']:,} conversations; max R-hat {d['max_rhat']:.3f}, "
                   f"min bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergence(s)")
        for row in result.fit.summary().itertuples():
            typer.echo(f"  {row.attribute:12s} b1 {row.dependence_mean:+.2f} "
                       f"[{row.dependence_lo:+.2f}, {row.dependence_hi:+.2f}]  P(>0) {row.p_positive:.2f}")
    typer.echo(f"{len(written)} result files in {out}")
    _write_items(out, fmts, dpi)


def regressions_cmd(
    legacy: LegacyDataArg = None,
    data: DataOpt = None,
    out: OutOpt = None,
    which: Annotated[list[str] | None, typer.Option(
        "--which", parser=choice_list(REGRESSIONS), metavar="response_features|demographics[,...]",
        help="Regressions (default: both).", show_default=False)] = None,
    turn: Annotated[Turn, typer.Option("--turn", help="Ratings used: 0 (opening turn) or all.")] = Turn.opening,
    llms: Annotated[str | None, typer.Option(
        "--llms", help="Response features: restrict to these LLMs (comma list).", show_default=False)] = None,
    trim: Annotated[float | None, typer.Option(
        "--trim", min=0.5, max=1.0, help="Response features: drop responses at or above this length quantile "
        "(the original's H2-4 models: 0.95).", show_default=False)] = None,
    lenient: LenientOpt = False,
) -> None:
    """The original study's regressions with participant-clustered SEs: response features, demographics."""
    from .. import vocab
    from ..comparators import ComparatorError, demographic_regression, response_feature_regression
    from ..rankings.outputs import write_regression

    folder, out = _prepare(data, legacy, out)
    chosen = flatten(which) or list(REGRESSIONS)
    llm_list = _list(llms, "--llms") if llms else None
    if llm_list and any(m not in vocab.LLM_SHORT_NAMES for m in llm_list):
        usage_error(f"--llms: unknown LLM(s) {[m for m in llm_list if m not in vocab.LLM_SHORT_NAMES]}")
    prism = load_data(folder, strict=not lenient)
    t = 0 if turn is Turn.opening else None
    written = []
    with output_folder(out) as dest:
        try:
            if "response_features" in chosen:
                table = response_feature_regression(prism, turn=t, llms=llm_list, max_length_quantile=trim)
                written += write_regression(table, dest, "response_features")
                typer.echo(table.to_markdown())
            if "demographics" in chosen:
                table = demographic_regression(prism, turn=t)
                written += write_regression(table, dest, "demographics")
                typer.echo(f"demographic regression: N = {table.n_obs:,}, R² = {table.r2:.3f}")
        except ComparatorError as exc:
            abort(str(exc))
    typer.echo(f"{len(written)} files in {out}")
