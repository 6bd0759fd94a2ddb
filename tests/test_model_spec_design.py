"""Model specs (configuration as data) and the sufficient-statistics design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tidy_sim import simulate_tidy

from prism_stats.model import DesignError, SpecError, available_specs, build_design, load_spec
from prism_stats.model.design import Design
from prism_stats.model.spec import ModelSpec


def test_shipped_specs_load_and_differ():
    names = available_specs()
    for name in ("ratings", "ratings_censored", "ratings_allturns", "ratings_additive", "ratings_per_llm"):
        assert name in names
        spec = load_spec(name)
        assert spec.name == name
    base, cens = load_spec("ratings"), load_spec("ratings_censored")
    assert cens.family == "censored" and base.family == "gaussian"
    assert base.model_hash() != cens.model_hash()
    # sampler settings do not change the model's identity
    assert base.replace(sampling={"draws": 10}).model_hash() == base.model_hash()
    assert load_spec("ratings_additive").llm_interactions == ()
    per_llm = load_spec("ratings_per_llm")
    assert per_llm.pool("interaction") == "per_llm"
    assert per_llm.replace(name="ratings", pooling={"interaction": "partial"}).model_hash() == base.model_hash()
    # the variants differ from the main spec in what their names say, nothing else
    assert cens.replace(name="ratings", family="gaussian",
                        parameterisation={"participant": "marginalized"}).model_hash() == base.model_hash()
    assert load_spec("ratings_allturns").replace(name="ratings", turns="opening").model_hash() == base.model_hash()


def test_spec_round_trips_through_its_dict():
    spec = load_spec("ratings")
    again = ModelSpec.from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"likelihood": {"family": "beta"}}, "likelihood.family"),
        ({"data": {"turns": "first"}}, "data.turns"),
        ({"effects": {"demographics": ["height"]}}, "unknown factor"),
        ({"effects": {"llm_interactions": ["religion"]}}, "must also be in"),
        ({"priors": {"sigma_moon": 1.0}}, "unknown key"),
        ({"priors": {"sigma": -1.0}}, "must be positive"),
        ({"parameterisation": {"llm": "marginalized"}}, "only participant"),
        ({"effects": {"pooling": {"llm": "none"}}}, "pooling.llm"),
        ({"colour": "blue"}, "unknown top-level"),
    ],
)
def test_bad_specs_fail_with_the_key_named(change, message):
    d = load_spec("ratings").to_dict()
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(d.get(key), dict):
            d[key] = {**d[key], **value}
        else:
            d[key] = value
    with pytest.raises(SpecError, match=message):
        ModelSpec.from_dict(d, source="test.toml")


def test_unknown_spec_name_lists_the_available_ones():
    with pytest.raises(SpecError, match="ratings"):
        load_spec("no_such_spec")


def test_censored_family_cannot_marginalize_participants():
    spec = load_spec("ratings").replace(family="censored")
    assert spec.param("participant") == "noncentered"


@pytest.fixture(scope="module")
def tables():
    part, rat, _ = simulate_tidy(50, 16, seed=3)
    rat = rat.copy()
    rat["score"] = np.clip(np.round(rat["score"]), 1, 100)
    rat.loc[rat.index % 5 == 0, "turn"] = 1  # some later turns
    rat.loc[rat.index % 7 == 0, "balanced"] = False
    return part, rat


def test_cells_hold_exact_sufficient_statistics(tables):
    part, rat = tables
    spec = load_spec("ratings_allturns")
    design = build_design((part, rat), spec)
    assert design.n_ratings == len(rat) and design.cells["n"].sum() == len(rat)
    c = design.cells
    labels = {k: design.coords[k] for k in ("participant", "llm", "conversation_type")}
    frame = pd.DataFrame({
        "participant": [labels["participant"][i] for i in c["participant"]],
        "llm": [labels["llm"][i] for i in c["llm"]],
        "conversation_type": [labels["conversation_type"][i] for i in c["conversation_type"]],
        "later": c["later"],
    })
    rat = rat.assign(later=(rat["turn"] > 0).astype(int))
    for i in [0, 5, len(c) // 2, len(c) - 1]:
        row = frame.iloc[i]
        ys = rat.loc[(rat.participant == row.participant) & (rat.llm == row.llm)
                     & (rat.conversation_type == row.conversation_type) & (rat.later == row.later), "score"]
        assert c["n"].iloc[i] == len(ys)
        assert c["mean"].iloc[i] == pytest.approx(ys.mean())
        assert c["ss"].iloc[i] == pytest.approx(((ys - ys.mean()) ** 2).sum(), abs=1e-9)
        inner = ys[(ys > 1) & (ys < 100)]
        assert c["n_low"].iloc[i] == (ys <= 1).sum() and c["n_high"].iloc[i] == (ys >= 100).sum()
        assert c["n_int"].iloc[i] == len(inner)
        if len(inner):
            assert c["mean_int"].iloc[i] == pytest.approx(inner.mean())


def test_filters_are_counted_not_silent(tables):
    part, rat = tables
    spec = load_spec("ratings").replace(subset="balanced")
    design = build_design((part, rat), spec)
    later = int((rat.turn > 0).sum())
    unbalanced_opening = int(((rat.turn == 0) & ~rat.balanced).sum())
    assert design.filtered == {"later_turns": later, "outside_balanced_subset": unbalanced_opening}
    assert design.n_ratings + later + unbalanced_opening == len(rat)


def test_level_weights_and_dataset_round_trip(tables):
    part, rat = tables
    design = build_design((part, rat), load_spec("ratings"))
    w = design.level_weights("gender")
    assert w.sum() == pytest.approx(1.0) and (w > 0).all()
    again = Design.from_dataset(design.to_dataset())
    assert again.coords == design.coords
    pd.testing.assert_frame_equal(again.cells, design.cells)
    pd.testing.assert_frame_equal(again.participant_levels, design.participant_levels)
    assert again.filtered == design.filtered


def test_design_errors_are_clear(tables):
    part, rat = tables
    with pytest.raises(DesignError, match="absent from the participants"):
        build_design((part.iloc[5:], rat), load_spec("ratings"))
    broken = part.copy()
    broken.loc[0, "age"] = None
    with pytest.raises(DesignError, match="age"):
        build_design((broken, rat), load_spec("ratings"))
    with pytest.raises(DesignError, match="selects no ratings"):
        build_design((part, rat.assign(turn=3)), load_spec("ratings"))


def test_uncollapsed_design_keeps_one_cell_per_rating(tables):
    part, rat = tables
    spec = load_spec("ratings_allturns")
    full = build_design((part, rat), spec, collapse=False)
    cells = build_design((part, rat), spec)
    assert full.n_cells == len(rat) and (full.cells["n"] == 1).all()
    assert full.cells["mean"].sum() == pytest.approx((cells.cells["mean"] * cells.cells["n"]).sum())
    assert (full.cells["ss"] == 0).all()
    assert full.coords == cells.coords
