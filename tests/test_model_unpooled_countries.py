"""Country levels with their own prior (``effects.unpooled_countries``).

The post-stratification countries (GBR, USA) hold hundreds of raters each; pooled with
dozens of small countries, their level is shrunk toward the rest of the world and every
MRP estimate of the country moves by the same amount. Named levels instead get the fixed
prior ``Normal(0, priors.sigma_country)``; the others keep the pooled scale. Checked
here: the spec option, the prior each level gets under every parameterisation, that
which levels are unpooled is data (one graph for every release), and that a spec without
the option keeps its model hash.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats
from tidy_sim import simulate_tidy

from prism_stats.model import build_design, build_model, load_spec
from prism_stats.model.compiled import structure_key
from prism_stats.model.rating import container_data, model_data
from prism_stats.model.spec import ModelSpec, SpecError


@pytest.fixture(scope="module")
def small():
    part, rat, _ = simulate_tidy(40, 12, seed=31)
    return part, rat


def _spec(param: str = "noncentered", **changes) -> ModelSpec:
    base = load_spec("ratings").replace(llm_residence="none", parameterisation={"country": param})
    return base.replace(**{"unpooled_countries": ("GBR",), **changes})


def test_spec_option_round_trips_and_is_validated():
    spec = _spec(unpooled_countries=["GBR", "USA"])
    assert spec.unpooled_countries == ("GBR", "USA")
    again = ModelSpec.from_dict(spec.to_dict())
    assert again.unpooled_countries == ("GBR", "USA") and again.model_hash() == spec.model_hash()
    assert spec.replace(unpooled_countries=()).model_hash() != spec.model_hash()
    # a spec without the option writes no key, so its model hash is what it was before
    assert "unpooled_countries" not in load_spec("ratings_additive").to_dict()["effects"]
    with pytest.raises(SpecError, match="unpooled_countries"):
        _spec(unpooled_countries=("GBR", ""))
    with pytest.raises(SpecError, match="must be a list"):
        ModelSpec.from_dict({**spec.to_dict(), "effects": {**spec.to_dict()["effects"], "unpooled_countries": "GBR"}})
    with pytest.raises(SpecError, match="pooling.country"):
        _spec(pooling={"country": "fixed"})


def test_default_spec_unpools_the_mrp_countries():
    assert set(load_spec("ratings").unpooled_countries) == {"GBR", "USA"}


def test_noncentred_unpooled_level_does_not_move_with_the_pooled_scale(small):
    """country_effect as a function of (raw coordinates, sigma_country): the GBR value is
    8 x its raw coordinate whatever sigma_country is; a pooled level scales with it."""
    spec = _spec("noncentered")
    design = build_design(small, spec)
    model = build_model(design, spec)
    free = list(model.coords["country_free"])
    raw = np.linspace(-1.0, 1.0, len(free))
    f = model.compile_fn(model["country_effect"], inputs=[model["country_effect_z"], model["sigma_country"]],
                         point_fn=False)
    levels = list(model.coords["country"])
    a, b = f(raw, 0.5), f(raw, 4.0)
    gbr, pooled = levels.index("GBR"), levels.index(next(c for c in free if c != "GBR"))
    assert a[gbr] == pytest.approx(spec.prior("sigma_country") * raw[free.index("GBR")], rel=1e-12)
    assert b[gbr] == pytest.approx(a[gbr], rel=1e-12)
    assert b[pooled] == pytest.approx(8 * a[pooled], rel=1e-12)


@pytest.mark.parametrize("param", ["centered", "mixed"])
def test_centred_unpooled_level_has_the_fixed_prior(small, param):
    """The prior log-density of each centred free coordinate: Normal(0, 8) for GBR,
    Normal(0, sigma_country) for the pooled levels, at two values of sigma_country."""
    spec = _spec(param)
    design = build_design(small, spec)
    model = build_model(design, spec)
    names = [v.name for v in model.free_RVs if v.name.startswith("country_effect_z")]
    for sigma in (0.7, 3.0):
        for name in names:
            rv = model[name]
            dim = model.named_vars_to_dims[name][0]
            labels = list(model.coords[dim])
            x = np.linspace(-2.0, 2.0, len(labels))
            fn = model.compile_fn(model.logp(vars=[rv], sum=False, jacobian=False)[0],
                                  inputs=[model.rvs_to_values[rv], model.rvs_to_values[model["sigma_country"]]],
                                  point_fn=False)
            got = fn(x, np.log(sigma))
            if name.endswith("_nc"):  # mixed: the prior-dominated levels are N(0, 1) raw
                np.testing.assert_allclose(got, stats.norm.logpdf(x), rtol=1e-12)
                continue
            sd = np.where(np.array(labels) == "GBR", spec.prior("sigma_country"), sigma)
            np.testing.assert_allclose(got, stats.norm.logpdf(x, 0, sd), rtol=1e-12)
    assert any("GBR" in model.coords[model.named_vars_to_dims[n][0]] for n in names)


def test_which_levels_are_unpooled_is_data(small):
    """Two releases of one structure, GBR the reference (heaviest) level in one and a free
    level in the other: one graph (same structure key), the flag a container, and the
    model with the other release's data swapped in has the rebuilt model's log density."""
    spec = _spec("noncentered")  # GBR only: the flag vector differs between the releases
    part, rat = small
    design = build_design((part, rat), spec)
    model = build_model(design, spec)
    assert {v.name for v in model.data_vars} == set(container_data(design, spec))
    other_part = part.copy()
    swap = {"GBR": "USA", "USA": "GBR"}
    other_part["reside_country"] = part["reside_country"].map(lambda c: swap.get(c, c))
    counts = part["reside_country"].value_counts()
    assert counts["GBR"] != counts["USA"]  # so the reference level changes
    other = build_design((other_part, rat), spec)
    assert structure_key(other, spec) == structure_key(design, spec)
    assert not np.array_equal(model_data(other, spec)["country_unpooled"], model_data(design, spec)["country_unpooled"])
    point = model.initial_point(random_seed=3)
    point = {k: v + np.random.default_rng(1).normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    with model:
        pm.set_data(container_data(other, spec))
    rebuilt = build_model(other, spec)
    assert model.compile_logp()(point) == pytest.approx(rebuilt.compile_logp()(point), rel=1e-12)


def test_absent_named_levels_leave_every_level_pooled(small):
    spec = _spec("noncentered", unpooled_countries=("FRA",))
    design = build_design(small, spec)
    flags = model_data(design, spec)["country_unpooled"]
    assert flags.shape == (len(design.coords["country"]) - 1,) and not flags.any()
