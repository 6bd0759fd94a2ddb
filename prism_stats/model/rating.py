"""The hierarchical rating model: PyMC graph, linear predictor and simulation.

Linear predictor of observation cell i (participant p, LLM m, conversation type t, turn
group g; the participant's country k and demographic levels a_f)::

    eta_i = intercept + participant_effect[p] + llm_effect[m] + country_effect[k]
            + ctype_effect[t] + turn_effect * g
            + sum_f demographic_effect_f[a_f] + sum_f llm_f[m, a_f]

Identification (documented choice per factor, ecosystem.md §B.3):

- every crossed effect is **sum-to-zero**, so no effect trades off with the intercept.
  LLM and conversation-type effects sum to zero with equal weights (balanced by design:
  ``llm_effect`` is the deviation from the average LLM). Participant-level factors
  (country, age, gender, ethnicity, ...) are unbalanced and have tiny levels ("Prefer not
  to say": 1-4 raters), so their effects sum to zero **weighted by their share of the
  ratings**: the intercept is then the rating-weighted grand mean, nearly orthogonal to
  every effect, instead of an equal-weight mean that leans on levels seen once. They are
  parameterised level by level (the heaviest level is the weighted balance of the others),
  so a tiny level is one uncorrelated coordinate for the sampler. On the PRISM-size
  synthetic data these two choices raised the worst bulk-ESS of the demographic effects
  from ~135 (equal-weight ``ZeroSumNormal``) to over 1,000 of 2,000 draws.
- LLM x demographic matrices are zero-sum over *both* axes (LLMs equally weighted,
  levels rating-weighted), so ``llm_effect`` is the LLM's average over the raters and the
  interaction is pure heterogeneity;
- **centred** for data-rich factors (21 LLMs with ~1,400 opening ratings each, conversation
  types), **non-centred** for sparse ones (LLM x level cells), participants **marginalized**
  out of the Gaussian likelihood in closed form (and redrawn from their exact conditional
  posterior), countries **non-centred** (most of the 38 have a handful of raters). A
  "mixed" option centres the countries holding >= 5% of the ratings: it raised the
  bulk-ESS of ``sigma_country`` from 320-375 to 460-600 of 2,000 draws on two seeds but
  diverged on another (16-81 divergences), so it is not the default. The spec's
  ``[parameterisation]`` table can override any family.

Likelihoods (both collapsed exactly onto the cells of :mod:`prism_stats.model.design`):

- ``gaussian``: ``y ~ Normal(eta, sigma)`` on the 1-100 scale;
- ``censored``: a latent ``Normal(eta, sigma)`` observed on [1, 100], with the ratings piled
  at 1 and at 100 treated as left/right censored.
"""

from __future__ import annotations

import re

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import sparse, special

from .design import HIGH, LOW, Design
from .spec import ModelSpec

#: Posterior variables that are sampler internals of the non-centred parameterisation.
RAW_SUFFIX = "_z"


def is_raw(name: str) -> bool:
    """Whether *name* is a sampler-internal raw variable (``x_z``, ``x_z_c``, ``x_z_nc``)."""
    return re.search(rf"{RAW_SUFFIX}(_n?c)?$", name) is not None


