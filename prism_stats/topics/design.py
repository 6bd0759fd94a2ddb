"""Build the design of topic choice: each conversation's topic and its author's factors.

The study's reference levels; shared by the regressions and the hierarchical model.

Factors (SPEC §3.2): ``gender`` (reference Male), ``age`` (18-24), ``region`` =
``special_region`` (US), ``ethnicity`` = ``ethnicity_simplified`` (White), ``religion`` =
``religion_simplified`` (No Affiliation) and ``conversation type`` (unguided). "Prefer not
to say" is a level of its own; levels nobody in the data has are left out (and listed in
``TopicDesign.dropped``). A term is named ``"<factor>: <level>"`` (e.g. ``"gender:
Female"``), as in :mod:`prism_stats.comparators` and the synthetic truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .assignments import OUTLIER, TopicAssignments, TopicError

#: (factor label, column of ``participants`` or ``conversations``, reference level).
FACTORS: tuple[tuple[str, str, str], ...] = (
    ("gender", "gender", "Male"),
    ("age", "age", "18-24"),
    ("region", "special_region", "US"),
    ("ethnicity", "ethnicity_simplified", "White"),
    ("religion", "religion_simplified", "No Affiliation"),
    ("conversation type", "conversation_type", "unguided"),
)
#: Factors that are properties of the participant (constant within a cluster).
PARTICIPANT_FACTORS: tuple[str, ...] = ("gender", "age", "region", "ethnicity", "religion")


def term_name(factor: str, level: str) -> str:
    """``"<factor>: <level>"``."""
    return f"{factor}: {level}"


@dataclass
class TopicDesign:
    """Conversations with topics and factors, and the dummy-coded design.

    Attributes
    ----------
    frame : DataFrame
        One row per conversation: ``conversation``, ``participant``, ``topic``,
        ``topic_label`` and one column per factor label (level strings).
    X : DataFrame
        Conversation x term indicators (no intercept), columns in factor order.
    terms : DataFrame
        ``term``, ``factor``, ``level`` of every column of ``X``.
    topics : list of int
        The modelled topics (outliers excluded), in topic-table order.
    labels : dict
        Topic id -> label (outliers included).
    references : dict
        Factor -> reference level.
    dropped : dict
        Factor -> levels of the vocabulary that nobody in the data has.
    """

    frame: pd.DataFrame
    X: pd.DataFrame
    terms: pd.DataFrame
    topics: list[int]
    labels: dict[int, str]
    references: dict[str, str]
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def outcome(self, topic: int) -> np.ndarray:
        """``1[topic]`` per conversation (outliers and other topics 0)."""
        return (self.frame["topic"].to_numpy() == topic).astype(float)

    def participant_codes(self) -> np.ndarray:
        """Integer code of each conversation's participant (the clusters)."""
        return pd.factorize(self.frame["participant"])[0]

    @property
    def n_participants(self) -> int:
        return int(self.frame["participant"].nunique())


def _levels(values: pd.Series) -> list[str]:
    cats = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else sorted(
        values.dropna().unique())
    present = set(values.dropna().astype(str))
    return [str(c) for c in cats if str(c) in present]


def topic_design(data, assignments: TopicAssignments,
                 factors: tuple[tuple[str, str, str], ...] = FACTORS) -> TopicDesign:
    """The design of *assignments* on *data* (a :class:`~prism_stats.data.PrismData`).

    Raises
    ------
    TopicError
        A conversation's participant has no demographics, a factor column is missing, or
        a reference level has no observations.
    """
    conv = data.conversations[["conversation", "participant", "conversation_type"]].copy()
    conv["conversation"] = conv["conversation"].astype(str)
    topics = assignments.table.set_index("conversation")
    missing = pd.Index(conv["conversation"]).difference(topics.index)
    if len(missing):
        raise TopicError(f"{len(missing)} conversation(s) of the data have no topic "
                         f"(e.g. {list(missing[:3])})")
    conv["topic"] = topics.loc[conv["conversation"], "topic"].to_numpy().astype(int)
    conv["topic_label"] = topics.loc[conv["conversation"], "topic_label"].to_numpy()
    people = data.participants.set_index(data.participants["participant"].astype(str))
    frame = conv[["conversation", "participant", "topic", "topic_label"]].copy()
    frame["participant"] = frame["participant"].astype(str)
    columns, references, dropped = {}, {}, {}
    for label, column, ref in factors:
        if column in conv.columns:
            values = conv[column]
        elif column in people.columns:
            values = people.loc[frame["participant"], column].reset_index(drop=True)
        else:
            raise TopicError(f"the data have no column {column!r} (factor {label!r})")
        values = pd.Series(values.to_numpy(), index=frame.index, dtype=values.dtype)
        if values.isna().any():
            raise TopicError(f"{int(values.isna().sum())} conversation(s) have no {column!r} "
                             f"(factor {label!r})")
        levels = _levels(values)
        if ref not in levels:
            raise TopicError(f"factor {label!r}: the reference level {ref!r} has no observations")
        if isinstance(values.dtype, pd.CategoricalDtype):
            dropped[label] = [str(c) for c in values.cat.categories if str(c) not in levels]
        frame[label] = values.astype(str)
        references[label] = ref
        for lv in levels:
            if lv != ref:
                columns[term_name(label, lv)] = (label, lv)
    X = pd.DataFrame({t: (frame[f].to_numpy() == lv).astype(float)
                      for t, (f, lv) in columns.items()}, index=frame.index)
    terms = pd.DataFrame({"term": list(columns), "factor": [f for f, _ in columns.values()],
                          "level": [lv for _, lv in columns.values()]})
    ids = [t for t in assignments.topic_ids() if t != OUTLIER]
    return TopicDesign(frame, X, terms, ids, assignments.labels, references, dropped)
