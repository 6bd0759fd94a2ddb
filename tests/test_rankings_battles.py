"""Battles, ties and the pair-count tables on a hand-built release and hand-made battles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_helpers import copy_release, edit_row, find_line
from prism_stats.data import load_prism
from prism_stats.rankings import (
    RankingError,
    average_win_rate,
    battles,
    outcome_shares,
    pair_counts,
    raw_win_totals,
    win_counts,
    win_rate_matrix,
)
from prism_stats.rankings.battles import winner_order


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """release_mini with c0's opening scores set by hand: command 70, gpt-4 75, claude-2 64,
    palm-2 70 (within_turn_id 0-3); gpt-4 stays the chosen, highest answer."""
    folder = copy_release(tmp_path_factory.mktemp("mini"), metadata=False)
    scores = {0: 70, 1: 75, 2: 64, 3: 70}
    for wid, score in scores.items():
        line = find_line(folder, "utterances.jsonl", conversation_id="c0", turn=0, within_turn_id=wid)
        edit_row(folder, "utterances.jsonl", line, lambda r, s=score: r.__setitem__("score", s))

    def history(conv: dict) -> None:  # the conversation record repeats the scores
        for item in conv["conversation_history"]:
            if item["role"] == "model" and item["turn"] == 0:
                item["score"] = scores[item["within_turn_id"]]

    edit_row(folder, "conversations.jsonl", find_line(folder, "conversations.jsonl", conversation_id="c0"),
             history)
    return load_prism(folder)


def test_every_pair_shown_together_is_one_battle(mini):
    b = battles(mini)
    # opening sizes 4,3,2,4,4,3,4,3,4,2,4: sum of k(k-1)/2
    sizes = mini.choice_sets["n_shown"].to_numpy()
    assert len(b) == int((sizes * (sizes - 1) // 2).sum()) == 47
    assert list(b.columns) == ["interaction", "conversation", "participant", "conversation_type",
                               "llm_a", "llm_b", "score_a", "score_b", "winner"]


def test_ties_within_five_points_by_hand(mini):
    b = battles(mini)
    c0 = b[b["conversation"] == "c0"]
    got = list(zip(c0["llm_a"].astype(str), c0["llm_b"].astype(str), c0["winner"].astype(str), strict=True))
    # slots a..d = command 70, gpt-4 75, claude-2 64, palm-2 70, pairs in (a,b),(a,c),(a,d),(b,c),(b,d),(c,d)
    assert got == [("command", "gpt-4", "tie"),       # |70 - 75| = 5 -> tie
                   ("command", "claude-2", "a"),      # 70 - 64 = 6 -> a wins
                   ("command", "palm-2", "tie"),      # 0 -> tie
                   ("gpt-4", "claude-2", "a"),        # 11
                   ("gpt-4", "palm-2", "tie"),        # 5
                   ("claude-2", "palm-2", "b")]       # -6 -> b wins
    strict = battles(mini, tie_margin=0)
    c0s = strict[strict["conversation"] == "c0"]["winner"].astype(str).tolist()
    assert c0s == ["b", "a", "tie", "a", "a", "b"]


def _hand_battles() -> pd.DataFrame:
    # 3 LLMs: command (C), gpt-4 (G), palm-2 (P)
    rows = [("C", "G", "a"), ("C", "G", "tie"), ("G", "C", "a"), ("C", "P", "a"), ("P", "C", "tie"),
            ("G", "P", "b"), ("G", "P", "b"), ("P", "G", "a")]
    name = {"C": "command", "G": "gpt-4", "P": "palm-2"}
    return pd.DataFrame({"participant": [f"p{i % 3}" for i in range(len(rows))],
                         "interaction": [f"i{i}" for i in range(len(rows))],
                         "llm_a": [name[a] for a, _, _ in rows], "llm_b": [name[b] for _, b, _ in rows],
                         "winner": [w for _, _, w in rows]})


def test_pair_counts_win_rates_and_win_counts_by_hand():
    b = _hand_battles()
    c = pair_counts(b)
    assert list(c["llm"].values) == ["command", "palm-2", "gpt-4"]  # vocabulary order
    wins = c["wins"].to_pandas()
    # command beat gpt-4 once, gpt-4 beat command once; command beat palm-2 once;
    # palm-2 beat gpt-4 three times (twice as b, once as a)
    assert wins.loc["command", "gpt-4"] == 1 and wins.loc["gpt-4", "command"] == 1
    assert wins.loc["command", "palm-2"] == 1 and wins.loc["palm-2", "command"] == 0
    assert wins.loc["palm-2", "gpt-4"] == 3 and wins.loc["gpt-4", "palm-2"] == 0
    assert c["ties"].to_pandas().loc["command", "gpt-4"] == 1 == c["ties"].to_pandas().loc["gpt-4", "command"]
    assert c["battles"].to_pandas().loc["command", "gpt-4"] == 3
    rate = win_rate_matrix(b).to_pandas()
    assert rate.loc["command", "gpt-4"] == pytest.approx(1 / 3)  # the tie is a non-win in the denominator
    assert rate.loc["command", "palm-2"] == pytest.approx(1 / 2)
    assert rate.loc["palm-2", "gpt-4"] == pytest.approx(1.0)
    assert np.isnan(rate.loc["command", "command"])
    both = win_counts(b).to_pandas()
    assert both.loc["command", "gpt-4"] == 2 and both.loc["gpt-4", "command"] == 2  # tie counted for both
    totals = raw_win_totals(b)
    assert totals.to_dict() == {"command": 4.0, "palm-2": 4.0, "gpt-4": 2.0}
    avg = average_win_rate(b)
    assert avg["palm-2"] == pytest.approx((0.0 + 1.0) / 2)
    assert outcome_shares(b).to_dict() == pytest.approx({"a": 4 / 8, "b": 2 / 8, "tie": 2 / 8})


def test_winner_order_is_the_originals_item_order():
    # comparisons (ties both ways first, then a-wins, then b-wins): winners
    # C,G (tie C-G), P,C (tie P-C), C,G,C,P (a wins), P,P (b wins) -> C 4, P 4, G 2;
    # C appears before P -> C, P, G
    assert winner_order(_hand_battles()) == ["command", "palm-2", "gpt-4"]


def test_bad_battle_input_is_an_error():
    with pytest.raises(RankingError, match="choice sets lack columns"):
        battles(pd.DataFrame({"participant": ["p"]}))
    b = _hand_battles()
    b.loc[0, "llm_a"] = "gpt-5"
    with pytest.raises(RankingError, match="unknown LLM"):
        pair_counts(b)
