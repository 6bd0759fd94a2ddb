"""UK and US census frames for post-stratification and raking.

A *census frame* is the adult population of a country cross-classified into the 60
cells age band (6) x sex (2) x ethnic group (5) of the original PRISM census
rebalancing (SPEC §2.2). :func:`frame` returns it as a DataFrame (one row per cell,
frame order: age outermost, then sex, then ethnicity) with the adult ``count`` and
its ``share``; :func:`group_masks` gives the population subgroups of the welfare
analysis; :func:`cell_of` (from :mod:`prism_stats.census.harmonise`) maps survey
answers to cells.

Sources (see :data:`SOURCES` and ``data/sources.json``)
-------------------------------------------------------
* **UK** -- ONS Census 2021, England and Wales, usual residents: ethnic group (19
  tick-box groups) by single year of age and sex, the data of the ONS release "Ethnic
  group by age and sex, England and Wales: Census 2021" (the source file carries no
  table id; its 2011 comparison columns are not used). Ages 18 ... 100+ are summed into
  the 6 bands; the 19 groups collapse to White / Asian / Black / Mixed / Other, where
  Other = "Arab" + "Any other ethnic group". Adults: 47,204,870.
* **US** -- American Community Survey 2022 1-year estimates (ACSDT1Y2022), detailed
  tables "Sex by Age" for B01001B (Black alone), B01001C (American Indian and Alaska
  Native alone), B01001D (Asian alone), B01001E (Native Hawaiian and Other Pacific
  Islander alone), B01001F (Some other race alone), B01001G (Two or more races),
  B01001H (White alone, not Hispanic or Latino) and B01001I (Hispanic or Latino).

Harmonisations of the US frame
------------------------------
The race tables B-G count people of that race *whatever their Hispanic origin*,
B01001H is non-Hispanic White only, and B01001I counts Hispanic people *of any race*.
Summing them counts every Hispanic adult who is not White alone twice.

``"original"``
    Exactly the original study: White = H, Black = B, Asian = D, Mixed = G and
    Other = F + E + C + I. Hispanic adults of the B-G races are counted twice; the adult
    total is 298,477,760 (SPEC §2.2, §5.7). Kept to reproduce the REP sample.

``"default"``
    Every adult is counted once, in the group the survey would put them in: the survey
    maps "Hispanic / Latino" to Other, so **all Hispanic adults are Other** (table I),
    White is non-Hispanic White alone (table H), and Black, Asian and Mixed are the
    *non-Hispanic* members of tables B, D and G; Other also takes the non-Hispanic
    members of C, E and F. The B-G tables are not split by Hispanic origin at this
    age x sex detail (ACS publishes only H and I), so the Hispanic members of each race
    table are estimated, per age x sex cell, from three published facts:

    1. *Hispanic White-alone people, nationally.* Races partition the population, so
       White-alone Hispanic = total population - (B + C + D + E + F + G + H) =
       333,287,562 - 322,551,621 = 10,735,941 (ACS 2022 B01003 total; the files).
       This agrees with the 10.7 million White-alone Latinos reported for 2022 by Pew
       Research Center. They are spread over the cells in proportion to table I (the
       White-alone share of Hispanic people, 16.9%, is taken as equal in every cell).
    2. *Hispanic people of the other races, per cell* = I - (White-alone Hispanic): an
       exact per-cell total (52,817,698 people over all ages).
    3. *Which race tables they sit in.* Each race's Hispanic fraction in the 2020 Census
       (P.L. 94-171 redistricting data: race alone totals and Hispanic-by-race counts,
       see :data:`CENSUS_2020_RACE`) is the prior; within each cell all races' log-odds
       of being Hispanic are shifted by one common amount so that the race tables'
       Hispanic members add up to the exact per-cell total of step 2 (a logit-scale
       calibration, which keeps every fraction inside (0, 1)).

    Residual approximation: the White-alone Hispanic share is assumed constant across
    cells, and the relative propensities of the races to be Hispanic are taken from
    the 2020 Census (the ACS codes more people as multiracial than the 2020 Census did;
    the per-cell calibration absorbs the overall level). The Black, Asian and Mixed
    cells carry this approximation; White (table H) and the Hispanic part of Other
    (table I) are exact. The result (:func:`us_hispanic_allocation`) puts 26.5 million
    Hispanic people in the Two-or-more-races table nationally, against the "more than
    27 million" multiracial Latinos of 2022 reported by Pew. The adult total is
    261.2 million (all ages: exactly the ACS total of 333,287,562). Where White-alone
    Hispanic people are older than other Hispanic people, the true adult total is up
    to about 1 million higher; no published table fixes this split. ``docs/census.md``
    has the numbers, a sensitivity check and the comparison with the original.

For the UK the two harmonisations are the same table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from io import StringIO

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from prism_stats import vocab
from prism_stats.census.harmonise import (
    CELL_LABELS,
    NO_CELL_REASONS,
    HarmonisationError,
    cell_of,
    census_age,
    census_ethnicity,
    census_sex,
    harmonise_participants,
    no_cell_reasons,
)

__all__ = [
    "ACS_2022_TOTAL_POPULATION",
    "CELL_LABELS",
    "CENSUS_2020_RACE",
    "COUNTRIES",
    "GROUPS",
    "HARMONISATIONS",
    "NO_CELL_REASONS",
    "SOURCES",
    "CensusError",
    "HarmonisationError",
    "cell_of",
    "census_age",
    "census_ethnicity",
    "census_sex",
    "frame",
    "group_masks",
    "harmonise_participants",
    "no_cell_reasons",
    "us_hispanic_allocation",
    "us_tables",
]

COUNTRIES: tuple[str, ...] = vocab.COUNTRIES_MRP
HARMONISATIONS: tuple[str, ...] = ("default", "original")
#: Population subgroups of :func:`group_masks` (the welfare analysis' populations).
GROUPS: tuple[str, ...] = vocab.POPULATION_GROUPS

#: ACS 2022 1-year total resident population of the United States (table B01003,
#: estimate B01003_001E; controlled to the population estimates, so without sampling
#: error). Used to derive the White-alone Hispanic population.
ACS_2022_TOTAL_POPULATION: int = 333_287_562

#: 2020 Census (P.L. 94-171 redistricting data, United States): race-alone totals and
#: the Hispanic or Latino people among them (Census Bureau supplementary table
#: "Hispanic or Latino Origin by Race: 2010 and 2020"). ``{ACS table: (all, hispanic)}``;
#: two or more races = total 331,449,281 minus the six race-alone totals.
CENSUS_2020_RACE: dict[str, tuple[int, int]] = {
    "B01001B": (41_104_200, 1_163_862),  # Black or African American alone
    "B01001C": (3_727_135, 1_475_436),  # American Indian and Alaska Native alone
    "B01001D": (19_886_049, 267_330),  # Asian alone
    "B01001E": (689_966, 67_948),  # Native Hawaiian and Other Pacific Islander alone
    "B01001F": (27_915_715, 26_225_882),  # Some Other Race alone
    "B01001G": (33_848_943, 20_299_960),  # Two or More Races
}
#: The ACS race tables whose members include Hispanic people, and their census group
#: under the default harmonisation (their Hispanic members go to Other).
US_RACE_TABLES: dict[str, str] = {
    "B01001B": "Black",
    "B01001C": "Other",
    "B01001D": "Asian",
    "B01001E": "Other",
    "B01001F": "Other",
    "B01001G": "Mixed",
}
US_WHITE_NH, US_HISPANIC = "B01001H", "B01001I"


class CensusError(ValueError):
    """An unknown country or harmonisation, or a malformed census frame."""


def _data_text(name: str) -> str:
    return resources.files("prism_stats.census").joinpath("data", name).read_text(encoding="utf-8")


def _read_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(StringIO(_data_text(name)), comment="#")


@functools.cache
def _sources() -> dict:
    src = json.loads(_data_text("sources.json"))
    src["us"]["external"] = {
        "ACS_2022_TOTAL_POPULATION": {
            "value": ACS_2022_TOTAL_POPULATION,
            "source": "ACS 2022 1-year, table B01003 (Total Population), B01003_001E, "
            "United States",
        },
        "CENSUS_2020_RACE": {
            "value": {k: list(v) for k, v in CENSUS_2020_RACE.items()},
            "source": "2020 Census Redistricting Data (P.L. 94-171), United States: race "
            "alone (P1) and Hispanic or Latino origin by race (supplementary table 4)",
        },
    }
    return src


class _LazySources(Mapping):
    """Read-only mapping view of the provenance record, loaded on first access."""

    def __getitem__(self, key: str):
        return _sources()[key]

    def __iter__(self):
        return iter(_sources())

    def __len__(self) -> int:
        return len(_sources())

    def __repr__(self) -> str:
        return f"SOURCES({list(self)})"


#: Provenance of the census tables: per country the source description, file names,
#: SHA-256 of the raw files, ACS table ids, titles, universes and web addresses, and
#: the external constants of the US default harmonisation.
SOURCES: Mapping[str, dict] = _LazySources()


@functools.cache
def us_tables() -> pd.DataFrame:
    """The ACS 2022 estimates behind the US frames, by table, sex and age band.

    Columns ``table`` (ACS id), ``sex``, ``age`` (``"0-17"`` for children, then the
    census bands), ``estimate`` and ``moe90`` (90% margin of error, the age rows'
    margins combined in quadrature).
    """
    tab = _read_csv("us_tables.csv")
    expected = set(US_RACE_TABLES) | {US_WHITE_NH, US_HISPANIC}
    if set(tab["table"]) != expected or len(tab) != len(expected) * 2 * 7:
        raise CensusError("us_tables.csv: unexpected tables or rows")
    return tab


def _us_wide() -> pd.DataFrame:
    """Estimates as a (sex, age) x table matrix, children included."""
    tab = us_tables()
    wide = tab.pivot(index=["sex", "age"], columns="table", values="estimate").astype(float)
    return wide


@functools.cache
def _us_hispanic_allocation() -> pd.DataFrame:
    wide = _us_wide()
    races = list(US_RACE_TABLES)
    white_hispanic_total = ACS_2022_TOTAL_POPULATION - wide[races + [US_WHITE_NH]].to_numpy().sum()
    hispanic = wide[US_HISPANIC]
    if not 0 < white_hispanic_total < hispanic.sum():
        raise CensusError(
            f"implied White-alone Hispanic population {white_hispanic_total:,.0f} is not "
            f"between 0 and the Hispanic total {hispanic.sum():,.0f}"
        )
    white_hispanic = hispanic * (white_hispanic_total / hispanic.sum())
    other_hispanic = hispanic - white_hispanic
    prior_logit = logit(np.array([CENSUS_2020_RACE[r][1] / CENSUS_2020_RACE[r][0] for r in races]))
    sizes = wide[races].to_numpy()
    fractions = np.empty_like(sizes)
    for i, (target, n) in enumerate(zip(other_hispanic.to_numpy(), sizes, strict=True)):
        if not 0 < target < n.sum():
            raise CensusError(
                f"cell {wide.index[i]}: {target:,.0f} Hispanic people cannot be placed in "
                f"race tables holding {n.sum():,.0f}"
            )

        def excess(shift: float, n=n, target=target) -> float:
            return float(n @ expit(prior_logit + shift)) - target

        shift = brentq(excess, -50.0, 50.0, xtol=1e-12)
        fractions[i] = expit(prior_logit + shift)
    out = pd.DataFrame(sizes * fractions, index=wide.index, columns=races)
    out.insert(0, "white_alone", white_hispanic)
    return out


def us_hispanic_allocation() -> pd.DataFrame:
    """Estimated Hispanic people in each ACS table and (sex, age) cell (default harmonisation).

    Rows: (sex, age) with age ``"0-17"`` and the census bands; columns
    ``white_alone`` (Hispanic White-alone people) and the race tables B01001B ...
    B01001G (their Hispanic members). Row sums equal table B01001I exactly. See the
    module docstring for the method.
    """
    return _us_hispanic_allocation().copy()


def _us_counts(harmonisation: str) -> pd.DataFrame:
    wide = _us_wide()
    if harmonisation == "original":
        groups = pd.DataFrame(
            {
                "White": wide[US_WHITE_NH],
                "Black": wide["B01001B"],
                "Asian": wide["B01001D"],
                "Mixed": wide["B01001G"],
                "Other": wide[["B01001F", "B01001E", "B01001C", US_HISPANIC]].sum(axis=1),
            }
        )
    else:
        hisp = _us_hispanic_allocation()
        non_hispanic = wide[list(US_RACE_TABLES)] - hisp[list(US_RACE_TABLES)]
        groups = pd.DataFrame({"White": wide[US_WHITE_NH], "Other": wide[US_HISPANIC]})
        for table, group in US_RACE_TABLES.items():
            groups[group] = groups.get(group, 0.0) + non_hispanic[table]
    long = groups.stack().rename("count").reset_index()
    long.columns = ["sex", "age", "ethnicity", "count"]
    return long[long["age"] != "0-17"]


def _uk_counts() -> pd.DataFrame:
    return _read_csv("uk.csv")


def _assemble(counts: pd.DataFrame, country: str, harmonisation: str) -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [vocab.CENSUS_AGES, vocab.CENSUS_SEXES, vocab.CENSUS_ETHNICITIES],
        names=["age", "sex", "ethnicity"],
    )
    counts = counts.set_index(["age", "sex", "ethnicity"])["count"].astype(float)
    if counts.index.duplicated().any() or set(counts.index) != set(index):
        raise CensusError(f"{country}: census table does not have exactly the 60 cells")
    counts = counts.reindex(index)
    if (counts <= 0).any() or not np.isfinite(counts).all():
        bad = counts[(counts <= 0) | ~np.isfinite(counts)]
        raise CensusError(f"{country}: non-positive cell counts {bad.to_dict()}")
    out = counts.reset_index()
    out.insert(0, "cell", list(CELL_LABELS))
    for col, cats in (
        ("age", vocab.CENSUS_AGES),
        ("sex", vocab.CENSUS_SEXES),
        ("ethnicity", vocab.CENSUS_ETHNICITIES),
    ):
        out[col] = pd.Categorical(out[col], categories=cats, ordered=True)
    out["share"] = out["count"] / out["count"].sum()
    out.attrs.update(country=country, harmonisation=harmonisation)
    return out


@functools.cache
def _frame(country: str, harmonisation: str) -> pd.DataFrame:
    if country == "uk":
        return _assemble(_uk_counts(), country, harmonisation)
    return _assemble(_us_counts(harmonisation), country, harmonisation)


def frame(country: str, harmonisation: str = "default") -> pd.DataFrame:
    """The census frame of a country: 60 cells with adult counts and shares.

    Parameters
    ----------
    country
        ``"uk"`` (ONS Census 2021, England and Wales) or ``"us"`` (ACS 2022 1-year).
    harmonisation
        ``"default"`` (every adult counted once) or ``"original"`` (the original
        study's tables; for the US it double-counts Hispanic adults of the non-White
        race tables). Identical for the UK. See the module docstring.

    Returns
    -------
    pandas.DataFrame
        60 rows in frame order (age band, then sex, then ethnicity) with columns
        ``cell`` (``"18-24|Male|White"``), ``age``, ``sex``, ``ethnicity`` (ordered
        categoricals of :data:`vocab.CENSUS_AGES`, :data:`vocab.CENSUS_SEXES`,
        :data:`vocab.CENSUS_ETHNICITIES`), ``count`` (adults, float) and ``share``
        (sums to 1). ``attrs`` records the country and harmonisation. A fresh copy is
        returned on every call.

    Raises
    ------
    CensusError
        For an unknown country or harmonisation.
    """
    country = str(country).lower()
    if country not in COUNTRIES:
        raise CensusError(f"unknown country {country!r}; expected one of {list(COUNTRIES)}")
    if harmonisation not in HARMONISATIONS:
        raise CensusError(
            f"unknown harmonisation {harmonisation!r}; expected one of {list(HARMONISATIONS)}"
        )
    out = _frame(country, harmonisation).copy()
    out.attrs = dict(_frame(country, harmonisation).attrs)
    return out


def group_masks(census_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean cell masks of the population subgroups.

    Groups: ``all``; ``male`` / ``nonmale`` (Female -- the census frames are binary by
    sex); ``white`` / ``nonwhite``; ``under45`` (ages 18-44) / ``over45`` (45 and over,
    :data:`vocab.AGE_OVER45`). Each pair partitions the cells.

    Parameters
    ----------
    census_frame
        A frame from :func:`frame` (any table with ``age``, ``sex`` and ``ethnicity``).

    Returns
    -------
    dict[str, numpy.ndarray]
        Group name -> boolean array over the rows of *census_frame*, in :data:`GROUPS`
        order.
    """
    missing = {"age", "sex", "ethnicity"} - set(census_frame.columns)
    if missing:
        raise CensusError(f"census frame lacks columns {sorted(missing)}")
    age = census_frame["age"].astype("string")
    sex = census_frame["sex"].astype("string")
    eth = census_frame["ethnicity"].astype("string")
    if age.isna().any() or sex.isna().any() or eth.isna().any():
        raise CensusError("census frame has missing age, sex or ethnicity")
    male = (sex == "Male").to_numpy(dtype=bool)
    white = (eth == "White").to_numpy(dtype=bool)
    over45 = age.isin(vocab.AGE_OVER45).to_numpy(dtype=bool)
    return {
        "all": np.ones(len(census_frame), dtype=bool),
        "male": male,
        "nonmale": ~male,
        "white": white,
        "nonwhite": ~white,
        "under45": ~over45,
        "over45": over45,
    }
