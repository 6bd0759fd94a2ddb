"""Raking, post-stratification and weighted per-LLM estimates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest_weights import make_participants, make_ratings

from prism_stats import census
from prism_stats import weights as W


def _sample_2x2() -> pd.DataFrame:
    # Cells (A,x) x2, (A,y), (B,x), (B,y): seed odds ratio 2.
    return pd.DataFrame(
        {"a": ["A", "A", "A", "B", "B"], "b": ["x", "x", "y", "x", "y"]},
        index=[f"p{i}" for i in range(5)],
    )


def test_rake_hand_computed_example():
    """IPF keeps the seed odds ratio: with 50/50 margins, p12 = p21 = q and
    (0.5 - q)^2 / q^2 = 2, so q = 0.5 / (1 + sqrt 2)."""
    margins = {"a": pd.Series({"A": 0.5, "B": 0.5}), "b": pd.Series({"x": 0.5, "y": 0.5})}
    res = W.rake(_sample_2x2(), margins, tol=1e-14)
    q = 0.5 / (1 + math.sqrt(2))
    expected = [5 * (0.5 - q) / 2, 5 * (0.5 - q) / 2, 5 * q, 5 * q, 5 * (0.5 - q)]
    np.testing.assert_allclose(res.weights.to_numpy(), expected, rtol=1e-12)
    assert res.weights.index.tolist() == [f"p{i}" for i in range(5)]
    assert res.converged and res.max_margin_error < 1e-14
    assert res.iterations > 1 and np.all(np.diff(res.history) <= 1e-15)
    # Kish: n sum(w^2) / (sum w)^2.
    w = np.array(expected)
    assert res.kish_deff == pytest.approx(5 * np.sum(w**2) / np.sum(w) ** 2)
    assert res.ess == pytest.approx(np.sum(w) ** 2 / np.sum(w**2))
    assert res.weight_min == pytest.approx(min(expected))
    assert res.weight_max == pytest.approx(max(expected))


def test_rake_independent_margins_one_sweep():
    """One unit per cell and one-way margins: the solution is r_i c_j, found in one sweep."""
    sample = pd.DataFrame({"a": ["A", "A", "B", "B"], "b": ["x", "y", "x", "y"]})
    res = W.rake(sample, {"a": pd.Series({"A": 60, "B": 40}), "b": pd.Series({"x": 3, "y": 7})})
    np.testing.assert_allclose(
        res.weights, 4 * np.array([0.6 * 0.3, 0.6 * 0.7, 0.4 * 0.3, 0.4 * 0.7])
    )
    assert res.iterations == 1


def test_balance_table():
    margins = {"a": pd.Series({"A": 0.5, "B": 0.5}), "b": pd.Series({"x": 0.5, "y": 0.5})}
    res = W.rake(_sample_2x2(), margins)
    bal = res.balance.set_index(["margin", "category"])
    assert list(res.balance.columns) == [
        "margin",
        "category",
        "target",
        "unweighted",
        "weighted",
        "asd_before",
        "asd_after",
    ]
    p, q = 0.6, 0.5  # unweighted share of A, target
    assert bal.loc[("a", "A"), "unweighted"] == pytest.approx(p)
    assert bal.loc[("a", "A"), "asd_before"] == pytest.approx(
        abs(p - q) / math.sqrt((p * (1 - p) + q * (1 - q)) / 2)
    )
    assert (bal["asd_after"] < 1e-8).all()
    assert (bal["weighted"] - bal["target"]).abs().max() < 1e-9


def _random_sample(n=300, seed=5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.choice(census.vocab.CENSUS_AGES, n, p=[0.22, 0.3, 0.2, 0.12, 0.1, 0.06]),
            "sex": rng.choice(["Male", "Female"], n, p=[0.55, 0.45]),
            "ethnicity": rng.choice(
                census.vocab.CENSUS_ETHNICITIES, n, p=[0.7, 0.08, 0.1, 0.07, 0.05]
            ),
        },
        index=[f"user{i}" for i in range(n)],
    )


@pytest.mark.parametrize("country", ["uk", "us"])
def test_rake_matches_weightipy(country):
    """Our IPF and weightipy's rim weighting agree to 1e-6 on the weights."""
    weightipy = pytest.importorskip("weightipy")
    sample = _random_sample()
    margins = W.census_margins(census.frame(country))
    ours = W.rake(sample, margins, tol=1e-13)
    df = sample.copy()
    df["age_sex"] = df["age"] + "/" + df["sex"]
    scheme = {
        "age": (margins["age"] * 100).to_dict(),
        "sex": (margins["sex"] * 100).to_dict(),
        "ethnicity": (margins["ethnicity"] * 100).to_dict(),
        "age_sex": {f"{a}/{s}": v * 100 for (a, s), v in margins[("age", "sex")].items()},
    }
    rim = weightipy.scheme_from_dict(
        scheme, rim_params={"convcrit": 1e-14, "max_iterations": 10_000}
    )
    theirs = weightipy.weight(df, rim)
    theirs = theirs.to_numpy() / theirs.mean()
    np.testing.assert_allclose(ours.weights.to_numpy(), theirs, atol=1e-6, rtol=0)


