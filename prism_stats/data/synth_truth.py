"""The true rating-model parameters of the synthetic release and the score process.

See the module docstring of :mod:`prism_stats.data.synth` for the process. This module
holds the parameter construction (:func:`make_truth`), the score process
(:func:`scores`), the closed-form expected observed score (:func:`expected_observed`)
and the true census-population means (:func:`true_population_means`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from prism_stats import vocab

from . import synth_tables as T
from .synth_design import Design
from .synth_scenarios import (
    cell_latent_shift,
    expected_observed_departures,
    has_departures,
    latent_shift,
    noise_multiplier,
    observe,
    rater_styles,
)
from .synth_text import TEXT_FEATURES, default_feature_distribution
from .synth_util import SynthError

# --- default parameter values (calibrated: see synth.py docstring) -----------------------------

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
#: Complementary group pairs whose optima must differ (the welfare analysis target).
GROUP_PAIRS: tuple[tuple[str, str], ...] = (
    ("male", "nonmale"),
    ("white", "nonwhite"),
    ("under45", "over45"),
)
GROUPS: tuple[str, ...] = ("all", "male", "nonmale", "white", "nonwhite", "under45", "over45")

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


# --- closed-form expectations -------------------------------------------------------------------


def _clipped_normal_mean(
    mu: np.ndarray, sd: float | np.ndarray, lo: float = 1.0, hi: float = 100.0
) -> np.ndarray:
    """E[clip(Z, lo, hi)] for Z ~ N(mu, sd)."""
    a = (lo - mu) / sd
    b = (hi - mu) / sd
    pa, pb = ndtr(a), ndtr(b)
    phi_a = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)
    phi_b = np.exp(-0.5 * b * b) / np.sqrt(2 * np.pi)
    return lo * pa + hi * (1 - pb) + mu * (pb - pa) + sd * (phi_a - phi_b)


def expected_observed(
    eta: np.ndarray | float,
    sd: float | np.ndarray,
    pi_default: float | np.ndarray = 0.0,
    offsets: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Expected observed score of a response with latent mean *eta*.

    ``E[observed] = pi_default * 50 + (1 - pi_default) * E[clip(Z, 1, 100)]`` with
    ``Z ~ N(eta, sd)`` (rounding to integers ignored). With *offsets* / *weights* (a
    discrete distribution of an extra additive term, e.g. the synthetic truth's text
    contribution ``text_offset`` / ``text_weight``), ``Z = eta + offset + N(0, sd)``
    averaged over the offsets.

    Parameters
    ----------
    eta
        Latent means (any shape).
    sd
        Total sd of the normal part (for a new participant: sqrt(sigma_participant^2 +
        sigma^2)); broadcasts against *eta*.
    pi_default
        Probability that the slider is left at its start value 50.
    offsets, weights
        Optional discrete additive term (weights sum to 1).
    """
    eta = np.asarray(eta, dtype=float)
    if offsets is None:
        clipped = _clipped_normal_mean(eta, sd)
    else:
        w = np.asarray(weights, dtype=float)
        sd_b = np.asarray(sd, dtype=float)[..., None] if np.ndim(sd) else sd
        clipped = _clipped_normal_mean(eta[..., None] + np.asarray(offsets, dtype=float), sd_b) @ w
    return pi_default * 50.0 + (1 - pi_default) * clipped


def _draws(params: xr.Dataset) -> xr.Dataset:
    """Stack chain/draw into one ``sample`` dim (added when absent)."""
    if "chain" in params.dims and "draw" in params.dims:
        return params.stack(sample=("chain", "draw")).transpose("sample", ...)
    return params.expand_dims(sample=[0])


def _value(ds: xr.Dataset, name: str, n: int) -> np.ndarray:
    """Scalar parameter per sample (0 when the model has no such parameter)."""
    if name not in ds:
        return np.zeros(n)
    return np.asarray(ds[name].values, dtype=float).reshape(n)


def _lookup(ds: xr.Dataset, name: str, dim: str, labels: list[str], n: int) -> np.ndarray:
    """(sample, len(labels)) values of a 1-d effect; 0 for absent params or labels."""
    if name not in ds:
        return np.zeros((n, len(labels)))
    da = ds[name].transpose("sample", dim)
    uniq = list(dict.fromkeys(labels))
    table = da.reindex({dim: uniq}, fill_value=0.0).values
    return table[:, [uniq.index(v) for v in labels]]


