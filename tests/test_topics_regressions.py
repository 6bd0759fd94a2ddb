"""The study's topic regressions: the design against statsmodels' formula interface, HC1
against clustered standard errors, and the multiple-testing corrections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_stats.topics import read_assignments, topic_design, topic_regressions


@pytest.fixture(scope="module")
def planted(small_data, synth_small):
    """The small synthetic release with its true topics read back as an assignments file."""
    asg = read_assignments(synth_small / "truth" / "topics.csv",
                           small_data.conversations["conversation"])
    return topic_design(small_data, asg)


@pytest.fixture(scope="module")
def lpm(planted):
    return topic_regressions(planted, correction="holm")


def _formula_frame(design):
    f = design.frame.rename(columns={"conversation type": "ctype"})
    return f


def test_coefficients_and_ses_equal_statsmodels_formula_fit(planted, lpm):
    import statsmodels.formula.api as smf

    frame = _formula_frame(planted)
    refs = planted.references
    formula = ("y ~ C(gender, Treatment({g!r})) + C(age, Treatment({a!r})) + "
               "C(region, Treatment({r!r})) + C(ethnicity, Treatment({e!r})) + "
               "C(religion, Treatment({rl!r})) + C(ctype, Treatment({t!r}))").format(
        g=refs["gender"], a=refs["age"], r=refs["region"], e=refs["ethnicity"],
        rl=refs["religion"], t=refs["conversation type"])
    groups = pd.factorize(frame["participant"])[0]
    for topic in planted.topics[:4]:
        df = frame.assign(y=(frame["topic"] == topic).astype(float))
        hc1 = smf.ols(formula, df).fit(cov_type="HC1", use_t=True)
        cl = smf.ols(formula, df).fit(cov_type="cluster", use_t=True, cov_kwds={"groups": groups})
        ours = lpm.coefficients[lpm.coefficients["topic"] == topic].set_index("term")
        # map formula names "C(gender, Treatment('Male'))[T.Female]" to "gender: Female"
        names = {}
        for name in hc1.params.index:
            if name == "Intercept":
                names[name] = "Intercept"
                continue
            var = name.split("(")[1].split(",")[0]
            level = name.split("[T.")[1][:-1]
            names[name] = f"{'conversation type' if var == 'ctype' else var}: {level}"
        assert set(names.values()) == set(ours.index)
        for name, term in names.items():
            assert ours.loc[term, "coef"] == pytest.approx(hc1.params[name], abs=1e-10)
            assert ours.loc[term, "se_hc1"] == pytest.approx(hc1.bse[name], rel=1e-8)
            assert ours.loc[term, "p_hc1"] == pytest.approx(hc1.pvalues[name], rel=1e-6, abs=1e-12)
            assert ours.loc[term, "se_cluster"] == pytest.approx(cl.bse[name], rel=1e-8)


def test_hc1_matches_the_sandwich_by_hand(planted, lpm):
    X = np.column_stack([np.ones(len(planted.X)), planted.X.to_numpy()])
    topic = planted.topics[0]
    y = planted.outcome(topic)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ beta
    n, k = X.shape
    bread = np.linalg.inv(X.T @ X)
    meat = (X * e[:, None] ** 2).T @ X
    se = np.sqrt(np.diag(bread @ meat @ bread) * n / (n - k))
    ours = lpm.coefficients[lpm.coefficients["topic"] == topic]
    np.testing.assert_allclose(ours["coef"], beta, atol=1e-10)
    np.testing.assert_allclose(ours["se_hc1"], se, rtol=1e-8)


def test_clustered_ses_exceed_hc1_for_participant_factors_when_people_repeat(planted, lpm):
    # The generator's participant effects make a person's ~5 prompts correlated (design
    # effect ~1.3): for participant-level factors the clustered SEs are larger, by ~1.05 in
    # the median; conversation type varies within a participant, so its ratio stays ~1.
    # Levels held by few people are left out: their clustered SEs are too noisy to compare.
    people = planted.frame.groupby("participant").first()
    held = {f"{f}: {lv}": k for f in ("gender", "age", "region", "ethnicity", "religion")
            for lv, k in people[f].value_counts().items()}
    c = lpm.coefficients[lpm.coefficients["term"] != "Intercept"].copy()
    c["ratio"] = c["se_cluster"] / c["se_hc1"]
    person = c[c["term"].map(held).fillna(0) >= 30]
    ctype = c[c["factor"] == "conversation type"]
    assert person["ratio"].median() > 1.03, person.groupby("factor")["ratio"].median()
    assert (person.groupby("factor")["ratio"].median() > 1.0).all()
    assert abs(ctype["ratio"].median() - 1) < 0.04
    assert person["ratio"].median() > ctype["ratio"].median() + 0.03


def test_clustered_equals_hc1_without_repeats(small_data, synth_small):
    # One conversation per participant: every cluster is one observation, and CR1 with
    # statsmodels' G/(G-1) (N-1)/(N-K) factor equals HC1's N/(N-K) exactly (G = N).
    from types import SimpleNamespace

    from prism_stats.topics import assignments_from_frame

    first = small_data.conversations.groupby("participant", observed=True).head(1)
    sub = SimpleNamespace(conversations=first.reset_index(drop=True),
                          participants=small_data.participants)
    truth = pd.read_csv(synth_small / "truth" / "topics.csv", dtype={"conversation": str})
    asg = assignments_from_frame(truth[truth["conversation"].isin(first["conversation"])],
                                 first["conversation"])
    c = topic_regressions(topic_design(sub, asg)).coefficients
    np.testing.assert_allclose(c["se_cluster"] / c["se_hc1"], 1.0, rtol=1e-8)


def test_corrections_match_statsmodels_multipletests(planted):
    from statsmodels.stats.multitest import multipletests

    for name, method in (("holm", "holm"), ("bh", "fdr_bh"), ("bonferroni", "bonferroni")):
        res = topic_regressions(planted, correction=name)
        c = res.coefficients
        tested = c["term"] != "Intercept"
        np.testing.assert_allclose(c.loc[tested, "p_cluster_adj"],
                                   multipletests(c.loc[tested, "p_cluster"], method=method)[1])
        assert c.loc[~tested, "p_cluster_adj"].isna().all()
        assert (c.loc[tested, "p_cluster_adj"] >= c.loc[tested, "p_cluster"] - 1e-15).all()
    none = topic_regressions(planted, correction=None)
    assert none.significant("cluster").sum() >= topic_regressions(
        planted, correction="holm").significant("cluster").sum()


def test_planted_conversation_type_effects_are_found(lpm):
    c = lpm.coefficients.set_index(["topic_label", "term"])
    values = c.loc[("Managing Relationships", "conversation type: values guided")]
    assert values["coef"] > 0.05 and values["p_cluster"] < 1e-4
    cooking = c.loc[("Recipe and Cooking Queries", "conversation type: controversy guided")]
    assert cooking["coef"] < 0 and cooking["p_cluster"] < 1e-3
    counts = lpm.counts().set_index("factor")
    assert counts.loc["all", "coefficients"] == len(c) - len(lpm.fits)


def test_reference_levels_and_names(planted):
    assert planted.references == {"gender": "Male", "age": "18-24", "region": "US",
                                  "ethnicity": "White", "religion": "No Affiliation",
                                  "conversation type": "unguided"}
    assert "gender: Male" not in set(planted.terms["term"])
    assert "conversation type: values guided" in set(planted.terms["term"])
