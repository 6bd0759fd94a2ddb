"""Small synthetic tables in the PrismData schema for the weights/comparators tests.

Imported by the tests as a helper module (pytest does not collect it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prism_stats import vocab

PNTS = vocab.PREFER_NOT
SIMPLIFIED_FROM_CATEGORISED = vocab.ETHNICITY_SIMPLIFIED_FROM_CATEGORISED


def make_participants(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Participants: ~45% UK residents, ~45% US, the rest elsewhere; a few NB / PNTS."""
    rng = np.random.default_rng(seed)
    age = rng.choice(vocab.AGE_BANDS, n, p=[0.22, 0.3, 0.18, 0.12, 0.1, 0.06, 0.02])
    gender = rng.choice(vocab.GENDERS, n, p=[0.49, 0.47, 0.03, 0.01])
    eth_cat = rng.choice(
        vocab.ETHNICITY_CATEGORISED, n, p=[0.62, 0.1, 0.06, 0.09, 0.06, 0.02, 0.01, 0.02, 0.02]
    )
    reside = rng.choice(["GBR", "USA", "DEU"], n, p=[0.45, 0.45, 0.1])
    eth = [vocab.CENSUS_ETHNICITY_FROM_CATEGORISED.get(e, PNTS) for e in eth_cat]
    sex = [g if g in vocab.CENSUS_SEXES else None for g in gender]
    survey_only = rng.random(n) < 0.03
    people = pd.DataFrame(
        {
            "participant": [f"user{i}" for i in range(n)],
            "survey_only": survey_only,
            "age": pd.Categorical(age, categories=vocab.AGE_BANDS, ordered=True),
            "gender": pd.Categorical(gender, categories=vocab.GENDERS),
            "sex": pd.Categorical(sex, categories=vocab.CENSUS_SEXES),
            "ethnicity_categorised": pd.Categorical(
                eth_cat, categories=vocab.ETHNICITY_CATEGORISED
            ),
            "ethnicity_simplified": pd.Categorical(
                [SIMPLIFIED_FROM_CATEGORISED[e] for e in eth_cat],
                categories=vocab.ETHNICITY_SIMPLIFIED,
            ),
            "ethnicity": pd.Categorical(eth, categories=vocab.ETHNICITY_GROUPS),
            "religion_simplified": pd.Categorical(
                rng.choice(vocab.RELIGION_SIMPLIFIED, n, p=[0.5, 0.3, 0.05, 0.05, 0.07, 0.03]),
                categories=vocab.RELIGION_SIMPLIFIED,
            ),
            "special_region": pd.Categorical(
                np.where(reside == "GBR", "UK", np.where(reside == "USA", "US", "Europe")),
                categories=vocab.SPECIAL_REGIONS,
            ),
            "reside_country": pd.Categorical(reside, categories=vocab.COUNTRY_CODES),
        }
    )
    binary = people["sex"].notna() & (people["ethnicity"] != PNTS)
    people["in_uk_rep"] = (reside == "GBR") & binary.to_numpy() & (rng.random(n) < 0.7)
    people["in_us_rep"] = (reside == "USA") & binary.to_numpy() & (rng.random(n) < 0.7)
    return people


def make_response(rng: np.random.Generator) -> str:
    """A response text with independently drawn features."""
    parts = []
    if rng.random() < 0.05:
        parts.append("I'm sorry, but I can't help with that.")
    if rng.random() < 0.1:
        parts.append("As an AI language model, I don't have personal opinions.")
    if rng.random() < 0.05:
        parts.append("I am Claude, an AI assistant made by Anthropic.")
    parts.append(" ".join(["word"] * int(rng.integers(3, 120))) + ".")
    if rng.random() < 0.2:
        parts.append("Some options:\n1. walk\n2. read")
    elif rng.random() < 0.15:
        parts.append("Also\nthis.")
    if rng.random() < 0.2:
        parts.append("What do you think?")
    return " ".join(parts)


def make_ratings(participants: pd.DataFrame, seed: int = 1, conversations: int = 3) -> pd.DataFrame:
    """Opening-turn ratings (4 LLMs per conversation) and one later turn."""
    rng = np.random.default_rng(seed)
    llms = np.array(vocab.LLM_SHORT_NAMES)
    llm_quality = dict(zip(llms, rng.normal(0, 6, len(llms)), strict=True))
    age_effect = {a: i * 2.0 for i, a in enumerate(vocab.AGE_BANDS)}
    rows = []
    uid = 0
    for p in participants.itertuples():
        if p.survey_only:
            continue
        person = rng.normal(0, 8)
        for c in range(conversations):
            ctype = vocab.CONVERSATION_TYPES[rng.integers(3)]
            shown = rng.choice(llms, 4, replace=False)
            for turn in (0, 1):
                scores = []
                for j, llm in enumerate(shown if turn == 0 else shown[:2]):
                    text = make_response(rng)
                    score = 55 + person + llm_quality[llm] + age_effect[p.age] + rng.normal(0, 15)
                    score += 6 * ("\n" in text) - 10 * text.startswith("I'm sorry")
                    s = int(np.clip(round(score), 1, 100))
                    scores.append(s)
                    rows.append(
                        {
                            "utterance": f"u{uid}",
                            "interaction": f"i{p.participant}-{c}-{turn}",
                            "conversation": f"c{p.participant}-{c}",
                            "participant": p.participant,
                            "turn": turn,
                            "within_turn": j,
                            "llm": llm,
                            "score": s,
                            "chosen": False,
                            "conversation_type": ctype,
                            "response": text,
                        }
                    )
                    uid += 1
                best = int(np.argmax(scores))
                rows[len(rows) - len(scores) + best]["chosen"] = True
    out = pd.DataFrame(rows)
    out["llm"] = pd.Categorical(out["llm"], categories=vocab.LLM_SHORT_NAMES)
    out["conversation_type"] = pd.Categorical(
        out["conversation_type"], categories=vocab.CONVERSATION_TYPES
    )
    return out
