"""Tables of the supplementary materials: one :class:`Table` type, three writers
(CSV, LaTeX booktabs, Markdown; plus HTML for the index page), structural checkers,
and the builders of every supplement table.

A :class:`Table` holds the *data* (full precision, written to CSV, for re-analysis) and
a *display* frame of formatted strings (written to LaTeX, Markdown and HTML, for
reading). The builders take the objects the analysis stages produce (DataFrames read
from the run folder, posterior Datasets), so they work from a notebook as well as from
:func:`prism_stats.report.supplement.build_supplement`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_text_atomic

MISSING = "–"  # shown for values that do not exist (an en dash)


# --- the table type ---------------------------------------------------------------------------


@dataclass
class Table:
    """A supplement table.

    Attributes
    ----------
    name : str
        File stem and LaTeX label suffix (``tab:<name>``); letters, digits, ``_`` and ``-``.
    title : str
        A short heading (index page).
    caption : str
        The caption (LaTeX ``\\caption``, Markdown and HTML).
    data : DataFrame
        Full-precision values (the CSV).
    display : DataFrame, optional
        Formatted strings for LaTeX/Markdown/HTML (default: *data* formatted with
        :func:`format_number`).
    align : str, optional
        One LaTeX alignment letter (``l``, ``r``, ``c``) per display column (default:
        ``r`` for numeric-looking columns, ``l`` otherwise).
    """

    name: str
    title: str
    caption: str
    data: pd.DataFrame
    display: pd.DataFrame | None = None
    align: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", self.name):
            raise ValueError(f"table name {self.name!r}: use letters, digits, '_' and '-' only")
        if self.align is not None and len(self.align) != self.display_frame().shape[1]:
            raise ValueError(f"table {self.name!r}: align {self.align!r} does not match "
                             f"{self.display_frame().shape[1]} columns")

    def display_frame(self) -> pd.DataFrame:
        """The display strings (every cell a ``str``)."""
        df = self.display if self.display is not None else self.data
        return df.apply(lambda col: col.map(format_number)).astype(object) if len(df) else df.astype(object)

    def alignment(self) -> str:
        """The LaTeX column alignment."""
        if self.align is not None:
            return self.align
        df = self.display_frame()
        return "".join("r" if _numeric_column(df[c]) else "l" for c in df.columns)

    def to_csv(self) -> str:
        return self.data.to_csv(index=False)

    def to_latex(self) -> str:
        """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
        return latex_table(self.display_frame(), align=self.alignment(), caption=self.caption,
                           label=f"tab:{self.name}")

    def to_markdown(self) -> str:
        """A pipe table with the title as heading and the caption below."""
        return (f"### {self.title}\n\n" + markdown_table(self.display_frame(), align=self.alignment())
                + f"\n{self.caption}\n")

    def to_html(self) -> str:
        """An HTML ``<table>`` with the caption (for the index page)."""
        return html_table(self.display_frame(), align=self.alignment(), caption=self.caption)

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``<name>.csv``, ``<name>.tex`` and ``<name>.md`` atomically.

        The LaTeX and Markdown are checked structurally first (:func:`latex_problems`,
        :func:`markdown_problems`); a malformed table raises instead of being written.
        """
        tex, md = self.to_latex(), self.to_markdown()
        problems = latex_problems(tex) + markdown_problems(md)
        if problems:
            raise ValueError(f"table {self.name!r} is malformed: {'; '.join(problems)}")
        folder = Path(folder)
        return {
            "csv": write_text_atomic(folder / f"{self.name}.csv", self.to_csv()),
            "tex": write_text_atomic(folder / f"{self.name}.tex", tex),
            "md": write_text_atomic(folder / f"{self.name}.md", md),
        }


# --- formatting ---------------------------------------------------------------------------------


def format_number(value: Any, digits: int | None = None) -> str:
    """A number as a table would show it; strings pass through, missing values become "–".

    Integers get thousands separators; other numbers get 3 significant digits for small
    magnitudes and one decimal from 10 up (``digits`` fixes the decimals instead).
    """
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return MISSING if math.isnan(x) else ("∞" if x > 0 else "-∞")
    if digits is not None:
        return f"{x:,.{digits}f}"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    if ax >= 0.001:
        return f"{x:.3f}"
    return f"{x:.2g}"


def interval(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``"65.1 [63.0, 67.2]"``; "–" when the mean is missing."""
    if mean is None or not np.isfinite(mean):
        return MISSING
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _numeric_column(col: pd.Series) -> bool:
    pattern = re.compile(r"^[\s+\-−]*[\d,.]+(\s*[\[(].*[\])])?\*?$|^–$|^∞$")
    values = [v for v in col.astype(str) if v and v != MISSING]
    return bool(values) and all(pattern.match(v) for v in values)


