"""Build the supplement tables and figures of the dialogue-diversity analysis.

They are built from a topic result folder (:meth:`prism_stats.topics.TopicAnalysis.save`:
``topics.csv``, ``lpm.csv``, ``model_effects.csv``, ...), so the CLI
(``prism-stats topics``), the pipeline's supplement and a notebook make the same ones:

* tables -- topic sizes and top terms; the regressions' significance counts (HC1 vs
  clustered) and the significant coefficients; the hierarchical model's credible effects;
  where the two disagree; the neighbourhood summary;
* figures -- topic x group prevalence heatmap; coefficient forest (regression vs model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import save_figure
from ..tabular import MISSING, Table, interval
from .figures import _figure, figure_data_problems

#: Groups of the prevalence heatmap (factor labels of the topic design).
HEATMAP_FACTORS: tuple[str, ...] = ("all", "gender", "age", "region", "conversation type")
FOREST_TERMS = 24
#: Levels held by fewer participants are flagged: their clustered SEs are unreliable.
FEW_CLUSTERS = 10


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / name
    return pd.read_csv(path) if path.is_file() else None


def _pp(value: float) -> str:
    return MISSING if not np.isfinite(value) else f"{value:+.2f}"


def _p(value: float) -> str:
    if not np.isfinite(value):
        return MISSING
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def topic_size_table(topics: pd.DataFrame) -> Table:
    """Topic sizes, shares and c-TF-IDF top terms."""
    display = pd.DataFrame({
        "Topic": topics["topic"].astype(int).astype(str), "Label": topics["topic_label"],
        "Size": topics["size"].map(lambda v: f"{int(v):,}"),
        "Share %": (100 * topics["share"]).map(lambda v: f"{v:.1f}"),
        "Top terms": topics["top_terms"].astype(object).where(topics["top_terms"].notna(), "")
        .astype(str).str.split(", ").str[:6]
        .str.join(", ")})
    return Table("topics_sizes", "Topics of the opening prompts",
                 "Topics of the opening prompts (-1: outliers, a class of their own): size, share "
                 "of conversations and the top class-based TF-IDF terms.",
                 topics, display=display, align="llrrl")


def lpm_counts_table(counts: pd.DataFrame, meta: dict[str, Any]) -> Table:
    """Significant regression coefficients by factor, HC1 vs clustered SEs."""
    corr = meta.get("correction") or "none"
    display = pd.DataFrame({
        "Factor": counts["factor"], "Coefficients": counts["coefficients"].map(str),
        "Significant (HC1)": counts["significant_hc1"].map(str),
        "Significant (clustered)": counts["significant_cluster"].map(str)})
    return Table("topics_lpm_counts", "Topic regressions: significant coefficients",
                 f"Linear probability models of topic choice (one per topic, all conversations, "
                 f"outliers 0): coefficients with p < {meta.get('alpha', 0.01)} after the "
                 f"{corr} correction over all topic x term tests, with HC1 standard errors (what "
                 "the study computed) and with standard errors clustered by participant (what it "
                 "intended).", counts, display=display, align="lrrr")


def lpm_table(lpm: pd.DataFrame, meta: dict[str, Any]) -> Table:
    """The regression coefficients (all in the CSV; the significant ones displayed)."""
    c = lpm[lpm["term"] != "Intercept"]
    alpha = meta.get("alpha", 0.01)
    col = "p_cluster_adj" if meta.get("correction") else "p_cluster"
    col_h = "p_hc1_adj" if meta.get("correction") else "p_hc1"
    shown = c[(c[col] < alpha) | (c[col_h] < alpha)].sort_values(["topic", "term"])
    few = shown["participants"].fillna(10**6) < FEW_CLUSTERS if "participants" in shown else False
    display = pd.DataFrame({
        "Topic": shown["topic_label"],
        "Term": shown["term"] + np.where(few, " †", ""),
        "pp": (100 * shown["coef"]).map(_pp),
        "SE HC1": (100 * shown["se_hc1"]).map(lambda v: f"{v:.2f}"),
        "SE clustered": (100 * shown["se_cluster"]).map(lambda v: f"{v:.2f}"),
        "p HC1": shown[col_h].map(_p), "p clustered": shown[col].map(_p)})
    return Table("topics_lpm", "Topic regressions: significant coefficients",
                 f"Topic regressions: coefficients (percentage points) significant at "
                 f"{alpha} under either kind of standard error ({meta.get('correction') or 'no'} "
                 f"correction); †: a level held by fewer than {FEW_CLUSTERS} participants, whose "
                 "clustered SE rests on too few clusters to trust. The CSV holds every topic x "
                 "term with both SEs, raw and corrected p-values and 95% intervals.",
                 lpm, display=display, align="llrrrrr")


def model_effects_table(effects: pd.DataFrame, alpha: float = 0.01) -> Table:
    """The hierarchical model's effects (all in the CSV; the credible ones displayed)."""
    shown = effects[effects["p_direction"] >= 1 - alpha / 2].sort_values(["topic", "term"])
    display = pd.DataFrame({
        "Topic": shown["topic_label"], "Term": shown["term"],
        "pp [90%]": [interval(m, lo, hi, 2) for m, lo, hi in
                     zip(shown["mean"], shown["q05"], shown["q95"], strict=True)],
        "P(direction)": shown["p_direction"].map(lambda v: f"{v:.3f}")})
    return Table("topics_model_effects", "Hierarchical model of topic choice: credible effects",
                 "Hierarchical multinomial model (effects pooled across topics within each factor, "
                 "participant random effects): average effect on the probability of the topic in "
                 "percentage points, posterior mean [90% interval], for effects whose probability "
                 f"of direction is at least {1 - alpha / 2}; the CSV holds every topic x term.",
                 effects, display=display, align="llrr")


