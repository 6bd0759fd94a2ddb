"""Supplement tables of the preference-diversity analysis (``report.tables.Table`` objects).

Each builder takes the tidy frames the analysis writes (``OUT/rankings/*.csv``, see
:mod:`prism_stats.rankings.outputs`), so tables can be rebuilt from disk; the CSV of
every table keeps full precision, the LaTeX/Markdown show formatted strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..tabular import MISSING, Table, format_number, format_probability, interval
from .bootstrap import METHOD_LABELS

SHOWN_METHODS: tuple[str, ...] = ("rc_corrected", "rc_original", "mle_elo", "bradley_terry", "elo", "win_rate")
CENSUS_LABELS: dict[str, str] = {
    "all": "All", "male": "Male", "nonmale": "Non-male", "white": "White",
    "nonwhite": "Non-white", "under45": "Under 45", "over45": "45+",
}


def _rank_cell(rank: float, lo: float, hi: float) -> str:
    if not np.isfinite(rank):
        return MISSING
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{int(rank)}"
    return f"{int(rank)} [{int(lo)}-{int(hi)}]"


def _value(v: float, method: str) -> str:
    if not np.isfinite(v):
        return MISSING
    if method.startswith("rc_") or method == "win_rate":
        return f"{v:.3f}"
    return f"{v:.0f}"


def overall_table(rankings: pd.DataFrame, methods: Sequence[str] = SHOWN_METHODS) -> Table:
    """Whole-sample rankings: each method's value and rank [90% bootstrap rank interval]."""
    t = rankings[rankings["grouping"] == "all"]
    methods = [m for m in methods if m in set(t["ranking"])]
    head = t[t["ranking"] == methods[0]].sort_values("value", ascending=False)
    order = head["llm"].tolist()
    cols: dict[str, list[str]] = {"LLM": order}
    for m in methods:
        s = t[t["ranking"] == m].set_index("llm").reindex(order)
        cols[METHOD_LABELS[m]] = [f"{_value(v, m)} ({_rank_cell(r, lo, hi)})" for v, r, lo, hi in
                                  zip(s["value"], s["rank"], s.get("rank_lo", np.nan * s["rank"]),
                                      s.get("rank_hi", np.nan * s["rank"]), strict=True)]
    return Table(
        "rankings_overall", "The study's rankings, whole sample",
        "Every classical ranking of the opening-turn battles (every pair shown together; a tie "
        "when the scores differ by at most 5): value (rank [90% participant-bootstrap rank "
        "interval]). Rank Centrality scores sum to 1; Elo-scale ratings are anchored at "
        "flan-t5-xxl = 800 (MLE-Elo, Bradley-Terry) or start at 1000 (online Elo). Sorted by "
        f"{METHOD_LABELS[methods[0]]}.",
        t.reset_index(drop=True), display=pd.DataFrame(cols), align="l" + "r" * len(methods))


def normalisation_table(normalisations: pd.DataFrame) -> Table:
    """Rank Centrality, original vs corrected normalisation."""
    n = normalisations.reset_index()
    display = pd.DataFrame({
        "LLM": n["llm"], "RC (original)": n["rc_original"].map(lambda v: f"{v:.4f}"),
        "Rank (original)": n["rank_original"].astype(int).astype(str),
        "RC (corrected)": n["rc_corrected"].map(lambda v: f"{v:.4f}"),
        "Rank (corrected)": n["rank_corrected"].astype(int).astype(str),
        "Change": n["rank_change"].map(lambda v: f"{int(v):+d}" if v else "0"),
    })
    return Table(
        "rc_normalisations", "Rank Centrality: original vs corrected normalisation",
        "Rank Centrality (prior 1 per pair, 1000 steps) with the original's normalisation (pair "
        "totals from the row-major flattened upper and lower triangles, which pair (i, j) with "
        "(j, i) only for three or fewer LLMs; SPEC §5.4) and with the share of the pair's "
        "comparisons won (corrected). Change = corrected rank minus original rank.",
        n, display=display, align="lrrrrr")


