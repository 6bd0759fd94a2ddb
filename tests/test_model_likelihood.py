"""The collapsed likelihoods equal the likelihood of the individual ratings exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate, stats
from tidy_sim import simulate_tidy

from prism_stats.model import build_design, build_model, load_spec
from prism_stats.model.predict import linear_predictor, participant_loglik


@pytest.fixture(scope="module")
def small():
    part, rat, truth = simulate_tidy(40, 12, seed=11)
    # Put real slider piles in: clip to 1..100 and force some exact 1s and 100s.
    rat = rat.copy()
    rat["score"] = np.clip(np.round(rat["score"] + np.where(np.arange(len(rat)) % 17 == 0, 60, 0)
                                    - np.where(np.arange(len(rat)) % 23 == 0, 90, 0)), 1, 100)
    return part, rat, truth


def _point_values(model, seed):
    """Evaluate every named variable of *model* at a random point (as a Dataset)."""
    rng = np.random.default_rng(seed)
    point = model.initial_point()
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    names = [v.name for v in model.free_RVs + model.deterministics]
    # Replace random variables by their value variables, so outputs are evaluated at the point.
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    values = dict(zip(names, fn(point), strict=True))
    return point, values


def _params(values, model, design):
    data_vars = {}
    for name, v in values.items():
        dims = model.named_vars_to_dims.get(name, ())
        data_vars[name] = (("chain", "draw", *dims), np.asarray(v)[None, None])
    coords = {k: v for k, v in design.coords.items()}
    return xr.Dataset(data_vars, coords=coords)


def _loglik_terms(model, point):
    """Sum of the likelihood terms (observed RVs and potentials) at *point*."""
    terms = model.observed_RVs + model.potentials
    fn = model.compile_fn(model.logp(vars=terms, sum=True), inputs=model.value_vars, point_fn=True,
                          on_unused_input="ignore")
    return float(fn(point))


def _individual(design, rat, part, spec):
    """Ratings in design order with their cell index."""
    cells = design.cells
    p_index = {p: i for i, p in enumerate(design.coords["participant"])}
    m_index = {m: i for i, m in enumerate(design.coords["llm"])}
    t_index = {t: i for i, t in enumerate(design.coords["conversation_type"])}
    key = pd.Series(list(zip(cells["participant"], cells["llm"], cells["conversation_type"], cells["later"])))
    lookup = {k: i for i, k in enumerate(key)}
    idx = [lookup[(p_index[p], m_index[m], t_index[t], int(turn > 0))]
           for p, m, t, turn in zip(rat["participant"], rat["llm"], rat["conversation_type"], rat["turn"])]
    return np.array(idx), rat["score"].to_numpy(float)


def test_gaussian_cells_equal_individual_likelihood(small):
    part, rat, _ = small
    spec = load_spec("ratings").replace(parameterisation={"participant": "noncentered"})
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    point, values = _point_values(model, 1)
    params = _params(values, model, design)
    eta = linear_predictor(params, design, spec)[0]
    cell, y = _individual(design, rat, part, spec)
    expected = stats.norm.logpdf(y, eta[cell], values["sigma"]).sum()
    assert _loglik_terms(model, point) == pytest.approx(expected, rel=1e-10)


def test_censored_cells_equal_individual_likelihood(small):
    part, rat, _ = small
    spec = load_spec("ratings_censored")
    design = build_design((part, rat), spec)
    assert design.cells["n_low"].sum() > 0 and design.cells["n_high"].sum() > 0
    model = build_model(design, spec)
    point, values = _point_values(model, 2)
    params = _params(values, model, design)
    eta = linear_predictor(params, design, spec)[0][_individual(design, rat, part, spec)[0]]
    y = rat["score"].to_numpy(float)
    s = values["sigma"]
    expected = np.where(y <= 1, stats.norm.logcdf(1, eta, s),
                        np.where(y >= 100, stats.norm.logsf(100, eta, s), stats.norm.logpdf(y, eta, s))).sum()
    # log-cdf tails are computed by different algorithms in pytensor and scipy
    assert _loglik_terms(model, point) == pytest.approx(expected, rel=1e-8)


def test_marginalized_equals_multivariate_normal(small):
    part, rat, _ = small
    spec = load_spec("ratings")
    assert spec.param("participant") == "marginalized"
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    assert "participant_effect" not in model.named_vars
    point, values = _point_values(model, 3)
    params = _params(values, model, design)
    mu = linear_predictor(params, design, spec, participant=False)[0]
    cell, y = _individual(design, rat, part, spec)
    s2, t2 = values["sigma"] ** 2, values["sigma_participant"] ** 2
    owner = design.cells["participant"].to_numpy()[cell]
    expected = 0.0
    for p in np.unique(owner):
        sel = owner == p
        n = sel.sum()
        cov = s2 * np.eye(n) + t2 * np.ones((n, n))
        expected += stats.multivariate_normal.logpdf(y[sel], mu[cell[sel]], cov)
    assert _loglik_terms(model, point) == pytest.approx(expected, rel=1e-10)
    # The per-participant LOO terms are the same quantity, participant by participant.
    ll = participant_loglik(params.assign(participant_effect=(("chain", "draw", "participant"),
                                                             np.zeros((1, 1, len(design.coords["participant"]))))),
                            design, spec)
    assert float(ll.sum()) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("pooling", ["partial", "fixed", "per_llm"])
def test_interactions_are_double_centred_and_enter_the_likelihood(small, pooling):
    """Every LLM x demographic effect sums to zero over LLMs (equal weights) and over its
    levels (the design's rating weights), whatever its pooling; the likelihood is the
    Gaussian of the ratings under the resulting linear predictor."""
    part, rat, _ = small
    spec = load_spec("ratings").replace(pooling={"interaction": pooling},
                                        parameterisation={"participant": "noncentered"})
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    assert ("llm_heterogeneity" in model.named_vars) == (pooling == "per_llm")
    point, values = _point_values(model, 5)
    for f in spec.llm_interactions:
        effect = np.asarray(values[f"llm_{f}"])  # (llm, level)
        assert np.abs(effect).max() > 1e-3
        np.testing.assert_allclose(effect.mean(axis=0), 0.0, atol=1e-10)
        np.testing.assert_allclose(effect @ design.level_weights(f), 0.0, atol=1e-10)
    eta = linear_predictor(_params(values, model, design), design, spec)[0]
    cell, y = _individual(design, rat, part, spec)
    expected = stats.norm.logpdf(y, eta[cell], values["sigma"]).sum()
    assert _loglik_terms(model, point) == pytest.approx(expected, rel=1e-10)


def test_censored_participant_loglik_matches_quadrature(small):
    part, rat, _ = small
    spec = load_spec("ratings_censored")
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    _, values = _point_values(model, 4)
    params = _params(values, model, design)
    ll = participant_loglik(params, design, spec).values[0, 0]
    mu = linear_predictor(params, design, spec, participant=False)[0]
    cell, y = _individual(design, rat, part, spec)
    owner = design.cells["participant"].to_numpy()[cell]
    s, t = values["sigma"], values["sigma_participant"]
    for p in range(3):
        sel = owner == p
        yy, mm = y[sel], mu[cell[sel]]

        def integrand(u):
            e = mm + u
            lp = np.where(yy <= 1, stats.norm.logcdf(1, e, s),
                          np.where(yy >= 100, stats.norm.logsf(100, e, s), stats.norm.logpdf(yy, e, s)))
            return np.exp(lp.sum() + stats.norm.logpdf(u, 0, t) - ll[p])

        val, _ = integrate.quad(integrand, -10 * t, 10 * t, points=[0.0], limit=200)
        assert np.log(val) == pytest.approx(0.0, abs=1e-6)
