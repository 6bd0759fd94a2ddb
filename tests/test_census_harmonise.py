"""Survey answers -> census cells."""

from __future__ import annotations

import pandas as pd
import pytest

from prism_stats import census, vocab
from prism_stats.census import harmonise as hz

PNTS = vocab.PREFER_NOT


def _raw(rows):
    """Participants with the raw survey columns (gender, ethnicity_categorised)."""
    return pd.DataFrame(rows, columns=["age", "gender", "ethnicity_categorised"])


def _tidy(raw: pd.DataFrame) -> pd.DataFrame:
    """The same participants in the PrismData schema (sex / ethnicity derived)."""
    out = raw.copy()
    out["age"] = pd.Categorical(out["age"], categories=vocab.AGE_BANDS, ordered=True)
    out["gender"] = pd.Categorical(out["gender"], categories=vocab.GENDERS)
    out["sex"] = pd.Categorical(
        out["gender"].astype(str).where(out["gender"].isin(vocab.CENSUS_SEXES)),
        categories=vocab.CENSUS_SEXES,
    )
    eth = out["ethnicity_categorised"].map(
        lambda v: vocab.CENSUS_ETHNICITY_FROM_CATEGORISED.get(v, PNTS)
    )
    out["ethnicity"] = pd.Categorical(eth, categories=vocab.ETHNICITY_GROUPS)
    return out


CASES = [
    # (age, gender, ethnicity.categorised) -> expected cell
    (("18-24", "Male", "White"), "18-24|Male|White"),
    (("65+", "Female", "Black / African"), "65+|Female|Black"),
    (("35-44", "Female", "Hispanic / Latino"), "35-44|Female|Other"),
    (("45-54", "Male", "Middle Eastern / Arab"), "45-54|Male|Other"),
    (("25-34", "Male", "Indigenous / First Peoples"), "25-34|Male|Other"),
    (("55-64", "Female", "Other"), "55-64|Female|Other"),
    (("55-64", "Female", "Mixed"), "55-64|Female|Mixed"),
    (("25-34", "Male", "Asian"), "25-34|Male|Asian"),
    (("25-34", "Non-binary / third gender", "White"), None),
    (("25-34", PNTS, "White"), None),
    ((PNTS, "Male", "White"), None),
    (("25-34", "Male", PNTS), None),
]


@pytest.mark.parametrize("schema", ["raw", "tidy"])
def test_cell_of_cases(schema):
    raw = _raw([c for c, _ in CASES])
    people = raw if schema == "raw" else _tidy(raw)
    cells = census.cell_of(people)
    assert list(cells.cat.categories) == list(census.CELL_LABELS)
    assert cells.index.equals(people.index)
    for got, (_, expected) in zip(cells, CASES, strict=True):
        if expected is None:
            assert pd.isna(got)
        else:
            assert got == expected


def test_release_age_strings_accepted():
    raw = _raw([("18-24 years old", "Female", "White"), (PNTS, "Female", "White")])
    cells = census.cell_of(raw)
    assert cells.iloc[0] == "18-24|Female|White" and pd.isna(cells.iloc[1])


def test_cell_labels_match_frame_order():
    assert census.frame("us")["cell"].tolist() == list(census.CELL_LABELS)


def test_every_mapped_ethnicity_lands_in_a_census_group():
    for categorised in vocab.ETHNICITY_CATEGORISED:
        got = hz.census_ethnicity(pd.Series([categorised])).iloc[0]
        if categorised == PNTS:
            assert pd.isna(got)
        else:
            assert got in vocab.CENSUS_ETHNICITIES


def test_no_cell_reasons_counted():
    raw = _raw([c for c, _ in CASES] + [(PNTS, PNTS, PNTS)])
    reasons = census.no_cell_reasons(raw)
    cells = census.cell_of(raw)
    assert (reasons.isna() == cells.notna()).all()
    counts = reasons.value_counts()
    assert counts["gender: Non-binary / third gender"] == 1
    assert counts["gender: Prefer not to say"] == 1
    assert counts["ethnicity: Prefer not to say"] == 1
    assert counts["age: Prefer not to say"] == 2  # first reason wins
    # Without a gender column a missing sex cannot be told apart.
    tidy = _tidy(raw).drop(columns=["gender", "ethnicity_categorised"])
    assert (
        census.no_cell_reasons(tidy).value_counts()["sex: not Male/Female (gender column absent)"]
        == 2
    )


def test_harmonise_table():
    raw = _raw([c for c, _ in CASES])
    out = census.harmonise_participants(raw)
    assert list(out.columns) == [
        "census_age",
        "census_sex",
        "census_ethnicity",
        "cell",
        "no_cell_reason",
    ]
    assert out.loc[2, "census_ethnicity"] == "Other"
    assert pd.isna(out.loc[8, "census_sex"])


def test_unknown_values_raise():
    with pytest.raises(census.HarmonisationError, match="gender"):
        census.cell_of(_raw([("18-24", "Man", "White")]))
    with pytest.raises(census.HarmonisationError, match="ethnicity_categorised"):
        census.cell_of(_raw([("18-24", "Male", "Martian")]))
    with pytest.raises(census.HarmonisationError, match="age"):
        census.cell_of(_raw([("17", "Male", "White")]))
    with pytest.raises(census.HarmonisationError, match="no 'age'"):
        census.cell_of(pd.DataFrame({"sex": ["Male"]}))
