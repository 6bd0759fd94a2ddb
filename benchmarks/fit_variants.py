"""What each performance choice buys: the main spec fitted several ways at one size.

Variants (each in a fresh subprocess, on the same cached synthetic release):

==================  ========================================================================
default             nutpie, ``diag`` mass matrix, sufficient statistics, participants
                    marginalized analytically (the library default, ``prism_stats.model.fit``)
low_rank            as default with nutpie's ``low_rank`` mass-matrix adaptation
pymc                as default with PyMC's own NUTS sampler
noncentered         sufficient statistics, explicit non-centred participant effects
full                non-aggregated likelihood (one cell per rating), participants marginalized
full_noncentered    non-aggregated likelihood with explicit non-centred participant effects
                    (the model as a brms / rstanarm user writes it)
country_centered    as default with centred (instead of non-centred) country effects
country_noncentered  as default with non-centred country effects
country_mixed       as default with "mixed" country effects (countries holding >= 2% of the
                    ratings centred, the rest non-centred)
interaction_centered  as default with centred LLM x demographic effects (data-rich at
                    large sizes, where the non-centred scales mix slowly)
draws_2000          as default with 2,000 draws per chain (1,000 tuning steps)
allturns            ``ratings_allturns`` (all turns, later-turn effect): ~2.3x the ratings,
                    which collapse far more (a participant rates one LLM many times)
allturns_full       the same without sufficient statistics (one cell per rating)
censored            the bounded likelihood (``ratings_censored``: censored at 1 and 100;
                    no closed-form marginal, so explicit non-centred participants)
float32             as default under ``PYTENSOR_FLAGS=floatX=float32``
cold_compile        as default with an empty PyTensor compile cache (``base_compiledir`` in a
                    fresh folder): the first fit on a new machine; the other variants reuse
                    the numba disk cache that earlier fits of the same graph left behind
reuse               compile once, sample, then sample a new dataset of the same design via
                    nutpie's ``CompiledModel.with_data`` (no recompilation)
==================  ========================================================================

Printed per variant: wall time split into compile / sampling / post-processing, min ESS
bulk and tail, ESS per second, max R-hat, divergences, peak RSS, the load average, and
how far its posterior means are from the default's (or, for ``allturns_full``, from
``allturns``'s): max over all non-participant parameters of |mean difference| / posterior
sd of the reference: a faster variant must not
change the answer (values below ~0.2 are Monte Carlo noise at these ESS).

Usage::

    ./dev.sh bench fit_variants                                   # all, 1,500 participants
    ./dev.sh bench fit_variants --variants default low_rank --participants 500
    ./dev.sh bench fit_variants --dry-run
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_SEED,
    FIT_COLUMNS,
    BenchmarkError,
    cache_dir,
    load1,
    machine,
    prepare_data,
    print_machine,
    print_table,
    run_worker,
    write_json,
)

#: variant -> (worker task, config overrides, extra environment)
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "default": ("fit", {}, {}),
    "low_rank": ("fit", {"replace": {"sampling": {"adaptation": "low_rank"}}}, {}),
    "pymc": ("fit", {"sampler": "pymc"}, {}),
    "noncentered": ("fit", {"replace": {"parameterisation": {"participant": "noncentered"}}}, {}),
    "full": ("fit", {"mode": "full", "collapse": False}, {}),
    "full_noncentered": ("fit", {"mode": "full", "collapse": False,
                                 "replace": {"parameterisation": {"participant": "noncentered"}}}, {}),
    "country_centered": ("fit", {"replace": {"parameterisation": {"country": "centered"}}}, {}),
    "country_noncentered": ("fit", {"replace": {"parameterisation": {"country": "noncentered"}}}, {}),
    "country_mixed": ("fit", {"replace": {"parameterisation": {"country": "mixed"}}}, {}),
    "interaction_centered": ("fit", {"replace": {"parameterisation": {"interaction": "centered"}}}, {}),
    "draws_2000": ("fit", {"draws": 2000}, {}),
    "allturns": ("fit", {"spec": "ratings_allturns"}, {}),
    "allturns_full": ("fit", {"spec": "ratings_allturns", "mode": "full", "collapse": False}, {}),
    "censored": ("fit", {"spec": "ratings_censored"}, {}),
    "float32": ("fit", {}, {"PYTENSOR_FLAGS": "floatX=float32"}),
    "cold_compile": ("fit", {}, {"PYTENSOR_FLAGS": "base_compiledir={fresh}"}),
    "reuse": ("fit_reuse", {}, {}),
}


#: The variant each one's posterior is compared with (default: "default").
BASELINE = {"allturns_full": "allturns"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fit_variants", description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=1500)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sampler seed")
    p.add_argument("--data-seed", type=int, default=DEFAULT_SEED, help="synthetic data seed")
    p.add_argument("--timeout", type=float, default=1200, help="seconds per variant")
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--dry-run", action="store_true", help="print the plan, fit nothing")
    return p.parse_args(argv)


def config(args: argparse.Namespace, variant: str, data_path: str) -> tuple[str, dict, dict]:
    task, overrides, env = VARIANTS[variant]
    if any("{fresh}" in v for v in env.values()):
        fresh = tempfile.mkdtemp(prefix="compiledir-", dir=cache_dir()) if data_path[0] != "<" else "<new folder>"
        env = {k: v.replace("{fresh}", fresh) for k, v in env.items()}
    cfg = {"data": data_path, "participants": args.participants, "spec": "ratings",
           "chains": args.chains, "draws": args.draws, "tune": args.tune, "seed": args.seed}
    cfg.update(overrides)
    return task, cfg, env


def shift_from(base: dict, other: dict) -> tuple[float, str]:
    """Max |mean difference| / baseline sd over the parameters both posteriors share."""
    worst, where = 0.0, "-"
    for name, b in base.items():
        o = other.get(name)
        if not o or len(o["mean"]) != len(b["mean"]):
            continue
        for i, (mb, sb, mo) in enumerate(zip(b["mean"], b["sd"], o["mean"], strict=True)):
            if sb > 0 and math.isfinite(mo):
                z = abs(mo - mb) / sb
                if z > worst:
                    worst, where = z, f"{name}[{i}]" if len(b["mean"]) > 1 else name
    return worst, where


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    print(f"# main spec 'ratings', {args.participants} participants, {args.chains} chains x "
          f"{args.tune} tune + {args.draws} draws, sampler seed {args.seed}, data seed {args.data_seed}")
    if args.dry_run:
        for v in args.variants:
            task, cfg, env = config(args, v, "<cached tidy tables>")
            print(f"would run {v}: task {task} {cfg}" + (f" env {env}" if env else ""))
        return 0
    data = prepare_data(args.participants, args.data_seed)
    print(f"# data: {data['n_ratings_opening']} opening ratings of "
          f"{data['n_participants_with_ratings']} participants", flush=True)
    rows, reuse, failures = [], None, []
    for v in args.variants:
        task, cfg, env = config(args, v, data["path"])
        print(f"\n## {v} (load {load1()})", flush=True)
        try:
            r = run_worker(task, cfg, env=env, timeout=args.timeout)
        except (BenchmarkError, subprocess.TimeoutExpired) as exc:
            print(f"FAILED: {exc}", flush=True)
            failures.append({"variant": v, "error": str(exc)})
            continue
        r["variant"] = v
        if task == "fit_reuse":
            reuse = r
            print(f"first fit : design {r['design_s']:.1f} s + compile {r['compile_s']:.1f} s + "
                  f"sampling {r['first_sampling_s']:.1f} s = {r['first_wall_s']:.1f} s; "
                  f"{r['first']}")
            print(f"second fit: with_data {r['with_data_s']:.2f} s + sampling "
                  f"{r['second_sampling_s']:.1f} s = {r['second_wall_s']:.1f} s; {r['second']}")
            print(f"peak RSS {r['peak_rss_mb']:.0f} MB; load {r['load1_before']} -> {r['load1_after']}; "
                  f"intercept moved {r['intercept_shift']:.2f} points between the datasets")
            continue
        r["ess_per_s"] = r["min_ess_bulk"] / r["sampling_s"]
        r["ess_per_wall_s"] = r["min_ess_bulk"] / r["wall_s"]
        rows.append(r)
        print_table([r], [("variant", "variant", "")] + FIT_COLUMNS)
        print(f"worst: R-hat {r['worst_rhat_var']}, bulk {r['worst_bulk_var']}, tail "
              f"{r['worst_tail_var']}; graph {r.get('graph')}; code {r['code_hash']}; "
              f"gate {'PASS' if r['gate_passed'] else 'FAIL: ' + '; '.join(r['gate_failures'])}",
              flush=True)
        for name, per in r.get("ess_bulk_levels", {}).items():
            print(f"  bulk ESS per level of {name}: " + ", ".join(f"{k} {x:.0f}" for k, x in per.items()))
    by_name = {r["variant"]: r for r in rows}
    for r in rows:
        ref = by_name.get(BASELINE.get(r["variant"], "default"))
        if ref is not None:
            r["shift_vs"] = ref["variant"]
            r["shift_sd"], r["shift_where"] = shift_from(ref["posterior"], r["posterior"])
    print("\n## Summary")
    cols = [("variant", "variant", "")] + FIT_COLUMNS + [
        ("shift_vs", "vs", ""), ("shift_sd", "max |dmean|/sd", ".2f"), ("shift_where", "where", "")]
    print_table(rows, cols)
    if reuse:
        print(f"\nreuse: first fit {reuse['first_wall_s']:.1f} s (compile {reuse['compile_s']:.1f} s), "
              f"second fit on new data {reuse['second_wall_s']:.1f} s (with_data "
              f"{reuse['with_data_s']:.2f} s); second fit min bulk ESS "
              f"{reuse['second']['min_ess_bulk']:.0f}, max R-hat {reuse['second']['max_rhat']:.4f}, "
              f"{reuse['second']['divergences']} divergences")
    for r in rows:
        r.pop("posterior", None)  # keep the JSON small
    write_json(args.json, {"machine": info, "args": vars(args), "variants": rows, "reuse": reuse,
                           "failures": failures})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
