"""Response features, clustered OLS, demographic regression and the comparison table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest_weights import make_participants, make_ratings
from scipy import stats

from prism_stats import comparators as C
from prism_stats import vocab
from prism_stats import weights as W


def test_response_features_cases():
    texts = pd.Series(
        [
            "Here you go:\n1. First\n2. Second",
            "Options:\n- tea\n* coffee",
            "What would you like to know?  ",
            "As an AI language model, I can help.",
            "I don’t have personal opinions, but here is a summary.",
            "I'm sorry, but I can't help with that request.",
            "I am Claude, an AI assistant made by Anthropic.",
            "I was trained by OpenAI to be helpful.",
            "Google is a search engine founded in 1998.",
            "Line one\nline two without a list",
            "EMPTY STRING",
        ]
    )
    f = C.response_features(texts)
    assert list(f.columns) == list(C.FEATURES)
    assert f["text_length"].tolist() == texts.str.len().tolist()
    assert f["enumeration"].tolist() == [True, True] + [False] * 9
    assert f["line_breaks"].tolist() == [True, True] + [False] * 7 + [True, False]
    assert f["question_mark_end"].tolist() == [False, False, True] + [False] * 8
    assert f["deanthro"].tolist() == [False] * 3 + [True, True] + [False] * 6
    assert f["refusal"].tolist() == [False] * 5 + [True] + [False] * 5
    assert f["self_identification"].tolist() == [False] * 6 + [True, True] + [False] * 3


def test_phrase_lists_are_substantial_and_lower_case():
    assert len(C.DEANTHROPOMORPHISING_PHRASES) >= 21
    assert len(C.REFUSAL_PHRASES) >= 29
    for p in C.DEANTHROPOMORPHISING_PHRASES + C.REFUSAL_PHRASES:
        assert p == p.lower()


def test_ols_clustered_matches_hand_sandwich():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(40), rng.integers(2, 8, 40))
    n = len(g)
    x = rng.normal(size=n)
    y = 2 + 0.5 * x + rng.normal(size=40)[g] + rng.normal(size=n)
    table = C.ols_clustered(
        pd.Series(y), pd.DataFrame({"x": x}), pd.Series(g), name="t", outcome="y"
    )
    X = np.column_stack([np.ones(n), x])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = sum(np.outer(X[g == k].T @ e[g == k], X[g == k].T @ e[g == k]) for k in range(40))
    G, K = 40, 2
    V = bread @ meat @ bread * G / (G - 1) * (n - 1) / (n - K)
    np.testing.assert_allclose(table.coefficients["coef"], beta, rtol=1e-10)
    np.testing.assert_allclose(table.coefficients["se"], np.sqrt(np.diag(V)), rtol=1e-8)
    assert table.n_obs == n and table.n_clusters == 40
    # p-values from t with G - 1 degrees of freedom.
    t = beta / np.sqrt(np.diag(V))
    np.testing.assert_allclose(table.coefficients["p"], 2 * stats.t.sf(np.abs(t), G - 1), rtol=1e-6)
    with pytest.raises(C.ComparatorError, match="rank deficient"):
        C.ols_clustered(
            pd.Series(y), pd.DataFrame({"x": x, "x2": 2 * x}), pd.Series(g), name="t", outcome="y"
        )


@pytest.fixture(scope="module")
def synthetic():
    people = make_participants(n=700, seed=21)
    ratings = make_ratings(people, seed=22)
    return people, ratings


def test_response_feature_regression_recovers_effects(synthetic):
    _, ratings = synthetic
    table = C.response_feature_regression(ratings, features=("line_breaks", "refusal"))
    coefs = table.coefficients
    turn0 = ratings[ratings["turn"] == 0]
    assert table.n_obs == len(turn0)
    assert table.n_clusters == turn0["participant"].nunique()
    # The generator adds +6 for a line break and -10 for "I'm sorry".
    assert coefs.loc["line_breaks", "ci_low"] < 6 < coefs.loc["line_breaks", "ci_high"]
    assert coefs.loc["refusal", "ci_low"] < -10 < coefs.loc["refusal", "ci_high"]
    assert 0 < table.notes["prevalence"]["refusal"] < 1
    full = C.response_feature_regression(ratings)
    assert list(full.coefficients.index) == ["Intercept", *C.FEATURES]
    trimmed = C.response_feature_regression(ratings, max_length_quantile=0.95)
    assert trimmed.n_obs == table.n_obs - trimmed.notes["n_trimmed"]
    assert "\\toprule" in full.to_latex() and "| Term |" in full.to_markdown()
    # one regression writer: the comparators' table is the rankings' supplement table
    assert full.to_table("regression_x").caption.count("not adjusted for multiplicity") == 1


def test_demographic_regression(synthetic):
    people, ratings = synthetic
    table = C.demographic_regression((people, ratings))
    terms = list(table.coefficients.index)
    assert terms[0] == "Intercept"
    # Reference levels are absent; other levels present.
    for absent in (
        "gender: Male",
        "age: 18-24",
        "region: US",
        "ethnicity: White",
        "religion: No Affiliation",
        f"llm: {vocab.LLM_SHORT_NAMES[0]}",
        "conversation type: unguided",
    ):
        assert absent not in terms
    assert (
        "age: 65+" in terms
        and "llm: gpt-4" in terms
        and "conversation type: values guided" in terms
    )
    # The generator's age effect is +2 per band.
    coef = table.coefficients
    assert coef.loc["age: 65+", "ci_low"] < 10 < coef.loc["age: 65+", "ci_high"]
    assert table.n_obs == int((ratings["turn"] == 0).sum())
    with pytest.raises(C.ComparatorError, match="participants lack"):
        C.demographic_regression((people.drop(columns=["religion_simplified"]), ratings))


def _poststrat(country: str, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mean = rng.normal(60, 5, len(vocab.LLM_SHORT_NAMES))
    return pd.DataFrame(
        {
            "country": country,
            "group": "all",
            "llm": vocab.LLM_SHORT_NAMES,
            "mean": mean,
            "sd": 1.0,
            "q05": mean - 1.6,
            "q50": mean,
            "q95": mean + 1.6,
            "p_best": 0.05,
            "raw_mean": np.nan,
            "rep_mean": np.nan,
        }
    )


def test_comparison_table(synthetic, tmp_path):
    people, ratings = synthetic
    weighting = W.participant_weights(people, "uk", margins=W.ONE_WAY_MARGINS)
    ps = pd.concat([_poststrat("uk"), _poststrat("uk").assign(group="male", mean=0.0)])
    comp = C.comparison_table((people, ratings), "uk", weighting=weighting, poststrat=ps)
    t = comp.table
    turn0 = ratings[ratings["turn"] == 0].assign(participant=lambda d: d["participant"].astype(str))
    residents = set(people.loc[people["reside_country"] == "GBR", "participant"])
    rep = set(people.loc[people["in_uk_rep"], "participant"])
    raw = turn0[turn0["participant"].isin(residents)].groupby("llm", observed=True)["score"].mean()
    rep_mean = turn0[turn0["participant"].isin(rep)].groupby("llm", observed=True)["score"].mean()
    np.testing.assert_allclose(t.loc[raw.index, "raw_mean"], raw)
    np.testing.assert_allclose(t.loc[rep_mean.index, "rep_mean"], rep_mean)
    w = weighting.weights
    sub = turn0[turn0["participant"].isin(w.index)].assign(w=lambda d: d["participant"].map(w))
    raked = sub.groupby("llm", observed=True).apply(
        lambda d: np.average(d["score"], weights=d["w"])
    )
    np.testing.assert_allclose(t.loc[raked.index, "raked_mean"], raked)
    expected_mrp = _poststrat("uk").set_index("llm")["mean"]
    np.testing.assert_allclose(t["mrp_mean"], expected_mrp.loc[t.index])
    # Ranks: 1 = highest mean.
    assert t.loc[t["mrp_mean"].idxmax(), "rank_mrp"] == 1
    assert sorted(t["rank_mrp"]) == list(range(1, 22))
    rc = comp.rank_correlations.set_index(["estimator_a", "estimator_b"])
    assert len(rc) == 6
    ok = t["raw_mean"].notna()
    assert rc.loc[("raw", "mrp"), "spearman"] == pytest.approx(
        stats.spearmanr(t.loc[ok, "raw_mean"], t.loc[ok, "mrp_mean"]).statistic
    )
    assert rc.loc[("raw", "mrp"), "kendall"] == pytest.approx(
        stats.kendalltau(t.loc[ok, "raw_mean"], t.loc[ok, "mrp_mean"]).statistic
    )
    assert (t["raked_se"] > 0).all() and (t["raw_se"] > 0).all()
    paths = comp.write(tmp_path)
    assert sorted(p.name for p in paths) == [
        "compare_uk.csv",
        "compare_uk.md",
        "compare_uk.tex",
        "compare_uk_ranks.csv",
    ]
    tex = (tmp_path / "compare_uk.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "gpt-4" in tex and "90\\% interval" in tex
    back = pd.read_csv(tmp_path / "compare_uk.csv")
    assert len(back) == 21 and "rank_raked" in back
    md = (tmp_path / "compare_uk.md").read_text()
    assert md.count("\n| ") >= 21 and "Spearman" in md


def test_comparison_errors(synthetic):
    people, ratings = synthetic
    weighting = W.participant_weights(people, "us", margins=W.ONE_WAY_MARGINS)
    with pytest.raises(C.ComparatorError, match="lacks columns"):
        C.comparison_table(
            (people, ratings),
            "us",
            weighting=weighting,
            poststrat=_poststrat("us").drop(columns=["q05"]),
        )
    with pytest.raises(C.ComparatorError, match="unknown LLMs"):
        C.comparison_table(
            (people, ratings),
            "us",
            weighting=weighting,
            poststrat=_poststrat("us").replace({"llm": {"gpt-4": "gpt-5"}}),
        )
    with pytest.raises(C.ComparatorError, match="unknown country"):
        C.comparison_table((people, ratings), "fr", weighting=weighting)


def test_cli_compare(synthetic, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import prism_stats.data
    from prism_stats.cli import app

    people, ratings = synthetic

    class FakeData:
        participants = people
        conversations = None
        ratings = None
        data_hash = "abc123"

    FakeData.ratings = ratings
    loaded = []

    def fake_load(folder, **kwargs):
        loaded.append(str(folder))
        return FakeData()

    monkeypatch.setattr(prism_stats.data, "load_prism", fake_load, raising=False)
    data_folder = tmp_path / "prism"
    data_folder.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"data": {"folder": str(data_folder), "data_hash": "abc123"}})
    )
    _poststrat("us").to_csv(run / "poststrat_us.csv", index=False)
    result = CliRunner().invoke(app, ["compare", str(run), "--country", "us"])
    assert result.exit_code == 0, result.output
    assert loaded == [str(data_folder)]
    for name in (
        "compare_us.csv",
        "compare_us.tex",
        "compare_us.md",
        "compare_us_ranks.csv",
        "compare_us_weights.json",
        "compare_us_balance.csv",
    ):
        assert (run / name).is_file(), name
    meta = json.loads((run / "compare_us_weights.json").read_text())
    assert meta["weighting"]["converged"] is True
    assert any(k.startswith("not resident") for k in meta["weighting"]["excluded"])
    # A run fitted to other data is refused.
    (run / "run.json").write_text(
        json.dumps({"data": {"folder": str(data_folder), "data_hash": "zzz"}})
    )
    result = CliRunner().invoke(app, ["compare", str(run), "--country", "us"])
    assert result.exit_code == 1 and "holds different data" in result.output
    result = CliRunner().invoke(app, ["compare", str(run), "--country", "uk"])
    assert result.exit_code == 2 and "poststrat_uk.csv" in result.output


def test_comparison_refuses_weights_of_another_country(synthetic):
    people, ratings = synthetic
    us = W.participant_weights(people, "us", margins=W.ONE_WAY_MARGINS)
    with pytest.raises(C.ComparatorError, match="not residents of GBR"):
        C.comparison_table((people, ratings), "uk", weighting=us)