# --- LaTeX --------------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "–": "--",
    "—": "---",
    "−": "$-$",
    "±": r"$\pm$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "·": r"$\cdot$",
    "∞": r"$\infty$",
}


def latex_escape(text: Any) -> str:
    """Escape LaTeX special characters (and map a few Unicode symbols to LaTeX)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_table(df: pd.DataFrame, *, align: str, caption: str, label: str | None = None,
                header: Sequence[str] | None = None) -> str:
    """A booktabs table: ``\\toprule``, header, ``\\midrule``, rows, ``\\bottomrule``.

    *header* replaces the escaped column names with ready-made LaTeX (e.g. ``$n$``).
    """
    if len(align) != df.shape[1]:
        raise ValueError(f"align {align!r} has {len(align)} columns, the table {df.shape[1]}")
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small", rf"\caption{{{latex_escape(caption)}}}"]
    if label:
        lines.append(rf"\label{{{label}}}")
    head = list(header) if header is not None else [latex_escape(c) for c in df.columns]
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for row in df.itertuples(index=False):
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _strip_math(text: str) -> str:
    return re.sub(r"(?<!\\)\$[^$]*(?<!\\)\$", "", text)


def _split_cells(row: str) -> list[str]:
    return re.split(r"(?<!\\)&", row)


def latex_problems(tex: str) -> list[str]:
    """Structural problems of booktabs tables in *tex* (empty when well formed).

    Checks: balanced ``table``/``tabular`` environments and braces; in every tabular
    ``\\toprule``, ``\\midrule`` and ``\\bottomrule`` in that order; every row ends with
    ``\\\\`` and has as many cells as the column specification; no unescaped ``_``,
    ``%``, ``#`` or ``&`` in cell text outside math mode.
    """
    problems = []
    for env in ("table", "tabular"):
        n_begin = len(re.findall(rf"\\begin\{{{env}\}}", tex))
        n_end = len(re.findall(rf"\\end\{{{env}\}}", tex))
        if n_begin != n_end:
            problems.append(f"{n_begin} \\begin{{{env}}} but {n_end} \\end{{{env}}}")
    depth = 0
    for ch_index, ch in enumerate(tex):
        if ch in "{}" and ch_index > 0 and tex[ch_index - 1] == "\\":
            continue
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if depth < 0:
            problems.append("unbalanced braces (a '}' closes nothing)")
            break
    if depth > 0:
        problems.append(f"unbalanced braces ({depth} '{{' left open)")
    blocks = re.findall(r"\\begin\{tabular\}\{([^}]*)\}(.*?)\\end\{tabular\}", tex, flags=re.DOTALL)
    if not blocks and "tabular" in tex:
        problems.append("a tabular environment without a column specification")
    for k, (spec, body) in enumerate(blocks, start=1):
        n_cols = len(re.findall(r"[lrcX]|p\{[^}]*\}", re.sub(r"@\{[^}]*\}", "", spec)))
        positions = [body.find(rule) for rule in (r"\toprule", r"\midrule", r"\bottomrule")]
        if min(positions) < 0 or positions != sorted(positions):
            problems.append(f"tabular {k}: needs \\toprule, \\midrule and \\bottomrule in that order")
        for line in body.strip().splitlines():
            line = line.strip()
            if not line or line.startswith(("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule")):
                continue
            if not line.endswith(r"\\"):
                problems.append(f"tabular {k}: row does not end with \\\\: {line[:60]!r}")
                continue
            cells = _split_cells(line[:-2])
            if len(cells) != n_cols:
                problems.append(f"tabular {k}: {len(cells)} cells but {n_cols} columns: {line[:60]!r}")
            text = _strip_math(line[:-2])
            bad = re.findall(r"(?<!\\)[_%#]", text)
            if bad:
                problems.append(f"tabular {k}: unescaped {''.join(sorted(set(bad)))} in {line[:60]!r}")
    caption = re.findall(r"\\caption\{(.*)\}", tex)
    for c in caption:
        if re.search(r"(?<!\\)[_%#&]", _strip_math(c)):
            problems.append(f"unescaped special character in caption {c[:60]!r}")
    return problems


# --- Markdown and HTML ----------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, *, align: str) -> str:
    """A GitHub-flavoured Markdown pipe table."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_md_cell(c) for c in df.columns) + " |",
             "|" + "|".join(marks.get(a, "---") for a in align) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def markdown_problems(md: str) -> list[str]:
    """Structural problems of the pipe tables in *md* (rows with a wrong cell count)."""
    problems = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|(:?-+:?\|)+", lines[i + 1]):
            n = lines[i + 1].count("|") - 1
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                cells = len(re.findall(r"(?<!\\)\|", lines[j])) - 1
                if cells != n:
                    problems.append(f"markdown row {j + 1}: {cells} cells, header has {n}")
                j += 1
            i = j
        else:
            i += 1
    return problems


