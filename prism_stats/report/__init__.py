"""Supplementary materials: the tables, the figures, and the bundle with its index and manifest.

Tables are written as CSV, LaTeX booktabs and Markdown; figures as PNG and PDF at fixed
sizes.

- :mod:`~prism_stats.report.tables` -- the builders of every supplement table (the
  :class:`Table` type, its writers and structural checkers are :mod:`prism_stats.tabular`;
  the comparison tables come from :mod:`prism_stats.comparators`);
- :mod:`~prism_stats.report.figures` -- the heatmap, raking-balance and recovery
  figures (the demo's truth; the recovery benchmark per scenario) and the data check
  :func:`figure_data_problems` (figures are written by :func:`save_figure`,
  :mod:`prism_stats._io`);
- :mod:`~prism_stats.report.sources` -- where the inputs are (:func:`locate`);
  :mod:`~prism_stats.report.contents` -- which tables and figures can be made
  (:func:`supplement_contents`);
- :mod:`~prism_stats.report.supplement` -- :func:`build_supplement`, which writes the
  whole bundle from a pipeline or run folder (``prism-stats supplement RUN --out DIR``).
"""

from __future__ import annotations

from .._io import save_figure
from ..comparators import comparison_tables
from ..tabular import Table, latex_escape, latex_problems, markdown_problems
from .contents import FigureEntry, read_scenario_recovery, supplement_contents
from .figures import (
    figure_data_problems,
    plot_raking_balance,
    plot_recovery,
    plot_scenario_recovery,
    plot_subgroup_heatmap,
)
from .sources import SupplementError, locate
from .supplement import SupplementResult, build_supplement
from .tables import (
    balance_table,
    crosscheck_table,
    descriptives_tables,
    diagnostics_table,
    effect_summaries,
    llm_demographic_tables,
    mrp_llm_table,
    mrp_subgroup_table,
    recovery_table,
    scenario_recovery_table,
    welfare_exposure_table,
    welfare_gaps_table,
    welfare_table,
)

__all__ = [
    "FigureEntry",
    "SupplementError",
    "SupplementResult",
    "Table",
    "balance_table",
    "build_supplement",
    "comparison_tables",
    "crosscheck_table",
    "descriptives_tables",
    "diagnostics_table",
    "effect_summaries",
    "figure_data_problems",
    "latex_escape",
    "latex_problems",
    "llm_demographic_tables",
    "locate",
    "markdown_problems",
    "mrp_llm_table",
    "mrp_subgroup_table",
    "plot_raking_balance",
    "plot_recovery",
    "plot_scenario_recovery",
    "plot_subgroup_heatmap",
    "read_scenario_recovery",
    "recovery_table",
    "save_figure",
    "scenario_recovery_table",
    "supplement_contents",
    "welfare_exposure_table",
    "welfare_gaps_table",
    "welfare_table",
]
