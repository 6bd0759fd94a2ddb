"""Subgroups: the study's groupings, user groupings, the minimum size, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_helpers import copy_release
from prism_stats.data import load_prism
from prism_stats.rankings import RankingError, battles
from prism_stats.rankings.groups import group_seed, resolve_grouping, subgroup_rankings


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return load_prism(copy_release(tmp_path_factory.mktemp("mini"), metadata=False))


def test_study_groupings_partition_the_battles(mini):
    b = battles(mini)
    g = resolve_grouping(mini, b, "gender")
    assert list(g.masks) == ["Male", "Female", "Non-binary / third gender", "Prefer not to say"]
    assert sum(m.sum() for m in g.masks.values()) == len(b) and g.unlabelled == 0
    ct = resolve_grouping(mini, b, "conversation_type")
    assert ct.unit == "battle" and sum(m.sum() for m in ct.masks.values()) == len(b)
    rep = resolve_grouping(mini, b, "rep")
    assert set(rep.masks) == {"UK REP", "US REP"}
    # user0 is UK REP, user1 US REP; user2 and user3 have battles but no REP label
    assert set(b.loc[rep.masks["UK REP"], "participant"]) == {"user0"}
    assert rep.unlabelled == 2
    col = resolve_grouping(mini, b, "education")  # any participants column
    assert col.source == "education"


def test_small_groups_are_reported_not_dropped(mini):
    res = subgroup_rankings(mini, ["gender", "region"], min_group_size=2, replicates=5, seed=1)
    sizes = res.sizes.set_index(["grouping", "group"])
    assert sizes.loc[("all", "all"), "status"] == "ranked"
    groups = sizes.drop(index=("all", "all"))
    assert (groups["status"] == "too small").all()  # one participant per gender / region here
    assert len(res.too_small()) == len(groups)
    assert set(res.table["grouping"]) == {"all"}
    assert sizes.loc[("gender", "Male"), "n_participants"] == 1


def test_user_mapping_and_column_groupings(mini):
    mapping = {"user0": "A", "user1": "A", "user2": "B", "user3": "B"}
    res = subgroup_rankings(mini, [mapping, "religion"], names=["pairs"], min_group_size=1,
                            replicates=10, seed=2, methods=("win_rate", "rc_corrected"))
    assert {"all", "pairs", "religion"} == set(res.table["grouping"])
    a = res.table[(res.table["grouping"] == "pairs") & (res.table["group"] == "A")]
    assert set(a["ranking"]) == {"win_rate", "rc_corrected"}
    assert res.bootstraps[("pairs", "A")].sizes["replicate"] == 10


def test_errors_name_the_problem(mini):
    with pytest.raises(RankingError, match="unknown grouping 'favourite_colour'"):
        subgroup_rankings(mini, ["favourite_colour"], replicates=0)
    with pytest.raises(RankingError, match=r"group\(s\) \['lonely'\] are empty"):
        subgroup_rankings(mini, [{"user0": "A", "user4": "lonely"}], replicates=0)  # user4: survey only
    with pytest.raises(RankingError, match="unknown participant"):
        subgroup_rankings(mini, [{"nobody": "A"}], replicates=0)
    with pytest.raises(RankingError, match="is empty: no participant has a group label"):
        subgroup_rankings(mini, [pd.Series({"user0": None}, dtype=object)], replicates=0)
    with pytest.raises(RankingError, match="min_group_size"):
        subgroup_rankings(mini, ["gender"], min_group_size=0)


def test_group_streams_do_not_depend_on_other_groups(small_data):
    one = subgroup_rankings(small_data, ["gender"], replicates=30, seed=4, methods=("mle_elo",))
    two = subgroup_rankings(small_data, ["age", "gender"], replicates=30, seed=4, methods=("mle_elo",))
    key = ["grouping", "group", "ranking", "llm"]
    a = one.table.set_index(key).sort_index()
    b = two.table.set_index(key).loc[a.index]
    np.testing.assert_allclose(a["rank_lo"], b["rank_lo"])
    np.testing.assert_allclose(a["lo"], b["lo"])
    assert group_seed(4, "gender", "Male").entropy != group_seed(4, "gender", "Female").entropy
