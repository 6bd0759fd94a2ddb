"""Figures of the welfare analyses (design- and model-based datasets alike).

Both functions build a ``matplotlib.figure.Figure`` directly (no pyplot state, so they
work under any backend, Agg included) with a size fixed by the number of panels, and
return it; save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .results import GAP_COLUMNS, POOLS, TARGETS, WELFARE_UNITS, sample_dims
from .summaries import exclusion_gaps

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure  # local: matplotlib only once a figure is drawn

#: Display labels (the original figure's wording where it had one).
TARGET_LABELS: dict[str, str] = {
    "all": "Rep",
    "nonmale": "Non-Male",
    "nonwhite": "Non-White",
    "under45": "<45 Yrs",
}
POOL_LABELS: dict[str, str] = {
    "representative": "Representative",
    "male": "Male",
    "white": "White",
    "over45": "45+ Yrs",
}
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


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _samples(w: xr.DataArray) -> np.ndarray:
    x = np.asarray(w.values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def _violin(ax: Axes, values: np.ndarray, pos: float, colour: str, width: float = 0.7) -> None:
    if values.size >= 2 and np.ptp(values) > 0:
        parts = ax.violinplot([values], positions=[pos], widths=width, showextrema=False)
        for body in parts["bodies"]:
            body.set_facecolor(colour)
            body.set_edgecolor("none")
            body.set_alpha(0.45)
    else:  # a degenerate distribution: a flat bar instead of a kernel density
        v = values[0] if values.size else np.nan
        ax.hlines(v, pos - width / 2, pos + width / 2, colors=colour, lw=2.0, alpha=0.6)


def plot_welfare_distributions(
    ds: xr.Dataset,
    country: str | None = None,
    rule: str | None = None,
    *,
    targets: Sequence[str] | None = None,
    kind: str = "percentiles",
    show_optimum: bool = True,
    panel_size: tuple[float, float] = (3.2, 3.4),
) -> Figure:
    """Welfare distribution of every jury scheme, one panel per target population.

    In the original figure's style: a violin per scheme, the 5/25/50/75/95th
    percentiles (thin 5-95 line, thick 25-75 bar, median tick) and the mean marked
    with a diamond.  ``kind="percentiles"`` (the original's) draws the violin over the
    five percentiles only; ``kind="samples"`` draws it over all samples between the
    5th and 95th percentiles.  All sample dimensions (``replicate``, ``chain``,
    ``draw``) are pooled, so design- and model-based datasets plot alike.  A dashed
    line marks the best achievable welfare (its mean over draws for a model-based
    dataset).

    Returns
    -------
    matplotlib.figure.Figure
        Size ``(panel_size[0] * n_targets, panel_size[1])`` inches.
    """
    if kind not in ("percentiles", "samples"):
        raise ValueError(f"kind must be 'percentiles' or 'samples', got {kind!r}")
    country = _only(ds, "country", country)
    rule = _only(ds, "rule", rule)
    targets = list(targets) if targets is not None else [str(t) for t in ds["target"].values]
    sub = ds.sel(country=country, rule=rule)
    schemes = [str(s) for s in sub["scheme"].values]
    pools = [str(p) for p in sub["pool"].values]
    dims = sample_dims(sub)
    fig = _new_figure(panel_size[0] * len(targets), panel_size[1])
    axes = fig.subplots(1, len(targets), sharey=True, squeeze=False)[0]
    for ax, target in zip(axes, targets, strict=True):
        for i, (scheme, pool) in enumerate(zip(schemes, pools, strict=True)):
            x = _samples(sub["welfare"].sel(target=target, scheme=scheme))
            if x.size == 0:
                continue
            pct = np.percentile(x, PERCENTILES)
            colour = POOL_COLOURS.get(pool, "grey")
            body = pct if kind == "percentiles" else x[(x >= pct[0]) & (x <= pct[-1])]
            _violin(ax, body, i, colour)
            ax.vlines(i, pct[0], pct[4], colors="black", lw=0.8)
            ax.vlines(i, pct[1], pct[3], colors="black", lw=3.0)
            ax.hlines(pct[2], i - 0.12, i + 0.12, colors="white", lw=1.2, zorder=3)
            ax.plot(i, x.mean(), marker="D", ms=4.5, color="black", mfc="white", zorder=4)
        if show_optimum and "optimal_welfare" in sub:
            opt = sub["optimal_welfare"].sel(target=target)
            opt_value = (
                float(opt.mean([d for d in dims if d in opt.dims])) if opt.ndim else float(opt)
            )
            if np.isfinite(opt_value):
                ax.axhline(opt_value, ls="--", lw=0.8, color="grey", label="best LLM")
        ax.set_xticks(range(len(schemes)), schemes, rotation=60, ha="right", fontsize=8)
        ax.set_title(TARGET_LABELS.get(target, target), fontsize=10)
        ax.grid(axis="y", lw=0.3, alpha=0.5)
    axes[0].set_ylabel(f"Welfare: {WELFARE_UNITS.get(rule, rule)}", fontsize=8)
    method = ds.attrs.get("method", "")
    fig.suptitle(
        f"{country.upper()} · {RULE_LABELS.get(rule, rule)} · {method}-based".strip(), fontsize=10
    )
    return fig


def plot_exclusion_gaps(
    data: xr.Dataset | pd.DataFrame,
    country: str | None = None,
    *,
    rules: Sequence[str] | None = None,
    panel_size: tuple[float, float] = (3.6, 3.0),
) -> Figure:
    """Exclusion gaps: point (mean) and 90% interval per skewed pool x target.

    *data* is a welfare dataset (the gaps are computed with
    :func:`~prism_stats.welfare.results.exclusion_gaps`) or that function's table.
    One panel per rule (units differ between rules); targets on the vertical axis,
    pools side by side; a vertical line at 0 (no gap).

    Returns
    -------
    matplotlib.figure.Figure
        Size ``(panel_size[0] * n_rules, panel_size[1])`` inches.
    """
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
    fig = _new_figure(panel_size[0] * len(rules), panel_size[1])
    axes = fig.subplots(1, len(rules), squeeze=False)[0]
    offsets = np.linspace(-0.25, 0.25, len(pools)) if len(pools) > 1 else np.zeros(1)
    for ax, rule in zip(axes, rules, strict=True):
        sub = gaps[gaps["rule"] == rule]
        for k, pool in enumerate(pools):
            rows = sub[sub["pool"] == pool].set_index("target").reindex(targets)
            y = np.arange(len(targets)) + offsets[k]
            mean = rows["gap_mean"].to_numpy(dtype=float)
            # A skewed gap distribution can put its mean outside the 5-95% quantiles (e.g.
            # mostly-zero gaps of single juries); the bar then starts at the mean.
            lo = np.maximum(mean - rows["gap_q05"].to_numpy(dtype=float), 0.0)
            hi = np.maximum(rows["gap_q95"].to_numpy(dtype=float) - mean, 0.0)
            ax.errorbar(
                mean,
                y,
                xerr=np.vstack([lo, hi]),
                fmt="o",
                ms=4,
                capsize=2,
                lw=1,
                color=POOL_COLOURS.get(pool, "grey"),
                label=POOL_LABELS.get(pool, pool),
            )
        ax.axvline(0.0, color="black", lw=0.7)
        ax.set_yticks(range(len(targets)), [TARGET_LABELS.get(t, t) for t in targets], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(RULE_LABELS.get(rule, rule), fontsize=10)
        ax.set_xlabel("Skewed minus representative pool", fontsize=8)
        ax.grid(axis="x", lw=0.3, alpha=0.5)
    axes[-1].legend(fontsize=7, title="Seat of power", title_fontsize=7, loc="best")
    fig.suptitle(f"{country.upper()} · exclusion gaps (mean, 90% interval)", fontsize=10)
    return fig
