"""Tidy tables of PrismData: contract columns, dtypes, vocabularies and hand-checked values."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_helpers import FIXTURE, copy_release, read_rows

from prism_stats import vocab
from prism_stats.data import CHOICE_SLOTS, PrismData, PrismDataNotFound, load_prism


@pytest.fixture(scope="module")
def data() -> PrismData:
    return load_prism(FIXTURE)


def cats(series: pd.Series) -> list[str]:
    assert isinstance(series.dtype, pd.CategoricalDtype), series.name
    return list(series.cat.categories)


def by(df: pd.DataFrame, key: str) -> pd.DataFrame:
    return df.set_index(key, drop=False)


# --- participants -------------------------------------------------------------------------------


def test_participant_columns_and_vocabularies(data: PrismData):
    p = data.participants
    assert len(p) == 5 and p["participant"].tolist() == [f"user{i}" for i in range(5)]
    expected = {
        "age": vocab.AGE_BANDS,
        "gender": vocab.GENDERS,
        "sex": vocab.CENSUS_SEXES,
        "ethnicity_categorised": vocab.ETHNICITY_CATEGORISED,
        "ethnicity_simplified": vocab.ETHNICITY_SIMPLIFIED,
        "ethnicity": vocab.ETHNICITY_GROUPS,
        "religion_categorised": vocab.RELIGION_CATEGORISED,
        "religion_simplified": vocab.RELIGION_SIMPLIFIED,
        "education": vocab.EDUCATION,
        "employment": vocab.EMPLOYMENT,
        "marital": vocab.MARITAL,
        "english": vocab.ENGLISH,
        "lm_familiarity": vocab.LM_FAMILIARITY,
        "lm_direct_use": vocab.YES_NO_UNSURE,
        "lm_indirect_use": vocab.YES_NO_UNSURE,
        "lm_frequency_use": vocab.LM_FREQUENCY,
        "birth_country": vocab.COUNTRY_CODES,
        "reside_country": vocab.COUNTRY_CODES,
        "birth_region": vocab.REGIONS,
        "reside_region": vocab.REGIONS,
        "birth_subregion": vocab.SUBREGIONS,
        "reside_subregion": vocab.SUBREGIONS,
        "special_region": vocab.SPECIAL_REGIONS,
    }
    for col, vocabulary in expected.items():
        assert cats(p[col]) == list(vocabulary), col
    for col in ("survey_only", "in_uk_rep", "in_us_rep", "balanced"):
        assert p[col].dtype == bool, col
    assert p["n_conversations"].dtype == np.int64
    assert p["participant"].dtype == "str" and p["study_locale"].dtype == "str"
    prefs = [f"pref_{k}" for k in vocab.STATED_PREF_KEYS if k != "other_text"]
    assert len(prefs) == 9 and all(p[c].dtype == float for c in prefs)


def test_participant_values(data: PrismData):
    p = by(data.participants, "participant")
    assert p["age"].astype(str).tolist() == ["25-34", "45-54", "18-24", vocab.PREFER_NOT, "65+"]
    # sex: Male/Female or NA (non-binary user2, PNTS user3)
    assert p["sex"].astype(object).where(p["sex"].notna(), None).tolist() == [
        "Male",
        "Female",
        None,
        None,
        "Male",
    ]
    # census ethnicity: Hispanic / Latino -> Other; Prefer not to say stays its own level
    assert p["ethnicity"].astype(str).tolist() == [
        "White",
        "Other",
        "Black",
        vocab.PREFER_NOT,
        "White",
    ]
    assert p.loc["user3", "religion_simplified"] == "No Affiliation"  # Spiritual
    assert p.loc["user2", "birth_country"] == "NGA" and p.loc["user2", "reside_country"] == "ZAF"
    assert (
        p.loc["user3", "birth_country"] == vocab.PREFER_NOT
        and p.loc["user3", "special_region"] == vocab.PREFER_NOT
    )
    assert p["n_conversations"].tolist() == [3, 4, 2, 2, 0]
    assert p["survey_only"].tolist() == [False, False, False, False, True]
    assert p["in_uk_rep"].tolist() == [True, False, False, False, False]
    assert p["in_us_rep"].tolist() == [False, True, False, False, False]
    assert p["balanced"].tolist() == [True, True, False, False, False]
    assert p.loc["user1", "pref_safety"] == 100.0 and p.loc["user2", "pref_personalisation"] == 0.0
    assert p.loc["user2", "study_locale"] == "south africa"


def test_not_shown_questions_are_na(data: PrismData):
    p = by(data.participants, "participant")
    # user4: direct "No", indirect "Unsure" -> frequency and use cases not shown
    assert p["lm_frequency_use"].isna().tolist() == [False, False, False, False, True]
    assert p.loc["user2", "lm_frequency_use"] == "Less than one a year"
    uc = p[[c for c in p.columns if c.startswith("usecase_")]]
    assert uc.shape[1] == 19 and all(uc[c].dtype == "boolean" for c in uc)
    assert uc.loc["user4"].isna().all() and uc.drop(index="user4").notna().all().all()
    assert bool(uc.loc["user0", "usecase_research"]) and not bool(uc.loc["user0", "usecase_games"])
    assert bool(uc.loc["user3", "usecase_other"])


# --- conversations --------------------------------------------------------------------------------


def test_conversations(data: PrismData):
    c = by(data.conversations, "conversation")
    assert c["conversation"].tolist() == [f"c{i}" for i in range(11)]
    assert cats(c["conversation_type"]) == list(vocab.CONVERSATION_TYPES)
    assert c["n_turns"].dtype == np.int64 and c["n_turns"].tolist() == [
        2,
        3,
        2,
        2,
        2,
        3,
        2,
        2,
        2,
        2,
        3,
    ]
    assert c["balanced"].tolist() == [
        True,
        True,
        True,
        True,
        False,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert c.loc["c2", "opening_prompt"] == "Should the voting age be lowered to 16?"
    attrs = [f"{p}_{k}" for p in ("perf", "choice") for k in vocab.ATTRIBUTE_KEYS]
    assert all(c[a].dtype == float for a in attrs)
    assert np.isnan(c.loc["c4", "perf_creativity"]) and np.isnan(c.loc["c8", "perf_values"])
    assert c.loc["c8", "choice_values"] == 90.0
    assert cats(c["chosen_llm"]) == list(vocab.LLM_SHORT_NAMES)
    assert (
        c.loc["c1", "chosen_llm"] == "llama-2-7b-chat"
        and c.loc["c10", "chosen_llm"] == "gpt-4-turbo"
    )
    assert c["generated_datetime"].dtype.kind == "M"
    assert c.loc["c0", "generated_datetime"] == pd.Timestamp("2023-11-27 10:31:40")


# --- ratings --------------------------------------------------------------------------------------


def test_ratings_dtypes_and_vocabularies(data: PrismData):
    r = data.ratings
    assert len(r) == 65
    for col in ("utterance", "interaction", "conversation", "participant", "response", "prompt"):
        assert r[col].dtype == "str", col
    for col in ("turn", "within_turn", "score"):
        assert r[col].dtype == np.int64, col
    assert r["chosen"].dtype == bool and r["balanced"].dtype == bool
    assert cats(r["llm"]) == list(vocab.LLM_SHORT_NAMES)
    assert cats(r["provider"]) == list(vocab.PROVIDERS)
    assert cats(r["conversation_type"]) == list(vocab.CONVERSATION_TYPES)
    assert r["score"].between(1, 100).all()


def test_ratings_match_the_file(data: PrismData):
    raw = read_rows(FIXTURE, "utterances.jsonl")
    r = data.ratings
    assert r["utterance"].tolist() == [u["utterance_id"] for u in raw]
    assert r["score"].tolist() == [u["score"] for u in raw]
    short = {m.long_name: m.short_name for m in vocab.LLMS}
    assert r["llm"].astype(str).tolist() == [short[u["model_name"]] for u in raw]
    assert r["response"].tolist() == [u["model_response"] for u in raw]


def test_release_quirks_are_kept(data: PrismData):
    r = data.ratings
    empty = r[r["response"] == "EMPTY STRING"]
    assert empty[["conversation", "turn", "within_turn", "score"]].values.tolist() == [
        ["c2", 1, 0, 1]
    ]
    # both A and B chosen at c1 turn 1 (identical texts)
    c1t1 = r[(r["conversation"] == "c1") & (r["turn"] == 1)]
    assert c1t1["chosen"].tolist() == [True, True] and c1t1["response"].nunique() == 1
    assert int(r["chosen"].sum()) == 26
    # int{k} over the lexicographic order of conversation ids: c10 sits between c1 and c2
    c10 = r[r["conversation"] == "c10"].drop_duplicates("interaction")["interaction"].tolist()
    assert c10 == ["int5", "int6", "int7"]
    assert r[r["conversation"] == "c2"]["interaction"].iloc[0] == "int8"


def test_opening(data: PrismData):
    op = data.opening()
    assert len(op) == 37 and (op["turn"] == 0).all()
    assert op.groupby("interaction")["chosen"].sum().eq(1).all()


# --- choice sets --------------------------------------------------------------------------------


def test_choice_sets(data: PrismData):
    cs = by(data.choice_sets, "conversation")
    assert len(cs) == 11
    assert cs["n_shown"].tolist() == [4, 3, 2, 4, 4, 3, 4, 3, 4, 2, 4]
    assert cs["n_shown"].between(2, 4).all() and cs["n_shown"].dtype == np.int64
    for s in CHOICE_SLOTS:
        assert cats(cs[f"llm_{s}"]) == list(vocab.LLM_SHORT_NAMES)
        assert cs[f"score_{s}"].dtype == float
    assert cats(cs["chosen_llm"]) == list(vocab.LLM_SHORT_NAMES)
    # slots follow within_turn_id; NA / NaN past n_shown
    c0 = cs.loc["c0"]
    assert [c0[f"llm_{s}"] for s in "abcd"] == ["command", "gpt-4", "claude-2", "palm-2"]
    assert [c0[f"score_{s}"] for s in "abcd"] == [70.0, 85.0, 40.0, 60.0]
    assert c0["chosen_llm"] == "gpt-4" and c0["interaction"] == "int0"
    c2 = cs.loc["c2"]
    assert [c2["llm_a"], c2["llm_b"]] == ["mistral-7b-instruct", "claude-instant-1"]
    assert (
        pd.isna(c2["llm_c"])
        and pd.isna(c2["llm_d"])
        and np.isnan(c2["score_c"])
        and np.isnan(c2["score_d"])
    )
    # the tie at 90 (c4) keeps the participant's choice, not the first top score
    assert (
        cs.loc["c4", "chosen_llm"] == "claude-2.1"
        and cs.loc["c4", "score_a"] == cs.loc["c4", "score_b"] == 90.0
    )
    # the chosen LLM is always one of those shown and carries the top score except in ties
    shown = cs[[f"llm_{s}" for s in "abcd"]].astype(object)
    assert all(row["chosen_llm"] in set(shown.loc[i].dropna()) for i, row in cs.iterrows())
    assert cs["balanced"].tolist() == data.conversations["balanced"].tolist()
    assert cs.loc["c10", "interaction"] == "int5"


# --- subsets ------------------------------------------------------------------------------------


def test_balanced_only(data: PrismData):
    b = data.balanced_only()
    assert (len(b.participants), len(b.conversations), len(b.ratings), len(b.choice_sets)) == (
        2,
        6,
        36,
        6,
    )
    assert b.selection == ("balanced_only",)
    assert set(b.conversations["conversation"]) == {"c0", "c1", "c2", "c3", "c5", "c6"}
    assert cats(b.ratings["llm"]) == list(vocab.LLM_SHORT_NAMES)  # categories survive subsetting
    assert b.data_hash == data.data_hash
    assert len(data.ratings) == 65  # the original is untouched


@pytest.mark.parametrize("code", ["GBR", "uk", "gbr"])
def test_residents(data: PrismData, code):
    uk = data.residents(code)
    assert uk.participants["participant"].tolist() == ["user0"]
    assert uk.conversations["conversation"].tolist() == ["c0", "c1", "c2"]
    assert set(uk.ratings["participant"]) == {"user0"} and len(uk.ratings) == 17
    assert len(uk.choice_sets) == 3 and uk.selection == ("residents(GBR)",)
    assert set(uk.metadata["participant"]) == {"user0"}


def test_residents_unknown_country(data: PrismData):
    with pytest.raises(ValueError, match="unknown country 'XYZ'"):
        data.residents("XYZ")
    assert len(data.residents("CAN").participants) == 1
    assert len(data.residents("FRA").participants) == 0


def test_subset(data: PrismData):
    s = data.subset(["user2", "user4"])
    assert s.participants["participant"].tolist() == ["user2", "user4"]
    assert set(s.conversations["conversation"]) == {"c7", "c8"}
    mask = data.participants["survey_only"].to_numpy()
    assert data.subset(mask).participants["participant"].tolist() == ["user4"]
    with pytest.raises(ValueError, match="unknown participant"):
        data.subset(["user99"])
    chained = data.balanced_only().residents("us")
    assert (
        chained.selection == ("balanced_only", "residents(USA)") and len(chained.conversations) == 3
    )


# --- provenance -----------------------------------------------------------------------------------


def test_source_and_data_hash(data: PrismData):
    sha = {
        role: hashlib.sha256((FIXTURE / path).read_bytes()).hexdigest()
        for role, path in data.source["files"].items()
    }
    assert data.source["sha256"] == sha
    assert data.source["files"] == {
        "survey": "survey.jsonl",
        "conversations": "conversations.jsonl",
        "utterances": "utterances.jsonl",
        "metadata": str(Path("metadata") / "metadata.jsonl"),
    }
    named = {f"{role}.jsonl": h for role, h in sha.items()}
    canonical = json.dumps(named, sort_keys=True, separators=(",", ":"))
    assert data.data_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert data.source["hub"] is None
    assert "PrismData(participants=5, conversations=11, ratings=65, choice_sets=11" in repr(data)


def test_data_hash_changes_with_content(tmp_path: Path, data: PrismData):
    folder = copy_release(tmp_path / "r")
    assert load_prism(folder).data_hash == data.data_hash
    text = (folder / "survey.jsonl").read_text()
    (folder / "survey.jsonl").write_text(
        text.replace('"timing_duration_s": 1322.0', '"timing_duration_s": 1323.0')
    )
    assert load_prism(folder).data_hash != data.data_hash


def test_metadata_table(data: PrismData):
    m = data.metadata
    assert m is not None and len(m) == 111
    assert cats(m["text_source"])[:2] == ["model_response", "user_prompt"]
    assert m["pii_manual_flag"].isna().sum() == 110  # bare NaN tokens read as missing
    assert m.loc[m["pii_manual_flag"].notna(), "participant"].tolist() == ["user3"]
    flagged = m[m["moderation_flagged"].fillna(False).astype(bool)]
    assert flagged["utterance"].tolist() == ["ut37"]  # c6 opening, "Guns are bad."
    assert (m.loc[m["language"] == "yo", "text_source"] == "user_prompt").all()
    no_meta = load_prism(FIXTURE, metadata=False)
    assert no_meta.metadata is None and "metadata" not in no_meta.source["files"]
    assert no_meta.data_hash != data.data_hash


def test_load_without_source(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("PRISM_DATA", raising=False)
    with pytest.raises(PrismDataNotFound, match="No release folder given"):
        load_prism()
    monkeypatch.setenv("PRISM_DATA", str(copy_release(tmp_path / "env")))
    assert len(load_prism().ratings) == 65
