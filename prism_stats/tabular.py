"""The table type of every written table, and its writers: CSV, LaTeX booktabs, Markdown, HTML.

A :class:`Table` holds the *data* (full precision, written to CSV, for re-analysis) and
a *display* frame of formatted strings (written to LaTeX, Markdown and HTML, for
reading). :func:`latex_problems` and :func:`markdown_problems` check the written text
structurally, so a malformed table is refused instead of written. The supplement's
table builders are :mod:`prism_stats.report.tables`; the comparators write their tables
with the same type.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prism_stats._io import write_text_atomic

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
