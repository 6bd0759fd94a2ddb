"""The whole dialogue-diversity analysis of a release, and its result folder.

:func:`run_topic_analysis` chains the steps -- topics (discovered, or read from the
user's table), the study's regressions, the hierarchical model, the neighbourhoods and
topic prevalence by group -- reporting each step to a progress callback, and compares
the results with the synthetic truth when the release has one (``truth/topics.csv``).
:meth:`TopicAnalysis.save` writes the result folder::

    assignments.csv          conversation, topic, topic_label
    topics.csv               topic, topic_label, size, share, top_terms
    prevalence.csv           factor, level, topic, topic_label, conversations, share
    lpm.csv                  the regressions: coefficients, HC1 and clustered SEs, p-values
    lpm_fits.csv lpm_counts.csv lpm_se_ratios.csv
    model_effects.csv        hierarchical model: effects (pp), 90% intervals, P(direction)
    model_scales.csv model_disagreements.csv model_posterior.nc
    neighbourhoods.csv neighbourhood_entropy.csv neighbourhood_summary.csv
    truth_comparison.json    synthetic releases only: ARI, effect recovery
    topics.json              settings, counts, timings
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_path, write_json_atomic, write_text_atomic
from .assignments import OUTLIER, TopicAssignments, TopicError, read_assignments
from .design import TopicDesign, topic_design
from .discovery import discover_topics
from .embeddings import embed
from .hierarchical import TopicModelResult, compare_with_lpm, fit_topic_model
from .neighbourhoods import NeighbourhoodResult, neighbourhood_analysis
from .regressions import LPMResult, topic_regressions

# Heavy libraries are imported inside the functions that use them, so that importing
# prism_stats.topics (e.g. for the CLI's --help) does not load them.

Progress = Callable[[str], None]


def prevalence(design: TopicDesign) -> pd.DataFrame:
    """Share of each group's conversations about each topic (outliers included).

    Columns ``factor``, ``level``, ``topic``, ``topic_label``, ``conversations`` (of the
    group), ``share`` (0-1); groups are the levels of every factor, plus ``all``.
    """
    frame = design.frame
    rows = []
    groups = [("all", "all", np.ones(len(frame), dtype=bool))]
    for f in design.references:
        for lv in sorted(frame[f].unique(), key=lambda x: (x != design.references[f], x)):
            groups.append((f, lv, (frame[f] == lv).to_numpy()))
    topics = [OUTLIER, *design.topics] if (frame["topic"] == OUTLIER).any() else design.topics
    for f, lv, mask in groups:
        sub = frame.loc[mask, "topic"].value_counts()
        n = int(mask.sum())
        for t in topics:
            rows.append({"factor": f, "level": lv, "topic": t,
                         "topic_label": design.labels.get(t, str(t)), "conversations": n,
                         "share": int(sub.get(t, 0)) / n if n else np.nan})
    return pd.DataFrame(rows)


@dataclass
class TopicAnalysis:
    """Everything :func:`run_topic_analysis` produced (see the module docstring)."""

    assignments: TopicAssignments
    design: TopicDesign
    prevalence: pd.DataFrame
    lpm: LPMResult
    model: TopicModelResult | None = None
    disagreements: pd.DataFrame | None = None
    neighbourhoods: NeighbourhoodResult | None = None
    truth: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Settings, counts and timings (``topics.json``)."""
        out = {"settings": self.settings, "assignments": self.assignments.summary(),
               "topic_settings": self.assignments.settings,
               "regressions": {"correction": self.lpm.correction, "alpha": self.lpm.alpha,
                               "tests": self.lpm.notes.get("tests"),
                               "participants": self.lpm.n_participants,
                               "dropped_levels": self.design.dropped},
               "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}
        if self.model is not None:
            out["model"] = {**self.model.settings, "diagnostics": self.model.diagnostics}
        if self.neighbourhoods is not None:
            out["neighbourhoods"] = self.neighbourhoods.settings
        if self.truth is not None:
            out["truth"] = self.truth
        return out

    def save(self, folder: str | Path) -> list[Path]:
        """Write the result folder (every file atomically); returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)

        def csv(name: str, frame: pd.DataFrame) -> Path:
            return write_text_atomic(folder / name, frame.to_csv(index=False))

        paths = [csv("assignments.csv", self.assignments.table),
                 csv("topics.csv", self.assignments.topics),
                 csv("prevalence.csv", self.prevalence),
                 csv("lpm.csv", self.lpm.coefficients), csv("lpm_fits.csv", self.lpm.fits),
                 csv("lpm_counts.csv", self.lpm.counts()),
                 csv("lpm_se_ratios.csv", self.lpm.se_ratios())]
        if self.model is not None:
            paths += [csv("model_effects.csv", self.model.effects),
                      csv("model_scales.csv", self.model.scales)]
            if self.disagreements is not None:
                paths.append(csv("model_disagreements.csv", self.disagreements))
            with atomic_path(folder / "model_posterior.nc") as tmp:
                self.model.posterior.to_netcdf(tmp, engine="h5netcdf")
            paths.append(folder / "model_posterior.nc")
        if self.neighbourhoods is not None:
            nb = self.neighbourhoods
            paths += [csv("neighbourhoods.csv", nb.members),
                      csv("neighbourhood_entropy.csv", nb.entropy),
                      csv("neighbourhood_summary.csv", nb.summary)]
        if self.truth is not None:
            paths.append(write_json_atomic(folder / "truth_comparison.json", self.truth))
        paths.append(write_json_atomic(folder / "topics.json", self.summary()))
        return paths


def truth_folder(data) -> Path | None:
    """``<release>/truth`` when the release is synthetic and has planted topics."""
    folder = (getattr(data, "source", None) or {}).get("folder")
    path = Path(folder) / "truth" if folder else None
    return path if path is not None and (path / "topics.csv").is_file() else None


def compare_with_truth(analysis: TopicAnalysis, folder: str | Path) -> dict[str, Any]:
    """Discovery and effects against the planted topics of a synthetic release.

    Adjusted Rand index of the topics against the planted ones (the planted "no topic"
    class against the outliers' class: both are a class of their own); for the
    regressions and the model, how often the true average effect (pp) lies in the
    interval (the regressions' clustered 95%, the model's 90%) -- meaningful when the
    topics were read from the true assignments, reported either way.
    """
    from sklearn.metrics import adjusted_rand_score

    folder = Path(folder)
    planted = pd.read_csv(folder / "topics.csv", dtype={"conversation": str})
    mine = analysis.assignments.table.set_index("conversation")["topic"]
    common = planted[planted["conversation"].isin(mine.index)]
    out: dict[str, Any] = {"conversations": len(common),
                           "ari": float(adjusted_rand_score(common["topic"],
                                                            mine.loc[common["conversation"]]))}
    effects_path = folder / "topic_effects.csv"
    if not effects_path.is_file():
        return out
    truth = pd.read_csv(effects_path)
    by_name = {str(t): t for t in truth["topic"].unique()}
    labels = analysis.assignments.labels
    if not all(lab in by_name for t, lab in labels.items() if t != OUTLIER):
        out["effects"] = "topics are not the planted ones (labels differ); effect recovery skipped"
        return out
    truth = truth.rename(columns={"topic": "topic_label"})
    lpm = analysis.lpm.coefficients.merge(truth, on=["topic_label", "term"], how="inner")
    cover = (lpm["ci_low_cluster"] * 100 <= lpm["pp"]) & (lpm["pp"] <= lpm["ci_high_cluster"] * 100)
    out["lpm"] = {"pairs": len(lpm), "coverage_95_cluster": float(cover.mean()),
                  "rmse_pp": float(np.sqrt(((100 * lpm["coef"] - lpm["pp"]) ** 2).mean()))}
    if analysis.model is not None:
        m = analysis.model.effects.merge(truth, on=["topic_label", "term"], how="inner")
        inside = (m["q05"] <= m["pp"]) & (m["pp"] <= m["q95"])
        out["model"] = {"pairs": len(m), "coverage_90": float(inside.mean()),
                        "coverage_90_planted": float(inside[m["planted"]].mean())
                        if m["planted"].any() else None,
                        "rmse_pp": float(np.sqrt(((m["mean"] - m["pp"]) ** 2).mean()))}
    return out


def run_topic_analysis(data, *, embeddings: str = "tfidf", assignments: str | Path |
                       TopicAssignments | None = None, topic_labels: str | Path | None = None,
                       seed: int = 42, sentence_model: str | None = None,
                       min_cluster_size: int | None = None, correction: str | None = "holm",
                       alpha: float = 0.01, model: bool = True, chains: int = 2,
                       draws: int = 300, tune: int = 300, neighbourhoods: bool = True,
                       replicates: int = 1000, progress: Progress | None = None,
                       sampler_progress: bool = False) -> TopicAnalysis:
    """Run the dialogue-diversity analysis of *data* (a :class:`~prism_stats.data.PrismData`).

    Parameters
    ----------
    embeddings
        ``"tfidf"`` (default) or ``"sentence-transformers"`` (discovery and neighbourhoods).
    assignments
        A conversation -> topic file or :class:`TopicAssignments`: skip discovery.
    topic_labels
        With a file of *assignments*: the known topics (``topic``, ``topic_label``).
    seed
        Seed of discovery (UMAP, SVD), the sampler and the neighbourhood draws.
    sentence_model, min_cluster_size
        Discovery settings (:func:`~prism_stats.topics.discover_topics`).
    correction, alpha
        Multiple-testing correction and level of the regressions.
    model, chains, draws, tune
        Fit the hierarchical model, with these sampler settings.
    neighbourhoods, replicates
        Run the neighbourhood analysis, with this many random draws per size.
    progress
        Called with a message before each step.
    """
    from threadpoolctl import threadpool_limits

    # The fits here are many small BLAS calls: on a shared machine multithreaded BLAS only
    # spins (measured 30x slower regressions at load 6 on 2 cores); nutpie's chains and
    # UMAP (numba) manage their own threads.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(data, embeddings=embeddings, assignments=assignments,
                    topic_labels=topic_labels, seed=seed, sentence_model=sentence_model,
                    min_cluster_size=min_cluster_size, correction=correction, alpha=alpha,
                    model=model, chains=chains, draws=draws, tune=tune,
                    neighbourhoods=neighbourhoods, replicates=replicates, progress=progress,
                    sampler_progress=sampler_progress)


def _run(data, *, embeddings, assignments, topic_labels, seed, sentence_model, min_cluster_size,
         correction, alpha, model, chains, draws, tune, neighbourhoods, replicates, progress,
         sampler_progress) -> TopicAnalysis:
    say = progress or (lambda _msg: None)
    seconds: dict[str, float] = {}
    conv = data.conversations
    ids = conv["conversation"].astype(str).tolist()
    texts = conv["opening_prompt"].astype(str).tolist()
    t0 = time.perf_counter()
    if isinstance(assignments, TopicAssignments):
        topics = assignments
    elif assignments is not None:
        say(f"reading topic assignments from {assignments}")
        topics = read_assignments(assignments, ids, topics=topic_labels)
    else:
        topics = discover_topics(texts, ids, embeddings=embeddings, seed=seed,
                                 min_cluster_size=min_cluster_size, model=sentence_model,
                                 progress=say)
    seconds["topics"] = time.perf_counter() - t0
    say(f"{len(topics.topic_ids())} topics, {topics.summary()['outliers']:,} outliers; "
        "regressions (HC1 and clustered SEs)")
    t0 = time.perf_counter()
    design = topic_design(data, topics)
    lpm = topic_regressions(design, correction=correction, alpha=alpha)
    prev = prevalence(design)
    seconds["regressions"] = time.perf_counter() - t0
    result = TopicAnalysis(topics, design, prev, lpm, seconds=seconds, settings={
        "embeddings": embeddings if assignments is None else None, "seed": seed,
        "assignments": str(assignments) if isinstance(assignments, (str, Path)) else None,
        "correction": correction, "alpha": alpha})
    if model:
        say(f"hierarchical model ({chains} chains x {draws} draws, {tune} tuning)")
        t0 = time.perf_counter()
        result.model = fit_topic_model(design, chains=chains, draws=draws, tune=tune, seed=seed,
                                       progress=sampler_progress)
        result.disagreements = compare_with_lpm(result.model.effects, lpm)
        seconds["model"] = time.perf_counter() - t0
    if neighbourhoods:
        t0 = time.perf_counter()
        emb = topics.embeddings
        if emb is None or emb.method != embeddings:
            say(f"embedding {len(texts):,} prompts for the neighbourhoods ({embeddings})")
            emb = embed(texts, embeddings, seed=seed, model=sentence_model)
        say("near-duplicate neighbourhoods and adjusted entropy")
        result.neighbourhoods = neighbourhood_analysis(data, ids, emb.full, replicates=replicates,
                                                       seed=seed)
        seconds["neighbourhoods"] = time.perf_counter() - t0
    folder = truth_folder(data)
    if folder is not None:
        try:
            result.truth = compare_with_truth(result, folder)
        except (OSError, ValueError, KeyError) as exc:  # a damaged truth must not stop the analysis
            result.truth = {"error": f"{type(exc).__name__}: {exc}"}
    return result


__all__ = ["TopicAnalysis", "TopicError", "compare_with_truth", "prevalence",
           "run_topic_analysis", "truth_folder"]
