"""Departures of the synthetic world from the rating model: every knob changes the data as
documented, and the truth is recomputed on the observed 1-100 scale (checked against a
simulation of new raters by the generator's own observation process)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from prism_stats import census, vocab
from prism_stats.synth import SCENARIOS, Departures, SynthError, generate
from prism_stats.synth.population import cell_expected_scores, true_population_means
from prism_stats.synth.scenarios import new_rater_traits, observe, resolve

N = 200
SEED = 4


@pytest.fixture(scope="module")
def base():
    return generate(N, SEED)


def _scores(data) -> pd.DataFrame:
    r = data.design.responses
    return pd.DataFrame({"participant": r["participant"].to_numpy(), "turn": r["turn"].to_numpy(),
                         "llm": data.ratings["llm"].to_numpy(), "score": data.ratings["score"].to_numpy()})


def test_knobs_are_validated_and_named():
    assert not Departures().active and SCENARIOS["model"] == Departures()
    assert resolve("country").llm_country > 0 and resolve({"heap": 0.5}).heap == 0.5
    for bad in ({"heap": 1.5}, {"spread": -1.0}, {"nonsense": 1.0}):
        with pytest.raises(SynthError):
            resolve(bad)
    with pytest.raises(SynthError, match="unknown scenario"):
        resolve("martian")


def test_no_departures_leaves_the_release_unchanged(base):
    same = generate(N, SEED, departures="model")
    np.testing.assert_array_equal(same.ratings["score"].to_numpy(), base.ratings["score"].to_numpy())
    assert not any(v.startswith("dep_") for v in same.truth.data_vars)


def test_country_knob_plants_llm_by_country_deviations(base):
    data = generate(N, SEED, departures={"llm_country": 3.0, "sparse_flips": 2})
    dev = data.truth["dep_llm_country"].isel(chain=0, draw=0)
    gbr = dev.sel(country="GBR").values
    assert abs(gbr.mean()) < 1e-9 and gbr.std() > 1.5  # centred over LLMs, a few points
    assert np.sum(np.abs(gbr) > 5) >= 1  # the sparse flips
    others = [c for c in dev["country"].values if c not in ("GBR", "USA")]
    assert np.allclose(dev.sel(country=others).values, 0)  # llm_region is off
    # the scores move with the deviation: the same design, only latent shifts differ
    diff = data.ratings["latent"].to_numpy() - base.ratings["latent"].to_numpy()
    resp = data.design.responses
    people = data.participants.iloc[resp["participant"].to_numpy()]
    uk = (people["reside_iso"].to_numpy() == "GBR") & (resp["turn"].to_numpy() == 0)
    llm = data.ratings["llm"].to_numpy()[uk]
    np.testing.assert_allclose(diff[uk], gbr[llm], atol=1e-9)
    # the truth follows: UK means shift by the deviation (through the clipped observation)
    pop, pop0 = true_population_means(data.truth), true_population_means(base.truth)
    shift = (pop.set_index(["country", "group", "llm"])["mean"] - pop0.set_index(["country", "group", "llm"])["mean"])
    uk_all = shift.loc[("uk", "all")].reindex(vocab.LLM_SHORT_NAMES).to_numpy()
    assert np.corrcoef(uk_all, gbr)[0, 1] > 0.99


def test_scale_use_piles_and_heaping_change_the_score_distribution(base):
    data = generate(N, SEED, departures={"scale_use": 0.6, "spread": 0.4, "pile": 0.1, "heap": 0.5})
    s, s0 = data.ratings["score"].to_numpy(), base.ratings["score"].to_numpy()
    ends = lambda x: np.mean((x == 1) | (x == 100))  # noqa: E731
    assert ends(s) > ends(s0) + 0.05  # piles at 1 and 100
    round10 = lambda x: np.mean(x % 10 == 0)  # noqa: E731
    assert round10(s) > round10(s0) + 0.2  # heaping at round numbers
    styles = data.truth["dep_style"].values
    assert set(np.unique(styles)) == {0, 1, 2}
    assert 0.5 < np.mean(styles > 0) < 0.7  # scale_use = 0.6
    spread = data.truth["dep_spread"].values
    assert spread.std() > 0.3 and np.mean(spread**2) == pytest.approx(1.0, abs=0.15)
    # compressed raters' opening ratings vary less than full-range raters'
    people = [str(p) for p in data.truth["participant"].values]
    index = {p: i for i, p in enumerate(people)}
    r = data.design.responses
    owner = data.participants["user_id"].to_numpy()[r["participant"].to_numpy()]
    style = np.array([styles[index[o]] for o in owner])
    opening = r["turn"].to_numpy() == 0
    assert s[opening & (style == 1)].std() < 0.8 * s[opening & (style == 0)].std()


def test_nonadditive_pattern_is_a_pure_three_way_interaction():
    data = generate(60, 2, departures={"llm_age_gender": 4.0})
    pattern = data.truth["dep_llm_age_gender"].isel(chain=0, draw=0)
    sub = pattern.sel(age=["18-24", "65+"], gender=["Male", "Female"]).values
    # no additive decomposition: the 2 x 2 interaction contrast is non-zero for the planted LLMs
    contrast = sub[:, 0, 0] - sub[:, 0, 1] - sub[:, 1, 0] + sub[:, 1, 1]
    assert np.abs(contrast).max() == pytest.approx(16.0 * (1 + 1 / 21), rel=1e-6)  # sign -1, centred
    np.testing.assert_allclose(pattern.sum("llm").values, 0, atol=1e-9)


def test_skew_tilts_the_uk_us_pools_toward_young_white_men(base):
    data = generate(N * 3, SEED, departures={"skew": 1.5})
    plain = generate(N * 3, SEED)

    def share(d):
        p = d.participants
        ukus = p["reside_iso"].isin(["GBR", "USA"])
        young = p["age_band"].isin(["18-24", "25-34", "35-44"])
        return float((young & (p["gender"] == "Male") & (p["ethnicity_group"] == "White"))[ukus].mean())

    assert share(data) > share(plain) + 0.1
    # skew changes who is sampled, not how anybody rates: no departure parameters
    assert not any(str(v).startswith("dep_") for v in data.truth.data_vars)


def _simulate_cell(tr: xr.Dataset, cell: pd.Series, llm: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Observed ratings of n new raters of a census cell, by the generator's process."""
    t = tr.isel(chain=0, draw=0)
    age, sex, eth = cell.age, cell.sex, cell.ethnicity
    eta = (float(t.intercept) + float(t.country_effect.sel(country="GBR")) + float(t.age_effect.sel(age=age))
           + float(t.gender_effect.sel(gender=sex)) + float(t.ethnicity_effect.sel(ethnicity=eth))
           + float(t.llm_effect.sel(llm=llm)) + float(t.llm_age.sel(llm=llm, age=age))
           + float(t.llm_gender.sel(llm=llm, gender=sex)) + float(t.llm_ethnicity.sel(llm=llm, ethnicity=eth))
           + float(t.dep_llm_country.sel(llm=llm, country="GBR"))
           + float(t.dep_llm_age_gender.sel(llm=llm, age=age, gender=sex)))
    style, spread = new_rater_traits(tr, np.full(n, age), rng)
    latent = (eta + t.ctype_effect.values[rng.integers(0, 3, n)]
              + rng.choice(t.text_offset.values, size=n, p=t.text_weight.values)
              + float(t.sigma_participant) * rng.standard_normal(n)
              + float(t.sigma_noise) * spread * rng.standard_normal(n))
    observed = observe(latent, style, tr, rng)
    return np.where(rng.random(n) < float(t.pi_default), 50.0, observed)