def disagreement_table(dis: pd.DataFrame) -> Table:
    """Where the regressions and the hierarchical model disagree."""
    display = pd.DataFrame({
        "Topic": dis["topic_label"], "Term": dis["term"],
        "LPM pp [95%]": [interval(m, lo, hi, 2) for m, lo, hi in
                         zip(dis["lpm_pp"], dis["lpm_low"], dis["lpm_high"], strict=True)],
        "LPM p": dis["lpm_p"].map(_p),
        "Model pp [90%]": [interval(m, lo, hi, 2) for m, lo, hi in
                           zip(dis["model_pp"], dis["model_q05"], dis["model_q95"], strict=True)],
        "P(dir.)": dis["p_direction"].map(lambda v: f"{v:.3f}"),
        "Significant in": np.where(dis["significant_lpm"], "regression", "model")})
    return Table("topics_disagreements", "Regressions vs hierarchical model",
                 "Topic x term effects significant in the regressions (clustered SEs, corrected) "
                 "but not credible in the hierarchical model, or the reverse.",
                 dis, display=display, align="llrrrrl")


def neighbourhood_table(summary: pd.DataFrame) -> Table:
    """Neighbourhoods per threshold and their authors' adjusted entropy."""
    attrs = [c[:-5] for c in summary.columns if c.endswith("_mean") and c != "k_mean"]
    rows = {"Threshold": summary["threshold"].map(lambda v: f"{v:g}"),
            "N": summary["neighbourhoods"].map(str),
            "% prompts": summary["share_prompts"].map(lambda v: f"{v:.2f}"),
            "k mean (max)": [f"{m:.2f} ({int(x)})" if np.isfinite(m) else MISSING
                             for m, x in zip(summary["k_mean"], summary["k_max"], strict=True)]}
    for a in attrs:
        rows[a] = [f"{m:+.2f}±{s:.2f}" if np.isfinite(m) and np.isfinite(s) else MISSING
                   for m, s in zip(summary[f"{a}_mean"], summary[f"{a}_sd"], strict=True)]
    rows["% ≥ expected (99% CI)"] = [
        f"{v:.1f} [{lo:.1f}, {hi:.1f}]" if np.isfinite(v) else MISSING
        for v, lo, hi in zip(summary["intersectional_at_or_above"], summary["intersectional_low"],
                             summary["intersectional_high"], strict=True)]
    return Table("topics_neighbourhoods", "Near-duplicate neighbourhoods",
                 "Near-duplicate prompt neighbourhoods (single link at each cosine distance "
                 "threshold): number, share of prompts, size; per author attribute the adjusted "
                 "entropy (bits, entropy minus its expectation for as many random prompts; mean±sd "
                 "over neighbourhoods); share of neighbourhoods whose intersectional entropy is at "
                 "least expected, with a 99% interval.", summary, display=pd.DataFrame(rows))


