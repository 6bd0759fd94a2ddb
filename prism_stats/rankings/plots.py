"""Figures of the preference-diversity analysis (matplotlib ``Figure`` objects).

Every function takes the tidy frames of :mod:`prism_stats.rankings.outputs` and returns
a figure of a fixed size; :func:`prism_stats.report.figures.save_figure` writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._io import new_figure
from .bootstrap import METHOD_LABELS
from .tables import CENSUS_LABELS


def _figure(width: float, height: float):
    return new_figure(width, height)  # no pyplot state, renders inline in Jupyter


def rank_heatmap(frame: pd.DataFrame, *, title: str, order: Sequence[str] | None = None,
                 rank: str = "rank", lo: str = "rank_lo", hi: str = "rank_hi"):
    """Heatmap of ranks: LLMs (rows) x columns, colour = rank, text = rank [interval].

    *frame* has ``column`` (the column label, in display order), ``llm`` and the rank
    columns; a ``block`` column (e.g. the grouping) draws separators between blocks.
    """
    cols = list(dict.fromkeys(frame["column"]))
    if order is None:
        first = frame[frame["column"] == cols[0]].sort_values(rank)
        order = first["llm"].tolist()
    order = list(order)
    R = frame.pivot_table(index="llm", columns="column", values=rank, aggfunc="first").reindex(
        index=order, columns=cols)
    LO = frame.pivot_table(index="llm", columns="column", values=lo, aggfunc="first").reindex(
        index=order, columns=cols) if lo in frame else R * np.nan
    HI = frame.pivot_table(index="llm", columns="column", values=hi, aggfunc="first").reindex(
        index=order, columns=cols) if hi in frame else R * np.nan
    m = R.to_numpy(dtype=float)
    fig = _figure(max(5.0, 1.6 + 0.42 * len(cols)), 1.4 + 0.26 * len(order))
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="viridis_r", vmin=1, vmax=max(len(order), 2), aspect="auto")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[i, j]):
                a, b = LO.iat[i, j], HI.iat[i, j]
                text = f"{m[i, j]:.0f}" if float(m[i, j]).is_integer() else f"{m[i, j]:.1f}"
                if np.isfinite(a) and np.isfinite(b):
                    text += f"\n{int(a)}-{int(b)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=4.6, linespacing=0.9,
                        color="white" if m[i, j] < 0.45 * len(order) else "black")
    if "block" in frame:
        blocks = frame.drop_duplicates("column").set_index("column").reindex(cols)["block"].tolist()
        for j in range(1, len(cols)):
            if blocks[j] != blocks[j - 1]:
                ax.axvline(j - 0.5, color="white", lw=2)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(len(order)), order, fontsize=6.5)
    ax.set_title(title, fontsize=9)
    cbar = fig.colorbar(image, ax=ax, shrink=0.5)
    cbar.set_label("rank (1 = best)", fontsize=7)
    return fig


def subgroup_rank_heatmap(rankings: pd.DataFrame, ranking: str = "rc_corrected"):
    """The study's rankings per subgroup (whole sample first), with 90% bootstrap intervals."""
    t = rankings[rankings["ranking"] == ranking].copy()
    t["column"] = np.where(t["grouping"] == "all", "whole sample",
                           t["grouping"].astype(str) + ": " + t["group"].astype(str))
    t["block"] = t["grouping"]
    order = t[t["grouping"] == "all"].sort_values("rank")["llm"].tolist()
    return rank_heatmap(t, title=f"{METHOD_LABELS[ranking]} by subgroup: rank and 90% bootstrap interval",
                        order=order)


def model_rank_heatmap(ranks: pd.DataFrame, source: str):
    """Model-based expected ranks and 90% rank intervals for every group of one model."""
    t = ranks[ranks["source"] == source].copy()
    census = t["grouping"].str.startswith("census_")
    label = np.where(census, t["grouping"].str[len("census_"):].str.upper() + " " +
                     t["group"].map(lambda g: CENSUS_LABELS.get(g, g)).astype(str),
                     t["grouping"].astype(str) + ": " + t["group"].astype(str))
    t["column"] = np.where((t["grouping"] == "all"), "whole sample", label)
    t["block"] = t["grouping"]
    return rank_heatmap(t, title=f"{source.capitalize()} model: expected rank and 90% rank interval",
                        rank="expected_rank")


