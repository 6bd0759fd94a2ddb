"""The participant bootstrap: seeded and reproducible, and each replicate is exactly the
methods run on the resampled participants' battles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats.rankings import (
    average_win_rate,
    bootstrap_ratings,
    bradley_terry,
    mle_elo,
    online_elo,
    pair_counts,
    point_ratings,
    rank_centrality,
    raw_win_totals,
    summarise_bootstrap,
)

LLMS = ["command", "claude-instant-1", "palm-2", "gpt-4", "flan-t5-xxl"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    strength = dict(zip(LLMS, (0.8, 0.6, 0.3, 0.1, -0.8), strict=True))
    rows = []
    for p in range(60):
        for k in range(rng.integers(4, 12)):
            a, b = rng.choice(LLMS, 2, replace=False)
            d = strength[a] - strength[b]
            w = "tie" if rng.random() < 0.15 else ("a" if rng.random() < 1 / (1 + np.exp(-d)) else "b")
            rows.append((f"user{p}", f"int{p}_{k}", a, b, w))
    return pd.DataFrame(rows, columns=["participant", "interaction", "llm_a", "llm_b", "winner"])


def test_same_seed_same_replicates_other_seed_others(table):
    a = bootstrap_ratings(table, replicates=40, seed=5)
    b = bootstrap_ratings(table, replicates=40, seed=5)
    c = bootstrap_ratings(table, replicates=40, seed=6)
    assert a["rating"].dims == ("replicate", "ranking", "llm")
    np.testing.assert_array_equal(a["rating"].values, b["rating"].values)
    assert not np.allclose(a["rating"].values, c["rating"].values, equal_nan=True)
    seq = bootstrap_ratings(table, replicates=40, seed=np.random.SeedSequence(5))
    np.testing.assert_array_equal(a["rating"].values, seq["rating"].values)


def test_a_replicate_is_the_methods_on_the_resampled_participants(table):
    R, seed = 3, 9
    boot = bootstrap_ratings(table, replicates=R, seed=seed)
    codes, people = pd.factorize(table["participant"].astype(str))
    drawn = np.random.default_rng(np.random.SeedSequence(seed)).integers(0, len(people), size=(R, len(people)))
    for r in range(R):
        rep = pd.concat([table[codes == p] for p in drawn[r]], ignore_index=True)
        got = boot["rating"].isel(replicate=r).to_pandas().T  # llm x ranking
        assert np.allclose(got["raw_wins"], raw_win_totals(rep).reindex(got.index))
        assert np.allclose(got["win_rate"], average_win_rate(rep).reindex(got.index))
        assert np.allclose(got["elo"], online_elo(rep).reindex(got.index), atol=1e-8)
        counts = pair_counts(rep, llms=list(got.index))
        assert np.allclose(got["rc_corrected"], rank_centrality(counts, normalisation="corrected"), atol=1e-10)
        assert np.allclose(got["rc_original"], rank_centrality(counts, normalisation="original"), atol=1e-10)
        assert np.allclose(got["bradley_terry"], bradley_terry(counts), atol=1e-3)
        # exact optimum vs scikit-learn's lbfgs stopping rule: within a fraction of a point
        assert np.allclose(got["mle_elo"], mle_elo(counts), atol=0.5)


def test_summary_has_rank_intervals_around_the_point_ranks(table):
    point = point_ratings(table)
    boot = bootstrap_ratings(table, replicates=200, seed=1)
    s = summarise_bootstrap(point, boot)
    assert set(s["ranking"]) == set(point.columns)
    assert (s["rank_lo"] <= s["rank_hi"]).all() and (s["lo"] <= s["hi"]).all()
    inside = (s["rank"] >= s["rank_lo"]) & (s["rank"] <= s["rank_hi"])
    assert inside.mean() > 0.9
    best = s[(s["ranking"] == "mle_elo") & (s["llm"] == "command")].iloc[0]
    assert best["p_top"] > 0.3 and best["n_failed"] == 0
