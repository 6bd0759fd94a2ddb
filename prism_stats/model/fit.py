"""Fitting, run folders and reloading.

:func:`fit` builds the design and the PyMC model of a spec, samples it (nutpie by
default, PyMC's NUTS as fallback) and returns a :class:`Run`. A run folder holds::

    posterior.nc      xarray.DataTree (h5netcdf) in the ArviZ layout of
                      :mod:`prism_stats.model.runtree`: posterior, posterior_predictive,
                      log_likelihood, sample_stats, prior, prior_predictive,
                      observed_data, constant_data (the design)
    run.json          spec, seeds, sampler settings, data source and hash, versions, timings
    diagnostics.json  R-hat, ESS, divergences, E-BFMI, tree depth and the strict-gate verdict

and :meth:`Run.load` reopens it without refitting (folders written by earlier versions
are upgraded where the stored data allow it; see :mod:`~prism_stats.model.runtree`).
"""

from __future__ import annotations

import html
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
from .._compat import renamed_kwargs
from .._io import atomic_path, now_iso, package_versions, sha256_file, write_json_atomic, write_set
from .compiled import compile_model, reproducible_numerics
from .convergence import diagnose
from .design import Design, build_design
from .predict import draw_participant_effects, participant_loglik, participant_posterior
from .rating import build_model
from .runtree import PRIOR_DRAWS, RUN_FORMAT, build_tree, missing_groups, tree_format, upgrade_tree
from .spec import ModelSpec, SpecError, load_spec

log = logging.getLogger(__name__)

POSTERIOR_FILE = "posterior.nc"
META_FILE = "run.json"
DIAGNOSTICS_FILE = "diagnostics.json"


class RunError(RuntimeError):
    """A run folder is missing, incomplete or inconsistent."""


