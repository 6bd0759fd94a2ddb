"""describe(): the descriptive table, hand-checked on the fixture; comparison with published counts."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from data_helpers import FIXTURE, read_rows

from prism_stats import vocab
from prism_stats.data import PUBLISHED_COUNTS, Summary, compare_to_published, describe, load_prism


@pytest.fixture(scope="module")
def summary() -> Summary:
    return describe(load_prism(FIXTURE))


def level_counts(summary: Summary, var: str) -> dict[str, int]:
    df = summary.categories[var]
    return {lvl: int(c) for lvl, c in zip(df["level"], df["count"], strict=True)}


def test_overview_counts(summary: Summary):
    o = summary.overview
    assert o["participants"] == 5
    assert o["participants_with_conversations"] == 4 and o["participants_survey_only"] == 1
    assert (o["conversations"], o["interactions"], o["utterances"]) == (11, 25, 65)
    assert o["birth_countries"] == 5 and o["residence_countries"] == 5  # PNTS counts as a value
    assert o["chosen_true"] == 26 and o["chosen_false"] == 39
    assert (o["balanced_participants"], o["balanced_conversations"], o["balanced_utterances"]) == (
        2,
        6,
        36,
    )
    assert o["uk_rep"] == 1 and o["us_rep"] == 1


def test_distributions_hand_checked(summary: Summary):
    o = summary.overview
    # conversations per participant with conversations: 3, 4, 2, 2
    assert o["conversations_per_participant_mean"] == 2.75
    assert math.isclose(o["conversations_per_participant_sd"], math.sqrt(2.75 / 3))
    assert (o["conversations_per_participant_min"], o["conversations_per_participant_max"]) == (
        2,
        4,
    )
    # turns: 2,3,2,2,2,3,2,2,2,2,3
    assert math.isclose(o["turns_per_conversation_mean"], 25 / 11)
    assert (o["turns_per_conversation_min"], o["turns_per_conversation_max"]) == (2, 3)
    # scores straight from the file (independent of the tidy code)
    scores = [u["score"] for u in read_rows(FIXTURE, "utterances.jsonl")]
    assert math.isclose(o["score_mean"], statistics.fmean(scores))
    assert math.isclose(o["score_sd"], statistics.stdev(scores))
    assert (o["score_min"], o["score_max"]) == (1, 100)
    # distinct LLMs rated (all opening sets; later turns repeat the chosen one):
    # user0 c0 4 + c1 3 + c2 2 = 9; user1 c3 4 + c4 4 + c5 3 + c6 4 = 15 (no repeats);
    # user2 c7 3 + c8 4 = 7; user3 c9 2 + c10 4 = 6
    per = [9, 15, 7, 6]
    assert math.isclose(o["llms_per_participant_mean"], statistics.fmean(per))
    assert math.isclose(o["llms_per_participant_sd"], statistics.stdev(per))


def test_category_counts(summary: Summary):
    assert level_counts(summary, "gender") == {
        "Male": 2, "Female": 1, "Non-binary / third gender": 1, vocab.PREFER_NOT: 1,
    }  # fmt: skip
    assert level_counts(summary, "lm_frequency_use")["Not shown"] == 1
    assert sum(level_counts(summary, "lm_frequency_use").values()) == 5
    assert level_counts(summary, "conversation_type") == {
        "unguided": 5,
        "values guided": 3,
        "controversy guided": 3,
    }
    assert level_counts(summary, "birth_country") == {
        "USA": 1,
        "GBR": 1,
        "NGA": 1,
        "DEU": 1,
        vocab.PREFER_NOT: 1,
    }
    assert level_counts(summary, "ethnicity_simplified")["Hispanic"] == 1
    # use cases: percent of the 4 participants shown the question
    uc = summary.categories["usecase_selected"].set_index("level")
    assert uc.loc["other", "count"] == 2 and uc.loc["other", "percent"] == 50.0
    assert summary.denominators["usecases_shown"] == 4
    gender = summary.categories["gender"]
    assert np.allclose(gender["percent"], 100 * gender["count"] / 5)


def test_llm_and_provider_counts(summary: Summary):
    llms = summary.llms.set_index("llm")
    assert list(llms.index) == list(vocab.LLM_SHORT_NAMES)
    assert llms["utterances"].sum() == 65
    assert llms.loc["claude-instant-1", "utterances"] == 6  # c2 and c9: 1 opening + 2 later each
    assert llms.loc["gpt-4", "opening_appearances"] == 2 and llms.loc["gpt-4", "unique_raters"] == 2
    prov = summary.providers.set_index("provider")["utterances"]
    assert prov.sum() == 65 and prov["huggingface_api"] == 21


def test_renderings(summary: Summary):
    frame = summary.to_frame()
    assert list(frame.columns) == ["section", "quantity", "level", "value", "percent"]
    row = frame[(frame["quantity"] == "age") & (frame["level"] == "65+")].iloc[0]
    assert row["value"] == 1 and row["percent"] == 20.0
    d = json.loads(summary.to_json())
    assert d["overview"]["utterances"] == 65
    assert d["categories"]["gender"]["Male"] == {"count": 2, "percent": 40.0}
    assert d["llms"]["gpt-4"]["utterances"] == 6
    text = str(summary)
    assert (
        "Participants" in text and "Turns per conversation" in text and "claude-instant-1" in text
    )


def published_summary() -> Summary:
    """A Summary whose numbers are exactly the published ones (to test the comparison)."""
    pub = PUBLISHED_COUNTS
    cats = {
        var: pd.DataFrame(
            {"level": list(levels), "count": list(levels.values()), "percent": np.nan}
        )
        for var, levels in pub["categories"].items()
    }
    llms = pd.DataFrame(
        {
            "llm": list(pub["llm_utterances"]),
            "utterances": list(pub["llm_utterances"].values()),
            "percent": np.nan,
        }
    )
    providers = pd.DataFrame(
        {
            "provider": list(pub["provider_utterances"]),
            "utterances": list(pub["provider_utterances"].values()),
            "percent": np.nan,
        }
    )
    return Summary(overview=dict(pub["overview"]), categories=cats, llms=llms, providers=providers)


def test_published_counts_are_consistent():
    pub = PUBLISHED_COUNTS
    o = pub["overview"]
    assert o["participants_with_conversations"] + o["participants_survey_only"] == o["participants"]
    assert o["chosen_true"] + o["chosen_false"] == o["utterances"]
    assert sum(pub["llm_utterances"].values()) == o["utterances"]
    assert sum(pub["provider_utterances"].values()) == o["utterances"]
    assert sum(pub["categories"]["conversation_type"].values()) == o["conversations"]
    for var in ("age", "gender", "education", "employment", "marital", "english", "religion_categorised",
                "religion_simplified", "ethnicity_categorised", "ethnicity_simplified", "special_region",
                "lm_familiarity", "lm_direct_use", "lm_indirect_use", "lm_frequency_use", "birth_country",
                "reside_country"):  # fmt: skip
        assert sum(pub["categories"][var].values()) == o["participants"], var
    assert len(pub["categories"]["birth_country"]) == o["birth_countries"]
    assert len(pub["categories"]["reside_country"]) == o["residence_countries"]
    # tidy labels: every published level is a level of the vocabulary
    assert set(pub["categories"]["age"]) <= set(vocab.AGE_BANDS)
    assert set(pub["llm_utterances"]) == set(vocab.LLM_SHORT_NAMES)
    assert set(pub["categories"]["birth_country"]) <= set(vocab.COUNTRY_CODES)


def test_compare_matches_published_numbers():
    table = compare_to_published(published_summary())
    assert table["match"].all(), table.loc[~table["match"]]
    assert {"overview", "participants", "conversations", "utterances"} <= set(table["section"])
    pub = PUBLISHED_COUNTS
    n_levels = sum(len(v) for v in pub["categories"].values())
    assert len(table) == len(pub["overview"]) + n_levels + len(pub["llm_utterances"]) + len(
        pub["provider_utterances"]
    )


def test_compare_flags_differences_and_rounding():
    s = published_summary()
    s.overview["score_mean"] = 65.14  # rounds to the published 65.1
    s.overview["score_sd"] = 29.36  # does not round to 29.3
    s.categories["age"].loc[0, "count"] = 296
    table = compare_to_published(s).set_index(["quantity", "level"])
    assert table.loc[("score_mean", ""), "match"]
    assert not table.loc[("score_sd", ""), "match"]
    assert (
        not table.loc[("age", "18-24"), "match"] and table.loc[("age", "18-24"), "difference"] == -1
    )
    assert (~table["match"]).sum() == 2


def test_compare_on_the_fixture(summary: Summary):
    table = compare_to_published(summary).set_index(["quantity", "level"])
    assert (
        table.loc[("participants", ""), "ours"] == 5
        and not table.loc[("participants", ""), "match"]
    )
    assert table.loc[("score_max", ""), "match"]  # 100 in both
    # a level only we have is listed (published 0)
    assert table.loc[("reside_country", "ZAF"), "published"] == 86
    assert table.loc[("birth_country", "NGA"), "ours"] == 1
