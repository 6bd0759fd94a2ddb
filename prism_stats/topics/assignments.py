"""Conversation -> topic tables: the :class:`TopicAssignments` type and reading a user's table.

Every analysis of :mod:`prism_stats.topics` consumes a :class:`TopicAssignments`: one
row per conversation (``conversation``, ``topic``, ``topic_label``) and one row per
topic (``topic``, ``topic_label``, ``size``, ``share``, ``top_terms``). Topic ids are
integers; ``-1`` is the outliers' class (HDBSCAN's noise label, as in the study), which
counts as 0 in every topic regression. The table comes from
:func:`prism_stats.topics.discover_topics` or from a file (:func:`read_assignments`, e.g.
the study's released cluster assignments), in which case discovery is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OUTLIER = -1
OUTLIER_LABEL = "Outliers"

#: Accepted column names of an assignments file (first match wins).
CONVERSATION_COLUMNS = ("conversation", "conversation_id")
TOPIC_COLUMNS = ("topic", "topic_id", "cluster_id", "cluster")
LABEL_COLUMNS = ("topic_label", "cluster_name", "label", "name")


class TopicError(ValueError):
    """Topic inputs or settings are invalid (the message names what and where)."""


def _examples(values: Iterable[Any], n: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


@dataclass
class TopicAssignments:
    """The topic of every conversation, and the topics.

    Attributes
    ----------
    table : DataFrame
        ``conversation`` (str), ``topic`` (int, -1 = outliers), ``topic_label`` (str).
    topics : DataFrame
        One row per topic, outliers first: ``topic``, ``topic_label``, ``size``, ``share``,
        ``top_terms`` (comma-separated; empty when unknown).
    source : str
        ``"discovered"`` or the file it was read from.
    settings : dict
        How it was made (embeddings, UMAP/HDBSCAN settings, seed, timings) or read.
    embeddings : Embeddings or None
        The prompt embeddings discovery used (reused by the neighbourhoods; not saved).
    """

    table: pd.DataFrame
    topics: pd.DataFrame
    source: str = "discovered"
    settings: dict[str, Any] = field(default_factory=dict)
    embeddings: Any = field(default=None, repr=False)

    @property
    def labels(self) -> dict[int, str]:
        """Topic id -> label."""
        return dict(zip(self.topics["topic"].astype(int), self.topics["topic_label"], strict=True))

    def topic_ids(self, *, outliers: bool = False) -> list[int]:
        """Topic ids in table order (without -1 unless *outliers*)."""
        ids = [int(t) for t in self.topics["topic"]]
        return ids if outliers else [t for t in ids if t != OUTLIER]

    def summary(self) -> dict[str, Any]:
        """Counts: conversations, topics, outliers."""
        n = len(self.table)
        n_out = int((self.table["topic"] == OUTLIER).sum())
        return {"conversations": n, "topics": len(self.topic_ids()), "outliers": n_out,
                "outlier_share": n_out / n if n else float("nan"), "source": self.source}


def topic_table(table: pd.DataFrame, labels: dict[int, str] | None = None,
                top_terms: dict[int, list[str]] | None = None) -> pd.DataFrame:
    """The per-topic table (outliers first, then topic id order) of an assignments table.

    A label used by two topics gets the id appended the second time (labels serve as
    coordinates and must be unique).
    """
    counts = table["topic"].value_counts()
    ids = sorted(int(t) for t in counts.index)
    labels = labels or {}
    top_terms = top_terms or {}
    names: list[str] = []
    for t in ids:  # labels name coordinates downstream: make them unique
        name = str(labels.get(t, OUTLIER_LABEL if t == OUTLIER else f"Topic {t}"))
        names.append(f"{name} ({t})" if name in names else name)
    return pd.DataFrame({
        "topic": ids,
        "topic_label": names,
        "size": [int(counts[t]) for t in ids],
        "share": [int(counts[t]) / len(table) for t in ids],
        "top_terms": [", ".join(top_terms.get(t, [])) for t in ids],
    })


def _pick(columns: Iterable[str], candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _integer_topics(values: pd.Series, where: str) -> np.ndarray:
    """Topic ids as integers; blank or non-integer values are errors naming the line."""
    raw = values.astype("string").str.strip()
    as_num = pd.to_numeric(raw, errors="coerce")
    bad = raw.isna() | (raw == "") | as_num.isna() | (as_num != np.floor(as_num))
    if bad.any():
        lines = [f"line {i + 2}: {v!r}" for i, v in zip(np.flatnonzero(bad), raw[bad], strict=True)]
        raise TopicError(f"{where}: topic ids must be integers (-1 = outliers); got "
                         f"{_examples(lines, 3)}")
    return as_num.to_numpy().astype(int)


def read_topic_labels(path: str | Path) -> dict[int, str]:
    """A topic table file (CSV: ``topic`` and ``topic_label`` columns, or the aliases of
    :data:`TOPIC_COLUMNS` / :data:`LABEL_COLUMNS`) as id -> label: the known topics."""
    path = Path(path)
    frame = _read_table(path)
    tcol, lcol = _pick(frame.columns, TOPIC_COLUMNS), _pick(frame.columns, LABEL_COLUMNS)
    if tcol is None or lcol is None:
        raise TopicError(f"{path}: a topic table needs a topic id column (one of "
                         f"{list(TOPIC_COLUMNS)}) and a label column (one of {list(LABEL_COLUMNS)}); "
                         f"found {list(frame.columns)}")
    ids = _integer_topics(frame[tcol], str(path))
    dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
    if len(dup):
        raise TopicError(f"{path}: topic id(s) listed twice: {_examples(dup.tolist())}")
    return dict(zip(ids.tolist(), frame[lcol].astype(str), strict=True))


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise TopicError(f"{path}: no such file")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TopicError(f"{path}: not a readable CSV/TSV file ({exc})") from None


def assignments_from_frame(frame: pd.DataFrame, conversations: Iterable[str], *,
                           source: str = "<table>",
                           known_topics: dict[int, str] | None = None) -> TopicAssignments:
    """Validate a conversation -> topic table against the data's conversations.

    Parameters
    ----------
    frame
        Columns: a conversation id (one of :data:`CONVERSATION_COLUMNS`), an integer topic
        id (:data:`TOPIC_COLUMNS`; -1 = outliers) and optionally a label
        (:data:`LABEL_COLUMNS`).
    conversations
        The conversation ids of the data (every one must be assigned exactly once).
    source
        Name used in error messages (the file).
    known_topics
        The topics the ids must come from (id -> label), e.g. the study's topic list;
        ``None``: any integer id is a topic.

    Raises
    ------
    TopicError
        Missing columns; blank, non-integer or unknown topic ids; unknown, duplicated or
        missing conversation ids; one id with two labels. The message names them.
    """
    ccol = _pick(frame.columns, CONVERSATION_COLUMNS)
    tcol = _pick(frame.columns, TOPIC_COLUMNS)
    if ccol is None or tcol is None:
        raise TopicError(f"{source}: an assignments table needs a conversation column (one of "
                         f"{list(CONVERSATION_COLUMNS)}) and a topic column (one of "
                         f"{list(TOPIC_COLUMNS)}); found {list(frame.columns)}")
    lcol = _pick(frame.columns, LABEL_COLUMNS)
    conv = frame[ccol].astype(str).str.strip().to_numpy()
    topic = _integer_topics(frame[tcol], source)
    known_conv = pd.Index([str(c) for c in conversations])
    unknown = pd.Index(conv).difference(known_conv)
    if len(unknown):
        raise TopicError(f"{source}: {len(unknown)} conversation id(s) not in the data: "
                         f"{_examples(unknown.tolist())}")
    dup = pd.Index(conv)[pd.Index(conv).duplicated()].unique()
    if len(dup):
        raise TopicError(f"{source}: conversation id(s) assigned more than once: "
                         f"{_examples(dup.tolist())}")
    missing = known_conv.difference(pd.Index(conv))
    if len(missing):
        raise TopicError(f"{source}: {len(missing)} conversation(s) of the data have no topic: "
                         f"{_examples(missing.tolist())} (assign them, -1 for outliers)")
    if known_topics is not None:
        allowed = set(known_topics) | {OUTLIER}
        unknown_t = sorted(set(topic.tolist()) - allowed)
        if unknown_t:
            raise TopicError(f"{source}: unknown topic id(s) {_examples(unknown_t)} (known: "
                             f"{_examples(sorted(allowed), 30)})")
    labels: dict[int, str] = dict(known_topics or {})
    if lcol is not None:
        pairs = pd.DataFrame({"t": topic, "l": frame[lcol].astype(str).str.strip()}).drop_duplicates()
        clash = pairs[pairs["t"].duplicated(keep=False)]
        if len(clash):
            t0 = int(clash["t"].iloc[0])
            raise TopicError(f"{source}: topic {t0} has more than one label: "
                             f"{_examples(clash.loc[clash['t'] == t0, 'l'].tolist())}")
        for t, lab in zip(pairs["t"], pairs["l"], strict=True):
            if known_topics is not None and int(t) in known_topics and known_topics[int(t)] != lab:
                raise TopicError(f"{source}: topic {int(t)} is labelled {lab!r} but the topic "
                                 f"table calls it {known_topics[int(t)]!r}")
            labels.setdefault(int(t), lab)
    order = pd.Series(np.arange(len(known_conv)), index=known_conv)
    table = pd.DataFrame({"conversation": conv, "topic": topic})
    table = table.iloc[np.argsort(order[table["conversation"]].to_numpy())].reset_index(drop=True)
    topics = topic_table(table, labels)
    table["topic_label"] = table["topic"].map(dict(zip(topics["topic"], topics["topic_label"],
                                                       strict=True)))
    return TopicAssignments(table, topics, source=source,
                            settings={"read_from": source, "known_topics": known_topics is not None})


def read_assignments(path: str | Path, conversations: Iterable[str], *,
                     topics: str | Path | dict[int, str] | None = None) -> TopicAssignments:
    """Read a conversation -> topic file (CSV or TSV) and validate it (skips discovery).

    Parameters
    ----------
    path
        The file: a conversation id column, an integer topic id column (-1 = outliers) and
        optionally a label column (see :func:`assignments_from_frame` for the names).
    conversations
        The data's conversation ids (``data.conversations["conversation"]``).
    topics
        The known topics: a topic table file (:func:`read_topic_labels`) or id -> label.
    """
    path = Path(path)
    known = read_topic_labels(topics) if isinstance(topics, (str, Path)) else topics
    return assignments_from_frame(_read_table(path), conversations, source=str(path),
                                  known_topics=known)
