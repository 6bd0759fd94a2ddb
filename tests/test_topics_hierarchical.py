"""The hierarchical model of topic choice against planted truth (small, seeded, real MCMC).

Topics are drawn by the generator's topic process (``prism_stats.synth.topics``) for 500 synthetic
participants, with seven of its planted topics, so the true average effect of every
factor level on every topic (percentage points, over the drawn conversations and
participant effects -- the model's estimand) is known. The model must cover the truth
with its 90% intervals at close to the nominal rate and find the large planted effects.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from prism_stats import synth
from prism_stats.synth import topics as synth_topics
from prism_stats.topics import assignments_from_frame, topic_design
from prism_stats.topics.hierarchical import collapse, compare_with_lpm, fit_topic_model

TEST_TOPICS = ("Managing Relationships", "Religion and Spirituality", "Israel-Palestine Conflict",
               "Election and Political Parties", "Recipe and Cooking Queries",
               "Gender and LGBTQ+ Identity", "Job Search")


def planted_design(participants: int = 500, seed: int = 8):
    rngs = synth.stage_rngs(seed)
    people = synth.make_participants(participants, rngs["participants"])
    design = synth.make_design(people, rngs["design"])
    process = synth_topics.TopicProcess(
        topics=tuple(t for t in synth_topics.TOPICS if t.name in TEST_TOPICS))
    draw = synth_topics.draw_topics(people, design.conversations, rngs["topics"], process)
    levels = synth_topics.participant_levels(people)
    ids = [f"p{i}" for i in range(len(people))]
    data = SimpleNamespace(
        participants=pd.DataFrame({"participant": ids, "gender": levels["gender"],
                                   "age": levels["age"], "special_region": levels["region"],
                                   "ethnicity_simplified": levels["ethnicity"],
                                   "religion_simplified": levels["religion"]}),
        conversations=pd.DataFrame({
            "conversation": [f"c{i}" for i in range(len(draw.topic))],
            "participant": np.array(ids)[draw.participant],
            "conversation_type": design.conversations["conversation_type"].astype(str)}))
    asg = assignments_from_frame(draw.assignments(), data.conversations["conversation"])
    return topic_design(data, asg), draw


def test_collapse_is_exact():
    design, _ = planted_design(participants=80, seed=3)
    c = collapse(design)
    assert c.n.sum() == len(design.frame) == c.counts_p.sum() == c.counts_t.sum()
    assert c.classes[0] == -1 and c.labels[0] == "(no topic)"
    np.testing.assert_array_equal(c.counts_p.sum(1), c.n.sum(1))
    # a participant's row of Xp is their factor levels
    row = design.frame.groupby("participant").first().loc[c.participants[0]]
    on = c.terms_p.loc[c.Xp[0] == 1, "term"].tolist()
    assert all(t.split(": ", 1)[1] == row[t.split(": ", 1)[0]] for t in on)


@pytest.mark.mcmc
@pytest.mark.slow
def test_planted_effects_are_recovered_within_90_percent_intervals():
    design, draw = planted_design()
    fit = fit_topic_model(design, chains=2, draws=250, tune=250, seed=3, effect_draws=150)
    truth = draw.effects().rename(columns={"topic": "topic_label"})
    m = fit.effects.merge(truth, on=["topic_label", "term"], how="inner")
    assert len(m) == len(fit.effects)  # every estimated effect has a true value
    inside = (m["q05"] <= m["pp"]) & (m["pp"] <= m["q95"])
    # Stated rate: at least 85% of the 217 topic x term effects (nominal 90%; measured
    # 93.5-95% over sampler seeds 1-4 and 3). Partial pooling calibrates intervals over the
    # family of effects, not each one: zero effects are covered (measured 100%), moderate
    # planted effects of levels held by few people (-2 to -3 pp for 34-64 people) are
    # shrunk towards 0 and often missed, so for the 31 planted non-zero effects the stated
    # rate is 45% (measured 55-68%).
    assert inside.mean() >= 0.85, inside.mean()
    assert inside[~m["planted"]].mean() >= 0.9
    assert inside[m["planted"]].mean() >= 0.45, m.loc[m["planted"] & ~inside]
    strong = m.set_index(["topic_label", "term"]).loc[[
        ("Managing Relationships", "conversation type: values guided"),
        ("Recipe and Cooking Queries", "conversation type: controversy guided"),
        ("Israel-Palestine Conflict", "conversation type: controversy guided")]]
    assert (strong["p_direction"] > 0.99).all()
    assert (np.sign(strong["mean"]) == np.sign(strong["pp"])).all()
    # a gross-failure check only: the pooling scales mix slowly at 250 + 250 draws (R-hat
    # 1.03-1.06 measured), and a cold or warm compile gives different chains for one seed
    assert fit.diagnostics["max_rhat"] < 1.1 and fit.diagnostics["divergences"] == 0
    assert fit.settings["reference_class"] == "(no topic)"
    # disagreement table against the regressions has the documented columns
    from prism_stats.topics import topic_regressions

    dis = compare_with_lpm(fit.effects, topic_regressions(design))
    assert {"lpm_pp", "model_pp", "significant_lpm", "credible_model"} <= set(dis.columns)
    assert (dis["significant_lpm"] != dis["credible_model"]).all()
