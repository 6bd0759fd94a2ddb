"""Figures of the calibration and sensitivity analyses.

* :func:`plot_ecdf_difference` -- SBC rank ECDF minus the uniform CDF, per quantity, with
  the exact simultaneous band of :mod:`prism_stats.sweeps.calibration` (Säilynoja et al.
  2022): the darker band is the per-quantity ``1 - alpha`` band, the lighter one the
  multiplicity-adjusted ``1 - alpha / K`` band that the test's verdict uses.
* :func:`plot_pvalues` -- every quantity's p-value against the adjusted threshold.
* :func:`plot_spec_curve` -- the specification curve of a sweep: the headline estimate
  across grid points, sorted, with the spec choices as a dot matrix below.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state) and
returns it; :func:`prism_stats._io.save_figure` writes PNG and PDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .calibration import CalibrationResult, calibration_test, rank_boundaries, simultaneous_band

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # local: matplotlib only once a figure is drawn

FLAG_COLOUR = "#C44E52"
OK_COLOUR = "#4C72B0"
BAND_COLOUR = "#8C8C8C"


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def default_panels(calibration: CalibrationResult, max_panels: int = 30) -> list[str]:
    """Quantities shown by default: every flagged one, then the worst (smallest p-value)
    quantity of each variable, up to *max_panels*."""
    t = calibration.table
    chosen = list(t.loc[t["flagged"]].sort_values("p_value")["quantity"])
    worst = t.sort_values("p_value").drop_duplicates("variable")
    chosen += [q for q in worst["quantity"] if q not in chosen]
    return chosen[:max_panels]


def plot_ecdf_difference(
    ranks: xr.Dataset,
    calibration: CalibrationResult | None = None,
    quantities: Sequence[str] | None = None,
    *,
    max_panels: int = 30,
    ncols: int = 5,
) -> Figure:
    """ECDF-difference plots of SBC ranks with simultaneous bands.

    Parameters
    ----------
    ranks : xarray.Dataset
        Output of :func:`prism_stats.sweeps.sbc.run_sbc` (``rank``: replicate x quantity;
        attribute ``n_draws``).
    calibration : CalibrationResult, optional
        The test of *ranks* (computed when omitted).
    quantities : sequence of str, optional
        Panels to draw (default :func:`default_panels`).
    """
    calibration = calibration or calibration_test(ranks)
    L = calibration.n_draws
    quantities = list(quantities) if quantities is not None else default_panels(calibration, max_panels)
    unknown = set(quantities) - set(map(str, ranks["quantity"].values))
    if unknown:
        raise ValueError(f"unknown quantities: {sorted(unknown)[:5]}")
    table = calibration.table.set_index("quantity")
    K = len(calibration.table)
    n_panels = max(len(quantities), 1)
    ncols = min(ncols, n_panels)
    nrows = int(np.ceil(n_panels / ncols))
    fig = _new_figure(2.3 * ncols, 1.9 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    for ax in axes[len(quantities):]:
        ax.set_visible(False)
    bounds = rank_boundaries(L)
    for ax, q in zip(axes, quantities, strict=False):
        r = ranks["rank"].sel(quantity=q).values.astype(float)
        r = r[np.isfinite(r)]
        n = len(r)
        wide = simultaneous_band(n, L, calibration.alpha / K)
        narrow = simultaneous_band(n, L, calibration.alpha)
        for band, alpha in ((wide, 0.18), (narrow, 0.35)):
            x = np.concatenate(([0.0], band.z, [1.0]))
            lo = np.concatenate(([0.0], band.lower / n - band.z, [0.0]))
            hi = np.concatenate(([0.0], band.upper / n - band.z, [0.0]))
            ax.fill_between(x, lo, hi, step="mid", color=BAND_COLOUR, alpha=alpha, lw=0)
        counts = np.searchsorted(np.sort(r), bounds, side="left")
        z = bounds / (L + 1)
        flagged = bool(table.loc[q, "flagged"])
        ax.step(np.concatenate(([0.0], z, [1.0])), np.concatenate(([0.0], counts / n - z, [0.0])),
                where="mid", color=FLAG_COLOUR if flagged else OK_COLOUR, lw=1.2)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(q if len(q) <= 34 else q[:31] + "...", fontsize=7,
                     color=FLAG_COLOUR if flagged else "black")
        ax.text(0.03, 0.04, f"p = {table.loc[q, 'p_value']:.2g}", transform=ax.transAxes, fontsize=6)
        ax.tick_params(labelsize=6)
    for ax in axes[-ncols:]:
        ax.set_xlabel("fractional rank", fontsize=7)
    verdict = "passes" if calibration.passed else f"{len(calibration.flagged)} flagged"
    fig.suptitle(f"SBC rank ECDF - uniform ({ranks.attrs.get('spec', '')}, "
                 f"{calibration.n_replicates} replicates, L = {L}; {verdict}); bands: "
                 f"{100 * (1 - calibration.alpha):.0f}% per quantity (dark), "
                 f"adjusted for {K} quantities (light)", fontsize=8)
    return fig


def plot_pvalues(calibration: CalibrationResult) -> Figure:
    """Every quantity's p-value (-log10), grouped by variable, against the per-quantity
    ``alpha`` and the Bonferroni ``alpha / K`` lines."""
    t = calibration.table.copy()
    t["order"] = np.arange(len(t))
    variables = list(dict.fromkeys(t["variable"]))
    fig = _new_figure(max(6.0, 0.12 * len(variables) + 5), 3.4)
    ax = fig.subplots()
    y = -np.log10(np.clip(t["p_value"].to_numpy(dtype=float), 1e-300, 1))
    colours = np.where(t["flagged"].to_numpy(), FLAG_COLOUR, OK_COLOUR)
    x = t["variable"].map({v: i for i, v in enumerate(variables)}).to_numpy(dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(x))
    ax.scatter(x + jitter, y, s=6, c=colours, alpha=0.7, lw=0)
    K = len(t)
    ax.axhline(-np.log10(calibration.alpha), color=BAND_COLOUR, ls=":", lw=1,
               label=f"alpha = {calibration.alpha}")
    ax.axhline(-np.log10(calibration.alpha / max(K, 1)), color=FLAG_COLOUR, ls="--", lw=1,
               label=f"alpha / K (K = {K})")
    ax.set_xticks(range(len(variables)))
    ax.set_xticklabels(variables, rotation=70, ha="right", fontsize=6)
    ax.set_ylabel("-log10 p (simultaneous ECDF test)")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("SBC calibration test per quantity", fontsize=9)
    return fig


def plot_spec_curve(
    table: pd.DataFrame,
    axes: Sequence[str],
    *,
    value: str = "mean",
    lower: str | None = "q05",
    upper: str | None = "q95",
    highlight: str | None = "is_top",
    panels: str = "country",
    ncols: int = 3,
    ylabel: str = "estimate",
    title: str = "",
) -> Figure:
    """A specification curve: one estimate per grid point, sorted, over a dot matrix of
    the spec choices (Simonsohn, Simmons & Nelson 2020).

    Parameters
    ----------
    table : DataFrame
        One row per (panel, grid point): ``point``, the *axes* columns, *value* and
        optionally the interval columns and a boolean *highlight* column (filled markers).
    axes : sequence of str
        Columns of the spec choices (rows of the dot matrix).
    panels : str
        Column splitting the curve into panels (e.g. ``country``), *ncols* per row.
    """
    panel_values = list(dict.fromkeys(table[panels])) if panels in table else [None]
    choices = [(a, v) for a in axes for v in dict.fromkeys(table[a].astype(str))]
    n_points = table["point"].nunique()
    ncols = max(1, min(ncols, len(panel_values)))
    nrows = int(np.ceil(len(panel_values) / ncols))
    panel_w = min(max(4.5, 0.12 * n_points + 2.0), 16.0)
    matrix_h = 0.17 * len(choices) + 0.4
    fig = _new_figure(panel_w * ncols + 1.5, nrows * (2.4 + matrix_h) + 0.4)
    grid = fig.add_gridspec(2 * nrows, ncols, height_ratios=[2.2, matrix_h] * nrows)
    label_points = n_points <= 40
    for j, pv in enumerate(panel_values):
        row, col = divmod(j, ncols)
        sub = table if pv is None else table.loc[table[panels] == pv]
        sub = sub.sort_values(value, kind="stable").reset_index(drop=True)
        x = np.arange(len(sub))
        top = fig.add_subplot(grid[2 * row, col])
        if lower and upper and lower in sub and upper in sub:
            top.vlines(x, sub[lower], sub[upper], color=BAND_COLOUR, lw=1)
        filled = sub[highlight].to_numpy(dtype=bool) if highlight and highlight in sub else np.ones(len(sub), bool)
        top.scatter(x[filled], sub[value][filled], color=OK_COLOUR, s=16, zorder=3)
        top.scatter(x[~filled], sub[value][~filled], facecolor="white", edgecolor=OK_COLOUR, s=16, zorder=3)
        top.set_xlim(-0.7, len(sub) - 0.3)
        top.set_title(f"{pv}" if pv is not None else "", fontsize=9)
        if col == 0:
            top.set_ylabel(ylabel, fontsize=8)
        top.tick_params(labelsize=7)
        bottom = fig.add_subplot(grid[2 * row + 1, col], sharex=top)
        top.tick_params(axis="x", labelbottom=False, length=0)
        for i, (a, v) in enumerate(choices):
            on = sub[a].astype(str).to_numpy() == v
            bottom.scatter(x[on], np.full(on.sum(), i), s=10, color="black")
            bottom.scatter(x[~on], np.full((~on).sum(), i), s=10, color="#DDDDDD")
        bottom.set_yticks(range(len(choices)))
        bottom.set_yticklabels([f"{a}: {v}" for a, v in choices] if col == 0 else [], fontsize=6)
        bottom.set_ylim(len(choices) - 0.5, -0.5)
        if label_points:
            bottom.set_xticks(x)
            bottom.set_xticklabels(sub["point"].astype(str).str[:6], rotation=90, fontsize=5)
        else:
            bottom.set_xticks([])
            bottom.set_xlabel(f"{len(sub)} specifications, sorted", fontsize=7)
        bottom.tick_params(axis="y", length=0)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
