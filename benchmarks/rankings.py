"""Runtime of the preference-diversity analysis at PRISM size.

On the synthetic release of ``--participants`` (default 1,500; generated once, read back
with ``load_prism`` and cached as a pickle under ``$PRISM_BENCH_CACHE``), times in one
process:

* battles and every classical ranking of the whole sample with ``--replicates``
  (1,000) participant-bootstrap replicates (target: under 60 s);
* the same for the whole sample and every subgroup of the seven study groupings;
* score use (z-scores, expressivity, centrality, disagreement on identical texts);
* the hierarchical choice model (nutpie, ``--chains`` x ``--tune`` + ``--draws``; target
  under 120 s) and the model-based rank distributions from it;
* the stated-vs-revealed model (same sampler settings),

and prints the seconds, the load average around each step and the convergence summary
of the two fits.

Usage::

    ./dev.sh bench rankings
    ./dev.sh bench rankings --skip-models          # classical rankings only
    ./dev.sh bench rankings --dry-run
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_SEED, cache_dir, load1, machine, print_machine, print_table, write_json

TARGETS_S = {"classical_all": 60.0, "choice_fit": 120.0, "stated_fit": 120.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rankings", description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=1500)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--replicates", type=int, default=1000)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--tune", type=int, default=500)
    p.add_argument("--skip-models", action="store_true", help="time the classical rankings only")
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    return p.parse_args(argv)


def load_data(participants: int, seed: int) -> tuple[Any, float]:
    """The tidy release (cached as a pickle of ``PrismData``) and the seconds to get it."""
    from prism_stats.data import load_prism
    from prism_stats.synth import generate, write_release

    path = cache_dir() / "data" / f"prismdata_n{participants}_s{seed}.pkl"
    t0 = time.perf_counter()
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh), time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="prism-bench-rankings-", dir=cache_dir()) as tmp:
        write_release(tmp, generate(participants, seed))
        data = load_prism(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".tmp"), "wb") as fh:
        pickle.dump(data, fh)
    path.with_suffix(".tmp").replace(path)
    return data, time.perf_counter() - t0


def timed(rows: list[dict[str, Any]], step: str, fn, **extra: Any) -> Any:
    before = load1()
    t0 = time.perf_counter()
    out = fn()
    rows.append({"step": step, "seconds": time.perf_counter() - t0, "load_before": before,
                 "load_after": load1(), "target_s": TARGETS_S.get(step), **extra})
    print(f"  {step}: {rows[-1]['seconds']:.1f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    steps = ["classical_all", "classical_subgroups", "score_use"]
    if not args.skip_models:
        steps += ["choice_fit", "model_ranks", "stated_fit"]
    if args.dry_run:
        print(f"would time on {args.participants} participants (seed {args.seed}): " + ", ".join(steps)
              + f"; {args.replicates} bootstrap replicates; fits {args.chains} chains x {args.tune} tune + "
              f"{args.draws} draws")
        return 0
    from prism_stats.model.choice import fit_choice
    from prism_stats.rankings.analysis import classical_rankings, model_rankings, score_use
    from prism_stats.rankings.stated_model import fit_stated

    data, load_s = load_data(args.participants, args.seed)
    print(f"# data: {len(data.participants):,} participants, {len(data.choice_sets):,} openers "
          f"(loaded in {load_s:.1f} s)")
    rows: list[dict[str, Any]] = []
    # warm-up: numba compiles the online-Elo kernels once per process
    classical_rankings(data, by=[], replicates=2)
    timed(rows, "classical_all", lambda: classical_rankings(data, by=[], replicates=args.replicates,
                                                             seed=args.seed))
    classical = timed(rows, "classical_subgroups",
                      lambda: classical_rankings(data, replicates=args.replicates, seed=args.seed))
    timed(rows, "score_use", lambda: score_use(data))
    fits: dict[str, Any] = {}
    if not args.skip_models:
        choice = timed(rows, "choice_fit", lambda: fit_choice(
            data, chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed, progress=False))
        fits["choice"] = choice.meta["timings"]
        timed(rows, "model_ranks", lambda: model_rankings(data, choice_run=choice, classical=classical,
                                                          seed=args.seed))
        stated = timed(rows, "stated_fit", lambda: fit_stated(
            data, chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed))
        fits["stated"] = {**stated.meta["timings"], **stated.meta["diagnostics"]}
        from prism_stats.model.convergence import diagnose

        d = diagnose(choice.idata)
        fits["choice"].update(max_rhat=d.max_rhat, min_ess_bulk=d.min_ess_bulk, divergences=d.divergences)
        for name, f in fits.items():
            print(f"# {name}: compile {f.get('compile_s') or 0:.1f} s, sampling {f['sampling_s']:.1f} s; "
                  f"max R-hat {f['max_rhat']:.3f}, min bulk ESS {f['min_ess_bulk']:.0f}, "
                  f"{f['divergences']} divergence(s)")
    print_table(rows, [("step", "step", "s"), ("seconds", "seconds", ".1f"), ("target_s", "target (s)", ".0f"),
                       ("load_before", "load before", ".2f"), ("load_after", "load after", ".2f")])
    write_json(args.json, {"machine": info, "settings": vars(args), "steps": rows, "fits": fits})
    return 0


if __name__ == "__main__":
    sys.exit(main())
