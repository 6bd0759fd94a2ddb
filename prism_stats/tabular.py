"""The table type of every written table, and its writers: CSV, LaTeX (pandas Styler), Markdown, HTML.

A :class:`Table` holds the *data* (full precision, written to CSV, for re-analysis) and
a *display* frame of formatted strings (for reading). One writer per format, each on a
maintained library:

- LaTeX: ``pandas.io.formats.style.Styler.to_latex`` with booktabs rules; numeric
  columns are siunitx ``S`` columns (aligned on the decimal marker, digits grouped, true
  minus signs), numbers inside text cells (intervals) are ``\\num{}``; a table of more
  than :data:`LONG_ROWS` rows is a ``longtable`` (it breaks across pages, header
  repeated); one wider than the text block is set in landscape (``pdflscape``) and, when
  wider than that too, scaled to fit (``\\resizebox``). The packages are listed in
  :data:`LATEX_PACKAGES`.
- Markdown: ``DataFrame.to_markdown`` (tabulate), a pipe table.
- HTML: ``Styler.to_html``.

:func:`latex_problems` and :func:`markdown_problems` check the written text
structurally, so a malformed table is refused instead of written. The supplement's
table builders are :mod:`prism_stats.report.tables`; the comparators, the regressions
and the rankings write their tables with the same type.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prism_stats._io import write_text_atomic

MISSING = "–"  # shown for values that do not exist (an en dash)
#: LaTeX packages the written tables need (``\\usepackage{...}`` in the document).
LATEX_PACKAGES: tuple[str, ...] = ("booktabs", "siunitx", "longtable", "pdflscape", "graphicx")
#: Tables with more rows than this are ``longtable``s (a float cannot break across pages).
LONG_ROWS = 40
#: Estimated width (in characters of the table font) that fits the text block in portrait
#: and in landscape (a4/letter, 1-inch margins, \\small).
PORTRAIT_CHARS = 95
LANDSCAPE_CHARS = 150


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
        The caption (LaTeX ``\\caption``, Markdown and HTML): what is shown, how it was
        computed and the sources; not the conclusions.
    data : DataFrame
        Full-precision values (the CSV).
    display : DataFrame, optional
        Formatted strings for LaTeX/Markdown/HTML (default: *data* formatted with
        :func:`format_number`).
    align : str, optional
        One alignment letter (``l``, ``r``, ``c``) per display column (default: ``r``
        for numeric-looking columns, ``l`` otherwise).
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

    def __repr__(self) -> str:
        return (f"Table({self.name!r}, {self.title!r}, {len(self.data):,} rows x "
                f"{self.display_frame().shape[1]} columns)")

    def _repr_html_(self) -> str:
        return self.to_html()

    def display_frame(self) -> pd.DataFrame:
        """The display strings (every cell a ``str``)."""
        df = self.display if self.display is not None else self.data
        return df.apply(lambda col: col.map(format_number)).astype(object) if len(df) else df.astype(object)

    def alignment(self) -> str:
        """The column alignment letters."""
        if self.align is not None:
            return self.align
        df = self.display_frame()
        return "".join("r" if _numeric_column(df[c]) else "l" for c in df.columns)

    def to_csv(self) -> str:
        return self.data.to_csv(index=False)

    def to_latex(self) -> str:
        """Booktabs LaTeX (packages: :data:`LATEX_PACKAGES`); see the module docstring."""
        return latex_table(self.display_frame(), align=self.alignment(), caption=self.caption,
                           label=f"tab:{self.name}")

    def to_markdown(self) -> str:
        """A pipe table with the title as heading and the caption below."""
        return (f"### {self.title}\n\n" + markdown_table(self.display_frame(), align=self.alignment())
                + f"\n{self.caption}\n")

    def to_html(self) -> str:
        """An HTML ``<table>`` with the caption (for the index page and notebooks)."""
        return html_table(self.display_frame(), align=self.alignment(), caption=self.caption,
                          uuid=self.name)

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


def coefficient_table(name: str, title: str, coefficients: pd.DataFrame, *, outcome: str,
                      n_obs: int, n_clusters: int, r2: float, r2_adj: float | None = None,
                      note: str = "") -> Table:
    """A regression's coefficients (columns ``term, coef, se, p``) as a :class:`Table`.

    One writer for every regression of the package (the comparators' and the rankings'
    outputs): coefficient with significance stars, clustered SE, p-value ("< 0.001"
    below 0.001), the fit statistics and a multiplicity note in the caption.
    """
    coefs = coefficients.reset_index() if "term" not in coefficients.columns else coefficients

    def stars(p: float) -> str:
        return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""

    display = pd.DataFrame({
        "Term": coefs["term"].astype(str),
        "Coefficient": [_minus(f"{c:.4f}") + stars(p) for c, p in zip(coefs["coef"], coefs["p"], strict=True)],
        "SE": coefs["se"].map(lambda v: f"({v:.4f})"),
        "p": coefs["p"].map(lambda p: "< 0.001" if p < 0.001 else f"{p:.3f}"),
    })
    r2_text = f"R² = {r2:.3f}" + (f" (adjusted {r2_adj:.3f})" if r2_adj is not None else "")
    caption = (f"{title} (outcome: {outcome}). N = {format_number(n_obs)}; participants (clusters) = "
               f"{format_number(n_clusters)}; {r2_text}; OLS with participant-clustered (CR1) standard "
               f"errors. {note}* p < 0.05, ** p < 0.01, *** p < 0.001; the {len(coefs)} p-values are "
               "not adjusted for multiplicity (about 5% of true-null terms are starred by chance).")
    return Table(name, title, caption, coefs, display=display, align="lrrr")


# --- formatting ---------------------------------------------------------------------------------


def format_number(value: Any, digits: int | None = None) -> str:
    """A number as a table would show it; strings pass through, missing values become "–".

    Integers get thousands separators; other numbers get 3 significant digits for small
    magnitudes and one decimal from 10 up (``digits`` fixes the decimals instead).
    Negative numbers carry a minus sign (U+2212).
    """
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return _minus(f"{int(value):,}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return MISSING if math.isnan(x) else ("∞" if x > 0 else "−∞")
    if digits is not None:
        return _minus(f"{x:,.{digits}f}")
    if x == int(x) and abs(x) < 1e15:
        return _minus(f"{int(x):,}")
    ax = abs(x)
    if ax >= 1000:
        text = f"{x:,.0f}"
    elif ax >= 10:
        text = f"{x:.1f}"
    elif ax >= 1:
        text = f"{x:.2f}"
    elif ax >= 0.001:
        text = f"{x:.3f}"
    else:
        text = f"{x:.2g}"
    return _minus(text)


def _minus(text: str) -> str:
    """A true minus sign (U+2212) for a leading hyphen-minus; "-0.0" becomes "0.0"."""
    if text.startswith("-"):
        rest = text[1:]
        return rest if re.fullmatch(r"[0.,]+", rest) else "−" + rest
    return text


def format_probability(p: Any, digits: int = 2) -> str:
    """A probability with *digits* decimals, "< 0.01" / "> 0.99" at the ends (never "0.00")."""
    if p is None or not np.isfinite(p):
        return MISSING
    floor = 10.0 ** -digits
    if p < floor / 2:
        return f"< {floor:.{digits}f}"
    if p > 1 - floor / 2:
        return f"> {1 - floor:.{digits}f}"
    return f"{p:.{digits}f}"


def interval(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``"65.1 [63.0, 67.2]"`` (true minus signs); "–" when the mean is missing."""
    if mean is None or not np.isfinite(mean):
        return MISSING
    return _minus(f"{mean:.{digits}f}") + f" [{_minus(f'{lo:.{digits}f}')}, {_minus(f'{hi:.{digits}f}')}]"


