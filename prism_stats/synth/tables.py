"""Calibration tables of the synthetic PRISM generator (published margins and priors).

Every number here is either a published count of the PRISM release or a documented
modelling choice of the generator (marked *prior*: a plausible joint structure that the
generator then rakes to the published margins).

Sources
-------
- Counts: the PRISM codebook (Kirk et al. 2024, DOI 10.57967/hf/2113) §4.1-4.3 and
  the project specification SPEC.md §1.2-1.5 (birth/residence country table, Prolific
  study locales, per-user conversation facts, opener sizes 6,241/1,545/225).
- UK/US joint age x sex x census-ethnicity structure: the "available" column of the
  cell tables in SPEC.md §2.3 (the balanced UK/US pool before rebalancing).
- Text-feature effects and prevalences: SPEC.md §3.9 (full opener OLS and flag rates).
"""

from __future__ import annotations

import numpy as np

from prism_stats import vocab

PNTS = vocab.PREFER_NOT

#: Size of the release (participants).
N_RELEASE = 1500

# --- participants ---------------------------------------------------------------------------

SURVEY_ONLY = 104
#: Conversations per participant with conversations (1..7); mean 5.74, sd 0.98 [NB:01].
#: *prior* pmf, tuned so that mean/sd match.
N_CONVERSATIONS_PMF: dict[int, float] = {
    1: 0.008,
    2: 0.012,
    3: 0.033,
    4: 0.05,
    5: 0.072,
    6: 0.7275,
    7: 0.0975,
}

#: Birth / residence counts per country, in the order of ``vocab.COUNTRIES`` then
#: "Prefer not to say" (SPEC §1.2 table, NB:01 cell 15).
BIRTH_COUNTS: tuple[int, ...] = (
    338,
    292,
    91,
    69,
    65,
    64,
    63,
    50,
    47,
    19,
    19,
    17,
    17,
    17,
    17,
    17,
    16,
    15,
    15,
    15,
    14,
    14,
    14,
    14,
    12,
    11,
    11,
    10,
    9,
    9,
    9,
    9,
    8,
    7,
    7,
    7,
    6,
    4,
    4,
    4,
    3,
    3,
    3,
    3,
    3,
    3,
    2,
    2,
    2,
    2,
    2,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    0,
    0,
    3,
)
RESIDE_COUNTS: tuple[int, ...] = (
    386,
    340,
    86,
    67,
    72,
    77,
    65,
    54,
    61,
    0,
    18,
    13,
    17,
    16,
    14,
    15,
    14,
    15,
    14,
    15,
    12,
    13,
    13,
    14,
    13,
    10,
    10,
    10,
    8,
    0,
    11,
    7,
    7,
    0,
    0,
    6,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    2,
    0,
    0,
    1,
    1,
    1,
    1,
)
assert len(BIRTH_COUNTS) == len(RESIDE_COUNTS) == len(vocab.COUNTRY_CODES)
assert sum(BIRTH_COUNTS) == sum(RESIDE_COUNTS) == N_RELEASE
#: Participants born in their residence country ("Yes" of same_birth_reside_country).
SAME_COUNTRY_YES = 1320

#: Residence country -> Prolific study locale. Locales are lower-case country names
#: (SPEC §1.2: only "uk"/"us" are attested; the others are presumed lower-case names);
#: Japan and Korea were one "asia" study. Residents of a country without its own study
#: are assigned the nearest study (a modelling choice: the release's locale and
#: residence disagree for a handful of people too).
LOCALE_OF_RESIDENCE: dict[str, str] = {
    "USA": "us",
    "GBR": "uk",
    "ZAF": "south africa",
    "MEX": "mexico",
    "AUS": "australia",
    "NZL": "new zealand",
    "CHL": "chile",
    "CAN": "canada",
    "ISR": "israel",
    "ESP": "spain",
    "DEU": "germany",
    "BEL": "belgium",
    "HUN": "hungary",
    "POL": "poland",
    "IRL": "ireland",
    "LVA": "latvia",
    "DNK": "denmark",
    "CZE": "czech republic",
    "NOR": "norway",
    "FRA": "france",
    "ITA": "italy",
    "GRC": "greece",
    "CHE": "switzerland",
    "FIN": "finland",
    "EST": "estonia",
    "AUT": "austria",
    "SVN": "slovenia",
    "NLD": "netherlands",
    "JPN": "asia",
    "KOR": "asia",
    "PRT": "portugal",
    "SWE": "sweden",
    "ISL": "iceland",
    "LUX": "luxembourg",
    "TZA": "south africa",
    "LSO": "south africa",
    "URY": "mexico",
    PNTS: "mexico",
}
#: Prolific studies per locale (51 in all, SPEC §1.2); *prior* split of the 51 ids.
STUDIES_PER_LOCALE: dict[str, int] = {
    "us": 7,
    "uk": 6,
    "south africa": 2,
    "new zealand": 2,
    "australia": 2,
    "mexico": 2,
    "chile": 2,
    "israel": 2,
    "canada": 2,
}

