"""The builders of every supplement table, from the objects the analysis stages write.

Each builder returns a :class:`~prism_stats.tabular.Table` (full-precision data for the
CSV, formatted display strings for LaTeX, Markdown and HTML; the type and its writers
are :mod:`prism_stats.tabular`). The builders take the objects the analysis stages
produce (DataFrames read from the run folder, posterior Datasets), so they work from a
notebook as well as from :func:`prism_stats.report.supplement.build_supplement`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..citations import census_citation, cite
from ..tabular import Table, format_number, format_probability, interval
from ..vocab import GROUP_LABELS

# --- the supplement's tables --------------------------------------------------------------------

#: Participant characteristics of the descriptive table, with their labels (the
#: variables of the original study's demographic and LLM-usage tables, SPEC §3.1).
DESCRIPTIVE_VARIABLES: dict[str, str] = {
    "age": "Age",
    "gender": "Gender",
    "ethnicity_simplified": "Ethnicity",
    "religion_simplified": "Religion",
    "education": "Education",
    "employment": "Employment",
    "marital": "Marital status",
    "english": "English",
    "special_region": "Region",
    "lm_familiarity": "LLM familiarity",
    "lm_direct_use": "Direct LLM use",
    "lm_indirect_use": "Indirect LLM use",
    "lm_frequency_use": "LLM use frequency",
}
#: Dataset-level counts of the overview table, with labels.
OVERVIEW_QUANTITIES: dict[str, str] = {
    "participants": "Participants",
    "participants_with_conversations": "Participants with conversations",
    "participants_survey_only": "Survey-only participants",
    "conversations": "Conversations",
    "interactions": "Interactions",
    "utterances": "Rated responses",
    "residence_countries": "Countries of residence",
    "birth_countries": "Countries of birth",
    "conversations_per_participant_mean": "Conversations per participant (mean)",
    "llms_per_participant_mean": "LLMs rated per participant (mean)",
    "turns_per_conversation_mean": "Turns per conversation (mean)",
    "score_mean": "Score (mean)",
    "score_sd": "Score (sd)",
    "uk_rep": "UK representative sample",
    "us_rep": "US representative sample",
    "balanced_participants": "Balanced-subset participants",
}


def descriptives_tables(frame: pd.DataFrame) -> list[Table]:
    """The participant table and the dataset overview from ``describe(data).to_frame()``."""
    part = frame.loc[frame["section"] == "participants"]
    rows = []
    for var, label in DESCRIPTIVE_VARIABLES.items():
        block = part.loc[part["quantity"] == var]
        for i, r in enumerate(block.itertuples(index=False)):
            rows.append({"variable": var, "characteristic": label if i == 0 else "",
                         "level": str(r.level), "n": int(r.value), "percent": float(r.percent)})
    data = pd.DataFrame(rows, columns=["variable", "characteristic", "level", "n", "percent"])
    n_total = frame.loc[(frame["section"] == "overview") & (frame["quantity"] == "participants"), "value"]
    total = f"{int(n_total.iloc[0]):,}" if len(n_total) else "all"
    participants = Table(
        "descriptives_participants", "Participants",
        f"Participant characteristics (n = {total}): count and percent of all participants "
        "(survey-only participants included), as in the original study's demographic and "
        f"LLM-usage tables {cite('kirk2024')}. \"Prefer not to say\" is its own level. "
        f"Data: {cite('prism_data')[1:-1]}.",
        data.drop(columns="characteristic"),
        display=pd.DataFrame({"Characteristic": data["characteristic"], "Level": data["level"],
                              "n": data["n"].map(lambda v: f"{v:,}"),
                              "%": data["percent"].map(lambda v: f"{v:.1f}")}),
        align="llrr")
    over = frame.loc[frame["section"] == "overview"].set_index("quantity")["value"]
    orows = [{"quantity": k, "label": lab, "value": float(over[k])}
             for k, lab in OVERVIEW_QUANTITIES.items() if k in over.index]
    odata = pd.DataFrame(orows, columns=["quantity", "label", "value"])
    overview = Table(
        "descriptives_overview", "Dataset overview",
        "Dataset overview: counts of participants, conversations and rated responses, and the "
        f"mean number of conversations, rated LLMs and turns. Data: {cite('prism_data')[1:-1]}.",
        odata, display=pd.DataFrame({"Quantity": odata["label"],
                                     "Value": odata["value"].map(format_number)}), align="lr")
    return [participants, overview]


def diagnostics_table(convergence: pd.DataFrame, diagnostics: Mapping[str, Any],
                      loo: Mapping[str, Any] | None = None,
                      crosscheck: Mapping[str, Any] | None = None) -> Table:
    """Per-parameter R-hat and ESS with the gate, divergences, E-BFMI, LOO in the caption.

    *convergence* has columns ``variable, max_rhat, min_ess_bulk, min_ess_tail, size``
    (``Diagnostics.table``); *diagnostics* is ``diagnostics.json``.
    """
    df = convergence.loc[:, ["variable", "size", "max_rhat", "min_ess_bulk", "min_ess_tail"]].copy()
    th = diagnostics.get("thresholds", {})
    rhat_max, ess_min = float(th.get("rhat_max", 1.01)), float(th.get("ess_min", 400))
    df["max_rhat"] = pd.to_numeric(df["max_rhat"], errors="coerce")  # null with one chain
    df["passes"] = (df["max_rhat"] <= rhat_max) & (df["min_ess_bulk"] >= ess_min) & (df["min_ess_tail"] >= ess_min)
    display = pd.DataFrame({
        "Parameter": df["variable"],
        "Size": df["size"].map(lambda v: f"{int(v):,}"),
        "max R-hat": df["max_rhat"].map(lambda v: format_number(v, 3) if pd.notna(v) else "n/a"),
        "min ESS bulk": df["min_ess_bulk"].map(lambda v: format_number(v, 0)),
        "min ESS tail": df["min_ess_tail"].map(lambda v: format_number(v, 0)),
        "Gate": df["passes"].map(lambda v: "pass" if v else "FAIL"),
    })
    bfmi = diagnostics.get("bfmi") or []
    bfmi_min = float(th.get("bfmi_min", 0.3))
    verdict = "passes" if diagnostics.get("passed") else "fails (" + "; ".join(diagnostics.get("failures", [])) + ")"
    depth = diagnostics.get("treedepth_saturated")
    depth_text = "" if depth is None else f"; {depth} draw(s) at the maximum tree depth"
    caption = (f"Convergence of the rating model: worst split R-hat (rank-normalised; "
               "needs two chains) and bulk/tail ESS per parameter over "
               f"{diagnostics.get('n_chains')} chains × {diagnostics.get('n_draws')} draws (arviz-stats). "
               f"The strict gate (R-hat ≤ {rhat_max}, ESS ≥ {ess_min:.0f}, no divergence, E-BFMI ≥ "
               f"{bfmi_min}, at most {100 * float(th.get('treedepth_max_share', 0.01)):.0f}% of draws at "
               f"the maximum tree depth) {verdict}; {diagnostics.get('divergences', 0)} divergent "
               f"transition(s); E-BFMI per chain {', '.join(f'{b:.2f}' for b in bfmi) or 'n/a'}{depth_text}.")
    if loo:
        caption += (f" PSIS-LOO (participants left out): elpd {loo['elpd_loo']:.1f} (SE {loo['se']:.1f}), "
                    f"p_loo {loo['p_loo']:.1f}, {loo.get('pareto_k_bad', 0)} participant(s) with "
                    f"Pareto k > {loo.get('pareto_k_threshold', 0.7):.2f}.")
    if crosscheck and "correlation" in crosscheck:
        caption += (f" MixedLM cross-check: correlation of the LLM effects {crosscheck['correlation']:.3f}.")
    elif crosscheck and "error" in crosscheck:
        caption += f" The MixedLM cross-check failed ({crosscheck['error']})."
    return Table("model_diagnostics", "Model diagnostics", caption, df, display=display, align="lrrrrl")


def crosscheck_table(table: pd.DataFrame, attrs: Mapping[str, Any] | None = None) -> Table:
    """Bayesian LLM effects beside statsmodels MixedLM (REML) estimates."""
    attrs = attrs or {}
    display = pd.DataFrame({
        "LLM": table["llm"],
        "Bayes (90% interval)": [interval(m, lo, hi, 2) for m, lo, hi in
                                 zip(table["bayes_mean"], table["bayes_q05"], table["bayes_q95"], strict=True)],
        "REML": table["reml"].map(lambda v: format_number(v, 2)),
        "SE": table["reml_se"].map(lambda v: format_number(v, 2)),
    })
    corr = attrs.get("correlation")
    caption = ("LLM main effects (points on the 1-100 scale, sum to zero): Bayesian posterior mean "
               "[90% interval] beside the REML estimate of a statsmodels MixedLM with a participant "
               "random intercept (LLM x demographic interactions left out of the REML model)."
               + (f" Correlation {corr:.3f}." if corr is not None else ""))
    return Table("crosscheck_mixedlm", "Frequentist cross-check", caption, table, display=display,
                 align="lrrr")


def _ordered(values: Sequence[str], order: Sequence[str]) -> list[str]:
    known = [v for v in order if v in set(values)]
    return known + [v for v in dict.fromkeys(values) if v not in set(order)]


def mrp_llm_table(summary: pd.DataFrame) -> Table:
    """Per-LLM MRP population estimates (group ``all``) per country, with 90% intervals.

    *summary*: one or more countries' ``poststrat_<c>.csv`` concatenated.
    """
    sub = summary.loc[summary["group"] == "all"].copy()
    countries = list(dict.fromkeys(sub["country"]))
    first = sub.loc[sub["country"] == countries[0]].sort_values("mean", ascending=False)
    order = first["llm"].tolist()
    cols: dict[str, list[str]] = {"LLM": order}
    for c in countries:
        s = sub.loc[sub["country"] == c].set_index("llm").reindex(order)
        cols[f"{c.upper()} (90% interval)"] = [interval(m, lo, hi) for m, lo, hi in
                                               zip(s["mean"], s["q05"], s["q95"], strict=True)]
        cols[f"{c.upper()} P(best)"] = s["p_best"].map(format_probability).tolist()
    data = sub.loc[:, [c for c in ("country", "llm", "mean", "sd", "q05", "q50", "q95", "p_best",
                                   "raw_mean", "rep_mean") if c in sub.columns]]
    return Table(
        "mrp_llm", "MRP estimates per LLM",
        "Population estimates per LLM (MRP): the expected opening-turn rating (1–100) of a new "
        "adult of the country, census-weighted over age × sex × ethnicity cells "
        f"({census_citation(countries)}); posterior mean [90% interval] and the posterior "
        "probability of being the best LLM. Sorted by the "
        f"{countries[0].upper()} estimate. Ratings: {cite('prism_data')[1:-1]}.",
        data.reset_index(drop=True), display=pd.DataFrame(cols),
        align="l" + "rr" * len(countries))


def mrp_subgroup_table(summary: pd.DataFrame, country: str) -> Table:
    """One country's MRP estimates per LLM (rows) and population subgroup (columns)."""
    sub = summary.loc[summary["country"] == country]
    groups = list(dict.fromkeys(sub["group"]))
    order = (sub.loc[sub["group"] == groups[0]].sort_values("mean", ascending=False)["llm"].tolist())
    cols: dict[str, list[str]] = {"LLM": order}
    for g in groups:
        s = sub.loc[sub["group"] == g].set_index("llm").reindex(order)
        best = s["mean"].idxmax()
        cols[GROUP_LABELS.get(g, g)] = [
            f"{m:.1f} [{lo:.1f}, {hi:.1f}]" + ("*" if llm == best else "")
            for llm, m, lo, hi in zip(order, s["mean"], s["q05"], s["q95"], strict=True)]
    return Table(
        f"mrp_subgroups_{country}", f"MRP subgroup estimates, {country.upper()}",
        f"{country.upper()}: MRP estimates per LLM for census subgroups ({census_citation(country)}), "
        "posterior mean [90% interval] of the expected opening-turn rating; * marks the LLM with "
        "the highest posterior mean in each group (a ranking, not a test; the intervals of the "
        "top LLMs may overlap).",
        sub.reset_index(drop=True), display=pd.DataFrame(cols), align="l" + "r" * len(groups))


