"""Synthetic participants: demographics and survey answers with the published margins.

See :func:`make_participants`. The joint structure is built in this order, each step
raking a plausible conditional prior to the published margin (scaled to ``n``):

1. residence country (quotas), birth country (quotas; about 88% born where they live,
   the rest matched at random to the remaining birth quotas), study locale (a function
   of residence);
2. UK and US study participants: age x sex x census ethnicity drawn from the eligible
   pool tables of SPEC §2.3 (so the representative-sample procedure meets the same
   shortfalls as the original), plus a few non-binary / "Prefer not to say" answers;
3. everybody else: age, gender given age and ethnicity given birth country, raked to
   what the UK/US participants leave of each published margin;
4. religion given birth country, employment / education / marital status given age,
   English proficiency given birth country, LLM familiarity and use (frequency and use
   cases only when direct or indirect use is "Yes"), stated preferences, free texts,
   timings and dates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import priors as PR
from . import tables as T
from .scenarios import skew_weights
from .text import prose
from .util import (
    SynthError,
    allocate,
    margin,
    quota_sample,
    rake_assign,
    slider,
    text_lengths,
)

PNTS = vocab.PREFER_NOT
#: Survey completions fall in this window (codebook: first / last survey end time).
SURVEY_START = datetime(2023, 11, 22, 15, 48, 46)
SURVEY_END = datetime(2023, 12, 22, 6, 56, 27)
#: The UK and US representative studies were launched on 27 November 2023 (SPEC §2.1).
REP_LAUNCH = datetime(2023, 11, 27, 9, 0, 0)
CONSENT_TEXT = "Yes, I consent to take part"
CONSENT_AGE_TEXT = "I certify that I am 18 years of age or over"

_ISO = np.array(vocab.COUNTRY_CODES, dtype=object)


def _birth_class(iso: str) -> str:
    """Coarse birth-country class used by the ethnicity and religion priors."""
    if iso == PNTS:
        return "pnts"
    if iso in ("USA", "GBR"):
        return "ukus"
    if iso in ("AUS", "NZL", "CAN", "IRL"):
        return "anglo"
    if iso == "ISR":
        return "israel"
    if iso == "ZAF":
        return "south_africa"
    c = vocab.COUNTRY_BY_ISO3[iso]
    if c.subregion == "Latin America and the Caribbean":
        return "latam"
    if c.subregion in ("Western Asia", "Northern Africa"):
        return "middle_east"
    if c.region == "Africa":
        return "africa"
    if c.subregion == "Central Asia":
        return "central_asia"
    if c.region == "Asia":
        return "asia"
    if c.subregion == "Polynesia":
        return "polynesia"
    return "europe"


def _countries(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Residence and birth ISO3 codes with the published margins and ~88% stayers."""
    reside_q = allocate(T.RESIDE_COUNTS, n, rng)
    birth_q = allocate(T.BIRTH_COUNTS, n, rng)
    stay = np.minimum(reside_q, birth_q)
    target_stay = round(n * (T.SAME_COUNTRY_YES + 1) / T.N_RELEASE)
    excess = int(stay.sum()) - target_stay
    if excess > 0:  # fewer stayers in proportion to each country's stayers
        stay -= np.minimum(stay, allocate(stay, excess, rng))
    immigrants = np.repeat(np.arange(len(_ISO)), reside_q - stay)
    emigrants = np.repeat(np.arange(len(_ISO)), birth_q - stay)
    rng.shuffle(emigrants)
    # Nobody "migrates" to their own country: swap clashing pairs away.
    for _ in range(50):
        clash = np.flatnonzero(emigrants == immigrants)
        if len(clash) == 0:
            break
        for i in clash:
            j = rng.integers(len(emigrants))
            emigrants[i], emigrants[j] = emigrants[j], emigrants[i]
    reside = np.concatenate([np.repeat(np.arange(len(_ISO)), stay), immigrants])
    birth = np.concatenate([np.repeat(np.arange(len(_ISO)), stay), emigrants])
    order = rng.permutation(n)
    return _ISO[reside[order]], _ISO[birth[order]]


