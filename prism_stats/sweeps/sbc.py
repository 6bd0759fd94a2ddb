"""Simulation-based calibration (SBC) of the rating-model specs, with MRP test quantities.

For replicate ``i`` of a spec (Talts et al. 2018; Modrák et al. 2023 on test quantities):

1. draw parameters from the spec's prior (:func:`prism_stats.model.diagnostics.prior_samples`);
2. simulate the ratings of a fixed PRISM-shaped design from them
   (:func:`prism_stats.model.rating.simulate_cells`: exact cell statistics);
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
size (:func:`prism_stats.data.synth.synthesize`; or taken from a release folder) and held
fixed across replicates, as SBC conditions on the covariates.

Families. Gaussian (marginalized or not): the swapped data are ``cell_mean`` and
``within_ss``. Censored: the interior-cell set changes with every replicate, so the data
containers ``interior_cells``, ``cell_n_int``, ``cell_mean_int``, ``within_dof`` and
``within_ss`` change *shape*; nutpie's numba backend does not freeze shapes, so the
compiled model is still reused (verified by the tests against a rebuilt model). A replicate
with no interior rating at all changes the model's structure; it gets its own model
(compiled once per process for that structure).

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

import contextlib
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from .._io import atomic_path, now_iso, package_versions, sha256_json, write_json_atomic
from .calibration import ALPHA, CalibrationResult, calibration_test
from .execution import (
    RunReport,
    Task,
    dask_client,
    fit_slot,
    process_cached,
    replicate_seed,
    run_tasks,
    seed_int,
    seed_record,
)

#: Subgroups whose mean over LLMs and best-LLM value are test quantities.
MRP_GROUPS: tuple[str, ...] = ("male", "nonmale", "white", "nonwhite", "under45", "over45")
DEFAULT_SEED = 20240422
#: Spec fields a fitting spec may change relative to the generating one.
FIT_MAY_CHANGE: tuple[str, ...] = ("priors", "parameterisation", "sampling", "name", "description")

CONFIG_FILE = "sbc.json"
DESIGN_FILE = "design.nc"
PARTICIPANTS_FILE = "participants.csv"
REPLICATE_DIR = "replicates"
RANKS_FILE = "ranks.nc"
FAILURES_FILE = "failures.json"


class SbcError(ValueError):
    """An SBC run cannot be set up as asked (the message says which setting)."""


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


# --- the fixed design ---------------------------------------------------------------------

def make_design(spec: Any, *, participants: int | None = 120, data: Any = None,
                design_seed: int = DEFAULT_SEED) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    """The fixed SBC design of *spec*: from a synthetic PRISM of *participants*, or from
    *data* (a ``PrismData`` or a release folder; its scores are ignored).

    Returns ``(design, participants_table, info)``.
    """
    from ..data import load_prism
    from ..model import build_design
    from ..model.spec import DEMOGRAPHIC_COLUMNS

    if data is None:
        if participants is None or participants < 10:
            raise SbcError(f"participants must be >= 10 for a synthetic design, got {participants!r}")
        from ..data.synth import synthesize

        with tempfile.TemporaryDirectory(prefix="prism-sbc-design-") as tmp:
            synthesize(tmp, int(participants), int(design_seed))
            prism = load_prism(tmp)
        info = {"source": "synthetic", "participants": int(participants), "design_seed": int(design_seed)}
    else:
        prism = load_prism(data) if isinstance(data, (str, Path)) else data
        info = {"source": "data", "folder": str(getattr(prism, "source", {}).get("folder", data))}
    design = build_design(prism, spec)
    columns = ["participant", "reside_country", "special_region",
               *sorted({DEMOGRAPHIC_COLUMNS[f] for f in spec.demographics})]
    people = prism.participants.loc[:, [c for c in dict.fromkeys(columns) if c in prism.participants]]
    people = people.loc[people["participant"].astype(str).isin(design.coords["participant"])]
    info.update(n_participants=len(design.coords["participant"]), n_ratings=design.n_ratings,
                n_cells=design.n_cells, data_hash=design.data_hash,
                filtered=design.filtered, n_llms=len(design.coords["llm"]),
                n_countries=len(design.coords["country"]))
    return design, people.astype(str).reset_index(drop=True), info


def replicate_design(design: Any, sim: Mapping[str, np.ndarray], family: str) -> Any:
    """*design* with its cell statistics replaced by one simulated replicate (row 0 of
    every array of :func:`~prism_stats.model.rating.simulate_cells`)."""
    from ..model.design import HIGH, LOW, Design

    cells = design.cells.copy()
    n = cells["n"].to_numpy().astype(float)
    if family == "gaussian":
        cells["mean"] = np.asarray(sim["mean"])[0]
        cells["ss"] = np.asarray(sim["ss"])[0]
    else:
        n_low, n_high, n_int = (np.asarray(sim[k])[0].astype(np.int64) for k in ("n_low", "n_high", "n_int"))
        mean_int, ss_int = np.asarray(sim["mean_int"])[0], np.asarray(sim["ss_int"])[0]
        total = n_low * LOW + n_high * HIGH + n_int * mean_int
        total_sq = n_low * LOW**2 + n_high * HIGH**2 + ss_int + n_int * mean_int**2
        cells["n_low"], cells["n_high"], cells["n_int"] = n_low, n_high, n_int
        cells["mean_int"], cells["ss_int"] = mean_int, ss_int
        cells["mean"] = total / n
        cells["ss"] = np.maximum(total_sq - n * cells["mean"].to_numpy() ** 2, 0.0)
    return Design(coords=design.coords, cells=cells, participant_levels=design.participant_levels,
                  n_ratings=design.n_ratings, filtered=dict(design.filtered),
                  data_hash=design.data_hash)


def data_updates(design: Any, spec: Any) -> dict[str, Any]:
    """Values of the model's ``pm.Data`` containers for *design*'s cell statistics (the
    containers :func:`prism_stats.model.build_model` creates for *spec*)."""
    from ..model.rating import score_data

    return score_data(design, spec)


def model_structure(design: Any, spec: Any) -> str:
    """What of the model graph depends on the data: the censored family's interior block
    exists only when some rating is interior."""
    if spec.family == "censored":
        return "interior" if bool((design.cells["n_int"] > 0).any()) else "no-interior"
    return "fixed"


# --- test quantities ----------------------------------------------------------------------

#: Order in which parameter families appear among the quantities.
_PARAM_ORDER = ("intercept", "sigma", "sigma_participant", "turn_effect")


def _sample_matrix(da: xr.DataArray) -> np.ndarray:
    sample = [d for d in ("chain", "draw") if d in da.dims]
    other = [d for d in da.dims if d not in sample]
    arr = da.transpose(*sample, *other).values
    return arr.reshape(int(np.prod([da.sizes[d] for d in sample])), -1)


def _labels(da: xr.DataArray) -> list[str]:
    other = [d for d in da.dims if d not in ("chain", "draw")]
    if not other:
        return [str(da.name)]
    grids = np.meshgrid(*[[str(x) for x in da[d].values] for d in other], indexing="ij")
    flat = zip(*[g.ravel() for g in grids], strict=True)
    return [f"{da.name}[{','.join(t)}]" for t in flat]


def parameter_quantities(params: xr.Dataset, names: Sequence[str], participant_quantities: int
                         ) -> tuple[list[str], list[str], np.ndarray]:
    """Flatten parameters into labelled scalar quantities: ``(labels, variables, (S, Q))``."""
    ordered = [n for n in _PARAM_ORDER if n in names] + sorted(n for n in names if n not in _PARAM_ORDER)
    labels, variables, blocks = [], [], []
    for name in ordered:
        da = params[name]
        if name == "participant_effect":
            k = min(participant_quantities, da.sizes["participant"])
            if k == 0:
                continue
            idx = np.unique(np.linspace(0, da.sizes["participant"] - 1, k).round().astype(int))
            da = da.isel(participant=idx)
        lab = _labels(da.rename(name))
        labels += lab
        variables += [name] * len(lab)
        blocks.append(_sample_matrix(da))
    return labels, variables, np.concatenate(blocks, axis=1)


def mrp_quantities(params: xr.Dataset, spec: Any, *, countries: Sequence[str], groups: Sequence[str],
                   harmonisation: str, participants: pd.DataFrame | None, seed: int
                   ) -> tuple[list[str], list[str], np.ndarray]:
    """MRP test quantities of *params*: per-LLM population means and, per subgroup, the mean
    over LLMs and the best LLM's value, for each country: ``(labels, variables, (S, Q))``."""
    from .. import census
    from ..poststrat import cell_predictions, group_means

    labels, variables, blocks = [], [], []
    seeds = np.random.SeedSequence(seed).spawn(len(countries))
    for country, s in zip(countries, seeds, strict=True):
        frame = census.frame(country, harmonisation)
        masks = census.group_masks(frame)
        cells = cell_predictions(params, spec, frame, country, participants=participants,
                                 seed=seed_int(s))
        gm = group_means(cells, frame, masks)
        llms = [str(x) for x in gm["llm"].values]
        pop = _sample_matrix(gm.sel(group="all").transpose(..., "llm"))
        labels += [f"mrp.{country}.all[{m}]" for m in llms]
        variables += [f"mrp.{country}.all"] * len(llms)
        blocks.append(pop)
        for g in groups:
            sub = _sample_matrix(gm.sel(group=g).transpose(..., "llm"))
            labels += [f"mrp.{country}.{g}[mean]", f"mrp.{country}.{g}[max]"]
            variables += [f"mrp.{country}.{g}"] * 2
            blocks.append(np.stack([sub.mean(axis=1), sub.max(axis=1)], axis=1))
    return labels, variables, np.concatenate(blocks, axis=1)