def test_census_margins():
    f = census.frame("uk")
    m = W.census_margins(f, ["age", ("age", "sex")])
    assert list(m["age"].index) == list(census.vocab.CENSUS_AGES)
    assert m["age"].sum() == pytest.approx(1)
    assert m[("age", "sex")].loc[("18-24", "Male")] == pytest.approx(
        f.query("age == '18-24' and sex == 'Male'")["share"].sum()
    )
    sub = W.census_margins(f, ["sex"], mask=census.group_masks(f)["white"])["sex"]
    white = f[f["ethnicity"] == "White"]
    assert sub["Male"] == pytest.approx(
        white.loc[white["sex"] == "Male", "count"].sum() / white["count"].sum()
    )


def test_trimming_bounds():
    sample = _random_sample()
    margins = W.census_margins(census.frame("uk"), W.ONE_WAY_MARGINS)
    free = W.rake(sample, margins)
    assert free.weight_min < 0.2 and free.weight_max > 4.5
    res = W.rake(sample, margins, bounds=(0.2, 4.5), max_iter=5000)
    assert res.converged and res.max_margin_error < 1e-10
    assert res.weights.min() >= 0.2 * (1 - 1e-9) and res.weights.max() <= 4.5 * (1 + 1e-9)
    assert res.n_trimmed_high >= 1 and res.n_trimmed_low >= 1
    assert res.weights.mean() == pytest.approx(1.0)
    assert res.kish_deff < free.kish_deff


def test_infeasible_bounds_do_not_converge():
    sample = _random_sample()
    margins = W.census_margins(census.frame("uk"), W.ONE_WAY_MARGINS)
    with pytest.raises(W.RakingConvergenceError, match="bounds") as info:
        W.rake(sample, margins, bounds=(0.9, 1.1), max_iter=200)
    assert not info.value.result.converged
    res = W.rake(sample, margins, bounds=(0.9, 1.1), max_iter=200, strict=False)
    assert not res.converged and res.iterations == 200 and res.max_margin_error > 1e-3


def test_non_convergence_is_reported():
    with pytest.raises(W.RakingConvergenceError, match="did not converge in 1 sweeps"):
        W.rake(
            _sample_2x2(),
            {"a": pd.Series({"A": 1, "B": 1}), "b": pd.Series({"x": 1, "y": 1})},
            max_iter=1,
        )