#: A number as the display strings write it (optionally with a comparator and a sign).
_NUMBER = r"(?:[<>≤≥]\s?)?[−\-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][−\-+]?\d+)?"
_NUMBER_CELL = re.compile(rf"^{_NUMBER}$")


def _numeric_column(col: pd.Series) -> bool:
    """Every cell a number (or missing), possibly with an interval or a star after it."""
    pattern = re.compile(rf"^\s*{_NUMBER}(\s*[\[(].*[\])])?\*{{0,3}}$|^{MISSING}$|^−?∞$")
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
    "<": r"\ensuremath{<}",
    ">": r"\ensuremath{>}",
    "–": "--",
    "—": "---",
    "−": r"\ensuremath{-}",
    "±": r"\ensuremath{\pm}",
    "×": r"\ensuremath{\times}",
    "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}",
    "·": r"\ensuremath{\cdot}",
    "∞": r"\ensuremath{\infty}",
    "²": r"\textsuperscript{2}",
    "≈": r"\ensuremath{\approx}",
    "→": r"\ensuremath{\rightarrow}",
    "τ": r"\ensuremath{\tau}",
    "σ": r"\ensuremath{\sigma}",
    "η": r"\ensuremath{\eta}",
    "λ": r"\ensuremath{\lambda}",
    "μ": r"\ensuremath{\mu}",
    "∼": r"\ensuremath{\sim}",
    "ö": r"\"{o}",
    "é": r"\'{e}",
}


