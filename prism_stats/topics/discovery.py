"""Topic discovery: the study's clustering of opening prompts, with pluggable embeddings.

The study's pipeline (SPEC §3.2): embed the opening prompts, reduce with UMAP (20
dimensions, cosine metric, ``min_dist`` 0, 15 neighbours, seeded; see below for the
start layout), cluster with HDBSCAN
(minimum cluster size 80 at 8,011 prompts, Euclidean, excess-of-mass selection) and
describe every cluster by its class-based TF-IDF (c-TF-IDF) top 1-2-gram terms. HDBSCAN's
noise points are the outliers' class ``-1``, kept as a class of its own.

Scaling the minimum cluster size
    80 was chosen for 8,011 prompts, i.e. a topic must hold at least 1% of them. For a
    release of ``n`` prompts the default keeps that share: ``round(80 * n / 8011)``, but
    never below 10 (HDBSCAN's density estimates are unstable below that); pass
    ``min_cluster_size`` to override.

One deliberate difference: UMAP starts from a random layout (``init="random"``, seeded),
not its default spectral layout. The spectral layout solves an eigenproblem that is
ill-conditioned when the neighbour graph has near-disconnected parts (it does on prompts);
its eigenvectors then change with the last bits of the BLAS arithmetic, and the same seed
gave different topics in two calls of one process. The random start is reproducible
(and matched the spectral start's adjusted Rand index on the synthetic topics).

Libraries: UMAP from ``umap-learn``, HDBSCAN from scikit-learn (``sklearn.cluster.HDBSCAN``,
the maintained port of the ``hdbscan`` package), vectorisers from scikit-learn.
Same texts and seed -> same topics (UMAP runs single-threaded when seeded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .assignments import OUTLIER, OUTLIER_LABEL, TopicAssignments, TopicError, topic_table
from .embeddings import Embeddings, embed

# Heavy libraries are imported inside the functions that use them, so that importing
# prism_stats.topics (e.g. for the CLI's --help) does not load them.

#: The study's settings (SPEC §3.2).
UMAP_SETTINGS: dict[str, Any] = {"n_components": 20, "metric": "cosine", "min_dist": 0.0,
                                 "n_neighbors": 15, "init": "random"}
STUDY_MIN_CLUSTER_SIZE = 80
STUDY_PROMPTS = 8011
MIN_CLUSTER_SIZE_FLOOR = 10
TOP_TERMS = 10
LABEL_TERMS = 3

Progress = Callable[[str], None]


def scaled_min_cluster_size(n_prompts: int) -> int:
    """HDBSCAN's minimum cluster size for *n_prompts* (see the module docstring)."""
    return max(MIN_CLUSTER_SIZE_FLOOR,
               round(STUDY_MIN_CLUSTER_SIZE * n_prompts / STUDY_PROMPTS))


def reduce_umap(vectors: np.ndarray, *, seed: int = 42, **settings: Any) -> np.ndarray:
    """UMAP reduction with the study's settings (overridable by keyword)."""
    try:
        import umap
    except ImportError:
        raise TopicError("topic discovery needs umap-learn: pip install umap-learn "
                         '(or pip install "prism-stats[topics]")') from None
    opts = {**UMAP_SETTINGS, **settings}
    n = len(vectors)
    opts["n_neighbors"] = min(opts["n_neighbors"], n - 1)
    opts["n_components"] = min(opts["n_components"], n - 2)
    reducer = umap.UMAP(random_state=seed, n_jobs=1, low_memory=True, **opts)
    return np.asarray(reducer.fit_transform(vectors), dtype=np.float64)


def cluster_hdbscan(points: np.ndarray, *, min_cluster_size: int,
                    min_samples: int | None = None) -> np.ndarray:
    """HDBSCAN (Euclidean, excess of mass) labels, renumbered by size (largest 0); -1 noise."""
    from sklearn.cluster import HDBSCAN

    labels = HDBSCAN(min_cluster_size=int(min_cluster_size), min_samples=min_samples,
                     metric="euclidean", cluster_selection_method="eom",
                     copy=True).fit_predict(points)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]  # by size, ties by first label
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(lab), OUTLIER) for lab in labels], dtype=int)


