"""Validate a PRISM release against its schema and its internal consistency.

Checks (each error names ``file:line``, the field and the offending value):

- **syntax**: every non-blank line is a JSON object; a file is not empty;
- **fields**: required fields and nested keys are present, with the right JSON type
  (integer vs number vs boolean vs string vs null where allowed), inside their range
  and vocabulary (:mod:`prism_stats.data.schema`); unknown extra fields are tolerated
  and reported as *info*;
- **keys**: ``user_id``/``conversation_id``/``utterance_id`` are unique;
- **references**: every conversation's and utterance's user exists, every utterance's
  conversation exists, metadata rows point at existing rows;
- **conversation structure**: turns ``0..n-1`` each with one participant message, 2-4
  responses at the opening turn (exactly one ``if_chosen``), two responses of the chosen
  model later, ``conversation_turns`` and ``opening_prompt`` agree with the history,
  providers agree with the model;
- **agreement**: every utterance equals its ``conversation_history`` entry (same
  ``(turn, within_turn_id)``, model, score, ``if_chosen``, texts, user, conversation
  type and balanced flag), every history response has its utterance row and
  ``interaction_id`` maps one-to-one onto ``(conversation, turn)``.

Soft inconsistencies that do not break the tidy tables (a survey count that disagrees
with the conversations file, a derived region that disagrees with its country, an
``if_chosen`` that is not the top score, ...) are *warnings*.

Two modes. **Strict**: any error raises :class:`PrismValidationError`, whose message
leads with the first error (in file order). **Lenient**: rows with errors are excluded,
then their dependants (conversations of an excluded participant, utterances of an
excluded conversation, ...), and every exclusion is counted by reason in an
:class:`ExclusionReport`. Nothing is dropped silently.

The checks are column-wise: a set of the value types (or values) per field is computed
in C and only a field with an offending value is scanned row by row, and the
cross-file checks are pandas joins, so the full release (68k utterances) validates in
well under a second.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import schema
from .io import (
    PrismDataError,
    PrismDataNotFound,
    RawFile,
    find_release_files,
    how_to_obtain,
    read_jsonl,
)
from .schema import BOOL, DICT, INT, LIST, NUMBER, STR, FieldSpec

__all__ = [
    "ExclusionReport",
    "PrismValidationError",
    "ValidationIssue",
    "ValidationReport",
    "validate_release",
]

# --- issues and reports ---------------------------------------------------------------------

_INDEX = re.compile(r"\[\d+\]")


def _short(value: Any, width: int = 60) -> str:
    """``repr`` of a value, shortened for messages."""
    text = repr(value)
    if len(text) <= width:
        return text
    return text[: width - 4] + "...'" if isinstance(value, str) else text[:width] + "..."


@dataclass(frozen=True)
class ValidationIssue:
    """One finding of the validator.

    Attributes
    ----------
    file
        Release file name (``"utterances.jsonl"``), or a derived table name.
    line
        1-based line of the offending record (``None`` for file-level findings).
    field
        The field path (``"score"``, ``"location.birth_country"``,
        ``"conversation_history[3].score"``) or ``None``.
    value
        The offending value (JSON-compatible).
    message
        What is wrong, including the value.
    rule
        A short category (``"out of range"``, ``"wrong type"``, ...); with the field it
        forms the exclusion *reason*.
    severity
        ``"error"``, ``"warning"`` or ``"info"``.
    """

    file: str
    line: int | None
    field: str | None
    value: Any
    message: str
    rule: str
    severity: str = "error"

    @property
    def reason(self) -> str:
        """The rule plus the field with list indices removed (used to count exclusions)."""
        return f"{self.rule} ({_INDEX.sub('[]', self.field)})" if self.field else self.rule

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        where = f": field '{self.field}'" if self.field else ""
        return f"{self.location}{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = repr(value)
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "value": value,
            "message": self.message,
            "rule": self.rule,
            "severity": self.severity,
        }


@dataclass
class ExclusionReport:
    """Rows left out (lenient mode), counted by file and reason.

    Every excluded row is counted exactly once, under the first reason found for it;
    rows excluded because a row they depend on was excluded carry reasons such as
    ``"parent conversation excluded"``. Derived tables (``choice_sets``) report the
    units they had to drop the same way.

    Attributes
    ----------
    counts
        ``{file: {reason: count}}``.
    examples
        ``{file: {reason: [line, ...]}}`` - up to five example line numbers (for derived
        tables: ids).
    rows
        ``{file: rows read}`` (non-blank lines; for derived tables: candidate units).
    """

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    MAX_EXAMPLES = 5

    def add(self, file: str, reason: str, where: Any) -> None:
        """Count one excluded row of *file* for *reason* (*where*: its line or id)."""
        per_file = self.counts.setdefault(file, {})
        per_file[reason] = per_file.get(reason, 0) + 1
        ex = self.examples.setdefault(file, {}).setdefault(reason, [])
        if len(ex) < self.MAX_EXAMPLES:
            ex.append(where)

    def total(self, file: str | None = None) -> int:
        """Number of excluded rows (of one file, or of all)."""
        if file is not None:
            return sum(self.counts.get(file, {}).values())
        return sum(sum(r.values()) for r in self.counts.values())

    def kept(self, file: str) -> int:
        """Rows of *file* that were kept."""
        return self.rows.get(file, 0) - self.total(file)

    def __len__(self) -> int:
        return self.total()

    def to_frame(self) -> pd.DataFrame:
        """One row per (file, reason): ``file``, ``reason``, ``count``, ``examples``."""
        recs = [
            {"file": f, "reason": r, "count": n, "examples": list(self.examples[f][r])}
            for f, per in self.counts.items()
            for r, n in per.items()
        ]
        return pd.DataFrame(recs, columns=["file", "reason", "count", "examples"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total(),
            "files": {
                f: {
                    "rows": self.rows.get(f, 0),
                    "excluded": self.total(f),
                    "kept": self.kept(f),
                    "reasons": {
                        r: {"count": n, "examples": list(self.examples[f][r])}
                        for r, n in per.items()
                    },
                }
                for f, per in self.counts.items()
            },
        }

    def __str__(self) -> str:
        if not self.total():
            return "No rows excluded."
        out = [f"Excluded rows: {self.total():,}"]
        for f, per in self.counts.items():
            out.append(f"  {f}: {self.total(f):,} of {self.rows.get(f, 0):,} excluded")
            for r, n in sorted(per.items(), key=lambda kv: -kv[1]):
                ex = ", ".join(str(e) for e in self.examples[f][r])
                label = "lines" if f.endswith(".jsonl") else "e.g."
                out.append(f"    {n:>7,}  {r}  ({label} {ex})")
        return "\n".join(out)


@dataclass
class ValidationReport:
    """Everything the validator found in one release.

    Attributes
    ----------
    folder
        The release folder.
    files
        ``{role: {"path", "sha256", "lines", "records", "blank_lines"}}`` of each file read.
    errors, warnings, info
        :class:`ValidationIssue` lists; errors are sorted in file order (survey,
        conversations, utterances, metadata) and line order.
    exclusions
        What lenient loading excludes (errors plus their dependants).
    notes
        Choices made while locating files.
    """

    folder: str
    files: dict[str, dict[str, Any]]
    errors: list[ValidationIssue]
    warnings: list[ValidationIssue]
    info: list[ValidationIssue]
    exclusions: ExclusionReport
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and info are allowed)."""
        return not self.errors

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Per file: rows read, errors, rows excluded and rows kept."""
        errs = Counter(e.file for e in self.errors)
        out = {}
        for role, meta in self.files.items():
            name = schema.FILE_BY_ROLE[role].filename
            out[name] = {
                "rows": meta["lines"],
                "errors": errs.get(name, 0),
                "excluded": self.exclusions.total(name),
                "kept": meta["lines"] - self.exclusions.total(name),
            }
        return out

    def error_reasons(self) -> Counter[tuple[str, str]]:
        """Count of errors by (file, reason)."""
        return Counter((e.file, e.reason) for e in self.errors)

    def to_dict(self, max_issues: int = 1000) -> dict[str, Any]:
        """A JSON-compatible summary (at most *max_issues* issues of each severity)."""
        return {
            "ok": self.ok,
            "folder": self.folder,
            "files": {r: dict(m, path=str(m["path"])) for r, m in self.files.items()},
            "counts": self.counts,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "n_info": len(self.info),
            "errors": [e.to_dict() for e in self.errors[:max_issues]],
            "error_reasons": [
                {"file": f, "reason": r, "count": n}
                for (f, r), n in self.error_reasons().most_common()
            ],
            "warnings": [w.to_dict() for w in self.warnings[:max_issues]],
            "info": [i.to_dict() for i in self.info[:max_issues]],
            "exclusions": self.exclusions.to_dict(),
            "notes": list(self.notes),
        }

    def __str__(self, max_errors: int = 20) -> str:
        status = "VALID" if self.ok else "INVALID"
        out = [f"PRISM release {self.folder}: {status}"]
        out.append(f"  {'file':<22}{'rows':>9}{'errors':>9}{'excluded':>10}")
        for name, c in self.counts.items():
            out.append(f"  {name:<22}{c['rows']:>9,}{c['errors']:>9,}{c['excluded']:>10,}")
        if self.errors:
            out.append(f"Errors ({len(self.errors):,}):")
            out += [f"  {e}" for e in self.errors[:max_errors]]
            if len(self.errors) > max_errors:
                out.append(f"  ... {len(self.errors) - max_errors:,} more; by reason:")
                for (f, r), n in self.error_reasons().most_common(15):
                    out.append(f"    {n:>7,}  {f}: {r}")
        if self.warnings:
            out.append(f"Warnings ({len(self.warnings):,}):")
            by_rule: dict[tuple[str, str], list[ValidationIssue]] = {}
            for w in self.warnings:
                by_rule.setdefault((w.file, w.reason), []).append(w)
            for (_, _), ws in sorted(by_rule.items(), key=lambda kv: -len(kv[1])):
                out.append(f"  {len(ws):>7,} x {ws[0]}")
        if self.info:
            out.append("Info:")
            out += [f"  {i}" for i in self.info]
        out += [f"Note: {n}" for n in self.notes]
        return "\n".join(out)


class PrismValidationError(PrismDataError, ValueError):
    """A release failed strict validation.

    The message leads with the first error (``file:line: field 'x': ...``); the full
    :class:`ValidationReport` is in ``.report`` and the first issue in ``.issue``.
    """

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self.issue = report.errors[0]
        n = len(report.errors)
        msg = str(self.issue)
        if n > 1:
            msg += (
                f"\n(and {n - 1:,} more error(s); see the .report attribute, validate_release(), "
                "or load with strict=False to exclude invalid rows and count them)"
            )
        super().__init__(msg)


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


# --- the release checker --------------------------------------------------------------------


@dataclass
class CheckedRelease:
    """The parsed files plus what validation decided (used by the tidy step).

    Attributes
    ----------
    raw
        ``{role: RawFile}``.
    keep
        ``{role: bool array}`` - which records survive lenient exclusion.
    report
        The :class:`ValidationReport`.
    history
        One row per model response in ``conversation_history`` of structurally valid
        conversations: ``conv`` (record index), ``turn``, ``within_turn``, ``model``,
        ``chosen``.
    """

    raw: dict[str, RawFile]
    keep: dict[str, np.ndarray]
    report: ValidationReport
    history: pd.DataFrame


def _line_rule(message: str) -> str:
    """The rule of an unparseable line (from :func:`~prism_stats.data.io.read_jsonl`)."""
    if message.startswith("not valid UTF-8"):
        return "not UTF-8"
    return "invalid JSON" if message.startswith("invalid JSON") else "not a JSON object"


def _ids(records: list[dict[str, Any]], key: str) -> list[Any]:
    return [r.get(key) for r in records]


def _str_or_none(values: Iterable[Any]) -> list[str | None]:
    return [v if type(v) is str else None for v in values]


class _Checker:
    def __init__(self, raw: dict[str, RawFile]) -> None:
        self.raw = raw
        self.sinks = {role: _Sink(rf) for role, rf in raw.items()}
        self.extra_keys: Counter[tuple[str, str]] = Counter()
        self.history = pd.DataFrame(columns=["conv", "turn", "within_turn", "model", "chosen"])

    # -- per file ------------------------------------------------------------------------

    def fields(self, role: str) -> None:
        rf, sink = self.raw[role], self.sinks[role]
        spec = schema.FILE_BY_ROLE[role]
        if rf.n_lines == 0:
            sink.file_error("empty file", "file is empty (no records)")
        for line, message, _ in rf.bad_lines:
            sink.errors.append(
                ValidationIssue(sink.file, line, None, None, message, _line_rule(message))
            )
        _check_object(rf.records, range(len(rf.records)), spec.fields, None, sink, self.extra_keys)
        if spec.id_field:
            self._unique(role, spec.id_field)

    def _unique(self, role: str, key: str) -> None:
        rf, sink = self.raw[role], self.sinks[role]
        ids = pd.Series(_str_or_none(_ids(rf.records, key)), dtype=object)
        dup = ids.duplicated(keep=False) & ids.notna()
        if dup.any():
            lines = np.asarray(rf.lines)
            for value, idx in ids[dup].groupby(ids[dup]).groups.items():
                where = ", ".join(str(x) for x in lines[np.asarray(idx)][:10])
                for k in idx:
                    sink.error(
                        int(k),
                        key,
                        value,
                        "duplicate id",
                        f"{value!r} is not unique (lines {where})",
                    )

    def ids_seen(self, role: str) -> set[str]:
        """Every id of *role*, including ids salvaged from unparseable lines."""
        rf = self.raw[role]
        key = schema.FILE_BY_ROLE[role].id_field
        assert key is not None
        ids = {v for v in _ids(rf.records, key) if type(v) is str}
        return ids | {s for _, _, s in rf.bad_lines if s is not None}

    # -- conversations ---------------------------------------------------------------------

    def conversation_history(self) -> None:
        rf, sink = self.raw["conversations"], self.sinks["conversations"]
        recs = rf.records
        conv_rows = [k for k, r in enumerate(recs) if type(r.get("conversation_history")) is list]
        u_rows: list[int] = []
        u_items: list[dict[str, Any]] = []
        u_pos: list[int] = []
        m_rows: list[int] = []
        m_items: list[dict[str, Any]] = []
        m_pos: list[int] = []
        for k in conv_rows:
            for j, item in enumerate(recs[k]["conversation_history"]):
                if type(item) is not dict:
                    sink.error(
                        k,
                        f"conversation_history[{j}]",
                        item,
                        "wrong type",
                        f"{_short(item)} is {_JSON_TYPE.get(type(item), '?')}, expected an object",
                    )
                    continue
                role = item.get("role")
                if role == "model":
                    m_rows.append(k)
                    m_items.append(item)
                    m_pos.append(j)
                elif role == "user":
                    u_rows.append(k)
                    u_items.append(item)
                    u_pos.append(j)
                else:
                    what = (
                        "required field is missing"
                        if role is None
                        else (
                            f"{_short(role)} is not a known category (expected one of 'user', 'model')"
                        )
                    )
                    rule = "missing field" if role is None else "unknown category"
                    sink.error(k, f"conversation_history[{j}].role", role, rule, what)
        _check_object(
            u_items,
            u_rows,
            schema.HISTORY_USER_KEYS,
            lambda q: f"conversation_history[{u_pos[q]}]",
            sink,
            self.extra_keys,
        )
        _check_object(
            m_items,
            m_rows,
            schema.HISTORY_MODEL_KEYS,
            lambda q: f"conversation_history[{m_pos[q]}]",
            sink,
            self.extra_keys,
        )
        # Provider must be the model's (vocab); both already checked as categories.
        provider_of = {m.long_name: m.provider for m in vocab.LLMS}
        for q, item in enumerate(m_items):
            expected = provider_of.get(item.get("model_name"))
            if (
                expected is not None
                and item.get("model_provider") in vocab.PROVIDERS
                and item["model_provider"] != expected
            ):
                sink.error(
                    m_rows[q],
                    f"conversation_history[{m_pos[q]}].model_provider",
                    item["model_provider"],
                    "provider mismatch",
                    f"{item['model_provider']!r} is not the provider of {item['model_name']!r} (expected {expected!r})",
                )
        dirty = set(sink.first_error)
        # Structure checks on conversations whose items are all well formed.
        u_keep = [q for q, k in enumerate(u_rows) if k not in dirty]
        m_keep = [q for q, k in enumerate(m_rows) if k not in dirty]
        ui = pd.DataFrame(
            {
                "conv": np.asarray([u_rows[q] for q in u_keep], dtype=np.int64),
                "turn": np.asarray([u_items[q]["turn"] for q in u_keep], dtype=np.int64),
                "content": pd.array([u_items[q]["content"] for q in u_keep], dtype=object),
            }
        )
        mi = pd.DataFrame(
            {
                "conv": np.asarray([m_rows[q] for q in m_keep], dtype=np.int64),
                "pos": np.asarray([m_pos[q] for q in m_keep], dtype=np.int64),
                "turn": np.asarray([m_items[q]["turn"] for q in m_keep], dtype=np.int64),
                "within_turn": np.asarray(
                    [m_items[q]["within_turn_id"] for q in m_keep], dtype=np.int64
                ),
                "model": pd.array([m_items[q]["model_name"] for q in m_keep], dtype=object),
                "score": np.asarray([m_items[q]["score"] for q in m_keep], dtype=np.int64),
                "chosen": np.asarray([m_items[q]["if_chosen"] for q in m_keep], dtype=bool),
                "content": pd.array([m_items[q]["content"] for q in m_keep], dtype=object),
            }
        )
        candidates = [k for k in conv_rows if k not in dirty]
        self._structure(candidates, ui, mi)
        dirty = set(sink.first_error)
        ok = ~mi["conv"].isin(dirty)
        self.ui = ui[~ui["conv"].isin(dirty)].reset_index(drop=True)
        self.mi = mi[ok].reset_index(drop=True)
        self.history = self.mi[["conv", "turn", "within_turn", "model", "chosen"]]

    def _structure(self, candidates: list[int], ui: pd.DataFrame, mi: pd.DataFrame) -> None:
        rf, sink = self.raw["conversations"], self.sinks["conversations"]
        recs = rf.records
        H = "conversation_history"

        def err(k: int, fld: str, value: Any, rule: str, msg: str) -> None:
            sink.error(int(k), fld, value, rule, msg)

        # Every conversation needs messages.
        has_user = set(ui["conv"].tolist())
        has_model = set(mi["conv"].tolist())
        for k in candidates:
            if k not in has_user and k not in has_model:
                err(k, H, [], "bad structure", "conversation_history has no messages")
        # One participant message per turn.
        n_user = ui.groupby(["conv", "turn"]).size()
        for (k, t), n in n_user[n_user != 1].items():
            err(
                k, H, int(n), "bad structure", f"turn {t} has {n} participant messages (expected 1)"
            )
        # Turns with responses but no message, or a message without responses.
        ukeys = pd.MultiIndex.from_frame(ui[["conv", "turn"]].drop_duplicates())
        mkeys = pd.MultiIndex.from_frame(mi[["conv", "turn"]].drop_duplicates())
        for k, t in mkeys.difference(ukeys):
            err(
                k,
                H,
                int(t),
                "bad structure",
                f"turn {t} has model responses but no participant message",
            )
        for k, t in ukeys.difference(mkeys):
            err(
                k,
                H,
                int(t),
                "bad structure",
                f"turn {t} has a participant message but no model responses",
            )
        # Turns numbered 0..n-1 and conversation_turns = n.
        turns = pd.concat([ui[["conv", "turn"]], mi[["conv", "turn"]]]).drop_duplicates()
        g = turns.groupby("conv")["turn"].agg(["min", "max", "size"])
        for k, row in g[(g["min"] != 0) | (g["max"] != g["size"] - 1)].iterrows():
            found = sorted(turns.loc[turns["conv"] == k, "turn"].tolist())
            err(k, H, found, "bad structure", f"turns are not numbered 0..n-1 (found {found})")
        declared = pd.Series({k: recs[k]["conversation_turns"] for k in g.index}, dtype="int64")
        mismatch = g["size"] != declared.reindex(g.index)
        for k in g.index[mismatch.to_numpy()]:
            err(
                k,
                "conversation_turns",
                recs[k]["conversation_turns"],
                "disagrees with history",
                f"{recs[k]['conversation_turns']!r} but conversation_history has {g.loc[k, 'size']} turns",
            )
        # Responses per turn: 2-4 at the opening, 2 later.
        lo, hi = schema.OPENING_RESPONSES
        n_resp = mi.groupby(["conv", "turn"]).size()
        turn_of = n_resp.index.get_level_values("turn")
        bad_n = ((turn_of == 0) & ((n_resp < lo) | (n_resp > hi))) | (
            (turn_of > 0) & (n_resp != schema.LATER_RESPONSES)
        )
        for (k, t), n in n_resp[bad_n].items():
            want = f"{lo}-{hi}" if t == 0 else str(schema.LATER_RESPONSES)
            err(
                k, H, int(n), "bad structure", f"turn {t} has {n} model responses (expected {want})"
            )
        dup = mi.duplicated(["conv", "turn", "within_turn"], keep="first")
        for _, r in mi[dup].iterrows():
            err(
                r["conv"],
                f"{H}[{r['pos']}].within_turn_id",
                int(r["within_turn"]),
                "bad structure",
                f"within_turn_id {r['within_turn']} occurs twice at turn {r['turn']}",
            )
        late = mi[(mi["turn"] > 0) & (mi["within_turn"] >= schema.LATER_RESPONSES)]
        for _, r in late.iterrows():
            err(
                r["conv"],
                f"{H}[{r['pos']}].within_turn_id",
                int(r["within_turn"]),
                "bad structure",
                f"{r['within_turn']} at turn {r['turn']} (later turns use 0..{schema.LATER_RESPONSES - 1})",
            )
        # Exactly one chosen response at the opening turn.
        opening = mi[mi["turn"] == 0]
        n_chosen = opening.groupby("conv")["chosen"].sum()
        for k, n in n_chosen[n_chosen != 1].items():
            err(
                k,
                H,
                int(n),
                "bad structure",
                f"turn 0 has {n} responses marked if_chosen (expected exactly 1)",
            )
        chosen_model = opening[opening["chosen"]].drop_duplicates("conv").set_index("conv")["model"]
        later = mi[mi["turn"] > 0]
        expected = later["conv"].map(chosen_model)
        wrong = later[expected.notna() & (later["model"] != expected)]
        for _, r in wrong.drop_duplicates(["conv", "turn"]).iterrows():
            err(
                r["conv"],
                f"{H}[{r['pos']}].model_name",
                r["model"],
                "bad structure",
                f"{r['model']!r} answers turn {r['turn']} but the turn-0 choice was {chosen_model[r['conv']]!r}",
            )
        # opening_prompt is the turn-0 participant message.
        first = ui[ui["turn"] == 0].drop_duplicates("conv")
        for k, content in zip(first["conv"].tolist(), first["content"].tolist(), strict=True):
            prompt = recs[k]["opening_prompt"]
            if prompt != content:
                err(
                    k,
                    "opening_prompt",
                    prompt,
                    "disagrees with history",
                    f"{_short(prompt)} differs from the turn-0 message {_short(content)}",
                )
        # --- warnings (soft) ---
        top = opening.groupby("conv")["score"].max()
        ch = opening[opening["chosen"]].set_index("conv")["score"]
        low = ch[ch < top.reindex(ch.index)]
        for k, s in low.items():
            sink.warning(
                int(k),
                H,
                int(s),
                "chosen not top score",
                f"the turn-0 response marked if_chosen scores {s}, below the turn's top score {top[k]}",
            )
        if len(later):
            lg = later.groupby(["conv", "turn"]).agg(
                n_chosen=("chosen", "sum"), n_text=("content", "nunique"), n=("content", "size")
            )
            lg = lg[lg["n"] == 2]
            soft = (
                (
                    lg["n_chosen"] == 0,
                    "no choice at later turn",
                    "neither response is marked if_chosen",
                ),
                (
                    (lg["n_chosen"] == 2) & (lg["n_text"] == 2),
                    "two choices at later turn",
                    "both responses are marked if_chosen but their texts differ",
                ),
                (
                    (lg["n_chosen"] == 1) & (lg["n_text"] == 1),
                    "one choice for identical texts",
                    "the two responses are identical but only one is marked if_chosen",
                ),
            )
            for mask, rule, what in soft:
                for k, t in lg.index[mask.to_numpy()]:
                    sink.warning(int(k), H, int(t), rule, f"turn {t}: {what}")

    # -- utterances ------------------------------------------------------------------------

    def utterances(self, survey_ids: set[str], conv_ids: set[str]) -> None:
        rf, sink = self.raw["utterances"], self.sinks["utterances"]
        crf = self.raw["conversations"]
        recs = rf.records
        n = len(recs)
        cid_raw, uid_raw, turn_raw, wid_raw, iid_raw = _columns(
            recs, ["conversation_id", "user_id", "turn", "within_turn_id", "interaction_id"]
        )
        cid = _str_or_none(cid_raw)
        uid = _str_or_none(uid_raw)
        # Rows with field errors take no part in the key checks below (their values
        # may be the very thing that is wrong).
        field_bad = set(sink.first_error)
        turn = [
            v if type(v) is int and k not in field_bad else None for k, v in enumerate(turn_raw)
        ]
        wid = [v if type(v) is int and k not in field_bad else None for k, v in enumerate(wid_raw)]
        # References (scan rows only when some id is unknown).
        unknown_c = set(cid) - conv_ids - {None}
        unknown_u = set(uid) - survey_ids - {None}
        if unknown_c or unknown_u:
            for k in range(n):
                if cid[k] in unknown_c:
                    sink.error(
                        k,
                        "conversation_id",
                        cid[k],
                        "unknown conversation",
                        f"{cid[k]!r} does not match any conversation_id in conversations.jsonl",
                    )
                if uid[k] in unknown_u:
                    sink.error(
                        k,
                        "user_id",
                        uid[k],
                        "unknown participant",
                        f"{uid[k]!r} does not match any user_id in survey.jsonl",
                    )
        # The same response twice.
        keyed = pd.DataFrame(
            {"k": np.arange(n), "cid": pd.array(cid, dtype=object), "turn": turn, "wid": wid}
        ).dropna()
        dup = keyed.duplicated(["cid", "turn", "wid"], keep=False)
        lines = np.asarray(rf.lines)
        for (_c, _t, _w), grp in keyed[dup].groupby(["cid", "turn", "wid"]):
            where = ", ".join(str(x) for x in lines[grp["k"].to_numpy()][:10])
            for k in grp["k"].tolist():
                sink.error(
                    k,
                    "within_turn_id",
                    int(_w),
                    "duplicate response",
                    f"conversation {_c!r} turn {int(_t)} within_turn_id {int(_w)} occurs more than once (lines {where})",
                )
        # interaction_id <-> (conversation, turn) one-to-one.
        iid = _str_or_none(iid_raw)
        ia = pd.DataFrame(
            {
                "k": np.arange(n),
                "iid": pd.array(iid, dtype=object),
                "cid": pd.array(cid, dtype=object),
                "turn": turn,
            }
        ).dropna()
        if len(ia):
            pairs = ia.drop_duplicates(["iid", "cid", "turn"])
            multi_i = pairs.groupby("iid").size()
            multi_i = set(multi_i[multi_i > 1].index)
            multi_t = pairs.groupby(["cid", "turn"]).size()
            multi_t = set(multi_t[multi_t > 1].index)
            suspects = (
                ia[
                    ia["iid"].isin(multi_i)
                    | pd.MultiIndex.from_frame(ia[["cid", "turn"]]).isin(list(multi_t))
                ]
                if (multi_i or multi_t)
                else ia.iloc[:0]
            )
            for k, i, c, t in suspects.itertuples(index=False):
                if i in multi_i:
                    sink.error(
                        k,
                        "interaction_id",
                        i,
                        "inconsistent interaction",
                        f"{i!r} is used for more than one (conversation, turn)",
                    )
                elif (c, t) in multi_t:
                    sink.error(
                        k,
                        "interaction_id",
                        i,
                        "inconsistent interaction",
                        f"{i!r}: conversation {c!r} turn {int(t)} has more than one interaction_id",
                    )
            self._interaction_numbering(pairs)
        # Agreement with the conversation (only clean utterances and clean conversations).
        cfirst = self.sinks["conversations"].first_error
        conv_ids_col = _ids(crf.records, "conversation_id")
        counts = Counter(v for v in conv_ids_col if type(v) is str)
        conv_index = {
            v: k
            for k, v in enumerate(conv_ids_col)
            if type(v) is str and counts[v] == 1 and k not in cfirst
        }
        first = sink.first_error
        clean = [k for k in range(n) if k not in first and cid[k] in conv_index]
        if not clean:
            self.utt_keys = keyed
            return
        crec = crf.records
        conv_k = np.asarray([conv_index[cid[k]] for k in clean], dtype=np.int64)
        for name in ("user_id", "conversation_type", "included_in_balanced_subset"):
            mine = np.asarray([recs[k][name] for k in clean], dtype=object)
            theirs = np.asarray([crec[ck][name] for ck in conv_k.tolist()], dtype=object)
            for p in np.flatnonzero(mine != theirs).tolist():
                k = clean[p]
                sink.error(
                    k,
                    name,
                    mine[p],
                    "disagrees with conversation",
                    f"{_short(mine[p])} differs from conversation {cid[k]!r} ({_short(theirs[p])})",
                )
        uf = pd.DataFrame(
            {
                "k": np.asarray(clean, dtype=np.int64),
                "conv": conv_k,
                "turn": np.asarray([recs[k]["turn"] for k in clean], dtype=np.int64),
                "within_turn": np.asarray(
                    [recs[k]["within_turn_id"] for k in clean], dtype=np.int64
                ),
            }
        )
        mi = self.mi
        on = ["conv", "turn", "within_turn"]
        merged = uf.merge(mi[on], on=on, how="left", indicator=True)
        H = "conversation_history"
        for r in merged[merged["_merge"] == "left_only"].itertuples(index=False):
            sink.error(
                r.k,
                "within_turn_id",
                int(r.within_turn),
                "not in history",
                f"conversation {cid[r.k]!r} has no response at turn {r.turn}, "
                f"within_turn_id {r.within_turn} in its {H}",
            )
        both = uf.merge(mi, on=on, how="inner")
        ks = both["k"].tolist()
        for fld, col in (
            ("model_name", "model"),
            ("score", "score"),
            ("if_chosen", "chosen"),
            ("model_response", "content"),
        ):
            mine = np.asarray([recs[k][fld] for k in ks], dtype=object)
            theirs = np.asarray(both[col].tolist(), dtype=object)
            for p in np.flatnonzero(mine != theirs).tolist():
                k = ks[p]
                sink.error(
                    k,
                    fld,
                    mine[p],
                    "disagrees with history",
                    f"{_short(mine[p])} disagrees with the {H} of {cid[k]!r} (turn {recs[k]['turn']}, "
                    f"within_turn_id {recs[k]['within_turn_id']}: {_short(theirs[p])})",
                )
        prompts = uf.merge(
            self.ui.drop_duplicates(["conv", "turn"]), on=["conv", "turn"], how="inner"
        )
        ks = prompts["k"].tolist()
        mine = np.asarray([recs[k]["user_prompt"] for k in ks], dtype=object)
        theirs = np.asarray(prompts["content"].tolist(), dtype=object)
        for p in np.flatnonzero(mine != theirs).tolist():
            k = ks[p]
            sink.error(
                k,
                "user_prompt",
                mine[p],
                "disagrees with history",
                f"{_short(mine[p])} disagrees with the turn-{recs[k]['turn']} message of "
                f"{cid[k]!r} ({_short(theirs[p])})",
            )
        self.utt_keys = keyed

    def _interaction_numbering(self, pairs: pd.DataFrame) -> None:
        """Warn when interaction ids do not follow the release's ``int{k}`` numbering.

        The release numbers the (conversation, turn) groups in the lexicographic order of
        the conversation id *string* (so ``c10`` comes before ``c2``) and numeric turn.
        """
        p = pairs.drop_duplicates(["cid", "turn"]).sort_values(["cid", "turn"], kind="stable")
        expected = [f"int{i}" for i in range(len(p))]
        off = p["iid"].to_numpy() != np.asarray(expected, dtype=object)
        if off.any():
            r = p[off].iloc[0]
            self.sinks["utterances"].warning(
                int(r["k"]),
                "interaction_id",
                r["iid"],
                "interaction numbering",
                f"{int(off.sum()):,} interaction id(s) do not follow the release numbering "
                f"(int<k> over conversation ids sorted as strings, then turns); first: {r['iid']!r} "
                f"for conversation {r['cid']!r} turn {int(r['turn'])}",
            )

    def coverage(self) -> None:
        """Every history response of a clean conversation has its utterance row.

        Skipped for an empty utterances file (that error is reported once) and for
        conversations named by an utterance row with an error of its own, or by an
        unparseable line: that row is the error (and is excluded in lenient mode); which
        history response it was meant to be cannot be told.
        """
        sink = self.sinks["conversations"]
        recs = self.raw["conversations"].records
        urf = self.raw["utterances"]
        if not len(self.mi) or urf.n_lines == 0:
            return
        broken = {s["conversation_id"] for s in urf.salvaged if "conversation_id" in s}
        broken |= {
            urf.records[k].get("conversation_id") for k in self.sinks["utterances"].first_error
        }
        unknown_broken = any("conversation_id" not in s for s in urf.salvaged)
        if unknown_broken:
            return
        cids = pd.Series(
            [recs[k].get("conversation_id") for k in self.mi["conv"].tolist()], dtype=object
        )
        hist = pd.DataFrame(
            {
                "cid": cids.to_numpy(),
                "turn": self.mi["turn"].to_numpy(),
                "wid": self.mi["within_turn"].to_numpy(),
                "conv": self.mi["conv"].to_numpy(),
                "pos": self.mi["pos"].to_numpy(),
                "model": self.mi["model"].to_numpy(),
            }
        )
        have = (
            self.utt_keys[["cid", "turn", "wid"]]
            .drop_duplicates()
            .astype({"turn": "int64", "wid": "int64"})
        )
        hist = hist[~hist["cid"].isin(broken)]
        m = hist.merge(have, on=["cid", "turn", "wid"], how="left", indicator=True)
        for r in m[m["_merge"] == "left_only"].itertuples(index=False):
            sink.error(
                r.conv,
                f"conversation_history[{r.pos}]",
                r.model,
                "missing utterance",
                f"the response of {r.model!r} at turn {r.turn}, within_turn_id {r.wid} has no row in utterances.jsonl",
            )

    # -- survey (soft) -----------------------------------------------------------------------

    def survey_consistency(self) -> None:
        rf, sink = self.raw["survey"], self.sinks["survey"]
        recs = rf.records
        first = sink.first_error
        clean = [k for k in range(len(recs)) if k not in first]
        if not clean:
            return
        conv = self.raw["conversations"].records
        n_conv = Counter(r.get("user_id") for r in conv)
        n_bal = Counter(
            r.get("user_id") for r in conv if r.get("included_in_balanced_subset") is True
        )
        by_name = vocab.COUNTRY_BY_NAME
        by_iso = vocab.COUNTRY_BY_ISO3
        pnts = schema.PNTS
        for k in clean:
            r = recs[k]
            uid = r["user_id"]
            observed = n_conv.get(uid, 0)
            if r["num_completed_conversations"] != observed:
                sink.warning(
                    k,
                    "num_completed_conversations",
                    r["num_completed_conversations"],
                    "count mismatch",
                    f"{r['num_completed_conversations']} but conversations.jsonl has {observed} for {uid!r}",
                )
            if r["survey_only"] != (observed == 0):
                sink.warning(
                    k,
                    "survey_only",
                    r["survey_only"],
                    "count mismatch",
                    f"{r['survey_only']} but {uid!r} has {observed} conversation(s)",
                )
            if r["included_in_balanced_subset"] != (n_bal.get(uid, 0) > 0):
                sink.warning(
                    k,
                    "included_in_balanced_subset",
                    r["included_in_balanced_subset"],
                    "flag mismatch",
                    f"{r['included_in_balanced_subset']} but {uid!r} has {n_bal.get(uid, 0)} balanced conversation(s)",
                )
            for rep in ("included_in_UK_REP", "included_in_US_REP"):
                if r[rep] and not r["included_in_balanced_subset"]:
                    sink.warning(
                        k,
                        rep,
                        True,
                        "flag mismatch",
                        "REP member outside the balanced subset (every REP member is in it)",
                    )
            shown = r["lm_direct_use"] == "Yes" or r["lm_indirect_use"] == "Yes"
            if (r["lm_frequency_use"] is None) == shown:
                state = (
                    "null although the question was shown"
                    if shown
                    else "answered although the question was not shown"
                )
                sink.warning(
                    k,
                    "lm_frequency_use",
                    r["lm_frequency_use"],
                    "skip-logic mismatch",
                    f"{state} (direct use {r['lm_direct_use']!r}, indirect use {r['lm_indirect_use']!r})",
                )
            flags = [
                v
                for key, v in r["lm_usecases"].items()
                if key != "other_text" and key in vocab.LM_USECASE_KEYS
            ]
            n_null = sum(v is None for v in flags)
            if n_null not in (0, len(flags)) or (n_null == len(flags)) == shown:
                sink.warning(
                    k,
                    "lm_usecases",
                    n_null,
                    "skip-logic mismatch",
                    f"{n_null} of {len(flags)} use-case flags are null although the question was "
                    f"{'shown' if shown else 'not shown'}",
                )
            loc = r["location"]
            for side in ("birth", "reside"):
                name, iso = loc[f"{side}_country"], loc[f"{side}_countryISO"]
                c = by_name.get(name)
                if (name == pnts) != (iso == pnts) or (c is not None and c.iso3 != iso):
                    sink.error(
                        k,
                        f"location.{side}_countryISO",
                        iso,
                        "inconsistent country",
                        f"{iso!r} is not the code of {side}_country {name!r}",
                    )
                    continue
                c = by_iso.get(iso)
                want = (c.region, c.subregion) if c else (pnts, pnts)
                have = (loc[f"{side}_region"], loc[f"{side}_subregion"])
                if have != want:
                    sink.warning(
                        k,
                        f"location.{side}_subregion",
                        have[1],
                        "region mismatch",
                        f"region/subregion {have} but {iso} is in {want}",
                    )
            special = vocab.special_region(by_iso.get(loc["birth_countryISO"]))
            if loc["special_region"] != special:
                sink.warning(
                    k,
                    "location.special_region",
                    loc["special_region"],
                    "region mismatch",
                    f"{loc['special_region']!r} but birth country {loc['birth_countryISO']} gives {special!r}",
                )
            for key, mapping in (
                ("religion", schema.RELIGION_SIMPLIFIED_FROM_CATEGORISED),
                ("ethnicity", schema.ETHNICITY_SIMPLIFIED_FROM_CATEGORISED),
            ):
                cat, simp = r[key]["categorised"], r[key]["simplified"]
                if mapping.get(cat) != simp:
                    sink.warning(
                        k,
                        f"{key}.simplified",
                        simp,
                        "grouping mismatch",
                        f"{simp!r} but categorised {cat!r} is grouped as {mapping.get(cat)!r}",
                    )

    # -- metadata --------------------------------------------------------------------------

    def metadata(self, refs: dict[str, set[str]], interactions: set[str]) -> None:
        rf, sink = self.raw["metadata"], self.sinks["metadata"]
        targets = {
            "user_id": (refs["survey"], "survey.jsonl"),
            "conversation_id": (refs["conversations"], "conversations.jsonl"),
            "utterance_id": (refs["utterances"], "utterances.jsonl"),
            "interaction_id": (interactions, "utterances.jsonl"),
        }
        for key, (ids, fname) in targets.items():
            col = _str_or_none(_ids(rf.records, key))
            for k, v in enumerate(col):
                if v is not None and v not in ids:
                    sink.error(
                        k, key, v, "unknown reference", f"{v!r} does not match any {key} in {fname}"
                    )


def check_release(
    raw: dict[str, RawFile], folder: str = "", notes: Sequence[str] = ()
) -> CheckedRelease:
    """Validate parsed release files and decide which records survive (lenient mode).

    Parameters
    ----------
    raw
        ``{role: RawFile}`` with at least survey, conversations and utterances.
    folder, notes
        Recorded in the report.
    """
    ch = _Checker(raw)
    for role in raw:
        ch.fields(role)
    survey_seen = ch.ids_seen("survey")
    # Conversations: their participant must exist.
    csink = ch.sinks["conversations"]
    conv_users = _ids(raw["conversations"].records, "user_id")
    if {v for v in conv_users if type(v) is str} - survey_seen:
        for k, v in enumerate(conv_users):
            if type(v) is str and v not in survey_seen:
                csink.error(
                    k,
                    "user_id",
                    v,
                    "unknown participant",
                    f"{v!r} does not match any user_id in survey.jsonl",
                )
    ch.conversation_history()
    conv_seen = ch.ids_seen("conversations")
    ch.utterances(survey_seen, conv_seen)
    ch.coverage()
    ch.survey_consistency()
    utt_seen = ch.ids_seen("utterances")
    if "metadata" in raw:
        inter = {v for v in _ids(raw["utterances"].records, "interaction_id") if type(v) is str}
        ch.metadata(
            {"survey": survey_seen, "conversations": conv_seen, "utterances": utt_seen}, inter
        )

    keep, exclusions = _cascade(ch)
    order = {spec.filename: i for i, spec in enumerate(schema.FILES)}
    # File-level errors (an empty file) lead: they explain the row-level ones that follow.
    errors = sorted(
        (e for s in ch.sinks.values() for e in s.errors),
        key=lambda e: (
            e.line is not None,
            order.get(e.file, 99),
            e.line if e.line is not None else -1,
        ),
    )
    warnings = sorted(
        (w for s in ch.sinks.values() for w in s.warnings),
        key=lambda e: (order.get(e.file, 99), e.line if e.line is not None else -1),
    )
    info = [
        ValidationIssue(
            f,
            None,
            key,
            n,
            f"unknown field in {n:,} record(s); tolerated and ignored",
            "unknown field",
            "info",
        )
        for (f, key), n in sorted(
            ch.extra_keys.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])
        )
    ]
    files = {
        role: {
            "path": rf.path,
            "sha256": rf.sha256,
            "lines": rf.n_lines,
            "records": len(rf.records),
            "blank_lines": rf.n_blank,
        }
        for role, rf in raw.items()
    }
    report = ValidationReport(str(folder), files, errors, warnings, info, exclusions, list(notes))
    return CheckedRelease(raw, keep, report, ch.history)


def _cascade(ch: _Checker) -> tuple[dict[str, np.ndarray], ExclusionReport]:
    """Exclude rows with errors, then their dependants; count every exclusion."""
    ex = ExclusionReport()
    keep: dict[str, np.ndarray] = {}
    excluded_ids: dict[str, set[str]] = {}
    parents = {
        "survey": (),
        "conversations": (("user_id", "survey", "parent participant excluded"),),
        "utterances": (
            ("conversation_id", "conversations", "parent conversation excluded"),
            ("user_id", "survey", "parent participant excluded"),
        ),
        "metadata": (
            ("utterance_id", "utterances", "parent utterance excluded"),
            ("conversation_id", "conversations", "parent conversation excluded"),
            ("user_id", "survey", "parent participant excluded"),
        ),
    }
    for role, rf in ch.raw.items():
        sink = ch.sinks[role]
        name = rf.filename
        ex.rows[name] = rf.n_lines
        for line, message, _ in rf.bad_lines:
            ex.add(name, _line_rule(message), line)
        mask = np.ones(len(rf.records), dtype=bool)
        for k, issue in sink.first_error.items():
            mask[k] = False
            ex.add(name, issue.reason, rf.lines[k])
        for key, parent, reason in parents[role]:
            gone = excluded_ids.get(parent, set())
            if not gone:
                continue
            for k, r in enumerate(rf.records):
                if mask[k] and r.get(key) in gone:
                    mask[k] = False
                    ex.add(name, reason, rf.lines[k])
        keep[role] = mask
        id_field = schema.FILE_BY_ROLE[role].id_field
        if id_field:
            ids = _ids(rf.records, id_field)
            kept_ids = {v for k, v in enumerate(ids) if mask[k] and type(v) is str}
            gone_ids = {v for k, v in enumerate(ids) if not mask[k] and type(v) is str}
            gone_ids |= {s for _, _, s in rf.bad_lines if s is not None}
            excluded_ids[role] = gone_ids - kept_ids
    return keep, ex


# --- entry points ---------------------------------------------------------------------------


def read_release(
    folder: str | os.PathLike[str], *, metadata: bool | None = None
) -> tuple[dict[str, RawFile], list[str]]:
    """Locate and parse the release files of *folder*.

    Parameters
    ----------
    metadata
        ``None``: read ``metadata.jsonl`` when present; ``True``: require it;
        ``False``: ignore it.

    Raises
    ------
    PrismDataNotFound
        When a required file is missing (the message says how to obtain the release).
    """
    roles = ["survey", "conversations", "utterances"] + ([] if metadata is False else ["metadata"])
    found, notes = find_release_files(folder, roles=roles)
    required = ["survey", "conversations", "utterances"] + (["metadata"] if metadata else [])
    missing = [schema.FILE_BY_ROLE[r].filename for r in required if r not in found]
    if missing:
        raise PrismDataNotFound(how_to_obtain(missing, folder))
    return {role: read_jsonl(found[role], role) for role in roles if role in found}, notes


def validate_release(
    folder: str | os.PathLike[str], *, strict: bool = False, metadata: bool | None = None
) -> ValidationReport:
    """Validate the release in *folder* and report every finding.

    Parameters
    ----------
    folder
        Folder holding ``survey.jsonl``, ``conversations.jsonl``, ``utterances.jsonl``
        (plain or ``.gz``; searched recursively) and optionally ``metadata.jsonl``.
    strict
        If true, raise :class:`PrismValidationError` when there is any error (its
        message leads with the first error as ``file:line: field 'x': ...``).
    metadata
        ``None`` validates ``metadata.jsonl`` when present, ``True`` requires it,
        ``False`` skips it.

    Returns
    -------
    ValidationReport
        Errors, warnings, info, per-file counts and the lenient-mode exclusions.

    Raises
    ------
    PrismDataNotFound
        If a required file is missing.
    PrismValidationError
        In strict mode, if the release has errors.
    """
    raw, notes = read_release(folder, metadata=metadata)
    checked = check_release(raw, str(Path(folder)), notes)
    if strict and checked.report.errors:
        raise PrismValidationError(checked.report)
    return checked.report
