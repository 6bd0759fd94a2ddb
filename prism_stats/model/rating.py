"""The hierarchical rating model as a PyMC graph.

Linear predictor of observation cell i (participant p, LLM m, conversation type t, turn
group g; the participant's country k in region r and demographic levels a_f)::

    eta_i = intercept + participant_effect[p] + llm_effect[m] + country_effect[k]
            + ctype_effect[t] + turn_effect * g
            + sum_f demographic_effect_f[a_f] + sum_f llm_f[m, a_f]
            + llm_residence[m, h(k)]  or  llm_region[m, r] + llm_country[m, k]
            + llm_ctype[m, t]                                          (when the spec has them)

and, for the Gaussian family with marginalized participants, a rating is
``eta_i + v_pm + e_i`` with an optional rater x LLM taste ``v_pm ~ N(0, sigma_rater_llm)``
and noise ``e_i ~ N(0, sigma * exp(rater_scale_p))`` (heteroscedastic raters when the
spec has ``rater_scale``). Participant and taste effects are integrated out of the
likelihood exactly (:mod:`prism_stats.model.marginal`) and the participant effects are
redrawn from their conditional posterior after sampling
(:func:`prism_stats.model.predict.draw_participant_effects`).

Identification and parameterisation (:mod:`prism_stats.model.effects`): every crossed
effect sums to zero; LLM and conversation-type effects with equal weights,
participant-level factors weighted by their share of the ratings; LLM x demographic and
LLM x country matrices over *both* axes, so ``llm_effect`` is the LLM's average over the
raters and the interactions are pure heterogeneity. LLM x country columns sum to zero
(weighted) over countries; with regions, a country's deviation is its region's plus its own.
**Centred** where the data pin each level down (21 LLMs with ~1,400 opening ratings
each, conversation types; GBR and USA under "mixed"), **non-centred** where the prior
dominates (countries, demographic levels, LLM x level cells). The spec's
``[parameterisation]`` table can override any family.

Likelihoods (collapsed exactly onto the cells of :mod:`prism_stats.model.design`):

- ``gaussian``: ``y ~ Normal(eta, sigma)`` on the 1-100 scale;
- ``censored``: a latent ``Normal(eta, sigma)`` observed on [1, 100], with the ratings piled
  at 1 and at 100 treated as left/right censored.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .design import HIGH, LOW, Design
from .effects import (
    centering,
    data_container,
    effect,
    embedding_name,
    is_raw,
    scale,
    scaled_interaction,
    unpooled_name,
    weighted_zero_sum_basis,
    weights_name,
)
from .marginal import rater_marginal
from .packing import pack, register, unused
from .spec import ModelSpec


def effect_names(design: Design, spec: ModelSpec) -> dict[str, tuple[str, ...]]:
    """The effect variables the model has for this design, with their dims.

    Factors with a single observed level carry no effect (it would be identically zero).
    """
    out: dict[str, tuple[str, ...]] = {"participant_effect": ("participant",),
                                       "llm_effect": ("llm",)}
    if len(design.coords["country"]) > 1:
        out["country_effect"] = ("country",)
    if spec.conversation_type and len(design.coords["conversation_type"]) > 1:
        out["ctype_effect"] = ("conversation_type",)
    for f in spec.demographics:
        if len(design.coords[f]) > 1:
            out[f"{f}_effect"] = (f,)
    for f in spec.llm_interactions:
        if len(design.coords[f]) > 1:
            out[f"llm_{f}"] = ("llm", f)
    # .get: a design built for a spec without residence terms has no "residence" dim
    if spec.llm_residence == "uk_us_rest" and len(design.coords.get("residence", ())) > 1:
        out["llm_residence"] = ("llm", "residence")
    elif spec.llm_residence != "none" and len(design.coords["country"]) > 1:
        if "region" in design.coords and len(design.coords["region"]) > 1:
            out["llm_region"] = ("llm", "region")
        out["llm_country"] = ("llm", "country")
    if spec.llm_ctype and len(design.coords["conversation_type"]) > 1:
        out["llm_ctype"] = ("llm", "conversation_type")
    return out


def unpooled_levels(design: Design, spec: ModelSpec) -> np.ndarray | None:
    """Which country levels have their own prior (``spec.unpooled_countries``), or None.

    None when the spec names none, so the graph of such a spec is unchanged; otherwise a
    flag per level (all False when the data have none of the named levels).
    """
    if not spec.unpooled_countries:
        return None
    named = set(spec.unpooled_countries)
    return np.array([str(level) in named for level in design.coords["country"]])


def model_data(design: Design, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Every array the graph of ``build_model(design, spec)`` takes from the data, by name.

    These are logical arrays; the model holds them packed in a few ``pm.Data`` containers
    (:func:`container_data`). Everything the graph takes from the data is here: per-cell
    index arrays (``llm_idx``, ``country_idx``, ``<factor>_idx``, ...), the rating weights and
    weighted zero-sum embeddings of the participant-level factors (``<factor>_weights``,
    ``<factor>_embed``), the block indices of the marginal likelihood (``pair_idx``,
    ``pair_participant`` / ``cell_participant``) and the cell statistics (``cell_n``,
    ``cell_mean``, ``cell_ss``, ...).
    """
    cells = design.cells
    effects = effect_names(design, spec)
    out: dict[str, np.ndarray] = {"llm_idx": cells["llm"].to_numpy()}
    marginalized = spec.param("participant") == "marginalized"
    if not marginalized:
        out["participant_idx"] = cells["participant"].to_numpy()
    factors = [f for f in spec.demographics if f"{f}_effect" in effects]
    factors += [f for f in spec.llm_interactions if f"llm_{f}" in effects and f not in factors]
    weighted = [f for f in spec.demographics if f"{f}_effect" in effects]
    per_llm = spec.pool("interaction") == "per_llm"
    weighted += [f for f in spec.llm_interactions if f"llm_{f}" in effects and not per_llm]
    if "country_effect" in effects:
        weighted.append("country")
    scaled = [f for f in spec.llm_interactions if f"llm_{f}" in effects and per_llm]
    scaled += [f for f in ("region", "country") if f"llm_{f}" in effects]
    for f in dict.fromkeys([*factors, *(["country"] if "country_effect" in effects else []), *scaled]):
        out[f"{f}_idx"] = design.cell_codes(f)
    for f in dict.fromkeys(weighted):
        out[embedding_name(f)] = weighted_zero_sum_basis(design.level_weights(f))[1]
    flags = unpooled_levels(design, spec) if "country_effect" in effects else None
    if flags is not None:
        free, _ = weighted_zero_sum_basis(design.level_weights("country"))
        out[unpooled_name("country")] = flags.astype(float)[free]
    for f in dict.fromkeys(scaled):
        out[weights_name(f)] = design.level_weights(f)
    if "llm_residence" in effects:
        out["residence_idx"] = design.cell_codes("residence")
        out[embedding_name("residence")] = weighted_zero_sum_basis(design.level_weights("residence"))[1]
    if "ctype_effect" in effects or "llm_ctype" in effects:
        out["ctype_idx"] = cells["conversation_type"].to_numpy()
    if spec.turns == "all" and cells["later"].any():
        out["later"] = cells["later"].to_numpy().astype(float)
    if marginalized:
        out["cell_n"] = cells["n"].to_numpy().astype(float)
        if spec.rater_llm:
            pair = cells["pair"].to_numpy()
            block_participant = np.zeros(int(pair.max()) + 1, dtype=np.int64)
            block_participant[pair] = cells["participant"].to_numpy()
            out["pair_idx"] = pair
            out["pair_participant"] = block_participant
        else:
            out["cell_participant"] = cells["participant"].to_numpy()
    elif spec.family == "gaussian":
        out["cell_n"] = cells["n"].to_numpy().astype(float)
        out["within_dof"] = np.asarray(float(cells["n"].sum() - len(cells)))
    out.update({k: np.asarray(v) for k, v in score_data(design, spec).items()})
    return out