def thin_indices(total: int, n_draws: int) -> np.ndarray:
    """``n_draws`` evenly spaced positions among *total* chain-major draws."""
    if n_draws > total:
        raise SbcError(f"cannot thin {total} posterior draws to L = {n_draws}; sample more draws")
    return np.floor(np.arange(n_draws) * total / n_draws).astype(np.int64)


def ranks_of(truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each true value among its draws (0..L), ties broken uniformly at random."""
    below = (draws < truth[None, :]).sum(axis=0)
    ties = (draws == truth[None, :]).sum(axis=0)
    return below + np.floor(rng.random(len(truth)) * (ties + 1)).astype(np.int64)


# --- one replicate (runs on a worker) -----------------------------------------------------

def _load_design(path: str) -> Any:
    from ..model.design import Design

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return Design.from_dataset(ds.load())


@contextlib.contextmanager
def _quiet_prior_sampling():
    """Silence PyMC's per-call "Sampling: [...]" log line and its warning that potentials
    (here: the likelihood) are ignored by prior sampling -- both expected in SBC."""
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _compile(design: Any, spec: Any) -> tuple[Any, float]:
    import nutpie

    from ..model import build_model

    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(build_model(design, spec))
    return compiled, time.perf_counter() - t0


def run_replicate(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run SBC replicate ``payload["replicate"]`` and write its file (worker function).

    Returns a small summary (seconds, divergences, smallest ESS, whether this process
    compiled the model for it).
    """
    import arviz as az
    import nutpie

    from ..model.diagnostics import prior_samples
    from ..model.effects import is_raw
    from ..model.predict import draw_participant_effects, simulate_cells
    from ..model.spec import ModelSpec

    t_start = time.perf_counter()
    cfg = payload["config"]
    index = int(payload["replicate"])
    out_file = Path(payload["output"])
    gen_spec = ModelSpec.from_dict(cfg["spec"], source="sbc generating spec")
    fit_spec = ModelSpec.from_dict(cfg["fit_spec"], source="sbc fitting spec")
    seq = replicate_seed(int(cfg["seed"]), index)
    s_prior, s_sim, s_fit, s_draws, s_mrp_true, s_mrp_post, s_ties = seq.spawn(7)

    design, _ = process_cached(("sbc-design", payload["design_path"], payload["design_hash"]),
                               lambda: _load_design(payload["design_path"]))
    participants = None
    if payload.get("participants_path"):
        participants, _ = process_cached(("sbc-participants", payload["participants_path"]),
                                         lambda: pd.read_csv(payload["participants_path"], dtype=str))
    timings: dict[str, float] = {}
    with fit_slot():
        t0 = time.perf_counter()
        with _quiet_prior_sampling():
            truth = prior_samples(design, gen_spec, 1, seed_int(s_prior))
        sim = simulate_cells(truth, design, gen_spec, np.random.default_rng(s_sim))
        rep = replicate_design(design, sim, gen_spec.family)
        timings["simulate_s"] = time.perf_counter() - t0
        structure = model_structure(rep, fit_spec)
        key = ("sbc-compiled", payload["design_hash"], fit_spec.model_hash(), structure)
        build_on = design if model_structure(design, fit_spec) == structure else rep
        (compiled, compile_s), hit = process_cached(key, lambda: _compile(build_on, fit_spec))
        timings["compile_s"] = 0.0 if hit else compile_s
        t0 = time.perf_counter()
        idata = nutpie.sample(
            compiled.with_data(**data_updates(rep, fit_spec)), draws=int(cfg["draws"]),
            tune=int(cfg["tune"]), chains=int(cfg["chains"]), cores=1, seed=seed_int(s_fit),
            progress_bar=False, save_warmup=False, target_accept=float(cfg["target_accept"]),
        )
        timings["sampling_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    post = idata["posterior"].to_dataset()
    post = post.drop_vars([v for v in post.data_vars if is_raw(v)])
    if "participant_effect" not in post:
        post["participant_effect"] = draw_participant_effects(post, rep, fit_spec,
                                                              np.random.default_rng(s_draws))
    divergences = int(idata["sample_stats"]["diverging"].sum())
    names = [v for v in truth.data_vars if v in post.data_vars]
    missing = sorted(set(truth.data_vars) ^ set(post.data_vars))
    labels, variables, true_p = parameter_quantities(truth, names, int(cfg["participant_quantities"]))
    _, _, post_p = parameter_quantities(post, names, int(cfg["participant_quantities"]))
    kinds = ["parameter"] * len(labels)
    mrp_args = {"countries": cfg["countries"], "groups": cfg["groups"],
                "harmonisation": cfg["harmonisation"], "participants": participants}
    m_labels, m_vars, true_m = mrp_quantities(truth, gen_spec, seed=seed_int(s_mrp_true), **mrp_args)
    _, _, post_m = mrp_quantities(post, fit_spec, seed=seed_int(s_mrp_post), **mrp_args)
    labels += m_labels
    variables += m_vars
    kinds += ["mrp"] * len(m_labels)
    true_v = np.concatenate([true_p, true_m], axis=1)[0]
    post_v = np.concatenate([post_p, post_m], axis=1)  # (S, Q), chain-major

    chains, draws = post.sizes["chain"], post.sizes["draw"]
    as_ds = xr.Dataset({"q": (("chain", "draw", "quantity"), post_v.reshape(chains, draws, -1))})
    ess_bulk = az.ess(as_ds, method="bulk")["q"].values
    ess_tail = az.ess(as_ds, method="tail")["q"].values
    rhat = az.rhat(as_ds)["q"].values if chains > 1 else np.full(len(labels), np.nan)
    L = int(cfg["n_draws"])
    thinned = post_v[thin_indices(post_v.shape[0], L)]
    ranks = ranks_of(true_v, thinned, np.random.default_rng(s_ties))
    timings["quantities_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start

    seeds = seed_record(seq)
    ds = xr.Dataset(
        {
            "rank": ("quantity", ranks.astype(np.int32)),
            "true_value": ("quantity", true_v),
            "post_mean": ("quantity", post_v.mean(axis=0)),
            "post_sd": ("quantity", post_v.std(axis=0, ddof=1)),
            "ess_bulk": ("quantity", ess_bulk),
            "ess_tail": ("quantity", ess_tail),
            "rhat": ("quantity", rhat),
        },
        coords={"quantity": labels, "variable": ("quantity", variables), "kind": ("quantity", kinds)},
        attrs={
            "replicate": index,
            "seed_root": seeds["root"],
            "seed_spawn_key": json.dumps(seeds["spawn_key"]),
            "config_hash": payload["config_hash"],
            "n_draws": L,
            "total_draws": int(post_v.shape[0]),
            "divergences": divergences,
            "unmatched_variables": json.dumps(missing),
            "compiled_here": int(timings["compile_s"] > 0),
            **{k: float(v) for k, v in timings.items()},
        },
    )
    with atomic_path(out_file) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return {"replicate": index, "seconds": timings["total_s"], "sampling_s": timings["sampling_s"],
            "compile_s": timings["compile_s"], "divergences": divergences,
            "min_ess_bulk": float(np.nanmin(ess_bulk)), "min_ess_tail": float(np.nanmin(ess_tail))}


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


def run_sbc(
    spec: Any = "ratings",
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
    spec : str, Path or ModelSpec
        The spec whose prior generates the data (and which is fitted).
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

    gen = load_spec(spec)
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
        from .plots import plot_ecdf_difference, plot_pvalues, save_figure

        save_figure(plot_ecdf_difference(ranks, calibration), out / "sbc_ecdf")
        save_figure(plot_pvalues(calibration), out / "sbc_pvalues")
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
