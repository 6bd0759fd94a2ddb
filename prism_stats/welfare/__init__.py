"""Collective welfare: which LLM would a jury pick, and whom would it serve?

- :mod:`~prism_stats.welfare.juries` -- the design-based reproduction of the original
  study's jury analysis (rater pools, juries drawn with replacement), on the per-user
  mean tables of :mod:`~prism_stats.welfare.jury_tables`, optionally completed by the
  chained-equations imputation of :mod:`~prism_stats.welfare.imputation`;
- :mod:`~prism_stats.welfare.model_based` -- welfare from the fitted model's posterior,
  with full-information or exposure-matched juries (:mod:`~prism_stats.welfare.exposure`;
  compiled samplers in :mod:`~prism_stats.welfare.sampling`);
  :mod:`~prism_stats.welfare.truth` -- the synthetic generator's true welfare;
- :mod:`~prism_stats.welfare.results` -- the result schema shared by the analyses;
  :mod:`~prism_stats.welfare.summaries` -- summaries, exclusion gaps, FOSD and writing;
- :mod:`~prism_stats.welfare.plots` -- figures for either kind of result.
"""

from __future__ import annotations

from ..vocab import VETO_THRESHOLD
from .exposure import EXPOSURE_FOLDERS, EXPOSURES, exposure_profiles
from .imputation import IMPUTE_BOUNDS, bayesian_ridge, iterative_impute
from .juries import UNSEEN_VALUE, jury_scores, pick_best, population_welfare, run_juries
from .jury_tables import JuryInputError, JuryTables, jury_tables
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
    chosen_llm_codes,
    chosen_llm_labels,
    scheme_coords,
    welfare_dataset,
)
from .summaries import (
    default_reference,
    exclusion_gaps,
    fosd_dominates,
    fosd_table,
    mark_converged,
    read_welfare,
    summarise_welfare,
    write_welfare,
)
from .truth import true_welfare

__all__ = [
    "EXPOSURES",
    "EXPOSURE_FOLDERS",
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
    "chosen_llm_codes",
    "chosen_llm_labels",
    "chosen_probabilities",
    "default_reference",
    "exclusion_gaps",
    "expected_gaps",
    "exposure_profiles",
    "fosd_dominates",
    "fosd_table",
    "iterative_impute",
    "mark_converged",
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