def build_model(design: Design, spec: ModelSpec) -> pm.Model:
    """Build the PyMC rating model of *spec* on *design*.

    Every value taken from the data (:func:`model_data`) is a view of a ``pm.Data``
    container (:func:`container_data`), so the graph depends on the design only through
    its structure (level counts, the "mixed" partition, the censored family's interior
    block): one compiled model serves every dataset of the same structure.
    """
    cells = design.cells
    data = model_data(design, spec)
    coords = {**design.coords, "obs_cell": np.arange(len(cells))}
    effects = effect_names(design, spec)
    with pm.Model(coords=coords) as model:
        register(model, data, len(cells))

        def container(name: str):
            return data_container(name, data[name])

        m_idx = container("llm_idx")
        intercept = pm.Normal(
            "intercept", mu=spec.prior("intercept_mu"), sigma=spec.prior("intercept_sigma")
        )
        eta = intercept + pt.zeros_like(m_idx, dtype="float64")

        sigma_p = pm.HalfNormal("sigma_participant", sigma=spec.prior("sigma_participant"))
        marginalized = spec.param("participant") == "marginalized"
        if not marginalized:
            u = effect("participant_effect", sigma_p, ("participant",),
                       spec.param("participant") == "centered")
            eta = eta + u[container("participant_idx")]

        sigma_llm = scale("sigma_llm", spec, "llm", "sigma_llm")
        b = effect("llm_effect", sigma_llm, ("llm",), spec.param("llm") == "centered")
        eta = eta + b[m_idx]

        if "country_effect" in effects:
            s = scale("sigma_country", spec, "country", "sigma_country")
            c = effect("country_effect", s, ("country",), centering(spec.param("country")),
                       weights=design.level_weights("country"),
                       unpooled=unpooled_levels(design, spec), unpooled_scale=spec.prior("sigma_country"))
            eta = eta + c[container("country_idx")]

        if "ctype_effect" in effects:
            s = scale("sigma_ctype", spec, "conversation_type", "sigma_ctype")
            d = effect("ctype_effect", s, ("conversation_type",),
                       spec.param("conversation_type") == "centered")
            eta = eta + d[container("ctype_idx")]

        if "later" in data:
            turn = pm.Normal("turn_effect", mu=0.0, sigma=spec.prior("turn_effect"))
            eta = eta + turn * container("later")

        for f in spec.demographics:
            if f"{f}_effect" not in effects:
                continue
            s = scale(f"sigma_{f}", spec, "demographic", "sigma_demographic")
            e = effect(f"{f}_effect", s, (f,), centering(spec.param("demographic")),
                       weights=design.level_weights(f))
            eta = eta + e[container(f"{f}_idx")]

        per_llm = spec.pool("interaction") == "per_llm" and any(
            f"llm_{f}" in effects for f in spec.llm_interactions)
        if per_llm:
            # How much each LLM's appeal depends on who rates, shared by all factors.
            lam = pm.HalfNormal("llm_heterogeneity", sigma=1.0, dims="llm")
        for f in spec.llm_interactions:
            if f"llm_{f}" not in effects:
                continue
            if per_llm:
                s = pm.HalfNormal(f"sigma_llm_{f}", sigma=spec.prior("sigma_interaction"))
                g = scaled_interaction(f"llm_{f}", s, lam, f, design.level_weights(f))
            else:
                s = scale(f"sigma_llm_{f}", spec, "interaction", "sigma_interaction")
                g = effect(f"llm_{f}", s, ("llm", f), centering(spec.param("interaction")),
                           zerosum_axes=2, weights=design.level_weights(f))
            eta = eta + g[m_idx, container(f"{f}_idx")]

        eta = eta + _llm_residence(design, spec, effects, m_idx, container)
        if "llm_ctype" in effects:
            s = scale("sigma_llm_ctype", spec, "llm_ctype", "sigma_llm_ctype")
            g = effect("llm_ctype", s, ("llm", "conversation_type"), spec.param("llm_ctype") == "centered",
                       zerosum_axes=2)
            eta = eta + g[m_idx, container("ctype_idx")]

        sigma = pm.HalfNormal("sigma", sigma=spec.prior("sigma"))
        if marginalized:
            _marginal_gaussian_likelihood(spec, eta, sigma, sigma_p, container)
        elif spec.family == "gaussian":
            _gaussian_likelihood(eta, sigma, container)
        else:
            _censored_likelihood(eta, sigma, container, has_interior="interior_cells" in data)
    extra = unused(model)
    if extra:  # model_data and the graph must describe the same arrays
        raise RuntimeError(f"model_data gives arrays the model does not use: {sorted(extra)}")
    return model