def _lookup2(
    ds: xr.Dataset, name: str, dim: str, labels: list[str], llms: list[str], n: int
) -> np.ndarray:
    """(sample, llm, len(labels)) values of an LLM x level interaction (0 if absent)."""
    if name not in ds:
        return np.zeros((n, len(llms), len(labels)))
    da = ds[name].transpose("sample", "llm", dim)
    uniq = list(dict.fromkeys(labels))
    table = da.reindex({dim: uniq, "llm": llms}, fill_value=0.0).values
    return table[:, :, [uniq.index(v) for v in labels]]


def cell_expected_scores(
    params: xr.Dataset, census_frame: pd.DataFrame, country: str, *, veto: float | None = None
) -> np.ndarray:
    """Expected opening-turn observed score of a new member per (sample, cell, llm).

    With *veto*, instead the probability that the observed score is at most *veto*.

    Latent mean of cell c (age a, sex g, census ethnicity e) and LLM m: intercept +
    country effect (GBR / USA; 0 when the country has no effect) + ctype effect +
    age, gender, ethnicity effects + llm effect + llm_age, llm_gender,
    llm_ethnicity; the expected observed score is averaged over the three conversation
    types with equal weights. Parameters a model does not have count as 0.
    """
    ds = _draws(params)
    n = ds.sizes["sample"]
    llms = list(map(str, ds["llm"].values)) if "llm" in ds.coords else list(vocab.LLM_SHORT_NAMES)
    ages = census_frame["age"].astype(str).tolist()
    sexes = census_frame["sex"].astype(str).tolist()
    eths = census_frame["ethnicity"].astype(str).tolist()
    iso = vocab.COUNTRY_ISO3[country]
    base = (
        _value(ds, "intercept", n)[:, None]
        + _lookup(ds, "country_effect", "country", [iso], n)
        + _lookup(ds, "age_effect", "age", ages, n)
        + _lookup(ds, "gender_effect", "gender", sexes, n)
        + _lookup(ds, "ethnicity_effect", "ethnicity", eths, n)
    )  # (sample, cell)
    llm_part = _lookup(ds, "llm_effect", "llm", llms, n)[:, None, :]  # (sample, 1, llm)
    inter = np.zeros((n, len(ages), len(llms)))
    for name, dim, labels in (
        ("llm_age", "age", ages),
        ("llm_gender", "gender", sexes),
        ("llm_ethnicity", "ethnicity", eths),
    ):
        uniq = list(dict.fromkeys(labels))
        table = _lookup2(ds, name, dim, uniq, llms, n)  # (sample, llm, level)
        idx = np.array([uniq.index(v) for v in labels])
        inter += table[:, :, idx].transpose(0, 2, 1)
    ctype = _lookup(ds, "ctype_effect", "conversation_type", list(vocab.CONVERSATION_TYPES), n)
    eta = (
        base[:, :, None, None]
        + llm_part[:, :, :, None]
        + inter[:, :, :, None]
        + ctype[:, None, None, :]
    )
    pi = _value(ds, "pi_default", n)[:, None, None, None]
    has_text = "text_offset" in ds and "sigma_noise" in ds
    resid = _value(ds, "sigma_noise" if has_text else "sigma", n)
    sd = np.sqrt(_value(ds, "sigma_participant", n) ** 2 + resid**2)[:, None, None, None]
    if has_departures(params):  # departures from the model: see synth_scenarios
        if n != 1:
            raise SynthError("truth with departures must have one chain and one draw")
        eta = eta + cell_latent_shift(params, llms, iso, ages, sexes)[None, :, :, None]
        out = expected_observed_departures(
            eta[0], ages, params, float(_value(ds, "sigma_participant", n)[0]), float(resid[0]),
            float(pi.ravel()[0]),
            params["text_offset"].values if has_text else None,
            params["text_weight"].values if has_text else None,
            veto=veto,
        )[None]
    elif veto is not None:
        offsets = np.asarray(params["text_offset"].values, dtype=float) if has_text else np.zeros(1)
        weights = np.asarray(params["text_weight"].values, dtype=float) if has_text else np.ones(1)
        below = ndtr((veto + 0.5 - eta[..., None] - offsets) / sd[..., None]) @ weights
        out = (1 - pi) * below
    elif has_text:
        offsets = np.asarray(params["text_offset"].values, dtype=float)
        weights = np.asarray(params["text_weight"].values, dtype=float)
        out = np.stack(
            [expected_observed(eta[s], sd[s], pi[s], offsets, weights) for s in range(n)]
        )
    else:
        out = expected_observed(eta, sd, pi)
    return out.mean(axis=-1)


