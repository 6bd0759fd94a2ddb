"""The model-and-priors table of the supplement, generated from a model specification.

One row per term of the model the spec builds (likelihood, intercept, residual scale,
participant, LLM, country, conversation-type, turn, demographic and LLM x demographic
effects) with its dimensions, its prior (scales on the 1-100 rating scale, in points)
and how it is pooled and parameterised. Every prior of the spec appears: a prior this
module does not know a term for (a newer model term) gets a generic row, so nothing is
left out silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..tabular import Table


def _g(x: float) -> str:
    return f"{float(x):g}"


def _normal(kind: str, priors: Mapping[str, float], pooling: str, key: str, symbol: str) -> tuple[str, set[str]]:
    """``kind Normal(0, scale)``: the scale a HalfNormal hyperparameter, or the fixed prior scale."""
    if pooling == "fixed":
        return f"{kind}Normal(0, {_g(priors[key])})", {key}
    return f"{kind}Normal(0, {symbol}), {symbol} ∼ HalfNormal({_g(priors[key])})", {key}


_WORDS = {"centered": "centred", "noncentered": "non-centred", "mixed": "mixed (by data share)",
          "marginalized": "integrated out exactly; redrawn from the conditional posterior"}


def _how(pooling: Mapping[str, str], param: Mapping[str, str], key: str, default: str) -> str:
    return f"{pooling.get(key, default)}, {_WORDS.get(param.get(key, ''), param.get(key, ''))}"


def spec_rows(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """Rows ``term, dims, prior, pooling`` of the model a spec (``ModelSpec.to_dict()``) builds."""
    eff = spec.get("effects", {})
    priors = dict(spec.get("priors", {}))
    pooling = dict(eff.get("pooling", {}))
    param = dict(spec.get("parameterisation", {}))
    family = spec.get("likelihood", {}).get("family", "gaussian")
    used: set[str] = set()
    rows: list[dict[str, str]] = []

    def row(term: str, dims: str, prior: str, how: str, keys: set[str]) -> None:
        rows.append({"term": term, "dims": dims, "prior": prior, "pooling": how})
        used.update(keys)

    lik = ("rating ~ Normal(η, σ) on the 1–100 scale" if family == "gaussian" else
           "latent Normal(η, σ), observed on [1, 100]; ratings at 1 and 100 censored")
    data = spec.get("data", {})
    row("Likelihood", "rating", lik, f"{data.get('turns', 'opening')} turns, {data.get('subset', 'all')} "
        "conversations; collapsed exactly onto cells", set())
    row("Intercept", "–", f"Normal({_g(priors['intercept_mu'])}, {_g(priors['intercept_sigma'])})", "–",
        {"intercept_mu", "intercept_sigma"})
    row("Residual sd σ", "–", f"HalfNormal({_g(priors['sigma'])})", "–", {"sigma"})
    row("Participant effects", "participant",
        f"Normal(0, τ), τ ∼ HalfNormal({_g(priors['sigma_participant'])})",
        _WORDS.get(param.get("participant", ""), param.get("participant", "")), {"sigma_participant"})
    prior, keys = _normal("zero-sum ", priors, pooling.get("llm", "partial"), "sigma_llm", "σ_llm")
    row("LLM effects", "llm", prior, _how(pooling, param, "llm", "partial"), keys)
    if eff.get("country"):
        prior, keys = _normal("rating-weighted zero-sum ", priors, pooling.get("country", "partial"),
                              "sigma_country", "σ_country")
        if eff.get("unpooled_countries"):
            prior += (f"; {', '.join(eff['unpooled_countries'])}: own level, "
                      f"Normal(0, {_g(priors['sigma_country'])}) (not pooled)")
        row("Country effects", f"country ({eff['country']})", prior, _how(pooling, param, "country", "partial"),
            keys)
    if eff.get("conversation_type"):
        prior, keys = _normal("zero-sum ", priors, pooling.get("conversation_type", "fixed"), "sigma_ctype",
                              "σ_type")
        row("Conversation-type effects", "conversation_type", prior,
            _how(pooling, param, "conversation_type", "fixed"), keys)
    if data.get("turns") == "all":
        row("Later-turn effect", "–", f"Normal(0, {_g(priors['turn_effect'])})", "–", {"turn_effect"})
    else:
        used.add("turn_effect")  # not in an opening-turn model
    for f in eff.get("demographics", []):
        prior, keys = _normal("rating-weighted zero-sum ", priors, pooling.get("demographic", "fixed"),
                              "sigma_demographic", f"σ_{f}")
        row(f"{f.capitalize()} effects", f, prior, _how(pooling, param, "demographic", "fixed"), keys)
    per_llm = pooling.get("interaction") == "per_llm"
    for f in eff.get("llm_interactions", []):
        if per_llm:
            prior = (f"Normal(0, σ_llm×{f} · λ_llm), σ_llm×{f} ∼ HalfNormal({_g(priors['sigma_interaction'])}), "
                     "λ_llm ∼ HalfNormal(1)")
            keys = {"sigma_interaction"}
        else:
            prior, keys = _normal("", priors, pooling.get("interaction", "partial"), "sigma_interaction",
                                  f"σ_llm×{f}")
        row(f"LLM × {f} effects", f"llm × {f}", f"{prior}; zero-sum over LLMs and (rating-weighted) levels",
            _how(pooling, param, "interaction", "partial"), keys)
    if not eff.get("country"):
        used.add("sigma_country")
    if not eff.get("conversation_type"):
        used.add("sigma_ctype")
    if not eff.get("demographics"):
        used.add("sigma_demographic")
    if not eff.get("llm_interactions"):
        used.add("sigma_interaction")
    for key in sorted(set(priors) - used):  # terms of newer specs: listed, never dropped
        value = priors[key]
        prior = f"HalfNormal({_g(value)})" if key.startswith("sigma") else _g(value)
        row(f"Prior {key}", "see the spec", prior, pooling.get(key.removeprefix("sigma_"), "–"), {key})
    return rows


def model_table(spec: Any) -> Table:
    """The model and its priors as a supplement table (from a ``ModelSpec`` or its dict)."""
    d = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    rows = spec_rows(d)
    data = pd.DataFrame(rows, columns=["term", "dims", "prior", "pooling"])
    display = pd.DataFrame({"Term": data["term"], "Dimensions": data["dims"], "Prior": data["prior"],
                            "Pooling, parameterisation": data["pooling"]})
    sampling = d.get("sampling", {})
    return Table(
        "model_priors", "Model and priors",
        f"Model specification '{d.get('name')}' ({d.get('description', '').rstrip('.')}): the "
        "likelihood and every term of the linear predictor η with its prior. Scales are in "
        "rating points. Zero-sum effects sum to zero over their levels (equally weighted for "
        "LLMs and conversation types, weighted by the levels' shares of the ratings for "
        "participant attributes); 'partial': the scale is estimated (hierarchical), 'fixed': "
        "the prior scale is used as it is. Sampler: "
        f"{sampling.get('sampler', 'nutpie')}, {sampling.get('chains')} chains × "
        f"{sampling.get('draws')} draws after {sampling.get('tune')} tuning steps, target "
        f"acceptance {sampling.get('target_accept', 0.8)}.",
        data, display=display, align="llll")
