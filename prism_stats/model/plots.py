"""Figures of the model stage: predictive checks and the LLM forest plot of MRP estimates.

Every function returns a matplotlib ``Figure`` of a fixed size (so supplements are
reproducible), made outside pyplot's state (:func:`prism_stats._io.new_figure`): no
backend is chosen here, and in Jupyter the figure renders inline as a cell's value.
Plots of the run's DataTree itself (trace, rank, forest of parameters, PPC densities,
LOO-PIT) are arviz-plots' (``arviz_plots.plot_forest(run.idata)``, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .._io import new_figure

PPC_SIZE = (11.0, 3.6)
FOREST_SIZE = (7.0, 6.5)


def plot_predictive(checks: xr.Dataset, title: str = "Posterior predictive checks"):
    """Three panels: score distribution, per-LLM means, per-participant means.

    *checks* is the output of :func:`prism_stats.model.diagnostics.predictive_checks`
    (or ``prior_predictive``).
    """
    fig = new_figure(*PPC_SIZE)
    axes = fig.subplots(1, 3)
    ax = axes[0]
    x = checks["score_bin"].values
    dens = checks["score_density"].values
    lo, hi = np.quantile(dens, [0.05, 0.95], axis=0)
    ax.fill_between(x, lo, hi, step="mid", alpha=0.35, color="C0", label="replicated 90%")
    ax.step(x, np.median(dens, axis=0), where="mid", color="C0", lw=0.8)
    if "observed_score_density" in checks:
        ax.step(x, checks["observed_score_density"].values, where="mid", color="k", lw=0.8,
                label="observed")
    ax.axvline(1, color="grey", lw=0.5, ls=":")
    ax.axvline(100, color="grey", lw=0.5, ls=":")
    ax.set(xlabel="score", ylabel="share of ratings", title="Score distribution")
    beyond = outside_shares(checks)
    if beyond is not None and (beyond[0] > 0 or beyond[1] > 0):
        # replicated ratings beyond the histogram's range are reported, never dropped
        ax.text(0.02, 0.97, f"beyond the axis: {beyond[0]:.1%} below, {beyond[1]:.1%} above",
                transform=ax.transAxes, ha="left", va="top", fontsize=6.5)
    ax.legend(fontsize=7, frameon=False)

    ax = axes[1]
    rep = checks["llm_mean"].values
    obs = checks["observed_llm_mean"].values
    order = np.argsort(obs)
    y = np.arange(len(order))
    q = np.quantile(rep[:, order], [0.05, 0.5, 0.95], axis=0)
    ax.hlines(y, q[0], q[2], color="C0", lw=2, alpha=0.6, label="replicated 90%")
    ax.plot(obs[order], y, "k|", ms=8, label="observed")
    ax.set_yticks(y, checks["llm"].values[order], fontsize=6)
    ax.set(xlabel="mean score", title="Per-LLM means")
    ax.legend(fontsize=7, frameon=False, loc="lower right")

    ax = axes[2]
    rep_p = checks["participant_mean"].values
    bins = np.linspace(min(rep_p.min(), checks["observed_participant_mean"].min()),
                       max(rep_p.max(), checks["observed_participant_mean"].max()), 40)
    hists = np.stack([np.histogram(r, bins=bins, density=True)[0] for r in rep_p[:100]])
    mid = (bins[:-1] + bins[1:]) / 2
    ax.fill_between(mid, *np.quantile(hists, [0.05, 0.95], axis=0), step="mid", alpha=0.35,
                    color="C0", label="replicated 90%")
    ax.step(mid, np.histogram(checks["observed_participant_mean"].values, bins=bins, density=True)[0],
            where="mid", color="k", lw=0.8, label="observed")
    ax.set(xlabel="participant mean score", ylabel="density", title="Per-participant means")
    ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig


def outside_shares(checks: xr.Dataset) -> tuple[float, float] | None:
    """Median share of replicated ratings below and above the histogram's range."""
    if "score_share_below" not in checks:
        return None
    return (float(checks["score_share_below"].median()), float(checks["score_share_above"].median()))


def plot_llm_forest(summary: pd.DataFrame, group: str = "all", title: str | None = None):
    """Forest plot of per-LLM MRP estimates (90% intervals) by country.

    *summary* is one or more countries' :meth:`PoststratResult.summary` tables
    concatenated (columns ``country, group, llm, mean, q05, q95``; raw/REP means are
    drawn as open markers when present).

    Drawn by hand rather than with ``arviz_plots.plot_forest``: it works from the saved
    summary CSV (no draws needed), puts several countries on one axis and overlays the raw
    sample means, none of which the ArviZ forest plot does.
    """
    sub = summary.loc[summary["group"] == group]
    countries = list(dict.fromkeys(sub["country"]))
    order = (sub.groupby("llm")["mean"].mean().sort_values().index.tolist())
    y = np.arange(len(order))
    fig = new_figure(*FOREST_SIZE)
    ax = fig.subplots()
    offsets = np.linspace(-0.18, 0.18, max(len(countries), 1))
    for i, c in enumerate(countries):
        s = sub.loc[sub["country"] == c].set_index("llm").reindex(order)
        yy = y + offsets[i]
        ax.hlines(yy, s["q05"], s["q95"], color=f"C{i}", lw=2, alpha=0.8)
        ax.plot(s["mean"], yy, "o", color=f"C{i}", ms=4, label=f"{c.upper()} MRP")
        if "raw_mean" in s and s["raw_mean"].notna().any():
            ax.plot(s["raw_mean"], yy, "x", color=f"C{i}", ms=4, alpha=0.6, label=f"{c.upper()} raw")
    ax.set_yticks(y, order, fontsize=7)
    ax.set_xlabel("expected opening-turn rating (1-100)")
    ax.set_title(title or f"Population estimates per LLM (group: {group}); 90% intervals")
    ax.legend(fontsize=7, frameon=False)
    return fig