AGE_COUNTS: dict[str, int] = {
    "18-24": 297,
    "25-34": 454,
    "35-44": 237,
    "45-54": 208,
    "55-64": 197,
    "65+": 106,
    PNTS: 1,
}
GENDER_COUNTS: dict[str, int] = {
    "Male": 757,
    "Female": 718,
    "Non-binary / third gender": 21,
    PNTS: 4,
}
ETHNICITY_COUNTS: dict[str, int] = {
    "White": 969,
    "Black / African": 122,
    "Hispanic / Latino": 121,
    "Asian": 95,
    "Mixed": 68,
    "Middle Eastern / Arab": 14,
    "Indigenous / First Peoples": 8,
    "Other": 17,
    PNTS: 86,
}
RELIGION_COUNTS: dict[str, int] = {
    "Non-religious": 762,
    "Christian": 487,
    "Agnostic": 71,
    "Jewish": 42,
    "Muslim": 31,
    "Spiritual": 18,
    "Buddhist": 12,
    "Folk religion": 6,
    "Hindu": 5,
    "Sikh": 3,
    "Other": 4,
    PNTS: 59,
}
EMPLOYMENT_COUNTS: dict[str, int] = {
    "Working full-time": 712,
    "Working part-time": 265,
    "Student": 191,
    "Unemployed, seeking work": 113,
    "Unemployed, not seeking work": 46,
    "Retired": 104,
    "Homemaker / Stay-at-home parent": 46,
    PNTS: 23,
}
EDUCATION_COUNTS: dict[str, int] = {
    "Some Primary": 3,
    "Completed Primary School": 16,
    "Some Secondary": 24,
    "Completed Secondary School": 209,
    "Vocational": 125,
    "Some University but no degree": 236,
    "University Bachelors Degree": 637,
    "Graduate / Professional degree": 241,
    PNTS: 9,
}
MARITAL_COUNTS: dict[str, int] = {
    "Never been married": 870,
    "Married": 463,
    "Divorced / Separated": 123,
    "Widowed": 21,
    PNTS: 23,
}
ENGLISH_COUNTS: dict[str, int] = {
    "Native speaker": 886,
    "Fluent": 405,
    "Advanced": 160,
    "Intermediate": 42,
    "Basic": 7,
}
FAMILIARITY_COUNTS: dict[str, int] = {
    "Very familiar": 424,
    "Somewhat familiar": 920,
    "Not familiar at all": 156,
}
#: Joint direct (rows Yes/No/Unsure) x indirect (columns Yes/No/Unsure) use. Margins and
#: the union "shown" = 1,253 are published (SPEC §1.2); the split of the off-diagonal
#: cells is a *prior*.
DIRECT_INDIRECT_COUNTS = np.array([[1013, 50, 99], [60, 150, 49], [31, 15, 33]])
FREQUENCY_COUNTS: dict[str, int] = {
    "Every day": 110,
    "Every week": 316,
    "More than once a month": 291,
    "Once per month": 374,
    "Less than one a year": 162,
}
#: Selected / shown for each use case (SPEC §1.2 table; shown = 1,253).
USECASE_SELECTED: dict[str, int] = {
    "homework_assistance": 286,
    "research": 617,
    "source_suggestions": 217,
    "professional_work": 469,
    "creative_writing": 392,
    "casual_conversation": 262,
    "personal_recommendations": 266,
    "daily_productivity": 216,
    "technical_or_programming_help": 337,
    "travel_guidance": 133,
    "lifestyle_and_hobbies": 310,
    "well-being_guidance": 159,
    "medical_guidance": 130,
    "financial_guidance": 107,
    "games": 143,
    "historical_or_news_insight": 183,
    "relationship_advice": 98,
    "language_learning": 229,
    "other": 124,
}
USECASES_SHOWN = 1253
#: Stated-preference sliders (0-100): mean, sd (codebook §4.1).
STATED_PREF_MOMENTS: dict[str, tuple[float, float]] = {
    "values": (54.3, 26.3),
    "creativity": (69.6, 22.1),
    "fluency": (86.7, 16.3),
    "factuality": (88.7, 16.2),
    "diversity": (75.7, 20.0),
    "safety": (80.2, 25.2),
    "personalisation": (67.9, 24.6),
    "helpfulness": (89.4, 14.4),
    "other": (57.5, 19.0),
}
STATED_PREF_OTHER_TEXT = 332  # participants who typed an "other" stated preference
#: Performance / choice attribute sliders (1-100): mean, sd (codebook §4.2).
PERFORMANCE_MOMENTS: dict[str, tuple[float, float]] = {
    "values": (74.1, 22.2),
    "fluency": (84.3, 18.3),
    "factuality": (79.2, 21.5),
    "safety": (85.1, 19.3),
    "diversity": (68.7, 25.3),
    "creativity": (63.7, 26.1),
    "helpfulness": (81.5, 21.9),
}
CHOICE_MOMENTS: dict[str, tuple[float, float]] = {
    "values": (66.9, 27.2),
    "fluency": (82.5, 18.5),
    "factuality": (79.3, 21.0),
    "safety": (72.1, 27.8),
    "diversity": (66.0, 26.5),
    "creativity": (62.1, 27.1),
    "helpfulness": (82.5, 20.0),
}
#: Share of conversations with >= 1 N/A (null) attribute: 1,824 and 1,740 of 8,011.
PERFORMANCE_ANY_NULL = 1824 / 8011
CHOICE_ANY_NULL = 1740 / 8011

