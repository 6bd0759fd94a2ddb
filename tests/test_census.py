"""Census frames: totals against the sources, shares against SPEC §2.2, invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats import census, vocab

# SPEC §2.2 census target shares (% of adults), printed to 3 decimals.
UK_SPEC_COLUMNS = [
    ("Asian", "Female"),
    ("Mixed", "Female"),
    ("Black", "Female"),
    ("Other", "Female"),
    ("White", "Female"),
    ("Asian", "Male"),
    ("Mixed", "Male"),
    ("Black", "Male"),
    ("Other", "Male"),
    ("White", "Male"),
]
UK_SPEC = {
    "18-24": [0.609, 0.233, 0.278, 0.127, 3.956, 0.637, 0.225, 0.281, 0.139, 4.016],
    "25-34": [1.014, 0.288, 0.391, 0.234, 6.837, 0.897, 0.255, 0.333, 0.223, 6.582],
    "35-44": [1.116, 0.199, 0.421, 0.243, 6.421, 1.020, 0.175, 0.332, 0.244, 6.220],
    "45-54": [0.755, 0.136, 0.398, 0.171, 7.048, 0.756, 0.119, 0.343, 0.185, 6.849],
    "55-64": [0.452, 0.089, 0.293, 0.106, 7.124, 0.429, 0.077, 0.265, 0.117, 6.903],
    "65+": [0.477, 0.055, 0.191, 0.098, 11.881, 0.404, 0.043, 0.138, 0.093, 10.056],
}
UK_SPEC_AGE_TOTALS = {
    "18-24": 10.50,
    "25-34": 17.05,
    "35-44": 16.39,
    "45-54": 16.76,
    "55-64": 15.86,
    "65+": 23.44,
}
US_SPEC_COLUMNS = [
    ("White", "Male"),
    ("Black", "Male"),
    ("Mixed", "Male"),
    ("Other", "Male"),
    ("Asian", "Male"),
    ("White", "Female"),
    ("Black", "Female"),
    ("Mixed", "Female"),
    ("Other", "Female"),
    ("Asian", "Female"),
]
US_SPEC = {
    "18-24": [2.759, 0.716, 0.791, 1.846, 0.298, 2.610, 0.699, 0.742, 1.741, 0.294],
    "25-34": [4.085, 1.023, 1.006, 2.478, 0.513, 3.896, 1.041, 0.955, 2.290, 0.528],
    "35-44": [4.107, 0.886, 0.942, 2.354, 0.518, 3.951, 0.958, 0.892, 2.137, 0.574],
    "45-54": [3.978, 0.783, 0.794, 1.933, 0.441, 3.851, 0.862, 0.781, 1.848, 0.496],
    "55-64": [4.634, 0.747, 0.620, 1.389, 0.344, 4.690, 0.868, 0.663, 1.392, 0.400],
    "65+": [6.525, 0.730, 0.558, 1.123, 0.405, 7.804, 1.054, 0.711, 1.416, 0.534],
}
US_SPEC_ALL_AGES = [26.087, 4.884, 4.711, 11.123, 2.519, 26.801, 5.481, 4.745, 10.823, 2.826]

ALL_FRAMES = [("uk", "default"), ("uk", "original"), ("us", "default"), ("us", "original")]


def _pct(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index(["age", "sex", "ethnicity"])["share"] * 100


@pytest.mark.parametrize(("country", "harmonisation"), ALL_FRAMES)
def test_frame_structure(country, harmonisation):
    f = census.frame(country, harmonisation)
    assert list(f.columns) == ["cell", "age", "sex", "ethnicity", "count", "share"]
    assert len(f) == 60
    expected = [
        (a, s, e)
        for a in vocab.CENSUS_AGES
        for s in vocab.CENSUS_SEXES
        for e in vocab.CENSUS_ETHNICITIES
    ]
    got = list(zip(f["age"].astype(str), f["sex"].astype(str), f["ethnicity"].astype(str)))
    assert got == expected
    assert f["cell"].tolist() == [f"{a}|{s}|{e}" for a, s, e in expected]
    assert list(f["age"].cat.categories) == list(vocab.CENSUS_AGES) and f["age"].cat.ordered
    assert list(f["sex"].cat.categories) == list(vocab.CENSUS_SEXES)
    assert list(f["ethnicity"].cat.categories) == list(vocab.CENSUS_ETHNICITIES)
    assert (f["count"] > 0).all()
    assert f["share"].sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(f["share"], f["count"] / f["count"].sum())
    assert f.attrs == {"country": country, "harmonisation": harmonisation}


def test_frame_returns_independent_copies():
    a = census.frame("uk")
    a.loc[0, "count"] = -1.0
    assert census.frame("uk").loc[0, "count"] > 0


def test_uk_total_and_shares_match_spec():
    f = census.frame("uk")
    assert f["count"].sum() == 47_204_870
    pct = _pct(f)
    for age, row in UK_SPEC.items():
        for (eth, sex), value in zip(UK_SPEC_COLUMNS, row, strict=True):
            assert pct[(age, sex, eth)] == pytest.approx(value, abs=0.0005 + 1e-9), (age, sex, eth)
        assert pct[age].sum() == pytest.approx(UK_SPEC_AGE_TOTALS[age], abs=0.005 + 1e-9)
    by_sex = f.groupby("sex", observed=True)["share"].sum() * 100
    assert by_sex["Male"] == pytest.approx(48.36, abs=0.005)
    assert by_sex["Female"] == pytest.approx(51.64, abs=0.005)


def test_uk_harmonisations_identical():
    pd.testing.assert_series_equal(
        census.frame("uk", "default")["count"], census.frame("uk", "original")["count"]
    )


def test_us_original_total_and_shares_match_spec():
    f = census.frame("us", "original")
    assert f["count"].sum() == 298_477_760
    pct = _pct(f)
    for age, row in US_SPEC.items():
        for (eth, sex), value in zip(US_SPEC_COLUMNS, row, strict=True):
            assert pct[(age, sex, eth)] == pytest.approx(value, abs=0.0005 + 1e-9), (age, sex, eth)
    by_group = f.groupby(["ethnicity", "sex"], observed=True)["share"].sum() * 100
    for (eth, sex), value in zip(US_SPEC_COLUMNS, US_SPEC_ALL_AGES, strict=True):
        assert by_group[(eth, sex)] == pytest.approx(value, abs=0.0005 + 1e-9)


def test_us_original_double_counts_exactly_the_hispanic_table():
    """Without table I the original sums to 253,656,134 adults (SPEC §2.2)."""
    tab = census.us_tables()
    adults = tab[tab["age"] != "0-17"]
    assert adults.loc[adults["table"] != "B01001I", "estimate"].sum() == 253_656_134
    assert adults["estimate"].sum() == 298_477_760


def test_us_default_counts_every_adult_once():
    f = census.frame("us", "default")
    tab = census.us_tables()
    adults = tab[tab["age"] != "0-17"].pivot_table(
        index=["sex", "age"], columns="table", values="estimate", aggfunc="sum"
    )
    total = f["count"].sum()
    # The US adult population in 2022 is about 261 million.
    assert 255e6 < total < 265e6
    # White = non-Hispanic White alone (table H), exactly.
    white = f[f["ethnicity"] == "White"].set_index(["sex", "age"])["count"]
    for (sex, age), n in white.items():
        assert n == adults.loc[(sex, age), "B01001H"]
    # Hispanic adults are all in Other, once: Other >= table I in every cell.
    other = f[f["ethnicity"] == "Other"].set_index(["sex", "age"])["count"]
    for (sex, age), n in other.items():
        assert n >= adults.loc[(sex, age), "B01001I"]
    # Everyone counted: the frame over all ages plus the children sums to the ACS total.
    alloc = census.us_hispanic_allocation()
    children = tab[tab["age"] == "0-17"].pivot_table(
        index="sex", columns="table", values="estimate", aggfunc="sum"
    )
    race_tables = list(census.US_RACE_TABLES)
    child_total = (
        children[["B01001H", "B01001I"] + race_tables].to_numpy().sum()
        - alloc.xs("0-17", level="age")[race_tables].to_numpy().sum()
    )
    assert total + child_total == pytest.approx(census.ACS_2022_TOTAL_POPULATION, rel=1e-12)


def test_us_hispanic_allocation_is_consistent():
    alloc = census.us_hispanic_allocation()
    tab = census.us_tables().pivot_table(
        index=["sex", "age"], columns="table", values="estimate", aggfunc="sum"
    )
    # Row sums reproduce table I exactly; no race table gives more than it holds.
    np.testing.assert_allclose(alloc.sum(axis=1), tab.loc[alloc.index, "B01001I"], rtol=1e-10)
    for table in census.US_RACE_TABLES:
        assert (alloc[table] > 0).all()
        assert (alloc[table] < tab.loc[alloc.index, table]).all()
    # White-alone Hispanics = total population minus every race table (races partition).
    race_sum = tab[list(census.US_RACE_TABLES) + ["B01001H"]].to_numpy().sum()
    assert alloc["white_alone"].sum() == pytest.approx(
        census.ACS_2022_TOTAL_POPULATION - race_sum, rel=1e-12
    )
    assert alloc["white_alone"].sum() == pytest.approx(10.7e6, rel=0.01)  # Pew, 2022


def test_us_default_less_mixed_than_original():
    """Removing the Hispanic members of the Two-or-more-races table shrinks Mixed."""
    d = census.frame("us", "default").groupby("ethnicity", observed=True)["count"].sum()
    o = census.frame("us", "original").groupby("ethnicity", observed=True)["count"].sum()
    assert d["White"] == o["White"]
    assert d["Mixed"] < o["Mixed"] and d["Black"] < o["Black"] and d["Asian"] < o["Asian"]
    assert d["Other"] < o["Other"]
    assert o.sum() - d.sum() == pytest.approx(
        census.us_hispanic_allocation()
        .drop(index="0-17", level="age")
        .drop(columns="white_alone")
        .to_numpy()
        .sum()
    )


@pytest.mark.parametrize(("country", "harmonisation"), ALL_FRAMES)
def test_group_masks_partition(country, harmonisation):
    f = census.frame(country, harmonisation)
    masks = census.group_masks(f)
    assert list(masks) == list(census.GROUPS)
    assert masks["all"].all()
    for a, b in (("male", "nonmale"), ("white", "nonwhite"), ("under45", "over45")):
        assert masks[a].dtype == bool
        assert not (masks[a] & masks[b]).any()
        assert (masks[a] | masks[b]).all()
    assert masks["male"].sum() == 30 and masks["white"].sum() == 12
    assert masks["under45"].sum() == 30
    assert set(f.loc[masks["under45"], "age"].astype(str)) == {"18-24", "25-34", "35-44"}
    assert set(f.loc[masks["nonmale"], "sex"].astype(str)) == {"Female"}


def test_group_shares_uk():
    f = census.frame("uk")
    masks = census.group_masks(f)
    assert f.loc[masks["male"], "share"].sum() == pytest.approx(0.4836, abs=5e-5)
    assert f.loc[masks["white"], "share"].sum() == pytest.approx(0.43269 + 0.40625, abs=2e-5)


def test_bad_arguments():
    with pytest.raises(census.CensusError, match="unknown country"):
        census.frame("fr")
    with pytest.raises(census.CensusError, match="unknown harmonisation"):
        census.frame("us", "raw")
    with pytest.raises(census.CensusError, match="lacks columns"):
        census.group_masks(pd.DataFrame({"age": ["18-24"]}))


def test_sources_recorded():
    src = census.SOURCES
    assert src["uk"]["adults_18plus"] == 47_204_870
    assert src["uk"]["ethnic_groups"]["Other ethnic group: Arab"] == "Other"
    tables = src["us"]["tables"]
    assert set(tables) == {f"B01001{x}" for x in "BCDEFGHI"}
    assert tables["B01001H"]["universe"] == "White alone, not Hispanic or Latino population"
    assert all(t["dataset"] == "ACSDT1Y2022" for t in tables.values())
    # The all-ages totals in the file headers agree with the packaged estimates.
    tab = census.us_tables().groupby("table")["estimate"].sum()
    for tid, meta in tables.items():
        assert tab[tid] == meta["total_all_ages"]
    assert "B01003" in src["us"]["external"]["ACS_2022_TOTAL_POPULATION"]["source"]