def _effect(name: str, scale, dims: tuple[str, ...], centered: bool, zerosum_axes: int = 1,
            weights: np.ndarray | None = None):
    """A zero-sum effect with scale *scale*, centred or non-centred.

    Without *weights*: ``ZeroSumNormal`` over the last ``zerosum_axes`` dims (equal
    weights). With *weights* (shares of the ratings per level of the last dim): the effect
    sums to zero **weighted** over that dim (and to zero with equal weights over the LLM
    dim of an interaction). It is parameterised by the levels themselves: every level but
    the heaviest is a free coordinate with prior Normal(0, scale), and the heaviest is
    ``-sum(w_l effect_l) / w_ref``. Keeping one coordinate per level matters for sampling:
    a level seen through one rater ("Prefer not to say") is then an uncorrelated,
    prior-dominated coordinate, instead of a direction mixed into every coordinate of the
    zero-sum transform (which left its bulk-ESS at ~200 of 2,000 draws).
    """
    if weights is None:
        if centered:
            return pm.ZeroSumNormal(name, sigma=scale, dims=dims, n_zerosum_axes=zerosum_axes)
        raw = pm.ZeroSumNormal(name + RAW_SUFFIX, sigma=1.0, dims=dims, n_zerosum_axes=zerosum_axes)
        return pm.Deterministic(name, scale * raw, dims=dims)

    model = pm.modelcontext(None)
    factor = dims[-1]
    w = np.asarray(weights, dtype=float)
    ref = int(np.argmax(w))
    free = [i for i in range(len(w)) if i != ref]
    free_dim = f"{factor}_free"
    if free_dim not in model.coords:
        model.add_coord(free_dim, [model.coords[factor][i] for i in free])
    # zero-sum over the LLM dim (first of two), none over the free levels
    raw_dims = (free_dim, dims[0]) if len(dims) == 2 else (free_dim,)
    if centered == "mixed":
        value_free = _mixed_levels(name, scale, factor, [model.coords[factor][i] for i in free],
                                   w[free] >= MIXED_MIN_SHARE, dims[0] if len(dims) == 2 else None)
    elif len(dims) == 2:
        raw = pm.ZeroSumNormal(name + RAW_SUFFIX, sigma=scale if centered else 1.0, dims=raw_dims,
                               n_zerosum_axes=1)
        value_free = raw if centered else scale * raw  # (free, llm)
    else:
        raw = pm.Normal(name + RAW_SUFFIX, 0.0, scale if centered else 1.0, dims=raw_dims)
        value_free = raw if centered else scale * raw  # (free,)
    w_free = pt.as_tensor_variable(w[free] / w[ref])
    value_ref = -pt.tensordot(w_free, value_free, axes=1)[None]  # (1, [llm])
    full = pt.concatenate([value_free, value_ref], axis=0)
    order = np.argsort(np.array(free + [ref]))  # back to the level order
    value = full[order]
    if len(dims) == 2:
        value = value.T
    return pm.Deterministic(name, value, dims=dims)


#: Under the "mixed" parameterisation, levels with at least this share of the ratings are
#: centred (their data pin them down), the others non-centred (the prior dominates).
MIXED_MIN_SHARE = 0.05


def _mixed_levels(name: str, scale, factor: str, labels: list, centred: np.ndarray,
                  llm_dim: str | None = None):
    """Per-level centred / non-centred coordinates of a hierarchical effect, in *labels* order.

    With *llm_dim*, each level is a column over LLMs that sums to zero (an interaction).
    """
    model = pm.modelcontext(None)
    parts, positions = [], []
    for flag, suffix in ((True, "c"), (False, "nc")):
        idx = np.flatnonzero(centred == flag)
        if not len(idx):
            continue
        dim = f"{factor}_free_{suffix}"
        if dim not in model.coords:
            model.add_coord(dim, [labels[i] for i in idx])
        raw_name, sd = f"{name}{RAW_SUFFIX}_{suffix}", scale if flag else 1.0
        if llm_dim is None:
            raw = pm.Normal(raw_name, 0.0, sd, dims=dim)
        else:
            raw = pm.ZeroSumNormal(raw_name, sigma=sd, dims=(dim, llm_dim), n_zerosum_axes=1)
        parts.append(raw if flag else scale * raw)
        positions.extend(idx)
    return pt.concatenate(parts, axis=0)[np.argsort(np.array(positions))]


def _scaled_interaction(name: str, scale, row_scale, factor: str, weights: np.ndarray):
    """LLM x level effect whose rows have their own scale multiplier (non-centred).

    ``scale * row_scale[m] * z[m, l]`` re-centred over LLMs (equal weights) and over levels
    (rating weights); the map from the zero-sum ``z`` stays injective.
    """
    raw = pm.ZeroSumNormal(name + RAW_SUFFIX, sigma=1.0, dims=("llm", factor), n_zerosum_axes=2)
    value = scale * row_scale[:, None] * raw
    value = value - value.mean(axis=0)
    w = pt.as_tensor_variable(np.asarray(weights, dtype=float))
    value = value - (value @ w)[:, None]
    return pm.Deterministic(name, value, dims=("llm", factor))


