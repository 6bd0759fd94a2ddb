"""True census-population means of the synthetic truth (what MRP estimates should recover).

:func:`true_population_means` gives, per country, population group and LLM, the
expected opening-turn observed score of a new member of the census population;
:func:`group_optima` and :func:`check_planted` check the planted pattern of best LLMs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from prism_stats import census, vocab

from .scenarios import cell_latent_shift, expected_observed_departures, has_departures
from .scores import expected_observed
from .util import SynthError

#: Complementary group pairs whose optima must differ (the welfare analysis target).
GROUP_PAIRS: tuple[tuple[str, str], ...] = (
    ("male", "nonmale"),
    ("white", "nonwhite"),
    ("under45", "over45"),
)
#: The census populations of the truth (:data:`prism_stats.vocab.POPULATION_GROUPS`).
GROUPS: tuple[str, ...] = vocab.POPULATION_GROUPS


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
    Under departures from the model (``dep_*`` variables, :mod:`prism_stats.synth.scenarios`)
    the LLM x country and LLM x age x gender shifts enter the latent mean and the
    expectation runs over the rater styles and spreads of the scenario.

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
    if has_departures(params):
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