def test_clear_errors():
    sample = _sample_2x2()
    good_b = pd.Series({"x": 0.5, "y": 0.5})
    with pytest.raises(W.WeightingError, match="not in the margin"):
        W.rake(sample, {"a": pd.Series({"A": 1.0}), "b": good_b})
    with pytest.raises(W.WeightingError, match="no sample units.*C"):
        W.rake(sample, {"a": pd.Series({"A": 1, "B": 1, "C": 1}), "b": good_b})
    with pytest.raises(W.WeightingError, match="target share 0"):
        W.rake(sample, {"a": pd.Series({"A": 1, "B": 0}), "b": good_b})
    with pytest.raises(W.WeightingError, match="missing value"):
        W.rake(sample.assign(a=["A", None, "A", "B", "B"]), {"a": pd.Series({"A": 1, "B": 1})})
    with pytest.raises(W.WeightingError, match="lacks columns"):
        W.rake(sample, {"c": pd.Series({"A": 1})})
    with pytest.raises(W.WeightingError, match="disagree"):
        W.rake(
            sample,
            {
                "a": pd.Series({"A": 0.5, "B": 0.5}),
                ("a", "b"): pd.Series(
                    {("A", "x"): 0.3, ("A", "y"): 0.3, ("B", "x"): 0.2, ("B", "y"): 0.2}
                ),
            },
        )
    with pytest.raises(W.WeightingError, match="bounds"):
        W.rake(sample, {"b": good_b}, bounds=(1.2, 3))
    with pytest.raises(W.WeightingError, match="no margins"):
        W.rake(sample, {})


def test_base_weights_and_zero_units():
    sample = _sample_2x2()
    margins = {"a": pd.Series({"A": 0.5, "B": 0.5})}
    res = W.rake(sample, margins, base_weights=np.array([1, 3, 0, 1, 1]))
    w = res.weights.to_numpy()
    assert w[2] == 0
    # Within a category the base-weight ratios survive raking.
    assert w[1] / w[0] == pytest.approx(3)
    assert (w[:2].sum()) == pytest.approx(w[3:].sum())
    assert w[w > 0].mean() == pytest.approx(1)


def test_poststratify_hand_computed():
    frame = census.frame("uk")
    sample = _random_sample(n=400, seed=2)
    res = W.poststratify(sample, frame, ("age", "sex"))
    shares = frame.groupby(["age", "sex"], observed=True)["share"].sum()
    counts = sample.groupby(["age", "sex"]).size()
    for (age, sex), n_c in counts.items():
        expected = shares[(age, sex)] / (n_c / len(sample))
        got = res.weights[(sample["age"] == age) & (sample["sex"] == sex)]
        np.testing.assert_allclose(got, expected)
    assert res.max_margin_error < 1e-12 and res.method == "poststratification"
    with pytest.raises(W.WeightingError, match="every cell filled"):
        W.poststratify(sample.iloc[:50], frame)  # 60 cells cannot all be filled by 50


def test_participant_weights_excludes_and_counts():
    people = make_participants(n=600, seed=3)
    res = W.participant_weights(people, "uk", margins=W.ONE_WAY_MARGINS)
    uk = people[(people["reside_country"] == "GBR") & ~people["survey_only"]]
    eligible = uk[
        uk["sex"].notna()
        & (uk["ethnicity"] != "Prefer not to say")
        & (uk["age"] != "Prefer not to say")
    ]
    assert set(res.weights.index) == set(eligible["participant"])
    ex = res.excluded
    assert ex["not resident in GBR"] == int((people["reside_country"] != "GBR").sum())
    assert ex["survey only (no ratings)"] == int(
        ((people["reside_country"] == "GBR") & people["survey_only"]).sum()
    )
    no_cell = sum(v for k, v in ex.items() if k.startswith("no census cell"))
    assert no_cell == len(uk) - len(eligible)
    assert ex.get("no census cell: gender: Non-binary / third gender", 0) == int(
        ((uk["gender"] == "Non-binary / third gender") & (uk["age"] != "Prefer not to say")).sum()
    )
    assert res.summary()["excluded"] == ex


def test_default_weights_fall_back_to_one_way():
    people = make_participants(n=600, seed=3)
    # Remove every UK 65+ woman: the age x sex margin has an empty cell.
    drop = (
        (people["reside_country"] == "GBR")
        & (people["age"] == "65+")
        & (people["gender"] == "Female")
    )
    res = W.default_participant_weights(people[~drop], "uk")
    assert res.margins == W.ONE_WAY_MARGINS
    res_full = W.default_participant_weights(people, "uk")
    assert res_full.margins == W.DEFAULT_MARGINS