def effect_summaries(posterior: Any, factors: Sequence[str] = ("age", "gender", "ethnicity")) -> pd.DataFrame:
    """Posterior summaries of the LLM x demographic effects ``llm_<factor>``.

    Returns a long table: ``factor, level, llm, mean, sd, q05, q95, p_positive``.
    """
    frames = []
    for f in factors:
        name = f"llm_{f}"
        if name not in posterior:
            continue
        da = posterior[name]
        level_dim = next(d for d in da.dims if d not in ("chain", "draw", "llm"))
        q = da.quantile([0.05, 0.95], dim=("chain", "draw"))
        stats = pd.DataFrame({
            "mean": da.mean(("chain", "draw")).to_series(),
            "sd": da.std(("chain", "draw"), ddof=1).to_series(),
            "q05": q.sel(quantile=0.05, drop=True).to_series(),
            "q95": q.sel(quantile=0.95, drop=True).to_series(),
            "p_positive": (da > 0).mean(("chain", "draw")).to_series(),
        }).reset_index().rename(columns={level_dim: "level"})
        stats.insert(0, "factor", f)
        frames.append(stats.loc[:, ["factor", "level", "llm", "mean", "sd", "q05", "q95", "p_positive"]])
    if not frames:
        return pd.DataFrame(columns=["factor", "level", "llm", "mean", "sd", "q05", "q95", "p_positive"])
    out = pd.concat(frames, ignore_index=True)
    for c in ("factor", "level", "llm"):
        out[c] = out[c].astype(str)
    return out


