"""The dialogue-diversity stage at PRISM size: wall and CPU time of every step.

Generates (once, cached under ``$PRISM_BENCH_CACHE``) the synthetic release of
``--participants`` (default 1,500: ~8,000 opening prompts with planted topics), loads it
as a user would, then -- in this fresh process, so UMAP's and the model's compilation
count -- runs what ``prism-stats topics`` runs: discovery (TF-IDF -> UMAP -> HDBSCAN),
the regressions, the hierarchical model (2 chains x 300 + 300), the neighbourhoods,
and writing the result folder, tables and figures. Prints seconds per step, the total
against the 180 s target, process CPU seconds, the 1-minute load average before and
after (the machine is shared: read timings with it), the adjusted Rand index against
the planted topics and the model's diagnostics.

Usage::

    ./dev.sh bench topics_stage
    ./dev.sh bench topics_stage --participants 400 --draws 100
    ./dev.sh bench topics_stage --dry-run
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_SEED, cache_dir, load1, machine, print_machine, write_json

TARGET_S = 180.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="topics_stage", description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=1500)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the release")
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--tune", type=int, default=300)
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    return p.parse_args(argv)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    folder = cache_dir() / "data" / f"synth_release_n{args.participants}_s{args.seed}"
    print(f"# topics stage on {args.participants} participants (release {folder}); model "
          f"2 chains x {args.draws} draws + {args.tune} tuning")
    if args.dry_run:
        print(f"would generate {folder} if needed and time the topics stage")
        return 0
    from prism_stats.data import load_prism
    from prism_stats.pipeline import ensure_synthetic
    from prism_stats.report.topics import write_topic_supplement
    from prism_stats.topics import run_topic_analysis

    ensure_synthetic(folder, args.participants, args.seed)
    data = load_prism(folder)
    marks: list[tuple[str, float, float]] = []
    load_before = load1()
    t0, c0 = time.perf_counter(), cpu_s()

    def step(message: str) -> None:
        marks.append((message, time.perf_counter(), cpu_s()))
        print(f"  [{time.perf_counter() - t0:6.1f} s] {message}", flush=True)

    result = run_topic_analysis(data, draws=args.draws, tune=args.tune, progress=step)
    step("writing the result folder, tables and figures")
    with tempfile.TemporaryDirectory() as out:
        result.save(out)
        write_topic_supplement(out, out)
    total, cpu = time.perf_counter() - t0, cpu_s() - c0
    load_after = load1()
    d = result.model.diagnostics if result.model is not None else {}
    rows = {k: round(v, 1) for k, v in result.seconds.items()}
    rows["write"] = round(time.perf_counter() - marks[-1][1], 1)
    print()
    print("| step | seconds |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v} |")
    disc = result.assignments.settings.get("seconds", {})
    print(f"\ndiscovery: {disc}; model: compile {d.get('compile_s')} s, sampling "
          f"{d.get('sampling_s')} s, effects {d.get('effects_s')} s; max R-hat "
          f"{d.get('max_rhat', float('nan')):.3f}, min bulk ESS {d.get('min_ess_bulk', 0):.0f}, "
          f"{d.get('divergences')} divergences, {d.get('steps_per_draw')} steps/draw")
    truth = result.truth or {}
    print(f"adjusted Rand index vs planted topics: {truth.get('ari', float('nan')):.3f}; "
          f"{len(result.assignments.topic_ids())} topics, "
          f"{result.assignments.summary()['outliers']:,} outliers")
    verdict = "met" if total < TARGET_S else "NOT met"
    print(f"total {total:.1f} s wall ({cpu:.1f} s CPU in this process) vs target {TARGET_S:.0f} s: "
          f"{verdict}; 1-min load {load_before} -> {load_after} on {info['cores']} cores")
    write_json(args.json, {"machine": info, "participants": args.participants,
                           "steps": rows, "discovery": disc, "model": d, "truth": truth,
                           "total_s": total, "cpu_s": cpu, "load_before": load_before,
                           "load_after": load_after})
    return 0


if __name__ == "__main__":
    sys.exit(main())
