"""prism-stats: whose preferences does an LLM serve?

Hierarchical Bayesian models of the PRISM alignment dataset (Kirk et al. 2024),
post-stratified to the UK and US census (MRP), and the collective-welfare analysis of
rater pools. See ARCHITECTURE.md for the flow data -> model -> post-stratification ->
welfare -> report.
"""

from __future__ import annotations

__version__ = "0.1.0"