def llm_demographic_tables(effects: pd.DataFrame, llm_order: Sequence[str] | None = None) -> list[Table]:
    """One table per factor: LLM (rows) x level (columns) interaction effects.

    Cells show the posterior mean (points); ``*`` marks a 90% interval that excludes 0.
    """
    tables = []
    for f in dict.fromkeys(effects["factor"]):
        sub = effects.loc[effects["factor"] == f]
        levels = list(dict.fromkeys(sub["level"]))
        llms = _ordered(sub["llm"].tolist(), llm_order or [])
        cols: dict[str, list[str]] = {"LLM": llms}
        for lev in levels:
            s = sub.loc[sub["level"] == lev].set_index("llm").reindex(llms)
            cols[lev] = [f"{m:+.2f}".replace("-", "−") + ("*" if (lo > 0 or hi < 0) else "")
                         for m, lo, hi in zip(s["mean"], s["q05"], s["q95"], strict=True)]
        n_cells = len(llms) * len(levels)
        tables.append(Table(
            f"llm_x_{f}", f"LLM × {f} effects",
            f"LLM × {f} varying effects (points on the rating scale, deviations from the LLM's "
            f"main effect and the {f} main effect): posterior means; * marks a 90% interval that "
            "excludes zero. Full summaries (sd, interval, P(>0)) in the CSV. Multiplicity: the "
            f"{n_cells} intervals are not adjusted; if every effect were zero, about "
            f"{0.1 * n_cells:.0f} of them would exclude zero by chance.",
            sub.reset_index(drop=True), display=pd.DataFrame(cols), align="l" + "r" * len(levels)))
    return tables


