"""Short ``repr`` and Jupyter HTML of result objects (no multi-kilobyte dumps of tables).

:class:`ResultDisplay` is a mixin for result dataclasses: ``repr()`` names each field
with its shape (``battles=DataFrame 4,210 x 12``), and ``_repr_html_`` shows the same
facts with the first rows of each table folded under a ``<details>`` element, so a
result shown as a notebook cell's value is one screen, not 30,000 characters.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

#: The longest ``repr`` of a result object.
MAX_REPR = 300
#: Rows of each table shown in the HTML view.
HTML_ROWS = 5


def describe(value: Any) -> str:
    """A few words on *value*: its type and shape, never its content in bulk."""
    import pandas as pd
    import xarray as xr

    if value is None:
        return "None"
    if isinstance(value, pd.DataFrame):
        return f"DataFrame {len(value):,} x {value.shape[1]}"
    if isinstance(value, pd.Series):
        return f"Series {len(value):,}"
    if isinstance(value, (xr.Dataset, xr.DataArray)):
        dims = ", ".join(f"{d}: {n:,}" for d, n in value.sizes.items())
        return f"{type(value).__name__} ({dims})"
    if isinstance(value, (dict, list, tuple, set)):
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, (int, float, str, bool)):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return type(value).__name__


def _fields(obj: Any) -> list[tuple[str, Any]]:
    if dataclasses.is_dataclass(obj):
        return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr]
    return list(vars(obj).items())


def short_repr(obj: Any, fields: list[tuple[str, Any]] | None = None) -> str:
    """``Name(field=description, ...)``, at most :data:`MAX_REPR` characters."""
    parts = ", ".join(f"{k}={describe(v)}" for k, v in (fields if fields is not None else _fields(obj)))
    text = f"{type(obj).__name__}({parts})"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR - 4] + "...)"


def html_view(title: str, facts: list[tuple[str, Any]], tables: dict[str, Any] | None = None) -> str:
    """A heading, a two-column table of facts, and the head of each table folded away."""
    import pandas as pd

    e = html.escape
    rows = "".join(f"<tr><th style='text-align:left'>{e(str(k))}</th>"
                   f"<td style='text-align:left'>{e(v if isinstance(v, str) else describe(v))}</td></tr>"
                   for k, v in facts)
    parts = [f"<div><b>{e(title)}</b><table>{rows}</table>"]
    for name, table in (tables or {}).items():
        if isinstance(table, pd.DataFrame) and len(table):
            parts.append(f"<details><summary>{e(name)} (first {min(HTML_ROWS, len(table))} of "
                         f"{len(table):,} rows)</summary>{table.head(HTML_ROWS).to_html(index=False)}"
                         "</details>")
    parts.append("</div>")
    return "".join(parts)


class ResultDisplay:
    """Mixin: a short ``repr`` and a compact ``_repr_html_`` for a result dataclass.

    Use with ``@dataclass(repr=False)`` (otherwise the dataclass ``repr`` wins).
    """

    def __repr__(self) -> str:
        return short_repr(self)

    def _display_tables(self) -> dict[str, Any]:
        """The tables shown (folded) in the HTML view: every DataFrame field by default."""
        import pandas as pd

        return {k: v for k, v in _fields(self) if isinstance(v, pd.DataFrame)}

    def _repr_html_(self) -> str:
        return html_view(type(self).__name__, _fields(self), self._display_tables())
