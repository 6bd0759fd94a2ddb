"""Simulation-based calibration (SBC) of the rating-model specs, with MRP test quantities.

For replicate ``i`` of a spec (Talts et al. 2018; Modrák et al. 2023 on test quantities):

1. draw parameters from the spec's prior (:func:`prism_stats.model.diagnostics.prior_samples`);
2. simulate the ratings of a fixed PRISM-shaped design from them
   (:func:`prism_stats.model.predict.simulate_cells`: exact cell statistics);
3. fit the model to the simulated data (nutpie; the model is compiled once per worker
   process and the replicate's data are swapped in with ``compiled.with_data``);
4. record, for every test quantity, the rank of its true value among ``L`` posterior draws
   thinned evenly from all chains (ties broken at random), plus the quantity's bulk and tail
   ESS so that too-autocorrelated ranks are visible.

Test quantities are every model parameter element (intercept, scales, LLM, country,
conversation-type, demographic and LLM x demographic effects, and a few participant
effects) **and MRP estimands**: for the UK and the US, the census-population mean rating of
every LLM (group ``all``), and for each subgroup (``male``, ``nonmale``, ``white``,
``nonwhite``, ``under45``, ``over45``) the mean over LLMs and the best LLM's value (max
over LLMs), all through :func:`prism_stats.poststrat.cell_predictions` and
:func:`~prism_stats.poststrat.group_means` on the truth and on every posterior draw. Census
levels absent from the design (a new country, an age band nobody in a small sample has)
are drawn from N(0, sigma) in both the truth and the posterior, which is the model's own
predictive distribution, so these quantities are calibrated too.

The design (participants, their demographics and countries, conversations, opening
choice sets, turns) is generated once by the synthetic PRISM generator at a configurable
size (:func:`prism_stats.synth.synthesize`; or taken from a release folder) and held
fixed across replicates, as SBC conditions on the covariates.

Families. Gaussian (marginalized or not): the swapped data are ``cell_mean`` and
``within_ss``. Censored: the interior-cell set changes with every replicate, so the data
containers ``interior_cells``, ``cell_n_int``, ``cell_mean_int``, ``within_dof`` and
``within_ss`` change *shape*; nutpie's numba backend does not freeze shapes, so the
compiled model is still reused (verified by the tests against a rebuilt model). A replicate
with no interior rating at all changes the model's structure; it gets its own model
(compiled once per process for that structure).

This module is the driver (configuration, tasks, collection of the ranks); one replicate
is :mod:`prism_stats.sweeps.sbc_replicate`.

Mis-specification studies: ``fit_priors`` fits with different prior scales than the ones
that generated the data (e.g. ``{"sigma_llm": 0.1}``); the calibration test must flag it.

Outputs (``out``)::

    sbc.json              configuration, its hash, design summary, last run's report
    design.nc             the fixed design (prism_stats.model.Design.to_dataset)
    participants.csv      participants' levels (for MRP of non-census demographics)
    replicates/rep-00000.nc ...   one file per replicate (ranks, truths, ESS, timings)
    failures.json         replicates that failed twice (errors and tracebacks)
    ranks.nc              every replicate's ranks: dims (replicate, quantity)
    calibration.csv       the per-quantity test
    sbc_ecdf.png/.pdf     ECDF-difference plots with simultaneous bands
    sbc_pvalues.png/.pdf  per-quantity p-values against the adjusted threshold
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from .._compat import renamed_kwargs
from .._io import (
    atomic_path,
    now_iso,
    package_versions,
    save_figure,
    sha256_json,
    write_json_atomic,
)
from ..vocab import POPULATION_GROUPS
from .calibration import ALPHA, CalibrationResult, calibration_test
from .execution import RunReport, Task, dask_client, run_tasks
from .plots import plot_ecdf_difference, plot_pvalues
from .sbc_replicate import DEFAULT_SEED, SbcError, make_design, run_replicate

# The model, poststrat, welfare, data and synth layers are imported inside the task
# functions: importing prism_stats.sweeps must not load PyMC, because a Dask worker
# first sets its own compile directory (see prism_stats.sweeps.execution).

#: Subgroups whose mean over LLMs and best-LLM value are test quantities.
MRP_GROUPS: tuple[str, ...] = POPULATION_GROUPS[1:]
#: Spec fields a fitting spec may change relative to the generating one.
FIT_MAY_CHANGE: tuple[str, ...] = ("priors", "parameterisation", "sampling", "name", "description")

CONFIG_FILE = "sbc.json"
DESIGN_FILE = "design.nc"
PARTICIPANTS_FILE = "participants.csv"
REPLICATE_DIR = "replicates"
RANKS_FILE = "ranks.nc"
FAILURES_FILE = "failures.json"


# --- configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class SbcConfig:
    """Everything that determines an SBC run's replicates (not how many, nor where run).

    Attributes
    ----------
    spec, fit_spec : dict
        Generating and fitting spec (``ModelSpec.to_dict()``); they may differ only in
        :data:`FIT_MAY_CHANGE`.
    participants : int or None
        Size of the synthetic design (None when ``data_folder`` is given).
    data_folder : str or None
        A release folder whose design (not scores) is used instead.
    design_seed : int
        Seed of the synthetic design.
    seed : int
        Root seed of the replicates.
    chains, draws, tune : int
        Sampler settings per replicate.
    target_accept : float
    n_draws : int
        ``L``: ranks are in 0..L.
    countries, groups : tuple of str
        MRP test quantities.
    harmonisation : str
        Census harmonisation of the MRP frames.
    participant_quantities : int
        How many participant effects (evenly spaced) are test quantities.
    """

    spec: dict[str, Any]
    fit_spec: dict[str, Any]
    participants: int | None = 120
    data_folder: str | None = None
    design_seed: int = DEFAULT_SEED
    seed: int = DEFAULT_SEED
    chains: int = 2
    draws: int = 500
    tune: int = 500
    target_accept: float = 0.8
    n_draws: int = 99
    countries: tuple[str, ...] = ("uk", "us")
    groups: tuple[str, ...] = MRP_GROUPS
    harmonisation: str = "default"
    participant_quantities: int = 10

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["countries"], d["groups"] = list(self.countries), list(self.groups)
        return d

    def config_hash(self) -> str:
        """SHA-256 of the settings that change replicate results."""
        d = self.to_dict()
        for spec_key in ("spec", "fit_spec"):
            d[spec_key] = {k: v for k, v in d[spec_key].items() if k not in ("description", "sampling")}
        return sha256_json(d)


def _check_fit_spec(gen: Any, fit: Any) -> None:
    a, b = gen.to_dict(), fit.to_dict()
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in FIT_MAY_CHANGE)
    if changed:
        raise SbcError(
            f"the fitting spec may differ from the generating one only in {list(FIT_MAY_CHANGE)}; "
            f"it changes {changed} (SBC of a structurally different model has no common quantities)"
        )


# --- driver -------------------------------------------------------------------------------

def replicate_path(out: Path, index: int) -> Path:
    return Path(out) / REPLICATE_DIR / f"rep-{index:05d}.nc"


#: Per-replicate scalars (file attributes) gathered as variables with dim ``replicate``.
_REPLICATE_SCALARS = ("divergences", "total_s", "sampling_s", "compile_s", "simulate_s",
                      "quantities_s", "compiled_here")


def collect_ranks(out: str | Path, replicates: Sequence[int] | None = None) -> xr.Dataset:
    """Aggregate the replicate files of an SBC folder into one Dataset.

    Dims ``replicate`` x ``quantity``: ``rank`` and the per-replicate ``true_value``,
    ``post_mean``, ``post_sd``, ``ess_bulk``, ``ess_tail``, ``rhat``; per replicate
    ``divergences`` and timings. Attributes carry the configuration (spec hash, design
    size, root seed, L, sampler settings).
    """
    out = Path(out)
    cfg = json.loads((out / CONFIG_FILE).read_text())
    if replicates is None:
        files = sorted((out / REPLICATE_DIR).glob("rep-*.nc"))
    else:
        files = [replicate_path(out, i) for i in replicates]
        files = [f for f in files if f.exists()]
    if not files:
        raise SbcError(f"no finished replicates in {out / REPLICATE_DIR}")
    parts, indices = [], []
    for f in files:
        with xr.open_dataset(f, engine="h5netcdf") as ds:
            ds = ds.load()
        if ds.attrs.get("config_hash") != cfg["config_hash"]:
            raise SbcError(f"{f} belongs to a different SBC configuration")
        for name in _REPLICATE_SCALARS:
            ds[name] = ds.attrs.get(name, np.nan)
        parts.append(ds)
        indices.append(int(ds.attrs["replicate"]))
    quantity_sets = {tuple(p["quantity"].values) for p in parts}
    if len(quantity_sets) > 1:
        raise SbcError(f"replicates in {out} have different test quantities; rerun in a new folder")
    ranks = xr.concat([p.drop_attrs() for p in parts], dim="replicate", coords="minimal",
                      compat="override")
    ranks = ranks.assign_coords(replicate=np.array(indices))
    c = cfg["config"]
    ranks.attrs.update({
        "spec": c["spec"]["name"],
        "model_hash": cfg["model_hash"],
        "fit_model_hash": cfg["fit_model_hash"],
        "config_hash": cfg["config_hash"],
        "n_draws": int(c["n_draws"]),
        "chains": int(c["chains"]), "draws": int(c["draws"]), "tune": int(c["tune"]),
        "seed_root": int(c["seed"]),
        "design": json.dumps(cfg["design"]),
        "fit_priors": json.dumps(cfg.get("fit_priors") or {}),
        "created": now_iso(),
        "prism_stats_version": __version__,
    })
    return ranks


@dataclass
class SbcResult:
    """An SBC run: ranks, calibration test, execution report and where it was saved."""

    ranks: xr.Dataset
    calibration: CalibrationResult
    report: RunReport
    out: Path
    config: SbcConfig
    missing: list[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Calibration passed and every requested replicate finished."""
        return self.calibration.passed and not self.missing

    def timing(self) -> dict[str, float]:
        """Median seconds per replicate (total and sampling) and the compile times seen."""
        r = self.ranks
        compiled = r["compile_s"].values[r["compiled_here"].values > 0]
        return {
            "median_replicate_s": float(np.nanmedian(r["total_s"].values)),
            "median_sampling_s": float(np.nanmedian(r["sampling_s"].values)),
            "compiles": len(compiled),
            "median_compile_s": float(np.median(compiled)) if len(compiled) else float("nan"),
        }

    def ess_shortfall(self) -> float:
        """Share of (replicate, quantity) pairs whose bulk or tail ESS is below L."""
        L = int(self.ranks.attrs["n_draws"])
        low = (self.ranks["ess_bulk"] < L) | (self.ranks["ess_tail"] < L)
        return float(low.mean())

    def __str__(self) -> str:
        t = self.timing()
        timing = (f"timing: {t['median_replicate_s']:.1f}s per replicate (sampling "
                  f"{t['median_sampling_s']:.1f}s); {t['compiles']} compile(s), median "
                  f"{t['median_compile_s']:.1f}s")
        divergent = (f"divergent replicates: {int((self.ranks['divergences'] > 0).sum())}; "
                     f"ESS below L for {100 * self.ess_shortfall():.1f}% of ranks")
        lines = [str(self.calibration),
                 f"replicates: {self.ranks.sizes['replicate']} used; {self.report.summary_line()}",
                 timing, divergent]
        if self.ess_shortfall() > 0.05:
            lines.append("warning: many ranks come from posteriors with ESS < L, so the thinned draws are "
                         "autocorrelated (ranks pile up at the extremes); sample more --draws or lower -L")
        if self.missing:
            lines.append(f"MISSING replicates (failed twice, see {FAILURES_FILE}): {self.missing}")
        return "\n".join(lines)


