"""The rating model's data containers packed into a few arrays (prism_stats.model.packing).

Packing must be invisible to the model: every logical array of ``model_data`` is read back
from its container exactly, the layout depends only on the structure (so one compiled
model takes any release of that structure), and bad shapes are refused by name.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from tidy_sim import simulate_tidy

from prism_stats.model import build_design, build_model, load_spec
from prism_stats.model.compiled import structure_key
from prism_stats.model.packing import CELL_CODES, CELL_VALUES, LEVEL_VALUES, layout, pack, register
from prism_stats.model.rating import container_data, model_data


@pytest.fixture(scope="module")
def small():
    part, rat, _ = simulate_tidy(40, 12, seed=31)
    return part, rat


@pytest.mark.parametrize("name", ["ratings", "ratings_censored", "ratings_allturns", "ratings_per_llm"])
def test_every_logical_array_reads_back_exactly(small, name):
    spec = load_spec(name)
    design = build_design(small, spec)
    values = model_data(design, spec)
    with pm.Model() as model:
        views = register(model, values, design.n_cells)
    assert set(views) == set(values)
    for key, value in values.items():
        got = views[key].eval()
        assert got.shape == np.shape(value), key
        np.testing.assert_array_equal(got, value, err_msg=key)
    # the built model's containers are the packed ones, and nothing else
    assert {v.name for v in build_model(design, spec).data_vars} == set(container_data(design, spec))


def test_containers_hold_codes_values_and_level_arrays(small):
    spec = load_spec("ratings")
    design = build_design(small, spec)
    values = model_data(design, spec)
    packed = container_data(design, spec)
    assert set(packed) == {CELL_CODES, CELL_VALUES, LEVEL_VALUES}
    slots = layout(values, design.n_cells)
    assert packed[CELL_CODES].dtype == np.int64 and packed[CELL_VALUES].dtype == np.float64
    # llm_idx is an integer column, cell_mean a float column, country_embed a slice
    assert slots["llm_idx"].container == CELL_CODES
    np.testing.assert_array_equal(packed[CELL_CODES][:, slots["llm_idx"].column], values["llm_idx"])
    assert slots["cell_mean"].container == CELL_VALUES
    embed = slots["country_embed"]
    assert embed.container == LEVEL_VALUES and embed.shape == values["country_embed"].shape
    size = int(np.prod(embed.shape))
    np.testing.assert_array_equal(packed[LEVEL_VALUES][embed.start:embed.start + size],
                                  values["country_embed"].ravel())
    assert packed[LEVEL_VALUES].size == sum(np.size(v) for k, v in values.items()
                                           if slots[k].container == LEVEL_VALUES)


def test_layout_depends_only_on_the_structure(small):
    """Another release of the same structure (scores and residences permuted) has the
    same layout and container shapes, so a compiled model takes its containers."""
    spec = load_spec("ratings")
    part, rat = small
    design = build_design((part, rat), spec)
    other_rat = rat.copy()
    other_rat["score"] = rat["score"].to_numpy()[np.random.default_rng(2).permutation(len(rat))]
    other = build_design((part, other_rat), spec)
    assert structure_key(other, spec) == structure_key(design, spec)
    assert layout(model_data(other, spec), other.n_cells) == layout(model_data(design, spec), design.n_cells)
    a, b = container_data(design, spec), container_data(other, spec)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert not np.array_equal(a[CELL_VALUES], b[CELL_VALUES])


def test_variable_length_arrays_keep_their_own_containers(small):
    spec = load_spec("ratings_censored")
    design = build_design(small, spec)
    packed = container_data(design, spec)
    if (design.cells["n_int"] > 0).any():
        assert {"interior_cells", "cell_n_int", "cell_mean_int"} <= set(packed)
        assert packed["interior_cells"].dtype.kind == "i"


def test_a_per_cell_array_of_the_wrong_length_is_refused_by_name():
    with pytest.raises(ValueError, match="'llm_idx' has shape"):
        pack({"llm_idx": np.arange(3), "cell_mean": np.zeros(4)}, 4)
