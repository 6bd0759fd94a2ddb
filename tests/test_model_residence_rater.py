"""LLM x residence effects and rater terms enter the likelihood exactly.

The spec options ``llm_residence`` (UK / US / rest, or every country nested in regions), ``llm_ctype``, ``rater_llm`` (rater x
LLM taste integrated out) and ``rater_scale`` (heteroscedastic raters) are checked against
a brute-force multivariate normal of the individual ratings, and the identification
constraints of the new effects are checked at a random point.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import xarray as xr
from scipy import integrate, stats
from test_model_likelihood import _individual, _loglik_terms, _params, _point_values
from tidy_sim import simulate_tidy

from prism_stats.model import build_design, build_model, load_spec
from prism_stats.model.predict import (
    draw_participant_effects,
    linear_predictor,
    participant_loglik,
    participant_posterior,
)


@pytest.fixture(scope="module")
def small():
    part, rat, truth = simulate_tidy(30, 14, seed=21)
    return part, rat, truth


def _spec(**effects):
    base = {"llm_residence": "region", "llm_ctype": True, "rater_llm": True, "rater_scale": True}
    base.update(effects)
    return load_spec("ratings").replace(**base)


def _dense_loglik(design, rat, part, spec, values, params, scales=True, only=None):
    """Sum over participants (or participant *only*) of the multivariate-normal log-density
    of their ratings, and the per-participant terms."""
    mu = linear_predictor(params, design, spec, participant=False)[0]
    cell, y = _individual(design, rat, part, spec)
    owner = design.cells["participant"].to_numpy()[cell]
    llm = design.cells["llm"].to_numpy()[cell]
    t2 = values["sigma_participant"] ** 2
    w2 = values.get("sigma_rater_llm", 0.0) ** 2
    total = 0.0
    per_participant = []
    for p in np.unique(owner) if only is None else [only]:
        sel = owner == p
        s2 = values["sigma"] ** 2 * (np.exp(2 * values["rater_scale"][p]) if scales and "rater_scale" in values else 1.0)
        same_llm = (llm[sel][:, None] == llm[sel][None, :]).astype(float)
        cov = s2 * np.eye(sel.sum()) + t2 + w2 * same_llm
        ll = stats.multivariate_normal.logpdf(y[sel], mu[cell[sel]], cov)
        per_participant.append(ll)
        total += ll
    return total, np.array(per_participant)


@pytest.mark.parametrize("pooling", ["partial", "per_country"])
def test_residence_and_ctype_effects_are_identified(small, pooling):
    """LLM x country / region columns sum to zero over LLMs and, rating-weighted, over
    their levels; every country (GBR and USA included) has its own non-zero column."""
    part, rat, _ = small
    spec = _spec(rater_llm=False, rater_scale=False, pooling={"llm_country": pooling})
    design = build_design((part, rat), spec)
    assert design.coords["region"] == ["Americas", "Europe", "Africa"]
    model = build_model(design, spec)
    assert ("llm_country_scale" in model.named_vars) == (pooling == "per_country")
    _, values = _point_values(model, 7)
    for name, level in (("llm_country", "country"), ("llm_region", "region")):
        x = np.asarray(values[name])  # (llm, level)
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-10)
        np.testing.assert_allclose(x @ design.level_weights(level), 0, atol=1e-10)
        assert np.abs(x).min(axis=0).max() > 1e-4
    ctype = np.asarray(values["llm_ctype"])
    np.testing.assert_allclose(ctype.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(ctype.mean(axis=1), 0, atol=1e-10)


def test_uk_us_rest_residence_effect(small):
    """LLM x {GBR, USA, rest}: double-centred (rest is the weighted zero-sum's reference, so
    GBR and USA keep explicit priors) and it enters the likelihood exactly."""
    part, rat, _ = small
    spec = _spec(llm_residence="uk_us_rest", rater_llm=False, rater_scale=False, llm_ctype=False)
    design = build_design((part, rat), spec)
    assert design.coords["residence"] == ["GBR", "USA", "rest"]
    rest = design.participant_levels["residence"].to_numpy() == 2
    countries = np.array(design.coords["country"])[design.participant_levels["country"].to_numpy()]
    assert set(countries[rest]) == {"CAN", "ZAF"}
    model = build_model(design, spec)
    assert "llm_country" not in model.named_vars and "llm_region" not in model.named_vars
    point, values = _point_values(model, 17)
    x = np.asarray(values["llm_residence"])
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(x @ design.level_weights("residence"), 0, atol=1e-10)
    params = _params(values, model, design)
    expected, _ = _dense_loglik(design, rat, part, spec, values, params)
    assert _loglik_terms(model, point) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("rater_llm,rater_scale", [(True, True), (True, False), (False, True)])
def test_rater_terms_equal_multivariate_normal(small, rater_llm, rater_scale):
    part, rat, _ = small
    spec = _spec(rater_llm=rater_llm, rater_scale=rater_scale)
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    assert ("sigma_rater_llm" in model.named_vars) == rater_llm
    assert ("rater_scale" in model.named_vars) == rater_scale
    point, values = _point_values(model, 9)
    params = _params(values, model, design)
    expected, per_p = _dense_loglik(design, rat, part, spec, values, params)
    assert _loglik_terms(model, point) == pytest.approx(expected, rel=1e-10)
    if not rater_scale:  # LOO terms: the same quantity participant by participant
        ll = participant_loglik(params, design, spec).values[0, 0]
        np.testing.assert_allclose(ll, per_p, rtol=1e-10)


def test_loo_term_integrates_a_new_raters_scale(small):
    """With heteroscedastic raters the LOO term is the predictive density of a new rater
    with the participant's attributes: the rater's own scale is integrated over its
    population distribution (quadrature), not fixed at the fitted value."""
    part, rat, _ = small
    spec = _spec()
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    _, values = _point_values(model, 11)
    params = _params(values, model, design)
    ll = participant_loglik(params, design, spec).values[0, 0]
    zeta = float(values["rater_scale_sd"])
    for p in range(3):
        def density(lam, p=p):
            v = dict(values)
            v["rater_scale"] = np.full_like(np.asarray(values["rater_scale"]), lam)
            _, per_p = _dense_loglik(design, rat, part, spec, v, params)
            return np.exp(per_p[p] - ll[p]) * stats.norm.pdf(lam, 0, zeta)

        val, _ = integrate.quad(density, -6 * zeta, 6 * zeta, limit=100)
        assert np.log(val) == pytest.approx(0.0, abs=2e-3)


def test_participant_redraws_match_the_conditional_posterior(small):
    """u_p | y, theta is normal with mean G/P and precision P: check against the dense
    Gaussian conditional of one participant."""
    part, rat, _ = small
    spec = _spec()
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    _, values = _point_values(model, 13)
    params = _params(values, model, design)
    draws = np.stack([draw_participant_effects(params, design, spec, np.random.default_rng(s)).values[0, 0]
                      for s in range(400)])
    mu = linear_predictor(params, design, spec, participant=False)[0]
    cell, y = _individual(design, rat, part, spec)
    owner = design.cells["participant"].to_numpy()[cell]
    llm = design.cells["llm"].to_numpy()[cell]
    p = 0
    sel = owner == p
    s2 = values["sigma"] ** 2 * np.exp(2 * values["rater_scale"][p])
    cov = s2 * np.eye(sel.sum()) + values["sigma_rater_llm"] ** 2 * (llm[sel][:, None] == llm[sel][None, :])
    t2 = values["sigma_participant"] ** 2
    inv = np.linalg.inv(cov)
    precision = 1 / t2 + inv.sum()
    mean = (inv @ (y[sel] - mu[cell[sel]])).sum() / precision
    assert draws[:, p].mean() == pytest.approx(mean, abs=4 / np.sqrt(precision * 400))
    assert draws[:, p].var() == pytest.approx(1 / precision, rel=0.2)


@pytest.mark.parametrize("residence", ["uk_us_rest", "region"])
def test_residence_terms_take_every_data_value_from_containers(small, residence):
    """A compiled model is reused for another release of the same structure
    (``with_data(**container_data(...))``): so every container of the graph is in
    ``container_data``, and a model with another release's data swapped in has exactly the log
    density of the model built on that release (residence codes and weights included)."""
    import pymc as pm

    from prism_stats.model.compiled import structure_key
    from prism_stats.model.rating import container_data

    spec = _spec(llm_residence=residence, rater_llm=False, rater_scale=False)
    part, rat, _ = small
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    assert {v.name for v in model.data_vars} == set(container_data(design, spec))
    # another release of the same structure: the participants' residences permuted
    perm = np.random.default_rng(5).permutation(len(part))
    other_part = part.copy()
    other_part["reside_country"] = part["reside_country"].to_numpy()[perm]
    other = build_design((other_part, rat), spec)
    assert structure_key(other, spec) == structure_key(design, spec)
    assert not np.array_equal(other.cell_codes("country"), design.cell_codes("country"))
    point, _ = _point_values(model, 3)
    with model:
        pm.set_data(container_data(other, spec))
    rebuilt = build_model(other, spec)
    assert model.compile_logp()(point) == pytest.approx(rebuilt.compile_logp()(point), rel=1e-12)


@pytest.mark.parametrize("rater_llm,rater_scale", [(True, True), (False, False)])
def test_one_pass_posterior_is_bit_identical_to_the_two_calls(small, rater_llm, rater_scale):
    """``participant_posterior`` (what ``fit`` runs) gives the same bits as
    ``draw_participant_effects`` + ``participant_loglik``, for any chunk of samples and any
    number of numba threads (each block is summed by one thread in cell order)."""
    part, rat, _ = small
    spec = _spec(rater_llm=rater_llm, rater_scale=rater_scale)
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    points = [_point_values(model, seed)[1] for seed in range(6)]  # 2 chains x 3 draws
    params = xr.Dataset({name: (("chain", "draw", *model.named_vars_to_dims.get(name, ())),
                                np.stack([np.asarray(v[name]) for v in points]).reshape(2, 3, *np.shape(points[0][name])))
                         for name in points[0] if name != "participant_effect"}, coords=dict(design.coords))
    effects, ll = participant_posterior(params, design, spec, np.random.default_rng(4))
    assert effects.dims == ll.dims == ("chain", "draw", "participant")
    assert np.isfinite(ll.values).all() and effects.values.std() > 0
    before = numba.get_num_threads()
    try:
        for threads in {1, min(2, numba.config.NUMBA_NUM_THREADS)}:
            numba.set_num_threads(threads)
            separate = draw_participant_effects(params, design, spec, np.random.default_rng(4), chunk=4)
            np.testing.assert_array_equal(separate.values, effects.values, err_msg=f"{threads} threads")
            np.testing.assert_array_equal(participant_loglik(params, design, spec, chunk=5).values, ll.values,
                                          err_msg=f"{threads} threads")
    finally:
        numba.set_num_threads(before)
