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

With ``--skewed`` each release is also thinned to a deliberately skewed sample (every
participant who is not a man under 45 is kept with probability ``--keep``, 0.3 by default,
in every country), refitted, and the raw, raked and MRP means of the UK and US residents
are compared with the truth: how far raking and MRP move the skewed raw means toward the
census truth, over all LLMs and over the four with planted heterogeneity.

With several ``--seeds`` (one synthetic release each; the truth differs between seeds) it
ends with the figures pooled over seeds: one release is one draw of the sampling variation,
and a single release can understate a planted effect by chance.

With ``--scenarios`` each release is drawn with departures from the model
(:data:`prism_stats.synth.SCENARIOS`: LLM x country preferences, rater scale use, piles and
heaping, a non-additive LLM x age x gender pattern, skewed rater pools, or all of them),
so the figures show whether the estimates hold when the world is not built like the model;
the pooled tables are then per scenario, with the convergence gate of every release.

Usage: ``./dev.sh bench recovery [--participants 1500] [--seeds 1 2 ...] [--scenarios model country all ...]
[--cache DIR] [--csv FILE] [--figure FILE] [--skewed] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def country_estimates(run, data, truth_means: pd.DataFrame, country: str) -> pd.DataFrame:
    """MRP summary of one country (every group) beside the truth, with the raked means of
    the country's residents on the group-``all`` rows."""
    from prism_stats.comparators import comparison_table
    from prism_stats.poststrat import poststratify
    from prism_stats.weights import WeightingError, default_participant_weights

    ps = poststratify(run, country, data=data)
    s = ps.summary().merge(truth_means, on=["country", "group", "llm"], suffixes=("", "_true"))
    s = s.merge(level_calibration(ps.group_mean, truth_means, country), on="group")
    try:
        weighting = default_participant_weights(data.participants, country)
    except WeightingError as err:  # small or skewed samples can miss a census category
        print(f"  {country}: no raked means ({err})")
        s["raked_mean"] = np.nan
        return s
    comp = comparison_table(data, country, weighting=weighting,
                            poststrat=s.loc[s.group == "all"]).table
    comp = comp.set_index("llm") if "llm" in comp.columns else comp
    s["raked_mean"] = s["llm"].map(comp["raked_mean"]).where(s["group"] == "all")
    return s


def level_calibration(group_mean: xr.DataArray, truth_means: pd.DataFrame, country: str) -> pd.DataFrame:
    """Each group's error split into the level shared by its 21 LLMs and the LLM-specific rest.

    The 21 intervals of a group share one error in the group's level (the country's and the
    group's raters are a sample), so the coverage of a few releases measures that one error
    many times. Per group: the posterior of the mean over LLMs against the true mean over
    LLMs (``level_err`` = estimate - truth, ``level_sd``, ``level_z`` = err / sd), and the
    root mean square of the LLM-specific z-scores (estimate and truth minus their level;
    ``specific_rms_z``: 1 when calibrated).
    """
    rows = []
    for group in group_mean["group"].values:
        d = group_mean.sel(group=group).stack(sample=("chain", "draw")).transpose("llm", "sample").values
        t = (truth_means[(truth_means.country == country) & (truth_means.group == group)]
             .set_index("llm")["mean"].reindex([str(x) for x in group_mean["llm"].values]).to_numpy())
        level = d.mean(axis=0)
        specific = d - level
        z = ((specific.mean(axis=1) - (t - t.mean())) / specific.std(axis=1))
        rows.append({"group": str(group), "level_err": float(level.mean() - t.mean()),
                     "level_sd": float(level.std()), "level_z": float((level.mean() - t.mean()) / level.std()),
                     "specific_rms_z": float(np.sqrt(np.mean(z**2)))})
    return pd.DataFrame(rows)


