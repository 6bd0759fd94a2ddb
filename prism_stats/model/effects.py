"""Building blocks of the PyMC models: identified (zero-sum) effects and their scales.

Every crossed effect of the rating and choice models is **sum-to-zero**, so no effect
trades off with the intercept or with another effect:

- LLM and conversation-type effects sum to zero with *equal* weights (balanced by design);
- participant-level factors (country, age, gender, ethnicity, ...) are unbalanced and
  have tiny levels ("Prefer not to say": 1-4 raters), so their effects sum to zero
  **weighted by their share of the ratings**; they are parameterised level by level (the
  heaviest level is the weighted balance of the others), so a tiny level is one
  uncorrelated, prior-dominated coordinate for the sampler. On the PRISM-size synthetic
  data this raised the worst bulk-ESS of the demographic effects from ~135 (equal-weight
  ``ZeroSumNormal``) to over 1,000 of 2,000 draws;
- LLM x residence effects are built by projection (:func:`scaled_interaction`), so every
  country keeps its own explicit prior -- GBR and USA both hold about a quarter of the
  ratings, and a reference-level construction would tie one's prior to the other's.

Everything an effect takes from the data (the rating weights of the levels and the
reference-level embedding built from them) enters the graph as a ``pm.Data`` container
(:func:`data_container`), never as a constant, so models of two datasets with the same
spec and level counts are the same graph (see :mod:`prism_stats.model.compiled`).

Parameterisations: ``centered`` (the data pin each level down), ``noncentered`` (the
prior dominates) or ``mixed`` (levels holding >= :data:`MIXED_MIN_SHARE` of the ratings
centred, the others non-centred).
"""

from __future__ import annotations

import re

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .packing import view
from .spec import ModelSpec

#: Posterior variables that are sampler internals of the non-centred parameterisation.
RAW_SUFFIX = "_z"
#: Under the "mixed" parameterisation, levels with at least this share of the ratings are
#: centred (their data pin them down), the others non-centred (the prior dominates).
MIXED_MIN_SHARE = 0.05


def is_raw(name: str) -> bool:
    """Whether *name* is a sampler-internal raw variable (``x_z``, ``x_z_c``, ``x_z_nc``)."""
    return re.search(rf"{RAW_SUFFIX}(_n?c)?$", name) is not None


def data_container(name: str, value, dims: str | tuple[str, ...] | None = None):
    """The model's ``pm.Data`` container *name*, created from *value* on first use.

    Several effects share one container (e.g. a factor's embedding serves its main effect
    and its LLM interaction), so a second request returns the first container. In a model
    whose data are packed (:mod:`prism_stats.model.packing`) it is the view of *name* in
    its packed container.
    """
    model = pm.modelcontext(None)
    packed = view(model, name)
    if packed is not None:
        return packed
    if name in model.named_vars:
        return model[name]
    return pm.Data(name, value, dims=dims)


def embedding_name(factor: str) -> str:
    """Name of the data container holding *factor*'s weighted zero-sum embedding."""
    return f"{factor}_embed"


def unpooled_name(factor: str) -> str:
    """Name of the data container flagging *factor*'s free levels that have their own prior."""
    return f"{factor}_unpooled"


def weights_name(factor: str) -> str:
    """Name of the data container holding *factor*'s rating weights."""
    return f"{factor}_weights"


def mixed_centred(weights: np.ndarray) -> np.ndarray:
    """Under the "mixed" parameterisation: which free levels are centred (a structural choice)."""
    free, _ = weighted_zero_sum_basis(weights)
    return np.asarray(weights, dtype=float)[free] >= MIXED_MIN_SHARE