def latex_escape(text: Any) -> str:
    """Escape LaTeX special characters and map Unicode symbols to LaTeX (``<=`` becomes ≤)."""
    text = str(text).replace("<=", "≤").replace(">=", "≥")
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _siunitx_number(token: str) -> str:
    """A display number as siunitx input: no grouping commas, ASCII minus, comparator kept."""
    return token.replace(",", "").replace("−", "-").replace("≤", "<=").replace("≥", ">=").replace(" ", "")


def _latex_text_cell(text: str, numbers: bool = True) -> str:
    """Escaped text; with *numbers*, every number set by ``\\num`` (true minus, grouped digits).

    Text columns (labels such as "18-24" or "#1") keep their digits as they are.
    """
    if not numbers:
        return latex_escape(text)
    out, last = [], 0
    for m in re.finditer(rf"(?<![\w.]){_NUMBER.replace('(?:[<>≤≥]\\s?)?', '')}(?![\w.])", text):
        out.append(latex_escape(text[last:m.start()]))
        token = m.group(0)
        option = "[retain-explicit-plus]" if token.startswith("+") else ""
        out.append(rf"\num{option}{{{_siunitx_number(token)}}}")
        last = m.end()
    out.append(latex_escape(text[last:]))
    return "".join(out)


def _s_column(values: list[str]) -> tuple[str, list[str]] | None:
    """An siunitx ``S`` column spec and its cells, when every cell is a plain number."""
    numbers = [v for v in values if v != MISSING]
    if not numbers or not all(_NUMBER_CELL.match(v) for v in numbers):
        return None
    if any("e" in v.lower() for v in numbers):
        return None  # exponents: set as text with \num (S column widths do not cover them)
    parsed = [_siunitx_number(v) for v in numbers]
    comparator = any(p[0] in "<>" for p in parsed)
    bare = [p.lstrip("<>=") for p in parsed]
    sign = any(p[0] in "-+" for p in bare)
    ints = max(len(p.lstrip("-+").split(".")[0]) for p in bare)
    decs = max((len(p.split(".")[1]) if "." in p else 0) for p in bare)
    fmt = ("<" if comparator else "") + ("-" if sign else "") + f"{ints}.{decs}"
    cells = ["{--}" if v == MISSING else _siunitx_number(v) for v in values]
    return f"S[table-format={fmt}]", cells


def _width(df: pd.DataFrame) -> int:
    """Estimated width in characters: the widest cell (or header) of each column plus padding."""
    total = 0
    for c in df.columns:
        cells = [len(str(v)) for v in df[c]] + [len(str(c))]
        total += max(cells) + 2
    return total


def latex_table(df: pd.DataFrame, *, align: str, caption: str, label: str | None = None,
                header: list[str] | None = None) -> str:
    """A booktabs table written by ``Styler.to_latex`` (see the module docstring).

    *header* replaces the escaped column names with ready-made LaTeX (e.g. ``$n$``).
    """
    if len(align) != df.shape[1]:
        raise ValueError(f"align {align!r} has {len(align)} columns, the table {df.shape[1]}")
    spec, columns = [], {}
    for j, (col, a) in enumerate(zip(df.columns, align, strict=True)):
        values = [str(v) for v in df[col]]
        s = _s_column(values) if a == "r" else None
        if s is not None:
            spec.append(s[0])
            columns[j] = s[1]
        else:
            spec.append(a)
            columns[j] = [_latex_text_cell(v, numbers=a != "l") for v in values]
    heads = list(header) if header is not None else [latex_escape(c) for c in df.columns]
    body = pd.DataFrame({i: columns[i] for i in range(df.shape[1])})
    body.columns = [f"\x00{i}" for i in range(df.shape[1])]  # unique placeholders, relabelled below
    long = len(df) > LONG_ROWS
    width = _width(df)
    landscape, scale = width > PORTRAIT_CHARS, width > LANDSCAPE_CHARS and not long
    # relabel_index treats each label as a format string: double the braces of LaTeX markup
    labels = [h.replace("{", "{{").replace("}", "}}") for h in heads]
    styler = body.style.hide(axis="index").relabel_index(labels, axis="columns")
    tex = styler.to_latex(
        column_format="".join(spec), hrules=True, caption=latex_escape(caption), label=label,
        position=None if long else "htbp", position_float=None if long else "centering",
        environment="longtable" if long else None, siunitx=True,
    )
    if long:
        tex = "\\begingroup\\small\n" + tex.replace("Continued on next page", "continued on the next page") \
            + "\\endgroup\n"
    else:
        tex = tex.replace("\\centering\n", "\\centering\n\\small\n", 1)
        if scale:
            tex = re.sub(r"(\\begin\{tabular\}.*?\\end\{tabular\})",
                         lambda m: "\\resizebox{\\linewidth}{!}{%\n" + m.group(1) + "%\n}", tex,
                         count=1, flags=re.DOTALL)
    if landscape:
        tex = "\\begin{landscape}\n" + tex + "\\end{landscape}\n"
    return tex


