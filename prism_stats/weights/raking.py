"""Raking and post-stratification of a sample to census margins, with weight diagnostics.

:func:`rake` (iterative proportional fitting with optional trimming of the adjustment
factors) and :func:`poststratify` return a :class:`WeightingResult`: the weights (mean
1), convergence, Kish's design effect, the effective sample size and the balance table.
The method is described in :mod:`prism_stats.weights`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .margins import (
    MarginKey,
    WeightingError,
    _check_consistency,
    _encode,
    _EncodedMargin,
    _max_error,
    _weighted_shares,
    census_margins,
    margin_name,
)


class RakingConvergenceError(WeightingError):
    """Raking did not reach the tolerance within the iteration limit."""

    def __init__(self, message: str, result: WeightingResult):
        super().__init__(message)
        self.result = result


def _trim(
    w: np.ndarray, base: np.ndarray, lo: float, hi: float, max_rounds: int = 10_000
) -> np.ndarray:
    """Clip the adjustment factors ``g = w / base`` to [lo, hi], keeping sum(w) fixed.

    Clipping and rescaling alternate until the factors are inside the bounds (the
    rescaling can push a clipped factor out again); with unit base weights ``g`` is the
    weight relative to the mean weight.
    """
    active = base > 0
    d = base[active]
    total = w[active].sum()
    g = w[active] / d
    for _ in range(max_rounds):
        g = g * total / (d @ g)
        if g.min() >= lo * (1 - 1e-12) and g.max() <= hi * (1 + 1e-12):
            break
        g = np.clip(g, lo, hi)
    out = np.zeros_like(w)
    out[active] = d * g
    return out


def _kish(w: np.ndarray) -> tuple[float, float]:
    w = w[w > 0]
    ess = float(w.sum() ** 2 / np.square(w).sum())
    return len(w) / ess, ess


def _asd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    pooled = np.sqrt((p * (1 - p) + q * (1 - q)) / 2)
    diff = np.abs(p - q)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(pooled > 0, diff / pooled, np.where(diff > 0, np.inf, 0.0))
    return out


@dataclass(frozen=True)
class WeightingResult:
    """Weights and their diagnostics.

    Attributes
    ----------
    weights
        One weight per sample unit (indexed like the sample), mean 1 over the units with
        a positive base weight.
    method
        ``"raking"`` or ``"poststratification"``.
    margins
        The margin keys used (for post-stratification: the cross-classification).
    converged, iterations, max_margin_error
        Convergence: the number of sweeps and the largest |weighted share - target
        share| over all margin categories at the end (after trimming).
    tol, max_iter, bounds
        The settings. ``bounds`` apply to the adjustment factors ``w / base``
        (``None``: no trimming).
    n_trimmed_low, n_trimmed_high
        Units whose final adjustment factor sits at the lower / upper bound.
    kish_deff, ess
        Kish's design effect due to weighting and the effective sample size.
    weight_min, weight_max
        The weight range (relative to the mean weight 1).
    balance
        One row per margin category: ``margin``, ``category``, ``target``, ``unweighted``
        (with base weights, if any), ``weighted``, ``asd_before``, ``asd_after``.
    history
        ``max_margin_error`` after each sweep.
    excluded
        Units left out before weighting, by reason (filled by
        :func:`participant_weights`).
    """

    weights: pd.Series
    method: str
    margins: tuple[MarginKey, ...]
    converged: bool
    iterations: int
    max_margin_error: float
    tol: float
    max_iter: int
    bounds: tuple[float, float] | None
    n_trimmed_low: int
    n_trimmed_high: int
    kish_deff: float
    ess: float
    weight_min: float
    weight_max: float
    balance: pd.DataFrame
    history: np.ndarray = field(repr=False)
    excluded: dict[str, int] = field(default_factory=dict)
    # What is needed to re-weight a bootstrap replicate and to form calibration residuals.
    sample: pd.DataFrame | None = field(default=None, repr=False)
    targets: dict[MarginKey, pd.Series] | None = field(default=None, repr=False)
    base_weights: np.ndarray | None = field(default=None, repr=False)
    encoded: list[_EncodedMargin] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Units with a positive weight."""
        return int((self.weights > 0).sum())

    @property
    def weight_ratio(self) -> float:
        """Largest / smallest positive weight."""
        return self.weight_max / self.weight_min

    def summary(self) -> dict[str, object]:
        """A flat dictionary of the diagnostics (for logs, JSON and tables)."""
        return {
            "method": self.method,
            "margins": [margin_name(k) for k in self.margins],
            "n": self.n,
            "converged": self.converged,
            "iterations": self.iterations,
            "max_margin_error": self.max_margin_error,
            "tol": self.tol,
            "bounds": list(self.bounds) if self.bounds else None,
            "n_trimmed_low": self.n_trimmed_low,
            "n_trimmed_high": self.n_trimmed_high,
            "kish_deff": self.kish_deff,
            "ess": self.ess,
            "weight_min": self.weight_min,
            "weight_max": self.weight_max,
            "weight_ratio": self.weight_ratio,
            "max_asd_before": float(self.balance["asd_before"].max()),
            "max_asd_after": float(self.balance["asd_after"].max()),
            "excluded": dict(self.excluded),
        }

    def calibration_matrix(self) -> np.ndarray:
        """Indicator matrix (units x margin categories) of the calibration variables."""
        if self.sample is None or self.targets is None:
            raise WeightingError("this result does not carry its sample and margins")
        active = np.ones(len(self.sample), dtype=bool)
        encoded = self.encoded or [
            _encode(self.sample, k, t, active) for k, t in self.targets.items()
        ]
        blocks = []
        for enc in encoded:
            block = np.zeros((len(self.sample), len(enc.labels)))
            block[np.arange(len(self.sample)), enc.codes] = 1.0
            blocks.append(block)
        return np.hstack(blocks)

    def reweight(self, base_weights: np.ndarray) -> np.ndarray:
        """Weights of the same sample, margins and settings from new base weights.

        Used by the bootstrap (base weights = resampling multiplicities). Units with
        base weight 0 get weight 0. Returns the weights on the scale of
        :attr:`weights` (mean 1 over units with positive base weight).
        """
        if self.sample is None or self.targets is None:
            raise WeightingError("this result does not carry its sample and margins")
        base = np.asarray(base_weights, dtype=float)
        if self.method == "poststratification":
            key = self.margins[0]
            return _poststratify_weights(self.sample, key, self.targets[key], base)
        encoded = self.encoded or [
            _encode(self.sample, k, t, np.ones(len(self.sample), dtype=bool))
            for k, t in self.targets.items()
        ]
        if base.shape != (len(self.sample),) or (base < 0).any() or not (base > 0).any():
            raise WeightingError("base_weights must be >= 0, not all zero, one per unit")
        base = base / base[base > 0].mean()
        _check_filled(encoded, base > 0)
        w, history, converged, _ = _ipf(encoded, base, self.max_iter, self.tol, self.bounds)
        if not converged:
            raise RakingConvergenceError(
                f"re-weighting did not converge (max margin error {history[-1]:.3g})", self
            )
        return w