def win_rate_heatmap(pairs: pd.DataFrame):
    """Pairwise win rates (row beats column; ties count as non-wins), rows by average win rate."""
    rate = pairs.pivot(index="llm", columns="opponent", values="win_rate")
    order = rate.mean(axis=1).sort_values(ascending=False).index.tolist()
    rate = rate.reindex(index=order, columns=order)
    m = rate.to_numpy(dtype=float)
    fig = _figure(7.6, 6.6)
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="RdBu_r", vmin=0.15, vmax=0.65, aspect="auto")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}"[1:] if m[i, j] < 1 else "1", ha="center", va="center",
                        fontsize=4.5)
    ax.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(len(order)), order, fontsize=6)
    ax.set_xlabel("opponent", fontsize=7)
    ax.set_title("Share of battles the row LLM won against the column LLM", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.6).set_label("win rate (ties = non-wins)", fontsize=7)
    return fig


def method_comparison(rankings: pd.DataFrame,
                      methods: Sequence[str] = ("elo", "mle_elo", "bradley_terry", "rc_original", "rc_corrected")):
    """Rank of each LLM under each method, with 90% participant-bootstrap rank intervals."""
    t = rankings[rankings["grouping"] == "all"]
    methods = [m for m in methods if m in set(t["ranking"])]
    order = t[t["ranking"] == methods[-1]].sort_values("rank")["llm"].tolist()
    fig = _figure(7.0, 6.4)
    ax = fig.add_subplot()
    y0 = np.arange(len(order))
    offsets = np.linspace(-0.32, 0.32, len(methods))
    for off, m in zip(offsets, methods, strict=True):
        s = t[t["ranking"] == m].set_index("llm").reindex(order)
        lo = s["rank_lo"] if "rank_lo" in s else s["rank"]
        hi = s["rank_hi"] if "rank_hi" in s else s["rank"]
        ax.errorbar(s["rank"], y0 + off, xerr=[s["rank"] - lo, hi - s["rank"]], fmt="o", ms=3.2,
                    lw=0.9, capsize=0, label=METHOD_LABELS[m])
    ax.set_yticks(y0, order, fontsize=6.5)
    ax.invert_yaxis()
    ax.set_xlabel("rank (1 = best); bars: 90% participant-bootstrap interval", fontsize=7)
    ax.set_title("Elo, MLE-Elo, Bradley-Terry and Rank Centrality ranks", fontsize=9)
    ax.legend(fontsize=6, loc="upper right")  # the best LLMs sit top left
    ax.grid(axis="x", alpha=0.3)
    return fig


def stated_forest(summary: pd.DataFrame):
    """Forest plot: dependence of the reward on stated importance (b1) and the reward (b0)."""
    fig = _figure(7.2, 3.4)
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(summary))
    for ax, (stem, title) in zip(axes, (("dependence", "b1: reward growth per sd of stated importance"),
                                        ("reward", "b0: points per sd of the attribute rating")),
                                 strict=True):
        m, lo, hi = summary[f"{stem}_mean"], summary[f"{stem}_lo"], summary[f"{stem}_hi"]
        ax.errorbar(m, y, xerr=[m - lo, hi - m], fmt="o", color="black", ms=4, lw=1.2, capsize=0)
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("score points (posterior mean, 90% interval)", fontsize=7)
    axes[0].set_yticks(y, summary["attribute"], fontsize=7)
    axes[0].invert_yaxis()
    return fig


def correlation_heatmap(long: pd.DataFrame, set_name: str = "joint"):
    """A clustered attribute correlation matrix (rows and columns in clustering order)."""
    t = long[long["set"] == set_name]
    labels = list(dict.fromkeys(t["row"]))
    m = t.pivot(index="row", columns="column", values="r").reindex(index=labels, columns=labels)
    size = 2.2 + 0.27 * len(labels)
    fig = _figure(size + 0.8, size)
    ax = fig.add_subplot()
    image = ax.imshow(m.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=5.5)
    ax.set_yticks(range(len(labels)), labels, fontsize=5.5)
    ax.set_title(f"Attribute correlations ({set_name}), complete-linkage order", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.6).set_label("Pearson r", fontsize=7)
    return fig