def _captions(tex: str) -> list[str]:
    """The argument of every ``\\caption{...}`` (matched braces, not the rest of the line)."""
    out = []
    for m in re.finditer(r"\\caption(?:\[[^\]]*\])?\{", tex):
        depth, i = 1, m.end()
        while i < len(tex) and depth:
            if tex[i] in "{}" and tex[i - 1] != "\\":
                depth += 1 if tex[i] == "{" else -1
            i += 1
        out.append(tex[m.end():i - 1])
    return out


def _strip_math(text: str) -> str:
    return re.sub(r"(?<!\\)\$[^$]*(?<!\\)\$", "", text)


def _split_cells(row: str) -> list[str]:
    return re.split(r"(?<!\\)&", row)


_NOT_A_ROW = ("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule", "\\caption", "\\label",
              "\\endfirsthead", "\\endhead", "\\endfoot", "\\endlastfoot", "\\multicolumn")


def latex_problems(tex: str) -> list[str]:
    """Structural problems of booktabs tables in *tex* (empty when well formed).

    Checks: balanced ``table``/``tabular``/``longtable``/``landscape`` environments and
    braces; in every tabular or longtable ``\\toprule``, ``\\midrule`` and
    ``\\bottomrule`` in that order; every row ends with ``\\\\`` and has as many cells as
    the column specification; no unescaped ``_``, ``%``, ``#`` or ``&`` in cell text
    outside math mode.
    """
    problems = []
    for env in ("table", "tabular", "longtable", "landscape"):
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
    blocks = re.findall(r"\\begin\{(tabular|longtable)\}\{([^}]*)\}(.*?)\\end\{\1\}", tex, flags=re.DOTALL)
    if not blocks and re.search(r"\\begin\{(tabular|longtable)\}", tex):
        problems.append("a tabular environment without a column specification")
    for k, (_, spec, body) in enumerate(blocks, start=1):
        plain = re.sub(r"\[[^\]]*\]", "", re.sub(r"@\{[^}]*\}", "", spec))
        n_cols = len(re.findall(r"[lrcXS]|p\{[^}]*\}", plain))
        positions = [body.find(rule) for rule in (r"\toprule", r"\midrule", r"\bottomrule")]
        if min(positions) < 0 or positions != sorted(positions):
            problems.append(f"tabular {k}: needs \\toprule, \\midrule and \\bottomrule in that order")
        for line in body.strip().splitlines():
            line = line.strip()
            if not line or line.startswith(_NOT_A_ROW):
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
    for c in _captions(tex):
        if re.search(r"(?<!\\)[_%#&]", _strip_math(c)):
            problems.append(f"unescaped special character in caption {c[:60]!r}")
    return problems


# --- Markdown and HTML ----------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, *, align: str) -> str:
    """A GitHub-flavoured Markdown pipe table (``DataFrame.to_markdown``, tabulate)."""
    names = {"l": "left", "r": "right", "c": "center"}
    cells = df.astype(str).map(_md_cell)
    cells.columns = [_md_cell(c) for c in df.columns]
    text = cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True,
                             colalign=[names.get(a, "left") for a in align])
    # tabulate pads cells to equal widths; pipe tables do not need it (smaller diffs, files)
    lines = ["| " + " | ".join(c.strip() for c in _split_md(line)) + " |" for line in text.splitlines()]
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines[1] = "|" + "|".join(rule.get(a, "---") for a in align) + "|"
    return "\n".join(lines) + "\n"


def _split_md(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


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


def html_table(df: pd.DataFrame, *, align: str, caption: str, uuid: str = "table") -> str:
    """An HTML table (``Styler.to_html``; cells escaped) with a caption.

    *uuid* makes the element ids stable (the same table gives the same page).
    """
    style = {"l": "left", "r": "right", "c": "center"}
    body = df.astype(str).copy()
    body.columns = [str(c) for c in df.columns]
    if body.columns.has_duplicates:
        raise ValueError(f"table columns must be unique: {list(body.columns)}")
    styler = (body.style.hide(axis="index").set_uuid(re.sub(r"[^A-Za-z0-9_]", "_", uuid))
              .format(escape="html").format_index(escape="html", axis="columns")
              .set_caption(html.escape(caption)))
    for col, a in zip(body.columns, align, strict=True):
        styler = styler.set_properties(subset=[col], **{"text-align": style.get(a, "left")})
    return styler.to_html(doctype_html=False)
