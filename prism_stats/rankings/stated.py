"""Stated versus revealed preferences: the study's attribute correlations and clustering.

Three sets of attribute answers (SPEC §1.2-1.3, §3.4):

* ``stated`` -- the survey's stated importance ("It is important that an AI language
  model ..."; 0-100) of values, creativity, fluency, factuality, diversity, safety,
  personalisation and helpfulness (``participants.pref_<key>``; the "other" slider is
  left out, as its meaning differs per participant);
* ``performance`` -- how the top-rated opening response performed on values, fluency,
  factuality, safety, diversity, creativity, helpfulness (``conversations.perf_<key>``,
  1-100, N/A as missing);
* ``choice`` -- how important each attribute was for choosing it
  (``conversations.choice_<key>``).

:func:`attribute_correlations` gives the study's Pearson correlation matrices (pandas
``.corr()``, pairwise-complete), separately and jointly on the conversation-level merge
(each conversation with its performance and choice answers and its participant's stated
importance), and orders each by hierarchical clustering with **complete linkage** on
the rows of the correlation matrix (Euclidean distance between rows -- what
``seaborn.clustermap(corr, method="complete")`` did in the original notebook 04). The
joint matrix is also cut into :data:`N_BLOCKS` clusters (the study marked blocks A-D).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._display import ResultDisplay
from .. import vocab
from .battles import RankingError

STATED_KEYS: tuple[str, ...] = tuple(k for k in vocab.STATED_PREF_KEYS if k not in ("other", "other_text"))
ATTRIBUTE_KEYS: tuple[str, ...] = vocab.ATTRIBUTE_KEYS
SETS: tuple[str, ...] = ("stated", "performance", "choice", "joint")
N_BLOCKS = 4
_PREFIX = {"stated": "pref_", "performance": "perf_", "choice": "choice_"}


def attribute_frames(data: Any) -> dict[str, pd.DataFrame]:
    """The answers of each set (columns named ``<set>:<attribute>``) and the joint merge.

    ``stated`` has one row per participant (all survey participants), ``performance``
    and ``choice`` one per conversation, ``joint`` one per conversation with the
    participant's stated importance attached.
    """
    people, convs = data.participants, data.conversations
    missing = [f"pref_{k}" for k in STATED_KEYS if f"pref_{k}" not in people.columns]
    missing += [f"{p}_{k}" for p in ("perf", "choice") for k in ATTRIBUTE_KEYS
                if f"{p}_{k}" not in convs.columns]
    if missing:
        raise RankingError(f"attribute columns missing: {missing[:4]}")
    stated = people[[f"pref_{k}" for k in STATED_KEYS]].astype(float)
    stated.columns = [f"stated:{k}" for k in STATED_KEYS]
    stated.index = people["participant"].astype(str)
    out = {"stated": stated}
    for name, prefix in (("performance", "perf_"), ("choice", "choice_")):
        frame = convs[[f"{prefix}{k}" for k in ATTRIBUTE_KEYS]].astype(float)
        frame.columns = [f"{name}:{k}" for k in ATTRIBUTE_KEYS]
        frame.index = convs["conversation"].astype(str)
        out[name] = frame
    joint = pd.concat([out["performance"], out["choice"]], axis=1)
    joint = joint.join(stated.reindex(convs["participant"].astype(str).to_numpy()).set_axis(joint.index))
    out["joint"] = joint
    return out


def cluster_order(corr: pd.DataFrame, *, method: str = "complete",
                  n_blocks: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Leaf order of a hierarchical clustering of the correlation rows (and cluster labels).

    Returns (ordered labels, scipy linkage matrix, cluster label per column in the
    input order, or None when *n_blocks* is None). Missing correlations are set to 0.
    """
    from scipy.cluster import hierarchy

    values = corr.fillna(0.0).to_numpy()
    if len(values) < 2:
        return list(corr.columns), np.empty((0, 4)), None
    link = hierarchy.linkage(values, method=method, metric="euclidean")
    order = [corr.columns[i] for i in hierarchy.leaves_list(link)]
    blocks = hierarchy.fcluster(link, n_blocks, criterion="maxclust") if n_blocks else None
    return order, link, blocks


@dataclass(repr=False)
class AttributeCorrelations(ResultDisplay):
    """Correlation matrices of the attribute sets, clustered.

    Attributes
    ----------
    matrices : dict
        Set name (:data:`SETS`) -> correlation matrix (DataFrame), rows and columns in
        clustered order.
    n_obs : dict
        Set name -> rows used (participants or conversations) and the complete ones.
    blocks : Series
        Cluster (1..N_BLOCKS) of each joint-matrix attribute.
    missing : DataFrame
        Share of missing (N/A) answers per attribute.
    """

    matrices: dict[str, pd.DataFrame]
    n_obs: dict[str, dict[str, int]]
    blocks: pd.Series
    missing: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def long(self) -> pd.DataFrame:
        """All matrices as one tidy table: ``set, row, column, r`` (clustered order)."""
        frames = []
        for name, m in self.matrices.items():
            t = m.stack(future_stack=True).rename("r").reset_index()
            t.columns = ["row", "column", "r"]
            t.insert(0, "set", name)
            frames.append(t)
        return pd.concat(frames, ignore_index=True)


def attribute_correlations(data: Any, *, method: str = "complete",
                           n_blocks: int = N_BLOCKS) -> AttributeCorrelations:
    """The study's attribute correlation matrices, separately and jointly, clustered."""
    frames = attribute_frames(data)
    matrices, n_obs = {}, {}
    blocks = pd.Series(dtype=int)
    for name in SETS:
        frame = frames[name]
        corr = frame.corr(method="pearson")
        order, _, cut = cluster_order(corr, method=method, n_blocks=n_blocks if name == "joint" else None)
        matrices[name] = corr.loc[order, order]
        n_obs[name] = {"rows": len(frame), "complete": int(frame.notna().all(axis=1).sum())}
        if cut is not None:
            blocks = pd.Series(cut, index=corr.columns, name="block").loc[order]
    missing = pd.concat([f.isna().mean() for n, f in frames.items() if n != "joint"]).rename("share_missing")
    missing = missing.rename_axis("attribute").reset_index()
    return AttributeCorrelations(matrices, n_obs, blocks, missing,
                                 settings={"method": method, "metric": "euclidean (rows of r)",
                                           "n_blocks": n_blocks})
