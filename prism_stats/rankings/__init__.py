"""Preference diversity: who prefers which LLM.

The study's rankings reproduced from the opening-turn battles (win rates, Elo, MLE-Elo,
Bradley-Terry, Rank Centrality with its normalisation quirk and corrected, participant
bootstrap), for every subgroup the study used; model-based rank distributions from the
hierarchical choice and rating models (post-stratified to the UK and US census); stated
versus revealed preferences; and how raters use the score scale.

Modules, in the order data flows through them:

``battles``      battles and pair-count tables (win rates, win counts)
``elo``          online Elo, MLE-Elo (as the original), unpenalised Bradley-Terry
``centrality``   Rank Centrality, original and corrected normalisation
``bootstrap``    every classical method on one set of battles, participant bootstrap
``groups``       subgroups (the study's groupings or the user's) and their rankings
``model_based``  rank distributions from the choice and rating models; agreement table
``stated``       stated vs revealed preferences: correlations and clustering
``stated_model`` the hierarchical model of the opening score on attribute ratings
``score_use``    per-rater z-scores, expressivity, centrality, disagreement on identical texts
``analysis``     the four entry points (classical, model-based, stated, score use)
``tables`` / ``plots`` / ``outputs``  supplement tables, figures and writing them
"""

from __future__ import annotations

from .battles import (
    RankingError,
    average_win_rate,
    battles,
    outcome_shares,
    pair_counts,
    raw_win_totals,
    win_counts,
    win_rate_matrix,
)
from .bootstrap import METHODS, bootstrap_ratings, point_ratings, summarise_bootstrap
from .centrality import compare_normalisations, rank_centrality
from .elo import bradley_terry, mle_elo, online_elo

__all__ = [
    "METHODS",
    "RankingError",
    "average_win_rate",
    "battles",
    "bootstrap_ratings",
    "bradley_terry",
    "compare_normalisations",
    "mle_elo",
    "online_elo",
    "outcome_shares",
    "pair_counts",
    "point_ratings",
    "rank_centrality",
    "raw_win_totals",
    "summarise_bootstrap",
    "win_counts",
    "win_rate_matrix",
]
