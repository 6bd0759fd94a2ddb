"""Full-scale recovery of the synthetic truth: MRP, comparators, MixedLM and welfare.

Prints the figures behind the "done when" statements that need a PRISM-size fit:

- MRP: coverage of the true census-population means by the 90% intervals, per country and
  group, and the error (RMSE over LLMs) of MRP beside the raw residents' means, the REP
  sample means and the raked means (how far each moves from the raw means toward the
  truth);
- the Bayesian LLM effects against statsmodels' MixedLM (correlation);
- welfare: the group-optimal LLMs (posterior mean argmax and P(best) of the true optimum)
  and the expected exclusion gaps against the generator's true gaps (simulated under the
  generator's own rating process).

Usage: ``./dev.sh bench recovery [--participants 1500] [--seed 20240422] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load1, machine, print_machine, write_json


def rmse(x: pd.Series) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=20240422, help="seed of the synthetic data")
    ap.add_argument("--spec", default="ratings")
    ap.add_argument("--replicates", type=int, default=1000, help="juries per scheme")
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--dry-run", action="store_true", help="print the plan only")
    args = ap.parse_args(argv)
    info = machine()
    print_machine(info)
    if args.dry_run:
        print(f"would synthesize {args.participants} participants (seed {args.seed}), fit "
              f"{args.spec!r}, post-stratify, rake, cross-check and simulate welfare")
        return 0

    from prism_stats.comparators import comparison_table
    from prism_stats.data import load_prism
    from prism_stats.data.synth import synthesize
    from prism_stats.model import diagnose, fit
    from prism_stats.model.crosscheck import mixedlm_crosscheck
    from prism_stats.poststrat import poststratify
    from prism_stats.weights import default_participant_weights
    from prism_stats.welfare import expected_gaps, model_welfare, true_welfare

    work = Path(tempfile.mkdtemp(prefix="prism-recovery-"))
    synthesize(work, participants=args.participants, seed=args.seed)
    data = load_prism(work)
    truth_means = pd.read_csv(work / "truth" / "population_means.csv")
    truth_params = xr.open_dataset(work / "truth" / "params.nc").load()
    t0 = time.perf_counter()
    run = fit(data, args.spec, progress=False, out=work / "run")
    diag = diagnose(run)
    print(f"\nfit {args.spec}: {time.perf_counter() - t0:.1f} s (load {load1()}); {diag.failures() or 'gate passed'}")

    out: dict = {"machine": info, "participants": args.participants, "seed": args.seed,
                 "spec": args.spec, "diagnostics": diag.to_dict() | {"per_variable": None}}
    mrp_rows, gap_rows, optimum_rows = [], [], []
    for country in ("uk", "us"):
        res = poststratify(run, country, data=data)
        s = res.summary().merge(truth_means, on=["country", "group", "llm"], suffixes=("", "_true"))
        weighting = default_participant_weights(data.participants, country)
        comp = comparison_table(data.participants, data.ratings, country, weighting=weighting,
                                poststrat=s.loc[s.group == "all"]).table
        comp = comp.set_index("llm") if "llm" in comp.columns else comp
        s["raked_mean"] = s["llm"].map(comp["raked_mean"]).where(s["group"] == "all")
        for group, g in s.groupby("group", sort=False):
            row = {"country": country, "group": group,
                   "coverage90": float(((g.q05 <= g.mean_true) & (g.mean_true <= g.q95)).mean()),
                   "rmse_mrp": rmse(g["mean"] - g.mean_true), "rmse_raw": rmse(g.raw_mean - g.mean_true),
                   "rmse_rep": rmse(g.rep_mean - g.mean_true)}
            if group == "all":
                row["rmse_raked"] = rmse(g.raked_mean - g.mean_true)
            mrp_rows.append(row)
            best_true = g.loc[g.mean_true.idxmax(), "llm"]
            optimum_rows.append({"country": country, "group": group, "true_best": best_true,
                                 "mrp_best": g.loc[g["mean"].idxmax(), "llm"],
                                 "p_best_of_true_best": float(g.loc[g.llm == best_true, "p_best"].iloc[0])})
        mw = model_welfare(run, country, rules=("mean",), replicates=args.replicates, draws=200, seed=1)
        tw = true_welfare(truth_params, country, rules=("mean",), replicates=4 * args.replicates, seed=1)
        g = expected_gaps(mw).merge(expected_gaps(tw)[["rule", "target", "pool", "gap_mean"]],
                                    on=["rule", "target", "pool"], suffixes=("", "_true"))
        g["covered"] = (g.gap_q05 <= g.gap_mean_true) & (g.gap_mean_true <= g.gap_q95)
        g["same_sign"] = np.sign(g.gap_mean) == np.sign(g.gap_mean_true)
        gap_rows.append(g)

    mrp = pd.DataFrame(mrp_rows)
    optima = pd.DataFrame(optimum_rows)
    gaps = pd.concat(gap_rows, ignore_index=True)
    cross = mixedlm_crosscheck(run, data)
    pd.set_option("display.width", 160)
    print("\nMRP against the true census-population means (opening turn; 21 LLMs per row)")
    print(mrp.round(3).to_string(index=False))
    print("\nGroup-optimal LLMs (true optimum vs MRP posterior-mean optimum)")
    print(optima.round(3).to_string(index=False))
    print(f"  match: {int((optima.true_best == optima.mrp_best).sum())} of {len(optima)}")
    print(f"\nLLM effects, Bayesian vs MixedLM (REML): correlation {cross.attrs['correlation']:.4f}")
    print("\nExpected exclusion gaps (mean rule, juries of 100): model 90% interval vs the generator's truth")
    print(gaps[["country", "target", "pool", "gap_mean", "gap_q05", "gap_q95", "gap_mean_true",
                "covered", "same_sign"]].round(3).to_string(index=False))
    print(f"  covered: {int(gaps.covered.sum())} of {len(gaps)}; same sign: {int(gaps.same_sign.sum())} of {len(gaps)}")
    out.update(mrp=mrp.to_dict(orient="records"), optima=optima.to_dict(orient="records"),
               mixedlm_correlation=cross.attrs["correlation"], gaps=gaps.to_dict(orient="records"))
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
