"""One benchmark task in a fresh process: ``python benchmarks/_worker.py TASK CONFIG_JSON``.

Tasks
-----
prepare      generate a synthetic release, write it as JSONL to a temporary folder, read it
             back with ``load_prism`` and cache the tidy tables as a pickle
fit          fit a spec to cached tables: ``mode="fit"`` goes through
             :func:`prism_stats.model.fit` (design, compile, sample, participant redraws,
             per-participant log-likelihood); ``mode="full"`` samples the non-aggregated
             likelihood (``build_design(collapse=False)`` + ``build_model`` +
             ``sample_model``)
fit_reuse    compile once with nutpie, sample, then sample again on a new dataset of the
             same design through ``CompiledModel.with_data`` (no recompilation)
postprocess  MRP for both countries and the model-based welfare grid on a saved run

The last stdout line ``BENCH-RESULT {json}`` carries the result, including the process's
peak resident memory (``VmHWM``) and the 1-minute load average at the end.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULT_PREFIX, cache_dir

# Only these tidy columns travel to the fits (free text and response texts stay behind).
PARTICIPANT_COLUMNS = (
    "participant", "reside_country", "special_region", "age", "gender", "sex", "ethnicity",
    "ethnicity_simplified", "religion_simplified", "education", "english",
    "in_uk_rep", "in_us_rep", "balanced", "survey_only",
)
RATING_COLUMNS = ("utterance", "interaction", "conversation", "participant", "turn",
                  "within_turn", "llm", "score", "chosen", "conversation_type", "balanced")


def peak_rss_mb() -> float:
    """Peak resident set size of this process (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    import resource  # non-Linux fallback (kilobytes on Linux, bytes on macOS)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def code_hash() -> str:
    """SHA-256 (12 hex digits) of the sources that decide what is measured: the model
    stage, the specs, the generator, MRP and welfare (the package is under active
    development: results name the code they measured)."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    pkg = root / "prism_stats"
    files = [*(pkg / "model").glob("*.py"), *(pkg / "data").glob("synth*.py"),
             *(pkg / "welfare").glob("*.py"), *(pkg / "census").glob("*.py"),
             pkg / "poststrat.py", *(root / "models").glob("*.toml")]
    h = hashlib.sha256()
    for path in sorted(p for p in files if p.exists()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


CODE_HASH = code_hash()  # at start-up, i.e. the code that was imported


def emit(result: dict[str, Any]) -> None:
    result["code_hash"] = CODE_HASH
    result["peak_rss_mb"] = peak_rss_mb()
    result["load1_end"] = round(os.getloadavg()[0], 2)
    print(RESULT_PREFIX + json.dumps(result, default=float), flush=True)


def load_tables(path: str) -> types.SimpleNamespace:
    """The cached tidy tables as a PrismData-like object (participants, ratings, hash)."""
    with open(path, "rb") as fh:
        d = pickle.load(fh)
    return types.SimpleNamespace(participants=d["participants"], ratings=d["ratings"],
                                 data_hash=d["data_hash"], source={"synthetic": d["info"]})


# --- tasks --------------------------------------------------------------------------------

def task_prepare(cfg: dict[str, Any]) -> dict[str, Any]:
    from prism_stats.data import load_prism
    from prism_stats.synth import generate, write_release

    n, seed = int(cfg["participants"]), int(cfg["seed"])
    t0 = time.perf_counter()
    synth = generate(n, seed)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"prism-bench-n{n}-", dir=cache_dir()) as tmp:
        write_release(tmp, synth)
        del synth
        t2 = time.perf_counter()
        json_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        data = load_prism(tmp)
        t3 = time.perf_counter()
    participants = data.participants.loc[:, [c for c in PARTICIPANT_COLUMNS if c in data.participants]]
    ratings = data.ratings.loc[:, [c for c in RATING_COLUMNS if c in data.ratings]]
    opening = int((ratings["turn"] == 0).sum())
    info = {
        "participants": n,
        "seed": seed,
        "generator": "prism_stats.synth.generate (defaults: text effects on)",
        "n_participants_with_ratings": int(ratings["participant"].nunique()),
        "n_ratings_all_turns": len(ratings),
        "n_ratings_opening": opening,
        "json_mb": round(json_mb, 1),
        "generate_s": t1 - t0,
        "write_s": t2 - t1,
        "load_s": t3 - t2,
    }
    out = cache_dir() / "data" / f"synth_n{n}_s{seed}.pkl"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    with open(tmp_out, "wb") as fh:
        pickle.dump({"participants": participants, "ratings": ratings,
                     "data_hash": data.data_hash, "info": info}, fh, protocol=5)
    os.replace(tmp_out, out)
    info["path"] = str(out)
    (out.with_suffix(".json")).write_text(json.dumps(info, indent=1))
    return info


def _spec(cfg: dict[str, Any]):
    from prism_stats.model import load_spec

    spec = load_spec(cfg.get("spec", "ratings"))
    if cfg.get("replace"):
        spec = spec.replace(**cfg["replace"])
    return spec


def _settings(spec, cfg: dict[str, Any]) -> dict[str, Any]:
    settings = dict(spec.sampling)
    for key in ("chains", "draws", "tune", "seed", "sampler", "target_accept"):
        if cfg.get(key) is not None:
            settings[key] = cfg[key]
    return settings


def _diag_summary(tree, *, elements: tuple[str, ...] = ("age_effect", "gender_effect")) -> dict[str, Any]:
    """Worst R-hat / ESS over every posterior variable, which variable is worst, divergences,
    and the per-level bulk ESS of the small-level demographic effects."""
    import arviz as az

    from prism_stats.model import diagnose

    diag = diagnose(tree)
    t = diag.table
    out = {
        "max_rhat": diag.max_rhat,
        "min_ess_bulk": diag.min_ess_bulk,
        "min_ess_tail": diag.min_ess_tail,
        "worst_rhat_var": str(t["max_rhat"].idxmax()),
        "worst_bulk_var": str(t["min_ess_bulk"].idxmin()),
        "worst_tail_var": str(t["min_ess_tail"].idxmin()),
        "divergences": diag.divergences,
        "bfmi_min": min(diag.bfmi) if diag.bfmi else None,
        "n_parameters": int(t["size"].sum()),
        "gate_passed": diag.passed,
        "gate_failures": diag.failures(),
        "per_variable_min_ess_bulk": {k: float(v) for k, v in t["min_ess_bulk"].items()},
    }
    stats = tree["sample_stats"].to_dataset()
    if "n_steps" in stats:
        # Leapfrog steps (gradient evaluations) per kept draw: cost per draw = steps x cost
        # per gradient, so growth in either shows up here.
        steps = stats["n_steps"].values.astype(float)
        out["steps_per_draw"] = float(steps.mean())
        out["grad_evals_draws"] = float(steps.sum())
    depth = next((stats[k] for k in ("depth", "tree_depth") if k in stats), None)
    if depth is not None:
        out["mean_tree_depth"] = float(depth.mean())
    if "step_size" in stats:
        out["step_size"] = float(stats["step_size"].mean())
    post = tree["posterior"].to_dataset()
    levels = {}
    for name in elements:
        if name in post:
            ess = az.ess(post[[name]], method="bulk")[name]
            dim = next(iter(ess.dims))
            levels[name] = {str(k): float(v) for k, v in zip(ess[dim].values, ess.values, strict=True)}
    out["ess_bulk_levels"] = levels
    return out


def _posterior_summary(tree) -> dict[str, dict[str, list[float]]]:
    """Posterior mean and sd of every parameter but the participant effects (for comparing
    variants: a faster variant must not change the answer)."""
    post = tree["posterior"].to_dataset()
    out = {}
    for name, da in post.data_vars.items():
        if name == "participant_effect" or name.endswith("_z"):
            continue
        m = da.mean(("chain", "draw")).values.ravel()
        s = da.std(("chain", "draw")).values.ravel()
        out[str(name)] = {"mean": m.tolist(), "sd": s.tolist()}
    return out


def _graph_info(model) -> dict[str, Any]:
    import pytensor

    info = {"floatX": pytensor.config.floatX}
    try:
        info["logp_dtype"] = str(model.logp().dtype)
        info["n_free_dims"] = int(sum(np.prod(v.shape) for v in model.initial_point().values()))
    except Exception as exc:  # noqa: BLE001 - informational only, never fails a benchmark
        info["logp_dtype"] = f"unknown ({exc.__class__.__name__})"
    return info


def task_fit(cfg: dict[str, Any]) -> dict[str, Any]:
    import xarray as xr

    from prism_stats.model import build_design, build_model, fit
    from prism_stats.model.fit import sample_model

    data = load_tables(cfg["data"])
    spec = _spec(cfg)
    settings = _settings(spec, cfg)
    mode = cfg.get("mode", "fit")
    result: dict[str, Any] = {"mode": mode, "spec": spec.name, "settings": settings,
                              "parameterisation": dict(spec.parameterisation), "family": spec.family}
    t0 = time.perf_counter()
    if mode == "fit":
        run = fit(data, spec, chains=settings["chains"], draws=settings["draws"],
                  tune=settings["tune"], seed=settings["seed"], sampler=settings["sampler"],
                  progress=False, loglik=bool(cfg.get("loglik", True)),
                  predictive=bool(cfg.get("predictive", False)))
        wall = time.perf_counter() - t0
        timings = dict(run.meta["timings"])
        tree, design = run.idata, run.design
        # the graph's dtypes (built again, outside the timings)
        result["graph"] = _graph_info(build_model(run.design, spec))
        if cfg.get("save"):
            t1 = time.perf_counter()
            run.save(cfg["save"])
            result["save_s"] = time.perf_counter() - t1
            result["run_folder"] = cfg["save"]
    elif mode == "full":
        design = build_design(data, spec, collapse=bool(cfg.get("collapse", False)))
        model = build_model(design, spec)
        design_s = time.perf_counter() - t0
        result["graph"] = _graph_info(model)
        raw, timings = sample_model(model, settings, progress=False)
        wall = time.perf_counter() - t0
        timings["design_s"] = design_s
        post = raw["posterior"].to_dataset()
        post = post.drop_vars([v for v in post.data_vars if v.endswith("_z")])
        tree = xr.DataTree.from_dict({"posterior": post,
                                      "sample_stats": raw["sample_stats"].to_dataset()})
    else:
        raise ValueError(f"unknown fit mode {mode!r}")
    compile_s = timings.get("compile_s") or 0.0
    result.update(
        participants=cfg.get("participants"),
        n_ratings=design.n_ratings,
        n_cells=design.n_cells,
        n_participants=len(design.coords["participant"]),
        timings=timings,
        wall_s=wall,
        compile_s=timings.get("compile_s"),
        sampling_s=timings["sampling_s"],
        design_s=timings.get("design_s"),
        post_s=sum(timings.get(k) or 0.0 for k in ("participant_draws_s", "loglik_s")),
    )
    result["sampler_s"] = compile_s + timings["sampling_s"]
    t1 = time.perf_counter()
    result.update(_diag_summary(tree))
    if result.get("steps_per_draw"):
        # Approximate cost of one gradient: sampling time over the leapfrog steps of warm-up
        # and draws (warm-up assumed to take as many steps per iteration as the draws), with
        # the chains running in parallel on min(chains, cores) cores.
        chains = int(settings["chains"])
        parallel = max(1, min(chains, os.cpu_count() or 1))
        steps = result["steps_per_draw"] * (int(settings["tune"]) + int(settings["draws"])) * chains
        result["us_per_grad"] = 1e6 * timings["sampling_s"] * parallel / steps
    result["diagnose_s"] = time.perf_counter() - t1
    result["posterior"] = _posterior_summary(tree)
    return result


def task_fit_reuse(cfg: dict[str, Any]) -> dict[str, Any]:
    import nutpie
    import xarray as xr

    from prism_stats.model import build_design, build_model
    from prism_stats.model.predict import draw_participant_effects, simulate_cells
    from prism_stats.sweeps.sbc_replicate import data_updates, replicate_design

    data = load_tables(cfg["data"])
    spec = _spec(cfg)
    settings = _settings(spec, cfg)
    t0 = time.perf_counter()
    design = build_design(data, spec)
    model = build_model(design, spec)
    design_s = time.perf_counter() - t0

    def sample(compiled, seed):
        t = time.perf_counter()
        raw = nutpie.sample(compiled, draws=int(settings["draws"]), tune=int(settings["tune"]),
                            chains=int(settings["chains"]), cores=int(settings["chains"]),
                            seed=int(seed), progress_bar=False, save_warmup=False,
                            target_accept=float(settings.get("target_accept", 0.8)),
                            adaptation=str(settings.get("adaptation", "diag")))
        secs = time.perf_counter() - t
        post = raw["posterior"].to_dataset()
        post = post.drop_vars([v for v in post.data_vars if v.endswith("_z")])
        return xr.DataTree.from_dict({"posterior": post,
                                      "sample_stats": raw["sample_stats"].to_dataset()}), secs

    t = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model)
    compile_s = time.perf_counter() - t
    first, first_s = sample(compiled, settings["seed"])

    # A new dataset of the same design: scores simulated from one posterior draw (its
    # participant effects drawn from their conditional posterior), as SBC does.
    rng = np.random.default_rng([int(settings["seed"]), 7])
    t = time.perf_counter()
    one = first["posterior"].to_dataset().isel(chain=[0], draw=[0])
    if "participant_effect" not in one:
        one["participant_effect"] = draw_participant_effects(one, design, spec, rng)
    sim = simulate_cells(one, design, spec, rng)
    new_design = replicate_design(design, sim, spec.family)
    updated = compiled.with_data(**data_updates(new_design, spec))
    with_data_s = time.perf_counter() - t
    second, second_s = sample(updated, int(settings["seed"]) + 1)
    d1, d2 = _diag_summary(first), _diag_summary(second)
    moved = float(abs(second["posterior"]["intercept"].mean() - first["posterior"]["intercept"].mean()))
    return {
        "participants": cfg.get("participants"),
        "n_ratings": design.n_ratings,
        "n_cells": design.n_cells,
        "design_s": design_s,
        "compile_s": compile_s,
        "first_sampling_s": first_s,
        "first_wall_s": design_s + compile_s + first_s,
        "with_data_s": with_data_s,
        "second_sampling_s": second_s,
        "second_wall_s": with_data_s + second_s,
        "first": {k: d1[k] for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")},
        "second": {k: d2[k] for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")},
        "intercept_shift": moved,
    }


def _welfare_summary(ds) -> dict[str, Any]:
    """Mean welfare per (rule, scheme, target) with the standard error over juries
    (replicate means over draws; the posterior draws are common to any implementation)."""
    w = ds["welfare"].astype("float64").squeeze(drop=True)
    per_jury = w.mean([d for d in ("chain", "draw") if d in w.dims])
    mean = per_jury.mean("replicate").transpose("rule", "scheme", "target")
    se = (per_jury.std("replicate") / np.sqrt(per_jury.sizes["replicate"])).transpose("rule", "scheme", "target")
    return {"rule": [str(x) for x in mean["rule"].values], "scheme": [str(x) for x in mean["scheme"].values],
            "target": [str(x) for x in mean["target"].values], "mean": mean.values.tolist(),
            "se": se.values.tolist()}


def task_postprocess(cfg: dict[str, Any]) -> dict[str, Any]:
    from prism_stats.model import Run
    from prism_stats.poststrat import poststratify
    from prism_stats.welfare.model_based import model_welfare

    data = load_tables(cfg["data"])
    t = time.perf_counter()
    run = Run.load(cfg["run"])
    load_s = time.perf_counter() - t
    countries = tuple(cfg.get("countries", ("uk", "us")))
    reps, draws = int(cfg["replicates"]), int(cfg["draws"])
    out: dict[str, Any] = {"load_run_s": load_s, "countries": list(countries), "replicates": reps,
                           "draws": draws,
                           "posterior_samples": int(run.posterior.sizes["chain"] * run.posterior.sizes["draw"])}

    def timed(fn):
        t0 = time.perf_counter()
        value = fn()
        return value, time.perf_counter() - t0

    mrp = {}
    for c in countries:
        res, secs = timed(lambda c=c: poststratify(run, c, data=data))
        mrp[c] = {"seconds": secs, "groups": int(res.group_mean.sizes.get("group", 0)),
                  "cells": int(res.cell_mean.sizes.get("cell", 0))}
    out["mrp"] = mrp
    out["mrp_s"] = sum(v["seconds"] for v in mrp.values())

    grids = {"welfare_mean": {"rules": ("mean",), "draws": draws},
             "welfare_3rules": {"draws": draws},
             "welfare_library_default": {}}
    for key, kwargs in grids.items():
        if key == "welfare_library_default":
            kwargs = {"replicates": reps} if reps != 1000 else {}
        else:
            kwargs = {**kwargs, "replicates": reps}
        per = {}
        for c in countries:
            ds, secs = timed(lambda c=c, kw=kwargs: model_welfare(run, c, **kw))
            per[c] = {"seconds": secs, "sizes": {k: int(v) for k, v in ds.sizes.items()}}
            if key == "welfare_3rules":  # to compare implementations in distribution
                per[c]["summary"] = _welfare_summary(ds)
        out[key] = {"kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                    "per_country": per, "seconds": sum(v["seconds"] for v in per.values())}
    out["mrp_plus_welfare_mean_s"] = out["mrp_s"] + out["welfare_mean"]["seconds"]
    out["mrp_plus_welfare_3rules_s"] = out["mrp_s"] + out["welfare_3rules"]["seconds"]
    return out


def _tidy_release(n: int, seed: int):
    """Tidy tables of *n* participants in the release's shape, made directly (no JSON):
    38 residence countries, census demographics, ~5 conversations of 2-4 opening LLMs each.
    Enough to time the post-processing at sizes whose release would not fit in memory."""
    import numpy as np
    import pandas as pd

    from prism_stats import vocab

    rng = np.random.default_rng(seed)
    countries = list(vocab.COUNTRY_CODES[:38])
    share = np.r_[0.25, 0.25, np.full(36, 0.5 / 36)]
    people = pd.DataFrame({
        "participant": [f"p{i}" for i in range(n)],
        "reside_country": rng.choice(countries, n, p=share),
        "age": rng.choice(vocab.AGE_BANDS[:6], n),
        "gender": rng.choice(["Male", "Female"], n),
        "ethnicity": rng.choice(vocab.CENSUS_ETHNICITIES, n),
        "special_region": "UK",
    })
    rows = []
    llms = np.array(vocab.LLM_SHORT_NAMES)
    for i in range(n):
        for conv in range(rng.integers(3, 8)):
            shown = rng.choice(len(llms), rng.choice([2, 3, 4], p=[0.05, 0.2, 0.75]), replace=False)
            ctype = vocab.CONVERSATION_TYPES[rng.integers(3)]
            for m in shown:
                rows.append((f"p{i}", llms[m], ctype))
    ratings = pd.DataFrame(rows, columns=["participant", "llm", "conversation_type"])
    ratings["turn"] = 0
    ratings["balanced"] = True
    ratings["score"] = np.clip(np.round(rng.normal(60, 25, len(ratings))), 1, 100)
    return people, ratings


def _fake_posterior(design, spec, samples: int, seed: int):
    """Draws of every variable of the spec's model on *design* (random values: the cost of
    the post-processing does not depend on them)."""
    import numpy as np
    import xarray as xr

    from prism_stats.model.rating import effect_names

    rng = np.random.default_rng(seed)
    coords = {"chain": [0], "draw": np.arange(samples), **design.coords}
    ds = xr.Dataset(coords=coords)
    for name, scale in (("intercept", 1.0), ("sigma", 1.0), ("sigma_participant", 1.0)):
        ds[name] = (("chain", "draw"), (60.0 if name == "intercept" else 15.0) + scale * rng.random((1, samples)))
    for name, dims in effect_names(design, spec).items():
        if name == "participant_effect":
            continue
        shape = [len(design.coords[d]) for d in dims]
        ds[name] = (("chain", "draw", *dims), rng.normal(0, 2, (1, samples, *shape)))
    return ds


def task_predict_post(cfg: dict[str, Any]) -> dict[str, Any]:
    """Participant redraws and per-participant log-likelihood of a fit's draws, timed."""
    import numpy as np

    from prism_stats.model import build_design
    from prism_stats.model.predict import draw_participant_effects, participant_loglik

    spec = _spec(cfg)
    t = time.perf_counter()
    design = build_design(_tidy_release(int(cfg["participants"]), int(cfg.get("seed", 1))), spec)
    post = _fake_posterior(design, spec, int(cfg["draws"]), 2)
    out: dict[str, Any] = {"setup_s": time.perf_counter() - t, "n_cells": design.n_cells,
                           "n_participants": len(design.coords["participant"]), "draws": int(cfg["draws"])}
    t = time.perf_counter()
    post["participant_effect"] = draw_participant_effects(post, design, spec, np.random.default_rng(3))
    out["participant_draws_s"] = time.perf_counter() - t
    t = time.perf_counter()
    participant_loglik(post, design, spec)
    out["loglik_s"] = time.perf_counter() - t
    out["post_s"] = out["participant_draws_s"] + out["loglik_s"]
    try:  # what fit() runs: both from one pass over the cells
        from prism_stats.model.predict import participant_posterior
    except ImportError:  # code before participant_posterior existed: fit() made the two calls
        out["fit_post_s"] = out["post_s"]
    else:
        t = time.perf_counter()
        participant_posterior(post, design, spec, np.random.default_rng(3))
        out["fit_post_s"] = time.perf_counter() - t
    return out


TASKS = {"prepare": task_prepare, "fit": task_fit, "fit_reuse": task_fit_reuse,
         "postprocess": task_postprocess, "predict_post": task_predict_post}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in TASKS:
        print(f"usage: _worker.py {{{','.join(TASKS)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore", FutureWarning)
    cfg = json.loads(argv[1])
    result = TASKS[argv[0]](cfg)
    result["task"] = argv[0]
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