@dataclass(repr=False)
class Run:
    """A fitted rating model: spec, design, posterior and metadata.

    Attributes
    ----------
    spec : ModelSpec
    design : Design
    idata : xarray.DataTree
        The ArviZ DataTree of :mod:`prism_stats.model.runtree` (posterior,
        posterior_predictive, log_likelihood, sample_stats, prior, prior_predictive,
        observed_data, constant_data), usable by every ArviZ function as it is.
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

    @property
    def converged(self) -> bool:
        """Whether the run passes the convergence gate (``diagnostics.json`` when saved).

        Downstream results (MRP, welfare, comparisons, the supplement) carry this flag,
        so a result from an unconverged fit is always marked as such.
        """
        if self.folder is not None:
            try:
                verdict = json.loads((Path(self.folder) / DIAGNOSTICS_FILE).read_text()).get("passed")
            except (OSError, ValueError, AttributeError):
                verdict = None
            if isinstance(verdict, bool):
                return verdict
        return bool(diagnose(self).passed)


    def require(self, *groups: str) -> None:
        """Raise :class:`RunError` (asking for a refit) unless the run has every group."""
        missing = [g for g in groups if g not in self.idata.children]
        if missing:
            where = f"the run in {self.folder}" if self.folder else "this run"
            raise RunError(
                f"{where} has no {', '.join(missing)} group(s)"
                + (" (it was written by an earlier prism-stats)" if self.meta.get("upgraded_from_format") else "")
                + "; refit it with `prism-stats fit` (or prism_stats.model.fit) to add them")

    # -- display -----------------------------------------------------------------------------
    def _facts(self) -> list[tuple[str, str]]:
        post = self.idata["posterior"]
        s = self.meta.get("sampling") or {}
        d = self.meta.get("design") or {}
        facts = [
            ("spec", f"{self.spec.name} ({self.spec.family}, {self.spec.turns} turns, {self.spec.subset})"),
            ("draws", f"{post.sizes.get('chain', 0)} chains x {post.sizes.get('draw', 0)} draws"
                      + (f" ({s.get('sampler')}, seed {s.get('seed')})" if s else "")),
            ("design", f"{self.design.n_ratings:,} ratings in {self.design.n_cells:,} cells, "
                       f"{len(self.design.coords['participant']):,} participants, "
                       f"{len(self.design.coords['llm'])} LLMs"),
            ("groups", ", ".join(self.idata.children)),
        ]
        missing = missing_groups(self.idata)
        if missing:
            facts.append(("missing", ", ".join(missing)))
        if d.get("filtered"):
            facts.append(("filtered", ", ".join(f"{k}: {v:,}" for k, v in d["filtered"].items())))
        facts.append(("folder", str(self.folder) if self.folder else "not saved"))
        return facts

    def __repr__(self) -> str:
        post = self.idata["posterior"]
        return (f"Run({self.spec.name!r}, {post.sizes.get('chain', 0)} chains x "
                f"{post.sizes.get('draw', 0)} draws, {len(self.design.coords['participant']):,} "
                f"participants, {self.design.n_ratings:,} ratings, folder={str(self.folder) if self.folder else None!r})")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._facts())
        return f"<div><b>prism-stats rating-model run</b><table>{rows}</table></div>"

    # -- files -------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the run folder as one set (all files renamed into place at the end).

        ``run.json`` records the SHA-256 of ``posterior.nc`` (``posterior_sha256``), so
        that :meth:`load` can tell a damaged or swapped posterior from the right one.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with write_set():
            with atomic_path(folder / POSTERIOR_FILE) as tmp:
                self.idata.to_netcdf(tmp, engine="h5netcdf")
                self.meta["posterior_sha256"] = sha256_file(tmp)
            try:
                diagnostics = diagnose(self).to_dict()
            except Exception as exc:  # noqa: BLE001 - never lose a finished fit to its diagnostics
                diagnostics = {"passed": False, "failures": [f"diagnostics failed: {exc}"],
                               "error": f"{type(exc).__name__}: {exc}"}
            write_json_atomic(folder / DIAGNOSTICS_FILE, diagnostics)
            write_json_atomic(folder / META_FILE, self.meta)
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Run:
        """Reopen a saved run folder (no refitting).

        Folders written by earlier versions (run format 1) are upgraded in memory where
        the stored data allow it; groups that need a refit are listed in
        ``meta["missing_groups"]`` and :meth:`require` names them.

        Raises
        ------
        RunError
            The folder is missing, incomplete, damaged, or its ``posterior.nc`` is not
            the one its ``run.json`` recorded; the message names the file and the problem.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise RunError(f"run folder {str(folder)!r} does not exist or is not a folder")
        missing = [f for f in (POSTERIOR_FILE, META_FILE) if not (folder / f).exists()]
        if missing:
            raise RunError(f"{folder} is not a complete run folder (missing {', '.join(missing)}); "
                           "fit one with `prism-stats fit`")
        meta = _read_meta(folder / META_FILE)
        post = folder / POSTERIOR_FILE
        recorded = meta.get("posterior_sha256")
        if recorded and sha256_file(post) != recorded:
            raise RunError(f"{post} does not belong to this run: its content hash differs from the "
                           f"one {META_FILE} recorded (replaced by another run's posterior, or "
                           "damaged); refit with `prism-stats fit`")
        try:
            with xr.open_datatree(post, engine="h5netcdf") as stored:
                idata = stored.load()  # in memory; the file is closed (and can be replaced)
            design = Design.from_dataset(idata["constant_data"].to_dataset())
            idata["posterior"]  # noqa: B018 - a posterior group must be there
        except Exception as exc:  # noqa: BLE001 - h5py/netCDF raise many kinds; one clear message
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunError(f"{post} is damaged or not a prism-stats posterior ({reason})") from None
        try:
            spec = ModelSpec.from_dict(meta["spec"], source=str(folder / META_FILE))
        except Exception as exc:  # noqa: BLE001 - any malformed spec entry is a damaged run.json
            raise RunError(f"{folder / META_FILE}: its 'spec' entry is not a valid model spec "
                           f"({exc})") from None
        if tree_format(idata) < RUN_FORMAT:
            idata = upgrade_tree(idata, design)
            meta["upgraded_from_format"] = 1
            log.warning("%s was written by an earlier prism-stats (run format 1): it has no %s; "
                        "refit for LOO-PIT and predictive plots", folder, ", ".join(missing_groups(idata)))
        meta["missing_groups"] = missing_groups(idata)
        return cls(spec=spec, design=design, idata=idata, meta=meta, folder=folder)


