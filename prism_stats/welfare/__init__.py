"""Collective welfare: which LLM would a jury pick, and whom would it serve?

- :mod:`~prism_stats.welfare.juries` -- the design-based reproduction of the original
  study's jury analysis (rater pools, juries drawn with replacement, per-user mean
  tables, optional chained-equations imputation);
- :mod:`~prism_stats.welfare.results` -- the result schema shared with the
  model-based welfare analysis, summaries, exclusion gaps, FOSD and writing;
- :mod:`~prism_stats.welfare.plots` -- figures for either kind of result.
"""

from __future__ import annotations

from .juries import (
    IMPUTE_BOUNDS,
    UNSEEN_VALUE,
    VETO_THRESHOLD,
    JuryInputError,
    JuryTables,
    bayesian_ridge,
    iterative_impute,
    jury_scores,
    jury_tables,
    pick_best,
    population_welfare,
    run_juries,
)
from .model_based import chosen_probabilities, expected_gaps, model_welfare, pool_shares
from .plots import plot_exclusion_gaps, plot_welfare_distributions
from .results import (
    FOSD_COLUMNS,
    GAP_COLUMNS,
    JURY_SIZES,
    POOLS,
    REFERENCE_SCHEME,
    RULES,
    SAMPLE_DIMS,
    SKEWED_SIZE,
    SUMMARY_COLUMNS,
    TARGETS,
    WELFARE_UNITS,
    Scheme,
    WelfareResultError,
    build_schemes,
    chosen_llm_labels,
    default_reference,
    exclusion_gaps,
    fosd_dominates,
    fosd_table,
    read_welfare,
    scheme_coords,
    summarise_welfare,
    welfare_dataset,
    write_welfare,
)
from .truth import true_welfare

__all__ = [
    "FOSD_COLUMNS",
    "GAP_COLUMNS",
    "IMPUTE_BOUNDS",
    "JURY_SIZES",
    "POOLS",
    "REFERENCE_SCHEME",
    "RULES",
    "SAMPLE_DIMS",
    "SKEWED_SIZE",
    "SUMMARY_COLUMNS",
    "TARGETS",
    "UNSEEN_VALUE",
    "VETO_THRESHOLD",
    "WELFARE_UNITS",
    "JuryInputError",
    "JuryTables",
    "Scheme",
    "WelfareResultError",
    "bayesian_ridge",
    "build_schemes",
    "chosen_llm_labels",
    "chosen_probabilities",
    "default_reference",
    "exclusion_gaps",
    "expected_gaps",
    "fosd_dominates",
    "fosd_table",
    "iterative_impute",
    "jury_scores",
    "jury_tables",
    "model_welfare",
    "pick_best",
    "plot_exclusion_gaps",
    "plot_welfare_distributions",
    "pool_shares",
    "population_welfare",
    "read_welfare",
    "run_juries",
    "scheme_coords",
    "summarise_welfare",
    "true_welfare",
    "welfare_dataset",
    "write_welfare",
]