def weighted_zero_sum_basis(weights: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Free levels and the map from their values to all levels' values.

    The heaviest level is the reference: ``x_ref = -sum_free(w x) / w_ref``, so
    ``sum w x = 0``. Returns the free level indices (in level order) and the matrix ``E``
    (levels x free) with ``x = E @ x_free``.
    """
    w = np.asarray(weights, dtype=float)
    ref = int(np.argmax(w))
    free = [i for i in range(len(w)) if i != ref]
    embed = np.zeros((len(w), len(free)))
    for j, i in enumerate(free):
        embed[i, j] = 1.0
        embed[ref, j] = -w[i] / w[ref]
    return free, embed


def _mixed_levels(name: str, scale, dim_prefix: str, labels: list, centred: np.ndarray,
                  llm_dim: str | None = None):
    """Per-level centred / non-centred coordinates of a hierarchical effect, in *labels* order.

    With *llm_dim*, each level is a column over LLMs that sums to zero (an interaction).
    """
    model = pm.modelcontext(None)
    parts, positions = [], []
    for flag, suffix in ((True, "c"), (False, "nc")):
        idx = np.flatnonzero(centred == flag)
        if not len(idx):
            continue
        dim = f"{dim_prefix}_{suffix}"
        if dim not in model.coords:
            model.add_coord(dim, [labels[i] for i in idx])
        # per-level scales (unpooled levels) exist only for one-dimensional effects
        part_scale = scale[idx] if getattr(scale, "ndim", 0) == 1 else scale
        raw_name, sd = f"{name}{RAW_SUFFIX}_{suffix}", part_scale if flag else 1.0
        if llm_dim is None:
            raw = pm.Normal(raw_name, 0.0, sd, dims=dim)
        else:
            raw = pm.ZeroSumNormal(raw_name, sigma=sd, dims=(dim, llm_dim), n_zerosum_axes=1)
        parts.append(raw if flag else part_scale * raw)
        positions.extend(idx)
    return pt.concatenate(parts, axis=0)[np.argsort(np.array(positions))]


def effect(name: str, scale, dims: tuple[str, ...], centered: bool | str, zerosum_axes: int = 1,
           weights: np.ndarray | None = None, unpooled: np.ndarray | None = None,
           unpooled_scale: float | None = None):
    """A zero-sum effect with scale *scale*, centred, non-centred or mixed.

    Parameters
    ----------
    name : str
        Variable name (a ``Deterministic`` when not centred-without-weights).
    scale : float or tensor
        Prior sd of each free coordinate.
    dims : tuple of str
        ``(level,)`` or ``(llm, level)``.
    centered : bool or "mixed"
        Parameterisation (see :func:`centering`).
    zerosum_axes : int
        Without *weights*: the number of trailing dims that sum to zero (equal weights).
    weights : array, optional
        Shares of the ratings per level of the last dim: the effect then sums to zero
        weighted over that dim (and with equal weights over the LLM dim of an interaction).
    unpooled : array of bool, optional
        With *weights* and a one-dimensional effect: levels whose free coordinate has the
        fixed prior sd *unpooled_scale* instead of *scale* (not shrunk toward the others).
        Which levels these are is data (a ``pm.Data`` flag per free level), so the graph
        does not depend on it.
    """
    if weights is None:
        if centered is True:
            return pm.ZeroSumNormal(name, sigma=scale, dims=dims, n_zerosum_axes=zerosum_axes)
        raw = pm.ZeroSumNormal(name + RAW_SUFFIX, sigma=1.0, dims=dims, n_zerosum_axes=zerosum_axes)
        return pm.Deterministic(name, scale * raw, dims=dims)

    model = pm.modelcontext(None)
    factor = dims[-1]
    w = np.asarray(weights, dtype=float)
    free, embed = weighted_zero_sum_basis(w)
    labels = [model.coords[factor][i] for i in free]
    free_dim = f"{factor}_free"
    if free_dim not in model.coords:
        model.add_coord(free_dim, labels)
    llm_dim = dims[0] if len(dims) == 2 else None
    if unpooled is not None:
        if llm_dim is not None or unpooled_scale is None:
            raise ValueError("unpooled levels need a one-dimensional effect and unpooled_scale")
        flag = data_container(unpooled_name(factor), np.asarray(unpooled, dtype=float)[free], dims=free_dim)
        scale = pt.switch(pt.gt(flag, 0.5), unpooled_scale, scale)  # (free,)
    if centered == "mixed":
        value_free = _mixed_levels(name, scale, free_dim, labels, mixed_centred(w), llm_dim)
    elif llm_dim is not None:
        raw = pm.ZeroSumNormal(name + RAW_SUFFIX, sigma=scale if centered else 1.0,
                               dims=(free_dim, llm_dim), n_zerosum_axes=1)
        value_free = raw if centered else scale * raw  # (free, llm)
    else:
        raw = pm.Normal(name + RAW_SUFFIX, 0.0, scale if centered else 1.0, dims=(free_dim,))
        value_free = raw if centered else scale * raw  # (free,)
    # the embedding is data (it changes with the rating weights), not a graph constant
    value = pt.dot(data_container(embedding_name(factor), embed), value_free)  # (level, [llm])
    if llm_dim is not None:
        value = value.T
    return pm.Deterministic(name, value, dims=dims)


def scaled_interaction(name: str, scale, row_scale, factor: str, weights: np.ndarray,
                       col_scale=None):
    """LLM x level effect, non-centred, with optional per-row and per-column multipliers.

    ``scale * row_scale[m] * col_scale[l] * z[m, l]`` re-centred over LLMs (equal weights)
    and over levels (rating weights, by projection: every level keeps an explicit prior,
    unlike the reference-level construction of :func:`effect`, which would make the
    heaviest level's prior the mirror image of the next heaviest -- wrong for GBR and USA,
    who hold a quarter of the ratings each); the map from the zero-sum ``z`` stays
    injective.
    """
    raw = pm.ZeroSumNormal(name + RAW_SUFFIX, sigma=1.0, dims=("llm", factor), n_zerosum_axes=2)
    value = scale * raw
    if row_scale is not None:
        value = value * row_scale[:, None]
    if col_scale is not None:
        value = value * col_scale[None, :]
    value = value - value.mean(axis=0)
    w = data_container(weights_name(factor), np.asarray(weights, dtype=float))
    value = value - (value @ w)[:, None]
    return pm.Deterministic(name, value, dims=("llm", factor))


def centering(parameterisation: str) -> bool | str:
    """``True`` (centred), ``False`` (non-centred) or ``"mixed"`` (per level, by data share)."""
    return "mixed" if parameterisation == "mixed" else parameterisation == "centered"


def scale(name: str, spec: ModelSpec, family: str, prior_key: str):
    """The scale of an effect family: a HalfNormal hyperparameter, or the fixed prior scale."""
    if spec.pool(family) == "fixed":
        return spec.prior(prior_key)
    return pm.HalfNormal(name, sigma=spec.prior(prior_key))


__all__ = [
    "MIXED_MIN_SHARE",
    "RAW_SUFFIX",
    "centering",
    "data_container",
    "effect",
    "embedding_name",
    "is_raw",
    "mixed_centred",
    "scale",
    "scaled_interaction",
    "unpooled_name",
    "weighted_zero_sum_basis",
    "weights_name",
]
