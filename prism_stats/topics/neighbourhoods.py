"""Local neighbourhoods of near-duplicate prompts and the diversity of their authors.

After the study's notebook 03 (SPEC §3.3):

* **Neighbourhoods.** Prompts are linked when the cosine distance of their embeddings is
  at most a threshold (0.05, 0.125, 0.2); a neighbourhood is a connected set of at least
  two prompts (single-link clustering at that threshold: connected components of the
  radius graph, from scikit-learn's radius neighbours and scipy's components). Prompts
  whose embedding is all zero (nothing but stop words under TF-IDF) have no direction
  and join no neighbourhood; they are counted.
* **Adjusted entropy.** For a neighbourhood of k prompts and an author attribute (gender,
  age, ethnicity, religion, location = ``special_region``, and their intersection), the
  Shannon entropy (bits) of the attribute over the k authors, minus its expected value
  for k prompts drawn at random without replacement from all prompts (simulated,
  seeded). A neighbourhood is *at or above expected* when its entropy is at least that
  expectation (its authors are as diverse as a random set of k prompts' authors); the
  share of such neighbourhoods gets a 99% Clopper-Pearson interval (the study's "%
  neighbourhoods >= expected entropy (99% CI)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .assignments import TopicError

# Heavy libraries are imported inside the functions that use them, so that importing
# prism_stats.topics (e.g. for the CLI's --help) does not load them.

THRESHOLDS: tuple[float, ...] = (0.05, 0.125, 0.2)
#: (attribute label, participants column); plus the intersection of all of them.
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("gender", "gender"), ("age", "age"), ("ethnicity", "ethnicity_simplified"),
    ("religion", "religion_simplified"), ("location", "special_region"),
)
INTERSECTIONAL = "intersectional"
LEVEL = 0.99


def neighbourhoods(vectors, thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """Non-singleton single-link neighbourhoods at each cosine-distance threshold.

    Parameters
    ----------
    vectors
        Prompt x dimension embeddings (dense or scipy sparse).
    thresholds
        Cosine distance thresholds.

    Returns
    -------
    DataFrame
        ``threshold``, ``prompt`` (row index), ``neighbourhood`` (0.. per threshold, by
        size) for every prompt in a neighbourhood. ``attrs["empty"]``: prompts with an
        all-zero embedding.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import NearestNeighbors

    thresholds = sorted(float(t) for t in thresholds)
    if not thresholds or thresholds[0] < 0 or thresholds[-1] >= 1:
        raise TopicError(f"thresholds must lie in [0, 1), got {thresholds}")
    norms = (np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1))).ravel()
             if sparse.issparse(vectors) else np.linalg.norm(vectors, axis=1))
    keep = np.flatnonzero(norms > 0)
    x = vectors[keep]
    n = len(keep)
    nn = NearestNeighbors(radius=thresholds[-1] + 1e-9, metric="cosine", algorithm="brute")
    nn.fit(x)
    dist, ind = nn.radius_neighbors(x, return_distance=True, sort_results=False)
    rows = np.repeat(np.arange(n), [len(i) for i in ind])
    cols = np.concatenate(ind) if n else np.array([], dtype=int)
    d = np.concatenate(dist) if n else np.array([])
    frames = []
    for t in thresholds:
        m = d <= t + 1e-9
        graph = sparse.csr_matrix((np.ones(int(m.sum())), (rows[m], cols[m])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        sizes = np.bincount(labels)
        multi = np.flatnonzero(sizes >= 2)
        order = multi[np.lexsort((multi, -sizes[multi]))]
        renumber = {int(lab): i for i, lab in enumerate(order)}
        members = np.flatnonzero(sizes[labels] >= 2)
        frames.append(pd.DataFrame({"threshold": t, "prompt": keep[members],
                                    "neighbourhood": [renumber[int(labels[i])] for i in members]}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["threshold", "prompt", "neighbourhood"])
    out.attrs["empty"] = int(len(norms) - n)
    return out


def entropy_bits(codes: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each row of an integer code matrix (rows = draws)."""
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    r, k = codes.shape
    counts = np.zeros((r, int(codes.max()) + 1 if codes.size else 1))
    np.add.at(counts, (np.repeat(np.arange(r), k), codes.ravel()), 1.0)
    p = counts / k
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)


@dataclass
class NeighbourhoodResult:
    """Neighbourhoods and the adjusted-entropy analysis.

    Attributes
    ----------
    members : DataFrame
        ``threshold``, ``conversation``, ``neighbourhood``.
    entropy : DataFrame
        Per threshold x neighbourhood x attribute: ``k``, ``entropy``, ``expected``,
        ``adjusted``, ``at_or_above`` (entropy >= expected).
    summary : DataFrame
        Per threshold: ``neighbourhoods``, ``prompts``, ``share_prompts`` (%), ``k_min``,
        ``k_max``, ``k_mean``, ``k_sd``, and per attribute ``<a>_mean``, ``<a>_sd``,
        ``<a>_at_or_above`` (%), ``<a>_low``, ``<a>_high`` (99% interval, %).
    """

    members: pd.DataFrame
    entropy: pd.DataFrame
    summary: pd.DataFrame
    settings: dict = field(default_factory=dict)


def _clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    from scipy.stats import beta

    a = 1 - level
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def author_codes(data, conversations: Sequence[str]) -> pd.DataFrame:
    """Integer codes of each prompt author's attributes (and their intersection)."""
    people = data.participants.set_index(data.participants["participant"].astype(str))
    conv = data.conversations.set_index(data.conversations["conversation"].astype(str))
    authors = conv.loc[list(conversations), "participant"].astype(str).to_numpy()
    out = {}
    for label, column in ATTRIBUTES:
        values = people.loc[authors, column].astype(str).to_numpy()
        out[label] = pd.factorize(values)[0]
    inter = pd.DataFrame(out).astype(str).agg("|".join, axis=1)
    out[INTERSECTIONAL] = pd.factorize(inter)[0]
    return pd.DataFrame(out)


def adjusted_entropy(members: pd.DataFrame, codes: pd.DataFrame, *, replicates: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Entropy of every neighbourhood's authors against random draws of the same size."""
    rng = np.random.default_rng(seed)
    n = len(codes)
    sizes = sorted(set(members.groupby(["threshold", "neighbourhood"]).size().tolist()))
    null: dict[tuple[str, int], float] = {}
    for k in sizes:
        idx = np.array([rng.choice(n, k, replace=False) for _ in range(replicates)])
        for attr in codes.columns:
            e = entropy_bits(codes[attr].to_numpy()[idx])
            null[(attr, k)] = float(e.mean())
    rows = []
    for (t, hood), grp in members.groupby(["threshold", "neighbourhood"], sort=True):
        k = len(grp)
        for attr in codes.columns:
            h = float(entropy_bits(codes[attr].to_numpy()[grp["prompt"].to_numpy()])[0])
            mean = null[(attr, k)]
            rows.append({"threshold": t, "neighbourhood": int(hood), "attribute": attr, "k": k,
                         "entropy": h, "expected": mean, "adjusted": h - mean,
                         "at_or_above": bool(h >= mean - 1e-12)})
    return pd.DataFrame(rows)


def neighbourhood_analysis(data, conversations: Sequence[str], vectors, *,
                           thresholds: Sequence[float] = THRESHOLDS, replicates: int = 1000,
                           seed: int = 0) -> NeighbourhoodResult:
    """Neighbourhoods of the prompts of *conversations* and their authors' adjusted entropy.

    Parameters
    ----------
    data
        The :class:`~prism_stats.data.PrismData` (authors' attributes).
    conversations
        Conversation ids, aligned with the rows of *vectors*.
    vectors
        Prompt embeddings (``Embeddings.full``).
    thresholds, replicates, seed
        Distance thresholds; random draws per neighbourhood size; their seed.
    """
    conversations = [str(c) for c in conversations]
    if vectors.shape[0] != len(conversations):
        raise TopicError(f"{vectors.shape[0]} embeddings for {len(conversations)} conversations")
    hoods = neighbourhoods(vectors, thresholds)
    codes = author_codes(data, conversations)
    ent = adjusted_entropy(hoods, codes, replicates=replicates, seed=seed)
    members = hoods.assign(conversation=np.array(conversations, dtype=object)[
        hoods["prompt"].to_numpy()])[["threshold", "conversation", "neighbourhood"]]
    rows = []
    n = len(conversations)
    for t in sorted(float(x) for x in thresholds):
        h = hoods[hoods["threshold"] == t]
        k = h.groupby("neighbourhood").size()
        row = {"threshold": t, "neighbourhoods": len(k), "prompts": len(h),
               "share_prompts": 100 * len(h) / n if n else np.nan,
               "k_min": int(k.min()) if len(k) else 0, "k_max": int(k.max()) if len(k) else 0,
               "k_mean": float(k.mean()) if len(k) else np.nan,
               "k_sd": float(k.std(ddof=1)) if len(k) > 1 else np.nan}
        e = ent[ent["threshold"] == t] if len(ent) else ent
        for attr in codes.columns:
            ea = e[e["attribute"] == attr] if len(e) else e
            m = len(ea)
            hits = int(ea["at_or_above"].sum()) if m else 0
            lo, hi = _clopper_pearson(hits, m) if m else (np.nan, np.nan)
            row.update({f"{attr}_mean": float(ea["adjusted"].mean()) if m else np.nan,
                        f"{attr}_sd": float(ea["adjusted"].std(ddof=1)) if m > 1 else np.nan,
                        f"{attr}_at_or_above": 100 * hits / m if m else np.nan,
                        f"{attr}_low": 100 * lo, f"{attr}_high": 100 * hi})
        rows.append(row)
    return NeighbourhoodResult(members, ent, pd.DataFrame(rows),
                               {"thresholds": list(thresholds), "replicates": replicates,
                                "seed": seed, "empty_embeddings": hoods.attrs.get("empty", 0),
                                "entropy": "bits", "level": LEVEL})