RULE_DIGITS: dict[str, int] = {"mean": 1, "chosen": 3, "veto": 3}
#: The jury rules in words.
RULE_NAMES: dict[str, str] = {"mean": "Mean rating", "chosen": "Chosen share", "veto": "Non-veto rate"}
#: Welfare targets and skewed pools are population groups (labels of :mod:`prism_stats.vocab`).
TARGET_LABELS: dict[str, str] = GROUP_LABELS
POOL_LABELS: dict[str, str] = {"representative": "Representative", **GROUP_LABELS}


#: How each welfare analysis is named in titles and captions (the method keys of the files).
WELFARE_METHODS: dict[str, tuple[str, str]] = {
    "model": ("model-based", ("model-based, full information (every juror rates every LLM; posterior "
                              "draws x juries)")),
    "matched": ("model-based, exposure-matched", ("model-based, exposure-matched (each juror rates only "
                "the LLMs a participant of the study saw in opening turns; unseen LLMs filled as in "
                "the study; posterior draws x juries)")),
    "design": ("design-based", "design-based (the original study's juries, resampled raters)"),
}


def welfare_exposure_table(summaries: Mapping[str, pd.DataFrame], country: str, target: str = "all") -> Table:
    """Welfare of one target side by side: full-information, exposure-matched and design-based juries.

    *summaries* maps method keys (:data:`WELFARE_METHODS`) to ``summarise_welfare`` outputs.
    """
    methods = [m for m in WELFARE_METHODS if m in summaries]
    frames = []
    for m in methods:
        sub = summaries[m]
        sub = sub.loc[(sub["country"] == country) & (sub["target"] == target)].copy()
        frames.append(sub.assign(method=m))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    keys = data.loc[:, ["rule", "pool", "size"]].drop_duplicates() if len(data) else pd.DataFrame()
    rows = []
    for r in keys.itertuples(index=False):
        d = RULE_DIGITS.get(r.rule, 3)
        row = {"Rule": r.rule, "Pool": POOL_LABELS.get(r.pool, r.pool), "Size": str(int(r.size))}
        for m in methods:
            s = data.loc[(data["method"] == m) & (data["rule"] == r.rule) & (data["pool"] == r.pool)
                         & (data["size"] == r.size)]
            row[WELFARE_METHODS[m][0]] = ("–" if s.empty else
                                          interval(s["welfare_mean"].iloc[0], s["welfare_q05"].iloc[0],
                                                   s["welfare_q95"].iloc[0], d))
        rows.append(row)
    return Table(
        f"welfare_exposure_{country}", f"Welfare by jury exposure, {country.upper()}",
        f"{country.upper()}, welfare of the LLM a jury picks for the target "
        f"'{TARGET_LABELS.get(target, target)}', mean [5%, 95% quantiles] over replicates, side by "
        "side: model-based juries whose jurors rate every LLM (full information), model-based "
        "juries whose jurors rate only the LLMs the study would have shown them (exposure-matched: "
        "a juror's leniency no longer cancels and LLMs nobody saw get the study's fill value), and "
        "the design-based juries of the original study.",
        data, display=pd.DataFrame(rows), align="llr" + "r" * len(methods))


