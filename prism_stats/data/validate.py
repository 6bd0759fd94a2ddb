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

This module runs the checks and decides the exclusions; the findings and reports are
:mod:`~prism_stats.data.issues`, the field checks :mod:`~prism_stats.data.fields`, the
conversation and utterance checks :mod:`~prism_stats.data.conversation_checks` and
:mod:`~prism_stats.data.utterance_checks`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import schema
from .conversation_checks import _ConversationChecks
from .fields import _check_object, _ids, _line_rule, _Sink, _str_or_none
from .io import PrismDataNotFound, RawFile, find_release_files, how_to_obtain, read_jsonl
from .issues import ExclusionReport, PrismValidationError, ValidationIssue, ValidationReport
from .utterance_checks import _UtteranceChecks

__all__ = ["validate_release"]


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


class _Checker(_ConversationChecks, _UtteranceChecks):
    """Validates parsed release files; collects every finding in per-file sinks."""

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
