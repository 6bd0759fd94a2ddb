"""The planted topics of the synthetic opening prompts: own random stream (nothing else of
the release changes), calibrated shares, prompt lengths, planted effects and the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats import synth
from prism_stats.synth import tables as T
from prism_stats.synth import topics as synth_topics
from prism_stats.synth.topics import (
    DEFAULT_TOPIC_PROCESS,
    NO_TOPIC,
    TopicProcess,
    all_terms,
    draw_topics,
)


@pytest.fixture(scope="module")
def people_design():
    rngs = synth.stage_rngs(5)
    people = synth.make_participants(600, rngs["participants"])
    design = synth.make_design(people, rngs["design"])
    return people, design


def test_only_the_opening_prompts_depend_on_the_topic_stream(monkeypatch):
    import importlib

    with_topics = synth.generate(60, 3).records(metadata=True)
    runner = importlib.import_module("prism_stats.synth.generate")  # the module, not the function
    monkeypatch.setattr(runner, "set_opening_prompts", lambda *a, **k: None)
    without = synth.generate(60, 3).records(metadata=True)
    for name in ("survey.jsonl", "metadata.jsonl"):
        assert with_topics[name] == without[name]
    for a, b in zip(with_topics["utterances.jsonl"], without["utterances.jsonl"], strict=True):
        if a["turn"] > 0:
            assert a == b
        else:
            assert {k: v for k, v in a.items() if k != "user_prompt"} == \
                   {k: v for k, v in b.items() if k != "user_prompt"}
    for a, b in zip(with_topics["conversations.jsonl"], without["conversations.jsonl"],
                    strict=True):
        assert a["opening_prompt"] != b["opening_prompt"] or len(a["opening_prompt"]) <= 2
        keep = ("opening_prompt", "conversation_history")
        assert {k: v for k, v in a.items() if k not in keep} == \
               {k: v for k, v in b.items() if k not in keep}
        assert a["conversation_history"][1:] == b["conversation_history"][1:]
        assert a["opening_prompt"] == a["conversation_history"][0]["content"]


def test_same_seed_same_topics(people_design):
    people, design = people_design
    a = draw_topics(people, design.conversations, np.random.default_rng(1))
    b = draw_topics(people, design.conversations, np.random.default_rng(1))
    assert a.prompts == b.prompts and (a.topic == b.topic).all()


def test_calibrated_shares_and_prompt_lengths(people_design):
    people, design = people_design
    d = draw_topics(people, design.conversations, np.random.default_rng(2))
    expected = synth_topics.softmax(d.linear_predictor(), axis=1).mean(axis=0)
    np.testing.assert_allclose(expected, DEFAULT_TOPIC_PROCESS.shares(), atol=1e-8)
    observed = np.bincount(d.topic, minlength=len(expected)) / len(d.topic)
    se = np.sqrt(expected * (1 - expected) / len(d.topic))
    assert (np.abs(observed - expected) < 5 * se + 0.01).all()
    # lengths: the published opening-prompt distribution (mean 65.7, sd 59.2)
    lengths = np.array([len(p) for p in d.prompts])
    mean, sd, _lo, hi = T.OPENING_PROMPT_CHARS
    assert lengths.min() >= 1 and lengths.max() <= hi
    assert abs(lengths.mean() - mean) < 0.1 * mean and abs(lengths.std() - sd) < 0.2 * sd


def test_topic_prompts_carry_their_vocabulary(people_design):
    people, design = people_design
    d = draw_topics(people, design.conversations, np.random.default_rng(3))
    long = [(p, k) for p, k in zip(d.prompts, d.topic, strict=True) if k > 0 and len(p) > 60]
    hits = [any(w in p.lower() for w in synth_topics.TOPICS[k - 1].words) for p, k in long]
    assert np.mean(hits) > 0.95


def test_true_effects_have_the_planted_signs(people_design):
    people, design = people_design
    d = draw_topics(people, design.conversations, np.random.default_rng(4))
    e = d.effects().set_index(["topic", "term"])
    assert set(e.index.get_level_values("term")) == set(all_terms())
    assert e.loc[("Managing Relationships", "conversation type: values guided"), "pp"] > 8
    assert e.loc[("Gender and LGBTQ+ Identity", "gender: Non-binary / third gender"), "pp"] > 3
    assert e.loc[("Israel-Palestine Conflict", "region: Middle East"), "pp"] > 3
    assert e.loc[("Recipe and Cooking Queries", "conversation type: controversy guided"), "pp"] < 0
    zero = e[~e["planted"]]
    assert (zero["logodds"] == 0).all() and zero["pp"].abs().max() < 2.5


def test_a_custom_process_and_bad_effects():
    small = TopicProcess(topics=synth_topics.TOPICS[:3], sigma_participant=0.0)
    assert small.names()[0] == NO_TOPIC and len(small.shares()) == 4
    bad = TopicProcess(topics=(synth_topics.PlantedTopic("X", 10, ("x",), {"gender: Alien": 1}),))
    with pytest.raises(ValueError, match="unknown effect terms"):
        bad.beta()


def test_synthesize_writes_the_topic_truth(synth_small):
    truth = synth_small / "truth"
    topics = pd.read_csv(truth / "topics.csv")
    conv = pd.read_json(synth_small / "conversations.jsonl", lines=True)
    assert topics["conversation"].tolist() == conv["conversation_id"].tolist()
    assert set(topics["topic"]) <= set(range(-1, 20))
    effects = pd.read_csv(truth / "topic_effects.csv")
    assert {"topic", "term", "logodds", "pp", "planted"} <= set(effects.columns)