def welfare_table(summary: pd.DataFrame, country: str, method: str) -> Table:
    """Welfare by jury scheme and target (``summarise_welfare`` output of one country)."""
    sub = summary.loc[summary["country"] == country].copy()
    targets = list(dict.fromkeys(sub["target"]))
    keys = sub.loc[:, ["rule", "pool", "size"]].drop_duplicates()
    rows = []
    for r in keys.itertuples(index=False):
        d = RULE_DIGITS.get(r.rule, 3)
        row = {"Rule": RULE_NAMES.get(r.rule, r.rule), "Pool": POOL_LABELS.get(r.pool, r.pool),
               "Size": str(int(r.size))}
        for t in targets:
            s = sub.loc[(sub["rule"] == r.rule) & (sub["pool"] == r.pool) & (sub["size"] == r.size)
                        & (sub["target"] == t)].iloc[0]
            row[TARGET_LABELS.get(t, t)] = interval(s["welfare_mean"], s["welfare_q05"], s["welfare_q95"], d)
        s_all = sub.loc[(sub["rule"] == r.rule) & (sub["pool"] == r.pool) & (sub["size"] == r.size)
                        & (sub["target"] == targets[0])].iloc[0]
        row[f"P(optimal), {TARGET_LABELS.get(targets[0], targets[0])}"] = format_probability(s_all["p_optimal"])
        rows.append(row)
    short, label = WELFARE_METHODS.get(method, (method, method))
    if method == "design":
        label = f"design-based (the juries of {cite('kirk2024')[1:-1]}, resampled raters)"
    elif method in ("model", "matched"):
        label = f"{label[:-1]}; census pools, {census_citation(country)})"
    return Table(
        f"welfare_{method}_{country}", f"Welfare by scheme, {country.upper()} ({short})",
        f"{country.upper()}, {label}: welfare of the LLM a jury picks for each target population, "
        "mean [5%, 95% quantiles] over replicates; mean rating: 1–100; chosen share and non-veto "
        "rate: 0–1. P(optimal): share of juries that pick the best LLM for the first target.",
        sub.reset_index(drop=True), display=pd.DataFrame(rows), align="llr" + "r" * (len(targets) + 1))