@pytest.mark.slow
def test_closed_form_truth_matches_a_simulation_of_new_raters():
    """The observed-scale truth (closed form over styles, spreads, text; rounding and heaping
    left out) against 300,000 simulated new raters per (cell, LLM): within 4 Monte Carlo
    standard errors plus 0.03 points; the veto probability likewise."""
    data = generate(60, 7, departures="all")
    tr = data.truth
    frame = census.frame("uk")
    means = cell_expected_scores(tr, frame, "uk")[0]
    veto = cell_expected_scores(tr, frame, "uk", veto=vocab.VETO_THRESHOLD)[0]
    rng = np.random.default_rng(0)
    for ci in (3, 40):
        for llm in ("command", "gpt-4-turbo", "flan-t5-xxl"):
            y = _simulate_cell(tr, frame.iloc[ci], llm, rng, 300_000)
            m = vocab.LLM_SHORT_NAMES.index(llm)
            se = y.std() / np.sqrt(len(y))
            assert abs(y.mean() - means[ci, m]) < 4 * se + 0.03, (ci, llm)
            p = np.mean(y <= vocab.VETO_THRESHOLD)
            assert abs(p - veto[ci, m]) < 4 * np.sqrt(p * (1 - p) / len(y)) + 0.002, (ci, llm)


def test_synth_command_writes_a_scenario_release_with_its_truth(tmp_path):
    """``prism-stats synth --scenario``: every scenario of the library is offered, and the
    release written carries the departures in its truth (observed-scale means differ from
    the release without departures, same seed)."""
    from typer.testing import CliRunner

    from prism_stats.cli import app
    from prism_stats.cli._options import Scenario

    assert [s.value for s in Scenario] == list(SCENARIOS)
    runner = CliRunner()
    for name in ("model", "country"):
        res = runner.invoke(app, ["synth", "--out", str(tmp_path / name), "--participants", "60",
                                  "--seed", "3", "--scenario", name])
        assert res.exit_code == 0, res.output
    params = xr.load_dataset(tmp_path / "country" / "truth" / "params.nc")
    assert "dep_llm_country" in params
    base = pd.read_csv(tmp_path / "model" / "truth" / "population_means.csv")
    dep = pd.read_csv(tmp_path / "country" / "truth" / "population_means.csv")
    assert base.shape == dep.shape
    num = base.select_dtypes("number").columns
    assert not np.allclose(base[num].to_numpy(), dep[num].to_numpy())
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--scenario", "martian"])
    assert bad.exit_code == 2
