"""The command line's vocabulary: one option name and one type per concept, shared by every command.

``--data`` (a release folder, always an option; the old positional spelling still works,
hidden), ``--model`` (a spec name or TOML path), ``--out`` (where results go), ``--country``
(a comma-separated list; ``UK``/``uk``/``GB``/``GBR`` alike), ``--seed``; options with a
fixed set of values are enums (``--help`` lists the values; anything else is a usage
error, exit 2). Comma-separated lists of fixed values (``--rule mean,veto``) are checked
by :func:`choice_list` parsers. The enums mirror the package's vocabularies
(``prism_stats.census.HARMONISATIONS``, ``prism_stats.welfare.RULES``, ...); a test checks
that they agree, so that ``prism-stats --help`` need not import the analysis layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..vocab import COUNTRIES_MRP, mrp_country

#: Exit codes of every command (also the ``--help`` epilog and the README).
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES_EPILOG = (
    "Exit codes:\n\n\b\n"
    "  0    success\n"
    "  1    runtime error: invalid or damaged input (data, run folder), a failed\n"
    "       computation, an output that could not be written, a locked folder\n"
    "  2    usage error: unknown or bad option value, a file or folder named on the\n"
    "       command line that is missing or unusable\n"
    "  3    failed convergence gate (fit/diagnose --strict; run stops before MRP)\n"
    "  130  interrupted (Ctrl-C or SIGTERM); nothing half-written is left behind"
)


# --- fixed sets of values ----------------------------------------------------------------------


class Sampler(str, Enum):
    """MCMC sampler (``prism_stats.model.fit.SAMPLERS``)."""

    nutpie = "nutpie"
    pymc = "pymc"


class Harmonisation(str, Enum):
    """Census harmonisation (``prism_stats.census.HARMONISATIONS``)."""

    default = "default"
    original = "original"


class WeightMethod(str, Enum):
    """Design-based weighting method (``prism_stats.weights``)."""

    rake = "rake"
    poststratify = "poststratify"


class StandardError(str, Enum):
    """Standard errors of the design-based means (``prism_stats.weights``)."""

    linearisation = "linearisation"
    bootstrap = "bootstrap"
    none = "none"


class Exposure(str, Enum):
    """Which LLMs a simulated juror rates (``prism_stats.welfare.EXPOSURES``)."""

    full = "full"
    matched = "matched"


class Scenario(str, Enum):
    """Departures of the synthetic world from the rating model
    (``prism_stats.synth.SCENARIOS``; a test keeps the two lists equal)."""

    model = "model"
    country = "country"
    country_mild = "country_mild"
    scale_use = "scale_use"
    nonadditive = "nonadditive"
    skewed = "skewed"
    all = "all"


class AttributeSet(str, Enum):
    """Attribute ratings of the stated-vs-revealed model."""

    performance = "performance"
    choice = "choice"


class Turn(str, Enum):
    """Ratings used by the regressions: the opening turn or all turns."""

    opening = "0"
    all = "all"


class Embeddings(str, Enum):
    """Prompt embeddings of the topic discovery (``prism_stats.topics.METHODS``)."""

    tfidf = "tfidf"
    sentence_transformers = "sentence-transformers"


class Correction(str, Enum):
    """Multiple-testing correction of the topic regressions."""

    holm = "holm"
    bh = "bh"
    bonferroni = "bonferroni"
    none = "none"


RULES = ("mean", "chosen", "veto")  # prism_stats.welfare.RULES
POOLS = ("representative", "male", "white", "over45")  # prism_stats.welfare.POOLS
TARGETS = ("all", "nonmale", "nonwhite", "under45")  # prism_stats.welfare.TARGETS
FIGURE_FORMATS = ("png", "pdf", "svg")
REGRESSIONS = ("response_features", "demographics")


# --- list parsers --------------------------------------------------------------------------------


def _items(text: str) -> list[str]:
    items = [v.strip() for v in str(text).split(",")]
    if not any(items):
        raise typer.BadParameter("no value given")
    if any(not v for v in items):
        raise typer.BadParameter(f"empty item in {text!r}")
    return items


def parse_countries(text: str) -> list[str]:
    """``"UK,us"`` -> ``["uk", "us"]`` (any accepted spelling; duplicates dropped)."""
    out: list[str] = []
    for item in _items(text):
        try:
            code = mrp_country(item)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if code not in out:
            out.append(code)
    return out


def choice_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A parser of comma-separated values from *choices* (case-insensitive, de-duplicated)."""

    def parse(text: str) -> list[str]:
        out: list[str] = []
        for item in _items(text):
            value = item.lower()
            if value not in choices:
                raise typer.BadParameter(f"unknown value {item!r}; choose from {', '.join(choices)}")
            if value not in out:
                out.append(value)
        return out

    parse.__name__ = "choice_list"
    return parse