def plot_prevalence_heatmap(prev: pd.DataFrame, factors: tuple[str, ...] = HEATMAP_FACTORS):
    """Topic (rows) x group (columns) prevalence: share of the group's conversations (%).

    Colour: the share minus the topic's overall share (percentage points), so a column
    shows what a group talks about more or less than everybody; text: the share.
    """
    prev = prev[prev["factor"].isin(factors)].copy()
    prev["group"] = np.where(prev["factor"] == "all", "all",
                             prev["factor"].str.replace("conversation type", "type") + ": "
                             + prev["level"].astype(str))
    groups = list(dict.fromkeys(prev["group"]))
    order = (prev[prev["group"] == "all"].sort_values("share", ascending=False)["topic_label"]
             .tolist())
    mat = prev.pivot_table(index="topic_label", columns="group", values="share",
                           aggfunc="first").reindex(index=order, columns=groups) * 100
    dev = mat.sub(mat["all"], axis=0).to_numpy()
    vmax = float(np.nanmax(np.abs(dev))) or 1.0
    fig = _figure(2.2 + 0.28 * len(groups), 1.6 + 0.26 * len(order))
    ax = fig.subplots()
    image = ax.imshow(dev, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    m = mat.to_numpy()
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=4.5,
                        color="white" if abs(dev[i, j]) > 0.6 * vmax else "black")
    ax.set_xticks(range(len(groups)), groups, rotation=60, ha="right", fontsize=5.5)
    ax.set_yticks(range(len(order)), [str(t)[:38] for t in order], fontsize=6)
    ax.set_title("Topic prevalence by group (% of the group's conversations)", fontsize=8)
    cbar = fig.colorbar(image, ax=ax, shrink=0.5)
    cbar.set_label("points above (+) / below (-) the overall share", fontsize=6)
    return fig


def plot_coefficient_forest(lpm: pd.DataFrame, effects: pd.DataFrame | None = None,
                            n_terms: int = FOREST_TERMS):
    """The largest regression coefficients (95% intervals, clustered and HC1) beside the
    hierarchical model's effects (90% intervals), in percentage points. Levels held by
    fewer than :data:`FEW_CLUSTERS` participants are left out."""
    c = lpm[lpm["term"] != "Intercept"].copy()
    if "participants" in c:  # levels of a handful of people: unreliable clustered SEs
        c = c[c["participants"].isna() | (c["participants"] >= FEW_CLUSTERS)]
    c["size"] = (c["coef"].abs() / c["se_cluster"]).fillna(0)
    top = c.sort_values("size", ascending=False).head(n_terms).iloc[::-1]
    if effects is not None:
        top = top.merge(effects[["topic", "term", "mean", "q05", "q95"]], on=["topic", "term"],
                        how="left")
    labels = [f"{str(t)[:28]} | {term}" for t, term in zip(top["topic_label"], top["term"],
                                                           strict=True)]
    y = np.arange(len(top))
    fig = _figure(6.4, 1.2 + 0.24 * len(top))
    ax = fig.subplots()
    ax.axvline(0, color="black", lw=0.6)
    ax.hlines(y + 0.15, 100 * top["ci_low_hc1"], 100 * top["ci_high_hc1"], color="lightgrey", lw=2,
              label="regression, 95% (HC1)")
    ax.hlines(y + 0.15, 100 * top["ci_low_cluster"], 100 * top["ci_high_cluster"], color="C0",
              lw=1, label="regression, 95% (clustered)")
    ax.plot(100 * top["coef"], y + 0.15, "o", color="C0", ms=3)
    if effects is not None and top["mean"].notna().any():
        ax.hlines(y - 0.15, top["q05"], top["q95"], color="C3", lw=1,
                  label="hierarchical model, 90%")
        ax.plot(top["mean"], y - 0.15, "s", color="C3", ms=3)
    ax.set_yticks(y, labels, fontsize=5.5)
    ax.set_xlabel("effect on the probability of the topic (percentage points)", fontsize=7)
    ax.set_title(f"The {len(top)} largest topic-regression coefficients (|coef|/SE)", fontsize=8)
    ax.legend(fontsize=6, frameon=False, loc="lower right")
    return fig