def _balance(margins: list[_EncodedMargin], w: np.ndarray, base: np.ndarray) -> pd.DataFrame:
    rows = []
    for m in margins:
        before = _weighted_shares(m, base)
        after = _weighted_shares(m, w)
        asd_b, asd_a = _asd(before, m.share), _asd(after, m.share)
        for i, lab in enumerate(m.labels):
            rows.append(
                (
                    margin_name(m.key),
                    " | ".join(lab),
                    m.share[i],
                    before[i],
                    after[i],
                    asd_b[i],
                    asd_a[i],
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "margin",
            "category",
            "target",
            "unweighted",
            "weighted",
            "asd_before",
            "asd_after",
        ],
    )


def _prepare_base(sample: pd.DataFrame, base_weights) -> np.ndarray:
    if base_weights is None:
        return np.ones(len(sample))
    base = np.asarray(
        base_weights.reindex(sample.index) if isinstance(base_weights, pd.Series) else base_weights,
        dtype=float,
    )
    if base.shape != (len(sample),):
        raise WeightingError(f"base_weights has shape {base.shape}, expected ({len(sample)},)")
    if not np.isfinite(base).all() or (base < 0).any() or not (base > 0).any():
        raise WeightingError("base_weights must be finite, non-negative and not all zero")
    return base / base[base > 0].mean()