def recover(participants: int, seed: int, spec: str, replicates: int, keep: float | None = None,
            sampling: dict | None = None, scenario: str = "model") -> dict:
    """Synthesize one release (with the departures of *scenario*), fit *spec*, and compare
    every estimate with the truth (with *keep*, also the skewed-sample experiment of
    :func:`skewed_sample`). *sampling* overrides the spec's draws / tune (smoke tests only)."""
    from prism_stats.data import load_prism
    from prism_stats.model import diagnose, fit
    from prism_stats.model.crosscheck import mixedlm_crosscheck
    from prism_stats.synth import synthesize
    from prism_stats.welfare import expected_gaps, model_welfare, true_welfare

    work = Path(tempfile.mkdtemp(prefix="prism-recovery-"))
    synthesize(work, participants=participants, seed=seed, departures=scenario)
    data = load_prism(work)
    truth_means = pd.read_csv(work / "truth" / "population_means.csv")
    truth_params = xr.open_dataset(work / "truth" / "params.nc").load()
    load_before = load1()
    t0 = time.perf_counter()
    run = fit(data, spec, progress=False, out=work / "run", **(sampling or {}))
    fit_s = time.perf_counter() - t0
    diag = diagnose(run)
    print(f"\n## scenario {scenario}, data seed {seed}: fit {spec}: {fit_s:.1f} s "
          f"(load {load_before} -> {load1()}); {diag.failures() or 'gate passed'}")

    mrp_rows, gap_rows, optimum_rows = [], [], []
    for country in ("uk", "us"):
        s = country_estimates(run, data, truth_means, country)
        for group, g in s.groupby("group", sort=False):
            row = {"scenario": scenario, "seed": seed, "country": country, "group": group,
                   "coverage90": float(((g.q05 <= g.mean_true) & (g.mean_true <= g.q95)).mean()),
                   "rmse_mrp": rmse(g["mean"] - g.mean_true), "rmse_raw": rmse(g.raw_mean - g.mean_true),
                   "rmse_rep": rmse(g.rep_mean - g.mean_true),
                   **{k: float(g[k].iloc[0]) for k in ("level_err", "level_sd", "level_z", "specific_rms_z")}}
            if group == "all":
                row["rmse_raked"] = rmse(g.raked_mean - g.mean_true)
            mrp_rows.append(row)
            ranked = g.sort_values("mean_true", ascending=False)
            best_true = ranked["llm"].iloc[0]
            optimum_rows.append({"scenario": scenario, "seed": seed, "country": country, "group": group, "true_best": best_true,
                                 "true_margin": float(ranked.mean_true.iloc[0] - ranked.mean_true.iloc[1]),
                                 "mrp_best": g.loc[g["mean"].idxmax(), "llm"],
                                 "p_best_of_true_best": float(g.loc[g.llm == best_true, "p_best"].iloc[0])})
        mw = model_welfare(run, country, rules=("mean",), replicates=replicates, draws=200, seed=1)
        tw = true_welfare(truth_params, country, rules=("mean",), replicates=4 * replicates, seed=1)
        g = expected_gaps(mw).merge(expected_gaps(tw)[["rule", "target", "pool", "gap_mean"]],
                                    on=["rule", "target", "pool"], suffixes=("", "_true"))
        g["covered"] = (g.gap_q05 <= g.gap_mean_true) & (g.gap_mean_true <= g.gap_q95)
        g["same_sign"] = np.sign(g.gap_mean) == np.sign(g.gap_mean_true)
        g.insert(0, "seed", seed)
        g.insert(0, "scenario", scenario)
        gap_rows.append(g)

    mrp = pd.DataFrame(mrp_rows)
    optima = pd.DataFrame(optimum_rows)
    gaps = pd.concat(gap_rows, ignore_index=True)
    try:
        correlation = float(mixedlm_crosscheck(run, data).attrs["correlation"])
    except np.linalg.LinAlgError as exc:  # REML can fail on a release (singular Hessian): keep the fit
        print(f"\nMixedLM cross-check failed on this release ({exc}); correlation not computed")
        correlation = float("nan")
    print("\nMRP against the true census-population means (opening turn; 21 LLMs per row)")
    print(mrp.drop(columns=["scenario", "seed"]).round(3).to_string(index=False))
    print("\nGroup-optimal LLMs (true optimum and its margin over the runner-up vs the MRP "
          "posterior-mean optimum)")
    print(optima.drop(columns=["scenario", "seed"]).round(3).to_string(index=False))
    print(f"  match: {int((optima.true_best == optima.mrp_best).sum())} of {len(optima)}")
    print(f"\nLLM effects, Bayesian vs MixedLM (REML): correlation {correlation:.4f}")
    print("\nExpected exclusion gaps (mean rule, juries of 100): model 90% interval vs the generator's truth")
    print(gaps[["country", "target", "pool", "gap_mean", "gap_q05", "gap_q95", "gap_mean_true",
                "covered", "same_sign"]].round(3).to_string(index=False))
    print(f"  covered: {int(gaps.covered.sum())} of {len(gaps)}; same sign: {int(gaps.same_sign.sum())} of {len(gaps)}")
    skew = skewed_sample(data, truth_means, spec, seed, keep, work, sampling) if keep is not None else None
    shutil.rmtree(work, ignore_errors=True)
    d = diag.to_dict()
    return {"scenario": scenario, "seed": seed, "spec": str(spec), "fit_s": fit_s,
            "timings": run.meta["timings"], "load_before": load_before, "load_after": load1(),
            "gate_passed": not diag.failures(), "gate_failures": diag.failures(),
            "skewed": skew, "diagnostics": {k: v for k, v in d.items() if k != "per_variable"},
            "mrp": mrp, "optima": optima, "gaps": gaps, "mixedlm_correlation": correlation}


