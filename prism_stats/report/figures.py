"""Figures of the supplementary materials, saving at fixed sizes, and a data check.

The forest plot and the predictive-check panels come from
:mod:`prism_stats.model.plots`, the welfare figures from
:mod:`prism_stats.welfare.plots`; this module adds the subgroup x LLM heatmap, the
raking balance (Love) plot, the recovery plot of the synthetic demo, the coverage and
RMSE of the recovery benchmark per scenario (:func:`plot_scenario_recovery`), and
:func:`figure_data_problems`, which the supplement uses to refuse figures without data
(it writes every figure as PNG and PDF at its own fixed size with
:func:`prism_stats._io.save_figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._io import FIGURE_DPI, axes_data, figure_data_problems, new_figure  # noqa: F401 (re-exported)
from ..vocab import GROUP_LABELS

#: Size (inches) of one country panel of the heatmap; of one country panel of the
#: balance plot; of the recovery plot.
HEATMAP_PANEL: tuple[float, float] = (5.0, 7.2)
BALANCE_PANEL: tuple[float, float] = (4.6, 7.0)
RECOVERY_PANEL: tuple[float, float] = (4.2, 4.4)
#: Width of the scenario-recovery figure, and its height per row (scenario x country x group).
SCENARIO_RECOVERY_SIZE: tuple[float, float] = (11.0, 0.225)
DPI: int = FIGURE_DPI


def _figure(width: float, height: float):
    return new_figure(width, height)  # no pyplot state, renders inline in Jupyter


def plot_subgroup_heatmap(summary: pd.DataFrame, groups: Sequence[str] | None = None):
    """Heatmap of MRP estimates: LLMs (rows) x population subgroups (columns), per country.

    Colour: the LLM's estimate minus the average over LLMs for that subgroup (points),
    which removes group-level leniency and shows which LLM serves whom; the text is
    the posterior mean; a box marks each subgroup's highest estimate. Rows are ordered
    by the first country's population (``all``) estimate.

    *summary*: ``poststrat_<c>.csv`` of one or more countries, concatenated.
    """
    countries = list(dict.fromkeys(summary["country"]))
    groups = list(groups) if groups is not None else list(dict.fromkeys(summary["group"]))
    first = summary.loc[(summary["country"] == countries[0]) & (summary["group"] == groups[0])]
    order = first.sort_values("mean", ascending=False)["llm"].tolist()
    mats = {}
    for c in countries:
        sub = summary.loc[summary["country"] == c]
        mats[c] = sub.pivot(index="llm", columns="group", values="mean").reindex(index=order, columns=groups)
    dev = {c: m - m.mean(axis=0) for c, m in mats.items()}
    vmax = max(float(np.nanmax(np.abs(d.to_numpy()))) for d in dev.values()) or 1.0
    fig = _figure(HEATMAP_PANEL[0] * len(countries) + 0.8, HEATMAP_PANEL[1])
    axes = fig.subplots(1, len(countries), squeeze=False)[0]
    image = None
    for ax, c in zip(axes, countries, strict=True):
        d, m = dev[c].to_numpy(), mats[c].to_numpy()
        image = ax.imshow(d, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=5.5,
                            color="white" if abs(d[i, j]) > 0.6 * vmax else "black")
        best = np.nanargmax(m, axis=0)
        for j, i in enumerate(best):
            ax.add_patch(_rectangle(j, i))
        ax.set_xticks(range(len(groups)), [GROUP_LABELS.get(g, g) for g in groups], rotation=45,
                      ha="right", fontsize=7)
        ax.set_yticks(range(len(order)), order, fontsize=6.5)
        ax.set_title(f"{c.upper()}: MRP estimate by subgroup", fontsize=9)
    if image is not None:
        cbar = fig.colorbar(image, ax=list(axes), shrink=0.6)
        cbar.set_label("points above (+) / below (-) the average LLM for the group", fontsize=7)
    return fig


def _rectangle(j: int, i: int):
    from matplotlib.patches import Rectangle  # local: as in _figure

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.2)


def plot_raking_balance(balances: Mapping[str, pd.DataFrame], threshold: float = 0.1):
    """Love plot: absolute standardised difference from the census, before and after raking.

    *balances*: ``{country: WeightingResult.balance}`` (columns ``margin, category,
    asd_before, asd_after``). A dashed line marks the conventional 0.1 threshold.
    """
    countries = list(balances)
    fig = _figure(BALANCE_PANEL[0] * len(countries), BALANCE_PANEL[1])
    axes = fig.subplots(1, len(countries), squeeze=False)[0]
    for ax, c in zip(axes, countries, strict=True):
        b = balances[c]
        labels = [f"{m}: {cat}" for m, cat in zip(b["margin"], b["category"], strict=True)]
        y = np.arange(len(b))
        before = np.minimum(b["asd_before"].to_numpy(dtype=float), 5.0)
        after = b["asd_after"].to_numpy(dtype=float)
        ax.hlines(y, np.minimum(before, after), np.maximum(before, after), color="lightgrey", lw=1)
        ax.plot(before, y, "o", mfc="white", mec="grey", ms=4, label="unweighted")
        ax.plot(after, y, "o", color="C0", ms=4, label="raked")
        ax.axvline(threshold, color="black", ls="--", lw=0.7)
        ax.set_yticks(y, labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("absolute standardised difference from the census", fontsize=7)
        ax.set_title(f"{c.upper()}: raking balance", fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def plot_recovery(truth: pd.DataFrame, summary: pd.DataFrame, group: str = "all"):
    """Synthetic data: MRP posterior mean and 90% interval against the true population mean."""
    m = summary.merge(truth.rename(columns={"mean": "true_mean"}), on=["country", "group", "llm"])
    m = m.loc[m["group"] == group]
    countries = list(dict.fromkeys(m["country"]))
    fig = _figure(RECOVERY_PANEL[0] * len(countries), RECOVERY_PANEL[1])
    axes = fig.subplots(1, len(countries), squeeze=False)[0]
    for ax, c in zip(axes, countries, strict=True):
        s = m.loc[m["country"] == c]
        covered = (s["q05"] <= s["true_mean"]) & (s["true_mean"] <= s["q95"])
        ax.errorbar(s["true_mean"], s["mean"], yerr=[s["mean"] - s["q05"], s["q95"] - s["mean"]],
                    fmt="none", ecolor="lightgrey", lw=1)
        ax.plot(s.loc[covered, "true_mean"], s.loc[covered, "mean"], "o", color="C0", ms=4,
                label="interval covers truth")
        if (~covered).any():
            ax.plot(s.loc[~covered, "true_mean"], s.loc[~covered, "mean"], "o", color="C3", ms=4,
                    label="interval misses truth")
        lo = float(min(s["q05"].min(), s["true_mean"].min()))
        hi = float(max(s["q95"].max(), s["true_mean"].max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.7, ls="--")
        ax.set(xlabel="true population mean", ylabel="MRP estimate (90% interval)")
        ax.set_title(f"{c.upper()}: recovery ({GROUP_LABELS.get(group, group)}), "
                     f"coverage {covered.mean():.0%}", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    return fig


def plot_scenario_recovery(table: pd.DataFrame):
    """The recovery benchmark: coverage and RMSE ratio per scenario, country and group.

    *table*: the pooled table of ``benchmarks/recovery.py --csv`` (one row per scenario x
    country x group: ``coverage90``, ``rmse_mrp``, ``rmse_raw``). Left: coverage of the
    90% intervals over the 21 LLMs (mean over releases; lines at 0.90 and 0.85). Right:
    RMSE of MRP over the RMSE of the raw residents' means (below 1: MRP is closer).
    """
    scenarios = list(dict.fromkeys(table["scenario"]))
    fig = _figure(SCENARIO_RECOVERY_SIZE[0], SCENARIO_RECOVERY_SIZE[1] * len(table) + 1.5)
    axes = fig.subplots(1, 2, sharey=True)
    labels = [f"{r.scenario} · {str(r.country).upper()} · {GROUP_LABELS.get(r.group, r.group)}"
              for r in table.itertuples()]
    y = np.arange(len(table))[::-1]
    colours = [f"C{scenarios.index(s) % 10}" for s in table["scenario"]]
    axes[0].scatter(table["coverage90"], y, c=colours, s=18)
    axes[0].axvline(0.9, color="grey", lw=0.8)
    axes[0].axvline(0.85, color="grey", lw=0.8, ls="--")
    axes[0].set_xlabel("coverage of the 90% intervals (21 LLMs, mean over releases)", fontsize=7)
    axes[1].scatter(table["rmse_mrp"] / table["rmse_raw"], y, c=colours, s=18)
    axes[1].axvline(1.0, color="grey", lw=0.8, ls="--")
    axes[1].set_xlabel("RMSE of MRP / RMSE of the raw residents' means", fontsize=7)
    axes[0].set_yticks(y, labels, fontsize=6)
    fig.set_layout_engine("constrained")
    return fig
