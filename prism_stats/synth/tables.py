"""Published margins of the PRISM release that the synthetic generator reproduces.

Every number here is either a published count of the PRISM release or a documented
modelling choice of the generator (marked *prior*); the joint structure and the
conditional priors of the participants are in :mod:`prism_stats.synth.priors`.

Sources
-------
- Counts: the PRISM codebook (Kirk et al. 2024, DOI 10.57967/hf/2113) §4.1-4.3 and
  the project specification SPEC.md §1.2-1.5 (birth/residence country table, Prolific
  study locales, per-user conversation facts, opener sizes 6,241/1,545/225).
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