def skewed_sample(data, truth_means: pd.DataFrame, spec: str, seed: int, keep: float, work: Path,
                  sampling: dict | None = None) -> pd.DataFrame:
    """Thin the release toward young men, refit, and compare raw / raked / MRP with the truth.

    Every participant who is not a man under 45 is kept with probability *keep* (seeded),
    in every country. Returns one row per (country, LLM) with the three estimates and the
    true census-population mean (group ``all``).
    """
    from prism_stats import vocab
    from prism_stats.model import diagnose, fit

    people = data.participants
    favoured = (people["gender"].astype(str) == "Male") & people["age"].astype(str).isin(["18-24", "25-34", "35-44"])
    rng = np.random.default_rng([seed, 45])
    skewed = data.subset((favoured | (rng.random(len(people)) < keep)).to_numpy(), label=f"skewed(keep={keep})")
    t0 = time.perf_counter()
    run = fit(skewed, spec, progress=False, out=work / "run_skewed", **(sampling or {}))
    diag = diagnose(run)
    print(f"\nSkewed sample: {len(skewed.participants)} of {len(people)} participants "
          f"(men under 45 kept, others with p={keep}); fit {time.perf_counter() - t0:.1f} s; "
          f"{diag.failures() or 'gate passed'}")
    rows = []
    for country in ("uk", "us"):
        s = country_estimates(run, skewed, truth_means, country)
        s = s.loc[s.group == "all"].copy()
        kept = skewed.participants
        male = kept.loc[kept["reside_country"].astype(str) == vocab.COUNTRY_ISO3[country], "gender"]
        s["male_share"] = float((male.astype(str) == "Male").mean())
        rows.append(s.assign(seed=seed)[["seed", "country", "llm", "raw_mean", "raked_mean", "mean", "q05", "q95",
                                         "mean_true", "male_share"]])
    table = pd.concat(rows, ignore_index=True)
    print(movement(table).round(3).to_string(index=False))
    return table


#: The three estimators of a country's per-LLM means compared on skewed samples.
ESTIMATORS: dict[str, str] = {"raw_mean": "raw", "raked_mean": "raked", "mean": "MRP"}


def movement(table: pd.DataFrame) -> pd.DataFrame:
    """Per country and LLM set: RMSE of raw, raked and MRP means against the truth, and the
    share of the raw error each estimator removes (1 - RMSE / raw RMSE)."""
    from prism_stats.synth.truth import PLANTED_LLMS

    rows = []
    for (country, subset), g in pd.concat([table.assign(subset="all 21"),
                                           table.loc[table.llm.isin(PLANTED_LLMS)].assign(subset="planted 4")]
                                          ).groupby(["country", "subset"], sort=False):
        raw, raked, mrp = (rmse(g[c] - g.mean_true) for c in ("raw_mean", "raked_mean", "mean"))
        rows.append({"country": country, "llms": subset, "rmse_raw": raw, "rmse_raked": raked, "rmse_mrp": mrp,
                     "raked_removes": 1 - raked / raw, "mrp_removes": 1 - mrp / raw,
                     "mrp_coverage90": float(((g.q05 <= g.mean_true) & (g.mean_true <= g.q95)).mean())})
    return pd.DataFrame(rows)