def subgroup_tables(rankings: pd.DataFrame, ranking: str = "rc_corrected") -> list[Table]:
    """One table per grouping: LLM (rows) x group (columns), rank [90% bootstrap interval]."""
    t = rankings[rankings["ranking"] == ranking]
    overall = t[t["grouping"] == "all"].sort_values("rank")
    order = overall["llm"].tolist()
    tables = []
    for grouping in [g for g in dict.fromkeys(t["grouping"]) if g != "all"]:
        sub = t[t["grouping"] == grouping]
        groups = list(dict.fromkeys(sub["group"]))
        cols: dict[str, list[str]] = {"LLM": order}
        for g in groups:
            s = sub[sub["group"] == g].set_index("llm").reindex(order)
            cols[str(g)] = [_rank_cell(r, lo, hi) for r, lo, hi in
                            zip(s["rank"], s.get("rank_lo", s["rank"] * np.nan),
                                s.get("rank_hi", s["rank"] * np.nan), strict=True)]
        safe = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in grouping)
        tables.append(Table(
            f"subgroup_ranks_{safe}", f"Rankings by {grouping}",
            f"{METHOD_LABELS[ranking]} per {grouping} group: rank (1 = best) [90% participant-"
            "bootstrap rank interval]. Rows ordered by the whole-sample ranking; groups below the "
            "minimum size are listed in the group-size table, not here.",
            sub.reset_index(drop=True), display=pd.DataFrame(cols), align="l" + "r" * len(groups)))
    return tables


def sizes_table(sizes: pd.DataFrame, min_group_size: int | None = None) -> Table:
    """Participants and battles per group, and whether the group was ranked."""
    display = pd.DataFrame({
        "Grouping": sizes["grouping"], "Group": sizes["group"].astype(str),
        "Participants": sizes["n_participants"].map(format_number),
        "Battles": sizes["n_battles"].map(format_number), "Status": sizes["status"],
    })
    rule = f" (minimum {min_group_size} participants)" if min_group_size else ""
    return Table(
        "rankings_group_sizes", "Groups and their sizes",
        f"Participants with opening battles and battles per group; groups below the minimum "
        f"size{rule} are reported as too small and not ranked. Participants without a label "
        "in a grouping (e.g. outside both REP samples) are counted in the CSV (unlabelled).",
        sizes.reset_index(drop=True), display=display, align="llrrl")


def model_census_table(ranks: pd.DataFrame, source: str) -> Table | None:
    """Post-stratified model ranks: LLM x (country, census group), E[rank] [90% interval]."""
    t = ranks[(ranks["source"] == source) & ranks["grouping"].str.startswith("census_")]
    if t.empty:
        return None
    keys = list(dict.fromkeys(zip(t["grouping"], t["group"], strict=True)))
    first = t[(t["grouping"] == keys[0][0]) & (t["group"] == keys[0][1])].sort_values("expected_rank")
    order = first["llm"].tolist()
    cols: dict[str, list[str]] = {"LLM": order}
    for grouping, group in keys:
        s = t[(t["grouping"] == grouping) & (t["group"] == group)].set_index("llm").reindex(order)
        label = f"{grouping[len('census_'):].upper()} {CENSUS_LABELS.get(group, group)}"
        cols[label] = [f"{e:.1f} [{int(lo)}-{int(hi)}]" for e, lo, hi in
                       zip(s["expected_rank"], s["rank_lo"], s["rank_hi"], strict=True)]
    what = ("the expected opening-turn rating (rating model)" if source == "rating" else
            "the probability of being picked as best of a random opening set (choice model)")
    return Table(
        f"model_ranks_census_{source}", f"Model-based ranks, census groups ({source} model)",
        f"Post-stratified to the UK and US census: expected rank [90% rank interval] of each LLM "
        f"by {what}, from the posterior draws. Rows ordered by the first column.",
        t.reset_index(drop=True), display=pd.DataFrame(cols), align="l" + "r" * len(keys))


def agreement_summary_table(summary: pd.DataFrame, ranking: str = "rc_corrected") -> Table:
    """Where the study's point ranks and the model's intervals agree, per group."""
    display = pd.DataFrame({
        "Model": summary["source"], "Grouping": summary["grouping"], "Group": summary["group"].astype(str),
        "Inside": summary["share_inside"].map(lambda v: f"{100 * v:.0f}%"),
        "Mean width": summary["mean_interval_width"].map(lambda v: f"{v:.1f}"),
        "Could be best (model)": summary["could_be_best"].fillna("").replace("", MISSING),
        "Best (study)": summary["study_best"].fillna("").replace("", MISSING),
    })
    return Table(
        "rankings_agreement", "Study ranking vs model rank intervals",
        f"Per group: share of LLMs whose study rank ({METHOD_LABELS[ranking]}) lies inside the "
        "model's 90% rank interval, the mean width of those intervals (ranks), the LLMs whose "
        "interval reaches rank 1, and the study's top LLM. UK/US REP rows compare the REP "
        "samples' rankings with the post-stratified census populations.",
        summary.reset_index(drop=True), display=display, align="lllrrll")