def _read_meta(path: Path) -> dict[str, Any]:
    """``run.json`` as a dict with a ``spec`` entry, or :class:`RunError` saying what is wrong."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is damaged: not valid JSON ({exc})") from None
    except OSError as exc:
        raise RunError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict):
        raise RunError(f"{path} has no 'spec' entry: not written by `prism-stats fit`, or damaged")
    return meta


#: The samplers :func:`sample_model` knows.
SAMPLERS: tuple[str, ...] = ("nutpie", "pymc")


def _sampler_settings(spec: ModelSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``[sampling]`` table with *overrides*, checked before any work is done."""
    settings = dict(spec.sampling)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if settings.get("sampler") not in SAMPLERS:
        raise SpecError(f"sampler must be one of {', '.join(SAMPLERS)}, got {settings.get('sampler')!r}")
    for key, low in (("chains", 1), ("draws", 1), ("tune", 0), ("seed", 0)):
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SpecError(f"sampling {key} must be an integer >= {low}, got {value!r}")
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


@renamed_kwargs(spec="model")
def fit(
    data: Any,
    model: str | Path | ModelSpec = "ratings",
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
    predictive: bool = True,
    prior_draws: int = PRIOR_DRAWS,
    out: str | Path | None = None,
) -> Run:
    """Fit a rating-model spec to tidy PRISM data.

    Parameters
    ----------
    data : PrismData or (participants, ratings)
        Tidy tables.
    model : str, Path or ModelSpec
        A model spec name in ``models/`` (default ``"ratings"``), a TOML path, or a
        :class:`ModelSpec` (formerly ``spec=``, still accepted).
    chains, draws, tune, seed, sampler, target_accept
        Override the spec's ``[sampling]`` table. ``sampler`` is ``"nutpie"`` (default) or
        ``"pymc"``.
    cores : int, optional
        Chains run in parallel (default: one per chain; 1 inside single-threaded workers).
    progress : bool
        Show the sampler's progress bar.
    loglik : bool
        Store the per-participant pointwise log-likelihood (for PSIS-LOO).
    predictive : bool
        Store the posterior and prior predictive groups (and the prior); off in sweeps.
    prior_draws : int
        Draws from the prior stored in the ``prior`` group (0: none).
    out : path, optional
        Save the run folder there.

    Returns
    -------
    Run
    """
    spec = load_spec(model)
    settings = _sampler_settings(spec, dict(chains=chains, draws=draws, tune=tune, seed=seed,
                                            sampler=sampler, target_accept=target_accept,
                                            cores=cores))
    t0 = time.perf_counter()
    design = build_design(data, spec)
    t_design = time.perf_counter() - t0
    log.info("design: %d ratings in %d cells, %d participants", design.n_ratings,
             design.n_cells, len(design.coords["participant"]))
    pymc_model = None  # built for the prior draws only when needed (runtree.prior_samples)
    if settings["sampler"] == "nutpie":
        # compiled once per structure in this process; a new dataset swaps its data in
        compiled = compile_model(design, spec)
        raw, timings = sample_model(compiled.model, settings, progress=progress)
        timings.update(compile_s=compiled.seconds, compile_reused=compiled.reused)
    else:
        pymc_model = build_model(design, spec)
        raw, timings = sample_model(pymc_model, settings, progress=progress)
    got = int(raw["posterior"].sizes.get("draw", 0))
    if got < int(settings["draws"]):
        # nutpie answers Ctrl-C by returning the draws made so far: never keep those as a run
        raise RunError(f"sampling stopped after {got} of {settings['draws']} draws per chain "
                       "(interrupted?); nothing was saved")
    timings["design_s"] = t_design
    post = raw["posterior"].to_dataset()
    ll = None
    if "participant_effect" not in post.data_vars:
        # Marginalized participants: redraw them from their exact conditional posterior
        # (and, in the same pass over the cells, the per-participant log-likelihood).
        t0 = time.perf_counter()
        rng = np.random.default_rng([int(settings["seed"]), 1])
        if loglik:
            post["participant_effect"], ll = participant_posterior(post, design, spec, rng)
        else:
            post["participant_effect"] = draw_participant_effects(post, design, spec, rng)
        timings["participant_draws_s"] = time.perf_counter() - t0
    elif loglik:
        t0 = time.perf_counter()
        ll = participant_loglik(post, design, spec)
        timings["loglik_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    idata = build_tree(post, raw["sample_stats"].to_dataset(), design, spec, log_likelihood=ll,
                       predictive=predictive, prior_draws=prior_draws, seed=int(settings["seed"]),
                       model=pymc_model)
    if predictive:
        timings["predictive_s"] = time.perf_counter() - t0
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
    meta["run_format"] = RUN_FORMAT
    run = Run(spec=spec, design=design, idata=idata, meta=meta)
    if out is not None:
        run.save(out)
    return run
