"""Design-based weights: raking and post-stratification to census margins, and weighted
per-LLM estimates with participant-clustered standard errors.

These are the frequentist comparators of the MRP estimates. The workflow is::

    result = participant_weights(data.participants, "uk")       # rake residents
    table = weighted_llm_estimates(data.ratings, result)         # per-LLM estimates

or, with any sample and margins, :func:`rake` / :func:`poststratify` directly.

Raking (iterative proportional fitting)
---------------------------------------
Weights start at the base weights (1 by default, scaled to mean 1) and are multiplied,
margin after margin, by target total / weighted total of each category until every
margin matches: one sweep over all margins is one iteration, and the algorithm stops
when the largest absolute difference between a weighted share and its target share
(``max_margin_error``) is below ``tol``. Margins may be one-way (``"age"``) or any
cross-classification (``("age", "sex")``). With ``bounds=(lo, hi)`` the adjustment
factors ``g = w / base`` (with unit base weights: the weights relative to their mean)
are trimmed to ``[lo, hi]`` after every sweep, clipping and rescaling in turn, so
convergence then means "margins met *and* factors within bounds" -- an infeasible
combination does not converge and says so (as with weightipy's ``cap``, a feasible
combination can occasionally be missed too).

Weights are returned scaled to mean 1 over the sample (sum = n); multiply by
N / n for population totals.

Diagnostics: Kish's design effect due to weighting ``n sum(w^2) / (sum w)^2``, the
effective sample size ``(sum w)^2 / sum(w^2)``, the weight range, and a balance table
with, for every category of every margin, the target share, the unweighted and the
weighted sample share and the absolute standardised difference (ASD) before and after
weighting,

    ASD = |p_sample - p_target| / sqrt((p_sample (1 - p_sample) + p_target (1 - p_target)) / 2),

the pooled-standard-deviation form for a binary indicator (Austin 2009).

Standard errors of weighted estimates
-------------------------------------
A participant rates many responses, so ratings are clustered by participant. Per-LLM
estimates are ratios ``sum_i w_i a_i / sum_i w_i b_i`` over participants ``i`` (``a_i``:
the participant's summed outcome for that LLM, ``b_i``: their number of ratings of it).
Two variance estimators are offered:

* ``"linearisation"`` (default): Taylor linearisation with participants as primary
  sampling units (with-replacement approximation, ``n / (n - 1)`` correction). For raked
  or post-stratified weights the linearised scores are first replaced by their residuals
  from a weighted regression on the calibration variables (the margin indicators), the
  Deville-Särndal (1992) variance of a calibration estimator -- as R's
  ``survey::calibrate`` does. Without calibration information the weights are treated
  as fixed.
* ``"bootstrap"``: a participant bootstrap; each replicate resamples participants with
  replacement and, when the weights came from raking / post-stratification, re-weights
  the replicate to the same margins, so weighting variability is included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from prism_stats import census, vocab

MarginKey = str | tuple[str, ...]

#: Default raking margins: the three one-way census margins plus age x sex.
DEFAULT_MARGINS: tuple[MarginKey, ...] = ("age", "sex", "ethnicity", ("age", "sex"))
ONE_WAY_MARGINS: tuple[MarginKey, ...] = ("age", "sex", "ethnicity")
#: Ratings at or below this score count as a veto (the original's ``score <= 10``).
VETO_THRESHOLD: int = 10


class WeightingError(ValueError):
    """Weights cannot be computed as asked (missing values, empty cells, bad margins)."""


class RakingConvergenceError(WeightingError):
    """Raking did not reach the tolerance within the iteration limit."""

    def __init__(self, message: str, result: WeightingResult):
        super().__init__(message)
        self.result = result


# --- margins ------------------------------------------------------------------------------


def _key_columns(key: MarginKey) -> tuple[str, ...]:
    if isinstance(key, str):
        return (key,)
    cols = tuple(key)
    if not cols or not all(isinstance(c, str) for c in cols):
        raise WeightingError(f"margin key {key!r} must be a column name or a tuple of names")
    if len(set(cols)) != len(cols):
        raise WeightingError(f"margin key {key!r} repeats a column")
    return cols


def margin_name(key: MarginKey) -> str:
    """Display name of a margin: ``"age"`` or ``"age x sex"``."""
    return " x ".join(_key_columns(key))


def parse_margins(text: str) -> tuple[MarginKey, ...]:
    """Parse a CLI margin list such as ``"age,sex,ethnicity,age*sex"``."""
    keys: list[MarginKey] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        cols = tuple(p.strip() for p in part.split("*"))
        keys.append(cols[0] if len(cols) == 1 else cols)
    if not keys:
        raise WeightingError(f"no margins in {text!r}")
    return tuple(keys)


def census_margins(
    frame: pd.DataFrame,
    variables: Sequence[MarginKey] = DEFAULT_MARGINS,
    *,
    mask: np.ndarray | None = None,
) -> dict[MarginKey, pd.Series]:
    """Population shares of a census frame on the requested margins.

    Parameters
    ----------
    frame
        A census frame (:func:`prism_stats.census.frame`).
    variables
        Margins: column names for one-way margins, tuples for cross-classifications.
    mask
        Optional boolean cell mask (e.g. from :func:`prism_stats.census.group_masks`)
        to take the margins of a subgroup.

    Returns
    -------
    dict
        Margin key -> Series of shares (sum 1) indexed by category label (one-way) or
        by a MultiIndex of labels (cross-classification), in vocabulary order.
    """
    if "count" not in frame:
        raise WeightingError("census frame has no 'count' column")
    sub = frame if mask is None else frame.loc[np.asarray(mask, dtype=bool)]
    out: dict[MarginKey, pd.Series] = {}
    for key in variables:
        cols = _key_columns(key)
        missing = [c for c in cols if c not in sub]
        if missing:
            raise WeightingError(f"census frame lacks margin columns {missing}")
        counts = sub.groupby(list(cols), observed=True)["count"].sum()
        counts = counts[counts > 0]
        if isinstance(counts.index, pd.MultiIndex):
            counts.index = pd.MultiIndex.from_tuples(
                [tuple(map(str, t)) for t in counts.index], names=list(cols)
            )
        else:
            counts.index = pd.Index(counts.index.astype(str), name=cols[0])
        out[key] = (counts / counts.sum()).rename("share")
    return out


# --- the core algorithm -------------------------------------------------------------------


@dataclass(frozen=True)
class _EncodedMargin:
    key: MarginKey
    labels: tuple[tuple[str, ...], ...]  # category labels (tuples, also one-way)
    share: np.ndarray  # target shares, sum 1
    codes: np.ndarray  # unit -> category position


def _normalise_target(
    key: MarginKey, target: pd.Series
) -> tuple[list[tuple[str, ...]], np.ndarray]:
    cols = _key_columns(key)
    if not isinstance(target, pd.Series):
        target = pd.Series(target)
    values = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any() or values.sum() <= 0:
        raise WeightingError(
            f"margin {margin_name(key)}: targets must be finite, non-negative and not all zero"
        )
    labels: list[tuple[str, ...]] = []
    for item in target.index:
        tup = item if isinstance(item, tuple) else (item,)
        if len(tup) != len(cols):
            raise WeightingError(
                f"margin {margin_name(key)}: target label {item!r} does not have "
                f"{len(cols)} part(s)"
            )
        labels.append(tuple(str(x) for x in tup))
    if len(set(labels)) != len(labels):
        raise WeightingError(f"margin {margin_name(key)}: duplicate target categories")
    return labels, values / values.sum()


def _encode(
    sample: pd.DataFrame, key: MarginKey, target: pd.Series, active: np.ndarray
) -> _EncodedMargin:
    cols = _key_columns(key)
    missing = [c for c in cols if c not in sample]
    if missing:
        raise WeightingError(f"margin {margin_name(key)}: sample lacks columns {missing}")
    labels, share = _normalise_target(key, target)
    values = sample[list(cols)].astype("string")
    na = values.isna().any(axis=1).to_numpy()
    if na.any():
        raise WeightingError(
            f"margin {margin_name(key)}: {int(na.sum())} sample unit(s) have a missing "
            f"value (first: {list(sample.index[na][:5])}); exclude them before weighting "
            "(participant_weights does this and reports the count)"
        )
    position = {lab: i for i, lab in enumerate(labels)}
    unit_labels = list(values.itertuples(index=False, name=None))
    codes = np.fromiter(
        (position.get(t, -1) for t in unit_labels), dtype=np.int64, count=len(values)
    )
    unknown = codes < 0
    if unknown.any():
        bad = sorted({unit_labels[i] for i in np.flatnonzero(unknown)})
        raise WeightingError(
            f"margin {margin_name(key)}: sample categories not in the margin: "
            f"{[' | '.join(b) for b in bad[:10]]}; margin categories: "
            f"{[' | '.join(lab) for lab in labels]}"
        )
    filled = np.bincount(codes[active], minlength=len(labels)) > 0
    empty = (share > 0) & ~filled
    if empty.any():
        raise WeightingError(
            f"margin {margin_name(key)}: no sample units in categories with a positive "
            f"target: {[' | '.join(labels[i]) for i in np.flatnonzero(empty)]}; "
            "collapse categories or drop this margin"
        )
    zero = (share == 0) & filled
    if zero.any():
        raise WeightingError(
            f"margin {margin_name(key)}: target share 0 for categories present in the "
            f"sample: {[' | '.join(labels[i]) for i in np.flatnonzero(zero)]}"
        )
    return _EncodedMargin(key=key, labels=tuple(labels), share=share, codes=codes)


def _check_consistency(margins: list[_EncodedMargin], atol: float = 1e-8) -> None:
    """Margins that share variables must agree on them, or raking cannot converge."""
    for a in margins:
        for b in margins:
            ca, cb = _key_columns(a.key), _key_columns(b.key)
            if a is b or not set(ca) < set(cb):
                continue
            positions = [cb.index(c) for c in ca]
            collapsed: dict[tuple[str, ...], float] = {}
            for lab, s in zip(b.labels, b.share, strict=True):
                sub = tuple(lab[p] for p in positions)
                collapsed[sub] = collapsed.get(sub, 0.0) + float(s)
            for lab, s in zip(a.labels, a.share, strict=True):
                if abs(collapsed.get(lab, 0.0) - float(s)) > atol:
                    raise WeightingError(
                        f"margins {margin_name(a.key)} and {margin_name(b.key)} disagree on "
                        f"{' | '.join(lab)}: {s:.10f} vs {collapsed.get(lab, 0.0):.10f}"
                    )


def _weighted_shares(m: _EncodedMargin, w: np.ndarray) -> np.ndarray:
    tot = np.bincount(m.codes, weights=w, minlength=len(m.labels))
    return tot / w.sum()


def _max_error(margins: list[_EncodedMargin], w: np.ndarray) -> float:
    return max(float(np.abs(_weighted_shares(m, w) - m.share).max()) for m in margins)


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


# --- participants -> weights ------------------------------------------------------------------


def weighting_sample(
    participants: pd.DataFrame,
    country: str,
    *,
    residents_only: bool = True,
    require_conversations: bool = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The participants that can be weighted to a country's census, and the exclusions.

    Keeps residents of the country (``reside_country`` = GBR / USA) who took part in
    conversations (``survey_only`` False) and have a census cell; every other
    participant is counted under a reason.

    Returns
    -------
    sample
        Indexed by participant id, columns ``age``, ``sex``, ``ethnicity`` (census
        categoricals) and ``cell``.
    excluded
        Reason -> number of participants.
    """
    country = country.lower()
    if country not in vocab.COUNTRY_ISO3:
        raise WeightingError(f"unknown country {country!r}; expected {list(vocab.COUNTRY_ISO3)}")
    people = participants
    if "participant" in people:
        people = people.set_index("participant", drop=False)
    if people.index.has_duplicates:
        raise WeightingError("participants: duplicate participant ids")
    excluded: dict[str, int] = {}
    keep = np.ones(len(people), dtype=bool)
    if residents_only:
        if "reside_country" not in people:
            raise WeightingError("participants: no 'reside_country' column")
        iso = vocab.COUNTRY_ISO3[country]
        resident = (people["reside_country"].astype("string") == iso).fillna(False).to_numpy()
        excluded[f"not resident in {iso}"] = int((~resident).sum())
        keep &= resident
    if require_conversations and "survey_only" in people:
        survey_only = people["survey_only"].fillna(False).to_numpy(dtype=bool)
        excluded["survey only (no ratings)"] = int((keep & survey_only).sum())
        keep &= ~survey_only
    people = people.loc[keep]
    harm = census.harmonise_participants(people)
    for reason, n in harm["no_cell_reason"].value_counts().items():
        excluded[f"no census cell: {reason}"] = int(n)
    has_cell = harm["cell"].notna().to_numpy()
    sample = pd.DataFrame(
        {
            "age": harm["census_age"],
            "sex": harm["census_sex"],
            "ethnicity": harm["census_ethnicity"],
            "cell": harm["cell"],
        }
    ).loc[has_cell]
    sample.index.name = "participant"
    if sample.empty:
        raise WeightingError(f"{country}: no participant can be weighted ({excluded})")
    return sample, excluded