def _check_filled(encoded: list[_EncodedMargin], active: np.ndarray) -> None:
    for m in encoded:
        filled = np.bincount(m.codes[active], minlength=len(m.labels)) > 0
        empty = (m.share > 0) & ~filled
        if empty.any():
            raise WeightingError(
                f"margin {margin_name(m.key)}: no units with positive weight in "
                f"{[' | '.join(m.labels[i]) for i in np.flatnonzero(empty)]}"
            )


def _ipf(
    encoded: list[_EncodedMargin],
    base: np.ndarray,
    max_iter: int,
    tol: float,
    bounds: tuple[float, float] | None,
) -> tuple[np.ndarray, list[float], bool, int]:
    """The raking sweeps. Returns weights (mean 1 over active units), history,
    convergence flag and the number of sweeps."""
    active = base > 0
    n_active = active.sum()
    w = base.copy()
    history: list[float] = []
    converged = False
    iteration = 0
    for iteration in range(1, max_iter + 1):
        for m in encoded:
            totals = np.bincount(m.codes, weights=w, minlength=len(m.labels))
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(totals > 0, m.share * n_active / totals, 0.0)
            w = w * factor[m.codes]
        if bounds is not None:
            w = _trim(w, base, *bounds)
        error = _max_error(encoded, w)
        history.append(error)
        if error < tol:
            converged = True
            break
    # Mean 1 over the active units (raking and trimming preserve the total).
    return w / w[active].mean(), history, converged, iteration


def rake(
    sample: pd.DataFrame,
    margins: Mapping[MarginKey, pd.Series],
    *,
    base_weights: pd.Series | np.ndarray | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    bounds: tuple[float, float] | None = None,
    strict: bool = True,
) -> WeightingResult:
    """Rake a sample to population margins (iterative proportional fitting).

    Parameters
    ----------
    sample
        One row per unit, with a column for every variable named in *margins*
        (values matched to the margin categories as strings; categoricals are fine).
    margins
        Margin key (column name, or tuple of names for a cross-classification) ->
        target shares or counts (normalised to shares) indexed by category label
        (a MultiIndex, or an index of tuples, for cross-classifications).
        :func:`census_margins` builds them from a census frame.
    base_weights
        Starting (design) weights, >= 0; units with 0 keep weight 0. Default: 1.
    max_iter
        Maximum number of sweeps over the margins.
    tol
        Convergence tolerance on the largest absolute share error.
    bounds
        ``(lo, hi)`` trimming bounds on the adjustment factors ``w / base`` (with unit
        base weights: relative to the mean weight), ``0 <= lo < 1 < hi``.
    strict
        If True (default) non-convergence raises :class:`RakingConvergenceError`
        (which carries the result); otherwise the result is returned with
        ``converged=False``.

    Returns
    -------
    WeightingResult

    Raises
    ------
    WeightingError
        Missing values in a raking variable, sample categories absent from a margin,
        margin categories with a positive target but no sample units (empty cells),
        inconsistent margins, bad bounds or base weights.
    RakingConvergenceError
        When ``strict`` and the tolerance is not reached in ``max_iter`` sweeps.
    """
    if not margins:
        raise WeightingError("no margins given")
    if max_iter < 1 or not tol > 0:
        raise WeightingError("max_iter must be >= 1 and tol > 0")
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not (0 <= lo < 1 < hi):
            raise WeightingError(f"bounds {bounds!r} must satisfy 0 <= lo < 1 < hi")
        bounds = (lo, hi)
    if sample.index.has_duplicates:
        raise WeightingError("sample index has duplicates")
    base = _prepare_base(sample, base_weights)
    active = base > 0
    encoded = [_encode(sample, key, target, active) for key, target in margins.items()]
    _check_consistency(encoded)

    w, history, converged, iteration = _ipf(encoded, base, max_iter, tol, bounds)
    weights = pd.Series(w, index=sample.index, name="weight")
    deff, ess = _kish(w)
    balance = _balance(encoded, w, base)
    rel = w[active]
    g = rel / base[active]
    n_low = int(np.isclose(g, bounds[0], rtol=1e-9).sum()) if bounds else 0
    n_high = int(np.isclose(g, bounds[1], rtol=1e-9).sum()) if bounds else 0
    result = WeightingResult(
        weights=weights,
        method="raking",
        margins=tuple(margins),
        converged=converged,
        iterations=iteration,
        max_margin_error=float(history[-1]),
        tol=tol,
        max_iter=max_iter,
        bounds=bounds,
        n_trimmed_low=n_low,
        n_trimmed_high=n_high,
        kish_deff=deff,
        ess=ess,
        weight_min=float(rel.min()),
        weight_max=float(rel.max()),
        balance=balance,
        history=np.asarray(history),
        sample=sample,
        targets={k: v for k, v in margins.items()},
        base_weights=base,
        encoded=encoded,
    )
    if strict and not converged:
        worst = max(encoded, key=lambda m: float(np.abs(_weighted_shares(m, w) - m.share).max()))
        raise RakingConvergenceError(
            f"raking did not converge in {max_iter} sweeps: max margin error "
            f"{result.max_margin_error:.3g} > tol {tol:g} (worst margin: "
            f"{margin_name(worst.key)}"
            + (f"; bounds {bounds} may be infeasible" if bounds else "")
            + "). The margins may be jointly unattainable for this sample (e.g. every "
            "unit of one category falls in a category of another margin whose target is "
            "smaller); collapse categories or drop a margin. Pass strict=False to inspect "
            "the result.",
            result,
        )
    return result


