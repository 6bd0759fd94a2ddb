"""Field checks of release records against the schema: types, ranges and vocabularies.

The checks are column-wise: a set of the value types (or values) per field is computed
in C and only a field with an offending value is scanned row by row. Every finding goes
to the :class:`_Sink` of its file, which also remembers each record's first error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

from . import schema
from .io import RawFile
from .issues import _INDEX, ValidationIssue, _short
from .schema import BOOL, DICT, INT, LIST, NUMBER, STR, FieldSpec

# --- column checks --------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
_NONE = type(None)
_ALLOWED: dict[str, frozenset[type]] = {
    INT: frozenset({int}),
    NUMBER: frozenset({int, float}),
    STR: frozenset({str}),
    BOOL: frozenset({bool}),
    DICT: frozenset({dict}),
    LIST: frozenset({list}),
}
_JSON_TYPE = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    _NONE: "null",
}


class _Sink:
    """Collects the issues of one file and the first error of each record."""

    def __init__(self, raw: RawFile) -> None:
        self.file = raw.filename
        self.lines = raw.lines
        self.errors: list[ValidationIssue] = []
        self.warnings: list[ValidationIssue] = []
        self.info: list[ValidationIssue] = []
        self.first_error: dict[int, ValidationIssue] = {}

    def error(self, k: int, path: str | None, value: Any, rule: str, message: str) -> None:
        issue = ValidationIssue(self.file, self.lines[k], path, value, message, rule)
        self.errors.append(issue)
        self.first_error.setdefault(k, issue)

    def warning(self, k: int | None, path: str | None, value: Any, rule: str, message: str) -> None:
        line = self.lines[k] if k is not None else None
        self.warnings.append(
            ValidationIssue(self.file, line, path, value, message, rule, "warning")
        )

    def file_error(self, rule: str, message: str) -> None:
        self.errors.append(ValidationIssue(self.file, None, None, None, message, rule))


def _expected_text(spec: FieldSpec) -> str:
    cats = spec.categories or ()
    if len(cats) <= 12:
        return "expected one of " + ", ".join(repr(c) for c in cats)
    return f"expected one of the {len(cats)} values of {spec.vocabulary}"


def _check_values(
    values: list[Any],
    rows: Sequence[int],
    spec: FieldSpec,
    path: Callable[[int], str],
    sink: _Sink,
    extra_keys: Counter[tuple[str, str]],
) -> None:
    """Check one field over many records.

    ``values[p]`` belongs to record ``rows[p]``; ``path(p)`` is its field path. Fast
    path: the set of value types (and values) is computed in C; only a field with an
    offending value is scanned value by value.
    """
    kind = spec.kind
    accept = _ALLOWED[kind] | {_NONE} if spec.nullable else _ALLOWED[kind]
    types = set(map(type, values))
    bad: set[int] = set()
    if not types <= accept:
        for p, v in enumerate(values):
            t = type(v)
            if t in accept:
                continue
            if t is float and math.isnan(v) and spec.nullable:  # NaN written for null (pandas)
                values[p] = None
                types.add(_NONE)
                continue
            bad.add(p)
            if v is _MISSING:
                sink.error(rows[p], path(p), None, "missing field", "required field is missing")
            else:
                null = " or null" if spec.nullable else ""
                sink.error(
                    rows[p],
                    path(p),
                    v,
                    "wrong type",
                    f"{_short(v)} is {_JSON_TYPE.get(t, t.__name__)}, expected {schema.KIND_NAMES[kind]}{null}",
                )
    if kind == NUMBER and spec.nullable and float in types:
        for p, v in enumerate(values):
            if type(v) is float and math.isnan(v):  # NaN written for null (pandas)
                values[p] = None
                types.add(_NONE)
    if kind in (INT, NUMBER):
        good = (
            [(p, v) for p, v in enumerate(values) if p not in bad and v is not None]
            if bad
            else None
        )
        if good is not None:
            nums = [v for _, v in good]
        else:
            nums = values if _NONE not in types else [v for v in values if v is not None]
        if kind == NUMBER and float in types:
            for p, v in good if good is not None else enumerate(values):
                if v is not None and not math.isfinite(v):
                    bad.add(p)
                    sink.error(rows[p], path(p), v, "not finite", f"{v!r} is not a finite number")
            if any(not math.isfinite(v) for v in nums):
                nums = [v for v in nums if math.isfinite(v)]
        lo, hi = spec.lo, spec.hi
        if nums and ((lo is not None and min(nums) < lo) or (hi is not None and max(nums) > hi)):
            for p, v in enumerate(values):
                if p in bad or v is None or (kind == NUMBER and not math.isfinite(v)):
                    continue
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    bad.add(p)
                    if lo is not None and hi is not None:
                        msg = f"{v!r} is outside {spec.range_text()}"
                    elif lo is not None:
                        msg = f"{v!r} is below the minimum {schema._num(lo)}"
                    else:
                        msg = f"{v!r} is above the maximum {schema._num(hi)}"
                    sink.error(rows[p], path(p), v, "out of range", msg)
    elif kind == STR and spec.categories is not None:
        allowed = set(spec.categories)
        present = {v for p, v in enumerate(values) if p not in bad} if bad else set(values)
        present.discard(None)
        if not present <= allowed:
            for p, v in enumerate(values):
                if p not in bad and v is not None and v not in allowed:
                    bad.add(p)
                    sink.error(
                        rows[p],
                        path(p),
                        v,
                        "unknown category",
                        f"{_short(v)} is not a known category ({_expected_text(spec)})",
                    )
    elif kind == DICT and spec.keys is not None:
        positions = [p for p, v in enumerate(values) if type(v) is dict]
        dicts = [values[p] for p in positions]
        sub_rows = [rows[p] for p in positions]
        _check_object(
            dicts, sub_rows, spec.keys, lambda q, _pos=positions: path(_pos[q]), sink, extra_keys
        )


def _columns(objects: list[dict[str, Any]], names: list[str]) -> list[list[Any]]:
    """The values of *names* in every object, column by column (``_MISSING`` where absent).

    Fast path: one C-level ``itemgetter`` per object and a transpose; only when a key is
    missing somewhere does it fall back to ``dict.get`` per value.
    """
    if not objects:
        return [[] for _ in names]
    if len(names) > 1:
        try:
            return [list(col) for col in zip(*map(itemgetter(*names), objects), strict=True)]
        except KeyError:
            pass
    return [[o.get(n, _MISSING) for o in objects] for n in names]


def _check_object(
    objects: list[dict[str, Any]],
    rows: Sequence[int],
    keys: Sequence[FieldSpec],
    path: Callable[[int], str] | None,
    sink: _Sink,
    extra_keys: Counter[tuple[str, str]],
) -> None:
    """Check the keys of many objects (records, or nested objects at ``path``)."""
    if not objects:
        return
    names = [s.name for s in keys]
    columns = _columns(objects, names)
    for spec, values in zip(keys, columns, strict=True):
        name = spec.name
        if path is None:
            sub = lambda p, _n=name: _n
        else:
            sub = lambda p, _n=name: f"{path(p)}.{_n}"
        _check_values(values, rows, spec, sub, sink, extra_keys)
    expected = {s.name for s in keys}
    present = set().union(*objects)
    extra = present - expected
    if extra:
        where = "" if path is None else _INDEX.sub("[]", path(0)) + "."
        counts = Counter(k for o in objects for k in o.keys() & extra)
        for k in sorted(extra):
            extra_keys[(sink.file, where + k)] += counts[k]


def _line_rule(message: str) -> str:
    """The rule of an unparseable line (from :func:`~prism_stats.data.io.read_jsonl`)."""
    if message.startswith("not valid UTF-8"):
        return "not UTF-8"
    return "invalid JSON" if message.startswith("invalid JSON") else "not a JSON object"


def _ids(records: list[dict[str, Any]], key: str) -> list[Any]:
    return [r.get(key) for r in records]


def _str_or_none(values: Iterable[Any]) -> list[str | None]:
    return [v if type(v) is str else None for v in values]
