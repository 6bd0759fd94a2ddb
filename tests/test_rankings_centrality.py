"""Rank Centrality: the corrected normalisation against choix and a hand-computed 3-LLM chain,
the original's normalisation quirk against a hand-computed 4-LLM matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats.rankings import compare_normalisations, rank_centrality
from prism_stats.rankings.centrality import rank_centrality_array, rank_centrality_batch, transition_matrix

EPS = 1e-6


def _stationary(P: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(P)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def test_three_llms_by_hand_and_the_quirk_vanishes():
    C = np.array([[0, 3, 1], [1, 0, 2], [0, 1, 0]], dtype=float)
    # alpha = 1: A = [[0,4,2],[2,0,3],[1,2,0]]; share of each pair won, / d_max = 2; diagonal 1 - column sum
    P = np.array([[2 / 3, 1 / 3, 1 / 3],
                  [1 / 6, 7 / 15, 3 / 10],
                  [1 / 6, 1 / 5, 11 / 30]])
    assert np.allclose(transition_matrix(C, normalisation="corrected"), P)
    scores, residual = rank_centrality_array(C, normalisation="corrected")
    assert np.allclose(scores, _stationary(P), atol=1e-10) and residual < 1e-12
    # with three items the row-major triangles pair (i, j) with (j, i): no quirk (up to the 1e-6)
    orig, _ = rank_centrality_array(C, normalisation="original")
    assert np.allclose(orig, scores, atol=1e-6)


def test_original_normalisation_quirk_by_hand_with_four_llms():
    C = np.array([[0, 5, 2, 7], [1, 0, 4, 3], [6, 2, 0, 1], [0, 8, 3, 0]], dtype=float)
    A = C + 1
    np.fill_diagonal(A, 0)
    E = np.zeros((4, 4))
    # upper (row-major) (0,1),(0,2),(0,3),(1,2),(1,3),(2,3) + lower (1,0),(2,0),(2,1),(3,0),(3,1),(3,2)
    pairs = [((0, 1), (1, 0)), ((0, 2), (2, 0)), ((0, 3), (2, 1)), ((1, 2), (3, 0)), ((1, 3), (3, 1)),
             ((2, 3), (3, 2))]
    for up, lo in pairs:
        total = A[up] + A[lo] + EPS
        E[up], E[lo] = A[up] / total, A[lo] / total
    # e.g. (0,3) is divided by A[0,3] + A[2,1] = 8 + 3, not by A[0,3] + A[3,0] = 8 + 1
    assert E[0, 3] == pytest.approx(8 / 11, rel=1e-6)
    E /= 3
    np.fill_diagonal(E, 1 - E.sum(axis=0))
    assert np.allclose(transition_matrix(C, normalisation="original"), E)
    expected = np.linalg.matrix_power(E, 1000) @ np.full(4, 0.25)
    got, _ = rank_centrality_array(C, normalisation="original")
    assert np.allclose(got, expected, atol=1e-12)
    corrected, _ = rank_centrality_array(C, normalisation="corrected")
    assert not np.allclose(got, corrected, atol=1e-3)  # the quirk changes the scores
    # the original depends on the item order, the corrected one does not
    perm = [2, 0, 3, 1]
    o2, _ = rank_centrality_array(C, normalisation="original", order=perm)
    c2, _ = rank_centrality_array(C, normalisation="corrected", order=perm)
    assert not np.allclose(o2, got, atol=1e-4) and np.allclose(c2, corrected, atol=1e-10)
    # the batched version agrees with the single one, order included
    batch = rank_centrality_batch(np.stack([C, C]), normalisation="original",
                                  orders=np.array([np.arange(4), perm]))
    assert np.allclose(batch[0], got) and np.allclose(batch[1], o2)


def test_corrected_normalisation_equals_choix():
    import choix

    from prism_stats import vocab

    rng = np.random.default_rng(7)
    llms = list(vocab.LLM_SHORT_NAMES)
    n = len(llms)
    strength = rng.normal(0, 0.6, n)
    rows = []
    for _ in range(3000):
        a, b = rng.choice(n, 2, replace=False)
        d = strength[a] - strength[b]
        u = rng.random()
        winner = "tie" if u < 0.15 else ("a" if rng.random() < 1 / (1 + np.exp(-d)) else "b")
        rows.append((llms[a], llms[b], winner))
    b = pd.DataFrame(rows, columns=["llm_a", "llm_b", "winner"]).assign(participant="p")
    ours = rank_centrality(b, normalisation="corrected")
    data = [(llms.index(x), llms.index(y)) for x, y, w in rows if w == "a"]
    data += [(llms.index(y), llms.index(x)) for x, y, w in rows if w == "b"]
    data += [p for x, y, w in rows if w == "tie" for p in ((llms.index(x), llms.index(y)),
                                                           (llms.index(y), llms.index(x)))]
    params = choix.rank_centrality(n, data, alpha=1.0)
    logs = np.log(ours.reindex(llms).to_numpy())
    assert np.allclose(logs - logs.mean(), params, atol=1e-6)
    assert ours.sum() == pytest.approx(1.0) and ours.attrs["residual"] < 1e-8
    table = compare_normalisations(b)
    assert set(table.columns) >= {"rc_original", "rc_corrected", "rank_original", "rank_corrected", "rank_change"}
    assert (table["rank_change"] == table["rank_corrected"] - table["rank_original"]).all()