def stated_table(summary: pd.DataFrame, meta: Mapping[str, Any] | None = None) -> Table:
    """Per attribute: the dependence of the reward on stated importance (b1) and b0."""
    meta = dict(meta or {})
    display = pd.DataFrame({
        "Attribute": summary["attribute"],
        "Dependence b1 (90% interval)": [interval(m, lo, hi, 2) for m, lo, hi in
                                         zip(summary["dependence_mean"], summary["dependence_lo"],
                                             summary["dependence_hi"], strict=True)],
        "P(b1 > 0)": summary["p_positive"].map(format_probability),
        "Reward b0 (90% interval)": [interval(m, lo, hi, 2) for m, lo, hi in
                                     zip(summary["reward_mean"], summary["reward_lo"],
                                         summary["reward_hi"], strict=True)],
        "Slope sd": summary["slope_sd"].map(lambda v: f"{v:.2f}"),
    })
    n = meta.get("n_conversations")
    excl = meta.get("excluded", {})
    return Table(
        "stated_vs_revealed", "Stated vs revealed preferences",
        "Hierarchical model of the opening score of the top-rated response on its attribute "
        "ratings, with participant slopes b0 + b1 x stated importance (both standardised): b0 = "
        "score points per sd of the attribute rating at average stated importance; b1 = how much "
        "that reward grows per sd of stated importance (posterior mean [90% interval]). "
        + (f"{n:,} conversations; excluded: " + ", ".join(f"{k} {v:,}" for k, v in excl.items()) + "."
           if n else ""),
        summary.reset_index(drop=True), display=display, align="lrrrr")


def score_use_tables(disagreement: pd.DataFrame, raters: pd.DataFrame) -> list[Table]:
    """Inter- vs intra-rater disagreement, and the distribution of expressivity and centrality."""
    d = disagreement
    display = pd.DataFrame({
        "Sites": d["kind"].map({"inter": "Same response, different raters",
                                "intra": "Same response, same rater"}),
        "n": d["n_sites"].map(format_number),
        "Mean range": d["mean_range"].map(lambda v: format_number(v, 1)),
        "SD": d["sd_range"].map(lambda v: format_number(v, 1)),
        "Median [IQR]": [MISSING if not np.isfinite(m) else f"{m:.1f} [{a:.1f}, {b:.1f}]"
                         for m, a, b in zip(d["median_range"], d["q25_range"], d["q75_range"], strict=True)],
    })
    t1 = Table("score_disagreement", "Disagreement on identical responses",
               "Score range on identical response texts rated by different raters (range of the "
               "raters' mean scores) and by the same rater more than once; placeholder responses "
               "(\"EMPTY STRING\") are not sites.", d.reset_index(drop=True), display=display,
               align="lrrrl")
    rows = []
    for phase, sub in raters.groupby("phase", sort=False):
        for col, label in (("expressivity_range", "Expressivity: mean within-turn range"),
                           ("expressivity_sd", "Expressivity: mean within-turn sd"),
                           ("centrality", "Centrality: mean score"),
                           ("distance_from_start", "Distance of the mean from 50")):
            v = sub[col].dropna()
            rows.append({"phase": phase, "measure": label, "raters": len(v), "mean": v.mean(),
                         "sd": v.std(ddof=1), "q25": v.quantile(0.25), "median": v.median(),
                         "q75": v.quantile(0.75)})
    summ = pd.DataFrame(rows)
    disp = pd.DataFrame({
        "Phase": summ["phase"], "Measure": summ["measure"], "Raters": summ["raters"].map(format_number),
        "Mean (SD)": [f"{m:.1f} ({s:.1f})" for m, s in zip(summ["mean"], summ["sd"], strict=True)],
        "Median [IQR]": [f"{m:.1f} [{a:.1f}, {b:.1f}]" for m, a, b in
                         zip(summ["median"], summ["q25"], summ["q75"], strict=True)],
    })
    t2 = Table("score_use_raters", "How raters use the scale",
               "Per rater (opening turn vs later turns): expressivity (mean range and sd of the "
               "scores within an interaction) and centrality (mean score; distance from the "
               "slider's start value 50), summarised over raters.", summ, display=disp, align="llrrl")
    return [t1, t2]