def html_table(df: pd.DataFrame, *, align: str, caption: str) -> str:
    """An HTML table (escaped) with a caption."""
    style = {"l": "left", "r": "right", "c": "center"}
    head = "".join(f"<th style=\"text-align:{style.get(a, 'left')}\">{html.escape(str(c))}</th>"
                   for c, a in zip(df.columns, align, strict=True))
    rows = []
    for row in df.itertuples(index=False):
        rows.append("<tr>" + "".join(
            f"<td style=\"text-align:{style.get(a, 'left')}\">{html.escape(str(v))}</td>"
            for v, a in zip(row, align, strict=True)) + "</tr>")
    return (f"<table>\n<caption>{html.escape(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


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
        "LLM-usage tables. \"Prefer not to say\" is its own level.",
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
        "mean number of conversations, rated LLMs and turns.",
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
    df["passes"] = (df["max_rhat"] <= rhat_max) & (df["min_ess_bulk"] >= ess_min) & (df["min_ess_tail"] >= ess_min)
    display = pd.DataFrame({
        "Parameter": df["variable"],
        "Size": df["size"].map(lambda v: f"{int(v):,}"),
        "max R-hat": df["max_rhat"].map(lambda v: format_number(v, 3)),
        "min ESS bulk": df["min_ess_bulk"].map(lambda v: format_number(v, 0)),
        "min ESS tail": df["min_ess_tail"].map(lambda v: format_number(v, 0)),
        "Gate": df["passes"].map(lambda v: "pass" if v else "FAIL"),
    })
    bfmi = diagnostics.get("bfmi") or []
    verdict = "passes" if diagnostics.get("passed") else "fails"
    caption = (f"Convergence of the rating model: worst R-hat (rank-normalised) and bulk/tail ESS per "
               f"parameter over {diagnostics.get('n_chains')} chains x {diagnostics.get('n_draws')} draws. "
               f"The strict gate (R-hat <= {rhat_max}, ESS >= {ess_min:.0f}, no divergence) {verdict}; "
               f"{diagnostics.get('divergences', 0)} divergent transitions; E-BFMI per chain "
               f"{', '.join(f'{b:.2f}' for b in bfmi) or 'n/a'}.")
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
        cols[f"{c.upper()} P(best)"] = s["p_best"].map(lambda v: format_number(v, 2)).tolist()
    data = sub.loc[:, [c for c in ("country", "llm", "mean", "sd", "q05", "q50", "q95", "p_best",
                                   "raw_mean", "rep_mean") if c in sub.columns]]
    return Table(
        "mrp_llm", "MRP estimates per LLM",
        "Population estimates per LLM (MRP): the expected opening-turn rating (1-100) of a new "
        "adult of the country, census-weighted over age x sex x ethnicity cells; posterior mean "
        "[90% interval] and the posterior probability of being the best LLM. Sorted by the "
        f"{countries[0].upper()} estimate.",
        data.reset_index(drop=True), display=pd.DataFrame(cols),
        align="l" + "rr" * len(countries))


GROUP_LABELS: dict[str, str] = {
    "all": "All", "male": "Male", "nonmale": "Non-male", "white": "White",
    "nonwhite": "Non-white", "under45": "Under 45", "over45": "45+",
}


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
        f"{country.upper()}: MRP estimates per LLM for census subgroups, posterior mean [90% "
        "interval] of the expected opening-turn rating; * marks the LLM with the highest mean in "
        "each group.",
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
            cols[lev] = [f"{m:+.2f}" + ("*" if (lo > 0 or hi < 0) else "")
                         for m, lo, hi in zip(s["mean"], s["q05"], s["q95"], strict=True)]
        tables.append(Table(
            f"llm_x_{f}", f"LLM x {f} effects",
            f"LLM x {f} varying effects (points on the rating scale, deviations from the LLM's "
            f"main effect and the {f} main effect): posterior means; * marks a 90% interval that "
            "excludes zero. Full summaries (sd, interval, P(>0)) in the CSV.",
            sub.reset_index(drop=True), display=pd.DataFrame(cols), align="l" + "r" * len(levels)))
    return tables


RULE_DIGITS: dict[str, int] = {"mean": 1, "chosen": 3, "veto": 3}
TARGET_LABELS: dict[str, str] = {"all": "All", "nonmale": "Non-male", "nonwhite": "Non-white",
                                 "under45": "Under 45"}
POOL_LABELS: dict[str, str] = {"representative": "Representative", "male": "Male", "white": "White",
                               "over45": "45+"}


def welfare_table(summary: pd.DataFrame, country: str, method: str) -> Table:
    """Welfare by jury scheme and target (``summarise_welfare`` output of one country)."""
    sub = summary.loc[summary["country"] == country].copy()
    targets = list(dict.fromkeys(sub["target"]))
    keys = sub.loc[:, ["rule", "pool", "size"]].drop_duplicates()
    rows = []
    for r in keys.itertuples(index=False):
        d = RULE_DIGITS.get(r.rule, 3)
        row = {"Rule": r.rule, "Pool": POOL_LABELS.get(r.pool, r.pool), "Size": str(int(r.size))}
        for t in targets:
            s = sub.loc[(sub["rule"] == r.rule) & (sub["pool"] == r.pool) & (sub["size"] == r.size)
                        & (sub["target"] == t)].iloc[0]
            row[TARGET_LABELS.get(t, t)] = interval(s["welfare_mean"], s["welfare_q05"], s["welfare_q95"], d)
        s_all = sub.loc[(sub["rule"] == r.rule) & (sub["pool"] == r.pool) & (sub["size"] == r.size)
                        & (sub["target"] == targets[0])].iloc[0]
        row[f"P(optimal), {TARGET_LABELS.get(targets[0], targets[0])}"] = f"{s_all['p_optimal']:.2f}"
        rows.append(row)
    label = "model-based (posterior draws x juries)" if method == "model" else \
        "design-based (the original study's juries, resampled raters)"
    return Table(
        f"welfare_{method}_{country}", f"Welfare by scheme, {country.upper()} ({method}-based)",
        f"{country.upper()}, {label}: welfare of the LLM a jury picks for each target population, "
        "mean [5%, 95% quantiles] over replicates; rule mean: mean rating (1-100); chosen: chosen "
        "share; veto: 1 - veto rate. P(optimal): share of juries that pick the best LLM for the "
        "first target.",
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
        row = {"Rule": r.rule, "Pool": POOL_LABELS.get(r.pool, r.pool), "Size": str(int(r.size))}
        for t in targets:
            s = sub.loc[(sub["rule"] == r.rule) & (sub["pool"] == r.pool) & (sub["size"] == r.size)
                        & (sub["target"] == t)].iloc[0]
            row[TARGET_LABELS.get(t, t)] = (interval(s["gap_mean"], s["gap_q05"], s["gap_q95"], d)
                                            + f" ({s[p_col]:.2f})")
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
        f"welfare_gaps_{method}_{country}", f"Exclusion gaps, {country.upper()} ({method}-based)",
        f"{country.upper()}, {method}-based exclusion gaps: " + what,
        sub.reset_index(drop=True), display=pd.DataFrame(rows), align="llr" + "r" * len(targets))


def comparison_tables(compare: Mapping[str, pd.DataFrame],
                      ranks: Mapping[str, pd.DataFrame],
                      weights: Mapping[str, Mapping[str, Any]] | None = None) -> list[Table]:
    """Raw vs REP vs raked vs MRP per LLM (one table per country) and the rank correlations.

    *compare*: ``{country: compare_<c>.csv}``; *ranks*: ``{country: compare_<c>_ranks.csv}``;
    *weights*: ``{country: compare_<c>_weights.json}`` (for the caption).
    """
    tables = []
    for c, t in compare.items():
        t = t.sort_values("mrp_mean", ascending=False) if t["mrp_mean"].notna().any() else t

        def mean_se(m: float, s: float) -> str:
            if not np.isfinite(m):
                return MISSING
            return f"{m:.1f} ({s:.1f})" if np.isfinite(s) else f"{m:.1f}"

        def rank(v: float) -> str:
            return MISSING if not np.isfinite(v) else str(int(v))

        display = pd.DataFrame({
            "LLM": t["llm"],
            "n": t["n_ratings"].map(lambda v: f"{int(v):,}"),
            "Raw": [mean_se(m, s) for m, s in zip(t["raw_mean"], t["raw_se"], strict=True)],
            "REP": [mean_se(m, s) for m, s in zip(t["rep_mean"], t["rep_se"], strict=True)],
            "Raked": [mean_se(m, s) for m, s in zip(t["raked_mean"], t["raked_se"], strict=True)],
            "MRP": [interval(m, lo, hi) for m, lo, hi in zip(t["mrp_mean"], t["mrp_q05"], t["mrp_q95"], strict=True)],
            **{f"rank {e}": t[f"rank_{e}"].map(rank) for e in ("raw", "rep", "raked", "mrp")},
        })
        w = (weights or {}).get(c, {}).get("weighting", {})
        extra = ""
        if w:
            extra = (f" Raking margins: {', '.join(w.get('margins', []))}; n = {w.get('n')}, Kish "
                     f"design effect {float(w.get('kish_deff', float('nan'))):.2f}.")
        tables.append(Table(
            f"compare_{c}", f"Raw vs REP vs raked vs MRP, {c.upper()}",
            f"{c.upper()}: mean opening-turn rating per LLM under four estimators: raw mean of "
            "residents, REP-sample mean and raked mean (SE clustered by participant), MRP posterior "
            "mean [90% interval]; rank 1 = highest." + extra,
            t.reset_index(drop=True), display=display, align="lrrrrr" + "r" * 4))
    rows = []
    for c, r in ranks.items():
        r = r.copy()
        r.insert(0, "country", c)
        rows.append(r)
    if rows:
        rc = pd.concat(rows, ignore_index=True)
        display = pd.DataFrame({
            "Country": rc["country"].str.upper(),
            "Estimators": [f"{a} vs {b}" for a, b in zip(rc["estimator_a"], rc["estimator_b"], strict=True)],
            "LLMs": rc["n_llms"].map(lambda v: str(int(v))),
            "Spearman": rc["spearman"].map(lambda v: format_number(v, 3)),
            "Kendall": rc["kendall"].map(lambda v: format_number(v, 3)),
        })
        tables.append(Table(
            "compare_rank_correlations", "Rank agreement between estimators",
            "Agreement of the LLM rankings under the four estimators: Spearman rank correlation and "
            "Kendall's tau-b over the LLMs with both estimates.",
            rc, display=display, align="llrrr"))
    return tables


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
        "Balance of the raking weights: census share, unweighted and raked sample share (percent) "
        "of every margin category, and the absolute standardised difference (ASD) from the "
        "census before and after raking.",
        data, display=display, align="lllrrrrr")


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
        "P(best) of true best": data["p_best_true_best"].map(lambda v: f"{v:.2f}"),
    })
    return Table(
        "recovery", "Recovery of the synthetic truth",
        "Synthetic data: MRP estimates against the true population means of the generating "
        "process. Per country and group: share of the LLMs whose 90% interval covers the truth, "
        "mean absolute error (rating points), the truly best and the estimated best LLM, and the "
        "posterior probability that the truly best LLM is best.",
        data, display=display, align="llrrllr")
