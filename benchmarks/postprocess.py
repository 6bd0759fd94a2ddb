"""Post-processing cost at PRISM size: MRP and the model-based welfare grid.

Fits the main spec (nutpie, 2 chains x 1,000 tune + 1,000 draws) to the synthetic release
of ``--participants`` (default 1,500) and saves the run under the benchmark cache, unless
``--run`` names an existing run folder; then, in a fresh subprocess, times

* MRP (:func:`prism_stats.poststrat.poststratify`) for the UK and the US: every census
  cell and group, every posterior draw;
* the model-based welfare grid (:func:`prism_stats.welfare.model_based.model_welfare`),
  per country 7 schemes x 4 targets x ``--replicates`` juries x ``--draws`` posterior
  draws, for the ``mean`` rule (the issue's grid) and for all three rules;
* the library's default welfare call (3 rules, 200 draws) for reference,

and prints the seconds, the sum MRP + grid against the 60 s target, and peak RSS.

``--predict-only`` instead times the post-processing of a fit at ``--participants``
(default there: 15,000) without fitting: the participant redraws and the per-participant
log-likelihood (:mod:`prism_stats.model.predict`) of ``--draws`` posterior draws (default
4,000 = 2 chains x 2,000) of the main spec, on tidy tables of that size made directly
(38 countries, ~20 opening ratings per participant) and random parameter values.
``--code DIR`` runs the workers on another checkout of the package (e.g. the code before
a change, exported with ``git archive``), for before/after timings on one machine.

Usage::

    ./dev.sh bench postprocess
    ./dev.sh bench postprocess --run /tmp/prism-bench/runs/ratings_n1500
    ./dev.sh bench postprocess --predict-only [--participants 15000] [--draws 4000]
    ./dev.sh bench postprocess --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_SEED,
    cache_dir,
    load1,
    machine,
    prepare_data,
    print_machine,
    print_table,
    run_worker,
    write_json,
)

TARGET_S = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="postprocess", description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=None,
                   help="release size (default 1,500; 15,000 with --predict-only)")
    p.add_argument("--predict-only", action="store_true",
                   help="time the participant redraws and log-likelihood only (no fit)")
    p.add_argument("--code", help="another checkout of prism_stats for the workers (before/after)")
    p.add_argument("--run", help="an existing run folder of the main spec on that data (skip the fit)")
    p.add_argument("--replicates", type=int, default=1000)
    p.add_argument("--draws", type=int, default=None,
                   help="posterior draws used by the welfare grid (default 1,000; 4,000 with --predict-only)")
    p.add_argument("--fit-draws", type=int, default=1000)
    p.add_argument("--fit-tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--compare", help="the --json file of another implementation on the same run: "
                                     "compare the 3-rule welfare grids (mean welfare per rule, scheme, target)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, fit nothing")
    return p.parse_args(argv)


def predict_only(args: argparse.Namespace, info: dict, env: dict) -> int:
    """Participant redraws + per-participant log-likelihood at a size, without a fit."""
    print(f"# post-processing of {args.draws} draws at {args.participants} participants (predict.py)")
    if args.dry_run:
        print(f"would time the participant redraws and log-likelihood at {args.participants} participants")
        return 0
    r = run_worker("predict_post", {"participants": args.participants, "draws": args.draws},
                   env=env, timeout=args.timeout)
    print_table([{"step": f"participant redraws ({r['n_participants']} participants, {r['n_cells']} cells)",
                  "seconds": r["participant_draws_s"]},
                 {"step": "per-participant log-likelihood", "seconds": r["loglik_s"]},
                 {"step": "both, as fit() runs them", "seconds": r["fit_post_s"]}],
                [("step", "step", ""), ("seconds", "seconds", ".2f")])
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB; load {r['load1_before']} -> {r['load1_after']}")
    write_json(args.json, {"machine": info, "args": vars(args), "predict": r})
    return 0


def compare_welfare(new: dict, old: dict) -> None:
    """Mean welfare of every (rule, scheme, target) cell of two implementations' 3-rule
    grids: largest difference in units of its standard error over juries."""
    import numpy as np

    for c, v in new["welfare_3rules"]["per_country"].items():
        a, b = v["summary"], old["welfare_3rules"]["per_country"][c]["summary"]
        if (a["rule"], a["scheme"], a["target"]) != (b["rule"], b["scheme"], b["target"]):
            print(f"compare {c}: the grids differ in their labels; not compared")
            continue
        diff = np.abs(np.array(a["mean"]) - np.array(b["mean"]))
        z = diff / np.hypot(np.array(a["se"]), np.array(b["se"]))
        worst = np.unravel_index(np.argmax(z), z.shape)
        print(f"compare {c}: {z.size} cells, max |diff| {diff.max():.4f}, max |z| {z.max():.2f} "
              f"({a['rule'][worst[0]]}, {a['scheme'][worst[1]]}, {a['target'][worst[2]]}); "
              f"|z| > 2 in {(z > 2).sum()}, > 3 in {(z > 3).sum()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    env = {"PYTHONPATH": os.pathsep.join([args.code, os.environ.get("PYTHONPATH", "")])} if args.code else {}
    if args.predict_only:
        args.participants = args.participants or 15000
        args.draws = args.draws or 4000
        return predict_only(args, info, env)
    args.participants = args.participants or 1500
    args.draws = args.draws or 1000
    run_folder = args.run or str(cache_dir() / "runs" /
                                 f"ratings_n{args.participants}_s{args.seed}_d{args.fit_draws}")
    print(f"# MRP (uk, us) + welfare grid: 2 countries x 7 schemes x 4 targets x "
          f"{args.replicates} replicates x {args.draws} draws; run {run_folder}")
    if args.dry_run:
        print(f"would fit the main spec on {args.participants} participants (unless --run) and "
              f"post-process it")
        return 0
    data = prepare_data(args.participants, args.seed)
    fit = None
    if not args.run:
        print(f"## fitting the main spec ({args.participants} participants, load {load1()})", flush=True)
        fit = run_worker("fit", {"data": data["path"], "participants": args.participants,
                                 "draws": args.fit_draws, "tune": args.fit_tune, "seed": args.seed,
                                 "save": run_folder}, timeout=args.timeout)
        print(f"fit: wall {fit['wall_s']:.1f} s (compile {fit['compile_s']:.1f}, sampling "
              f"{fit['sampling_s']:.1f}), saved in {fit.get('save_s', 0):.1f} s", flush=True)
    print(f"## post-processing (load {load1()})", flush=True)
    r = run_worker("postprocess", {"data": data["path"], "run": run_folder,
                                   "replicates": args.replicates, "draws": args.draws},
                   env=env, timeout=args.timeout)
    rows = []
    for c, v in r["mrp"].items():
        rows.append({"step": f"MRP {c} ({v['cells']} cells, {v['groups']} groups, "
                             f"{r['posterior_samples']} draws)", "seconds": v["seconds"]})
    for key, label in (("welfare_mean", "welfare grid, mean rule"),
                       ("welfare_3rules", "welfare grid, 3 rules"),
                       ("welfare_library_default", "welfare, library default call")):
        for c, v in r[key]["per_country"].items():
            sizes = v["sizes"]
            rows.append({"step": f"{label} {c} (" + " x ".join(
                f"{sizes.get(d, 1)} {d}" for d in ("rule", "scheme", "target", "replicate"))
                + f" x {sizes.get('chain', 1) * sizes.get('draw', 1)} draws)", "seconds": v["seconds"]})
    print_table(rows, [("step", "step", ""), ("seconds", "seconds", ".2f")])
    total = r["mrp_plus_welfare_mean_s"]
    print(f"\nMRP (2 countries) {r['mrp_s']:.1f} s + welfare grid (mean rule) "
          f"{r['welfare_mean']['seconds']:.1f} s = {total:.1f} s  (target < {TARGET_S:.0f} s: "
          f"{'met' if total < TARGET_S else 'MISSED'}); with all 3 rules "
          f"{r['mrp_plus_welfare_3rules_s']:.1f} s")
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB; load {r['load1_before']} -> {r['load1_after']}; "
          f"reading the run folder {r['load_run_s']:.1f} s (not counted)")
    if args.compare:
        compare_welfare(r, json.loads(Path(args.compare).read_text())["postprocess"])
    if fit:
        fit.pop("posterior", None)  # keep the JSON small
    write_json(args.json, {"machine": info, "args": vars(args), "fit": fit, "postprocess": r})
    return 0


if __name__ == "__main__":
    sys.exit(main())
