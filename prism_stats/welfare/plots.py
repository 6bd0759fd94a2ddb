"""Figures of the welfare analyses (design- and model-based datasets alike).

Both functions build a ``matplotlib.figure.Figure`` directly (no pyplot state, so they
work under any backend, Agg included, and render inline in Jupyter) sized for a page
(at most :data:`PAGE_WIDTH` inches wide), with labels in words (``vocab.GROUP_LABELS``):
jury schemes read "Representative, 10 raters", targets "Non-white", rules "Mean rating".
Schemes and targets run down the vertical axis, so their labels never overlap, and
legends sit below the panels, off the data. Save a figure with ``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .._io import new_figure
from ..vocab import GROUP_LABELS
from .results import GAP_COLUMNS, POOLS, TARGETS, WELFARE_UNITS, sample_dims
from .summaries import exclusion_gaps

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure  # local: matplotlib only once a figure is drawn

#: The widest a figure gets (inches): a page's text block with 1-inch margins.
PAGE_WIDTH = 6.5
#: Display labels: population groups in words (``vocab.GROUP_LABELS``).
TARGET_LABELS: dict[str, str] = dict(GROUP_LABELS)
POOL_LABELS: dict[str, str] = {"representative": "Representative", **GROUP_LABELS}
RULE_LABELS: dict[str, str] = {
    "mean": "Mean rating",
    "chosen": "Chosen share",
    "veto": "Non-veto rate",
}
POOL_COLOURS: dict[str, str] = {
    "representative": "#4C72B0",
    "male": "#DD8452",
    "white": "#55A868",
    "over45": "#C44E52",
}
PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)


def _only(ds: xr.Dataset, dim: str, value: str | None) -> str:
    values = [str(v) for v in ds[dim].values]
    if value is None:
        if len(values) != 1:
            raise ValueError(f"the dataset has several {dim}s {values}; pick one with {dim}=...")
        return values[0]
    if value not in values:
        raise ValueError(f"{dim} {value!r} not in the dataset ({values})")
    return value


def scheme_label(pool: str, size: int) -> str:
    """``"Representative, 10 raters"``: a jury scheme in words."""
    return f"{POOL_LABELS.get(pool, pool)}, {int(size)} raters"


def _samples(w: xr.DataArray) -> np.ndarray:
    x = np.asarray(w.values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def _violin(ax: Axes, values: np.ndarray, pos: float, colour: str, width: float = 0.7) -> None:
    if values.size >= 2 and np.ptp(values) > 0:
        parts = ax.violinplot([values], positions=[pos], widths=width, showextrema=False,
                              orientation="horizontal")
        for body in parts["bodies"]:
            body.set_facecolor(colour)
            body.set_edgecolor("none")
            body.set_alpha(0.45)
    else:  # a degenerate distribution: a flat bar instead of a kernel density
        v = values[0] if values.size else np.nan
        ax.vlines(v, pos - width / 2, pos + width / 2, colors=colour, lw=2.0, alpha=0.6)


def _legend_below(fig: Figure, axes: Sequence[Axes]) -> None:
    """One legend for the figure, below the panels (never over data)."""
    handles, labels = {}, {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels[lab] = lab
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(len(handles), 4), fontsize=7, frameon=False)


def plot_welfare_distributions(
    ds: xr.Dataset,
    country: str | None = None,
    rule: str | None = None,
    *,
    targets: Sequence[str] | None = None,
    kind: str = "percentiles",
    show_optimum: bool = True,
    panel_size: tuple[float, float] = (3.2, 3.0),
) -> Figure:
    """Welfare distribution of every jury scheme, one panel per target population.

    In the original figure's style, turned sideways so that the schemes read in words: a
    violin per scheme, the 5/25/50/75/95th percentiles (thin 5-95 line, thick 25-75 bar,
    median tick) and the mean marked with a diamond. ``kind="percentiles"`` (the
    original's) draws the violin over the five percentiles only; ``kind="samples"`` over
    all samples between the 5th and 95th percentiles. All sample dimensions
    (``replicate``, ``chain``, ``draw``) are pooled, so design- and model-based datasets
    plot alike. A dashed line marks the best achievable welfare (its mean over draws for a
    model-based dataset).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels per row; at most :data:`PAGE_WIDTH` inches wide.
    """
    if kind not in ("percentiles", "samples"):
        raise ValueError(f"kind must be 'percentiles' or 'samples', got {kind!r}")
    country = _only(ds, "country", country)
    rule = _only(ds, "rule", rule)
    targets = list(targets) if targets is not None else [str(t) for t in ds["target"].values]
    sub = ds.sel(country=country, rule=rule)
    schemes = [str(s) for s in sub["scheme"].values]
    pools = [str(p) for p in sub["pool"].values]
    sizes = [int(v) for v in sub["size"].values]
    dims = sample_dims(sub)
    ncols = min(2, len(targets))
    nrows = -(-len(targets) // ncols)
    width = min(PAGE_WIDTH, panel_size[0] * ncols)
    height = 0.6 + nrows * max(panel_size[1] * len(schemes) / 7.0, 1.6)
    fig = new_figure(width, height)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    y = np.arange(len(schemes))[::-1]  # the first scheme on top
    for ax, target in zip(axes, targets, strict=False):
        for i, (scheme, pool) in enumerate(zip(schemes, pools, strict=True)):
            x = _samples(sub["welfare"].sel(target=target, scheme=scheme))
            if x.size == 0:
                continue
            pct = np.percentile(x, PERCENTILES)
            colour = POOL_COLOURS.get(pool, "grey")
            body = pct if kind == "percentiles" else x[(x >= pct[0]) & (x <= pct[-1])]
            _violin(ax, body, y[i], colour)
            ax.hlines(y[i], pct[0], pct[4], colors="black", lw=0.8)
            ax.hlines(y[i], pct[1], pct[3], colors="black", lw=3.0)
            ax.vlines(pct[2], y[i] - 0.12, y[i] + 0.12, colors="white", lw=1.2, zorder=3)
            ax.plot(x.mean(), y[i], marker="D", ms=4, color="black", mfc="white", zorder=4,
                    label="mean" if i == 0 else None)
        if show_optimum and "optimal_welfare" in sub:
            opt = sub["optimal_welfare"].sel(target=target)
            opt_value = (
                float(opt.mean([d for d in dims if d in opt.dims])) if opt.ndim else float(opt)
            )
            if np.isfinite(opt_value):
                ax.axvline(opt_value, ls="--", lw=0.8, color="grey", label="best LLM for the target")
        ax.set_yticks(y, [scheme_label(p, n) for p, n in zip(pools, sizes, strict=True)], fontsize=7)
        ax.set_title(f"Welfare of: {TARGET_LABELS.get(target, target)}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", lw=0.3, alpha=0.5)
    for ax in axes[len(targets):]:
        ax.set_visible(False)
    for ax in axes[len(targets) - ncols:len(targets)]:
        ax.set_xlabel(WELFARE_UNITS.get(rule, rule), fontsize=7)
    _legend_below(fig, axes[:len(targets)])
    method = ds.attrs.get("method", "")
    fig.suptitle(f"{country.upper()} · {RULE_LABELS.get(rule, rule)} · {method}-based juries".strip(),
                 fontsize=9)
    return fig


def plot_exclusion_gaps(
    data: xr.Dataset | pd.DataFrame,
    country: str | None = None,
    *,
    rules: Sequence[str] | None = None,
    panel_size: tuple[float, float] = (2.1, 2.6),
) -> Figure:
    """Exclusion gaps: point (mean) and 90% interval per skewed pool x target.

    *data* is a welfare dataset (the gaps are computed with
    :func:`~prism_stats.welfare.results.exclusion_gaps`) or that function's table.
    One panel per rule (units differ between rules); targets on the vertical axis (in
    words), pools side by side in colour, the legend below the panels; a vertical line at
    0 (no gap).

    Returns
    -------
    matplotlib.figure.Figure
        At most :data:`PAGE_WIDTH` inches wide.
    """
    from matplotlib.ticker import MaxNLocator  # local: as new_figure

    gaps = exclusion_gaps(data) if isinstance(data, xr.Dataset) else data
    missing = [c for c in GAP_COLUMNS if c not in gaps.columns]
    if missing:
        raise ValueError(f"gap table lacks columns {missing}")
    countries = list(dict.fromkeys(gaps["country"].astype(str)))
    if country is None:
        if len(countries) != 1:
            raise ValueError(f"several countries {countries}; pick one with country=...")
        country = countries[0]
    gaps = gaps[gaps["country"].astype(str) == country]
    if gaps.empty:
        raise ValueError(f"no exclusion gaps for country {country!r}")
    rules = list(rules) if rules is not None else list(dict.fromkeys(gaps["rule"].astype(str)))
    targets = [t for t in TARGETS if t in set(gaps["target"])]
    pools = [p for p in POOLS if p in set(gaps["pool"])]
    fig = new_figure(min(PAGE_WIDTH, 0.9 + panel_size[0] * len(rules)), panel_size[1] + 0.4)
    axes = fig.subplots(1, len(rules), sharey=True, squeeze=False)[0]
    offsets = np.linspace(-0.25, 0.25, len(pools)) if len(pools) > 1 else np.zeros(1)
    for ax, rule in zip(axes, rules, strict=True):
        sub = gaps[gaps["rule"] == rule]
        for k, pool in enumerate(pools):
            rows = sub[sub["pool"] == pool].set_index("target").reindex(targets)
            yy = np.arange(len(targets)) + offsets[k]
            mean = rows["gap_mean"].to_numpy(dtype=float)
            # A skewed gap distribution can put its mean outside the 5-95% quantiles (e.g.
            # mostly-zero gaps of single juries); the bar then starts at the mean.
            lo = np.maximum(mean - rows["gap_q05"].to_numpy(dtype=float), 0.0)
            hi = np.maximum(rows["gap_q95"].to_numpy(dtype=float) - mean, 0.0)
            ax.errorbar(mean, yy, xerr=np.vstack([lo, hi]), fmt="o", ms=3.5, capsize=2, lw=1,
                        color=POOL_COLOURS.get(pool, "grey"),
                        label=f"jury from: {POOL_LABELS.get(pool, pool)}")
        ax.axvline(0.0, color="black", lw=0.7)
        ax.set_yticks(range(len(targets)), [TARGET_LABELS.get(t, t) for t in targets], fontsize=7)
        ax.set_title(RULE_LABELS.get(rule, rule), fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("skewed − representative", fontsize=7)
        ax.grid(axis="x", lw=0.3, alpha=0.5)
    axes[0].invert_yaxis()  # shared: the first target on top in every panel
    axes[0].set_ylabel("welfare of", fontsize=7)
    _legend_below(fig, axes)
    fig.suptitle(f"{country.upper()} · exclusion gaps (mean, 90% interval)", fontsize=9)
    return fig