def _centering(parameterisation: str) -> bool | str:
    """``True`` (centred), ``False`` (non-centred) or ``"mixed"`` (per level, by data share)."""
    return "mixed" if parameterisation == "mixed" else parameterisation == "centered"


def _scale(name: str, spec: ModelSpec, family: str, prior_key: str):
    """The scale of an effect family: a HalfNormal hyperparameter, or the fixed prior scale."""
    if spec.pool(family) == "fixed":
        return spec.prior(prior_key)
    return pm.HalfNormal(name, sigma=spec.prior(prior_key))


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
    return out


def build_model(design: Design, spec: ModelSpec) -> pm.Model:
    """Build the PyMC rating model of *spec* on *design*.

    Data enter through ``pm.Data`` containers (``cell_mean``, ``within_ss``, ...), so a
    compiled model can be reused with new scores of the same design (SBC, bootstraps).
    """
    cells = design.cells
    n_cells = len(cells)
    coords = {**design.coords, "obs_cell": np.arange(n_cells)}
    effects = effect_names(design, spec)
    with pm.Model(coords=coords) as model:
        p_idx = pm.Data("participant_idx", cells["participant"].to_numpy(), dims="obs_cell")
        m_idx = pm.Data("llm_idx", cells["llm"].to_numpy(), dims="obs_cell")

        intercept = pm.Normal(
            "intercept", mu=spec.prior("intercept_mu"), sigma=spec.prior("intercept_sigma")
        )
        eta = intercept + pt.zeros(n_cells)

        sigma_p = pm.HalfNormal("sigma_participant", sigma=spec.prior("sigma_participant"))
        marginalized = spec.param("participant") == "marginalized"
        if not marginalized:
            u = _effect("participant_effect", sigma_p, ("participant",),
                        spec.param("participant") == "centered")
            eta = eta + u[p_idx]

        sigma_llm = _scale("sigma_llm", spec, "llm", "sigma_llm")
        b = _effect("llm_effect", sigma_llm, ("llm",), spec.param("llm") == "centered")
        eta = eta + b[m_idx]

        if "country_effect" in effects:
            s = _scale("sigma_country", spec, "country", "sigma_country")
            c = _effect("country_effect", s, ("country",), _centering(spec.param("country")),
                        weights=design.level_weights("country"))
            eta = eta + c[design.cell_codes("country")]

        if "ctype_effect" in effects:
            t_idx = pm.Data("ctype_idx", cells["conversation_type"].to_numpy(), dims="obs_cell")
            s = _scale("sigma_ctype", spec, "conversation_type", "sigma_ctype")
            d = _effect("ctype_effect", s, ("conversation_type",),
                        spec.param("conversation_type") == "centered")
            eta = eta + d[t_idx]

        if spec.turns == "all" and cells["later"].any():
            later = pm.Data("later", cells["later"].to_numpy().astype(float), dims="obs_cell")
            turn = pm.Normal("turn_effect", mu=0.0, sigma=spec.prior("turn_effect"))
            eta = eta + turn * later

        for f in spec.demographics:
            if f"{f}_effect" not in effects:
                continue
            s = _scale(f"sigma_{f}", spec, "demographic", "sigma_demographic")
            e = _effect(f"{f}_effect", s, (f,), _centering(spec.param("demographic")),
                        weights=design.level_weights(f))
            eta = eta + e[design.cell_codes(f)]

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
                g = _scaled_interaction(f"llm_{f}", s, lam, f, design.level_weights(f))
            else:
                s = _scale(f"sigma_llm_{f}", spec, "interaction", "sigma_interaction")
                g = _effect(f"llm_{f}", s, ("llm", f), _centering(spec.param("interaction")),
                            zerosum_axes=2, weights=design.level_weights(f))
            eta = eta + g[m_idx, design.cell_codes(f)]

        sigma = pm.HalfNormal("sigma", sigma=spec.prior("sigma"))
        if marginalized:
            _marginal_gaussian_likelihood(cells, len(design.coords["participant"]), p_idx, eta,
                                          sigma, sigma_p)
        elif spec.family == "gaussian":
            _gaussian_likelihood(cells, eta, sigma)
        else:
            _censored_likelihood(cells, eta, sigma)
    return model


