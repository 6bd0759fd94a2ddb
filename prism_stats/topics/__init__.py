"""Dialogue diversity: what people talk about and who talks about what (SPEC §3.2-3.3).

The modules, in the order the data flow through them:

- :mod:`~prism_stats.topics.assignments` -- the conversation -> topic table
  (:class:`TopicAssignments`) and reading a user's table (:func:`read_assignments`);
- :mod:`~prism_stats.topics.embeddings` -- prompt embeddings: TF-IDF + SVD (default,
  offline) or a local sentence-transformer;
- :mod:`~prism_stats.topics.discovery` -- UMAP + HDBSCAN + c-TF-IDF labels
  (:func:`discover_topics`);
- :mod:`~prism_stats.topics.design` -- conversations with their author's factors and the
  study's reference levels (:func:`topic_design`);
- :mod:`~prism_stats.topics.regressions` -- the study's linear probability models with HC1
  and participant-clustered SEs (:func:`topic_regressions`);
- :mod:`~prism_stats.topics.hierarchical` -- the hierarchical multinomial model with
  pooled effects and participant random effects (:func:`fit_topic_model`);
- :mod:`~prism_stats.topics.neighbourhoods` -- near-duplicate neighbourhoods and the
  adjusted entropy of their authors (:func:`neighbourhood_analysis`);
- :mod:`~prism_stats.topics.analysis` -- all of it on a release, with the truth of a
  synthetic one (:func:`run_topic_analysis`), and the result folder.

Tables and figures of the supplement are built by :mod:`prism_stats.report.topics`.
"""

from __future__ import annotations

from .analysis import TopicAnalysis, compare_with_truth, prevalence, run_topic_analysis
from .assignments import (
    OUTLIER,
    TopicAssignments,
    TopicError,
    assignments_from_frame,
    read_assignments,
    read_topic_labels,
)
from .design import FACTORS, TopicDesign, topic_design
from .discovery import discover_topics, scaled_min_cluster_size
from .embeddings import METHODS, Embeddings, embed
from .hierarchical import TopicModelResult, compare_with_lpm, fit_topic_model
from .neighbourhoods import NeighbourhoodResult, neighbourhood_analysis
from .regressions import LPMResult, topic_regressions

__all__ = [
    "FACTORS",
    "METHODS",
    "OUTLIER",
    "Embeddings",
    "LPMResult",
    "NeighbourhoodResult",
    "TopicAnalysis",
    "TopicAssignments",
    "TopicDesign",
    "TopicError",
    "TopicModelResult",
    "assignments_from_frame",
    "compare_with_lpm",
    "compare_with_truth",
    "discover_topics",
    "embed",
    "fit_topic_model",
    "neighbourhood_analysis",
    "prevalence",
    "read_assignments",
    "read_topic_labels",
    "run_topic_analysis",
    "scaled_min_cluster_size",
    "topic_design",
    "topic_regressions",
]
