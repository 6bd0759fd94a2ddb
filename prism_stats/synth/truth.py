"""The true rating-model parameters of the synthetic release (:func:`make_truth`).

See the module docstring of :mod:`prism_stats.synth` for the process. The score process
that uses these parameters is :mod:`prism_stats.synth.scores`; the true census-population
means they imply are :mod:`prism_stats.synth.population`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from prism_stats import vocab

from . import tables as T
from .population import check_planted, true_population_means
from .text import TEXT_FEATURES, default_feature_distribution
from .util import SynthError

# --- default parameter values (calibrated: see the prism_stats.synth docstring) ------------

INTERCEPT = 69.1
SIGMA_PARTICIPANT = 12.0
SIGMA_NOISE = 30.6
PI_DEFAULT = 0.03
TURN_EFFECT = 2.0
SIGMA_COUNTRY = 3.0
#: The two post-stratification countries get fixed, opposite effects (US raters a
#: little more generous) so that the overall score mean does not wander with the seed;
#: every other residence country draws N(0, SIGMA_COUNTRY), centred among themselves.
MRP_COUNTRY_EFFECTS: dict[str, float] = {"USA": 1.5, "GBR": -1.5}
SIGMA_RANDOM_INTERACTION = 1.5

#: LLM main effects in the published Rank Centrality order (SPEC §4 H14), about +-12
#: points with the top four close together; centred to sum to zero.
LLM_PROFILE: dict[str, float] = {
    "command": 9.0,
    "claude-instant-1": 7.5,
    "palm-2": 7.0,
    "zephyr-7b-beta": 6.5,
    "command-nightly": 5.0,
    "llama-2-70b-chat": 4.0,
    "gpt-4-turbo": 3.5,
    "llama-2-7b-chat": 3.0,
    "gpt-4": 2.0,
    "command-light": 1.5,
    "gpt-3.5-turbo": 1.0,
    "claude-2": 0.5,
    "claude-2.1": -1.0,
    "mistral-7b-instruct": -1.5,
    "guanaco-33b": -2.0,
    "falcon-7b-instruct": -5.0,
    "pythia-12b": -5.5,
    "llama-2-13b-chat": -6.0,
    "luminous-supreme-control": -11.0,
    "luminous-extended-control": -12.0,
    "flan-t5-xxl": -13.0,
}
#: Conversation-type effects (controversy rated lower).
CTYPE_PROFILE: dict[str, float] = {
    "unguided": 2.5,
    "values guided": 0.5,
    "controversy guided": -3.0,
}
#: Demographic main effects (older raters more lenient), each summing to zero.
AGE_PROFILE: dict[str, float] = {
    "18-24": -3.0,
    "25-34": -2.0,
    "35-44": -1.0,
    "45-54": 1.0,
    "55-64": 2.5,
    "65+": 4.0,
    vocab.PREFER_NOT: -1.5,
}
GENDER_PROFILE: dict[str, float] = {
    "Male": -1.5,
    "Female": 1.5,
    "Non-binary / third gender": -2.0,
    vocab.PREFER_NOT: 2.0,
}
ETHNICITY_PROFILE: dict[str, float] = {
    "White": -1.5,
    "Black": 2.5,
    "Asian": 0.5,
    "Mixed": -1.0,
    "Other": 1.5,
    vocab.PREFER_NOT: -2.0,
}

# The planted heterogeneity: LLM x demographic rows that are double-centred by
# construction (every row and every column sums to zero).
PLANTED: dict[str, dict[str, tuple[float, ...]]] = {
    # gender levels: Male, Female, Non-binary, PNTS
    "llm_gender": {
        "command": (4.0, -4.0, 0.0, 0.0),
        "claude-instant-1": (-4.0, 4.0, 0.0, 0.0),
    },
    # ethnicity levels: White, Black, Asian, Mixed, Other, PNTS
    "llm_ethnicity": {
        "palm-2": (-7.0, 3.5, 3.5, 3.5, 3.5, -7.0),
        "command": (3.5, -1.75, -1.75, -1.75, -1.75, 3.5),
        "claude-instant-1": (3.5, -1.75, -1.75, -1.75, -1.75, 3.5),
    },
    # age levels: 18-24, 25-34, 35-44, 45-54, 55-64, 65+, PNTS
    "llm_age": {
        "zephyr-7b-beta": (5.5, 5.5, 5.5, -5.5, -5.5, -5.5, 0.0),
        "command": (-2.75, -2.75, -2.75, 2.75, 2.75, 2.75, 0.0),
        "claude-instant-1": (-2.75, -2.75, -2.75, 2.75, 2.75, 2.75, 0.0),
    },
}
PLANTED_LLMS: tuple[str, ...] = ("command", "claude-instant-1", "palm-2", "zephyr-7b-beta")
#: What the planted rows are designed to produce in both census populations.
PLANTED_DESCRIPTION = (
    "Overall (and for male, white and over-45 people) command is the best LLM. "
    "llm_gender favours claude-instant-1 for women and command for men (+-4 latent "
    "points), so claude-instant-1 is best for non-male people; llm_ethnicity favours "
    "palm-2 for every non-white group (+3.5; white and PNTS -7) and command / "
    "claude-instant-1 for white people (+3.5; non-white -1.75), so palm-2 is best for "
    "non-white people; llm_age favours zephyr-7b-beta under 45 (+5.5; over 45 -5.5) and "
    "command / claude-instant-1 over 45 (+2.75; under 45 -2.75), so zephyr-7b-beta is "
    "best for under-45s. The other 17 LLMs get small random interactions (sd 1.5, "
    "double-centred among themselves)."
)

#: Parameter -> its named dims (beyond chain, draw).
PARAM_DIMS: dict[str, tuple[str, ...]] = {
    "intercept": (),
    "sigma": (),
    "sigma_noise": (),
    "sigma_participant": (),
    "pi_default": (),
    "turn_effect": (),
    "participant_effect": ("participant",),
    "llm_effect": ("llm",),
    "country_effect": ("country",),
    "ctype_effect": ("conversation_type",),
    "age_effect": ("age",),
    "gender_effect": ("gender",),
    "ethnicity_effect": ("ethnicity",),
    "llm_age": ("llm", "age"),
    "llm_gender": ("llm", "gender"),
    "llm_ethnicity": ("llm", "ethnicity"),
}


def _centre(values: np.ndarray) -> np.ndarray:
    return values - values.mean()


def _double_centre(m: np.ndarray) -> np.ndarray:
    m = m - m.mean(axis=0, keepdims=True)
    return m - m.mean(axis=1, keepdims=True)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def participant_labels(participants: pd.DataFrame) -> list[str]:
    """Participants that carry an effect: those with at least one conversation."""
    has = participants["num_completed_conversations"].to_numpy() > 0
    return participants.loc[has, "user_id"].tolist()


def country_labels(participants: pd.DataFrame) -> list[str]:
    """Residence countries of participants with conversations, in vocabulary order."""
    has = participants["num_completed_conversations"].to_numpy() > 0
    present = set(participants.loc[has, "reside_iso"])
    return [c for c in vocab.COUNTRY_CODES if c in present]


def _country_effects(countries: list[str], rng: np.random.Generator) -> np.ndarray:
    """Zero-sum country effects: fixed for GBR/USA, random (centred) for the others."""
    k = np.zeros(len(countries))
    others = [i for i, c in enumerate(countries) if c not in MRP_COUNTRY_EFFECTS]
    if len(others) > 1:
        k[others] = _centre(rng.normal(0.0, SIGMA_COUNTRY, len(others)))
    for i, c in enumerate(countries):
        k[i] = MRP_COUNTRY_EFFECTS.get(c, k[i])
    return _centre(k) if len(countries) > 1 else np.zeros(len(countries))


def _interaction(
    name: str, levels: tuple[str, ...], rng: np.random.Generator, planted: bool
) -> np.ndarray:
    """An LLM x level matrix: planted rows plus double-centred random rows elsewhere."""
    llms = vocab.LLM_SHORT_NAMES
    out = np.zeros((len(llms), len(levels)))
    fixed = PLANTED[name] if planted else {}
    others = [i for i, m in enumerate(llms) if m not in (PLANTED_LLMS if planted else ())]
    out[others] = _double_centre(
        rng.normal(0.0, SIGMA_RANDOM_INTERACTION, (len(others), len(levels)))
    )
    for llm, row in fixed.items():
        out[llms.index(llm)] = row
    return out


def make_truth(
    participants: pd.DataFrame,
    rng: np.random.Generator,
    *,
    intercept: float = INTERCEPT,
    sigma_participant: float = SIGMA_PARTICIPANT,
    sigma_noise: float = SIGMA_NOISE,
    pi_default: float = PI_DEFAULT,
    turn_effect: float = TURN_EFFECT,
    text_features: bool = True,
    planted: bool = True,
    max_attempts: int = 50,
) -> xr.Dataset:
    """Draw the true parameters for *participants* (a ``chain`` = 1, ``draw`` = 1 Dataset).

    Fixed parts: the LLM, conversation-type and demographic profiles and the planted
    LLM x demographic rows (module constants). Random parts (from *rng*): participant
    effects (N(0, sigma_participant), centred), country effects (N(0, 3), centred over
    the residence countries present) and the small interactions of the non-planted
    LLMs. With ``planted=True`` the random parts are redrawn (up to *max_attempts*) until
    the planted pattern holds in both census populations (:func:`check_planted`).

    Besides the rating-model parameters (``ARCHITECTURE.md``), the Dataset holds
    ``sigma_noise`` (the normal residual sd), the text-feature effects ``text_beta``
    and their centring constants ``text_mean`` (dim ``text_feature``), and the exact
    distribution of the total text contribution (``text_offset``, ``text_weight``; dim
    ``text_atom``). ``sigma`` is the total residual sd sqrt(sigma_noise^2 + var(text)),
    the residual sd a rating model without text features sees.
    """
    people = participant_labels(participants)
    countries = country_labels(participants)
    if not people:
        raise SynthError("truth: no participant has conversations")
    for attempt in range(1, max_attempts + 1):
        u = _centre(rng.normal(0.0, sigma_participant, len(people)))
        k = _country_effects(countries, rng)
        mats = {
            name: _interaction(name, levels, rng, planted)
            for name, levels in (
                ("llm_age", vocab.AGE_BANDS),
                ("llm_gender", vocab.GENDERS),
                ("llm_ethnicity", vocab.ETHNICITY_GROUPS),
            )
        }
        ds = _assemble(
            people,
            countries,
            u,
            k,
            mats,
            intercept=intercept,
            sigma_participant=sigma_participant,
            sigma_noise=sigma_noise,
            pi_default=pi_default,
            turn_effect=turn_effect,
            text_features=text_features,
        )
        if not planted:
            break
        pattern = check_planted(true_population_means(ds))
        if pattern["holds"]:
            ds.attrs["planted_attempts"] = attempt
            break
    else:
        raise SynthError(f"truth: the planted pattern failed in {max_attempts} draws")
    return ds


def _assemble(
    people,
    countries,
    u,
    k,
    mats,
    *,
    intercept,
    sigma_participant,
    sigma_noise,
    pi_default,
    turn_effect,
    text_features,
) -> xr.Dataset:
    llm = _centre(np.array([LLM_PROFILE[m] for m in vocab.LLM_SHORT_NAMES]))
    values: dict[str, np.ndarray | float] = {
        "intercept": intercept,
        "sigma_participant": sigma_participant,
        "sigma_noise": sigma_noise,
        "pi_default": pi_default,
        "turn_effect": turn_effect,
        "participant_effect": u,
        "llm_effect": llm,
        "country_effect": k,
        "ctype_effect": _centre(np.array([CTYPE_PROFILE[t] for t in vocab.CONVERSATION_TYPES])),
        "age_effect": _centre(np.array([AGE_PROFILE[a] for a in vocab.AGE_BANDS])),
        "gender_effect": _centre(np.array([GENDER_PROFILE[g] for g in vocab.GENDERS])),
        "ethnicity_effect": _centre(
            np.array([ETHNICITY_PROFILE[e] for e in vocab.ETHNICITY_GROUPS])
        ),
        **mats,
    }
    data_vars = {
        name: (("chain", "draw", *PARAM_DIMS[name]), np.asarray(v, dtype=float)[None, None])
        for name, v in values.items()
    }
    # Scales of each effect family: the generating sd where drawn, else the realised rms.
    scales = {
        "sigma_llm": _rms(llm),
        "sigma_country": SIGMA_COUNTRY,
        "sigma_ctype": _rms(values["ctype_effect"]),
        "sigma_age": _rms(values["age_effect"]),
        "sigma_gender": _rms(values["gender_effect"]),
        "sigma_ethnicity": _rms(values["ethnicity_effect"]),
        "sigma_llm_age": _rms(mats["llm_age"]),
        "sigma_llm_gender": _rms(mats["llm_gender"]),
        "sigma_llm_ethnicity": _rms(mats["llm_ethnicity"]),
    }
    for name, v in scales.items():
        data_vars[name] = (("chain", "draw"), np.array([[v]]))
    text_var = 0.0
    coords = {
        "chain": [0],
        "draw": [0],
        "participant": people,
        "llm": list(vocab.LLM_SHORT_NAMES),
        "country": countries,
        "conversation_type": list(vocab.CONVERSATION_TYPES),
        "age": list(vocab.AGE_BANDS),
        "gender": list(vocab.GENDERS),
        "ethnicity": list(vocab.ETHNICITY_GROUPS),
    }
    if text_features:
        dist = default_feature_distribution()
        betas = {
            **{f: b / T.TEXT_ATTENUATION[f] for f, b in T.TEXT_BETAS.items()},
            "empty_string": T.EMPTY_SHIFT,
        }
        target = {**T.TEXT_BETAS, "empty_string": np.nan}
        means = dist.means()
        atoms, weights = dist.contribution_atoms(betas)
        text_var = float((weights * atoms**2).sum())
        data_vars["text_beta"] = (("text_feature",), np.array([betas[f] for f in TEXT_FEATURES]))
        data_vars["text_beta_observed"] = (
            ("text_feature",),
            np.array([target[f] for f in TEXT_FEATURES]),
        )
        data_vars["text_mean"] = (("text_feature",), np.array([means[f] for f in TEXT_FEATURES]))
        data_vars["text_offset"] = (("text_atom",), atoms)
        data_vars["text_weight"] = (("text_atom",), weights)
        coords["text_feature"] = list(TEXT_FEATURES)
        coords["text_atom"] = np.arange(len(atoms))
    data_vars["sigma"] = (("chain", "draw"), np.array([[np.sqrt(sigma_noise**2 + text_var)]]))
    return xr.Dataset(data_vars, coords=coords)