def _marginal_gaussian_likelihood(cells, n_participants, p_idx, mu, sigma, tau) -> None:
    """Gaussian likelihood with iid participant effects Normal(0, tau) integrated out.

    A participant's n_p ratings are jointly normal with covariance sigma^2 I + tau^2 11',
    whose log-density needs only three per-participant sums of the residuals
    d = ybar - mu of their cells: n_p, r_p = sum n d, and sum (SS + n d^2):

        log p = -n_p/2 log(2 pi sigma^2) - 1/2 log(1 + n_p tau^2/sigma^2)
                - [sum(SS + n d^2) - tau^2/(sigma^2 + n_p tau^2) r_p^2] / (2 sigma^2)
    """
    n = cells["n"].to_numpy().astype(float)
    n_data = pm.Data("cell_n", n, dims="obs_cell")
    ybar = pm.Data("cell_mean", cells["mean"].to_numpy(), dims="obs_cell")
    ss = pm.Data("within_ss", float(cells["ss"].sum()))
    n_per = np.bincount(cells["participant"].to_numpy(), weights=n, minlength=n_participants)
    n_p = pm.Data("participant_n", n_per, dims="participant")
    d = ybar - mu
    r = pt.zeros(n_participants)
    r = pt.inc_subtensor(r[p_idx], n_data * d)
    s2, t2 = sigma**2, tau**2
    loglik = (
        -0.5 * pt.sum(n_p) * pt.log(2 * np.pi * s2)
        - 0.5 * pt.sum(pt.log1p(n_p * t2 / s2))
        - (ss + pt.sum(n_data * d**2) - pt.sum(t2 / (s2 + n_p * t2) * r**2)) / (2 * s2)
    )
    pm.Potential("marginal_likelihood", loglik)


def draw_participant_effects(params: xr.Dataset, design: Design, spec: ModelSpec,
                             rng: np.random.Generator, chunk: int = 250) -> xr.DataArray:
    """Draw participant effects from their exact conditional posterior (Gaussian family).

    Given the other parameters, u_p | y ~ Normal(m_p, v_p) with
    v_p = 1 / (n_p/sigma^2 + 1/tau^2) and m_p = v_p * sum_c n_c (ybar_c - mu_c) / sigma^2,
    so pairing one draw of u with each posterior draw gives draws from the joint posterior.
    """
    S = n_samples(params)
    c = design.cells
    p = c["participant"].to_numpy()
    n = c["n"].to_numpy().astype(float)
    n_p = len(design.coords["participant"])
    n_per = np.bincount(p, weights=n, minlength=n_p)
    to_p = sparse.csr_matrix((np.ones(len(p)), (p, np.arange(len(p)))), shape=(n_p, len(p)))
    sigma = stacked(params, "sigma")
    tau = stacked(params, "sigma_participant")
    out = np.empty((S, n_p))
    for start in range(0, S, chunk):
        sel = slice(start, min(start + chunk, S))
        mu = linear_predictor(params, design, spec, sel, participant=False)
        r = (to_p @ (n * (c["mean"].to_numpy() - mu)).T).T
        s2, t2 = sigma[sel, None] ** 2, tau[sel, None] ** 2
        var = 1.0 / (n_per / s2 + 1.0 / t2)
        out[sel] = var * r / s2 + np.sqrt(var) * rng.standard_normal(var.shape)
    dims = [d for d in ("chain", "draw") if d in params.sizes]
    return xr.DataArray(
        out.reshape(*[params.sizes[d] for d in dims], n_p),
        dims=[*dims, "participant"],
        coords={**{d: params[d].values for d in dims}, "participant": design.coords["participant"]},
        name="participant_effect",
    )


