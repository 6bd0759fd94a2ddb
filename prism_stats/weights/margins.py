"""Margins of the weighting: keys, census targets, and their encoding against a sample.

A margin key is a census variable (``"age"``) or a cross-classification
(``("age", "sex")``); :func:`census_margins` gives their target shares from a census
frame and :func:`_encode` codes a sample's categories against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MarginKey = str | tuple[str, ...]

#: Default raking margins: the three one-way census margins plus age x sex.
DEFAULT_MARGINS: tuple[MarginKey, ...] = ("age", "sex", "ethnicity", ("age", "sex"))
ONE_WAY_MARGINS: tuple[MarginKey, ...] = ("age", "sex", "ethnicity")


class WeightingError(ValueError):
    """Weights cannot be computed as asked (missing values, empty cells, bad margins)."""


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
