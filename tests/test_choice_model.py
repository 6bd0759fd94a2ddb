"""The hierarchical conditional-logit choice model: design, fit, cross-check, MRP."""

from __future__ import annotations

import numpy as np
import pytest

from prism_stats.model.choice import (
    build_choice_design,
    cell_choice_probabilities,
    conditional_logit_crosscheck,
    fit_choice,
)
from prism_stats.welfare import model_welfare


def test_choice_design_indexes_every_opening_set(small_data):
    d = build_choice_design(small_data)
    sets = small_data.choice_sets
    assert len(d.chosen) == len(sets)
    shown = (d.members >= 0).sum(axis=1)
    assert np.array_equal(shown, sets["n_shown"].to_numpy())
    # the chosen slot points at the chosen LLM
    chosen_llm = [d.coords["llm"][d.pair_llm[d.members[i, d.chosen[i]]]] for i in range(len(d.chosen))]
    assert chosen_llm == sets["chosen_llm"].astype(str).tolist()
    # pairs are unique participant x LLM combinations
    assert len(set(zip(d.pair_participant, d.pair_llm, strict=True))) == len(d.pair_llm)


@pytest.mark.mcmc
def test_choice_model_fit_crosscheck_and_poststratification(small_data, small_run, tmp_path):
    run = fit_choice(small_data, draws=300, tune=300, seed=5, progress=False, out=tmp_path)
    assert (tmp_path / "choice_posterior.nc").exists()
    table = conditional_logit_crosscheck(run, small_data)
    assert table.attrs["correlation"] > 0.95
    p = cell_choice_probabilities(run, "uk", draws=30, n_sets=150, seed=1)
    assert p.dims == ("sample", "llm", "cell") and ((p > 0) & (p < 1)).all()
    # shown in a set of 2-4, each LLM is picked about 1/3.75 of the time on average
    assert abs(float(p.mean()) - 1 / 3.75) < 0.05
    ds = model_welfare(small_run, "uk", rules=("chosen",), replicates=20, draws=30, seed=1, choice=run)
    assert ds.attrs["chosen_source"] == "choice model"