def _gaussian_likelihood(cells, eta, sigma) -> None:
    n = cells["n"].to_numpy().astype(float)
    n_data = pm.Data("cell_n", n, dims="obs_cell")
    ybar = pm.Data("cell_mean", cells["mean"].to_numpy(), dims="obs_cell")
    pm.Normal("score_mean", mu=eta, sigma=sigma / pt.sqrt(n_data), observed=ybar, dims="obs_cell")
    # The within-cell part of the likelihood depends on the data only through two totals;
    # the constant makes the total equal the individual ratings' log-likelihood exactly.
    dof = pm.Data("within_dof", float(n.sum() - len(n)))
    ss = pm.Data("within_ss", float(cells["ss"].sum()))
    const = -0.5 * dof * np.log(2 * np.pi) - 0.5 * pt.sum(pt.log(n_data))
    pm.Potential("within_cell", const - dof * pt.log(sigma) - ss / (2.0 * sigma**2))


def _censored_likelihood(cells, eta, sigma) -> None:
    n_int = cells["n_int"].to_numpy()
    has_int = np.flatnonzero(n_int > 0)
    if len(has_int):
        idx = pm.Data("interior_cells", has_int)
        n_data = pm.Data("cell_n_int", n_int[has_int].astype(float))
        ybar = pm.Data("cell_mean_int", cells["mean_int"].to_numpy()[has_int])
        pm.Normal("score_mean_interior", mu=eta[idx], sigma=sigma / pt.sqrt(n_data),
                  observed=ybar)
        dof = pm.Data("within_dof", float(n_int.sum() - len(has_int)))
        ss = pm.Data("within_ss", float(cells["ss_int"].sum()))
        # computed from the data containers, so it stays exact when new data are swapped in
        const = -0.5 * dof * np.log(2 * np.pi) - 0.5 * pt.sum(pt.log(n_data))
        pm.Potential("within_cell", const - dof * pt.log(sigma) - ss / (2.0 * sigma**2))
    latent = pm.Normal.dist(mu=eta, sigma=sigma)
    n_low = pm.Data("cell_n_low", cells["n_low"].to_numpy().astype(float), dims="obs_cell")
    n_high = pm.Data("cell_n_high", cells["n_high"].to_numpy().astype(float), dims="obs_cell")
    pm.Potential("censored_low", pt.sum(n_low * pm.logcdf(latent, float(LOW))))
    pm.Potential("censored_high", pt.sum(n_high * pm.logccdf(latent, float(HIGH))))


# --- numpy side: the same model evaluated on posterior (or true, or prior) parameters ----

def stacked(params: xr.Dataset, name: str) -> np.ndarray:
    """Variable *name* as an array with the sample dims flattened first: (S, ...)."""
    da = params[name]
    sample_dims = [d for d in ("chain", "draw") if d in da.dims]
    other = [d for d in da.dims if d not in sample_dims]
    return da.transpose(*sample_dims, *other).values.reshape((-1, *[da.sizes[d] for d in other]))


def n_samples(params: xr.Dataset) -> int:
    """Number of (chain, draw) samples in *params*."""
    return int(np.prod([params.sizes[d] for d in ("chain", "draw") if d in params.sizes]))


def linear_predictor(params: xr.Dataset, design: Design, spec: ModelSpec,
                     samples: slice | np.ndarray | None = None,
                     participant: bool = True) -> np.ndarray:
    """Linear predictor of every observation cell: array (S, obs_cell).

    *params* holds the model's variables with ``chain``/``draw`` dims (a posterior, a
    prior sample, or the synthetic truth with one chain and one draw). *samples* selects
    flattened samples (to work in chunks). ``participant=False`` leaves the participant
    effect out (the mean of a new rater with the same attributes).
    """
    sel = slice(None) if samples is None else samples
    cells = design.cells
    p = cells["participant"].to_numpy()
    m = cells["llm"].to_numpy()
    eta = stacked(params, "intercept")[sel][:, None] + stacked(params, "llm_effect")[sel][:, m]
    if participant:
        eta = eta + stacked(params, "participant_effect")[sel][:, p]
    plev = design.participant_levels
    if "country_effect" in params:
        eta += stacked(params, "country_effect")[sel][:, plev["country"].to_numpy()[p]]
    if "ctype_effect" in params:
        eta += stacked(params, "ctype_effect")[sel][:, cells["conversation_type"].to_numpy()]
    if "turn_effect" in params and spec.turns == "all":
        eta += stacked(params, "turn_effect")[sel][:, None] * cells["later"].to_numpy()[None, :]
    for f in spec.demographics:
        if f"{f}_effect" in params:
            eta += stacked(params, f"{f}_effect")[sel][:, plev[f].to_numpy()[p]]
    for f in spec.llm_interactions:
        if f"llm_{f}" in params:
            eta += stacked(params, f"llm_{f}")[sel][:, m, plev[f].to_numpy()[p]]
    return eta