def test_linearised_se_equals_textbook_and_statsmodels():
    rng = np.random.default_rng(0)
    # One rating per participant, unit weights: SE = s / sqrt(n).
    n = 50
    y = rng.integers(1, 101, n)
    ratings = pd.DataFrame(
        {
            "participant": [f"p{i}" for i in range(n)],
            "llm": "gpt-4",
            "turn": 0,
            "score": y,
            "chosen": rng.random(n) < 0.4,
        }
    )
    w = pd.Series(1.0, index=[f"p{i}" for i in range(n)])
    est = W.weighted_llm_estimates(ratings, w, llms=["gpt-4"])
    assert est.loc["gpt-4", "mean_rating"] == pytest.approx(y.mean())
    assert est.loc["gpt-4", "mean_rating_se"] == pytest.approx(y.std(ddof=1) / math.sqrt(n))
    # Several ratings per participant: equals statsmodels' CR1 intercept-only SE.
    import statsmodels.api as sm

    k = rng.integers(1, 6, n)
    pid = np.repeat(np.arange(n), k)
    scores = rng.normal(50, 10, n)[pid] + rng.normal(0, 10, len(pid))
    ratings = pd.DataFrame(
        {
            "participant": [f"p{i}" for i in pid],
            "llm": "gpt-4",
            "turn": 0,
            "score": scores,
            "chosen": False,
        }
    )
    est = W.weighted_llm_estimates(ratings, w, llms=["gpt-4"])
    fit = sm.OLS(scores, np.ones(len(scores))).fit(cov_type="cluster", cov_kwds={"groups": pid})
    assert est.loc["gpt-4", "mean_rating"] == pytest.approx(fit.params[0])
    assert est.loc["gpt-4", "mean_rating_se"] == pytest.approx(fit.bse[0], rel=1e-10)


def test_weighted_estimates_values():
    ratings = pd.DataFrame(
        {
            "participant": ["a", "a", "b", "b", "c"],
            "llm": ["gpt-4", "command", "gpt-4", "gpt-4", "command"],
            "turn": [0, 0, 0, 0, 1],
            "score": [10, 80, 11, 60, 5],
            "chosen": [True, False, False, True, True],
        }
    )
    w = pd.Series({"a": 1.0, "b": 3.0})
    est = W.weighted_llm_estimates(ratings, w, llms=["gpt-4", "command"])
    # gpt-4: a (w 1) scored 10; b (w 3) scored 11 and 60.
    assert est.loc["gpt-4", "mean_rating"] == pytest.approx((10 + 3 * 11 + 3 * 60) / 7)
    assert est.loc["gpt-4", "chosen_share"] == pytest.approx((1 + 3) / 7)
    assert est.loc["gpt-4", "veto_rate"] == pytest.approx(1 / 7)  # 10 is a veto, 11 is not
    assert est.loc["gpt-4", "n_ratings"] == 3 and est.loc["gpt-4", "n_participants"] == 2
    assert est.loc["command", "mean_rating"] == pytest.approx(80)  # c's rating is turn 1
    assert est.attrs["n_ratings_unweighted"] == 0
    all_turns = W.weighted_llm_estimates(ratings, w, llms=["gpt-4", "command"], turn=None)
    assert all_turns.attrs["n_ratings_unweighted"] == 1  # c has no weight
    with pytest.raises(W.WeightingError, match="outside the list"):
        W.weighted_llm_estimates(ratings, w, llms=["gpt-4"])
    with pytest.raises(W.WeightingError, match="seed"):
        W.weighted_llm_estimates(ratings, w, llms=["gpt-4", "command"], se="bootstrap")