#: Text lengths (characters): mean, sd, min, max (codebook / SPEC §3.10).
SELF_DESCRIPTION_CHARS = (241.3, 134.6, 3, 1547)
SYSTEM_STRING_CHARS = (260.4, 288.4, 16, 9530)
USECASE_OTHER_TEXT_CHARS = (45.8, 41.9, 3, 328)
STATED_OTHER_TEXT_CHARS = (32.6, 24.4, 1, 144)
OPENING_PROMPT_CHARS = (65.7, 59.2, 2, 1195)
USER_PROMPT_CHARS = (69.9, 62.0, 1, 1311)
OPEN_FEEDBACK_CHARS = (160.1, 106.4, 2, 1581)
RESPONSE_CHARS = (565.3, 387.9, 1, 4630)

# --- UK / US joint structure ------------------------------------------------------------------

#: Columns of the UK/US "available" tables: (census ethnicity, sex).
UKUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("White", "Female"),
    ("White", "Male"),
    ("Black", "Female"),
    ("Black", "Male"),
    ("Asian", "Female"),
    ("Asian", "Male"),
    ("Mixed", "Female"),
    ("Mixed", "Male"),
    ("Other", "Female"),
    ("Other", "Male"),
)
#: Eligible balanced-pool participants per age band (rows 18-24 ... 65+) and column above
#: (SPEC §2.3, middle number of each "target/available/selected" triple).
UK_AVAILABLE = np.array(
    [
        [9, 9, 0, 1, 2, 1, 2, 0, 1, 1],
        [23, 24, 2, 3, 2, 2, 0, 0, 1, 1],
        [23, 20, 1, 2, 2, 1, 2, 1, 0, 1],
        [17, 21, 1, 0, 0, 2, 1, 1, 0, 0],
        [33, 24, 1, 2, 0, 2, 2, 0, 1, 0],
        [13, 15, 0, 0, 0, 0, 1, 0, 0, 0],
    ]
)
US_AVAILABLE = np.array(
    [
        [8, 8, 3, 1, 2, 3, 0, 0, 3, 0],
        [14, 20, 1, 4, 2, 1, 2, 2, 4, 2],
        [13, 13, 4, 2, 1, 2, 2, 2, 1, 2],
        [20, 24, 2, 4, 3, 1, 1, 2, 2, 4],
        [26, 20, 4, 1, 3, 1, 4, 2, 0, 1],
        [17, 16, 3, 1, 0, 0, 0, 1, 0, 2],
    ]
)
#: In the UK/US pools: share with non-binary / PNTS gender (284 -> 283, 300 -> 297) and
#: with ethnicity "Prefer not to say" (283 -> 274, 297 -> 287) [SPEC §2.2].
UKUS_NONBINARY = 0.007
UKUS_GENDER_PNTS = 0.002
UKUS_ETHNICITY_PNTS = 0.033
#: Census "Other" group -> categorised ethnicity, by locale (*prior*).
OTHER_GROUP_SPLIT: dict[str, dict[str, float]] = {
    "us": {
        "Hispanic / Latino": 0.78,
        "Indigenous / First Peoples": 0.07,
        "Middle Eastern / Arab": 0.05,
        "Other": 0.10,
    },
    "uk": {
        "Hispanic / Latino": 0.15,
        "Middle Eastern / Arab": 0.35,
        "Other": 0.45,
        "Indigenous / First Peoples": 0.05,
    },
}