def cell_loglik(eta: np.ndarray, sigma: np.ndarray, design: Design, family: str) -> np.ndarray:
    """Full log-likelihood of every observation cell's ratings: (S, obs_cell).

    The sum over cells equals the log-likelihood of the individual ratings exactly
    (constants included).
    """
    c = design.cells
    s = sigma[:, None]
    log2pi = np.log(2.0 * np.pi)
    if family == "gaussian":
        n, ybar, ss = (c[k].to_numpy()[None, :] for k in ("n", "mean", "ss"))
        return -0.5 * n * log2pi - n * np.log(s) - (ss + n * (ybar - eta) ** 2) / (2 * s**2)
    n, ybar, ss = (c[k].to_numpy()[None, :] for k in ("n_int", "mean_int", "ss_int"))
    ll = -0.5 * n * log2pi - n * np.log(s) - (ss + n * (ybar - eta) ** 2) / (2 * s**2)
    ll += c["n_low"].to_numpy()[None, :] * special.log_ndtr((LOW - eta) / s)
    ll += c["n_high"].to_numpy()[None, :] * special.log_ndtr((eta - HIGH) / s)
    return ll


#: Gauss-Hermite nodes for integrating a participant effect out of the censored likelihood.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(24)


def participant_loglik(params: xr.Dataset, design: Design, spec: ModelSpec,
                       chunk: int = 100) -> xr.DataArray:
    """Log-likelihood of each participant's ratings with their own effect integrated out.

    Returns DataArray ``score`` (chain, draw, participant). This is the predictive density
    of a *new rater* with the participant's attributes, i.e. the quantity that
    leave-one-participant-out cross-validation needs; conditioning on the participant's
    own effect instead would make PSIS-LOO unreliable (every participant's data dominate
    their own parameter). It also keeps storage at S x participants (24 MB at 2,000 draws
    and 1,500 participants) instead of S x ratings.

    Gaussian family: closed form (the ratings are jointly normal with compound-symmetric
    covariance sigma^2 I + sigma_participant^2 11'). Censored family: adaptive
    Gauss-Hermite quadrature (24 nodes) around the Gaussian approximation.
    """
    S = n_samples(params)
    sigma = stacked(params, "sigma")
    tau = stacked(params, "sigma_participant")
    c = design.cells
    p = c["participant"].to_numpy()
    n_p = len(design.coords["participant"])
    # Cell -> participant indicator, so per-participant sums are one sparse product.
    to_p = sparse.csr_matrix((np.ones(len(p)), (np.arange(len(p)), p)), shape=(len(p), n_p)).T.tocsr()

    def per_participant(x: np.ndarray) -> np.ndarray:  # (s, cells) -> (s, participants)
        return (to_p @ x.T).T

    out = np.empty((S, n_p))
    for start in range(0, S, chunk):
        sel = slice(start, min(start + chunk, S))
        mu = linear_predictor(params, design, spec, sel, participant=False)
        s2 = sigma[sel, None] ** 2
        t2 = tau[sel, None] ** 2
        if spec.family == "gaussian":
            n, ybar, ss = (c[k].to_numpy()[None, :] for k in ("n", "mean", "ss"))
            n_tot = per_participant(np.broadcast_to(n, mu.shape).astype(float))
            r_sum = per_participant(n * (ybar - mu))
            r_sq = per_participant(ss + n * (ybar - mu) ** 2)
            out[sel] = (-0.5 * n_tot * np.log(2 * np.pi * s2) - 0.5 * np.log1p(n_tot * t2 / s2)
                        - (r_sq - t2 / (s2 + n_tot * t2) * r_sum**2) / (2 * s2))
        else:
            # Centre and scale the quadrature on the interior ratings' Gaussian posterior of u.
            n_int, ybar = c["n_int"].to_numpy()[None, :], c["mean_int"].to_numpy()[None, :]
            prec = per_participant(np.broadcast_to(n_int, mu.shape).astype(float)) / s2 + 1.0 / t2
            centre = per_participant(n_int * (ybar - mu)) / s2 / prec
            scale = 1.0 / np.sqrt(prec)
            terms = []
            for z, w in zip(_GH_NODES, _GH_WEIGHTS, strict=True):
                u = centre + scale * z  # (s, participants)
                ll = per_participant(cell_loglik(mu + u[:, p], sigma[sel], design, "censored"))
                log_prior = -0.5 * np.log(2 * np.pi * t2) - u**2 / (2 * t2)
                # importance ratio against the standard-normal weight of hermegauss
                terms.append(np.log(w) + ll + log_prior + 0.5 * z**2 + np.log(scale))
            out[sel] = np.logaddexp.reduce(np.stack(terms), axis=0)
    dims = [d for d in ("chain", "draw") if d in params.sizes]
    return xr.DataArray(
        out.reshape(*[params.sizes[d] for d in dims], n_p),
        dims=[*dims, "participant"],
        coords={"participant": design.coords["participant"]},
        name="score",
    )


