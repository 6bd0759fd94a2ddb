"""Reading a user's conversation -> topic table: every bad input is a clear error that
names what is wrong; the synthetic truth reads back as an assignments file."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from prism_stats.topics import (
    TopicError,
    assignments_from_frame,
    read_assignments,
    read_topic_labels,
)

CONVS = ["c0", "c1", "c2", "c3"]


def _write(tmp_path, rows, name="assign.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_valid_file_with_study_column_names(tmp_path):
    path = _write(tmp_path, {"conversation_id": ["c3", "c0", "c1", "c2"],
                             "cluster_id": [0, -1, 0, 1],
                             "cluster_name": ["Cooking", "Outliers", "Cooking", "Travel"]})
    a = read_assignments(path, CONVS)
    assert a.table["conversation"].tolist() == CONVS  # the data's order
    assert a.table["topic"].tolist() == [-1, 0, 1, 0]
    assert a.labels == {-1: "Outliers", 0: "Cooking", 1: "Travel"}
    t = a.topics.set_index("topic")
    assert t.loc[0, "size"] == 2 and t.loc[-1, "share"] == pytest.approx(0.25)
    assert a.topic_ids() == [0, 1] and a.summary()["outliers"] == 1


def test_unknown_conversation_ids_are_named(tmp_path):
    path = _write(tmp_path, {"conversation": CONVS + ["c99", "zz"], "topic": [0] * 6})
    with pytest.raises(TopicError, match=r"2 conversation id\(s\) not in the data: 'c99', 'zz'"):
        read_assignments(path, CONVS)


def test_unknown_topics_against_the_topic_table_are_named(tmp_path):
    labels = _write(tmp_path, {"topic": [0, 1], "topic_label": ["Cooking", "Travel"]}, "t.csv")
    path = _write(tmp_path, {"conversation": CONVS, "topic": [0, 1, 7, 9]})
    with pytest.raises(TopicError, match=r"unknown topic id\(s\) 7, 9 \(known: -1, 0, 1\)"):
        read_assignments(path, CONVS, topics=labels)
    ok = _write(tmp_path, {"conversation": CONVS, "topic": [0, 1, -1, 1]}, "ok.csv")
    assert read_assignments(ok, CONVS, topics=labels).labels[1] == "Travel"


def test_blank_and_non_integer_topics_name_the_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("conversation,topic\nc0,0\nc1,\nc2,food\nc3,1\n")
    with pytest.raises(TopicError, match=re.escape("line 3: ''")) as err:
        read_assignments(path, CONVS)
    assert "line 4: 'food'" in str(err.value) and str(path) in str(err.value)


def test_missing_duplicated_and_mislabelled(tmp_path):
    with pytest.raises(TopicError, match=r"1 conversation\(s\) of the data have no topic: 'c3'"):
        read_assignments(_write(tmp_path, {"conversation": CONVS[:3], "topic": [0, 0, 0]}), CONVS)
    with pytest.raises(TopicError, match="assigned more than once: 'c1'"):
        read_assignments(_write(tmp_path, {"conversation": CONVS + ["c1"], "topic": [0] * 5}),
                         CONVS)
    with pytest.raises(TopicError, match="topic 0 has more than one label"):
        read_assignments(_write(tmp_path, {"conversation": CONVS, "topic": [0, 0, 1, 1],
                                           "topic_label": ["A", "B", "C", "C"]}), CONVS)
    with pytest.raises(TopicError, match="needs a conversation column"):
        read_assignments(_write(tmp_path, {"id": CONVS, "topic": [0] * 4}), CONVS)
    with pytest.raises(TopicError, match="no such file"):
        read_assignments(tmp_path / "nope.csv", CONVS)


def test_topic_table_errors(tmp_path):
    with pytest.raises(TopicError, match="listed twice: 1"):
        read_topic_labels(_write(tmp_path, {"topic": [1, 1], "topic_label": ["a", "b"]}, "t.csv"))
    with pytest.raises(TopicError, match="a topic table needs"):
        read_topic_labels(_write(tmp_path, {"topic": [1]}, "u.csv"))


def test_duplicate_labels_become_unique():
    a = assignments_from_frame(pd.DataFrame({"conversation": CONVS, "topic": [0, 1, 1, 2],
                                             "topic_label": ["A", "A", "A", "B"]}), CONVS)
    assert a.topics["topic_label"].tolist() == ["A", "A (1)", "B"]
    assert a.table["topic_label"].tolist() == ["A", "A (1)", "A (1)", "B"]


def test_the_synthetic_truth_reads_back(small_data, synth_small):
    a = read_assignments(synth_small / "truth" / "topics.csv",
                         small_data.conversations["conversation"])
    assert len(a.table) == len(small_data.conversations)
    assert a.labels[-1] == "(no topic)" and "Managing Relationships" in a.labels.values()