# --- post-stratification --------------------------------------------------------------------


def _poststratify_weights(
    sample: pd.DataFrame, key: MarginKey, target: pd.Series, base: np.ndarray
) -> np.ndarray:
    active = base > 0
    enc = _encode(sample, key, target, active)
    totals = np.bincount(enc.codes, weights=base, minlength=len(enc.labels))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(totals > 0, enc.share * active.sum() / totals, 0.0)
    w = base * factor[enc.codes]
    return w / w[active].mean()


def poststratify(
    sample: pd.DataFrame,
    frame: pd.DataFrame,
    variables: Sequence[str] = ("age", "sex", "ethnicity"),
    *,
    base_weights: pd.Series | np.ndarray | None = None,
) -> WeightingResult:
    """Cell post-stratification weights: population share / sample share of each cell.

    The cells are the cross-classification of *variables* in the census *frame*;
    every population cell must contain at least one sample unit.

    Raises
    ------
    WeightingError
        If a population cell is empty in the sample (listing them), or the sample has
        cells the population lacks, or a variable is missing.
    """
    key: MarginKey = tuple(variables) if len(variables) > 1 else variables[0]
    target = census_margins(frame, [key])[key]
    base = _prepare_base(sample, base_weights)
    try:
        w = _poststratify_weights(sample, key, target, base)
    except WeightingError as err:
        raise WeightingError(
            f"post-stratification needs every cell filled: {err}. Use rake() instead."
        ) from err
    active = base > 0
    one_way = {v: census_margins(frame, [v])[v] for v in variables}
    encoded = [_encode(sample, k, t, active) for k, t in one_way.items()]
    encoded.append(_encode(sample, key, target, active))
    deff, ess = _kish(w)
    rel = w[active]
    return WeightingResult(
        weights=pd.Series(w, index=sample.index, name="weight"),
        method="poststratification",
        margins=(key,),
        converged=True,
        iterations=0,
        max_margin_error=_max_error(encoded, w),
        tol=0.0,
        max_iter=0,
        bounds=None,
        n_trimmed_low=0,
        n_trimmed_high=0,
        kish_deff=deff,
        ess=ess,
        weight_min=float(rel.min()),
        weight_max=float(rel.max()),
        balance=_balance(encoded, w, base),
        history=np.zeros(0),
        sample=sample,
        targets={key: target},
        base_weights=base,
    )


def kish_deff(weights: np.ndarray | pd.Series) -> float:
    """Kish's design effect due to unequal weighting, ``n sum(w^2) / (sum w)^2``."""
    return _kish(np.asarray(weights, dtype=float))[0]


def effective_sample_size(weights: np.ndarray | pd.Series) -> float:
    """Kish's effective sample size, ``(sum w)^2 / sum(w^2)``."""
    return _kish(np.asarray(weights, dtype=float))[1]