def container_data(design: Design, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Values of the ``pm.Data`` containers of ``build_model(design, spec)``, by name.

    :func:`model_data` packed into the model's few containers
    (:mod:`prism_stats.model.packing`). A compiled model of one design refits another
    design of the same structure with ``compiled.with_data(**container_data(other, spec))``.
    """
    return pack(model_data(design, spec), design.n_cells)


def score_data(design: Design, spec: ModelSpec) -> dict[str, np.ndarray | float]:
    """Values of the logical arrays that carry the scores (not the design).

    A subset of :func:`model_data` (SBC replicates and bootstraps change only these; the
    containers to swap in are :func:`container_data` of the new design).
    """
    c = design.cells
    if spec.family == "gaussian" and spec.param("participant") == "marginalized":
        return {"cell_mean": c["mean"].to_numpy(dtype=float), "cell_ss": c["ss"].to_numpy(dtype=float)}
    if spec.family == "gaussian":
        return {"cell_mean": c["mean"].to_numpy(dtype=float), "within_ss": float(c["ss"].sum())}
    n_int = c["n_int"].to_numpy()
    has = np.flatnonzero(n_int > 0)
    out: dict[str, np.ndarray | float] = {
        "cell_n_low": c["n_low"].to_numpy(dtype=float),
        "cell_n_high": c["n_high"].to_numpy(dtype=float),
    }
    if len(has):
        out.update({
            "interior_cells": has.astype(np.int64),
            "cell_n_int": n_int[has].astype(float),
            "cell_mean_int": c["mean_int"].to_numpy(dtype=float)[has],
            "within_dof": float(n_int.sum() - len(has)),
            "within_ss": float(c["ss_int"].sum()),
        })
    return out


def _llm_residence(design: Design, spec: ModelSpec, effects: dict, m_idx, container):
    """LLM x region and LLM x country terms of the linear predictor.

    Both are non-centred and weighted-zero-sum by projection over their levels. Under
    ``pooling.llm_country = "per_country"`` every country's column has its own multiplier
    ``llm_country_scale ~ HalfNormal(1)`` of the common scale: a country whose raters rank
    the LLMs very differently (learnt from its own 21 deviations when it has many raters)
    is not shrunk toward the many countries that barely differ, while small countries stay
    prior-dominated.
    """
    out = 0.0
    if "llm_residence" in effects:
        # three levels (GBR, USA and the rest, the reference of the weighted zero-sum); the
        # scale is learnt from the UK and US deviations
        s = scale("sigma_llm_country", spec, "llm_country", "sigma_llm_country")
        g = effect("llm_residence", s, ("llm", "residence"), centering(spec.param("llm_residence")),
                   zerosum_axes=2,
                   weights=design.level_weights("residence"))
        out = out + g[m_idx, container("residence_idx")]
    if "llm_region" in effects:
        s = scale("sigma_llm_region", spec, "llm_country", "sigma_llm_region")
        g = scaled_interaction("llm_region", s, None, "region", design.level_weights("region"))
        out = out + g[m_idx, container("region_idx")]
    if "llm_country" in effects:
        per_country = spec.pool("llm_country") == "per_country"
        s = (pm.HalfNormal("sigma_llm_country", sigma=spec.prior("sigma_llm_country")) if per_country
             else scale("sigma_llm_country", spec, "llm_country", "sigma_llm_country"))
        col = pm.HalfNormal("llm_country_scale", sigma=1.0, dims="country") if per_country else None
        g = scaled_interaction("llm_country", s, None, "country", design.level_weights("country"),
                               col_scale=col)
        out = out + g[m_idx, container("country_idx")]
    return out


def _marginal_gaussian_likelihood(spec: ModelSpec, mu, sigma, tau, container) -> None:
    """Gaussian likelihood with participant (and rater x LLM) effects integrated out exactly.

    Blocks are participant x LLM pairs when the spec has ``rater_llm`` and observation cells
    otherwise (see :mod:`prism_stats.model.marginal`). Block and participant counts are
    taken from the data containers' shapes, not fixed in the graph.
    """
    model = pm.modelcontext(None)
    n_participants = model.dim_lengths["participant"]
    n_data = container("cell_n")
    ybar = container("cell_mean")
    ss = container("cell_ss")
    d = ybar - mu
    if spec.rater_llm:
        pair_idx = container("pair_idx")
        block_p = container("pair_participant")
        zeros = pt.zeros(block_p.shape[0])
        N = pt.inc_subtensor(zeros[pair_idx], n_data)
        R = pt.inc_subtensor(zeros[pair_idx], n_data * d)
        Q = pt.inc_subtensor(zeros[pair_idx], ss + n_data * d**2)
        omega = pm.HalfNormal("sigma_rater_llm", sigma=spec.prior("sigma_rater_llm"))
        omega2 = omega**2
    else:
        block_p = container("cell_participant")
        N, R, Q = n_data, n_data * d, ss + n_data * d**2
        omega2 = 0.0
    s2 = sigma**2
    if spec.rater_scale:
        zeta = pm.HalfNormal("rater_scale_sd", sigma=spec.prior("rater_scale_sd"))
        z = pm.Normal("rater_scale_z", 0.0, 1.0, dims="participant")
        log_scale = pm.Deterministic("rater_scale", zeta * z, dims="participant")
        s2 = s2 * pt.exp(2.0 * log_scale)[block_p]

    def to_participant(x):
        return pt.inc_subtensor(pt.zeros(n_participants)[block_p], x)

    loglik, _, _ = rater_marginal(N, R, Q, s2, omega2, tau**2, to_participant, pt.log, pt.log1p)
    pm.Potential("marginal_likelihood", pt.sum(loglik))


def _gaussian_likelihood(eta, sigma, container) -> None:
    n_data = container("cell_n")
    ybar = container("cell_mean")
    pm.Normal("score_mean", mu=eta, sigma=sigma / pt.sqrt(n_data), observed=ybar, dims="obs_cell")
    # The within-cell part of the likelihood depends on the data only through two totals;
    # the constant makes the total equal the individual ratings' log-likelihood exactly.
    dof = container("within_dof")
    ss = container("within_ss")
    const = -0.5 * dof * np.log(2 * np.pi) - 0.5 * pt.sum(pt.log(n_data))
    pm.Potential("within_cell", const - dof * pt.log(sigma) - ss / (2.0 * sigma**2))


def _censored_likelihood(eta, sigma, container, has_interior: bool) -> None:
    if has_interior:
        idx = container("interior_cells")
        n_data = container("cell_n_int")
        ybar = container("cell_mean_int")
        pm.Normal("score_mean_interior", mu=eta[idx], sigma=sigma / pt.sqrt(n_data),
                  observed=ybar)
        dof = container("within_dof")
        ss = container("within_ss")
        # computed from the data containers, so it stays exact when new data are swapped in
        const = -0.5 * dof * np.log(2 * np.pi) - 0.5 * pt.sum(pt.log(n_data))
        pm.Potential("within_cell", const - dof * pt.log(sigma) - ss / (2.0 * sigma**2))
    latent = pm.Normal.dist(mu=eta, sigma=sigma)
    n_low = container("cell_n_low")
    n_high = container("cell_n_high")
    pm.Potential("censored_low", pt.sum(n_low * pm.logcdf(latent, float(LOW))))
    pm.Potential("censored_high", pt.sum(n_high * pm.logccdf(latent, float(HIGH))))


__all__ = ["build_model", "container_data", "effect_names", "is_raw", "model_data", "score_data"]