def participant_weights(
    participants: pd.DataFrame,
    country: str,
    *,
    method: Literal["rake", "poststratify"] = "rake",
    margins: Sequence[MarginKey] = DEFAULT_MARGINS,
    harmonisation: str = "default",
    bounds: tuple[float, float] | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    strict: bool = True,
    residents_only: bool = True,
    require_conversations: bool = True,
) -> WeightingResult:
    """Weights of a country's participants to its census frame.

    The sample is :func:`weighting_sample` (residents with conversations and a census
    cell; exclusions are counted in ``result.excluded``). ``method="rake"`` rakes to
    *margins* of :func:`prism_stats.census.frame`; ``method="poststratify"`` uses
    the full age x sex x ethnicity cells (every cell must be filled).
    """
    sample, excluded = weighting_sample(
        participants,
        country,
        residents_only=residents_only,
        require_conversations=require_conversations,
    )
    frame = census.frame(country, harmonisation)
    if method == "rake":
        result = rake(
            sample,
            census_margins(frame, margins),
            bounds=bounds,
            max_iter=max_iter,
            tol=tol,
            strict=strict,
        )
    elif method == "poststratify":
        result = poststratify(sample, frame)
    else:
        raise WeightingError(f"unknown method {method!r}; expected 'rake' or 'poststratify'")
    result.excluded.update(excluded)
    return result


