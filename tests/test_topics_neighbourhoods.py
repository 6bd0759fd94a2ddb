"""Near-duplicate neighbourhoods (single link at cosine thresholds) and adjusted entropy,
on hand-built vectors and authors whose answers are known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from prism_stats.topics.neighbourhoods import (
    _clopper_pearson,
    adjusted_entropy,
    entropy_bits,
    neighbourhood_analysis,
    neighbourhoods,
)


def _unit(deg: float) -> list[float]:
    r = np.deg2rad(deg)
    return [np.cos(r), np.sin(r), 0.0]


def test_single_link_chains_and_thresholds():
    # cosine distance 1 - cos(angle): 10 deg -> 0.0152, 20 deg -> 0.0603, 30 deg -> 0.134
    v = np.array([_unit(0), _unit(10), _unit(20), _unit(90), _unit(90), [0, 0, 1], [0, 0, 0]])
    h = neighbourhoods(v, (0.05, 0.125, 0.2))
    by_t = {t: sorted(g.groupby("neighbourhood")["prompt"].apply(sorted).tolist())
            for t, g in h.groupby("threshold")}
    # 0.05: 0-1 and 1-2 are 10 deg apart -> one chain of three (single link); 3-4 identical
    assert by_t[0.05] == [[0, 1, 2], [3, 4]]
    assert by_t[0.2] == [[0, 1, 2], [3, 4]]
    assert h.attrs["empty"] == 1  # the zero vector joins nothing
    # the largest neighbourhood is numbered 0
    assert h.loc[(h["threshold"] == 0.05) & (h["prompt"] == 0), "neighbourhood"].item() == 0
    # sparse input gives the same
    hs = neighbourhoods(sparse.csr_matrix(v), (0.05, 0.125, 0.2))
    pd.testing.assert_frame_equal(h.reset_index(drop=True), hs.reset_index(drop=True))


def test_threshold_decides_links():
    v = np.array([_unit(0), _unit(25)])  # distance 1 - cos 25 = 0.0937
    h = neighbourhoods(v, (0.05, 0.125))
    assert set(h["threshold"]) == {0.125}


def test_entropy_bits_by_hand():
    np.testing.assert_allclose(entropy_bits(np.array([[0, 0], [0, 1], [0, 1], [2, 3]])),
                               [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(entropy_bits(np.array([[0, 0, 1, 1, 2, 2, 3, 3]])), [2.0])
    np.testing.assert_allclose(entropy_bits(np.array([[0, 0, 0, 1]])),
                               [-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))])


def test_adjusted_entropy_against_the_exact_expectation():
    # Authors' attribute: half 0, half 1 among 1,000 prompts. For k = 2 random prompts the
    # expected entropy is P(different) = 2 * 500 * 500 / (1000 * 999) bits.
    codes = pd.DataFrame({"a": np.repeat([0, 1], 500)})
    members = pd.DataFrame({"threshold": 0.1, "prompt": [0, 1, 2, 600],
                            "neighbourhood": [0, 0, 1, 1]})
    e = adjusted_entropy(members, codes, replicates=20000, seed=1).set_index("neighbourhood")
    expected = 2 * 500 * 500 / (1000 * 999)
    assert e.loc[0, "expected"] == pytest.approx(expected, abs=0.01)
    assert e.loc[0, "entropy"] == 0 and not e.loc[0, "at_or_above"]
    assert e.loc[1, "entropy"] == 1 and e.loc[1, "at_or_above"]
    assert e.loc[1, "adjusted"] == pytest.approx(1 - expected, abs=0.01)


def test_clopper_pearson_interval():
    from scipy.stats import binomtest

    ci = binomtest(7, 20).proportion_ci(0.99, method="exact")
    assert _clopper_pearson(7, 20) == pytest.approx((ci.low, ci.high))
    assert _clopper_pearson(0, 5)[0] == 0 and _clopper_pearson(5, 5)[1] == 1


def test_neighbourhood_analysis_summary_and_seed():
    people = pd.DataFrame({"participant": ["p0", "p1", "p2", "p3"],
                           "gender": ["Male", "Female", "Male", "Female"],
                           "age": ["18-24"] * 4, "ethnicity_simplified": ["White"] * 4,
                           "religion_simplified": ["Christian", "Muslim", "Jewish", "Other"],
                           "special_region": ["US", "UK", "US", "UK"]})
    conv = pd.DataFrame({"conversation": [f"c{i}" for i in range(8)],
                         "participant": ["p0", "p0", "p1", "p2", "p3", "p1", "p2", "p3"]})
    data = SimpleNamespace(participants=people, conversations=conv)
    v = np.array([_unit(0), _unit(1), _unit(45), _unit(46), _unit(90), _unit(120), _unit(150),
                  _unit(180)])
    a = neighbourhood_analysis(data, conv["conversation"], v, thresholds=(0.01,), seed=3)
    b = neighbourhood_analysis(data, conv["conversation"], v, thresholds=(0.01,), seed=3)
    pd.testing.assert_frame_equal(a.entropy, b.entropy)
    s = a.summary.iloc[0]
    assert s["neighbourhoods"] == 2 and s["prompts"] == 4 and s["share_prompts"] == 50
    ent = a.entropy.set_index(["neighbourhood", "attribute"])
    # neighbourhood of c0, c1: one author, so zero entropy on every attribute
    assert ent.loc[(0, "gender"), "entropy"] == 0 and ent.loc[(0, "intersectional"), "entropy"] == 0
    # c2, c3: different people (Female/Male): one bit of gender
    assert ent.loc[(1, "gender"), "entropy"] == 1
    assert s["intersectional_at_or_above"] == 50.0
    assert set(a.members["conversation"]) == {"c0", "c1", "c2", "c3"}
