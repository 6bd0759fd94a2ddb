"""How the main spec's fit scales with data size (issue "Performance: full PRISM-size fits").

For each size (participants of the synthetic generator) the main spec (``ratings``:
opening-turn scores, Gaussian on sufficient statistics, participants marginalized,
LLM x age / gender / ethnicity effects) is fitted with nutpie in a fresh subprocess, and
the script prints: wall time split into design, compilation, sampling and
post-processing (participant redraws + per-participant log-likelihood), min bulk and
tail ESS over all parameters, ESS per second, max R-hat, divergences, peak resident
memory, and the 1-minute load average before and after (the machine may be shared).
Then the growth exponents of cost with data size: the slope of log(cost) on
log(number of ratings) for sampling time, sampler time (compile + sampling) and
sampling time per effective draw.

Usage::

    ./dev.sh bench fit_scaling                       # 150, 500, 1500, 5000, 15000
    ./dev.sh bench fit_scaling --sizes 150 1500 --adaptation low_rank
    ./dev.sh bench fit_scaling --dry-run             # print the plan only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_SEED,
    FIT_COLUMNS,
    BenchmarkError,
    growth_exponent,
    load1,
    machine,
    prepare_data,
    print_machine,
    print_table,
    run_worker,
    write_json,
)

DEFAULT_SIZES = (150, 500, 1500, 5000, 15000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fit_scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                   help="participants of the synthetic release (default: %(default)s)")
    p.add_argument("--spec", default="ratings", help="model spec (default: %(default)s)")
    p.add_argument("--adaptation", choices=("diag", "low_rank"), default=None,
                   help="nutpie mass-matrix adaptation (default: the spec's)")
    p.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sampler seed")
    p.add_argument("--data-seed", type=int, default=DEFAULT_SEED, help="synthetic data seed")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per fit")
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--dry-run", action="store_true", help="print the plan, fit nothing")
    return p.parse_args(argv)


def fit_config(args: argparse.Namespace, participants: int, data_path: str) -> dict:
    cfg = {"data": data_path, "participants": participants, "spec": args.spec,
           "chains": args.chains, "draws": args.draws, "tune": args.tune, "seed": args.seed,
           "sampler": args.sampler}
    if args.adaptation:
        cfg["replace"] = {"sampling": {"adaptation": args.adaptation}}
    return cfg


def exponents(rows: list[dict]) -> dict[str, float]:
    """Growth exponents of cost in the number of ratings (all sizes, and sizes >= 1,500)."""
    out = {}
    for label, sel in (("all sizes", rows), (">= 1,500 participants",
                                             [r for r in rows if (r["participants"] or 0) >= 1500])):
        x = [r["n_ratings"] for r in sel]
        out[f"sampling_s ~ ratings^b ({label})"] = growth_exponent(x, [r["sampling_s"] for r in sel])
        out[f"compile+sampling ~ ratings^b ({label})"] = growth_exponent(
            x, [(r["compile_s"] or 0) + r["sampling_s"] for r in sel])
        out[f"sampling s per min-bulk-ESS ~ ratings^b ({label})"] = growth_exponent(
            x, [r["sampling_s"] / r["min_ess_bulk"] for r in sel])
        if all(r.get("us_per_grad") for r in sel):
            out[f"time per gradient ~ ratings^b ({label})"] = growth_exponent(
                x, [r["us_per_grad"] for r in sel])
            out[f"leapfrog steps per draw ~ ratings^b ({label})"] = growth_exponent(
                x, [r["steps_per_draw"] for r in sel])
        out[f"peak RSS ~ ratings^b ({label})"] = growth_exponent(x, [r["peak_rss_mb"] for r in sel])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    print(f"# main spec {args.spec!r}, sampler {args.sampler}, adaptation "
          f"{args.adaptation or 'spec default'}, {args.chains} chains x {args.tune} tune + "
          f"{args.draws} draws, sampler seed {args.seed}, data seed {args.data_seed}")
    if args.dry_run:
        for n in args.sizes:
            print(f"would fit {n} participants: {fit_config(args, n, '<cached tidy tables>')}")
        return 0
    rows, failures = [], []
    for n in args.sizes:
        data = prepare_data(n, args.data_seed)
        print(f"\n## {n} participants: {data['n_ratings_opening']} opening ratings "
              f"({data['n_ratings_all_turns']} all turns), data "
              + ("cached" if data["cached"] else
                 f"generated {data['generate_s']:.1f} s, JSONL {data['json_mb']:.0f} MB written "
                 f"{data['write_s']:.1f} s, loaded {data['load_s']:.1f} s")
              + f"; load {load1()}", flush=True)
        try:
            r = run_worker("fit", fit_config(args, n, data["path"]), timeout=args.timeout)
        except (BenchmarkError, subprocess.TimeoutExpired) as exc:
            print(f"FAILED: {exc}", flush=True)
            failures.append({"participants": n, "error": str(exc)})
            continue
        r["n_ratings_all_turns"] = data["n_ratings_all_turns"]
        r["ess_per_s"] = r["min_ess_bulk"] / r["sampling_s"]
        r["ess_per_wall_s"] = r["min_ess_bulk"] / r["wall_s"]
        rows.append(r)
        print_table([r], FIT_COLUMNS)
        print(f"worst: R-hat {r['worst_rhat_var']}, bulk ESS {r['worst_bulk_var']}, tail ESS "
              f"{r['worst_tail_var']}; E-BFMI min {r['bfmi_min']:.2f}; design {r['design_s']:.1f} s; "
              f"code {r['code_hash']}; "
              f"gate {'PASS' if r['gate_passed'] else 'FAIL: ' + '; '.join(r['gate_failures'])}",
              flush=True)
        levels = r.get("ess_bulk_levels", {})
        for name, per in levels.items():
            print(f"  bulk ESS per level of {name}: " + ", ".join(f"{k} {v:.0f}" for k, v in per.items()))
    print("\n## Summary")
    print_table(rows, FIT_COLUMNS)
    exp = exponents(rows) if len(rows) >= 2 else {}
    if exp:
        print("\n## Growth exponents b of cost ~ (number of ratings)^b  (b <= 1: at most linear)")
        for k, v in exp.items():
            print(f"  {k:55s} {v:.2f}")
    for r in rows:
        r.pop("posterior", None)  # keep the JSON small
    write_json(args.json, {"machine": info, "args": vars(args), "fits": rows,
                           "exponents": exp, "failures": failures})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
