"""Stated vs revealed: correlation matrices and clustering, the generator's planted link
(off by default), and its recovery by the hierarchical model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats.synth import generate, synthesize
from prism_stats.synth.stated import StatedLink
from prism_stats.rankings.stated import SETS, attribute_correlations, attribute_frames, cluster_order


def test_correlations_are_pandas_pearson_in_clustered_order(small_data):
    corr = attribute_correlations(small_data)
    frames = attribute_frames(small_data)
    assert set(corr.matrices) == set(SETS)
    for name in SETS:
        m = corr.matrices[name]
        ref = frames[name].corr()
        assert sorted(m.columns) == sorted(ref.columns) and list(m.index) == list(m.columns)
        pd.testing.assert_frame_equal(m, ref.loc[m.index, m.columns])
    assert len(corr.matrices["joint"]) == 8 + 7 + 7
    assert set(corr.blocks.unique()) <= {1, 2, 3, 4} and len(corr.blocks) == 22
    long = corr.long()
    assert set(long.columns) == {"set", "row", "column", "r"}


def test_complete_linkage_groups_correlated_blocks():
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(2, 500))
    x = pd.DataFrame({"a": f1 + 0.3 * rng.normal(size=500), "b": f2 + 0.3 * rng.normal(size=500),
                      "c": f1 + 0.3 * rng.normal(size=500), "d": f2 + 0.3 * rng.normal(size=500)})
    order, _, blocks = cluster_order(x.corr(), n_blocks=2)
    assert {frozenset(order[:2]), frozenset(order[2:])} == {frozenset("ac"), frozenset("bd")}
    assert blocks[0] == blocks[2] != blocks[1] == blocks[3]


def test_the_link_is_off_by_default_and_changes_only_opening_scores_and_performance():
    base = generate(60, 3)
    same = generate(60, 3, stated_link=None)
    assert base.ratings["score"].equals(same.ratings["score"]) and base.stated_link is None
    linked = generate(60, 3, stated_link=True)
    assert linked.stated_link["dependence"]["factuality"] == 3.0
    assert 0 < linked.stated_link["observed_scale"] < 1
    assert base.participants.equals(linked.participants)  # same people, design, texts streams
    assert [c["values"] for c in base.texts.choice] == [c["values"] for c in linked.texts.choice]
    assert [c for c in base.texts.performance] != [c for c in linked.texts.performance]
    opening = base.design.responses["turn"].to_numpy() == 0
    assert not np.array_equal(base.ratings["latent"].to_numpy()[opening],
                              linked.ratings["latent"].to_numpy()[opening])


@pytest.mark.mcmc
@pytest.mark.slow
def test_the_planted_dependence_is_recovered(tmp_path):
    """Planted (score points per sd): dependence factuality +6, safety -4, the other five 0;
    reward 2 for every attribute. Stated rate: the planted dependences have the right sign
    with posterior probability >= 0.99 and posterior means within 40% of the truth; at least
    four of the five null attributes have 90% intervals containing 0."""
    from prism_stats.data import load_prism
    from prism_stats.rankings.stated_model import fit_stated

    link = StatedLink(dependence={"factuality": 6.0, "safety": -4.0})
    synthesize(tmp_path, 400, 5, stated_link=link)
    data = load_prism(tmp_path)
    fit = fit_stated(data, draws=400, tune=400, seed=2)
    s = fit.summary().set_index("attribute")
    assert s.loc["factuality", "p_positive"] >= 0.99 and s.loc["safety", "p_positive"] <= 0.01
    for attr, truth in (("factuality", 6.0), ("safety", -4.0)):
        assert abs(s.loc[attr, "dependence_mean"] - truth) <= 0.4 * abs(truth), s.loc[attr]
    nulls = s.drop(index=["factuality", "safety"])
    covered = (nulls["dependence_lo"] <= 0) & (nulls["dependence_hi"] >= 0)
    assert covered.sum() >= 4, nulls
    assert fit.meta["excluded"]["attribute_not_applicable"] > 0  # N/A answers are left out, counted