def test_bootstrap_agrees_with_calibrated_linearisation():
    people = make_participants(n=700, seed=11)
    ratings = make_ratings(people, seed=12)
    res = W.participant_weights(people, "us", margins=W.ONE_WAY_MARGINS)
    lin = W.weighted_llm_estimates(ratings, res)
    fixed = W.weighted_llm_estimates(ratings, res.weights)
    boot = W.weighted_llm_estimates(ratings, res, se="bootstrap", replicates=200, seed=7)
    with pytest.warns(DeprecationWarning, match="'n_boot' is deprecated"):  # the old names still work
        again = W.weighted_llm_estimates(ratings, res, se="bootstrap", n_boot=200, rng=7)
    pd.testing.assert_frame_equal(boot, again)  # seeded
    np.testing.assert_allclose(lin["mean_rating"], boot["mean_rating"])
    ratio = boot["mean_rating_se"] / lin["mean_rating_se"]
    assert ratio.between(0.7, 1.4).all(), ratio
    # Calibration removes the part of the variance explained by the margins.
    assert (lin["mean_rating_se"] <= fixed["mean_rating_se"] * 1.05).mean() > 0.8


def test_cli_rake(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    import prism_stats.data
    from prism_stats.cli import app

    people = make_participants(n=500, seed=8)

    class FakeData:
        participants = people
        data_hash = "h"

    monkeypatch.setattr(prism_stats.data, "load_prism", lambda folder, **kwargs: FakeData(), raising=False)
    out = tmp_path / "w.csv"
    result = CliRunner().invoke(
        app,
        [
            "rake",
            "somewhere",
            "--country",
            "uk",
            "--out",
            str(out),
            "--margins",
            "age,sex,ethnicity",
        ],
    )
    assert result.exit_code == 0, result.output
    weights = pd.read_csv(out)
    assert list(weights.columns) == ["participant", "weight"]
    assert weights["weight"].mean() == pytest.approx(1.0)
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["margins"] == ["age", "sex", "ethnicity"] and summary["converged"]
    assert (tmp_path / "w_balance.csv").is_file()
    bad = CliRunner().invoke(
        app, ["rake", "x", "--country", "uk", "--out", str(out), "--bounds", "2,3"]
    )
    assert bad.exit_code == 2 and "bounds" in bad.output


def test_jointly_unattainable_margins_are_reported():
    # Every A unit is an x unit, but A must be half the population and x a fifth.
    sample = pd.DataFrame({"a": ["A", "B", "B"], "b": ["x", "x", "y"]})
    margins = {"a": pd.Series({"A": 0.5, "B": 0.5}), "b": pd.Series({"x": 0.2, "y": 0.8})}
    with pytest.raises(W.RakingConvergenceError, match="jointly unattainable"):
        W.rake(sample, margins, max_iter=300)


def test_raking_removes_the_bias_of_a_skewed_sample():
    """A sample skewed toward young men, with ratings that depend on sex and age: the raw
    mean is biased, the mean raked to the UK census margins hits the census-population
    mean (large sample, little noise, so the test is about bias)."""
    people = make_participants(n=6000, seed=31)
    people = people.loc[people["reside_country"] == "GBR"].reset_index(drop=True)
    rng = np.random.default_rng(32)
    female = (people["sex"] == "Female").to_numpy()
    older = people["age"].isin(["45-54", "55-64", "65+"]).to_numpy()
    keep = ~(female | older) | (rng.random(len(people)) < 0.25)
    people = people.loc[keep].reset_index(drop=True)
    female, older = female[keep], older[keep]

    def expected(is_female, is_older):
        return 50.0 + 12.0 * is_female + 8.0 * is_older

    ratings = pd.DataFrame({
        "participant": people["participant"], "llm": "gpt-4", "turn": 0, "chosen": True,
        "score": expected(female, older) + rng.normal(0.0, 4.0, len(people)),
    })
    frame = census.frame("uk")
    share = frame["count"] / frame["count"].sum()
    truth = float((share * expected(frame["sex"].astype(str).eq("Female").to_numpy(),
                                    frame["age"].isin(["45-54", "55-64", "65+"]).to_numpy())).sum())

    raking = W.default_participant_weights(people, "uk")
    assert raking.converged
    raked = W.weighted_llm_estimates(ratings, raking, llms=["gpt-4"]).loc["gpt-4"]
    raw = ratings["score"].mean()
    assert abs(raw - truth) > 4.0  # the skew biases the raw mean by several points
    assert abs(raked["mean_rating"] - truth) < 3 * raked["mean_rating_se"] + 0.05
    assert raked["mean_rating_se"] < 0.4