def bias_variance(table: pd.DataFrame) -> pd.DataFrame:
    """Over releases, per country and LLM set: the mean squared bias and the mean variance of
    each estimator's error (bias = mean error of an LLM over the releases, so the squared
    bias still holds variance / releases of noise), and the mean signed error of each
    planted LLM: raking trades variance for bias, MRP the other way round."""
    from prism_stats.synth.truth import PLANTED_LLMS

    err = table.assign(**{f"err_{c}": table[c] - table.mean_true for c in ESTIMATORS})
    rows = []
    for subset, sel in (("all 21", err), ("planted 4", err.loc[err.llm.isin(PLANTED_LLMS)])):
        by_llm = sel.groupby(["country", "llm"], sort=False)
        for c, name in ESTIMATORS.items():
            stats = pd.DataFrame({"bias2": by_llm[f"err_{c}"].mean() ** 2, "var": by_llm[f"err_{c}"].var()})
            for country, g in stats.groupby(level="country", sort=False):
                rows.append({"country": country, "llms": subset, "estimator": name,
                             "bias2": g.bias2.mean(), "variance": g["var"].mean()})
    out = pd.DataFrame(rows)
    signed = (err.loc[err.llm.isin(PLANTED_LLMS)].groupby(["country", "llm"], sort=False)
              [[f"err_{c}" for c in ESTIMATORS]].mean().rename(columns=lambda c: ESTIMATORS[c[4:]]))
    return out, signed.reset_index()


def aggregate(results: list[dict]) -> dict[str, pd.DataFrame]:
    """Figures pooled over data seeds: MRP coverage and RMSE per country and group, how far
    raking and MRP move the raw means toward the truth, optimum recovery and gap coverage."""
    mrp = pd.concat([r["mrp"] for r in results], ignore_index=True)
    optima = pd.concat([r["optima"] for r in results], ignore_index=True)
    gaps = pd.concat([r["gaps"] for r in results], ignore_index=True)
    by_group = mrp.groupby(["scenario", "country", "group"], sort=False)[
        ["coverage90", "rmse_mrp", "rmse_raw", "rmse_rep", "rmse_raked"]].mean().reset_index()
    by_group["mrp_below_raw"] = by_group["rmse_mrp"] < by_group["rmse_raw"]
    if "level_z" in mrp:  # releases cached before the split have no level columns
        rms = mrp.groupby(["scenario", "country", "group"], sort=False)[["level_z", "specific_rms_z"]].agg(
            lambda x: float(np.sqrt(np.nanmean(np.square(x)))))
        by_group["level_rms_z"] = rms["level_z"].to_numpy()
        by_group["specific_rms_z"] = rms["specific_rms_z"].to_numpy()
    by_group["releases"] = mrp.groupby(["scenario", "country", "group"], sort=False).size().to_numpy()
    optima["match"] = optima.true_best == optima.mrp_best
    optimum = optima.groupby(["scenario", "group"], sort=False).agg(
        match=("match", "mean"), p_best_of_true_best=("p_best_of_true_best", "mean"),
        true_margin=("true_margin", "mean")).reset_index()
    gap = gaps.groupby(["scenario", "target", "pool"], sort=False).agg(
        covered=("covered", "mean"), same_sign=("same_sign", "mean"), gap_mean=("gap_mean", "mean"),
        gap_mean_true=("gap_mean_true", "mean")).reset_index()
    gate = pd.DataFrame([{"scenario": r["scenario"], "seed": r["seed"], "passed": r["gate_passed"],
                          "fit_s": r["fit_s"], "compile_s": (r.get("timings") or {}).get("compile_s"),
                          "load": r.get("load_before"), "failures": "; ".join(r["gate_failures"])}
                         for r in results])
    out = {"mrp": by_group, "optima": optimum, "gaps": gap, "gate": gate}
    if all(r["skewed"] is not None for r in results):
        skewed = pd.concat([r["skewed"] for r in results], ignore_index=True)
        out["skewed"] = movement(skewed)
        out["skewed_bias_variance"], out["skewed_planted_errors"] = bias_variance(skewed)
    return out


#: The pooled tables of :func:`aggregate`, in print order, with their titles.
POOLED_TITLES: dict[str, str] = {
    "mrp": "MRP: mean coverage of the 90% intervals and mean RMSE over LLMs",
    "optima": "Group optima: share matched, mean P(best) of the true optimum, mean true margin",
    "gaps": "Exclusion gaps: share of releases covered / of the same sign, mean gaps",
    "gate": "Convergence gate of every release (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences)",
    "skewed": "Skewed samples: RMSE against the truth pooled over releases, share of the raw error removed",
    "skewed_bias_variance": "Skewed samples: mean squared bias and mean variance of the errors over releases",
    "skewed_planted_errors": "Skewed samples: mean signed error of the planted LLMs",
}