def ctfidf_terms(texts: Sequence[str], labels: np.ndarray, *, n_terms: int = TOP_TERMS
                 ) -> dict[int, list[str]]:
    """Top c-TF-IDF 1-2-gram terms per class (every class, the outliers included).

    Each class's prompts are joined into one document; a term's weight in a class is
    its frequency there over the class's word count, times ``log(1 + A / f)`` with ``A``
    the average word count per class and ``f`` the term's frequency over all classes.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    classes = sorted({int(x) for x in labels})
    docs = [" ".join(str(t) for t, lab in zip(texts, labels, strict=True) if lab == c)
            for c in classes]
    try:
        counts = CountVectorizer(ngram_range=(1, 2), stop_words="english").fit(docs)
    except ValueError:  # nothing but stop words
        return {c: [] for c in classes}
    x = counts.transform(docs).astype(float)
    words = np.asarray(x.sum(axis=1)).ravel()
    tf = np.asarray(x.multiply(1 / np.where(words > 0, words, 1)[:, None]).todense())
    freq = np.asarray(x.sum(axis=0)).ravel()
    idf = np.log(1 + words.mean() / np.where(freq > 0, freq, 1))
    weight = tf * idf[None, :]
    vocab = counts.get_feature_names_out()
    out = {}
    for i, c in enumerate(classes):
        top = np.argsort(-weight[i], kind="stable")[:n_terms]
        out[c] = [str(vocab[j]) for j in top if weight[i, j] > 0]
    return out


def topic_labels(terms: dict[int, list[str]], n: int = LABEL_TERMS) -> dict[int, str]:
    """Readable labels from the top terms (outliers: "Outliers"); unique by construction."""
    labels, seen = {}, set()
    for t, words in sorted(terms.items()):
        label = OUTLIER_LABEL if t == OUTLIER else (", ".join(words[:n]) or f"Topic {t}")
        if label in seen:
            label = f"{label} ({t})"
        seen.add(label)
        labels[t] = label
    return labels


def discover_topics(texts: Sequence[str], conversations: Sequence[str], *,
                    embeddings: str | Embeddings = "tfidf", seed: int = 42,
                    min_cluster_size: int | None = None, model: str | None = None,
                    progress: Progress | None = None, **umap_settings: Any) -> TopicAssignments:
    """Topics of the prompts: embed -> UMAP -> HDBSCAN -> c-TF-IDF labels.

    Parameters
    ----------
    texts, conversations
        The opening prompts and their conversation ids (same order).
    embeddings
        ``"tfidf"`` (default), ``"sentence-transformers"`` or precomputed
        :class:`~prism_stats.topics.embeddings.Embeddings`.
    seed
        Seed of the SVD and of UMAP (the study used 42).
    min_cluster_size
        HDBSCAN's minimum cluster size (default :func:`scaled_min_cluster_size`).
    model
        Sentence-transformer model name or local folder.
    progress
        Called with a short message before each step.
    **umap_settings
        Overrides of :data:`UMAP_SETTINGS`.

    Returns
    -------
    TopicAssignments
        ``settings`` records the embeddings, UMAP/HDBSCAN settings, seed and step times.
    """
    texts = [str(t) for t in texts]
    conversations = [str(c) for c in conversations]
    if len(texts) != len(conversations):
        raise TopicError(f"{len(texts)} prompts but {len(conversations)} conversation ids")
    mcs = int(min_cluster_size or scaled_min_cluster_size(len(texts)))
    if len(texts) < 2 * mcs:
        raise TopicError(f"{len(texts)} prompts are too few for topics of at least {mcs} prompts")
    say = progress or (lambda _msg: None)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if isinstance(embeddings, Embeddings):
        emb = embeddings
    else:
        say(f"embedding {len(texts):,} prompts ({embeddings})")
        emb = embed(texts, embeddings, seed=seed, model=model)
    times["embed_s"] = time.perf_counter() - t0
    say(f"UMAP to {umap_settings.get('n_components', UMAP_SETTINGS['n_components'])} dimensions")
    t0 = time.perf_counter()
    reduced = reduce_umap(emb.vectors, seed=seed, **umap_settings)
    times["umap_s"] = time.perf_counter() - t0
    say(f"HDBSCAN (min cluster size {mcs})")
    t0 = time.perf_counter()
    labels = cluster_hdbscan(reduced, min_cluster_size=mcs)
    times["hdbscan_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    terms = ctfidf_terms(texts, labels)
    names = topic_labels(terms)
    times["label_s"] = time.perf_counter() - t0
    table = pd.DataFrame({"conversation": conversations, "topic": labels})
    table["topic_label"] = table["topic"].map(names)
    topics = topic_table(table, names, terms)
    settings = {"embeddings": emb.method, "model": emb.model, "embedding_info": emb.info,
                "umap": {**UMAP_SETTINGS, **umap_settings, "random_state": seed},
                "hdbscan": {"min_cluster_size": mcs, "metric": "euclidean",
                            "cluster_selection_method": "eom"},
                "seed": seed, "seconds": {k: round(v, 2) for k, v in times.items()}}
    return TopicAssignments(table, topics, source="discovered", settings=settings, embeddings=emb)