# --- priors for everybody else (raked to the remaining margins) ------------------------------

#: Age prior outside the UK/US representative studies (Prolific's general pool is young).
OTHER_AGE_PRIOR: dict[str, float] = {
    "18-24": 0.27,
    "25-34": 0.38,
    "35-44": 0.17,
    "45-54": 0.10,
    "55-64": 0.05,
    "65+": 0.025,
    PNTS: 0.002,
}
#: Gender prior by age band (non-binary more common among the young).
GENDER_PRIOR_BY_AGE: dict[str, tuple[float, float, float, float]] = {
    "18-24": (0.47, 0.49, 0.035, 0.005),
    "25-34": (0.5, 0.48, 0.017, 0.003),
    "35-44": (0.51, 0.48, 0.008, 0.002),
    "45-54": (0.51, 0.48, 0.006, 0.002),
    "55-64": (0.51, 0.48, 0.005, 0.002),
    "65+": (0.52, 0.47, 0.004, 0.002),
    PNTS: (0.3, 0.3, 0.1, 0.3),
}

#: Ethnicity prior by birth-country class (*prior*), over ``vocab.ETHNICITY_CATEGORISED``:
#: White, Black, Hispanic, Asian, Mixed, Middle Eastern, Indigenous, Other, PNTS.
ETHNICITY_PRIOR: dict[str, tuple[float, ...]] = {
    "europe": (0.89, 0.01, 0.005, 0.015, 0.025, 0.004, 0.001, 0.005, 0.045),
    "anglo": (0.76, 0.02, 0.01, 0.07, 0.06, 0.005, 0.02, 0.01, 0.045),
    "israel": (0.55, 0.005, 0.005, 0.005, 0.05, 0.16, 0.0, 0.1, 0.125),
    "latam": (0.15, 0.01, 0.72, 0.005, 0.05, 0.002, 0.02, 0.01, 0.033),
    "south_africa": (0.36, 0.44, 0.002, 0.04, 0.09, 0.002, 0.0, 0.01, 0.056),
    "africa": (0.02, 0.92, 0.0, 0.01, 0.02, 0.01, 0.0, 0.005, 0.015),
    "asia": (0.02, 0.0, 0.0, 0.91, 0.03, 0.005, 0.0, 0.01, 0.025),
    "middle_east": (0.3, 0.0, 0.0, 0.02, 0.05, 0.48, 0.0, 0.1, 0.05),
    "central_asia": (0.3, 0.0, 0.0, 0.6, 0.05, 0.0, 0.0, 0.03, 0.02),
    "polynesia": (0.0, 0.0, 0.0, 0.05, 0.2, 0.0, 0.35, 0.4, 0.0),
    "ukus": (0.72, 0.07, 0.05, 0.05, 0.05, 0.005, 0.005, 0.01, 0.04),
    "pnts": (0.4, 0.02, 0.02, 0.02, 0.02, 0.0, 0.0, 0.02, 0.5),
}