def true_population_means(
    params: xr.Dataset, frames: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """True census-population mean opening-turn score of a new member, per group and LLM.

    For each census cell (age x sex x ethnicity of ``census.frame(country)``, default
    harmonisation unless *frames* are given) and LLM, :func:`cell_expected_scores`
    gives the expected observed score (closed form of :func:`expected_observed`;
    rounding ignored); group means are census-share-weighted averages over the
    group's cells (``census.group_masks``). Parameters with several chains/draws give
    the mean over draws of the per-draw population means.

    Returns
    -------
    pandas.DataFrame
        Columns ``country`` (uk, us), ``group`` (all, male, nonmale, white, nonwhite,
        under45, over45), ``llm`` and ``mean``.
    """
    from prism_stats import census

    rows = []
    for country in vocab.COUNTRIES_MRP:
        cf = frames[country] if frames is not None else census.frame(country)
        cell = cell_expected_scores(params, cf, country)  # (sample, cell, llm)
        share = cf["share"].to_numpy(dtype=float)
        masks = census.group_masks(cf)
        llms = (
            list(map(str, params["llm"].values))
            if "llm" in params.coords
            else list(vocab.LLM_SHORT_NAMES)
        )
        for group in GROUPS:
            w = share * np.asarray(masks[group], dtype=bool)
            means = np.einsum("scm,c->sm", cell, w / w.sum()).mean(axis=0)
            rows.extend(
                {"country": country, "group": group, "llm": m, "mean": float(v)}
                for m, v in zip(llms, means, strict=True)
            )
    return pd.DataFrame(rows)


def group_optima(pop_means: pd.DataFrame) -> pd.DataFrame:
    """Best LLM per (country, group), with its mean and the gap to the runner-up."""
    rows = []
    for (country, group), sub in pop_means.groupby(["country", "group"], sort=False):
        ranked = sub.sort_values("mean", ascending=False)
        rows.append(
            {
                "country": country,
                "group": group,
                "best": ranked["llm"].iloc[0],
                "best_mean": float(ranked["mean"].iloc[0]),
                "runner_up": ranked["llm"].iloc[1],
                "gap": float(ranked["mean"].iloc[0] - ranked["mean"].iloc[1]),
            }
        )
    return pd.DataFrame(rows)


def check_planted(pop_means: pd.DataFrame) -> dict:
    """Whether group optima differ between complementary groups in both countries.

    Holds when, in the UK and the US, the best LLM differs within each pair of
    :data:`GROUP_PAIRS` and, for at least one group, from the overall best LLM.
    """
    opt = group_optima(pop_means).set_index(["country", "group"])["best"]
    details = {}
    holds = True
    for country in vocab.COUNTRIES_MRP:
        pairs_differ = all(opt[(country, a)] != opt[(country, b)] for a, b in GROUP_PAIRS)
        differs_overall = any(opt[(country, g)] != opt[(country, "all")] for g in GROUPS[1:])
        details[country] = {
            "pairs_differ": pairs_differ,
            "some_group_differs_from_all": differs_overall,
        }
        holds = holds and pairs_differ and differs_overall
    return {"holds": holds, "countries": details}


# --- the score process --------------------------------------------------------------------------


def _codes(values, levels: list[str], what: str) -> np.ndarray:
    index = pd.Index(levels)
    codes = index.get_indexer(pd.Index(values))
    if (codes < 0).any():
        bad = sorted(set(np.asarray(values, dtype=object)[codes < 0]))
        raise SynthError(f"truth has no {what} level for {bad[:5]}")
    return codes


def scores(
    design: Design, participants: pd.DataFrame, truth: xr.Dataset, rng: np.random.Generator
) -> pd.DataFrame:
    """Run the score process on a design (see the :mod:`prism_stats.data.synth` docstring).

    Opening turns are scored first; the highest-scored response of each opener is
    chosen (ties at random) and its LLM answers the later turns twice (A/B), whose
    higher score is chosen (ties at random; identical A/B texts are both chosen).

    Parameters
    ----------
    design
        From :func:`~prism_stats.data.synth_design.make_design`.
    participants
        The participants the design was built for.
    truth
        Parameters (``chain`` = ``draw`` = 1) with the names and dims of
        ``ARCHITECTURE.md``; ``text_beta`` / ``text_mean`` switch the text-feature
        contributions on, and then ``sigma_noise`` is the normal residual sd (else
        ``sigma``).
    rng
        The random generator of this stage.

    Returns
    -------
    pandas.DataFrame
        Aligned with ``design.responses``: ``llm`` (code into ``vocab.LLMS``, resolved
        for later turns), ``latent``, ``text_effect``, ``score`` (1-100) and ``chosen``.
    """
    if truth.sizes.get("chain", 1) != 1 or truth.sizes.get("draw", 1) != 1:
        raise SynthError("scores: the truth must have exactly one chain and one draw")
    tr = truth.isel(chain=0, draw=0) if "chain" in truth.dims else truth
    r = design.responses
    n = len(r)
    p_row = r["participant"].to_numpy()
    people = participants.iloc[p_row]
    part = _codes(
        people["user_id"].to_numpy(), list(map(str, tr["participant"].values)), "participant"
    )
    country = _codes(
        people["reside_iso"].to_numpy(), list(map(str, tr["country"].values)), "country"
    )
    age = _codes(people["age_band"].to_numpy(), list(map(str, tr["age"].values)), "age")
    gender = _codes(people["gender"].to_numpy(), list(map(str, tr["gender"].values)), "gender")
    eth = _codes(
        people["ethnicity_group"].to_numpy(), list(map(str, tr["ethnicity"].values)), "ethnicity"
    )
    conv_type = design.conversations["conversation_type"].to_numpy()[r["conversation"].to_numpy()]
    ctype = _codes(conv_type, list(map(str, tr["conversation_type"].values)), "conversation_type")
    llm_truth = list(map(str, tr["llm"].values))
    if llm_truth != list(vocab.LLM_SHORT_NAMES):
        raise SynthError(
            "scores: the truth's llm coordinate must be vocab.LLM_SHORT_NAMES in order"
        )

    def val(name: str) -> np.ndarray:
        return np.asarray(tr[name].values, dtype=float)

    later = r["turn"].to_numpy() > 0
    base = (
        val("intercept")
        + val("participant_effect")[part]
        + val("country_effect")[country]
        + val("ctype_effect")[ctype]
        + val("turn_effect") * later
        + val("age_effect")[age]
        + val("gender_effect")[gender]
        + val("ethnicity_effect")[eth]
    )
    if "text_beta" in tr:
        feats = r[list(map(str, tr["text_feature"].values))].to_numpy(dtype=float)
        text = (feats - val("text_mean")) @ val("text_beta")
        resid_sd = float(val("sigma_noise"))
    else:
        text = np.zeros(n)
        resid_sd = float(val("sigma"))
    pi = float(val("pi_default")) if "pi_default" in tr else 0.0
    noise = rng.normal(0.0, resid_sd, n) * noise_multiplier(tr, part)
    slider_default = rng.random(n) < pi
    jitter = rng.random(n)

    llm = r["llm"].to_numpy().copy()
    latent = np.full(n, np.nan)
    score = np.zeros(n, dtype=int)
    chosen = np.zeros(n, dtype=bool)

    def rate(rows: np.ndarray) -> None:
        m = llm[rows]
        lat = (
            base[rows]
            + val("llm_effect")[m]
            + val("llm_age")[m, age[rows]]
            + val("llm_gender")[m, gender[rows]]
            + val("llm_ethnicity")[m, eth[rows]]
            + text[rows]
            + noise[rows]
            + latent_shift(tr, m, country[rows], age[rows], gender[rows])
        )
        latent[rows] = lat
        observed = observe(lat, rater_styles(tr, part[rows]), tr, rng)
        score[rows] = np.where(slider_default[rows], 50, observed).astype(int)

    inter = r["interaction"].to_numpy()
    opening = np.flatnonzero(~later)
    rate(opening)
    # The best response of each opener (ties at random) is chosen ...
    order = opening[np.lexsort((jitter[opening], score[opening], inter[opening]))]
    last = np.r_[inter[order][1:] != inter[order][:-1], True]
    winners = order[last]
    chosen[winners] = True
    # ... and its LLM answers every later turn of the conversation.
    winner_llm = np.full(len(design.conversations), -1)
    winner_llm[r["conversation"].to_numpy()[winners]] = llm[winners]
    later_rows = np.flatnonzero(later)
    llm[later_rows] = winner_llm[r["conversation"].to_numpy()[later_rows]]
    rate(later_rows)
    a = later_rows[r["within_turn"].to_numpy()[later_rows] == 0]
    b = a + 1
    a_wins = (score[a] > score[b]) | ((score[a] == score[b]) & (jitter[a] < 0.5))
    identical = r["identical_ab"].to_numpy()[a]
    chosen[a] = a_wins | identical
    chosen[b] = ~a_wins | identical
    return pd.DataFrame(
        {"llm": llm, "latent": latent, "text_effect": text, "score": score, "chosen": chosen},
        index=r.index,
    )
