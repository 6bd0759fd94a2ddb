"""Peers side by side: the package's rating model against rstanarm and lme4 on the same data.

For one synthetic release (``prism_stats.synth.synthesize``, read back with
``load_prism``) and one spec (``--model``, default ``ratings``), the script

1. derives an lme4/rstanarm formula from the :class:`~prism_stats.model.ModelSpec`
   (:func:`r_formula`: every effect family of the spec becomes a term; what R cannot
   express is dropped with a printed note);
2. fits the package (:func:`prism_stats.model.fit`, the spec's sampler settings) in a fresh
   subprocess, then ``lme4::lmer`` (REML) and ``rstanarm::stan_glmer`` (same chains,
   warm-up, draws, target acceptance and seed) through ``benchmarks/peers.R``, one at a
   time, with the 1-minute load average before and after each;
3. reports per fitter the wall time of the fitting call (the package's includes building
   the design and compiling; rstanarm's Stan programs are compiled when the R package is
   installed, so its call has nothing to compile), the wall time of the whole process
   (imports, R start-up), the min bulk ESS of the quantities compared, ESS per second of
   wall time, and the agreement of the LLM means for an average rater between fitters
   (correlation, max abs difference, RMSE of the posterior means / REML estimates).

The LLM mean for an average rater (the prediction for a new rater at the opening turn,
averaged over the other predictors with the package's weights; for the default spec the
package's ``intercept + llm_effect``) is defined in ``_peers_model.py``; ESS is ArviZ's
rank-normalised bulk ESS, computed on every fitter's draws alike.

Usage::

    python benchmarks/peers.py                               # 150 participants
    python benchmarks/peers.py --participants 1500 --fitters lme4 rstanarm --r-timeout 2700
    python benchmarks/peers.py --dry-run                     # the plan and the R formula

R is not a dependency of the package: without ``Rscript`` or its packages (Debian:
``apt-get install r-base-core r-cran-rstanarm r-cran-lme4``) the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_SEED, cache_dir, load1, machine, print_machine, print_table, write_json
from _peers_model import (
    RFormula,
    agreement,
    average_grid,
    ess_summary,
    grid_labels,
    llm_label_map,
    package_llm_means,
    r_config,
    r_draws,
    r_formula,
    rating_frame,
)

HERE = Path(__file__).resolve().parent
R_SCRIPT = HERE / "peers.R"
R_PACKAGES = ("lme4", "rstanarm", "jsonlite")
FITTERS = ("package", "lme4", "rstanarm")
DEFAULT_R_TIMEOUT = 2700.0  # 45 minutes


def prepare_release(participants: int, seed: int) -> Path:
    """A synthetic release of *participants*, generated once under the benchmark cache."""
    from prism_stats.synth import synthesize

    folder = cache_dir() / "peers" / f"release_n{participants}_s{seed}"
    done = folder / "peers-complete.json"
    if done.exists():
        return folder
    tmp = folder.with_name(folder.name + f".part{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    result = synthesize(tmp, participants, seed)
    (tmp / "peers-complete.json").write_text(json.dumps(
        {"participants": participants, "seed": seed, "counts": result.counts,
         "seconds": time.perf_counter() - t0}, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


# --- the fitters ---------------------------------------------------------------------------

def r_missing() -> str | None:
    """Why R cannot run here (``None`` when Rscript and its packages are available)."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    check = ("pk <- c(" + ", ".join(f'"{p}"' for p in R_PACKAGES) + "); "
             "ok <- sapply(pk, requireNamespace, quietly = TRUE); "
             "if (!all(ok)) { cat(pk[!ok], sep = ' '); quit(status = 1) }")
    proc = subprocess.run(["Rscript", "-e", check], capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode != 0:
        return f"R packages missing: {proc.stdout.strip() or proc.stderr.strip()[-200:]}"
    return None


def run_process(cmd: list[str], timeout: float) -> tuple[int | None, str, float]:
    """Run *cmd* in its own process group (R's parallel chains are child processes);
    on timeout kill that group. Returns (exit code or None on timeout, output tail, wall)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=str(HERE.parent), start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    return code, "\n".join((out or "").splitlines()[-30:]), time.perf_counter() - t0


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and its waited children."""
    usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


def worker_package(cfg: Mapping[str, Any]) -> None:
    """In a fresh process: fit the package, save LLM-mean and scale draws and timings."""
    import xarray as xr

    from prism_stats.data import load_prism
    from prism_stats.model import diagnose, fit, load_spec

    spec = load_spec(cfg["model"]).replace(sampling=cfg["sampling"])
    data = load_prism(cfg["release"])
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    run = fit(data, spec, progress=False, loglik=False)
    fit_s, fit_cpu_s = time.perf_counter() - t0, _cpu_seconds() - cpu0
    post = run.posterior
    grid = average_grid(run.design, spec)
    means = package_llm_means(post, run.design, spec, grid)
    scales = [v for v in post.data_vars if str(v).startswith("sigma") and post[v].ndim == 2]
    out = xr.Dataset({"llm_mean": means, **{v: post[v] for v in scales}})
    out.to_netcdf(cfg["out"] + ".nc")
    diag = diagnose(run.idata)
    info = {"fitter": "package", "fit_s": fit_s, "fit_cpu_s": fit_cpu_s,
            "timings": run.meta["timings"],
            "settings": dict(spec.sampling), "n_ratings": run.design.n_ratings,
            "divergences": diag.divergences, "max_rhat_all": diag.max_rhat,
            "min_ess_bulk_all": diag.min_ess_bulk, "gate_passed": diag.passed}
    Path(cfg["out"] + ".json").write_text(json.dumps(info, default=float))


def iterations_done(out: str) -> list[int]:
    """Post-warm-up draws each rstan chain wrote to its sample file (``<out>_iterations*.csv``;
    rstanarm does not save the warm-up)."""
    done = []
    for path in sorted(Path(out).parent.glob(Path(out).name + "_iterations*.csv")):
        with open(path, errors="replace") as fh:
            lines = [ln for ln in fh if ln.strip() and not ln.startswith("#")]
        done.append(max(len(lines) - 1, 0))  # minus the header line
    return done


def run_fitter(fitter: str, cfg: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """Run one fitter in its own process; returns its info, draws and the load around it."""
    import xarray as xr

    cfg = {**cfg, "out": cfg.get("out") or str(Path(cfg["csv"]).parent / fitter)}
    cfg["config_path"] = cfg["out"] + ".config.json"
    Path(cfg["config_path"]).write_text(json.dumps(cfg, indent=1))
    out = cfg["out"]
    for suffix in (".json", ".csv", ".nc"):
        Path(out + suffix).unlink(missing_ok=True)
    for path in Path(out).parent.glob(Path(out).name + "_iterations*.csv"):
        path.unlink()
    if fitter == "package":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", cfg["config_path"]]
    else:
        cmd = ["Rscript", str(R_SCRIPT), cfg["config_path"], fitter]
    before = load1()
    code, tail, wall = run_process(cmd, timeout)
    result: dict[str, Any] = {"fitter": fitter, "process_s": wall, "load1_before": before,
                              "load1_after": load1()}
    if code is None:
        limit = f"{timeout / 60:.0f} min" if timeout >= 120 else f"{timeout:.0f} s"
        result["status"] = f"did not finish in {limit} (killed)"
        done = iterations_done(out)
        if done:
            result["iterations_done"] = done
            result["status"] += (f"; post-warm-up draws per chain: {', '.join(map(str, done))} of "
                                 f"{cfg['iter'] - cfg['warmup']} (0: still in the "
                                 f"{cfg['warmup']}-iteration warm-up)")
        return result
    if code != 0 or not Path(out + ".json").exists():
        result["status"] = f"failed (exit {code}): {tail}"
        return result
    result.update(json.loads(Path(out + ".json").read_text()), status="ok")
    for path in Path(out).parent.glob(Path(out).name + "_iterations*.csv"):
        path.unlink()  # only needed to report progress when killed
    if fitter == "package":
        result["draws"] = xr.load_dataset(out + ".nc")
    else:
        result["draws"] = r_draws(pd.read_csv(out + ".csv"), cfg["llm_map"])
    return result


TABLE_COLUMNS = [
    ("fitter", "fitter", ""),
    ("status", "status", ""),
    ("fit_s", "fit wall s", ".1f"),
    ("compile_s", "compile s", ".1f"),
    ("process_s", "process wall s", ".1f"),
    ("min_ess_llm", "min ESS (LLM means)", ".0f"),
    ("min_ess_all", "min ESS (+ scales)", ".0f"),
    ("ess_per_s", "ESS/s wall", ".2f"),
    ("fit_cpu_s", "fit CPU s", ".1f"),
    ("ess_per_cpu_s", "ESS/CPU s", ".2f"),
    ("llm_mean_sd", "LLM mean post. sd", ".2f"),
    ("max_rhat_compared", "max R-hat", ".3f"),
    ("divergences", "div", "d"),
    ("load1_before", "load before", ".2f"),
    ("load1_after", "load after", ".2f"),
]


# --- main -----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peers", description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=150,
                   help="participants of the synthetic release (default: %(default)s, 10%% of "
                   "PRISM)")
    p.add_argument("--model", default="ratings", help="model spec (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="synthetic data seed")
    p.add_argument("--fitters", nargs="+", choices=FITTERS, default=list(FITTERS))
    for opt in ("chains", "tune", "draws"):
        p.add_argument(f"--{opt}", type=int, help=f"{opt} of the package and rstanarm "
                       "(default: the spec's [sampling])")
    p.add_argument("--timeout", type=float, default=3600, help="seconds for the package's fit")
    p.add_argument("--r-timeout", type=float, default=DEFAULT_R_TIMEOUT,
                   help="seconds for each R fit (default: %(default)s)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the R formula, fit nothing")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: the package's fit process
    return p.parse_args(argv)


def plan(args: argparse.Namespace, spec, formula: RFormula) -> dict[str, Any]:
    s = spec.sampling
    return {
        "participants": args.participants, "model": spec.name, "data_seed": args.seed,
        "fitters": args.fitters, "formula": formula.formula, "notes": formula.notes,
        "package": {k: s[k] for k in ("sampler", "chains", "tune", "draws", "target_accept",
                                      "seed")},
        "rstanarm": {"chains": s["chains"], "iter": s["tune"] + s["draws"], "warmup": s["tune"],
                     "adapt_delta": s["target_accept"], "seed": s["seed"], "cores": s["chains"]},
        "lme4": {"REML": True},
        "r_timeout_s": args.r_timeout,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_package(json.loads(Path(args.worker).read_text()))
        return 0
    from prism_stats.data import load_prism
    from prism_stats.model import build_design, load_spec

    info = machine()
    print_machine(info)
    spec = load_spec(args.model)
    overrides = {k: getattr(args, k) for k in ("chains", "tune", "draws") if getattr(args, k)}
    if overrides:
        spec = spec.replace(sampling=overrides)
    the_plan = plan(args, spec, r_formula(spec))
    print(f"# peers: spec {spec.name!r}, {args.participants} participants (data seed {args.seed}), "
          f"fitters {' '.join(args.fitters)}")
    print(f"# package: {the_plan['package']}\n# rstanarm: {the_plan['rstanarm']} (each R fit "
          f"limited to {args.r_timeout / 60:.0f} min)\n# lme4: REML")
    print(f"# R formula: {the_plan['formula']}")
    for note in the_plan["notes"]:
        print(f"#   note: {note}")
    missing = r_missing() if {"lme4", "rstanarm"} & set(args.fitters) else None
    if args.dry_run:
        print(f"would synthesize {args.participants} participants, fit "
              + ", ".join(args.fitters) + (f" (R unavailable: {missing})" if missing else ""))
        return 0
    if missing:
        print(f"SKIPPED: {missing}; install R to compare (Debian: apt-get install r-base-core "
              "r-cran-rstanarm r-cran-lme4). R is never a dependency of prism-stats.")
        write_json(args.json, {"machine": info, "plan": the_plan, "skipped": missing})
        return 0

    release = prepare_release(args.participants, args.seed)
    data = load_prism(release)
    design = build_design(data, spec, collapse=False)
    formula = r_formula(spec, {k: len(v) for k, v in design.coords.items()})
    name = f"n{args.participants}_s{args.seed}_{spec.name}_{spec.model_hash()[:8]}"
    work = cache_dir() / "peers" / name
    work.mkdir(parents=True, exist_ok=True)
    frame = rating_frame(design, spec)
    frame.to_csv(work / "ratings.csv", index=False)
    grid = average_grid(design, spec)
    grid_labels(grid, design).to_csv(work / "grid.csv", index=False)
    llm_map = llm_label_map(design)
    print(f"\n## {len(frame)} opening ratings of {frame['participant'].nunique()} participants, "
          f"{len(grid)} average-rater grid rows; inputs in {work}; load {load1()}")
    print(f"# R formula (this design): {formula.formula}", flush=True)
    base = r_config(work, formula, llm_map, spec.sampling, release=str(release),
                    model=str(spec.source))
    results: dict[str, dict[str, Any]] = {}
    for fitter in args.fitters:
        print(f"\n## {fitter}: started, load {load1()}", flush=True)
        r = run_fitter(fitter, base, args.timeout if fitter == "package" else args.r_timeout)
        results[fitter] = r
        print(f"{fitter}: {r['status']}; process {r['process_s']:.1f} s, load "
              f"{r['load1_before']} -> {r['load1_after']}", flush=True)
    rows, means = summarise(results, formula)
    print("\n## Per fitter")
    print_table(rows, TABLE_COLUMNS)
    pairs = compare_pairs(means)
    if pairs:
        print("\n## Agreement of the LLM means for an average rater "
              "(posterior means / REML estimates)")
        print_table(pairs, [("pair", "pair", ""), ("correlation", "correlation", ".4f"),
                            ("max_abs_diff", "max abs diff", ".2f"), ("rmse", "RMSE", ".2f"),
                            ("mean_offset", "mean offset", ".2f")])
    ratios = ratio_summary(rows)
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
    write_json(args.json, {"machine": info, "plan": the_plan, "formula": formula.formula,
                           "notes": formula.notes, "n_ratings": len(frame),
                           "fits": rows, "agreement": pairs, "ratios": ratios,
                           "llm_means": {k: v.to_dict() for k, v in means.items()}})
    return 0 if all(r["status"] == "ok" or "did not finish" in r["status"]
                    for r in results.values()) else 1


def summarise(results: Mapping[str, dict],
              formula: RFormula) -> tuple[list[dict], dict[str, pd.Series]]:
    """One table row per fitter, and each fitter's LLM means (posterior mean / estimate)."""
    shared = ["sigma", *[t.scale for t in formula.random_terms]]
    ok = [r for r in results.values() if r["status"] == "ok"]
    shared = [v for v in shared if all(v in r["draws"] for r in ok)]
    rows, means = [], {}
    for name, r in results.items():
        row = {k: v for k, v in r.items() if k != "draws"}
        row["compile_s"] = (r.get("timings") or {}).get("compile_s")
        if r["status"] == "ok":
            draws = r["draws"]
            means[name] = draws["llm_mean"].mean(("chain", "draw")).to_series()
            if draws.sizes["draw"] > 1:  # typical posterior sd: the scale of the differences
                row["llm_mean_sd"] = float(draws["llm_mean"].std(("chain", "draw")).mean())
            row.update(ess_summary(draws, shared))
            row["scale_means"] = {v: float(draws[v].mean()) for v in draws.data_vars
                                  if v != "llm_mean"}
            if row.get("min_ess_llm"):
                row["ess_per_s"] = row["min_ess_llm"] / r["fit_s"]
                row["ess_all_per_s"] = row["min_ess_all"] / r["fit_s"]
                row["ess_per_cpu_s"] = row["min_ess_llm"] / r["fit_cpu_s"]
        rows.append(row)
    return rows, means


def compare_pairs(means: Mapping[str, pd.Series]) -> list[dict[str, Any]]:
    names = [n for n in FITTERS if n in means]
    return [{"pair": f"{a} vs {b}", **agreement(means[a], means[b])}
            for i, a in enumerate(names) for b in names[i + 1:]]


def ratio_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The package against rstanarm: ESS per second of wall time and wall time."""
    by = {r["fitter"]: r for r in rows}
    pkg, stan = by.get("package"), by.get("rstanarm")
    out: dict[str, Any] = {}
    if not (pkg and stan and pkg["status"] == "ok"):
        return out
    if stan["status"] != "ok":
        out["rstanarm"] = stan["status"]
        return out
    ratio = pkg["ess_per_s"] / stan["ess_per_s"]
    out["ESS/s ratio package / rstanarm (LLM means)"] = ratio
    out["ESS/s ratio package / rstanarm (LLM means + shared scales)"] = (
        pkg["ess_all_per_s"] / stan["ess_all_per_s"])
    out["wall time ratio rstanarm / package"] = stan["fit_s"] / pkg["fit_s"]
    out["ESS per CPU-second ratio package / rstanarm (LLM means)"] = (
        pkg["ess_per_cpu_s"] / stan["ess_per_cpu_s"])
    sampling = (pkg.get("timings") or {}).get("sampling_s")
    if sampling:  # what compile-once reuse (issue 17, item 2) would leave of the package's wall
        out["ESS/s ratio without the package's compilation"] = (
            pkg["min_ess_llm"] / (pkg["fit_s"] - pkg["compile_s"]) / stan["ess_per_s"])
    out["target (issue 17): package >= 20x rstanarm's ESS/s"] = "met" if ratio >= 20 else "not met"
    return out


if __name__ == "__main__":
    sys.exit(main())