def default_participant_weights(
    participants: pd.DataFrame, country: str, *, harmonisation: str = "default", **kwargs
) -> WeightingResult:
    """Raking weights on age, sex, ethnicity and age x sex, or the one-way margins alone.

    The age x sex margin is added only when raking with it succeeds (it can fail when
    an age x sex cell of the sample is empty, or does not converge); the result's
    ``margins`` say which was used.
    """
    try:
        return participant_weights(
            participants, country, margins=DEFAULT_MARGINS, harmonisation=harmonisation, **kwargs
        )
    except WeightingError:
        return participant_weights(
            participants, country, margins=ONE_WAY_MARGINS, harmonisation=harmonisation, **kwargs
        )


# --- weighted per-LLM estimates -------------------------------------------------------------


STATISTICS: tuple[str, ...] = ("mean_rating", "chosen_share", "veto_rate")


def _rating_matrices(
    ratings: pd.DataFrame, participants: pd.Index, llms: Sequence[str], veto_threshold: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per statistic: (A, B) participant x llm matrices of outcome sums and counts."""
    pid = pd.Categorical(ratings["participant"].astype(str), categories=participants.astype(str))
    lid = pd.Categorical(ratings["llm"].astype(str), categories=list(llms))
    rows, cols = pid.codes, lid.codes
    shape = (len(participants), len(llms))
    count = np.zeros(shape)
    np.add.at(count, (rows, cols), 1.0)
    outcomes = {
        "mean_rating": ratings["score"].to_numpy(dtype=float),
        "chosen_share": ratings["chosen"].to_numpy(dtype=float),
        "veto_rate": (ratings["score"].to_numpy(dtype=float) <= veto_threshold).astype(float),
    }
    out = {}
    for name, y in outcomes.items():
        a = np.zeros(shape)
        np.add.at(a, (rows, cols), y)
        out[name] = (a, count)
    return out


def _ratio(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    den = w @ b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (w @ a) / den, np.nan)


def _linearised_se(
    w: np.ndarray, a: np.ndarray, b: np.ndarray, est: np.ndarray, x: np.ndarray | None
) -> np.ndarray:
    """Taylor-linearised SE of the ratio estimators, participants as PSUs."""
    n = len(w)
    if n < 2:
        return np.full(b.shape[1], np.nan)
    den = w @ b
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (a - b * np.nan_to_num(est)) / np.where(den > 0, den, np.nan)
    u = np.nan_to_num(u)
    if x is not None:
        # Calibration: residuals of u on the calibration variables (weighted LS).
        sw = np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(x * sw, u * sw, rcond=None)
        u = u - x @ coef
    z = w[:, None] * u
    var = n / (n - 1) * np.square(z - z.mean(axis=0)).sum(axis=0)
    return np.where(den > 0, np.sqrt(var), np.nan)


def weighted_llm_estimates(
    ratings: pd.DataFrame,
    weights: WeightingResult | pd.Series,
    *,
    turn: int | None = 0,
    se: Literal["linearisation", "bootstrap", "none"] = "linearisation",
    n_boot: int = 500,
    rng: np.random.Generator | int | None = None,
    veto_threshold: int = VETO_THRESHOLD,
    llms: Sequence[str] = vocab.LLM_SHORT_NAMES,
) -> pd.DataFrame:
    """Weighted per-LLM mean rating, chosen share and veto rate, with clustered SEs.

    Parameters
    ----------
    ratings
        Tidy ratings (``PrismData.ratings``): ``participant``, ``llm``, ``turn``,
        ``score``, ``chosen``.
    weights
        A :class:`WeightingResult` (weights plus what the calibration-aware SEs and
        the re-weighting bootstrap need) or a Series of participant weights (treated
        as fixed). Ratings by participants without a weight are left out (they are
        not in the weighted sample; counted in ``attrs["n_ratings_unweighted"]``).
    turn
        Conversation turn to use (0: opening turn, as in the original); ``None``: all.
    se
        ``"linearisation"`` (default), ``"bootstrap"`` (participant bootstrap, needs
        *rng*) or ``"none"``.
    n_boot, rng
        Bootstrap replicates and the random generator (or seed).
    veto_threshold
        Scores ``<=`` this are vetoes (10, as in the original).
    llms
        LLMs (rows) in output order.

    Returns
    -------
    pandas.DataFrame
        One row per LLM (index ``llm``): ``n_ratings``, ``n_participants``,
        ``mean_rating``, ``mean_rating_se``, ``chosen_share``, ``chosen_share_se``,
        ``veto_rate``, ``veto_rate_se``. ``attrs`` records the settings.
    """
    needed = {"participant", "llm", "score", "chosen"} | ({"turn"} if turn is not None else set())
    missing = needed - set(ratings.columns)
    if missing:
        raise WeightingError(f"ratings lack columns {sorted(missing)}")
    result = weights if isinstance(weights, WeightingResult) else None
    w_series = result.weights if result is not None else weights
    if not isinstance(w_series, pd.Series):
        raise WeightingError("weights must be a WeightingResult or a Series indexed by participant")
    w_series = w_series.astype(float)
    if w_series.index.has_duplicates or not np.isfinite(w_series).all() or (w_series < 0).any():
        raise WeightingError("weights must be unique per participant, finite and >= 0")
    r = ratings if turn is None else ratings[ratings["turn"] == turn]
    unknown_llm = sorted(set(r["llm"].astype(str)) - set(llms))
    if unknown_llm:
        raise WeightingError(f"ratings name LLMs outside the list: {unknown_llm}")
    in_sample = r["participant"].astype(str).isin(w_series.index.astype(str))
    n_unweighted = int((~in_sample).sum())
    r = r[in_sample.to_numpy()]
    if r["score"].isna().any() or r["chosen"].isna().any():
        raise WeightingError("ratings have missing score or chosen values")
    index = pd.Index(w_series.index.astype(str))
    mats = _rating_matrices(r, index, llms, veto_threshold)
    w = w_series.to_numpy()

    out = pd.DataFrame(index=pd.Index(list(llms), name="llm"))
    count = mats["mean_rating"][1]
    out["n_ratings"] = count.sum(axis=0).astype(int)
    out["n_participants"] = (count[w > 0] > 0).sum(axis=0).astype(int)
    estimates = {name: _ratio(w, a, b) for name, (a, b) in mats.items()}
    ses: dict[str, np.ndarray] = {}
    if se == "linearisation":
        x = None
        if result is not None and result.sample is not None:
            x = result.calibration_matrix()
            # Align the calibration rows with the weight index (same order by construction).
        for name, (a, b) in mats.items():
            ses[name] = _linearised_se(w, a, b, estimates[name], x)
    elif se == "bootstrap":
        if rng is None:
            raise WeightingError("the bootstrap needs rng (a numpy Generator or a seed)")
        gen = np.random.default_rng(rng)
        n = len(w)
        reps = {name: np.full((n_boot, len(llms)), np.nan) for name in mats}
        failed = 0
        for k in range(n_boot):
            mult = np.bincount(gen.integers(0, n, n), minlength=n).astype(float)
            if result is not None and result.sample is not None:
                try:
                    wk = result.reweight(mult * result.base_weights)
                except WeightingError:
                    failed += 1
                    continue
            else:
                wk = w * mult
            for name, (a, b) in mats.items():
                reps[name][k] = _ratio(wk, a, b)
        for name in mats:
            ses[name] = np.nanstd(reps[name], axis=0, ddof=1)
        out.attrs["bootstrap_failed_replicates"] = failed
    elif se != "none":
        raise WeightingError(f"unknown se method {se!r}")
    for name in STATISTICS:
        out[name] = estimates[name]
        out[f"{name}_se"] = ses.get(name, np.full(len(llms), np.nan))
    out.attrs.update(
        turn=turn,
        se=se,
        n_boot=n_boot if se == "bootstrap" else None,
        veto_threshold=veto_threshold,
        n_participants=int((w > 0).sum()),
        n_ratings_unweighted=n_unweighted,
    )
    return out
