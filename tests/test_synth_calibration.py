"""Synthetic PRISM at the default size (1,500 participants) against the published margins.

One in-memory generation (a few seconds) shared by every check. Tolerances: exact or
+-3 for the quota-allocated survey margins, a few percent for structural counts that
arise from random processes, and the ranges stated in each test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats import vocab
from prism_stats.synth import DEFAULT_SEED, generate
from prism_stats.synth import tables as T


@pytest.fixture(scope="module")
def data():
    return generate(1500, DEFAULT_SEED)


def _counts(values, levels) -> pd.Series:
    return pd.Series(values).value_counts().reindex(levels, fill_value=0)


def test_score_moments_and_piles(data):
    s = data.ratings["score"].to_numpy()
    assert abs(s.mean() - 65.1) < 1.5
    assert abs(s.std(ddof=1) - 29.3) < 1.5
    assert s.min() == 1 and s.max() == 100
    counts = np.bincount(s, minlength=101)
    assert counts[1] > 2 * counts[2]
    assert counts[50] > 2 * max(counts[49], counts[51])
    assert counts[100] > 2 * counts[99]


@pytest.mark.parametrize(
    ("column", "published", "levels"),
    [
        ("age_band", T.AGE_COUNTS, vocab.AGE_BANDS),
        ("gender", T.GENDER_COUNTS, vocab.GENDERS),
        ("ethnicity_categorised", T.ETHNICITY_COUNTS, vocab.ETHNICITY_CATEGORISED),
        ("religion_categorised", T.RELIGION_COUNTS, vocab.RELIGION_CATEGORISED),
        ("education", T.EDUCATION_COUNTS, vocab.EDUCATION),
        ("employment_status", T.EMPLOYMENT_COUNTS, vocab.EMPLOYMENT),
        ("lm_familiarity", T.FAMILIARITY_COUNTS, vocab.LM_FAMILIARITY),
        ("lm_frequency_use", T.FREQUENCY_COUNTS, vocab.LM_FREQUENCY),
    ],
)
def test_survey_margins_match_the_codebook(data, column, published, levels):
    got = _counts(data.participants[column].dropna(), levels)
    want = pd.Series([published.get(lv, 0) for lv in levels], index=levels)
    assert (got - want).abs().max() <= 3, pd.DataFrame({"got": got, "published": want})


def test_country_margins(data):
    p = data.participants
    codes = list(vocab.COUNTRY_CODES)
    assert (_counts(p["reside_iso"], codes).to_numpy() == np.array(T.RESIDE_COUNTS)).all()
    assert (_counts(p["birth_iso"], codes).to_numpy() == np.array(T.BIRTH_COUNTS)).all()
    same = (p["birth_iso"] == p["reside_iso"]) & (p["birth_iso"] != vocab.PREFER_NOT)
    assert abs(same.sum() - T.SAME_COUNTRY_YES) <= 5
    locale = p["study_locale"].value_counts()
    assert abs(locale["us"] - 386) <= 2 and abs(locale["uk"] - 341) <= 2


def test_lm_use_questions(data):
    p = data.participants
    shown = (p["lm_direct_use"] == "Yes") | (p["lm_indirect_use"] == "Yes")
    assert shown.sum() == T.USECASES_SHOWN
    assert (p["lm_frequency_use"].isna() == ~shown).all()


def test_structure_matches_the_release(data):
    c = data.counts()
    assert c["survey_only"] == 104 and c["with_conversations"] == 1396
    assert abs(c["conversations"] - 8011) <= 40
    assert abs(c["interactions"] - 27172) / 27172 < 0.03
    assert abs(c["utterances"] - 68371) / 68371 < 0.03
    n = c["openers_2"] + c["openers_3"] + c["openers_4"]
    for k, pub in T.OPENING_SIZE_COUNTS.items():
        assert abs(c[f"openers_{k}"] - n * pub / 8011) <= 1
    assert 200 <= c["double_chosen"] <= 340  # published: 265
    assert c["chosen"] == c["interactions"] + c["double_chosen"]
    assert 100 <= c["empty_string"] <= 200  # published: 147
    assert abs(c["balanced_users"] - 1246) <= 45
    assert abs(c["balanced_utterances"] - 57401) / 57401 < 0.04


def test_conversation_process_moments(data):
    conv = data.design.conversations
    per_user = conv.groupby("participant").size()
    assert abs(per_user.mean() - 5.74) < 0.05 and abs(per_user.std() - 0.98) < 0.1
    assert per_user.min() >= 1 and per_user.max() <= 7
    turns = conv["n_turns"]
    assert abs(turns.mean() - 3.39) < 0.08 and abs(turns.std() - 1.58) < 0.15
    assert turns.min() == 2
    shares = conv["conversation_type"].value_counts(normalize=True)
    for t, n in T.CTYPE_COUNTS.items():
        assert abs(shares[t] - n / 8011) < 0.02
    types = pd.crosstab(conv["participant"], conv["conversation_type"])
    assert abs((types.min(axis=1) > 0).sum() - 1246) <= 45  # all three types


def test_opening_appearances_spread(data):
    r = data.design.responses
    counts = np.bincount(r.loc[r["turn"] == 0, "llm"], minlength=len(vocab.LLMS))
    assert abs(counts.mean() - 1430.9) < 15
    assert 120 < counts.std(ddof=1) < 230  # published sd 171.1
    assert 700 < counts.min() < 950 and 1500 < counts.max() < 1700  # published 808 / 1,567


def test_rep_sizes_are_plausible(data):
    assert 200 <= data.rep["uk"].size <= 260  # published 243
    assert 200 <= data.rep["us"].size <= 260  # published 230


def test_ols_recovers_the_published_text_coefficients(data):
    r = data.design.responses
    opening = (r["turn"] == 0).to_numpy()
    names = list(T.TEXT_BETAS)
    x = np.column_stack(
        [np.ones(opening.sum())] + [r.loc[opening, f].to_numpy(float) for f in names]
    )
    y = data.ratings["score"].to_numpy(float)[opening]
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    se = np.sqrt(np.diag(resid @ resid / (len(y) - x.shape[1]) * np.linalg.inv(x.T @ x)))
    for j, name in enumerate(names, start=1):
        published = T.TEXT_BETAS[name]
        assert abs(beta[j] - published) < max(4 * se[j], 0.1 * abs(published)), name