@dataclass
class TopicFigure:
    """A figure of the topic analysis: file stem, title, caption and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[], Any]


def topic_supplement(folder: str | Path) -> tuple[list[Table], list[TopicFigure], list[str]]:
    """Tables, figures and the reasons for anything missing, from a topic result folder."""
    folder = Path(folder)
    tables: list[Table] = []
    figures: list[TopicFigure] = []
    skipped: list[str] = []
    meta_path = folder / "topics.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    reg = meta.get("regressions", {})
    topics = _read(folder, "topics.csv")
    if topics is None:
        return [], [], [f"topic tables: no topics.csv in {folder} (run the topics stage)"]
    tables.append(topic_size_table(topics))
    lpm, counts = _read(folder, "lpm.csv"), _read(folder, "lpm_counts.csv")
    if lpm is not None and counts is not None:
        tables += [lpm_counts_table(counts, reg), lpm_table(lpm, reg)]
    else:
        skipped.append("topic regressions: lpm.csv missing")
    effects = _read(folder, "model_effects.csv")
    if effects is not None:
        tables.append(model_effects_table(effects, reg.get("alpha", 0.01)))
        dis = _read(folder, "model_disagreements.csv")
        if dis is not None:
            tables.append(disagreement_table(dis))
    else:
        skipped.append("hierarchical topic model: not fitted (model_effects.csv missing)")
    nb = _read(folder, "neighbourhood_summary.csv")
    if nb is not None:
        tables.append(neighbourhood_table(nb))
    else:
        skipped.append("neighbourhoods: neighbourhood_summary.csv missing")
    prev = _read(folder, "prevalence.csv")
    if prev is not None:
        figures.append(TopicFigure(
            "topics_prevalence", "Topic prevalence by group",
            "Share of each group's conversations about each topic (text, %); colour: the share "
            "minus the topic's overall share (percentage points).",
            lambda: plot_prevalence_heatmap(prev)))
    if lpm is not None:
        figures.append(TopicFigure(
            "topics_forest", "Topic-regression coefficients",
            "The largest topic-regression coefficients (by |coefficient| / clustered SE): 95% "
            "intervals with HC1 (grey) and participant-clustered (blue) standard errors, and the "
            "hierarchical model's average effect with its 90% interval (red), in percentage "
            "points.", lambda: plot_coefficient_forest(lpm, effects)))
    return tables, figures, skipped


def write_topic_supplement(folder: str | Path, out: str | Path, *, formats: tuple[str, ...] =
                           ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Write the topic tables (``out/tables``) and figures (``out/figures``); the paths."""
    out = Path(out)
    tables, figures, _ = topic_supplement(folder)
    paths: list[Path] = []
    for t in tables:
        paths += list(t.write(out / "tables").values())
    for f in figures:
        fig = f.draw()
        problems = figure_data_problems(fig)
        if problems:
            raise ValueError(f"figure {f.name!r}: {'; '.join(problems)}")
        paths += save_figure(fig, out / "figures", f.name, formats=formats, dpi=dpi)
    return paths


__all__ = [
    "TopicFigure",
    "disagreement_table",
    "lpm_counts_table",
    "lpm_table",
    "model_effects_table",
    "neighbourhood_table",
    "plot_coefficient_forest",
    "plot_prevalence_heatmap",
    "topic_size_table",
    "topic_supplement",
    "write_topic_supplement",
]
