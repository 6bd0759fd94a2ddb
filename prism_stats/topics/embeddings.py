"""Prompt embeddings for topic discovery and neighbourhoods, offline and pluggable.

Two methods (:data:`METHODS`):

``"tfidf"`` (default; no downloaded weights)
    TF-IDF over word 1-2-grams (scikit-learn ``TfidfVectorizer``: English stop words
    removed, sublinear term frequencies, terms in at least two prompts) reduced by
    ``TruncatedSVD`` (latent semantic analysis, seeded) to :data:`TFIDF_DIMENSIONS`
    dimensions and L2-normalised. The unreduced TF-IDF vectors (``Embeddings.full``)
    serve the near-duplicate neighbourhoods, which are lexical.
``"sentence-transformers"``
    The study's embeddings (``all-mpnet-base-v2`` by default) from the
    ``sentence_transformers`` package (``pip install "prism-stats[topics]"``), loaded
    from the local cache or a local folder only -- never fetched: a model that is not
    available locally is a clear error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .assignments import TopicError

# Heavy libraries are imported inside the functions that use them, so that importing
# prism_stats.topics (e.g. for the CLI's --help) does not load them.

METHODS: tuple[str, ...] = ("tfidf", "sentence-transformers")
DEFAULT_SENTENCE_MODEL = "all-mpnet-base-v2"
TFIDF_DIMENSIONS = 100
EXTRA_HINT = 'pip install "prism-stats[topics]"'


@dataclass
class Embeddings:
    """Embedded prompts.

    Attributes
    ----------
    vectors : ndarray
        Prompt x dimension, rows L2-normalised (the input of UMAP).
    full : ndarray or scipy.sparse matrix
        The vectors of the near-duplicate search (cosine distance): the unreduced TF-IDF
        rows for ``"tfidf"``, the same as ``vectors`` otherwise.
    method, model : str
        How they were made.
    info : dict
        Vocabulary size, explained variance, dimensions.
    """

    vectors: np.ndarray
    full: Any
    method: str
    model: str
    info: dict[str, Any] = field(default_factory=dict)


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def tfidf_embeddings(texts: Sequence[str], *, seed: int = 0,
                     dimensions: int = TFIDF_DIMENSIONS) -> Embeddings:
    """TF-IDF (1-2-grams) + truncated SVD embeddings (see the module docstring)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [str(t) for t in texts]
    min_df = 2 if len(texts) >= 50 else 1
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", sublinear_tf=True,
                                 min_df=min_df, dtype=np.float32)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError as exc:  # empty vocabulary: nothing but stop words
        raise TopicError(f"cannot embed the prompts with TF-IDF ({exc})") from None
    k = int(min(dimensions, tfidf.shape[1] - 1, len(texts) - 1))
    if k < 2:
        raise TopicError(f"too few prompts or terms for topic discovery ({len(texts)} prompts, "
                         f"{tfidf.shape[1]} terms)")
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=7)
    reduced = svd.fit_transform(tfidf)
    return Embeddings(_normalise(reduced).astype(np.float32), tfidf, "tfidf", "tfidf+svd",
                      {"terms": int(tfidf.shape[1]), "dimensions": k,
                       "explained_variance": float(svd.explained_variance_ratio_.sum())})


def sentence_embeddings(texts: Sequence[str], *, model: str = DEFAULT_SENTENCE_MODEL,
                        batch_size: int = 64, progress: bool = False) -> Embeddings:
    """Sentence-transformer embeddings from a locally available model (no network).

    Raises
    ------
    TopicError
        ``sentence_transformers`` is not installed (names the extra), or *model* is not
        in the local cache and not a local folder.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TopicError("sentence-transformer embeddings need the optional dependencies: "
                         f"{EXTRA_HINT} (or use --embeddings tfidf)") from None
    # Never touch the network: the Hub client honours these while the model loads.
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        encoder = SentenceTransformer(model, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError or a Hub error by version
        raise TopicError(
            f"sentence-transformer model {model!r} is not available locally ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); prism-stats never downloads it: "
            "fetch it once where you have network access (e.g. SentenceTransformer"
            f"({model!r}) in Python) or pass the path of a local model folder") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    vectors = encoder.encode([str(t) for t in texts], batch_size=batch_size,
                             show_progress_bar=progress, convert_to_numpy=True,
                             normalize_embeddings=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    return Embeddings(vectors, vectors, "sentence-transformers", model,
                      {"dimensions": int(vectors.shape[1])})


def embed(texts: Sequence[str], method: str = "tfidf", *, seed: int = 0,
          model: str | None = None) -> Embeddings:
    """Embed *texts* with *method* (:data:`METHODS`); *model* names the sentence model."""
    if method == "tfidf":
        return tfidf_embeddings(texts, seed=seed)
    if method == "sentence-transformers":
        return sentence_embeddings(texts, model=model or DEFAULT_SENTENCE_MODEL)
    raise TopicError(f"unknown embeddings {method!r}; choose one of {list(METHODS)}")