#: Religion prior by birth-country class, over ``vocab.RELIGION_CATEGORISED``:
#: Non-religious, Christian, Agnostic, Jewish, Muslim, Spiritual, Buddhist, Folk, Hindu,
#: Sikh, Other, PNTS.
RELIGION_PRIOR: dict[str, tuple[float, ...]] = {
    "europe": (0.57, 0.28, 0.06, 0.005, 0.015, 0.015, 0.005, 0.002, 0.002, 0.001, 0.003, 0.04),
    "anglo": (0.55, 0.3, 0.05, 0.01, 0.01, 0.015, 0.01, 0.002, 0.005, 0.003, 0.003, 0.04),
    "ukus": (0.45, 0.38, 0.05, 0.02, 0.02, 0.015, 0.005, 0.002, 0.005, 0.002, 0.003, 0.04),
    "israel": (0.15, 0.02, 0.02, 0.7, 0.06, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.04),
    "latam": (0.33, 0.55, 0.04, 0.005, 0.0, 0.02, 0.005, 0.005, 0.0, 0.0, 0.005, 0.04),
    "south_africa": (0.25, 0.6, 0.03, 0.01, 0.04, 0.02, 0.0, 0.01, 0.01, 0.0, 0.0, 0.03),
    "africa": (0.08, 0.7, 0.01, 0.0, 0.15, 0.01, 0.0, 0.02, 0.0, 0.0, 0.0, 0.03),
    "asia": (0.35, 0.15, 0.03, 0.0, 0.15, 0.02, 0.1, 0.03, 0.1, 0.03, 0.02, 0.02),
    "middle_east": (0.25, 0.1, 0.03, 0.05, 0.45, 0.02, 0.0, 0.0, 0.0, 0.0, 0.05, 0.05),
    "central_asia": (0.3, 0.2, 0.03, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.07),
    "polynesia": (0.1, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.0, 0.05),
    "pnts": (0.3, 0.2, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.45),
}

#: Employment prior by age band over ``vocab.EMPLOYMENT``.
EMPLOYMENT_PRIOR: dict[str, tuple[float, ...]] = {
    "18-24": (0.2, 0.2, 0.45, 0.08, 0.04, 0.001, 0.02, 0.01),
    "25-34": (0.55, 0.15, 0.08, 0.1, 0.03, 0.001, 0.04, 0.015),
    "35-44": (0.6, 0.15, 0.02, 0.09, 0.03, 0.005, 0.06, 0.02),
    "45-54": (0.6, 0.16, 0.01, 0.08, 0.04, 0.03, 0.05, 0.02),
    "55-64": (0.45, 0.17, 0.005, 0.07, 0.04, 0.2, 0.04, 0.02),
    "65+": (0.12, 0.1, 0.002, 0.02, 0.02, 0.7, 0.03, 0.015),
    PNTS: (0.3, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.25),
}
#: Education prior by age band over ``vocab.EDUCATION``.
EDUCATION_PRIOR: dict[str, tuple[float, ...]] = {
    "18-24": (0.002, 0.01, 0.03, 0.25, 0.05, 0.3, 0.33, 0.02, 0.008),
    "25-34": (0.002, 0.01, 0.015, 0.12, 0.08, 0.12, 0.47, 0.17, 0.006),
    "35-44": (0.002, 0.01, 0.015, 0.12, 0.09, 0.12, 0.43, 0.2, 0.006),
    "45-54": (0.003, 0.012, 0.02, 0.14, 0.11, 0.14, 0.38, 0.18, 0.007),
    "55-64": (0.003, 0.015, 0.02, 0.15, 0.12, 0.15, 0.35, 0.18, 0.008),
    "65+": (0.003, 0.015, 0.025, 0.15, 0.12, 0.15, 0.33, 0.2, 0.008),
    PNTS: (0.05, 0.05, 0.05, 0.15, 0.1, 0.1, 0.2, 0.1, 0.2),
}
#: Marital-status prior by age band over ``vocab.MARITAL``.
MARITAL_PRIOR: dict[str, tuple[float, ...]] = {
    "18-24": (0.93, 0.05, 0.005, 0.002, 0.013),
    "25-34": (0.68, 0.27, 0.03, 0.002, 0.015),
    "35-44": (0.4, 0.47, 0.1, 0.005, 0.02),
    "45-54": (0.25, 0.55, 0.16, 0.015, 0.02),
    "55-64": (0.2, 0.55, 0.19, 0.04, 0.02),
    "65+": (0.12, 0.55, 0.18, 0.13, 0.02),
    PNTS: (0.3, 0.3, 0.1, 0.05, 0.25),
}
#: English proficiency prior by birth-country class over ``vocab.ENGLISH``.
ENGLISH_PRIOR: dict[str, tuple[float, ...]] = {
    "native": (0.93, 0.055, 0.01, 0.004, 0.001),
    "south_africa": (0.5, 0.35, 0.1, 0.04, 0.01),
    "other": (0.04, 0.52, 0.3, 0.11, 0.03),
}
ENGLISH_NATIVE_COUNTRIES = frozenset({"USA", "GBR", "AUS", "NZL", "CAN", "IRL", "JAM", "GUY"})
#: Familiarity prior by direct use (rows Yes/No/Unsure) over ``vocab.LM_FAMILIARITY``.
FAMILIARITY_PRIOR = np.array([[0.35, 0.62, 0.03], [0.03, 0.45, 0.52], [0.03, 0.6, 0.37]])
#: Frequency prior by familiarity (rows Very/Somewhat/Not) over ``vocab.LM_FREQUENCY``.
FREQUENCY_PRIOR = np.array(
    [
        [0.2, 0.35, 0.22, 0.17, 0.06],
        [0.04, 0.2, 0.25, 0.35, 0.16],
        [0.02, 0.08, 0.15, 0.35, 0.4],
    ]
)

