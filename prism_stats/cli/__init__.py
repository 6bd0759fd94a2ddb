"""The ``prism-stats`` command line.

Each area of the package registers its commands from its own module here, so the CLI
mirrors the architecture: ``data``/``synth`` (data layer), ``fit``/``poststratify``/...
(model and MRP), ``welfare``/``juries``, ``compare``, ``rankings``/``stated``/``regressions``
(preference diversity), ``topics`` (dialogue diversity), ``run``/``demo``/``supplement``
(pipeline) and ``sbc``/``sweep`` (calibration and sensitivity).
"""

from __future__ import annotations

import typer

from . import data, model, pipeline, rankings, sweeps, synth, topics, weights, welfare

app = typer.Typer(
    name="prism-stats",
    help="Whose preferences does an LLM serve? Models, MRP and welfare for PRISM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (data, synth, model, welfare, weights, rankings, topics, pipeline, sweeps):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