def _settle_config(out: Path, config: SbcConfig, fit_priors: Mapping[str, float] | None,
                   spec: Any, fit_spec: Any) -> dict[str, Any]:
    """Write ``sbc.json`` (or check that the folder holds the same configuration)."""
    path = out / CONFIG_FILE
    h = config.config_hash()
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("config_hash") != h:
            before, now = old.get("config", {}), config.to_dict()
            diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise SbcError(f"{out} holds an SBC run with different settings ({', '.join(diff) or 'code'}); "
                           "use another --out folder or delete it")
        return old
    return {"config_hash": h, "config": config.to_dict(), "model_hash": spec.model_hash(),
            "fit_model_hash": fit_spec.model_hash(), "fit_priors": dict(fit_priors or {}),
            "created": now_iso(), "versions": package_versions()}


@renamed_kwargs(spec="model")
def run_sbc(
    model: Any = "ratings",
    replicates: int = 100,
    *,
    out: str | Path,
    participants: int | None = 120,
    data: Any = None,
    design_seed: int = DEFAULT_SEED,
    fit_priors: Mapping[str, float] | None = None,
    seed: int = DEFAULT_SEED,
    chains: int = 2,
    draws: int = 500,
    tune: int = 500,
    target_accept: float = 0.8,
    n_draws: int = 99,
    countries: Sequence[str] = ("uk", "us"),
    groups: Sequence[str] = MRP_GROUPS,
    harmonisation: str = "default",
    participant_quantities: int = 10,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    alpha: float = ALPHA,
    progress: bool = True,
    plots: bool = True,
) -> SbcResult:
    """Simulation-based calibration of a rating-model spec.

    Parameters
    ----------
    model : str, Path or ModelSpec
        The model spec whose prior generates the data (and which is fitted; formerly
        ``spec=``).
    replicates : int
        Number of replicates (0..replicates-1). Finished replicates in *out* are reused;
        asking for more later extends the run without changing the finished ones.
    out : path
        Output folder (see module docstring).
    participants : int
        Size of the synthetic design (ignored with *data*).
    data : PrismData or path, optional
        Use this release's design instead of a synthetic one.
    design_seed : int
        Seed of the synthetic design.
    fit_priors : dict, optional
        Prior scales of the *fitting* model that differ from the generating ones (a
        deliberate mis-specification).
    seed : int
        Root seed; replicate ``i`` uses child ``i`` of ``SeedSequence(seed)``.
    chains, draws, tune, target_accept
        Sampler settings of every fit (nutpie).
    n_draws : int
        ``L``: posterior draws kept (evenly thinned) per rank; ranks are 0..L.
    countries, groups, harmonisation
        MRP test quantities.
    participant_quantities : int
        Participant effects ranked (evenly spaced participants).
    client, scheduler, workers
        Where to run: an existing Dask client; a scheduler address; a new LocalCluster of
        *workers* single-threaded processes; or (all None) serially in this process.
    retries : int
        Extra attempts per failing replicate (then it is reported, never dropped).
    alpha : float
        Family-wise error rate of the calibration test.
    progress : bool
        Show a progress bar over replicates.
    plots : bool
        Write the ECDF-difference and p-value figures.

    Returns
    -------
    SbcResult
    """
    from ..model import load_spec

    gen = load_spec(model)
    if gen.sampling.get("sampler", "nutpie") != "nutpie":
        gen = gen.replace(sampling={"sampler": "nutpie"})
    fit = gen.replace(priors=dict(fit_priors)) if fit_priors else gen
    _check_fit_spec(gen, fit)
    if replicates < 1:
        raise SbcError(f"replicates must be >= 1, got {replicates}")
    if chains * draws < n_draws:
        raise SbcError(f"chains x draws = {chains * draws} < L = {n_draws}: sample more draws")
    config = SbcConfig(
        spec=gen.to_dict(), fit_spec=fit.to_dict(),
        participants=None if data is not None else int(participants),
        data_folder=None if data is None else str(getattr(data, "source", {}).get("folder", data)),
        design_seed=int(design_seed), seed=int(seed), chains=int(chains), draws=int(draws),
        tune=int(tune), target_accept=float(target_accept), n_draws=int(n_draws),
        countries=tuple(countries), groups=tuple(groups), harmonisation=harmonisation,
        participant_quantities=int(participant_quantities),
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = _settle_config(out, config, fit_priors, gen, fit)
    design_path, people_path = out / DESIGN_FILE, out / PARTICIPANTS_FILE
    if not design_path.exists() or "design" not in meta:
        design, people, info = make_design(gen, participants=participants, data=data,
                                           design_seed=design_seed)
        with atomic_path(people_path) as tmp:
            people.to_csv(tmp, index=False)
        with atomic_path(design_path) as tmp:
            design.to_dataset().to_netcdf(tmp, engine="h5netcdf")
        info["design_hash"] = sha256_json({"cells": design.cells.to_dict(orient="list"),
                                           "levels": design.participant_levels.to_dict(orient="list"),
                                           "coords": design.coords})
        meta["design"] = info
    write_json_atomic(out / CONFIG_FILE, meta)

    payload_base = {"config": config.to_dict(), "config_hash": meta["config_hash"],
                    "design_path": str(design_path.resolve()), "design_hash": meta["design"]["design_hash"],
                    "participants_path": str(people_path.resolve())}
    tasks = [Task(f"rep-{i:05d}", {**payload_base, "replicate": i, "output": str(replicate_path(out, i).resolve())},
                  (replicate_path(out, i),)) for i in range(replicates)]
    failures = out / FAILURES_FILE
    if client is not None:
        report = run_tasks(tasks, run_replicate, client=client, retries=retries, progress=progress,
                           label="SBC replicates", failures_path=failures)
    elif scheduler is not None or workers:
        with dask_client(scheduler, workers or 2) as c:
            report = run_tasks(tasks, run_replicate, client=c, retries=retries, progress=progress,
                               label="SBC replicates", failures_path=failures)
    else:
        report = run_tasks(tasks, run_replicate, retries=retries, progress=progress,
                           label="SBC replicates", failures_path=failures)
    meta["last_run"] = report.to_dict()
    write_json_atomic(out / CONFIG_FILE, meta)
    ranks = collect_ranks(out, range(replicates))
    missing = sorted(set(range(replicates)) - {int(r) for r in ranks["replicate"].values})
    ranks.attrs["missing_replicates"] = json.dumps(missing)
    with atomic_path(out / RANKS_FILE) as tmp:
        ranks.to_netcdf(tmp, engine="h5netcdf")
    calibration = calibration_test(ranks, alpha)
    with atomic_path(out / "calibration.csv") as tmp:
        calibration.table.to_csv(tmp, index=False)
    result = SbcResult(ranks=ranks, calibration=calibration, report=report, out=out, config=config,
                       missing=missing)
    if plots:
        save_figure(plot_ecdf_difference(ranks, calibration), out, "sbc_ecdf")
        save_figure(plot_pvalues(calibration), out, "sbc_pvalues")
    return result


def load_sbc(out: str | Path, alpha: float = ALPHA) -> tuple[xr.Dataset, CalibrationResult]:
    """Reopen a finished SBC folder's ranks and recompute its calibration test."""
    out = Path(out)
    path = out / RANKS_FILE
    if not path.exists():
        raise SbcError(f"{out} has no {RANKS_FILE}; run `prism-stats sbc` first")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ranks = ds.load()
    return ranks, calibration_test(ranks, alpha)
