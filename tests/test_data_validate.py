"""Validation of PRISM releases: every bad-input kind, strict messages, lenient exclusions."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from data_helpers import (
    FIXTURE,
    copy_release,
    edit_row,
    find_line,
    read_rows,
    replace_line,
    set_field,
    write_rows,
)

from prism_stats.data import (
    PrismDataNotFound,
    PrismValidationError,
    load_prism,
    validate_release,
)


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return copy_release(tmp_path / "release")


def strict_error(folder: Path) -> str:
    with pytest.raises(PrismValidationError) as info:
        validate_release(folder, strict=True)
    # load_prism(strict=True) must fail with the same leading message
    with pytest.raises(PrismValidationError) as info2:
        load_prism(folder)
    first = str(info.value).splitlines()[0]
    assert str(info2.value).splitlines()[0] == first
    return first


# --- the valid fixture ------------------------------------------------------------------------


def test_fixture_is_valid_without_warnings():
    report = validate_release(FIXTURE)
    assert report.ok, str(report)
    assert report.errors == [] and report.warnings == [] and report.info == []
    assert report.counts["utterances.jsonl"] == {"rows": 65, "errors": 0, "excluded": 0, "kept": 65}
    assert report.counts["metadata.jsonl"]["rows"] == 111
    assert report.exclusions.total() == 0
    assert "VALID" in str(report)


def test_unknown_study_locale_is_accepted():
    # The fixture uses free-text locales other than uk/us ("south africa", "canada", ...).
    locales = {r["study_locale"] for r in read_rows(FIXTURE, "survey.jsonl")}
    assert locales - {"uk", "us"}
    assert validate_release(FIXTURE).ok


# --- each bad-input kind (strict message: file:line: field: value) ---------------------------


def test_truncated_json_line(release: Path):
    line = find_line(release, "utterances.jsonl", utterance_id="ut16")
    text = (release / "utterances.jsonl").read_text().splitlines()[line - 1]
    replace_line(release, "utterances.jsonl", line, text[: len(text) // 2])
    msg = strict_error(release)
    assert msg.startswith(f"utterances.jsonl:{line}: invalid JSON")
    # Only the broken line is an error (its conversation is not blamed for the lost row).
    report = validate_release(release)
    assert [str(e) for e in report.errors] == [msg]
    assert report.exclusions.counts["utterances.jsonl"] == {"invalid JSON": 1}


def test_line_that_is_not_an_object(release: Path):
    replace_line(release, "survey.jsonl", 2, "[1, 2, 3]")
    assert strict_error(release) == "survey.jsonl:2: expected a JSON object, got a list"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("85", "'85' is a string, expected an integer"),
        (85.0, "85.0 is a number, expected an integer"),
        (True, "True is a boolean, expected an integer"),
        (None, "None is null, expected an integer"),
    ],
)
def test_wrong_type(release: Path, value, expected):
    set_field(release, "utterances.jsonl", 2, "score", value)
    assert strict_error(release) == f"utterances.jsonl:2: field 'score': {expected}"


def test_wrong_type_nested_and_bool(release: Path):
    set_field(release, "survey.jsonl", 3, "stated_prefs.values", "high")
    set_field(release, "conversations.jsonl", 5, "included_in_balanced_subset", "no")
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert (
        "survey.jsonl:3: field 'stated_prefs.values': 'high' is a string, expected an integer"
        in msgs
    )
    assert (
        "conversations.jsonl:5: field 'included_in_balanced_subset': 'no' is a string, expected a boolean"
        in msgs
    )


@pytest.mark.parametrize("score", [0, 101])
def test_score_out_of_range(release: Path, score):
    line = find_line(release, "utterances.jsonl", utterance_id="ut16")
    set_field(release, "utterances.jsonl", line, "score", score)
    assert (
        strict_error(release)
        == f"utterances.jsonl:{line}: field 'score': {score} is outside 1..100"
    )


def test_score_out_of_range_in_history(release: Path):
    def change(row):
        row["conversation_history"][2]["score"] = 0

    edit_row(release, "conversations.jsonl", 1, change)
    msg = strict_error(release)
    assert (
        msg == "conversations.jsonl:1: field 'conversation_history[2].score': 0 is outside 1..100"
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("within_turn_id", 4, "4 is outside 0..3"),
        ("turn", -1, "-1 is below the minimum 0"),
    ],
)
def test_other_ranges(release: Path, field, value, expected):
    set_field(release, "utterances.jsonl", 3, field, value)
    assert strict_error(release) == f"utterances.jsonl:3: field '{field}': {expected}"


def test_stated_pref_range(release: Path):
    set_field(release, "survey.jsonl", 1, "stated_prefs.safety", 101)
    assert (
        strict_error(release)
        == "survey.jsonl:1: field 'stated_prefs.safety': 101 is outside 0..100"
    )


def test_duplicate_id(release: Path):
    set_field(release, "utterances.jsonl", 6, "utterance_id", "ut4")
    # Also breaks nothing else: the row still agrees with the history.
    msg = strict_error(release)
    assert msg == "utterances.jsonl:5: field 'utterance_id': 'ut4' is not unique (lines 5, 6)"
    report = validate_release(release)
    # (metadata.jsonl's row for the now missing 'ut5' is reported too)
    assert {str(e) for e in report.errors if e.file == "utterances.jsonl"} == {
        "utterances.jsonl:5: field 'utterance_id': 'ut4' is not unique (lines 5, 6)",
        "utterances.jsonl:6: field 'utterance_id': 'ut4' is not unique (lines 5, 6)",
    }
    # Lenient: both copies are excluded (which one is right is unknowable).
    assert report.exclusions.counts["utterances.jsonl"] == {"duplicate id (utterance_id)": 2}


def test_dangling_user_id(release: Path):
    line = find_line(release, "conversations.jsonl", conversation_id="c3")
    set_field(release, "conversations.jsonl", line, "user_id", "user99")
    msg = strict_error(release)
    assert (
        msg
        == f"conversations.jsonl:{line}: field 'user_id': 'user99' does not match any user_id in survey.jsonl"
    )


def test_dangling_conversation_and_user_in_utterances(release: Path):
    set_field(release, "utterances.jsonl", 7, "conversation_id", "c99")
    set_field(release, "utterances.jsonl", 8, "user_id", "user42")
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert (
        "utterances.jsonl:7: field 'conversation_id': 'c99' does not match any conversation_id in conversations.jsonl"
        in msgs
    )
    assert (
        "utterances.jsonl:8: field 'user_id': 'user42' does not match any user_id in survey.jsonl"
        in msgs
    )


def test_missing_file(release: Path):
    (release / "utterances.jsonl").unlink()
    with pytest.raises(PrismDataNotFound) as info:
        validate_release(release)
    msg = str(info.value)
    assert "utterances.jsonl" in msg.splitlines()[0] and str(release) in msg.splitlines()[0]
    assert "https://huggingface.co/datasets/HannahRoseKirk/prism-alignment" in msg
    assert "https://github.com/HannahKirk/prism-alignment" in msg
    assert "survey.jsonl, conversations.jsonl, utterances.jsonl" in msg
    with pytest.raises(PrismDataNotFound):
        load_prism(release)


def test_missing_folder(tmp_path: Path):
    with pytest.raises(PrismDataNotFound, match="does not exist"):
        load_prism(tmp_path / "nowhere")


def test_empty_file(release: Path):
    (release / "utterances.jsonl").write_text("")
    msg = strict_error(release)
    assert msg == "utterances.jsonl: file is empty (no records)"
    report = validate_release(release)
    # The empty file leads; conversations are not blamed for their missing rows (the
    # metadata rows that point at utterances do dangle, and are reported after it).
    assert str(report.errors[0]) == msg
    assert {e.file for e in report.errors} == {"utterances.jsonl", "metadata.jsonl"}
    assert sum(e.file == "utterances.jsonl" for e in report.errors) == 1


def test_blank_lines_are_skipped(release: Path):
    text = (release / "survey.jsonl").read_text()
    (release / "survey.jsonl").write_text("\n" + text.replace("\n", "\n\n", 1) + "\n")
    report = validate_release(release)
    assert report.ok
    assert report.files["survey"]["blank_lines"] == 3


@pytest.mark.parametrize(
    ("name", "line", "field", "value", "expected"),
    [
        (
            "survey.jsonl",
            3,
            "age",
            "Under 18",
            "'Under 18' is not a known category (expected one of '18-24 years old'",
        ),
        (
            "survey.jsonl",
            2,
            "location.birth_country",
            "Atlantis",
            "'Atlantis' is not a known category (expected one of",
        ),
        (
            "conversations.jsonl",
            4,
            "conversation_type",
            "casual",
            "'casual' is not a known category",
        ),
        (
            "utterances.jsonl",
            9,
            "model_name",
            "gpt-5",
            "'gpt-5' is not a known category (expected one of the 21",
        ),
    ],
)
def test_unknown_category(release: Path, name, line, field, value, expected):
    set_field(release, name, line, field, value)
    msg = strict_error(release)
    assert msg.startswith(f"{name}:{line}: field '{field}': {expected}")


def test_missing_required_field_and_nested_key(release: Path):
    edit_row(release, "utterances.jsonl", 4, lambda r: r.pop("if_chosen"))
    edit_row(release, "survey.jsonl", 2, lambda r: r["location"].pop("special_region"))
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert "utterances.jsonl:4: field 'if_chosen': required field is missing" in msgs
    assert "survey.jsonl:2: field 'location.special_region': required field is missing" in msgs


def test_nullable_fields(release: Path):
    # null is allowed for lm_frequency_use and the attribute sliders, not for score or age.
    set_field(release, "survey.jsonl", 1, "age", None)
    assert strict_error(release) == "survey.jsonl:1: field 'age': None is null, expected a string"


def test_nan_counts_as_null_where_null_is_allowed(release: Path):
    # pandas writes NaN for missing values; json.loads reads it as float('nan').
    replace_line(
        release,
        "conversations.jsonl",
        1,
        (release / "conversations.jsonl")
        .read_text()
        .splitlines()[0]
        .replace('"values": 70', '"values": NaN', 1),
    )
    report = validate_release(release)
    assert report.ok, str(report)
    data = load_prism(release)
    assert (
        data.conversations.loc[0, "perf_values"] != data.conversations.loc[0, "perf_values"]
    )  # NaN


def test_extra_fields_are_tolerated_and_reported(release: Path):
    rows = read_rows(release, "utterances.jsonl")
    for r in rows:
        r["annotator_note"] = "x"
    write_rows(release, "utterances.jsonl", rows)
    set_field(release, "survey.jsonl", 1, "location.postcode_area", "OX")
    report = validate_release(release)
    assert report.ok
    info = {str(i) for i in report.info}
    assert (
        "utterances.jsonl: field 'annotator_note': unknown field in 65 record(s); tolerated and ignored"
        in info
    )
    assert (
        "survey.jsonl: field 'location.postcode_area': unknown field in 1 record(s); tolerated and ignored"
        in info
    )
    data = load_prism(release)
    assert "annotator_note" not in data.ratings.columns and len(data.ratings) == 65


# --- agreement between utterances and conversation_history ------------------------------------


def test_utterance_disagrees_with_history_score(release: Path):
    set_field(release, "utterances.jsonl", 2, "score", 84)  # history says 85
    assert strict_error(release) == (
        "utterances.jsonl:2: field 'score': 84 disagrees with the conversation_history of 'c0' "
        "(turn 0, within_turn_id 1: 85)"
    )


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("model_name", "command", "'command' disagrees with the conversation_history of 'c0'"),
        ("if_chosen", False, "False disagrees with the conversation_history of 'c0'"),
        ("model_response", "Something else.", "'Something else.' disagrees"),
        (
            "user_prompt",
            "Another prompt?",
            "'Another prompt?' disagrees with the turn-0 message of 'c0'",
        ),
    ],
)
def test_utterance_disagrees_with_history_other_fields(release: Path, field, value, fragment):
    set_field(release, "utterances.jsonl", 2, field, value)
    if field == "model_name":
        set_field(release, "utterances.jsonl", 2, "model_provider", "cohere")
    msg = strict_error(release)
    assert msg.startswith(f"utterances.jsonl:2: field '{field}': {fragment}")


def test_utterance_without_history_entry(release: Path):
    set_field(release, "utterances.jsonl", 5, "within_turn_id", 3)  # turn 1 has ids 0..1
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert (
        "utterances.jsonl:5: field 'within_turn_id': conversation 'c0' has no response at turn 1, "
        "within_turn_id 3 in its conversation_history" in msgs
    )
    # The row is the error; its conversation is not blamed as well.
    assert len(msgs) == 1


def test_history_response_without_utterance_row(tmp_path: Path):
    release = copy_release(tmp_path / "r", metadata=False)
    rows = read_rows(release, "utterances.jsonl")
    write_rows(release, "utterances.jsonl", rows[:4] + rows[5:])  # drop ut4 (c0 turn 1, id 0)
    assert strict_error(release) == (
        "conversations.jsonl:1: field 'conversation_history[6]': the response of 'gpt-4' at turn 1, "
        "within_turn_id 0 has no row in utterances.jsonl"
    )


def test_utterance_disagrees_with_conversation_flags(release: Path):
    set_field(release, "utterances.jsonl", 1, "conversation_type", "values guided")
    set_field(release, "utterances.jsonl", 3, "included_in_balanced_subset", False)
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert (
        "utterances.jsonl:1: field 'conversation_type': 'values guided' differs from conversation 'c0' ('unguided')"
        in msgs
    )
    assert (
        "utterances.jsonl:3: field 'included_in_balanced_subset': False differs from conversation 'c0' (True)"
        in msgs
    )


def test_interaction_id_must_map_to_one_turn(release: Path):
    set_field(
        release, "utterances.jsonl", 5, "interaction_id", "int0"
    )  # a turn-1 row in the turn-0 interaction
    report = validate_release(release)
    assert any(
        str(e).startswith(
            "utterances.jsonl:5: field 'interaction_id': 'int0' is used for more than one"
        )
        for e in report.errors
    )


def test_interaction_numbering_warning(tmp_path: Path):
    release = copy_release(tmp_path / "r", metadata=False)  # metadata names the old ids
    rows = read_rows(release, "utterances.jsonl")
    # Renumber in numeric conversation order (c2 before c10): valid, but not the release's scheme.
    for r in rows:
        r["interaction_id"] = "x" + r["interaction_id"]
    write_rows(release, "utterances.jsonl", rows)
    report = validate_release(release)
    assert report.ok
    assert [w.rule for w in report.warnings] == ["interaction numbering"]


# --- conversation structure -------------------------------------------------------------------


def test_two_chosen_at_opening_turn(release: Path):
    def change(row):
        row["conversation_history"][1]["if_chosen"] = True  # c0 already has wid 1 chosen

    edit_row(release, "conversations.jsonl", 1, change)
    set_field(release, "utterances.jsonl", 1, "if_chosen", True)
    assert strict_error(release) == (
        "conversations.jsonl:1: field 'conversation_history': turn 0 has 2 responses marked if_chosen (expected exactly 1)"
    )


def test_later_turn_model_must_be_the_chosen_one(release: Path):
    def change(row):
        for item in row["conversation_history"]:
            if item["role"] == "model" and item["turn"] == 1:
                item["model_name"], item["model_provider"] = "command", "cohere"

    edit_row(release, "conversations.jsonl", 1, change)
    msg = strict_error(release)
    assert msg == (
        "conversations.jsonl:1: field 'conversation_history[6].model_name': 'command' answers turn 1 "
        "but the turn-0 choice was 'gpt-4'"
    )


def test_provider_must_match_model(release: Path):
    def change(row):
        row["conversation_history"][1]["model_provider"] = "openai"  # command is cohere

    edit_row(release, "conversations.jsonl", 1, change)
    assert strict_error(release) == (
        "conversations.jsonl:1: field 'conversation_history[1].model_provider': 'openai' is not the provider "
        "of 'command' (expected 'cohere')"
    )


def test_conversation_turns_and_opening_prompt_agree(release: Path):
    set_field(release, "conversations.jsonl", 2, "conversation_turns", 4)
    set_field(release, "conversations.jsonl", 3, "opening_prompt", "Something else")
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert (
        "conversations.jsonl:2: field 'conversation_turns': 4 but conversation_history has 3 turns"
        in msgs
    )
    assert any(
        m.startswith("conversations.jsonl:3: field 'opening_prompt': 'Something else' differs")
        for m in msgs
    )


def test_too_many_opening_responses(release: Path):
    def change(row):
        # c0 opens with 4 responses (ids 0-3); add a fifth, reusing id 3.
        extra = dict(
            row["conversation_history"][1],
            within_turn_id=3,
            model_name="gpt-4",
            model_provider="openai",
        )
        row["conversation_history"].insert(4, extra)

    edit_row(release, "conversations.jsonl", 1, change)
    report = validate_release(release)
    msgs = [str(e) for e in report.errors]
    assert (
        "conversations.jsonl:1: field 'conversation_history': turn 0 has 5 model responses (expected 2-4)"
        in msgs
    )
    assert (
        "conversations.jsonl:1: field 'conversation_history[5].within_turn_id': within_turn_id 3 occurs twice at turn 0"
        in msgs
    )


def test_soft_inconsistencies_are_warnings(release: Path):
    set_field(release, "survey.jsonl", 1, "num_completed_conversations", 5)
    set_field(release, "survey.jsonl", 5, "lm_frequency_use", "Every day")  # not shown to user4
    set_field(release, "survey.jsonl", 2, "religion.simplified", "Other")
    report = validate_release(release)
    assert report.ok
    rules = sorted(w.rule for w in report.warnings)
    assert rules == ["count mismatch", "grouping mismatch", "skip-logic mismatch"]
    assert (
        "survey.jsonl:1: field 'num_completed_conversations': 5 but conversations.jsonl has 3 for 'user0'"
        in {str(w) for w in report.warnings}
    )


def test_country_code_must_match_name(release: Path):
    set_field(release, "survey.jsonl", 1, "location.birth_countryISO", "USA")
    assert strict_error(release) == (
        "survey.jsonl:1: field 'location.birth_countryISO': 'USA' is not the code of birth_country 'United Kingdom'"
    )


# --- lenient mode -------------------------------------------------------------------------------


def test_lenient_exclusions_cascade_to_dependants(release: Path):
    # user2 (line 3) invalid -> c7, c8 and their 11 utterances go too.
    set_field(release, "survey.jsonl", 3, "age", "Under 18")
    # c9 truncated -> its 4 utterances go too.
    line_c9 = find_line(release, "conversations.jsonl", conversation_id="c9")
    text = (release / "conversations.jsonl").read_text().splitlines()[line_c9 - 1]
    replace_line(release, "conversations.jsonl", line_c9, text[:300])
    # one utterance of c0 out of range -> it goes, and c0's choice set is incomplete.
    set_field(release, "utterances.jsonl", 2, "score", 101)

    with pytest.raises(PrismValidationError):
        load_prism(release)
    data = load_prism(release, strict=False)
    ex = data.exclusions
    assert ex.counts["survey.jsonl"] == {"unknown category (age)": 1}
    assert ex.counts["conversations.jsonl"] == {"invalid JSON": 1, "parent participant excluded": 2}
    assert ex.counts["utterances.jsonl"] == {
        "out of range (score)": 1,
        "parent conversation excluded": 15,
    }
    assert ex.counts["metadata.jsonl"] == {
        "parent utterance excluded": 16,
        "parent conversation excluded": 9,
        "parent participant excluded": 2,
    }
    assert ex.counts["choice_sets"] == {"some opening responses excluded": 1}
    assert ex.examples["survey.jsonl"]["unknown category (age)"] == [3]
    assert ex.examples["utterances.jsonl"]["out of range (score)"] == [2]
    # Everything is accounted for: kept + excluded = read.
    assert len(data.participants) == 4 == ex.kept("survey.jsonl")
    assert len(data.conversations) == 8 == ex.kept("conversations.jsonl")
    assert len(data.ratings) == 65 - 16 == ex.kept("utterances.jsonl")
    assert len(data.metadata) == 111 - 27 == ex.kept("metadata.jsonl")
    assert len(data.choice_sets) == 7 == ex.kept("choice_sets")
    assert set(data.conversations["conversation"]) == {
        "c0",
        "c1",
        "c2",
        "c3",
        "c4",
        "c5",
        "c6",
        "c10",
    }
    assert "c0" not in set(data.choice_sets["conversation"])
    assert "ut1" not in set(data.ratings["utterance"])
    # The report renders and serialises.
    frame = ex.to_frame()
    assert frame["count"].sum() == ex.total() == 1 + 3 + 16 + 27 + 1
    json.dumps(ex.to_dict())
    assert "parent conversation excluded" in str(ex)


def test_lenient_validation_report_matches_load(release: Path):
    set_field(release, "utterances.jsonl", 10, "score", 0)
    report = validate_release(release)
    assert not report.ok
    assert report.counts["utterances.jsonl"] == {"rows": 65, "errors": 1, "excluded": 1, "kept": 64}
    assert len(load_prism(release, strict=False).ratings) == 64


def test_strict_message_leads_with_first_error_and_counts_rest(release: Path):
    set_field(release, "utterances.jsonl", 20, "score", 0)
    set_field(release, "utterances.jsonl", 10, "score", 101)
    with pytest.raises(PrismValidationError) as info:
        load_prism(release)
    text = str(info.value)
    assert text.splitlines()[0] == "utterances.jsonl:10: field 'score': 101 is outside 1..100"
    assert "and 1 more error" in text
    assert info.value.issue.line == 10 and info.value.issue.value == 101
    assert len(info.value.report.errors) == 2


# --- report rendering ---------------------------------------------------------------------------


def test_report_str_and_dict(release: Path):
    for line in range(1, 30):
        set_field(release, "utterances.jsonl", line, "score", 0)
    report = validate_release(release)
    text = str(report)
    assert "INVALID" in text and "... 9 more; by reason:" in text and "out of range (score)" in text
    d = report.to_dict()
    json.dumps(d)
    assert d["ok"] is False and d["n_errors"] == 29
    assert d["errors"][0] == {
        "file": "utterances.jsonl",
        "line": 1,
        "field": "score",
        "value": 0,
        "message": "0 is outside 1..100",
        "rule": "out of range",
        "severity": "error",
    }
    assert d["counts"]["utterances.jsonl"]["excluded"] == 29


# --- compressed files ---------------------------------------------------------------------------


def test_gz_files_read_like_plain(tmp_path: Path):
    plain = copy_release(tmp_path / "plain")
    packed = copy_release(tmp_path / "packed")
    for name in (
        "survey.jsonl",
        "conversations.jsonl",
        "utterances.jsonl",
        "metadata/metadata.jsonl",
    ):
        path = packed / name
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(path.read_bytes())
        path.unlink()
    a, b = load_prism(plain), load_prism(packed)
    assert b.source["files"]["utterances"] == "utterances.jsonl.gz"
    assert b.source["files"]["metadata"] == str(Path("metadata") / "metadata.jsonl.gz")
    # The hashes are of the decompressed content: same data, same hash.
    assert a.data_hash == b.data_hash
    for name in ("participants", "conversations", "ratings", "choice_sets"):
        assert getattr(a, name).equals(getattr(b, name)), name


def test_corrupt_gz_is_a_clear_error(tmp_path: Path):
    folder = copy_release(tmp_path / "r")
    (folder / "survey.jsonl").unlink()
    (folder / "survey.jsonl.gz").write_bytes(b"not gzip at all")
    from prism_stats.data import PrismDataError

    with pytest.raises(PrismDataError, match=re.escape("survey.jsonl.gz: cannot read the file")):
        validate_release(folder)
