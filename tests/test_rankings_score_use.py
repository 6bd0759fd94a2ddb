"""Score use: per-rater z-scores, within-turn ranks, expressivity/centrality and the
inter- vs intra-rater disagreement on identical responses, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats.rankings.score_use import (
    identical_response_disagreement,
    normalised_scores,
    rater_scale_use,
    within_turn_rank,
)


def _ratings() -> pd.DataFrame:
    return pd.DataFrame({
        "participant": ["u1", "u1", "u1", "u1", "u2", "u2", "u2", "u3"],
        "interaction": ["i1", "i1", "i2", "i2", "i3", "i3", "i4", "i5"],
        "turn": [0, 0, 1, 1, 0, 0, 1, 0],
        "score": [60, 80, 70, 70, 50, 50, 90, 40],
        "response": ["hello", "world", "again", "again", "hello", "EMPTY STRING", "x", "y"],
    })


def test_z_scores_on_opening_turns_by_hand():
    r = _ratings()
    z = normalised_scores(r)
    # u1 opening scores 60, 80: mean 70, sd (ddof 1) 14.142...
    assert z.iloc[0] == pytest.approx(-10 / np.sqrt(200))
    assert z.iloc[2] == pytest.approx(0.0)  # a later score at the opening mean
    assert (z.iloc[4:7] == 0).all()  # u2's opening scores do not vary: 0, as the original
    assert np.isnan(z.iloc[7])  # u3 has a single score: no sd
    z_all = normalised_scores(r, basis="all")
    assert z_all.iloc[0] == pytest.approx((60 - 70) / pd.Series([60, 80, 70, 70]).std())


def test_within_turn_rank_is_seeded():
    r = _ratings()
    a, b = within_turn_rank(r, seed=1), within_turn_rank(r, seed=1)
    assert a.equals(b)
    assert a.iloc[1] == 1 and a.iloc[0] == 2  # 80 beats 60
    assert sorted(a.iloc[4:6]) == [1, 2]  # a 50/50 tie is broken


def test_expressivity_and_centrality_by_hand():
    t = rater_scale_use(_ratings()).set_index(["participant", "phase"])
    u1o = t.loc[("u1", "opening")]
    assert u1o["expressivity_range"] == 20 and u1o["centrality"] == 70 and u1o["distance_from_start"] == 20
    assert t.loc[("u1", "later"), "expressivity_range"] == 0
    assert t.loc[("u2", "opening"), "n_ratings"] == 2


def test_inter_vs_intra_rater_disagreement_by_hand():
    summary, sites = identical_response_disagreement(_ratings())
    s = summary.set_index("kind")
    # "hello": u1 gave 60, u2 gave 50 -> one inter site with range 10
    assert s.loc["inter", "n_sites"] == 1 and s.loc["inter", "mean_range"] == 10
    # "again": u1 twice (70, 70) -> one intra site with range 0
    assert s.loc["intra", "n_sites"] == 1 and s.loc["intra", "mean_range"] == 0
    assert summary.attrs["excluded_placeholders"] == 1
    assert set(sites["kind"]) == {"inter", "intra"}
