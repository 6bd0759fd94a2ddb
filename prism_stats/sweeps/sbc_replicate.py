"""One replicate of simulation-based calibration: draw, simulate, fit, and rank the truth.

The design (:func:`make_design`) is fixed across replicates; :func:`run_replicate`
draws parameters from the generating spec's prior, simulates new data on that design
(:func:`replicate_design`), fits the fitting spec and records the rank of every test
quantity (:func:`parameter_quantities`, :func:`mrp_quantities`) among thinned posterior
draws (:func:`ranks_of`). It runs on a worker: PyMC and the model are imported inside
the functions, after the worker's compile directory is set (see
:mod:`prism_stats.sweeps.execution`). The driver is :mod:`prism_stats.sweeps.sbc`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._io import atomic_path
from .execution import fit_slot, process_cached, replicate_seed, seed_int, seed_record

# The model, poststrat, welfare, data and synth layers are imported inside the task
# functions: importing prism_stats.sweeps must not load PyMC, because a Dask worker
# first sets its own compile directory (see prism_stats.sweeps.execution).

DEFAULT_SEED = 20240422


class SbcError(ValueError):
    """An SBC run cannot be set up as asked (the message says which setting)."""


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
        from ..synth import synthesize

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
    every array of :func:`~prism_stats.model.predict.simulate_cells`)."""
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
    """Values of the model's ``pm.Data`` containers for *design* (a replicate's cell
    statistics; the containers :func:`prism_stats.model.build_model` creates for *spec*,
    which pack the scores together with the cells' codes and counts)."""
    from ..model.rating import container_data  # local: PyMC loads only on the worker

    return container_data(design, spec)


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


def run_replicate(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run SBC replicate ``payload["replicate"]`` and write its file (worker function).

    Returns a small summary (seconds, divergences, smallest ESS, whether this process
    compiled the model for it).
    """
    import arviz_stats as az  # the diagnostics of arviz-stats (the package imports it directly)
    import nutpie

    from ..model.compiled import compile_model
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
        # compiled once per worker and structure; each replicate's data are swapped in
        compiled = compile_model(rep, fit_spec)
        timings["compile_s"] = 0.0 if compiled.reused else compiled.seconds
        t0 = time.perf_counter()
        idata = nutpie.sample(
            compiled.model, draws=int(cfg["draws"]),
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
