"""Tidy tables simulated straight from the rating model (no JSON, no clipping).

Used by the model tests for exact-truth recovery checks; the full synthetic release
(`prism_stats.synth`) serves the end-to-end tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from prism_stats import vocab

COUNTRIES = ["GBR", "USA", "CAN", "ZAF"]
AGES = list(vocab.AGE_BANDS[:-1])
GENDERS = ["Male", "Female", "Non-binary / third gender"]
ETHNICITIES = list(vocab.CENSUS_ETHNICITIES)


def _zs(x: np.ndarray, axis=None) -> np.ndarray:
    if axis is None:
        return x - x.mean()
    out = x - x.mean(axis=0, keepdims=True)
    return out - out.mean(axis=1, keepdims=True)


def simulate_tidy(n_participants: int = 120, per_participant: int = 20, seed: int = 1,
                  sigma: float = 15.0, sigma_participant: float = 8.0, n_llms: int = 8):
    """Participants, ratings and the true parameters (chain=1, draw=1)."""
    rng = np.random.default_rng(seed)
    llms = list(vocab.LLM_SHORT_NAMES[:n_llms])
    P = n_participants
    part = pd.DataFrame({
        "participant": [f"user{i}" for i in range(P)],
        "reside_country": rng.choice(COUNTRIES, P, p=[0.4, 0.4, 0.1, 0.1]),
        "age": rng.choice(AGES, P, p=[0.25, 0.3, 0.15, 0.12, 0.1, 0.08]),
        "gender": rng.choice(GENDERS, P, p=[0.5, 0.47, 0.03]),
        "ethnicity": rng.choice(ETHNICITIES, P, p=[0.7, 0.08, 0.1, 0.06, 0.06]),
        "in_uk_rep": False,
        "in_us_rep": False,
        "balanced": True,
    })
    part["sex"] = part["gender"].where(part["gender"].isin(["Male", "Female"]))
    truth = {
        "intercept": 62.0,
        "sigma": sigma,
        "sigma_participant": sigma_participant,
        "participant_effect": _zs(rng.normal(0, sigma_participant, P)),
        "llm_effect": _zs(np.linspace(8, -8, n_llms)),
        "country_effect": _zs(np.array([2.0, -2.0, 1.0, -1.0])),
        "ctype_effect": _zs(np.array([1.5, -0.5, -1.0])),
        "age_effect": _zs(np.linspace(-3, 3, len(AGES))),
        "gender_effect": _zs(np.array([-1.0, 1.5, -0.5])),
        "ethnicity_effect": _zs(rng.normal(0, 1.5, len(ETHNICITIES))),
        "llm_age": _zs(rng.normal(0, 2, (n_llms, len(AGES))), 2),
        "llm_gender": _zs(rng.normal(0, 3, (n_llms, len(GENDERS))), 2),
        "llm_ethnicity": _zs(rng.normal(0, 2, (n_llms, len(ETHNICITIES))), 2),
    }
    rows = P * per_participant
    p = np.repeat(np.arange(P), per_participant)
    m = rng.integers(0, n_llms, rows)
    t = rng.integers(0, 3, rows)
    k = pd.Categorical(part["reside_country"], categories=COUNTRIES).codes[p]
    a = pd.Categorical(part["age"], categories=AGES).codes[p]
    g = pd.Categorical(part["gender"], categories=GENDERS).codes[p]
    e = pd.Categorical(part["ethnicity"], categories=ETHNICITIES).codes[p]
    eta = (truth["intercept"] + truth["participant_effect"][p] + truth["llm_effect"][m]
           + truth["country_effect"][k] + truth["ctype_effect"][t] + truth["age_effect"][a]
           + truth["gender_effect"][g] + truth["ethnicity_effect"][e] + truth["llm_age"][m, a]
           + truth["llm_gender"][m, g] + truth["llm_ethnicity"][m, e])
    score = eta + rng.normal(0, sigma, rows)
    ratings = pd.DataFrame({
        "utterance": [f"ut{i}" for i in range(rows)],
        "participant": part["participant"].to_numpy()[p],
        "turn": 0,
        "llm": np.array(llms)[m],
        "score": score,  # unbounded on purpose: exact Gaussian truth
        "chosen": False,
        "conversation_type": np.array(vocab.CONVERSATION_TYPES)[t],
        "balanced": True,
    })
    dims = {
        "participant_effect": ("participant",), "llm_effect": ("llm",), "country_effect": ("country",),
        "ctype_effect": ("conversation_type",), "age_effect": ("age",), "gender_effect": ("gender",),
        "ethnicity_effect": ("ethnicity",), "llm_age": ("llm", "age"), "llm_gender": ("llm", "gender"),
        "llm_ethnicity": ("llm", "ethnicity"),
    }
    coords = {"participant": part["participant"].tolist(), "llm": llms, "country": COUNTRIES,
              "conversation_type": list(vocab.CONVERSATION_TYPES), "age": AGES, "gender": GENDERS,
              "ethnicity": ETHNICITIES}
    ds = xr.Dataset(
        {name: (("chain", "draw", *dims.get(name, ())), np.asarray(v)[None, None])
         for name, v in truth.items()},
        coords=coords,
    )
    return part, ratings, ds
