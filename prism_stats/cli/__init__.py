"""The ``prism-stats`` command line.

Each area of the package registers its commands from its own module here, so the CLI
mirrors the architecture: ``data``/``synth`` (data layer), ``fit``/``poststratify``/...
(model and MRP), ``welfare``/``juries``, ``rake``/``compare``, ``rankings``/``stated``/
``regressions`` (preference diversity), ``topics`` (dialogue diversity),
``run``/``demo``/``supplement`` (pipeline) and ``sbc``/``sweep`` (calibration and
sensitivity). One vocabulary and the exit codes are defined in
:mod:`prism_stats.cli._options`, the shared safety net in :mod:`prism_stats.cli._common`.

Help texts are printed as written (``rich_markup_mode=None``): rich markup would
swallow bracketed words such as ``[data] strict = false``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import data, model, pipeline, rankings, sweeps, synth, topics, weights, welfare
from ._common import SafeGroup, install_signal_handlers
from ._options import EXIT_CODES_EPILOG

app = typer.Typer(
    name="prism-stats",
    help="Whose preferences does an LLM serve? Models, MRP and welfare for PRISM.",
    epilog=EXIT_CODES_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=SafeGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prism-stats {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Whose preferences does an LLM serve? Models, MRP and welfare for PRISM."""
    install_signal_handlers()


for _module in (data, synth, model, welfare, weights, rankings, topics, pipeline, sweeps):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
