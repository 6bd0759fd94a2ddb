"""Findings of the validator and their reports: issues, exclusions, the validation report.

:class:`ValidationIssue` is one finding (``file:line``, field, value, rule, message);
:class:`ExclusionReport` counts the rows that lenient mode excludes, by file and reason;
:class:`ValidationReport` gathers both for a release; :class:`PrismValidationError` is
raised by strict validation.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import schema
from .io import PrismDataError

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