def welfare_gaps_table(gaps: pd.DataFrame, country: str, method: str) -> Table:
    """Exclusion gaps: skewed pool minus the representative pool of the same size.

    *gaps* is either :func:`prism_stats.welfare.exclusion_gaps` (gaps between single
    juries; column ``p_worse``) or, for the model-based analysis,
    :func:`prism_stats.welfare.expected_gaps` (posterior of the expected gap; column
    ``p_negative``).
    """
    sub = gaps.loc[gaps["country"] == country].copy()
    expected = "p_negative" in sub.columns
    p_col = "p_negative" if expected else "p_worse"
    targets = list(dict.fromkeys(sub["target"]))
    keys = sub.loc[:, ["rule", "pool", "size"]].drop_duplicates()
    rows = []
    for r in keys.itertuples(index=False):
        d = RULE_DIGITS.get(r.rule, 3) + 1
        row = {"Rule": RULE_NAMES.get(r.rule, r.rule), "Pool": POOL_LABELS.get(r.pool, r.pool),
               "Size": str(int(r.size))}
        for t in targets:
            s = sub.loc[(sub["rule"] == r.rule) & (sub["pool"] == r.pool) & (sub["size"] == r.size)
                        & (sub["target"] == t)].iloc[0]
            row[TARGET_LABELS.get(t, t)] = (interval(s["gap_mean"], s["gap_q05"], s["gap_q95"], d)
                                            + f" ({format_probability(s[p_col])})")
        rows.append(row)
    if expected:
        what = ("the expected welfare a target gets from juries drawn from a skewed census pool "
                "minus from representative juries of the same size (jury randomness averaged out "
                "per posterior draw): posterior mean [90% interval] (posterior probability that "
                "the skewed pool serves the target worse).")
    else:
        what = ("the welfare a target gets from a jury drawn from a skewed pool minus from a "
                "representative jury of the same size, mean [5%, 95% quantiles] over pairs of "
                "juries (share of pairs in which the skewed pool serves the target worse).")
    return Table(
        f"welfare_gaps_{method}_{country}",
        f"Exclusion gaps, {country.upper()} ({WELFARE_METHODS.get(method, (method,))[0]})",
        f"{country.upper()}, {WELFARE_METHODS.get(method, (method,))[0]} exclusion gaps: " + what,
        sub.reset_index(drop=True), display=pd.DataFrame(rows), align="llr" + "r" * len(targets))


def balance_table(balances: Mapping[str, pd.DataFrame]) -> Table:
    """Raking balance: target, unweighted and weighted shares and ASD per margin category."""
    frames = []
    for c, b in balances.items():
        b = b.copy()
        b.insert(0, "country", c)
        frames.append(b)
    data = pd.concat(frames, ignore_index=True)
    display = pd.DataFrame({
        "Country": data["country"].str.upper(),
        "Margin": data["margin"],
        "Category": data["category"],
        "Census": data["target"].map(lambda v: f"{100 * v:.1f}"),
        "Unweighted": data["unweighted"].map(lambda v: f"{100 * v:.1f}"),
        "Raked": data["weighted"].map(lambda v: f"{100 * v:.1f}"),
        "ASD before": data["asd_before"].map(lambda v: format_number(v, 3)),
        "ASD after": data["asd_after"].map(lambda v: format_number(v, 3)),
    })
    return Table(
        "raking_balance", "Raking balance",
        "Balance of the raking weights: census share "
        f"({census_citation([c for c in balances])}), unweighted and raked sample share (percent) "
        "of every margin category, and the absolute standardised difference (ASD) from the "
        "census before and after raking.",
        data, display=display, align="lllrrrrr")


#: Columns a recovery-benchmark table must have (``benchmarks/recovery.py --csv``).
SCENARIO_RECOVERY_COLUMNS = ("scenario", "country", "group", "coverage90", "rmse_mrp", "rmse_raw", "releases")