#: Lower-case self-described religion strings per categorised label (``religion`` is
#: stored lower-cased in the release).
RELIGION_SELF_DESCRIBED: dict[str, tuple[str, ...]] = {
    "Non-religious": (
        "none",
        "no religion",
        "atheist",
        "not religious",
        "nothing",
        "n/a",
        "i am not religious",
        "atheism",
    ),
    "Christian": (
        "christian",
        "catholic",
        "roman catholic",
        "church of england",
        "protestant",
        "christianity",
        "anglican",
        "baptist",
        "lutheran",
        "orthodox christian",
        "methodist",
        "evangelical christian",
    ),
    "Agnostic": ("agnostic", "agnosticism", "agnostic atheist"),
    "Jewish": ("jewish", "judaism", "jewish secular", "traditional jewish"),
    "Muslim": ("muslim", "islam", "sunni muslim"),
    "Spiritual": ("spiritual", "spiritual but not religious", "spirituality"),
    "Buddhist": ("buddhist", "buddhism"),
    "Folk religion": ("shinto", "paganism", "traditional african religion"),
    "Hindu": ("hindu", "hinduism"),
    "Sikh": ("sikh", "sikhism"),
    "Other": ("other", "unitarian universalist", "humanist"),
    PNTS: ("prefer not to say",),
}
#: Self-described ethnicity strings per categorised label.
ETHNICITY_SELF_DESCRIBED: dict[str, tuple[str, ...]] = {
    "White": (
        "White",
        "White British",
        "Caucasian",
        "White European",
        "White/Caucasian",
        "white",
        "European",
        "White American",
        "Pakeha",
        "White Irish",
    ),
    "Black / African": (
        "Black",
        "African",
        "Black African",
        "African American",
        "Black British",
        "Black/African American",
        "black",
    ),
    "Hispanic / Latino": (
        "Hispanic",
        "Latino",
        "Latina",
        "Hispanic/Latino",
        "Mexican",
        "Latin American",
        "Chilean",
        "Mestizo",
    ),
    "Asian": (
        "Asian",
        "Chinese",
        "Indian",
        "East Asian",
        "South Asian",
        "Asian British",
        "Japanese",
        "Korean",
        "Filipino",
    ),
    "Mixed": (
        "Mixed",
        "Mixed race",
        "Biracial",
        "Mixed White and Asian",
        "Mixed White and Black",
        "Multiracial",
    ),
    "Middle Eastern / Arab": ("Arab", "Middle Eastern", "Persian", "Turkish"),
    "Indigenous / First Peoples": ("Maori", "Native American", "Aboriginal", "First Nations"),
    "Other": ("Other", "Jewish", "Ashkenazi", "Coloured", "Pacific Islander"),
    PNTS: ("Prefer not to say",),
}

