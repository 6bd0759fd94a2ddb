"""The rating model's data containers, packed into a few arrays to compile fast.

:func:`prism_stats.model.rating.model_data` names every array the graph takes from the
data (``llm_idx``, ``cell_mean``, ``country_embed``, ...). Giving each its own
``pm.Data`` container made compilation slow: nutpie's numba wrapper of the log density
unpacks every container separately and cannot be cached, so every process paid for it
(a toy model with 24 index vectors compiled in 13.8 s warm, the same vectors as the
columns of one matrix in 4.2 s; the rating model at 150 participants 18.8 s with its 24
containers, 11.9 s packed: ``benchmarks/RESULTS.md``, "Compile time: the data containers
packed"). So the graph holds at most a handful of containers:

- ``cell_codes`` -- integer columns of length ``n_cells`` (level indices of the cells);
- ``cell_values`` -- float columns of length ``n_cells`` (counts and score statistics);
- ``level_values`` -- a flat float vector holding, at fixed offsets, every array whose
  shape is fixed by the model's structure (embeddings, weights, flags, totals);
- arrays whose length varies between datasets of one structure (the censored family's
  interior cells, the rater x LLM blocks) keep their own container.

The *layout* (which logical array is which column or slice) depends only on the names,
dtypes and shapes of the arrays, so two datasets of the same structure
(:func:`prism_stats.model.compiled.structure_key`) have the same layout and one compiled
model takes either (:func:`pack`). Inside the graph every logical array is a view of its
container (:func:`register`), so the model code keeps using the logical names.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Mapping

import numpy as np
import pymc as pm

#: Container of the integer per-cell columns.
CELL_CODES = "cell_codes"
#: Container of the float per-cell columns.
CELL_VALUES = "cell_values"
#: Container of the arrays whose shapes the structure fixes (flattened, concatenated).
LEVEL_VALUES = "level_values"

#: Logical arrays whose length differs between datasets of one structure: own containers.
VARIABLE_LENGTH = frozenset({"interior_cells", "cell_n_int", "cell_mean_int", "pair_participant"})
#: Name endings of per-level arrays (shape fixed by the level counts).
_LEVEL_SUFFIXES = ("_embed", "_unpooled", "_weights")


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one logical array lives: a column of a cell container or a slice of ``level_values``."""

    container: str
    column: int | None = None
    start: int = 0
    shape: tuple[int, ...] = ()


def _kind(name: str, value: np.ndarray, n_cells: int) -> str:
    if name in VARIABLE_LENGTH:
        return "own"
    if value.ndim == 0 or name.endswith(_LEVEL_SUFFIXES):
        return LEVEL_VALUES
    if value.ndim != 1 or len(value) != n_cells:
        raise ValueError(f"model data {name!r} has shape {value.shape}; a per-cell array needs ({n_cells},)")
    return CELL_CODES if np.issubdtype(value.dtype, np.integer) else CELL_VALUES


def layout(values: Mapping[str, np.ndarray], n_cells: int) -> dict[str, Slot]:
    """The slot of every logical array of *values* (sorted by name: a stable layout)."""
    slots: dict[str, Slot] = {}
    columns = {CELL_CODES: 0, CELL_VALUES: 0}
    offset = 0
    for name in sorted(values):
        value = np.asarray(values[name])
        kind = _kind(name, value, n_cells)
        if kind == "own":
            slots[name] = Slot(name, shape=value.shape)
        elif kind == LEVEL_VALUES:
            slots[name] = Slot(LEVEL_VALUES, start=offset, shape=value.shape)
            offset += value.size
        else:
            slots[name] = Slot(kind, column=columns[kind], shape=value.shape)
            columns[kind] += 1
    return slots


def pack(values: Mapping[str, np.ndarray], n_cells: int) -> dict[str, np.ndarray]:
    """The values of the containers holding the logical arrays *values*, by container name."""
    slots = layout(values, n_cells)
    out: dict[str, np.ndarray] = {}
    for kind, dtype in ((CELL_CODES, np.int64), (CELL_VALUES, np.float64)):
        names = [n for n, s in slots.items() if s.container == kind]
        if names:
            out[kind] = np.column_stack([np.asarray(values[n], dtype=dtype) for n in names])
    level = [n for n, s in slots.items() if s.container == LEVEL_VALUES]
    if level:
        out[LEVEL_VALUES] = np.concatenate([np.asarray(values[n], dtype=np.float64).ravel() for n in level])
    out.update({n: np.asarray(values[n]) for n, s in slots.items() if s.container == n})
    return out


@dataclasses.dataclass
class _Views:
    by_name: dict
    used: set = dataclasses.field(default_factory=set)


# The views of the model being built, by model; read by effects.data_container.
_VIEWS: weakref.WeakKeyDictionary[pm.Model, _Views] = weakref.WeakKeyDictionary()


def register(model: pm.Model, values: Mapping[str, np.ndarray], n_cells: int) -> dict:
    """Create *model*'s packed containers for *values* and the view of every logical array.

    Returns the views by logical name (also found by
    :func:`prism_stats.model.effects.data_container` while the model is built).
    """
    slots = layout(values, n_cells)
    with model:
        containers = {name: pm.Data(name, value) for name, value in pack(values, n_cells).items()}
    views = {}
    for name, slot in slots.items():
        c = containers[slot.container]
        if slot.column is not None:
            views[name] = c[:, slot.column]
        elif slot.container == LEVEL_VALUES:
            size = int(np.prod(slot.shape, dtype=int))
            views[name] = c[slot.start:slot.start + size].reshape(slot.shape) if slot.shape else c[slot.start]
        else:
            views[name] = c
    _VIEWS[model] = _Views(views)
    return views


def view(model: pm.Model, name: str):
    """The registered view of logical array *name* in *model* (now counted as used), or None."""
    views = _VIEWS.get(model)
    if views is None or name not in views.by_name:
        return None
    views.used.add(name)
    return views.by_name[name]


def unused(model: pm.Model) -> set[str]:
    """Logical arrays registered in *model* that its graph never asked for."""
    views = _VIEWS.get(model)
    return set(views.by_name) - views.used if views is not None else set()


__all__ = ["CELL_CODES", "CELL_VALUES", "LEVEL_VALUES", "VARIABLE_LENGTH", "Slot", "layout", "pack",
           "register", "unused", "view"]
