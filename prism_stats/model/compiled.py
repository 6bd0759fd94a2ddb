"""Compiling rating models once: reproducible machine code, one compiled model per structure.

Two facts make a fit both slow to start and, before this module, not reproducible:

- **Compilation** (PyTensor graph rewriting plus numba code generation) is 15-55 s of a
  PRISM-size fit. :func:`build_model` takes every value of the data from a few ``pm.Data``
  containers (:func:`~prism_stats.model.rating.container_data`; packing them saved ~7 of
  19 s of a warm compilation at 150 participants, :mod:`prism_stats.model.packing`), so
  two datasets of the same *structure* (:func:`structure_key`: spec, level counts, the
  "mixed" partition, the censored family's interior block) give the same graph. In one process
  :func:`compile_model` keeps the compiled models it made and refits a new dataset of a
  known structure with nutpie's ``CompiledModel.with_data`` (no compilation at all);
  across processes the identical graph hits PyTensor's and numba's disk caches.
- **Bit-identical draws.** PyTensor's numba backend compiles with LLVM fast-math flags
  by default (``reassoc``, ``contract``, ``arcp``, ``afn``), which let LLVM reorder
  floating-point sums. The reordering it picks depends on what it can inline: a numba
  function compiled in this process can be inlined into its caller, one loaded from the
  disk cache cannot. So the same graph gave different log-densities in the last bits
  with a cold and a warm compile cache (and a Dask worker that found half of a sweep's
  functions cached by its neighbour gave different chains from a serial run: the flaky
  ``test_dask_sweep_equals_serial_sweep``). Importing :mod:`prism_stats.model` therefore
  sets ``pytensor.config.numba__fastmath = False`` (and :func:`reproducible_numerics`
  enforces it around every compilation): IEEE arithmetic in program order, so the
  compiled code gives the same bits however it was compiled or loaded, on 1 or 2 cores,
  serially or on a Dask worker. Its cost was measured in ``benchmarks/compile_reuse.py``
  (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytensor

from .._io import sha256_json
from .design import Design
from .effects import mixed_centred
from .rating import build_model, container_data, effect_names
from .spec import ModelSpec

# Reproducible machine code for every model this package compiles (see module docstring).
pytensor.config.numba__fastmath = False

#: Compiled models kept per process (each holds its machine code and one dataset).
MAX_CACHED = 4

_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


class CompileError(RuntimeError):
    """A compiled model cannot take a design (a container of its graph has no value)."""


@contextlib.contextmanager
def reproducible_numerics() -> Iterator[None]:
    """Compile with IEEE floating-point semantics (no fast-math reordering)."""
    with pytensor.config.change_flags(numba__fastmath=False):
        yield


def _participant_parameters(design: Design, spec: ModelSpec) -> bool:
    """Whether the model has parameters with a participant dim (their count is structure)."""
    return spec.param("participant") != "marginalized" or bool(spec.rater_scale)


def structure_key(design: Design, spec: ModelSpec) -> str:
    """What the compiled graph of ``build_model(design, spec)`` depends on, as a hash.

    The spec (:meth:`ModelSpec.model_hash`), the effects present, the number of levels of
    every named dimension (the number of participants only when participants are
    parameters of the model), which levels the "mixed" parameterisation centres, whether
    later turns and (censored family) interior ratings occur. Level *labels*, cell
    counts, indices, weights and scores are data.
    """
    dims = {k: len(v) for k, v in design.coords.items() if k != "participant"}
    if _participant_parameters(design, spec):
        dims["participant"] = len(design.coords["participant"])
    mixed = {}
    families = {"country": "country", **{f: "demographic" for f in design.factors}}
    for factor, family in families.items():
        uses_mixed = spec.param(family) == "mixed" or (
            factor in spec.llm_interactions and spec.param("interaction") == "mixed")
        if uses_mixed and factor in design.coords:
            mixed[factor] = mixed_centred(design.level_weights(factor)).tolist()
    cells = design.cells
    return sha256_json({
        "spec": spec.model_hash(),
        "effects": sorted(effect_names(design, spec)),
        "dims": dims,
        "mixed": mixed,
        "later": bool(spec.turns == "all" and cells["later"].any()),
        "interior": bool(spec.family == "censored" and (cells["n_int"] > 0).any()),
    })


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A compiled model ready for one design.

    Attributes
    ----------
    model : nutpie CompiledModel
        Holds the design's data (pass it to ``nutpie.sample``).
    key : str
        :func:`structure_key` of the design.
    seconds : float
        Time spent here: compiling, or swapping the data in when *reused*.
    reused : bool
        Whether a model compiled earlier in this process was reused (no compilation).
    """

    model: Any
    key: str
    seconds: float
    reused: bool


def with_design(compiled: Any, design: Design, spec: ModelSpec) -> Any:
    """*compiled* (a nutpie model of the same structure) holding *design*'s data and labels."""
    values: dict[str, Any] = container_data(design, spec)
    # dim lengths are shared variables named after their dims; the structure key fixes
    # all of them but the participant and cell counts
    values["participant"] = np.asarray(len(design.coords["participant"]), dtype=np.int64)
    values["obs_cell"] = np.asarray(design.n_cells, dtype=np.int64)
    names = {var.name for var in compiled.shared_var_keys}
    missing = names - set(values) - set(compiled.coords)
    if missing:
        raise CompileError(f"the compiled model has data containers without a value for this design: "
                           f"{sorted(missing)}")
    updated = compiled.with_data(**{k: v for k, v in values.items() if k in names})
    coords = dict(updated.coords)
    coords.update({k: pd.Index(v) for k, v in design.coords.items() if k in coords})
    coords["obs_cell"] = pd.RangeIndex(design.n_cells)
    return dataclasses.replace(updated, _coords=coords)


def compile_model(design: Design, spec: ModelSpec, *, reuse: bool = True) -> Compiled:
    """The nutpie model of *spec* on *design*, compiled at most once per structure.

    With *reuse*, a model compiled earlier in this process for a design of the same
    :func:`structure_key` is given this design's data (``with_data``) instead of being
    compiled again; the last :data:`MAX_CACHED` structures are kept. The result is the
    same bits as a fresh compilation (same graph, reproducible numerics).
    """
    import nutpie  # local: numba and the sampler load only when a model is compiled

    key = structure_key(design, spec)
    t0 = time.perf_counter()
    cached = None
    if reuse:
        with _LOCK:
            cached = _CACHE.get(key)
            if cached is not None:
                _CACHE.move_to_end(key)
    if cached is not None:
        model = with_design(cached, design, spec)
        return Compiled(model, key, time.perf_counter() - t0, True)
    with reproducible_numerics():
        model = nutpie.compile_pymc_model(build_model(design, spec))
    seconds = time.perf_counter() - t0
    if reuse:
        with _LOCK:
            _CACHE[key] = model
            while len(_CACHE) > MAX_CACHED:
                _CACHE.popitem(last=False)
    return Compiled(model, key, seconds, False)


def clear_compiled() -> None:
    """Forget the compiled models of this process (the next fit compiles, warm from disk)."""
    with _LOCK:
        _CACHE.clear()


__all__ = [
    "MAX_CACHED",
    "CompileError",
    "Compiled",
    "clear_compiled",
    "compile_model",
    "reproducible_numerics",
    "structure_key",
    "with_design",
]
