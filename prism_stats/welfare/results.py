"""Shared result schema of the welfare analyses (design-based juries and model-based).

Both welfare analyses answer the same question -- *if a jury drawn from a rater pool
picks one LLM, how well is a target population served?* -- and store the answer in
one ``xarray.Dataset`` layout, so that the summaries, the first-order stochastic
dominance (FOSD) check, the exclusion gaps (:mod:`prism_stats.welfare.summaries`), the
figures and the report work on either.

Schema
------
Dimensions

``country``
    ``"uk"`` / ``"us"``.
``rule``
    choice rule of the jury: ``"mean"`` (highest mean rating), ``"chosen"`` (highest
    mean chosen share), ``"veto"`` (lowest mean veto rate, i.e. highest ``1 - veto``).
``scheme``
    jury scheme, named ``"rep_<size>"`` for the representative pool and
    ``"<pool>_<size>"`` otherwise (``"male_100"``, ``"white_100"``, ``"over45_100"``);
    non-dimension coordinates ``pool`` (one of :data:`POOLS`) and ``size`` (int).
``target``
    the welfare population: one of :data:`TARGETS`.
``llm``
    LLM short names (``prism_stats.vocab.LLM_SHORT_NAMES`` order).
sample dimensions
    ``replicate`` (jury replicates) and, for the model-based analysis, ``chain`` and
    ``draw`` (posterior draws).  Every summary reduces over all of
    :data:`SAMPLE_DIMS` that are present.

Variables

``chosen_llm`` (int16)
    the LLM the jury picked, as a position in the ``llm`` coordinate (``-1``: none).
    Dimensions ``(country, rule, scheme, replicate)`` plus ``target`` when the juries
    were drawn separately for each target (the original study's loop) and plus
    ``chain``/``draw`` where present. :func:`chosen_llm_labels` decodes it.
``llm_welfare``
    the welfare each LLM would give each target, ``(country, rule, target, llm)``
    (plus ``chain``/``draw`` for the model-based analysis).
``optimal_welfare``
    the best achievable welfare, the maximum of ``llm_welfare`` over ``llm``.
``welfare``
    ``llm_welfare`` at the pick: ``(country, rule, target, scheme, replicate, ...)``.
``regret``
    ``optimal_welfare - welfare`` (>= 0; exactly 0 when the pick is optimal, because
    both come from the same ``llm_welfare`` table -- build datasets with
    :func:`welfare_dataset` to keep that guarantee).

Attributes: ``method`` (``"design"`` | ``"model"``), ``seed``, ``n_replicates``,
``imputed`` (0/1), ``data_hash`` (when known), ``welfare_units`` and ``created``;
netCDF cannot hold booleans or ``None``, so flags are stored as 0/1 and absent values
are left out.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from prism_stats._io import now_iso

#: Rater pools ("seats of power") a jury can be drawn from.
POOLS: tuple[str, ...] = ("representative", "male", "white", "over45")
#: Welfare populations (targets) whose welfare is measured.
TARGETS: tuple[str, ...] = ("all", "nonmale", "nonwhite", "under45")
#: Jury choice rules.
RULES: tuple[str, ...] = ("mean", "chosen", "veto")
#: Sizes of the representative juries of the original study.
JURY_SIZES: tuple[int, ...] = (10, 20, 50, 100)
#: Size of the juries drawn from the skewed pools in the original study.
SKEWED_SIZE: int = 100
#: The sample dimensions every summary reduces over (those present).
SAMPLE_DIMS: tuple[str, ...] = ("chain", "draw", "replicate")
#: The scheme everything is compared with (FOSD) in the original study.
REFERENCE_SCHEME: str = "rep_100"
#: Units of the welfare of each rule (the rule's own per-user table, oriented so that
#: higher is better).
WELFARE_UNITS: dict[str, str] = {
    "mean": "mean opening-turn rating (1-100)",
    "chosen": "share of opening turns in which the LLM was chosen (0-1)",
    "veto": "share of opening-turn ratings above the veto threshold, 1 - veto rate (0-1)",
}

SUMMARY_COLUMNS: tuple[str, ...] = (
    "country",
    "rule",
    "pool",
    "size",
    "target",
    "welfare_mean",
    "welfare_q05",
    "welfare_q95",
    "regret_mean",
    "p_optimal",
)
GAP_COLUMNS: tuple[str, ...] = (
    "country",
    "rule",
    "target",
    "pool",
    "size",
    "gap_mean",
    "gap_q05",
    "gap_q95",
    "p_worse",
    "n_pairs",
)
FOSD_COLUMNS: tuple[str, ...] = (
    "country",
    "rule",
    "target",
    "scheme",
    "pool",
    "size",
    "reference",
    "dominated_by_reference",
    "dominates_reference",
    "max_cdf_excess",
    "n",
    "n_reference",
)

_POOL_PREFIX = {"representative": "rep", "male": "male", "white": "white", "over45": "over45"}
_PREFIX_POOL = {v: k for k, v in _POOL_PREFIX.items()}


class WelfareResultError(ValueError):
    """A welfare dataset does not follow the shared schema."""


# --- schemes ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Scheme:
    """A jury scheme: juries of ``size`` raters drawn with replacement from ``pool``."""

    pool: str
    size: int

    def __post_init__(self) -> None:
        # The standard pools, or a user-defined pool name (model-based welfare): letters and
        # digits only, so that "<pool>_<size>" parses back unambiguously.
        if self.pool not in POOLS and not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(self.pool)):
            raise WelfareResultError(
                f"unknown pool {self.pool!r}; expected one of {POOLS} or a custom name of "
                "letters and digits"
            )
        if self.pool == "rep":
            raise WelfareResultError("'rep' is reserved for the representative pool")
        if int(self.size) < 1:
            raise WelfareResultError(f"jury size must be >= 1, got {self.size!r}")

    @property
    def name(self) -> str:
        """``"rep_10"``, ``"male_100"``, ..."""
        return f"{_POOL_PREFIX.get(self.pool, self.pool)}_{int(self.size)}"

    @classmethod
    def parse(cls, name: str) -> Scheme:
        """Inverse of :attr:`name`."""
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)_(\d+)", str(name))
        if m is None:
            raise WelfareResultError(
                f"bad scheme name {name!r}; expected '<rep|male|white|over45|custom>_<size>'"
            )
        return cls(_PREFIX_POOL.get(m.group(1), m.group(1)), int(m.group(2)))


def build_schemes(
    sizes: Iterable[int] = JURY_SIZES,
    pools: Iterable[str] = POOLS,
    skewed_sizes: Iterable[int] = (SKEWED_SIZE,),
) -> list[Scheme]:
    """The jury schemes of a run, in the original study's order.

    Representative juries get every size in *sizes*; each skewed pool in *pools* gets
    every size in *skewed_sizes*.  Whenever a skewed pool is requested, the
    representative pool at the same size is added (even if ``"representative"`` is
    not in *pools*), because the exclusion gaps and the FOSD check compare against it.
    The defaults give the original seven schemes ``rep_10, rep_20, rep_50, rep_100,
    male_100, white_100, over45_100``.
    """
    pools = list(dict.fromkeys(pools))
    for p in pools:
        if p not in POOLS:
            raise WelfareResultError(f"unknown pool {p!r}; expected one of {POOLS}")
    sizes = [int(s) for s in dict.fromkeys(sizes)]
    skewed_sizes = [int(s) for s in dict.fromkeys(skewed_sizes)]
    skewed = [p for p in POOLS if p in pools and p != "representative"]
    rep_sizes = list(sizes) if "representative" in pools else []
    if skewed:
        rep_sizes += [s for s in skewed_sizes if s not in rep_sizes]
    if not rep_sizes and not skewed:
        raise WelfareResultError("no jury scheme requested (empty pools or sizes)")
    out = [Scheme("representative", s) for s in sorted(rep_sizes)]
    out += [Scheme(p, s) for p in skewed for s in skewed_sizes]
    return out


def scheme_coords(schemes: Sequence[Scheme]) -> dict[str, Any]:
    """Coordinates of the ``scheme`` dimension (names plus ``pool`` and ``size``)."""
    return {
        "scheme": ("scheme", [s.name for s in schemes]),
        "pool": ("scheme", [s.pool for s in schemes]),
        "size": ("scheme", np.array([s.size for s in schemes], dtype=np.int64)),
    }


# --- assembling a dataset -----------------------------------------------------------------


def _pick(llm_welfare: np.ndarray, code: np.ndarray) -> np.ndarray:
    safe = np.where(code < 0, 0, code).astype(np.intp)
    out = np.take_along_axis(llm_welfare, safe[..., None], axis=-1)[..., 0]
    return np.where(code < 0, np.nan, out)


def welfare_dataset(
    chosen_llm: xr.DataArray,
    llm_welfare: xr.DataArray,
    *,
    method: str,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Assemble a welfare dataset from the picks and the per-LLM welfare table.

    Parameters
    ----------
    chosen_llm
        Integer positions in ``llm_welfare``'s ``llm`` coordinate (``-1`` = no pick),
        with dims ``(country, rule, scheme)``, at least one sample dimension
        (``replicate``, ``chain``, ``draw``), optionally ``target``, and the ``scheme``
        coordinates of :func:`scheme_coords` (``pool``, ``size``).
    llm_welfare
        Welfare of each LLM for each target, dims ``(country, rule, target, llm)``
        (plus ``chain``/``draw`` for the model-based analysis).
    method
        ``"design"``, ``"model"`` or ``"truth"`` (simulated under a synthetic generator).
    attrs
        Extra dataset attributes (seed, n_replicates, imputed, data_hash, ...).
        ``None`` values are dropped and booleans stored as 0/1 (netCDF-safe).

    Returns
    -------
    xarray.Dataset
        Variables ``chosen_llm``, ``llm_welfare``, ``optimal_welfare``, ``welfare`` and
        ``regret``.  Welfare and regret are looked up in the one ``llm_welfare`` table,
        so ``regret`` is exactly 0 for an optimal pick.
    """
    if method not in ("design", "model", "truth"):
        raise WelfareResultError(f"method must be 'design', 'model' or 'truth', got {method!r}")
    for dim in ("country", "rule", "scheme"):
        if dim not in chosen_llm.dims:
            raise WelfareResultError(f"chosen_llm lacks dimension {dim!r}: {chosen_llm.dims}")
    if not sample_dims(chosen_llm):
        raise WelfareResultError(
            f"chosen_llm has no sample dimension among {SAMPLE_DIMS}: {chosen_llm.dims}"
        )
    for dim in ("country", "rule", "target", "llm"):
        if dim not in llm_welfare.dims:
            raise WelfareResultError(f"llm_welfare lacks dimension {dim!r}: {llm_welfare.dims}")
    n_llm = llm_welfare.sizes["llm"]
    codes = np.asarray(chosen_llm.values)
    if not np.issubdtype(codes.dtype, np.integer):
        raise WelfareResultError(f"chosen_llm must hold integer codes, got {codes.dtype}")
    if codes.size and (codes.max() >= n_llm or codes.min() < -1):
        raise WelfareResultError(f"chosen_llm codes outside [-1, {n_llm - 1}]")
    if "pool" not in chosen_llm.coords or "size" not in chosen_llm.coords:
        # Derive the scheme's pool and size from its name ("male_100", ...).
        parsed = [Scheme.parse(str(name)) for name in chosen_llm["scheme"].values]
        chosen_llm = chosen_llm.assign_coords(scheme_coords(parsed))
    chosen = chosen_llm.astype(np.int16)
    chosen.attrs = {
        "long_name": "LLM picked by the jury",
        "encoding": "position in the 'llm' coordinate; -1 = no pick",
    }
    lw = llm_welfare.astype(np.float64)
    welfare = xr.apply_ufunc(
        _pick, lw, chosen, input_core_dims=[["llm"], []], output_dtypes=[np.float64]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (nobody saw any LLM)
        optimal = lw.max("llm", skipna=True)
    regret = optimal - welfare
    lead = [d for d in ("country", "rule", "target", "scheme") if d in welfare.dims]
    welfare = welfare.transpose(*lead, *sample_dims(welfare), ...)
    regret = regret.transpose(*welfare.dims)
    ds = xr.Dataset(
        {
            "chosen_llm": chosen,
            "llm_welfare": lw,
            "optimal_welfare": optimal,
            "welfare": welfare,
            "regret": regret,
        }
    )
    ds["welfare"].attrs["long_name"] = "welfare of the target population under the jury's pick"
    ds["regret"].attrs["long_name"] = "best achievable welfare minus welfare of the pick"
    ds["llm_welfare"].attrs["long_name"] = "welfare of the target population under each LLM"
    ds["optimal_welfare"].attrs["long_name"] = "best achievable welfare (max over LLMs)"
    meta: dict[str, Any] = {
        "method": method,
        "welfare_units": json.dumps(WELFARE_UNITS),
        "created": now_iso(),
    }
    meta.update(dict(attrs or {}))
    ds.attrs = _netcdf_attrs(meta)
    return ds


def _netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            out[key] = int(value)
        elif isinstance(value, (int, np.integer)) and not -(2**63) <= int(value) < 2**63:
            out[key] = str(int(value))
        elif isinstance(value, (list, tuple)):
            out[key] = json.dumps(list(value), default=str)
        elif isinstance(value, dict):
            out[key] = json.dumps(value, default=str)
        else:
            out[key] = value
    return out


def chosen_llm_labels(ds: xr.Dataset) -> xr.DataArray:
    """``chosen_llm`` decoded to LLM short names (``""`` where there was no pick)."""
    labels = np.append(np.asarray(ds["llm"].values, dtype=object), "")
    codes = np.asarray(ds["chosen_llm"].values)
    return ds["chosen_llm"].copy(data=labels[np.where(codes < 0, -1, codes)].astype(str))


# --- sample dimensions --------------------------------------------------------------------


def sample_dims(obj: xr.Dataset | xr.DataArray) -> list[str]:
    """The sample dimensions (:data:`SAMPLE_DIMS`) present in *obj*."""
    return [d for d in SAMPLE_DIMS if d in obj.dims]