# --- conversations -------------------------------------------------------------------------

#: Opening-turn responses (2, 3, 4): 225 / 1,545 / 6,241 of 8,011 openers (SPEC §1.5).
OPENING_SIZE_COUNTS: dict[int, int] = {2: 225, 3: 1545, 4: 6241}
#: Utterances per LLM (codebook §4.3), in ``vocab.LLMS`` order.
LLM_UTTERANCES: tuple[int, ...] = (
    4812,
    4292,
    4168,
    4133,
    3995,
    3929,
    3816,
    3735,
    3515,
    3493,
    3471,
    3468,
    3338,
    3261,
    3209,
    2608,
    2314,
    1744,
    1722,
    1715,
    1633,
)
#: Opening appearances per model: mean 1,430.9, sd 171.1 [NB:01]; the per-model counts
#: are not published. The generator's opener-sampling weights are an affine map of
#: the utterance counts with that mean and sd (documented approximation).
OPENING_APPEARANCES_MEAN = 30049 / 21
OPENING_APPEARANCES_SD = 171.1
#: Conversation types: 3,113 / 2,460 / 2,438 of 8,011 (codebook).
CTYPE_COUNTS: dict[str, int] = {"unguided": 3113, "values guided": 2460, "controversy guided": 2438}
#: Turns per conversation: mean 3.39, sd 1.58, range 2-22 [NB:01].
TURNS_MEAN, TURNS_SD = 3.39, 1.58
#: Later-turn interactions whose A and B texts are identical (both flagged chosen):
#: 27,437 - 27,172 = 265 of 19,161 (SPEC §1.5).
IDENTICAL_AB_SHARE = 265 / 19161
#: "EMPTY STRING" responses: 147 of 68,371 (score mean 11.9, median 1) [NB:09].
EMPTY_SHARE = 147 / 68371

# --- text features of responses (SPEC §3.9) --------------------------------------------------

#: Full opener OLS coefficients (turn 0, N = 30,049): the per-feature effects the
#: generator plants (points per unit; length per character).
TEXT_BETAS: dict[str, float] = {
    "text_length": 0.0271,
    "line_breaks": -10.8285,
    "question_mark": 2.6179,
    "enumeration": 7.1981,
    "deanthro": -2.3025,
    "refusal": -9.0484,
    "self_identification": -3.6354,
}
#: Observed-scale OLS slopes are flatter than latent effects: clipping at 1 and 100
#: (~24% of opening scores) and the slider default flatten the latent scale, and most
#: for length (very long responses saturate at 100). The generator plants
#: TEXT_BETAS / TEXT_ATTENUATION on the latent scale so that an OLS of the opening
#: scores on the features recovers the published coefficients (SPEC §3.9); the factors
#: were calibrated by simulation at the default size (mean over 6 seeds).
TEXT_ATTENUATION: dict[str, float] = {
    "text_length": 0.615,
    "line_breaks": 0.745,
    "question_mark": 0.745,
    "enumeration": 0.79,
    "deanthro": 0.745,
    "refusal": 0.745,
    "self_identification": 0.745,
}
#: Feature prevalences. De-anthropomorphising, refusal and self-identification are
#: published (11.0%, 3.3%, 3.0%); line breaks, enumeration (a subset of line breaks) and
#: a final "?" are not, and are *prior* choices.
TEXT_PREVALENCE: dict[str, float] = {
    "line_breaks": 0.40,
    "enumeration": 0.18,
    "question_mark": 0.10,
    "deanthro": 0.110,
    "refusal": 0.033,
    "self_identification": 0.030,
}
#: Latent shift of an "EMPTY STRING" response (its scores pile at 1: mean ~12, median 1).
EMPTY_SHIFT = -62.0