def _frames(d: dict) -> dict:
    """A release result with its tables back as DataFrames (after a JSON round trip)."""
    return {k: (pd.DataFrame(v) if k in ("mrp", "optima", "gaps", "skewed") and v is not None else v)
            for k, v in d.items()}


def cached_recover(args, scenario: str, seed: int, sampling: dict) -> dict:
    """:func:`recover`, reusing the result file of a finished release in ``--cache``."""
    path = None
    if args.cache:
        tag = Path(args.spec).stem
        path = Path(args.cache) / f"{tag}_{scenario}_{seed}_n{args.participants}.json"
        if path.exists():
            print(f"\n## scenario {scenario}, data seed {seed}: reused {path}")
            return _frames(json.loads(path.read_text()))
    result = recover(args.participants, seed, args.spec, args.replicates,
                     args.keep if args.skewed else None, sampling, scenario)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: (v.to_dict(orient="records") if isinstance(v, pd.DataFrame) else v)
                                    for k, v in result.items()}, default=str))
    return result


def draw_recovery(table: pd.DataFrame, path: str) -> None:
    """Coverage of the 90% intervals and RMSE(MRP) / RMSE(raw) per scenario, country and group
    (the supplement's figure, :func:`prism_stats.report.figures.plot_scenario_recovery`)."""
    from prism_stats.report.figures import plot_scenario_recovery

    plot_scenario_recovery(table).savefig(path, dpi=150)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[20240422],
                    help="seeds of the synthetic releases (one fit each)")
    ap.add_argument("--spec", default="ratings", help="spec name or TOML path")
    ap.add_argument("--scenarios", nargs="+", default=["model"],
                    help="departures of the generator (prism_stats.synth.SCENARIOS): one release per "
                         "scenario and seed")
    ap.add_argument("--cache", help="folder of per-release results: finished releases are reused "
                                    "(resumable runs)")
    ap.add_argument("--csv", help="write the pooled MRP table (scenario x country x group) to this CSV")
    ap.add_argument("--figure", help="draw coverage and RMSE per scenario into this PNG")
    ap.add_argument("--replicates", type=int, default=1000, help="juries per scheme")
    ap.add_argument("--draws", type=int, help="posterior draws per chain (default: the spec's)")
    ap.add_argument("--tune", type=int, help="tuning steps per chain (default: the spec's)")
    ap.add_argument("--skewed", action="store_true", help="also refit a deliberately skewed sample")
    ap.add_argument("--keep", type=float, default=0.3, help="keep probability of the disfavoured participants")
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--dry-run", action="store_true", help="print the plan only")
    args = ap.parse_args(argv)
    info = machine()
    print_machine(info)
    if args.dry_run:
        for scenario, seed in ((sc, sd) for sc in args.scenarios for sd in args.seeds):
            print(f"would synthesize {args.participants} participants (scenario {scenario}, seed {seed}), fit "
                  f"{args.spec!r}, post-stratify, rake, cross-check and simulate welfare"
                  + (f"; then refit a skewed sample (keep {args.keep})" if args.skewed else ""))
        return 0

    pd.set_option("display.width", 160)
    sampling = {k: v for k, v in (("draws", args.draws), ("tune", args.tune)) if v is not None}
    results = [cached_recover(args, scenario, seed, sampling)
               for scenario in args.scenarios for seed in args.seeds]
    out: dict = {"machine": info, "participants": args.participants, "seeds": args.seeds, "spec": args.spec,
                 "scenarios": args.scenarios,
                 "releases": [{k: (v.to_dict(orient="records") if isinstance(v, pd.DataFrame) else v)
                               for k, v in r.items()} for r in results]}
    if len(results) > 1:
        pooled = aggregate(results)
        print(f"\n## Pooled over {len(results)} releases (seeds {', '.join(map(str, args.seeds))})")
        for key, title in POOLED_TITLES.items():
            if key in pooled:
                print(f"\n{title}")
                print(pooled[key].round(3).to_string(index=False))
            if key == "gaps":
                gaps = pd.concat([r["gaps"] for r in results])
                print(f"  covered: {int(gaps.covered.sum())} of {len(gaps)}; "
                      f"same sign: {int(gaps.same_sign.sum())} of {len(gaps)}")
        out["pooled"] = {k: v.to_dict(orient="records") for k, v in pooled.items()}
        if args.csv:
            pooled["mrp"].to_csv(args.csv, index=False)
        if args.figure:
            draw_recovery(pooled["mrp"], args.figure)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
