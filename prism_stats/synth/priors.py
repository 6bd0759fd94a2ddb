"""Joint structure and priors of the synthetic participants, raked to the published margins.

The UK/US study participants draw age x sex x census ethnicity from the eligible-pool
tables of SPEC.md §2.3 (the "available" column: the balanced UK/US pool before
rebalancing); everybody else draws from the *prior* conditional tables below,
which :mod:`prism_stats.synth.people` then rakes to what remains of the published
margins of :mod:`prism_stats.synth.tables`. Every prior is a documented modelling choice.
"""

from __future__ import annotations

import numpy as np

from prism_stats import vocab

PNTS = vocab.PREFER_NOT

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
