"""Table writers (CSV, LaTeX booktabs, Markdown), their structural checkers, and the
supplement's table builders on hand-made inputs with known answers."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from prism_stats.report import (
    Table,
    descriptives_tables,
    effect_summaries,
    latex_escape,
    latex_problems,
    llm_demographic_tables,
    markdown_problems,
    mrp_llm_table,
    mrp_subgroup_table,
    recovery_table,
    welfare_gaps_table,
    welfare_table,
)
from prism_stats.report.tables import format_number
from prism_stats.tabular import LATEX_PACKAGES, format_probability, interval


def nasty_table() -> Table:
    data = pd.DataFrame({
        "name": ["a_b", "50% & more", "#1 {x}", "cost $5", "back\\slash", "tilde~hat^"],
        "value": [1.23456, 1234567.0, np.nan, -0.00012, 12.0, 3],
    })
    return Table("nasty_table", "Nasty", "Escapes: 5% of R&D_x #1 $2 {y}", data)


# --- LaTeX -----------------------------------------------------------------------------------


def test_latex_escape_covers_the_specials():
    assert latex_escape("a_b%c&d#e$f{g}h~i^j\\k") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")
    assert latex_escape("–") == "--"


def test_written_latex_is_structurally_valid_with_special_characters(tmp_path):
    t = nasty_table()
    tex = t.to_latex()
    assert latex_problems(tex) == []
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"a\_b" in tex and r"50\% \& more" in tex and r"\#1 \{x\}" in tex
    assert r"\caption{Escapes: 5\% of R\&D\_x \#1 \$2 \{y\}}" in tex
    # numbers: an siunitx S column (grouping by siunitx, an ASCII minus that siunitx sets as
    # a true minus), missing values as braced text
    assert r"S[table-format=-7.5]" in tex and "1234567 \\\\" in tex and "& -0.00012" in tex
    assert "{--}" in tex
    assert r"\label{tab:nasty_table}" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == len(t.data)
    paths = t.write(tmp_path)
    assert pd.read_csv(paths["csv"]).shape == t.data.shape
    assert paths["tex"].read_text() == tex


@pytest.mark.parametrize(
    ("broken", "needle"),
    [
        (lambda s: s.replace(r"\bottomrule", ""), "toprule, \\midrule and \\bottomrule"),
        (lambda s: s.replace(r"\end{tabular}", "", 1), "\\begin{tabular} but"),
        (lambda s: s.replace(r"a\_b", "a_b"), "unescaped _"),
        (lambda s: s.replace(r"50\% \& more", r"50% \& more"), "unescaped %"),
        (lambda s: s.replace(r"50\% \& more", r"50\% & more"), "3 cells but 2 columns"),
        (lambda s: s.replace(r"1.23 \\", "1.23"), "does not end with"),
        (lambda s: s.replace(r"\caption{Escapes: 5\%", r"\caption{Escapes: 5%"), "caption"),
        (lambda s: s.replace(r"\{x\}", r"{x"), "unbalanced braces"),
    ],
)
def test_latex_checker_finds_each_defect(broken, needle):
    tex = nasty_table().to_latex()
    damaged = broken(tex)
    assert damaged != tex
    problems = latex_problems(damaged)
    assert any(needle in p for p in problems), problems


def test_invalid_tables_are_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match="align"):
        Table("bad2", "Bad", "c", pd.DataFrame({"a": [1], "b": [2]}), align="l")
    with pytest.raises(ValueError, match="letters, digits"):
        Table("bad name", "Bad", "c", pd.DataFrame({"a": [1]}))
    t = nasty_table()
    broken = t.to_latex().replace(r"\bottomrule", "")
    t.to_latex = lambda: broken  # a writer bug must not reach the supplement
    with pytest.raises(ValueError, match="malformed"):
        t.write(tmp_path)
    assert list(tmp_path.iterdir()) == []


def compile_latex(tables: list[str], folder) -> str:
    """Compile *tables* in one document with the packages the writer asks for; the log."""
    doc = ("\\documentclass{article}\n\\usepackage[margin=1in]{geometry}\n"
           + "".join(f"\\usepackage{{{p}}}\n" for p in LATEX_PACKAGES)
           + "\\begin{document}\n" + "\n".join(tables) + "\n\\end{document}\n")
    (folder / "t.tex").write_text(doc)
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                         check=False, cwd=folder, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]
    return (folder / "t.log").read_text(errors="replace")


NEEDS_PDFLATEX = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="pdflatex is not installed (CI installs TeX Live from Debian "
                                           "in .ci/run: texlive-latex-base, -recommended, -science)")


@NEEDS_PDFLATEX
def test_latex_compiles_long_wide_and_signed_tables_without_overfull_boxes(tmp_path):
    long = Table("long", "Long", "A long table.", pd.DataFrame({
        "row": [f"row {i}" for i in range(90)], "value": np.linspace(-5, 5, 90),
        "interval": [interval(v, v - 1, v + 1) for v in np.linspace(-5, 5, 90)]}))
    wide = Table("wide", "Wide", "A wide table.", pd.DataFrame(
        {f"estimate {i}": [interval(60.0 + i, 58.0, 62.0)] for i in range(14)}))
    probs = Table("probs", "Probabilities", "p <= 0.05.", pd.DataFrame(
        {"p": [format_probability(x) for x in (0.0, 0.004, 0.5, 0.999)]}))
    assert r"\begin{longtable}" in long.to_latex() and r"\begin{landscape}" in wide.to_latex()
    log = compile_latex([nasty_table().to_latex(), long.to_latex(), wide.to_latex(), probs.to_latex()],
                        tmp_path)
    assert "Overfull \\hbox" not in log


# --- Markdown and formatting -----------------------------------------------------------------


def test_markdown_is_well_formed_and_pipes_are_escaped():
    t = Table("pipes", "Pipes", "cap", pd.DataFrame({"a": ["x|y", "z"], "b": [1, 2]}))
    md = t.to_markdown()
    assert markdown_problems(md) == []
    assert "x\\|y" in md
    assert "|:---|---:|" in md  # text left, numbers right
    assert markdown_problems(md.replace("| z | 2 |", "| z | 2 | 3 |")) != []


@pytest.mark.parametrize(
    ("value", "text"),
    [(1234567, "1,234,567"), (65.123, "65.1"), (1.2345, "1.23"), (0.01234, "0.012"),
     (np.nan, "–"), (None, "–"), (3.0, "3"), (True, "yes"), ("abc", "abc"), (0.0001234, "0.00012")],
)
def test_format_number(value, text):
    assert format_number(value) == text


# --- builders ----------------------------------------------------------------------------------


def poststrat_summary() -> pd.DataFrame:
    rows = []
    for c, shift in (("uk", 0.0), ("us", 1.0)):
        for g in ("all", "male"):
            for llm, m in (("a", 60.0), ("b", 65.0), ("c", 62.0)):
                mean = m + shift + (3.0 if (g == "male" and llm == "a") else 0.0)
                rows.append({"country": c, "group": g, "llm": llm, "mean": mean, "sd": 1.0,
                             "q05": mean - 2, "q50": mean, "q95": mean + 2, "p_best": 0.5,
                             "raw_mean": mean - 1, "rep_mean": np.nan})
    return pd.DataFrame(rows)


def test_mrp_llm_table_orders_by_the_first_country_and_shows_intervals():
    t = mrp_llm_table(poststrat_summary())
    d = t.display_frame()
    assert list(d["LLM"]) == ["b", "c", "a"]
    assert d.loc[0, "UK (90% interval)"] == "65.0 [63.0, 67.0]"
    assert d.loc[0, "US (90% interval)"] == "66.0 [64.0, 68.0]"
    assert len(t.data) == 6 and set(t.data["country"]) == {"uk", "us"}
    assert latex_problems(t.to_latex()) == []


def test_subgroup_table_marks_each_groups_best():
    d = mrp_subgroup_table(poststrat_summary(), "uk").display_frame().set_index("LLM")
    assert d.loc["b", "All"].endswith("*") and not d.loc["a", "All"].endswith("*")
    assert d.loc["a", "Male"] == "63.0 [61.0, 65.0]"  # 60 + 3, and b (65) is still best
    assert d.loc["b", "Male"].endswith("*")


def test_recovery_table_counts_coverage_and_errors():
    summary = poststrat_summary()
    truth = summary[["country", "group", "llm"]].copy()
    truth["mean"] = summary["mean"] + np.where(summary["llm"] == "c", 5.0, 1.0)  # c is missed
    data = recovery_table(truth, summary).data.set_index(["country", "group"])
    row = data.loc[("uk", "all")]
    assert row["coverage_90"] == pytest.approx(2 / 3)
    assert row["mae"] == pytest.approx((1 + 1 + 5) / 3)
    assert row["true_best"] == "c" and row["estimated_best"] == "b"  # c: 62 + 5 = 67 > 66


def test_effect_summaries_are_exact_on_known_draws():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 500, 3, 2))
    values[:, :, 0, 0] = 2.0 + 0 * values[:, :, 0, 0]  # constant draws
    post = xr.Dataset({"llm_age": (("chain", "draw", "llm", "age"), values)},
                      coords={"llm": ["a", "b", "c"], "age": ["18-24", "65+"]})
    eff = effect_summaries(post)
    row = eff.query("llm == 'a' and level == '18-24'").iloc[0]
    assert row["mean"] == pytest.approx(2.0) and row["sd"] == pytest.approx(0.0)
    assert row["p_positive"] == 1.0 and row["q05"] == pytest.approx(2.0)
    other = eff.query("llm == 'b' and level == '65+'").iloc[0]
    assert other["mean"] == pytest.approx(values[:, :, 1, 1].mean())
    assert other["q95"] == pytest.approx(np.quantile(values[:, :, 1, 1], 0.95))
    (table,) = llm_demographic_tables(eff, ["c", "b", "a"])
    d = table.display_frame()
    assert list(d["LLM"]) == ["c", "b", "a"]
    assert d.set_index("LLM").loc["a", "18-24"] == "+2.00*"


def test_descriptives_participant_table():
    frame = pd.DataFrame([
        {"section": "overview", "quantity": "participants", "level": "", "value": 10.0, "percent": np.nan},
        {"section": "participants", "quantity": "age", "level": "18-24", "value": 4.0, "percent": 40.0},
        {"section": "participants", "quantity": "age", "level": "25-34", "value": 6.0, "percent": 60.0},
        {"section": "participants", "quantity": "gender", "level": "Male", "value": 10.0, "percent": 100.0},
        {"section": "participants", "quantity": "birth_country", "level": "GBR", "value": 10.0, "percent": 100.0},
    ])
    people, overview = descriptives_tables(frame)
    d = people.display_frame()
    assert list(d["Characteristic"]) == ["Age", "", "Gender"]  # birth country is not in the table
    assert list(d["%"]) == ["40.0", "60.0", "100.0"]
    assert "n = 10" in people.caption
    assert overview.display_frame().iloc[0].tolist() == ["Participants", "10"]


def welfare_frames():
    summary = pd.DataFrame([
        {"country": "uk", "rule": "mean", "pool": p, "size": 100, "target": t,
         "welfare_mean": 65.0 + i, "welfare_q05": 60.0, "welfare_q95": 70.0, "regret_mean": 1.0,
         "p_optimal": 0.25}
        for i, (p, t) in enumerate([(p, t) for p in ("representative", "male") for t in ("all", "nonmale")])
    ])
    gaps = pd.DataFrame([
        {"country": "uk", "rule": "mean", "target": t, "pool": "male", "size": 100, "gap_mean": -1.5,
         "gap_q05": -3.0, "gap_q95": 0.5, "p_worse": 0.8, "n_pairs": 100} for t in ("all", "nonmale")
    ])
    return summary, gaps


def test_welfare_tables():
    summary, gaps = welfare_frames()
    d = welfare_table(summary, "uk", "design").display_frame()
    assert list(d.columns) == ["Rule", "Pool", "Size", "All", "Non-male", "P(optimal), All"]
    assert d.iloc[1]["Non-male"] == "68.0 [60.0, 70.0]"
    g = welfare_gaps_table(gaps, "uk", "design")
    assert g.display_frame().iloc[0]["All"] == "−1.50 [−3.00, 0.50] (0.80)"  # true minus signs
    assert "pairs of juries" in g.caption
    expected = gaps.drop(columns=["p_worse", "n_pairs"]).assign(p_negative=0.9)
    e = welfare_gaps_table(expected, "uk", "model")
    assert e.display_frame().iloc[0]["All"].endswith("(0.90)")
    assert "posterior" in e.caption


def test_latex_headers_with_markup_are_written_as_given():
    """Column labels are passed through Styler.relabel_index, which formats them: LaTeX
    braces (``≥`` -> ``\\ensuremath{\\geq}``, ``~`` -> ``\\textasciitilde{}``) stay as written."""
    from prism_stats.tabular import latex_table

    df = pd.DataFrame({"share ≥ 0.5": ["a"], "n ~ 10 {x}": ["b"]})
    tex = latex_table(df, align="ll", caption="Headers with markup")
    assert r"share \ensuremath{\geq} 0.5" in tex
    assert r"n \textasciitilde{} 10 \{x\}" in tex
