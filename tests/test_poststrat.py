"""Post-stratification arithmetic against hand-computed values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from prism_stats import census
from prism_stats.model import load_spec
from prism_stats.poststrat import (
    CSV_COLUMNS,
    PoststratError,
    PoststratResult,
    cell_predictions,
    expected_clipped,
    group_means,
    poststratify,
    resolve_groups,
    sample_means,
    summarise_draws,
)

LLMS = ["command", "gpt-4"]
AGES = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
GENDERS = ["Male", "Female", "Non-binary / third gender"]
ETHS = ["White", "Black", "Asian", "Mixed", "Other"]


def _params(n_draw: int = 2) -> xr.Dataset:
    """Hand-made parameters, one value pattern per draw (draw d adds d to the intercept)."""
    d = np.arange(n_draw, dtype=float)
    age = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 4.0])
    gender = np.array([-1.0, 1.0, 5.0])
    eth = np.array([0.5, -2.0, 1.0, -0.5, 3.0])
    llm_age = np.outer([1.0, -1.0], np.array([2.0, 1.0, 0.0, -1.0, -1.0, -1.0]))
    llm_gender = np.outer([1.0, -1.0], np.array([1.5, -1.5, 0.0]))
    llm_eth = np.outer([1.0, -1.0], np.array([0.0, 1.0, -1.0, 0.5, -0.5]))
    rep = lambda a: np.broadcast_to(a, (1, n_draw, *np.shape(a))).copy()
    return xr.Dataset(
        {
            "intercept": (("chain", "draw"), (60.0 + d)[None]),
            "sigma": (("chain", "draw"), np.full((1, n_draw), 20.0)),
            "sigma_participant": (("chain", "draw"), np.full((1, n_draw), 10.0)),
            "llm_effect": (("chain", "draw", "llm"), rep([4.0, -4.0])),
            "country_effect": (("chain", "draw", "country"), rep([2.0, -3.0, 1.0])),
            "age_effect": (("chain", "draw", "age"), rep(age)),
            "gender_effect": (("chain", "draw", "gender"), rep(gender)),
            "ethnicity_effect": (("chain", "draw", "ethnicity"), rep(eth)),
            "llm_age": (("chain", "draw", "llm", "age"), rep(llm_age)),
            "llm_gender": (("chain", "draw", "llm", "gender"), rep(llm_gender)),
            "llm_ethnicity": (("chain", "draw", "llm", "ethnicity"), rep(llm_eth)),
        },
        coords={"chain": [0], "draw": d.astype(int), "llm": LLMS, "country": ["GBR", "USA", "CAN"],
                "age": AGES, "gender": GENDERS, "ethnicity": ETHS},
    )


def test_cell_prediction_by_hand():
    frame = census.frame("uk")
    cells = cell_predictions(_params(), load_spec("ratings"), frame, "uk")
    assert cells.dims == ("chain", "draw", "llm", "cell") and cells.sizes["cell"] == 60
    # 25-34 | Female | Asian, gpt-4, draw 1:
    # 61 (intercept) - 4 (gpt-4) + 2 (GBR) - 1 (25-34) + 1 (Female) + 1 (Asian)
    # - 1 (llm_age gpt-4 x 25-34) + 1.5 (llm_gender gpt-4 x Female) + 1 (llm_eth gpt-4 x Asian)
    assert float(cells.sel(chain=0, draw=1, llm="gpt-4", cell="25-34|Female|Asian")) == pytest.approx(61.5)
    # 65+ | Male | Other, command, draw 0 in the US:
    # 60 + 4 - 3 + 4 - 1 + 3 + (-1) + 1.5 + (-0.5) = 67
    us = cell_predictions(_params(), load_spec("ratings"), census.frame("us"), "us")
    assert float(us.sel(chain=0, draw=0, llm="command", cell="65+|Male|Other")) == pytest.approx(67.0)


def test_group_means_are_census_weighted_by_hand():
    frame = census.frame("uk")
    cells = cell_predictions(_params(), load_spec("ratings"), frame, "uk")
    masks = resolve_groups(frame)
    gm = group_means(cells, frame, masks)
    counts = frame["count"].to_numpy()
    for group in ("all", "nonmale", "over45"):
        m = masks[group]
        expected = (cells.sel(draw=0, llm="command").values[0][m] * counts[m]).sum() / counts[m].sum()
        assert float(gm.sel(chain=0, draw=0, llm="command", group=group)) == pytest.approx(expected)
    # draws differ only by the intercept shift
    diff = gm.sel(draw=1) - gm.sel(draw=0)
    assert np.allclose(diff.values, 1.0)
    # a user grouping given as cell labels, a mask and a callable agree
    labels = frame.loc[frame["age"].astype(str) == "18-24", "cell"].tolist()
    g2 = resolve_groups(frame, {"young": labels, "young_mask": (frame["age"] == "18-24").to_numpy(),
                                "young_fn": lambda f: f["age"] == "18-24"})
    assert (g2["young"] == g2["young_mask"]).all() and (g2["young"] == g2["young_fn"]).all()
    with pytest.raises(PoststratError):
        resolve_groups(frame, {"bad": ["nowhere"]})


def test_unseen_levels_are_new_groups():
    params = _params(4000).drop_sel(age=["65+"])
    params = params.assign(sigma_age=(("chain", "draw"), np.full((1, 4000), 3.0)))
    frame = census.frame("uk")
    cells = cell_predictions(params, load_spec("ratings").replace(pooling={"demographic": "partial"}),
                             frame, "uk", seed=5)
    old = cells.sel(cell="65+|Male|White", llm="command").values.ravel()
    # every draw is shifted by a new N(0, 3) age effect plus a new N(0, sigma_interaction) llm_age
    spread = np.std(old - np.arange(4000))
    expected = np.sqrt(3.0**2 + load_spec("ratings").prior("sigma_interaction") ** 2)
    assert spread == pytest.approx(expected, rel=0.05)


def test_expected_clipped_matches_monte_carlo():
    rng = np.random.default_rng(0)
    for mu, sd in [(65.0, 30.0), (5.0, 10.0), (99.0, 4.0)]:
        z = np.clip(rng.normal(mu, sd, 400_000), 1, 100)
        assert expected_clipped(mu, sd) == pytest.approx(z.mean(), abs=4 * z.std() / 630)


def test_censored_family_predicts_the_clipped_mean():
    frame = census.frame("uk")
    g = cell_predictions(_params(), load_spec("ratings"), frame, "uk")
    c = cell_predictions(_params(), load_spec("ratings_censored"), frame, "uk")
    assert np.allclose(c.values, expected_clipped(g.values, np.sqrt(20.0**2 + 10.0**2)))


def test_summary_p_best_and_expected_rank_by_hand():
    values = np.array([[70.0, 60.0, 65.0], [50.0, 80.0, 65.0], [71.0, 70.0, 10.0], [60.0, 61.0, 62.0]])
    gm = xr.DataArray(values[None, :, :, None], dims=("chain", "draw", "llm", "group"),
                      coords={"llm": ["a", "b", "c"], "group": ["all"]})
    s = summarise_draws(gm).set_index("llm")
    assert s.loc["a", "p_best"] == 0.5 and s.loc["b", "p_best"] == 0.25 and s.loc["c", "p_best"] == 0.25
    # ranks per draw: a = 1,3,1,3  b = 3,1,2,2  c = 2,2,3,1
    assert s.loc["a", "expected_rank"] == 2.0 and s.loc["b", "expected_rank"] == 2.0
    assert s.loc["a", "mean"] == pytest.approx(62.75)
    assert s.loc["a", "q50"] == pytest.approx(np.quantile(values[:, 0], 0.5))


def test_sample_means_by_hand():
    participants = pd.DataFrame({
        "participant": ["p1", "p2", "p3", "p4"],
        "reside_country": ["GBR", "GBR", "USA", "GBR"],
        "gender": ["Male", "Female", "Male", "Non-binary / third gender"],
        "ethnicity_simplified": ["White", "Black", "White", "White"],
        "age": ["18-24", "55-64", "25-34", "65+"],
        "in_uk_rep": [True, False, False, True],
        "in_us_rep": [False, False, True, False],
    })
    ratings = pd.DataFrame({
        "participant": ["p1", "p1", "p2", "p3", "p4", "p4"],
        "turn": [0, 1, 0, 0, 0, 0],
        "llm": ["command", "command", "command", "command", "gpt-4", "command"],
        "score": [80, 10, 40, 90, 30, 50],
    })
    s = sample_means(SimpleNamespace(participants=participants, ratings=ratings), "uk",
                     ["all", "nonmale", "over45"]).set_index(["group", "llm"])
    assert s.loc[("all", "command"), "raw_mean"] == pytest.approx((80 + 40 + 50) / 3)  # later turn left out
    assert s.loc[("all", "command"), "rep_mean"] == pytest.approx((80 + 50) / 2)
    assert s.loc[("nonmale", "command"), "raw_mean"] == pytest.approx(45.0)
    assert s.loc[("over45", "gpt-4"), "raw_mean"] == pytest.approx(30.0)


def test_result_csv_has_exactly_the_issue_columns(tmp_path):
    res = poststratify((_params(), load_spec("ratings")), "us")
    nc, csv = res.save(tmp_path)
    table = pd.read_csv(csv)
    assert tuple(table.columns) == CSV_COLUMNS
    assert set(table["group"]) == {"all", "male", "nonmale", "white", "nonwhite", "under45", "over45"}
    ds = xr.open_dataset(nc)
    assert set(ds["group_mean"].dims) == {"chain", "draw", "llm", "group"}
    assert isinstance(res, PoststratResult)
    with pytest.raises(PoststratError):
        poststratify((_params(), load_spec("ratings")), "fr")
