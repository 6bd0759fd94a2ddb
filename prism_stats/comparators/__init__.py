"""Frequentist comparators of the MRP estimates: the original regressions and the comparison table.

Modules: :mod:`.features` (text features of responses), :mod:`.regressions` (OLS with
clustered SEs) and :mod:`.comparison` (the comparison table and its one writer).

* **Response-feature regressions** (after the original study's notebook 09, SPEC §3.9):
  OLS of the opening-turn score on features of the response text -- length, line
  breaks, enumeration, a final question mark, refusal, de-anthropomorphising and
  self-identification phrases -- now with participant-clustered standard errors (the
  original used non-robust OLS SEs although every participant rates many responses).
* **Demographic regressions**: the topic-free part of the original topic regressions
  (SPEC §3.2): score on gender, age, region, ethnicity, religion, LLM and conversation
  type, with participant-clustered SEs (the original's R code asked for clustering but
  got HC1; SPEC §5.6).
* **The comparison table**: per LLM, the raw mean of residents, the REP-sample mean,
  the raked mean (with a clustered SE, :mod:`prism_stats.weights`) and the MRP mean
  (with its interval), the rank of every LLM under each estimator and the Spearman and
  Kendall rank correlations between estimators; written as CSV, LaTeX (booktabs) and
  Markdown.

Clustered standard errors are statsmodels' cluster-robust sandwich with the usual
small-sample correction ``G/(G-1) (N-1)/(N-K)``; inference uses t with ``G - 1``
degrees of freedom.
"""

from __future__ import annotations

from .comparison import (
    ESTIMATORS,
    Comparison,
    comparison_table,
    comparison_tables,
    rank_correlations,
    write_country_comparison,
)
from .features import (
    DEANTHROPOMORPHISING_PHRASES,
    ENUMERATION_PATTERN,
    FEATURES,
    MODEL_NAMES,
    REFUSAL_PHRASES,
    SELF_IDENTIFICATION_PATTERN,
    response_features,
)
from .regressions import (
    DEMOGRAPHIC_FACTORS,
    ComparatorError,
    RegressionTable,
    demographic_regression,
    ols_clustered,
    response_feature_regression,
)

__all__ = [
    "DEANTHROPOMORPHISING_PHRASES",
    "DEMOGRAPHIC_FACTORS",
    "ENUMERATION_PATTERN",
    "ESTIMATORS",
    "FEATURES",
    "MODEL_NAMES",
    "REFUSAL_PHRASES",
    "SELF_IDENTIFICATION_PATTERN",
    "ComparatorError",
    "Comparison",
    "RegressionTable",
    "comparison_table",
    "comparison_tables",
    "demographic_regression",
    "ols_clustered",
    "rank_correlations",
    "response_feature_regression",
    "response_features",
    "write_country_comparison",
]
