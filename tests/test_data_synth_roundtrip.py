"""Round trip: synthetic release -> validate (no errors) -> load -> describe.

The generator's own counts (computed from its in-memory tables) must equal what the
data layer reads back from the written files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_stats.data import describe, load_prism, validate_release

synth = pytest.importorskip(
    "prism_stats.synth",
    reason="prism_stats.synth (the synthetic generator) is not available",
)

# describe() quantity -> SynthResult.counts key
SAME_COUNTS = {
    "participants": "participants",
    "participants_survey_only": "survey_only",
    "participants_with_conversations": "with_conversations",
    "conversations": "conversations",
    "interactions": "interactions",
    "utterances": "utterances",
    "chosen_true": "chosen",
    "balanced_participants": "balanced_users",
    "balanced_conversations": "balanced_conversations",
    "balanced_utterances": "balanced_utterances",
    "uk_rep": "uk_rep",
    "us_rep": "us_rep",
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, object]:
    if not hasattr(synth, "synthesize"):
        pytest.skip("prism_stats.synth has no synthesize()")
    folder = tmp_path_factory.mktemp("synth60")
    result = synth.synthesize(folder, participants=60, seed=20240611, metadata=True)
    return folder, result


def test_synthetic_release_validates(synthetic):
    folder, _ = synthetic
    report = validate_release(folder)
    assert report.ok, str(report)
    assert report.warnings == [], str(report)
    assert report.info == []  # exact schema: no unknown fields
    assert set(report.files) == {"survey", "conversations", "utterances", "metadata"}


def test_synthetic_release_round_trip(synthetic):
    folder, result = synthetic
    data = load_prism(folder)
    assert data.exclusions.total() == 0
    summary = describe(data)
    counts = result.counts
    shared = {ours: theirs for ours, theirs in SAME_COUNTS.items() if theirs in counts}
    assert {"participants", "conversations", "utterances"} <= set(shared)
    for ours, theirs in shared.items():
        assert summary.overview[ours] == counts[theirs], ours
    shown = data.choice_sets["n_shown"].value_counts().to_dict()
    for k in (2, 3, 4):
        if f"openers_{k}" in counts:
            assert shown.get(k, 0) == counts[f"openers_{k}"]
    assert set(shown) <= {2, 3, 4}
    if "empty_string" in counts:
        assert int((data.ratings["response"] == "EMPTY STRING").sum()) == counts["empty_string"]
    if "double_chosen" in counts:
        later = data.ratings[data.ratings["turn"] > 0]
        assert (
            int((later.groupby("interaction")["chosen"].sum() == 2).sum())
            == counts["double_chosen"]
        )
    # the tidy tables are consistent with each other
    assert set(data.ratings["conversation"]) == set(data.conversations["conversation"])
    assert set(data.conversations["participant"]) <= set(data.participants["participant"])
    assert len(data.choice_sets) == len(data.conversations)
    assert str(summary)
