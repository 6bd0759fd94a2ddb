"""Summaries of welfare results (welfare, regret, exclusion gaps, FOSD) and their files.

Every function takes a dataset in the schema of :mod:`prism_stats.welfare.results`
(design-based or model-based) and reduces over its sample dimensions:
:func:`summarise_welfare`, :func:`exclusion_gaps`, :func:`fosd_table`;
:func:`write_welfare` writes a country's dataset and these tables, :func:`read_welfare`
reopens it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from prism_stats._io import atomic_path

from .results import (
    FOSD_COLUMNS,
    GAP_COLUMNS,
    POOLS,
    REFERENCE_SCHEME,
    SAMPLE_DIMS,
    SUMMARY_COLUMNS,
    Scheme,
    WelfareResultError,
    sample_dims,
)


def _check(ds: xr.Dataset, *names: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise WelfareResultError(
            f"welfare dataset lacks {missing}; see prism_stats.welfare.results"
        )
    if not sample_dims(ds):
        raise WelfareResultError(f"welfare dataset has no sample dimension among {SAMPLE_DIMS}")


def _warn_undefined(welfare: xr.DataArray) -> None:
    n_nan = int(welfare.isnull().sum())
    if n_nan:
        warnings.warn(
            f"{n_nan} of {welfare.size} welfare values are undefined (no member of the "
            "target population rated the picked LLM); they are left out of the means and "
            "quantiles and count as non-optimal picks",
            RuntimeWarning,
            stacklevel=3,
        )


def summarise_welfare(
    ds: xr.Dataset, *, quantiles: tuple[float, float] = (0.05, 0.95)
) -> pd.DataFrame:
    """Tidy summary: one row per country x rule x scheme x target.

    Reduces over every sample dimension present (``replicate``, ``chain``, ``draw``).
    ``welfare_q05``/``welfare_q95`` are the *quantiles* (default 5% and 95%) of the
    welfare over the samples (numpy's default linear interpolation); ``p_optimal`` is
    the share of samples whose pick attains the best achievable welfare (regret 0).
    Undefined welfare values (no target member saw the pick) are skipped in means and
    quantiles, count as non-optimal, and trigger a warning.

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`SUMMARY_COLUMNS`.
    """
    _check(ds, "welfare", "regret")
    dims = sample_dims(ds)
    w, r = ds["welfare"], ds["regret"]
    _warn_undefined(w)
    q = w.quantile(list(quantiles), dim=dims, skipna=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = xr.Dataset(
            {
                "welfare_mean": w.mean(dims, skipna=True),
                "welfare_q05": q.isel(quantile=0, drop=True),
                "welfare_q95": q.isel(quantile=1, drop=True),
                "regret_mean": r.mean(dims, skipna=True),
                "p_optimal": (r <= 0).where(r.notnull(), False).mean(dims),
            }
        )
    return _tidy(stats, ("country", "rule", "scheme", "target"), SUMMARY_COLUMNS)


def _tidy(stats: xr.Dataset, order: tuple[str, ...], columns: tuple[str, ...]) -> pd.DataFrame:
    # Non-dimension coordinates (``pool``, ``size`` of the scheme) become columns too.
    df = stats.transpose(*order).to_dataframe().reset_index()
    df = df[list(columns)]
    df["size"] = df["size"].astype(np.int64)
    return df.reset_index(drop=True)


def exclusion_gaps(
    ds: xr.Dataset, *, quantiles: tuple[float, float] = (0.05, 0.95)
) -> pd.DataFrame:
    """Welfare under each skewed pool minus welfare under the representative pool.

    For every target and every skewed scheme (``male_100``, ...) the gap is computed
    against the representative scheme of the same size, *paired by sample*: replicate
    ``i`` (and draw ``d``) of one scheme minus replicate ``i`` (draw ``d``) of the
    other.  In the design-based analysis the juries of different pools are drawn
    independently, so pairing by replicate is an independent coupling and the
    interval describes the difference between two independently drawn juries; in the
    model-based analysis the pairing by posterior draw carries the shared uncertainty.
    The mean gap does not depend on the pairing.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GAP_COLUMNS`: ``gap_mean``, the ``gap_q05``/``gap_q95``
        quantiles, ``p_worse`` (share of pairs in which the skewed pool serves the
        target worse) and ``n_pairs`` (pairs with both welfare values defined).

    Raises
    ------
    WelfareResultError
        When a skewed scheme has no representative scheme of the same size.
    """
    _check(ds, "welfare")
    dims = sample_dims(ds)
    pools = dict(zip(ds["scheme"].values, ds["pool"].values, strict=True))
    sizes = dict(zip(ds["scheme"].values, ds["size"].values, strict=True))
    frames = []
    for scheme, pool in pools.items():
        if pool == "representative":
            continue
        ref = Scheme("representative", int(sizes[scheme])).name
        if ref not in pools:
            raise WelfareResultError(
                f"scheme {scheme!r} has no representative scheme {ref!r} to compare with"
            )
        gap = ds["welfare"].sel(scheme=scheme, drop=True) - ds["welfare"].sel(scheme=ref, drop=True)
        q = gap.quantile(list(quantiles), dim=dims, skipna=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = xr.Dataset(
                {
                    "gap_mean": gap.mean(dims, skipna=True),
                    "gap_q05": q.isel(quantile=0, drop=True),
                    "gap_q95": q.isel(quantile=1, drop=True),
                    "p_worse": (gap < 0).sum(dims) / gap.notnull().sum(dims),
                    "n_pairs": gap.notnull().sum(dims),
                }
            )
        df = stats.transpose("country", "rule", "target").to_dataframe().reset_index()
        df["pool"] = pool
        df["size"] = int(sizes[scheme])
        frames.append(df)
    if not frames:
        return pd.DataFrame({c: [] for c in GAP_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out = _sort(out, ds, ("country", "rule", "target"))
    out["n_pairs"] = out["n_pairs"].astype(np.int64)
    return out[list(GAP_COLUMNS)].reset_index(drop=True)


def _sort(df: pd.DataFrame, ds: xr.Dataset, keys: tuple[str, ...]) -> pd.DataFrame:
    order = {k: {v: i for i, v in enumerate(ds[k].values)} for k in keys}
    pool_order = {p: i for i, p in enumerate(POOLS)}
    sort_cols = [df[k].map(order[k]) for k in keys] + [df["pool"].map(pool_order), df["size"]]
    idx = np.lexsort([np.asarray(c) for c in reversed(sort_cols)])
    return df.iloc[idx]


# --- first-order stochastic dominance -----------------------------------------------------


def fosd_dominates(upper: Iterable[float], lower: Iterable[float]) -> bool:
    """Whether the sample *upper* first-order stochastically dominates *lower*.

    True when the empirical CDF of *upper* lies nowhere above that of *lower*,
    ``F_upper(t) <= F_lower(t)`` for all ``t``.  For samples of equal size this is
    exactly the original study's check ``sorted(upper) >= sorted(lower)`` element-wise.
    NaNs are dropped; two empty samples dominate each other trivially.
    """
    return _max_cdf_excess(np.asarray(list(upper), float), np.asarray(list(lower), float)) <= 0


def _max_cdf_excess(upper: np.ndarray, lower: np.ndarray) -> float:
    """max_t F_upper(t) - F_lower(t) over the pooled sample points (<= 0: dominance)."""
    upper = np.sort(upper[~np.isnan(upper)])
    lower = np.sort(lower[~np.isnan(lower)])
    if upper.size == 0 or lower.size == 0:
        return 0.0 if upper.size == lower.size else np.nan
    # Equal sizes: F_upper(t) - F_lower(t) can only be positive if some sorted value of
    # upper falls below the matching one of lower; otherwise the excess is measured.
    if upper.size == lower.size and np.all(upper >= lower):
        return 0.0
    grid = np.union1d(upper, lower)
    f_up = np.searchsorted(upper, grid, side="right") / upper.size
    f_lo = np.searchsorted(lower, grid, side="right") / lower.size
    return float(np.max(f_up - f_lo))


def default_reference(ds: xr.Dataset) -> str:
    """``"rep_100"`` when present, else the largest representative scheme."""
    names = [str(s) for s in ds["scheme"].values]
    if REFERENCE_SCHEME in names:
        return REFERENCE_SCHEME
    reps = [Scheme.parse(s) for s in names if Scheme.parse(s).pool == "representative"]
    if not reps:
        raise WelfareResultError(f"no representative scheme to compare with among {names}")
    return max(reps, key=lambda s: s.size).name


def fosd_table(ds: xr.Dataset, *, reference: str | None = None) -> pd.DataFrame:
    """FOSD of every scheme against *reference* per country x rule x target.

    *reference* defaults to :func:`default_reference` (``"rep_100"``, the original's).

    ``dominated_by_reference`` is the original study's check: *reference*'s welfare
    sample first-order stochastically dominates the scheme's (with samples of equal
    size, ``sorted(reference) >= sorted(scheme)`` element-wise).  All sample
    dimensions present are pooled.  ``dominates_reference`` is the reverse check and
    ``max_cdf_excess`` = max over t of ``F_reference(t) - F_scheme(t)`` (<= 0 exactly
    when dominated; its size says by how much dominance fails).  The reference scheme
    itself is not listed.
    """
    _check(ds, "welfare")
    if reference is None:
        reference = default_reference(ds)
    if reference not in ds["scheme"].values:
        raise WelfareResultError(
            f"reference scheme {reference!r} not in {list(ds['scheme'].values)}"
        )
    dims = sample_dims(ds)
    w = (
        ds["welfare"]
        .stack(_sample=dims)
        .transpose("country", "rule", "target", "scheme", "_sample")
    )
    rows = []
    ref_idx = list(w["scheme"].values).index(reference)
    values = w.values
    for ic, country in enumerate(w["country"].values):
        for ir, rule in enumerate(w["rule"].values):
            for it, target in enumerate(w["target"].values):
                ref = values[ic, ir, it, ref_idx]
                for js, scheme in enumerate(w["scheme"].values):
                    if js == ref_idx:
                        continue
                    x = values[ic, ir, it, js]
                    excess = _max_cdf_excess(ref, x)
                    reverse = _max_cdf_excess(x, ref)
                    rows.append(
                        {
                            "country": str(country),
                            "rule": str(rule),
                            "target": str(target),
                            "scheme": str(scheme),
                            "pool": str(ds["pool"].sel(scheme=scheme).item()),
                            "size": int(ds["size"].sel(scheme=scheme).item()),
                            "reference": reference,
                            "dominated_by_reference": bool(excess <= 0),
                            "dominates_reference": bool(reverse <= 0),
                            "max_cdf_excess": excess,
                            "n": int(np.sum(~np.isnan(x))),
                            "n_reference": int(np.sum(~np.isnan(ref))),
                        }
                    )
    return pd.DataFrame(rows, columns=list(FOSD_COLUMNS))


# --- writing ------------------------------------------------------------------------------


def write_welfare(ds: xr.Dataset, out_dir: str | Path, country: str) -> dict[str, Path]:
    """Write one country's results atomically.

    Files: ``welfare_<country>.nc`` (the dataset, h5netcdf), ``welfare_<country>.csv``
    (:func:`summarise_welfare`), ``welfare_gaps_<country>.csv``
    (:func:`exclusion_gaps`) and ``welfare_fosd_<country>.csv`` (:func:`fosd_table`
    against :func:`default_reference`).

    Returns
    -------
    dict
        ``{"nc": path, "csv": path, "gaps": path, "fosd": path}`` of what was written.
    """
    if country not in ds["country"].values:
        raise WelfareResultError(f"country {country!r} not in dataset {list(ds['country'].values)}")
    sub = ds.sel(country=[country])
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    nc = out_dir / f"welfare_{country}.nc"
    with atomic_path(nc) as tmp:
        sub.to_netcdf(tmp, engine="h5netcdf")
    written["nc"] = nc
    tables = {
        "csv": ("welfare_", summarise_welfare(sub)),
        "gaps": ("welfare_gaps_", exclusion_gaps(sub)),
        "fosd": ("welfare_fosd_", fosd_table(sub)),
    }
    for key, (prefix, table) in tables.items():
        path = out_dir / f"{prefix}{country}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        written[key] = path
    return written


def read_welfare(path: str | Path) -> xr.Dataset:
    """Open a ``welfare_<country>.nc`` written by :func:`write_welfare` (loaded in memory)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