def _ukus_demographics(
    locale: np.ndarray, rng: np.random.Generator, skew: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Age band, gender and categorised ethnicity of the UK/US study participants.

    *skew* tilts the eligible pools toward young white men (``scenarios.skew_weights``).
    """
    n = len(locale)
    age = np.empty(n, dtype=object)
    gender = np.empty(n, dtype=object)
    eth = np.empty(n, dtype=object)
    for code, table in (("uk", PR.UK_AVAILABLE), ("us", PR.US_AVAILABLE)):
        members = np.flatnonzero(locale == code)
        if len(members) == 0:
            continue
        weights = (table + 0.3)  # a small floor: any cell can occur
        if skew:
            weights = weights * skew_weights(PR.UKUS_COLUMNS, vocab.CENSUS_AGES, skew)
        weights = weights.ravel()
        cells = np.repeat(np.arange(weights.size), allocate(weights, len(members), rng))
        rng.shuffle(cells)
        a_idx, col = np.divmod(cells, table.shape[1])
        age[members] = np.array(vocab.CENSUS_AGES, dtype=object)[a_idx]
        groups = np.array([PR.UKUS_COLUMNS[c][0] for c in col], dtype=object)
        gender[members] = np.array([PR.UKUS_COLUMNS[c][1] for c in col], dtype=object)
        split = PR.OTHER_GROUP_SPLIT[code]
        categorised = np.array(
            [
                {
                    "White": "White",
                    "Black": "Black / African",
                    "Asian": "Asian",
                    "Mixed": "Mixed",
                }.get(g, "")
                for g in groups
            ],
            dtype=object,
        )
        other = np.flatnonzero(groups == "Other")
        categorised[other] = rng.choice(list(split), size=len(other), p=list(split.values()))
        eth[members] = categorised
    u = rng.random(n)
    gender[u < PR.UKUS_NONBINARY] = "Non-binary / third gender"
    gender[(u >= PR.UKUS_NONBINARY) & (u < PR.UKUS_NONBINARY + PR.UKUS_GENDER_PNTS)] = PNTS
    eth[rng.random(n) < PR.UKUS_ETHNICITY_PNTS] = PNTS
    return age, gender, eth


def _remaining(total: np.ndarray, used_labels: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    """What a margin leaves after the UK/US participants (floored at a small positive)."""
    used = np.array([(used_labels == lv).sum() for lv in levels], dtype=float)
    return np.maximum(total - used, 0.05)


def _prior(table: dict[str, tuple[float, ...]], keys: list[str]) -> np.ndarray:
    return np.array([table[k] for k in keys], dtype=float)


def make_participants(n: int, rng: np.random.Generator, *, skew: float = 0.0) -> pd.DataFrame:
    """Synthetic participants with the published survey margins (scaled to *n*).

    Parameters
    ----------
    n
        Number of participants (1,500 reproduces the published counts; smaller sizes
        keep the proportions in expectation).
    rng
        The random generator of this stage.
    skew
        Tilt of the UK/US rater pools toward young white men (the ``skew`` knob of
        :class:`~prism_stats.synth.scenarios.Departures`; 0 = the published pools).

    Returns
    -------
    pandas.DataFrame
        One row per participant (``user0`` ... in survey order) holding every survey
        field in release form (release strings, dict-valued nested fields) plus the
        derived columns ``age_band``, ``sex``, ``ethnicity_group``, ``birth_iso`` and
        ``reside_iso`` used by the score process.
    """
    if n < 10:
        raise SynthError(f"participants: need at least 10 participants, got {n}")
    scale = n / T.N_RELEASE
    reside, birth = _countries(n, rng)
    locale = np.array([T.LOCALE_OF_RESIDENCE[r] for r in reside], dtype=object)
    ukus = np.isin(locale, ["uk", "us"])
    others = np.flatnonzero(~ukus)

    # Age, gender, ethnicity: UK/US from the pool tables, the others raked to what is left.
    age = np.empty(n, dtype=object)
    gender = np.empty(n, dtype=object)
    eth = np.empty(n, dtype=object)
    age[ukus], gender[ukus], eth[ukus] = _ukus_demographics(locale[ukus], rng, skew)
    age_levels = vocab.AGE_BANDS
    left = _remaining(margin(T.AGE_COUNTS, age_levels) * scale, age[ukus], age_levels)
    age[others] = quota_sample(age_levels, left, len(others), rng)
    left = _remaining(margin(T.GENDER_COUNTS, vocab.GENDERS) * scale, gender[ukus], vocab.GENDERS)
    parent = np.array([age_levels.index(a) for a in age[others]])
    codes = rake_assign(parent, _prior(PR.GENDER_PRIOR_BY_AGE, list(age_levels)), left, rng)
    gender[others] = np.array(vocab.GENDERS, dtype=object)[codes]
    classes = sorted(PR.ETHNICITY_PRIOR)
    birth_class = np.array([_birth_class(b) for b in birth], dtype=object)
    parent = np.array([classes.index(c) for c in birth_class[others]])
    left = _remaining(
        margin(T.ETHNICITY_COUNTS, vocab.ETHNICITY_CATEGORISED) * scale,
        eth[ukus],
        vocab.ETHNICITY_CATEGORISED,
    )
    codes = rake_assign(parent, _prior(PR.ETHNICITY_PRIOR, classes), left, rng)
    eth[others] = np.array(vocab.ETHNICITY_CATEGORISED, dtype=object)[codes]

    # Religion | birth class; employment, education, marital | age; English | birth.
    rel_classes = sorted(PR.RELIGION_PRIOR)
    parent = np.array([rel_classes.index(c) for c in birth_class])
    religion = np.array(vocab.RELIGION_CATEGORISED, dtype=object)[
        rake_assign(
            parent,
            _prior(PR.RELIGION_PRIOR, rel_classes),
            margin(T.RELIGION_COUNTS, vocab.RELIGION_CATEGORISED),
            rng,
        )
    ]
    age_parent = np.array([age_levels.index(a) for a in age])
    employment = np.array(vocab.EMPLOYMENT, dtype=object)[
        rake_assign(
            age_parent,
            _prior(PR.EMPLOYMENT_PRIOR, list(age_levels)),
            margin(T.EMPLOYMENT_COUNTS, vocab.EMPLOYMENT),
            rng,
        )
    ]
    education = np.array(vocab.EDUCATION, dtype=object)[
        rake_assign(
            age_parent,
            _prior(PR.EDUCATION_PRIOR, list(age_levels)),
            margin(T.EDUCATION_COUNTS, vocab.EDUCATION),
            rng,
        )
    ]
    marital = np.array(vocab.MARITAL, dtype=object)[
        rake_assign(
            age_parent,
            _prior(PR.MARITAL_PRIOR, list(age_levels)),
            margin(T.MARITAL_COUNTS, vocab.MARITAL),
            rng,
        )
    ]
    eng_class = np.array(
        [
            "native"
            if b in PR.ENGLISH_NATIVE_COUNTRIES
            else "south_africa"
            if b == "ZAF"
            else "other"
            for b in birth
        ]
    )
    eng_levels = ["native", "south_africa", "other"]
    english = np.array(vocab.ENGLISH, dtype=object)[
        rake_assign(
            np.array([eng_levels.index(c) for c in eng_class]),
            _prior(PR.ENGLISH_PRIOR, eng_levels),
            margin(T.ENGLISH_COUNTS, vocab.ENGLISH),
            rng,
        )
    ]

    # LLM familiarity and use.
    cells = quota_sample(np.arange(9), T.DIRECT_INDIRECT_COUNTS.ravel(), n, rng).astype(int)
    direct_code, indirect_code = np.divmod(cells, 3)
    direct = np.array(vocab.YES_NO_UNSURE, dtype=object)[direct_code]
    indirect = np.array(vocab.YES_NO_UNSURE, dtype=object)[indirect_code]
    fam_code = rake_assign(
        direct_code, PR.FAMILIARITY_PRIOR, margin(T.FAMILIARITY_COUNTS, vocab.LM_FAMILIARITY), rng
    )
    familiarity = np.array(vocab.LM_FAMILIARITY, dtype=object)[fam_code]
    shown = (direct == "Yes") | (indirect == "Yes")
    frequency = np.full(n, None, dtype=object)
    idx = np.flatnonzero(shown)
    freq_code = rake_assign(
        fam_code[idx], PR.FREQUENCY_PRIOR, margin(T.FREQUENCY_COUNTS, vocab.LM_FREQUENCY), rng
    )
    frequency[idx] = np.array(vocab.LM_FREQUENCY, dtype=object)[freq_code]
    usecases, order_usecases = _usecases(shown, rng)
    stated, order_stated = _stated_prefs(n, rng)

    # Survey-only participants and conversation counts.
    survey_only = np.zeros(n, dtype=bool)
    n_survey_only = int(allocate([T.SURVEY_ONLY, T.N_RELEASE - T.SURVEY_ONLY], n, rng)[0])
    survey_only[rng.choice(n, n_survey_only, replace=False)] = True
    n_conv = np.zeros(n, dtype=int)
    pmf = T.N_CONVERSATIONS_PMF
    n_conv[~survey_only] = quota_sample(
        list(pmf), list(pmf.values()), int((~survey_only).sum()), rng
    )

    # Study ids, dates and timings.
    study_ids = _study_ids(sorted(set(T.LOCALE_OF_RESIDENCE.values())), rng)
    study = np.array([rng.choice(study_ids[loc]) for loc in locale], dtype=object)
    generated = _survey_datetimes(locale, rng)
    timing = _survey_durations(n, rng)

    # Free texts.
    self_description = prose(text_lengths(n, T.SELF_DESCRIPTION_CHARS, rng), rng)
    system_string = prose(text_lengths(n, T.SYSTEM_STRING_CHARS, rng), rng)

    rel_self = np.array([rng.choice(PR.RELIGION_SELF_DESCRIBED[r]) for r in religion], dtype=object)
    eth_self = np.array([rng.choice(PR.ETHNICITY_SELF_DESCRIBED[e]) for e in eth], dtype=object)
    age_release = np.array(
        [vocab.AGE_BANDS_RELEASE[age_levels.index(a)] for a in age], dtype=object
    )
    sex = np.where(np.isin(gender, vocab.CENSUS_SEXES), gender, None)
    eth_group = np.array(
        [vocab.CENSUS_ETHNICITY_FROM_CATEGORISED.get(e, PNTS) for e in eth], dtype=object
    )

    return pd.DataFrame(
        {
            "user_id": [f"user{i}" for i in range(n)],
            "survey_only": survey_only,
            "num_completed_conversations": n_conv,
            "timing_duration_s": timing,
            "generated_datetime": generated,
            "lm_familiarity": familiarity,
            "lm_indirect_use": indirect,
            "lm_direct_use": direct,
            "lm_frequency_use": frequency,
            "self_description": self_description,
            "system_string": system_string,
            "age": age_release,
            "gender": gender,
            "employment_status": employment,
            "education": education,
            "marital_status": marital,
            "english_proficiency": english,
            "study_id": study,
            "study_locale": locale,
            "religion_self_described": rel_self,
            "religion_categorised": religion,
            "ethnicity_self_described": eth_self,
            "ethnicity_categorised": eth,
            "birth_iso": birth,
            "reside_iso": reside,
            "lm_usecases": usecases,
            "stated_prefs": stated,
            "order_lm_usecases": order_usecases,
            "order_stated_prefs": order_stated,
            "age_band": age,
            "sex": sex,
            "ethnicity_group": eth_group,
        }
    )


def _usecases(shown: np.ndarray, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """``lm_usecases`` and ``order_lm_usecases`` dicts (all null when not shown)."""
    keys = [k for k in vocab.LM_USECASE_KEYS if k != "other_text"]
    rate = np.array([T.USECASE_SELECTED[k] / T.USECASES_SHOWN for k in keys])
    n = len(shown)
    picks = rng.random((n, len(keys))) < rate
    other_lengths = text_lengths(n, T.USECASE_OTHER_TEXT_CHARS, rng)
    other_texts = prose(other_lengths, rng)
    out, order = [], []
    for i in range(n):
        if not shown[i]:
            out.append(dict.fromkeys(vocab.LM_USECASE_KEYS))
            order.append(dict.fromkeys(keys))
            continue
        d = {k: int(v) for k, v in zip(keys, picks[i], strict=True)}
        d["other_text"] = other_texts[i] if d["other"] else None
        out.append(d)
        perm = rng.permutation(len(keys) - 1) + 1  # "other" is always shown last
        order.append(
            {**{k: int(p) for k, p in zip(keys[:-1], perm, strict=True)}, "other": len(keys)}
        )
    return out, order


def _stated_prefs(n: int, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """``stated_prefs`` (0-100 sliders, optional other text) and their display order."""
    keys = [k for k in vocab.STATED_PREF_KEYS if k != "other_text"]
    values = {k: slider(n, *T.STATED_PREF_MOMENTS[k], 0, 100, rng) for k in keys}
    has_text = rng.random(n) < T.STATED_PREF_OTHER_TEXT / T.N_RELEASE
    texts = prose(text_lengths(n, T.STATED_OTHER_TEXT_CHARS, rng), rng)
    out, order = [], []
    for i in range(n):
        d = {k: int(values[k][i]) for k in keys}
        d["other_text"] = texts[i] if has_text[i] else None
        out.append(d)
        perm = rng.permutation(len(keys) - 1) + 1
        order.append(
            {**{k: int(p) for k, p in zip(keys[:-1], perm, strict=True)}, "other": len(keys)}
        )
    return out, order


def _study_ids(locales: list[str], rng: np.random.Generator) -> dict[str, list[str]]:
    """Prolific-style 24-hex study ids, several for the big locales (51 in all)."""
    out = {}
    for loc in locales:
        k = T.STUDIES_PER_LOCALE.get(loc, 1)
        out[loc] = ["".join(f"{b:02x}" for b in rng.integers(0, 256, 12)) for _ in range(k)]
    return out


def _survey_datetimes(locale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Survey end times in the fieldwork window (UK/US only after their launch)."""
    n = len(locale)
    window = (SURVEY_END - SURVEY_START).total_seconds()
    late = (SURVEY_END - REP_LAUNCH).total_seconds()
    # Leave room at the end for the conversations that follow the survey.
    slack = 6 * 3600
    u = rng.random(n)
    rep = np.isin(locale, ["uk", "us"])
    offset = np.where(
        rep,
        (REP_LAUNCH - SURVEY_START).total_seconds() + u**2 * (late - slack),
        u * (window - slack),
    )
    return np.array([SURVEY_START + timedelta(seconds=int(s)) for s in offset], dtype=object)


def _survey_durations(n: int, rng: np.random.Generator) -> np.ndarray:
    """Survey durations (s): mostly ~20 min, a few multi-session outliers (codebook)."""
    base = rng.lognormal(np.log(1150.0), 0.55, n)
    multi = rng.random(n) < 0.03
    base[multi] = rng.lognormal(np.log(15000.0), 1.3, int(multi.sum()))
    return np.clip(np.rint(base), 160, 530000).astype(int)
