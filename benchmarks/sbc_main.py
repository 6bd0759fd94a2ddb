"""SBC of the main rating spec at a small design size, on a 2-worker Dask LocalCluster.

    .venv/bin/python benchmarks/sbc_main.py                       # 100 replicates
    .venv/bin/python benchmarks/sbc_main.py --misspec 40          # + a mis-specified fit
    .venv/bin/python benchmarks/sbc_main.py --replicates 200 --participants 300 --workers 4
    .venv/bin/python benchmarks/sbc_main.py --participants 1500 --draws 1000 --json F.json  # PRISM size

Prints the calibration test (exact simultaneous ECDF test per quantity, Holm-adjusted),
timings per replicate and compilation, the Dask worker setup, and -- with ``--misspec N``
-- the same test on N replicates fitted with a ``sigma_llm`` prior 100x too small, which
must be flagged. Output folders (resumable: a rerun reuses finished replicates) default to
``$PRISM_BENCH_CACHE/sbc`` (``/tmp/prism-bench/sbc``), outside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_machine, write_json


def _report(title: str, result, seconds: float) -> dict:
    from prism_stats.sweeps.sbc import SbcResult

    assert isinstance(result, SbcResult)
    t = result.timing()
    cal = result.calibration
    print(f"\n=== {title} ===")
    print(result)
    by_var = cal.by_variable()
    flagged = by_var.loc[by_var["flagged"] > 0]
    if len(flagged):
        print("flagged variables:")
        print(flagged.to_string(index=False))
    workers = result.report.executor.get("workers", [])
    for w in workers:
        print(f"worker {w['name']}: pid {w['pid']}, {w['nthreads']} thread(s), OMP {w['omp_threads']}, "
              f"compile dir {w['compile_dir']}")
    print(f"wall time {seconds:.0f}s for {result.report.n_done} new replicates "
          f"({result.report.n_skipped} reused)")
    return {"title": title, "passed": cal.passed, "flagged": len(cal.flagged),
            "quantities": len(cal.table), "replicates": cal.n_replicates, "L": cal.n_draws,
            "min_p": float(cal.table["p_value"].min()), **t,
            "ess_below_L": result.ess_shortfall(),
            "divergent_replicates": int((result.ranks["divergences"] > 0).sum()),
            "wall_s": seconds, "new_replicates": result.report.n_done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--rank-draws", type=int, default=99)
    parser.add_argument("--misspec", type=int, default=0, help="replicates of the mis-specified fit (0: skip)")
    parser.add_argument("--spec", default="ratings")
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", help="write the machine, settings and summaries to this JSON file")
    args = parser.parse_args()
    info = machine()
    print_machine(info)

    from prism_stats.sweeps.sbc import run_sbc

    root = Path(args.out or Path(os.environ.get("PRISM_BENCH_CACHE", "/tmp/prism-bench")) / "sbc")
    common = {"participants": args.participants, "draws": args.draws, "tune": args.tune,
              "n_draws": args.rank_draws, "scheduler": args.scheduler,
              "workers": None if args.scheduler else args.workers, "progress": True}
    summaries = []
    t0 = time.perf_counter()
    main_run = run_sbc(args.spec, args.replicates, out=root / f"{args.spec}_n{args.participants}", **common)
    summaries.append(_report(f"SBC of {args.spec!r}, {args.participants} participants", main_run,
                             time.perf_counter() - t0))
    if args.misspec:
        t0 = time.perf_counter()
        bad = run_sbc(args.spec, args.misspec, out=root / f"{args.spec}_n{args.participants}_sigma_llm0.1",
                      fit_priors={"sigma_llm": 0.1}, **common)
        summaries.append(_report("mis-specified fit: sigma_llm prior 0.1 (generating 10)", bad,
                                 time.perf_counter() - t0))
    print("\nBENCH-RESULT " + json.dumps(summaries))
    write_json(args.json, {"machine": info, "settings": vars(args), "runs": summaries})


if __name__ == "__main__":
    main()