def simulate_cells(params: xr.Dataset, design: Design, spec: ModelSpec,
                   rng: np.random.Generator, samples: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Simulate every cell's ratings from the model: sufficient statistics per sample.

    Returns a dict of arrays (S, obs_cell): ``mean``, ``ss`` (Gaussian; unbounded ratings)
    and, for the censored family, ``n_low``, ``n_high``, ``n_int``, ``mean_int``,
    ``ss_int`` of the clipped ratings. Individual ratings are drawn only where the
    censored family needs them; Gaussian cell statistics are drawn from their exact
    sampling distributions (mean ~ Normal, SS ~ sigma^2 chi^2_{n-1}).
    """
    sel = samples if samples is not None else np.arange(n_samples(params))
    eta = linear_predictor(params, design, spec, sel)
    sigma = stacked(params, "sigma")[sel][:, None]
    n = design.cells["n"].to_numpy()[None, :]
    if spec.family == "gaussian":
        mean = eta + sigma / np.sqrt(n) * rng.standard_normal(eta.shape)
        ss = sigma**2 * rng.chisquare(np.maximum(n - 1, 1e-12), size=eta.shape) * (n > 1)
        return {"mean": mean, "ss": ss}
    # Censored: draw individual ratings (cells are small), clip, and re-collapse.
    nmax = int(n.max())
    draws = eta[..., None] + sigma[..., None] * rng.standard_normal((*eta.shape, nmax))
    valid = np.arange(nmax)[None, None, :] < n[..., None]
    low = valid & (draws <= LOW)
    high = valid & (draws >= HIGH)
    inner = valid & ~low & ~high
    n_int = inner.sum(-1)
    tot = np.where(inner, draws, 0.0).sum(-1)
    sq = np.where(inner, draws**2, 0.0).sum(-1)
    mean_int = np.where(n_int > 0, tot / np.maximum(n_int, 1), 0.0)
    return {
        "n_low": low.sum(-1),
        "n_high": high.sum(-1),
        "n_int": n_int,
        "mean_int": mean_int,
        "ss_int": np.maximum(sq - n_int * mean_int**2, 0.0),
    }


def simulate_ratings(params: xr.Dataset, design: Design, spec: ModelSpec,
                     rng: np.random.Generator, sample: int = 0) -> np.ndarray:
    """Individual replicated ratings of one sample, in cell order (length = n_ratings).

    Gaussian ratings are unbounded (that is the model); censored ones are clipped to
    [1, 100]. Used for score-distribution posterior/prior predictive checks.
    """
    eta = linear_predictor(params, design, spec, np.array([sample]))[0]
    sigma = float(stacked(params, "sigma")[sample])
    n = design.cells["n"].to_numpy()
    y = np.repeat(eta, n) + sigma * rng.standard_normal(int(n.sum()))
    if spec.family == "censored":
        y = np.clip(y, LOW, HIGH)
    return y