def scenario_recovery_table(table: pd.DataFrame) -> Table:
    """The recovery benchmark: MRP against the truth when the data are not built like the model.

    *table*: the pooled table of ``benchmarks/recovery.py --csv`` -- per generator scenario
    (departures from the model, :data:`prism_stats.synth.SCENARIOS`), country and group:
    coverage of the 90% intervals and RMSE over the 21 LLMs, averaged over the synthetic
    releases, with the raw (and, for the whole population, raked) residents' means.
    """
    data = table.loc[:, [c for c in table.columns if c in (*SCENARIO_RECOVERY_COLUMNS, "rmse_raked")]].copy()
    data["mrp_below_raw"] = data["rmse_mrp"] < data["rmse_raw"]

    def points(v: float) -> str:
        return "–" if pd.isna(v) else f"{v:.2f}"

    display = pd.DataFrame({
        "Scenario": data["scenario"],
        "Country": data["country"].astype(str).str.upper(),
        "Group": data["group"].map(lambda g: GROUP_LABELS.get(g, g)),
        "Releases": data["releases"].astype(int),
        "90% coverage": data["coverage90"].map(lambda v: f"{v:.2f}"),
        "RMSE MRP": data["rmse_mrp"].map(points),
        "RMSE raw": data["rmse_raw"].map(points),
        "RMSE raked": data["rmse_raked"].map(points) if "rmse_raked" in data else "–",
        "MRP below raw": data["mrp_below_raw"].map({True: "yes", False: "no"}),
    })
    n = int(data["releases"].max()) if len(data) else 0
    return Table(
        "recovery_scenarios", "Recovery when the data are not built like the model",
        "Recovery benchmark of the package (benchmarks/recovery.py; synthetic releases of the "
        "PRISM size from generators that depart from the model: country-specific LLM "
        "preferences, rater scale use, piles and heaping, a non-additive LLM x age x gender "
        f"pattern, skewed rater pools; up to {n} releases per scenario). Per scenario, country "
        "and group: share of the 21 LLMs whose 90% interval covers the true population mean "
        "(mean over releases), and the RMSE over LLMs (rating points) of MRP, of the raw "
        "residents' means and of the raked means (whole population only).",
        data, display=display, align="lllrrrrrl")


def recovery_table(truth: pd.DataFrame, summary: pd.DataFrame) -> Table:
    """Synthetic data only: MRP estimates against the known population means.

    *truth*: ``truth/population_means.csv`` (country, group, llm, mean); *summary*: the
    concatenated ``poststrat_<c>.csv``. Reports, per country and group, the coverage of
    the 90% intervals, the mean absolute error and whether the best LLM was found.
    """
    m = summary.merge(truth.rename(columns={"mean": "true_mean"}), on=["country", "group", "llm"],
                      how="inner")
    m["covered"] = (m["q05"] <= m["true_mean"]) & (m["true_mean"] <= m["q95"])
    m["abs_error"] = (m["mean"] - m["true_mean"]).abs()
    rows = []
    for (c, g), s in m.groupby(["country", "group"], sort=False):
        best_true = s.loc[s["true_mean"].idxmax(), "llm"]
        best_est = s.loc[s["mean"].idxmax(), "llm"]
        rows.append({"country": c, "group": g, "n_llms": len(s), "coverage_90": s["covered"].mean(),
                     "mae": s["abs_error"].mean(), "true_best": best_true, "estimated_best": best_est,
                     "p_best_true_best": float(s.loc[s["llm"] == best_true, "p_best"].iloc[0])})
    data = pd.DataFrame(rows)
    display = pd.DataFrame({
        "Country": data["country"].str.upper(),
        "Group": data["group"].map(lambda g: GROUP_LABELS.get(g, g)),
        "90% coverage": data["coverage_90"].map(lambda v: f"{v:.2f}"),
        "MAE": data["mae"].map(lambda v: f"{v:.2f}"),
        "True best": data["true_best"],
        "Estimated best": data["estimated_best"],
        "P(best) of true best": data["p_best_true_best"].map(format_probability),
    })
    return Table(
        "recovery", "Recovery of the synthetic truth",
        "Synthetic data: MRP estimates against the true population means of the generating "
        "process. Per country and group: share of the LLMs whose 90% interval covers the truth, "
        "mean absolute error (rating points), the truly best and the estimated best LLM, and the "
        "posterior probability that the truly best LLM is best.",
        data, display=display, align="llrrllr")