def positive_int_list(text: str) -> list[int]:
    """``"10,20"`` -> ``[10, 20]``; every value an integer >= 1."""
    out: list[int] = []
    for item in _items(text):
        try:
            value = int(item)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not an integer") from None
        if value < 1:
            raise typer.BadParameter(f"{value} must be >= 1")
        if value not in out:
            out.append(value)
    return out


def flatten(values: Sequence[Any] | None) -> list[Any] | None:
    """Merge a repeatable list option whose values are lists (``--rule a --rule b,c``)."""
    if values is None:
        return None
    out: list[Any] = []
    for v in values:
        for item in (v if isinstance(v, list) else [v]):
            if item not in out:
                out.append(item)
    return out or None


def merge_alias(new: Any, old: Any, new_name: str, old_name: str) -> Any:
    """The value of an option given under its current or its deprecated name.

    Giving both with different values is a usage error; the old name prints a note.
    """
    if old is None:
        return new
    if new is not None and new != old:
        raise typer.BadParameter(f"{old_name} is the old name of {new_name}; give one of them",
                                 param_hint=old_name)
    typer.echo(f"note: {old_name} is deprecated; use {new_name}", err=True)
    return old


# --- the shared options --------------------------------------------------------------------------

COUNTRY_METAVAR = "uk|us[,...]"
CountryList = Annotated[
    list[str] | None,
    typer.Option("--country", "-c", parser=parse_countries, metavar=COUNTRY_METAVAR,
                 help="Countries, comma-separated or repeated: uk, us (UK, GB, GBR, USA accepted).",
                 show_default=False),
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="PRISM release folder (survey/conversations/utterances .jsonl[.gz]).",
                 show_default=False),
]
LegacyDataArg = Annotated[
    Path | None,
    typer.Argument(hidden=True, metavar="DATA", help="Old spelling of --data.", show_default=False),
]
RunArg = Annotated[Path, typer.Argument(help="Run folder (written by `prism-stats fit` or `run`).",
                                        show_default=False)]
ModelOpt = Annotated[str, typer.Option("--model", "-m", metavar="SPEC", help="Model spec: a name in models/ or a TOML path.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same numbers).")]
SamplerOpt = Annotated[Sampler | None, typer.Option("--sampler", help="MCMC sampler (default: the spec's, nutpie).",
                                                    show_default=False)]
ChainsOpt = Annotated[int | None, typer.Option("--chains", min=1, help="Chains (default: the spec's).",
                                               show_default=False)]
DrawsOpt = Annotated[int | None, typer.Option("--draws", min=1, help="Posterior draws per chain.",
                                              show_default=False)]
TuneOpt = Annotated[int | None, typer.Option("--tune", min=1, help="Tuning steps per chain.",
                                             show_default=False)]
HarmonisationOpt = Annotated[Harmonisation, typer.Option("--harmonisation", help="Census harmonisation.")]
LenientOpt = Annotated[bool, typer.Option(
    "--lenient", help="Exclude invalid rows (and their dependants) instead of failing; the "
    "exclusion report is printed.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
FormatsOpt = Annotated[list[str] | None, typer.Option(
    "--formats", parser=choice_list(FIGURE_FORMATS), metavar="png|pdf|svg[,...]",
    help="Figure formats, comma-separated (default png,pdf).", show_default=False)]
DpiOpt = Annotated[int, typer.Option("--dpi", min=50, help="Resolution of the PNG figures.")]
RuleOpt = Annotated[list[str] | None, typer.Option(
    "--rule", "-r", parser=choice_list(RULES), metavar="mean|chosen|veto[,...]",
    help="Jury choice rules, comma-separated or repeated (default: all).", show_default=False)]
PoolsOpt = Annotated[list[str] | None, typer.Option(
    "--pools", parser=choice_list(POOLS), metavar="representative|male|white|over45[,...]",
    help="Rater pools (default: all four).", show_default=False)]
SizesOpt = Annotated[list[int] | None, typer.Option(
    "--sizes", parser=positive_int_list, metavar="N[,...]",
    help="Representative jury sizes (default 10,20,50,100).", show_default=False)]
SkewedSizesOpt = Annotated[list[int] | None, typer.Option(
    "--skewed-sizes", parser=positive_int_list, metavar="N[,...]",
    help="Jury sizes of the skewed pools (default 100).", show_default=False)]


def data_folder(option: Path | None, legacy: Path | None, *, required: bool = True) -> Path | None:
    """The release folder from ``--data`` or the old positional spelling."""
    if option is not None and legacy is not None and Path(option) != Path(legacy):
        raise typer.BadParameter(f"the data folder is given twice ({legacy} and --data {option})",
                                 param_hint="--data")
    folder = option if option is not None else legacy
    if folder is None and required:
        raise typer.BadParameter("missing: the PRISM release folder", param_hint="--data")
    return folder


def default_countries(values: Sequence[Any] | None) -> list[str]:
    """``--country`` values, or both MRP countries when none is given."""
    return flatten(values) or list(COUNTRIES_MRP)
