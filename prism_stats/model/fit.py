"""Fitting, run folders and reloading.

:func:`fit` builds the design and the PyMC model of a spec, samples it (nutpie by
default, PyMC's NUTS as fallback) and returns a :class:`Run`. A run folder holds::

    posterior.nc      xarray.DataTree (h5netcdf): posterior, sample_stats, observed_data,
                      constant_data (the design), log_likelihood (per participant)
    run.json          spec, seeds, sampler settings, data source and hash, versions, timings
    diagnostics.json  R-hat, ESS, divergences, BFMI and the strict-gate verdict

and :meth:`Run.load` reopens it without refitting.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from .. import __version__
from .._io import atomic_path, now_iso, package_versions, write_json_atomic
from .compiled import compile_model, reproducible_numerics
from .convergence import diagnose
from .design import Design, build_design
from .effects import is_raw
from .predict import draw_participant_effects, participant_loglik, participant_posterior
from .rating import build_model
from .spec import ModelSpec, load_spec

log = logging.getLogger(__name__)

POSTERIOR_FILE = "posterior.nc"
META_FILE = "run.json"
DIAGNOSTICS_FILE = "diagnostics.json"


class RunError(RuntimeError):
    """A run folder is missing, incomplete or inconsistent."""


@dataclass
class Run:
    """A fitted rating model: spec, design, posterior and metadata.

    Attributes
    ----------
    spec : ModelSpec
    design : Design
    idata : xarray.DataTree
        Groups ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data`` and,
        when computed, ``log_likelihood`` (variable ``score``, dims chain, draw, participant).
    meta : dict
        Run metadata (see module docstring).
    folder : Path or None
        Where the run is saved, if it is.
    """

    spec: ModelSpec
    design: Design
    idata: xr.DataTree
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as a Dataset (dims ``chain``, ``draw`` and named dims)."""
        return self.idata["posterior"].to_dataset()

    @property
    def data_folder(self) -> str | None:
        """The release folder the run was fitted on, when known."""
        return (self.meta.get("data") or {}).get("folder")

    def save(self, folder: str | Path) -> Path:
        """Write the run folder atomically (file by file) and return its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / POSTERIOR_FILE) as tmp:
            self.idata.to_netcdf(tmp, engine="h5netcdf")
        write_json_atomic(folder / DIAGNOSTICS_FILE, diagnose(self).to_dict())
        write_json_atomic(folder / META_FILE, self.meta)
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Run:
        """Reopen a saved run folder (no refitting)."""
        folder = Path(folder)
        missing = [f for f in (POSTERIOR_FILE, META_FILE) if not (folder / f).exists()]
        if missing:
            raise RunError(f"{folder} is not a complete run folder (missing {', '.join(missing)}); "
                           "fit one with `prism-stats fit`")
        meta = json.loads((folder / META_FILE).read_text())
        idata = xr.open_datatree(folder / POSTERIOR_FILE, engine="h5netcdf").load()
        spec = ModelSpec.from_dict(meta["spec"], source=str(folder / META_FILE))
        design = Design.from_dataset(idata["constant_data"].to_dataset())
        return cls(spec=spec, design=design, idata=idata, meta=meta, folder=folder)


def _sampler_settings(spec: ModelSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    settings = dict(spec.sampling)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def sample_model(model, settings: dict[str, Any], progress: bool = True) -> tuple[xr.DataTree, dict]:
    """Sample a PyMC model with nutpie (default) or PyMC's NUTS; return draws and timings.

    *model* may also be a compiled nutpie model (:func:`prism_stats.model.compiled.compile_model`).
    """
    chains, draws, tune = int(settings["chains"]), int(settings["draws"]), int(settings["tune"])
    seed = int(settings["seed"])
    # cores: parallel chains (default: one per chain); 1 inside single-threaded workers
    cores = int(settings.get("cores") or chains)
    timings: dict[str, float | None] = {}
    if settings["sampler"] == "nutpie":
        import nutpie  # local: only the nutpie sampler needs it (numba, ~1 s)

        t0 = time.perf_counter()
        if isinstance(model, pm.Model):
            with reproducible_numerics():
                compiled = nutpie.compile_pymc_model(model)
        else:  # compiled already
            compiled = model
        timings["compile_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idata = nutpie.sample(
            compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
            progress_bar=progress, save_warmup=False,
            target_accept=float(settings.get("target_accept", 0.8)),
            adaptation=str(settings.get("adaptation", "diag")),
        )
        timings["sampling_s"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        with reproducible_numerics():
            idata = pm.sample(
                draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                nuts_sampler="pymc", progressbar=progress, model=model,
                target_accept=float(settings.get("target_accept", 0.8)),
                compute_convergence_checks=False,
            )
        timings["compile_s"] = None  # PyMC compiles inside sample(); included below
        timings["sampling_s"] = time.perf_counter() - t0
    return idata, timings


def _tidy_idata(idata: xr.DataTree, design: Design) -> xr.DataTree:
    """Keep the groups a run needs, drop sampler-internal variables, add the design."""
    post = idata["posterior"].to_dataset()
    post = post.drop_vars([v for v in post.data_vars if is_raw(v)])
    stats = idata["sample_stats"].to_dataset()
    # Object-dtype stats (divergence messages) cannot go to netCDF; their content is kept
    # in the numeric divergence fields.
    stats = stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])
    groups = {
        "posterior": post,
        "sample_stats": stats,
        "observed_data": xr.Dataset(
            {"cell_mean": ("obs_cell", design.cells["mean"].to_numpy()),
             "cell_n": ("obs_cell", design.cells["n"].to_numpy())},
            coords={"obs_cell": np.arange(design.n_cells)},
        ),
        "constant_data": design.to_dataset(),
    }
    return xr.DataTree.from_dict(groups)


def fit(
    data: Any,
    spec: str | Path | ModelSpec = "ratings",
    *,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    target_accept: float | None = None,
    cores: int | None = None,
    progress: bool = True,
    loglik: bool = True,
    out: str | Path | None = None,
) -> Run:
    """Fit a rating-model spec to tidy PRISM data.

    Parameters
    ----------
    data : PrismData or (participants, ratings)
        Tidy tables.
    spec : str, Path or ModelSpec
        A spec name in ``models/`` (default ``"ratings"``), a TOML path, or a spec.
    chains, draws, tune, seed, sampler, target_accept
        Override the spec's ``[sampling]`` table. ``sampler`` is ``"nutpie"`` (default) or
        ``"pymc"``.
    cores : int, optional
        Chains run in parallel (default: one per chain; 1 inside single-threaded workers).
    progress : bool
        Show the sampler's progress bar.
    loglik : bool
        Store the per-participant pointwise log-likelihood (for PSIS-LOO).
    out : path, optional
        Save the run folder there.

    Returns
    -------
    Run
    """
    spec = load_spec(spec)
    settings = _sampler_settings(spec, dict(chains=chains, draws=draws, tune=tune, seed=seed,
                                            sampler=sampler, target_accept=target_accept,
                                            cores=cores))
    t0 = time.perf_counter()
    design = build_design(data, spec)
    t_design = time.perf_counter() - t0
    log.info("design: %d ratings in %d cells, %d participants", design.n_ratings,
             design.n_cells, len(design.coords["participant"]))
    if settings["sampler"] == "nutpie":
        # compiled once per structure in this process; a new dataset swaps its data in
        compiled = compile_model(design, spec)
        raw, timings = sample_model(compiled.model, settings, progress=progress)
        timings.update(compile_s=compiled.seconds, compile_reused=compiled.reused)
    else:
        raw, timings = sample_model(build_model(design, spec), settings, progress=progress)
    got = int(raw["posterior"].sizes.get("draw", 0))
    if got < int(settings["draws"]):
        # nutpie answers Ctrl-C by returning the draws made so far: never keep those as a run
        raise RunError(f"sampling stopped after {got} of {settings['draws']} draws per chain "
                       "(interrupted?); nothing was saved")
    idata = _tidy_idata(raw, design)
    timings["design_s"] = t_design
    if "participant_effect" not in idata["posterior"].data_vars:
        # Marginalized participants: redraw them from their exact conditional posterior
        # (and, in the same pass over the cells, the per-participant log-likelihood).
        t0 = time.perf_counter()
        rng = np.random.default_rng([int(settings["seed"]), 1])
        post = idata["posterior"].to_dataset()
        if loglik:
            post["participant_effect"], ll = participant_posterior(post, design, spec, rng)
            idata["log_likelihood"] = xr.DataTree(xr.Dataset({"score": ll}))
        else:
            post["participant_effect"] = draw_participant_effects(post, design, spec, rng)
        idata["posterior"] = xr.DataTree(post)
        timings["participant_draws_s"] = time.perf_counter() - t0
    elif loglik:
        t0 = time.perf_counter()
        ll = participant_loglik(idata["posterior"].to_dataset(), design, spec)
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({"score": ll}))
        timings["loglik_s"] = time.perf_counter() - t0
    source = getattr(data, "source", None) or {}
    meta = {
        "kind": "rating-model run",
        "created_at": now_iso(),
        "prism_stats_version": __version__,
        "spec": spec.to_dict(),
        "spec_source": spec.source,
        "model_hash": spec.model_hash(),
        "sampling": settings,
        "seed": int(settings["seed"]),
        "data": {
            "folder": str(source.get("folder")) if source.get("folder") else None,
            "data_hash": design.data_hash,
        },
        "design": {
            "n_ratings": design.n_ratings,
            "n_cells": design.n_cells,
            "n_participants": len(design.coords["participant"]),
            "filtered": design.filtered,
        },
        "timings": timings,
        "versions": package_versions(),
    }
    idata.attrs["prism_stats"] = json.dumps({k: meta[k] for k in ("model_hash", "seed", "created_at")})
    run = Run(spec=spec, design=design, idata=idata, meta=meta)
    if out is not None:
        run.save(out)
    return run
