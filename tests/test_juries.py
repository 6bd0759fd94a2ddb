"""Design-based jury analysis: hand-computed example, rules, ties, imputation, legacy loop."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pandas as pd
import pytest

from prism_stats.vocab import AGE_BANDS, ETHNICITY_SIMPLIFIED, GENDERS, LLM_SHORT_NAMES
from prism_stats.welfare import (
    UNSEEN_VALUE,
    JuryInputError,
    chosen_llm_labels,
    iterative_impute,
    jury_scores,
    jury_tables,
    pick_best,
    population_welfare,
    run_juries,
    summarise_welfare,
)
from prism_stats.welfare.imputation import bayesian_ridge

A, B, C = LLM_SHORT_NAMES[:3]  # command, claude-instant-1, palm-2


# --- the hand-computed example -------------------------------------------------------------
#
# UK REP = p1..p6; p7 is in the US REP only.  Opening-turn balanced ratings give the
# per-user tables (NaN = never seen):
#
#          rating           chosen           veto (score <= 10)
#          A    B    C      A    B    C      A    B    C
#   p1    80   60    .     .5    0    .      0    0    .
#   p2    40    .   90      0    .    1      0    .    0
#   p3     .   70   50      .    1    0      .    0    0
#   p4    20   80    .      0    1    .     .5    0    .
#   p5    60    .    .      1    .    .      0    .    .
#   p6     .    .    .      (no opening balanced rating at all)
#
# p1's A is the mean of 70 and 90; p4's A of 5 and 35; rows at turn 1 or outside the
# balanced subset must be ignored.


def _participants() -> pd.DataFrame:
    rows = [
        ("p1", "Male", "25-34", "White", True, False),
        ("p2", "Female", "55-64", "White", True, False),
        ("p3", "Male", "45-54", "Asian", True, False),
        ("p4", "Female", "18-24", "Black", True, False),
        ("p5", "Non-binary / third gender", "65+", "White", True, False),
        ("p6", "Male", "35-44", "White", True, False),
        ("p7", "Female", "25-34", "White", False, True),
    ]
    df = pd.DataFrame(
        rows,
        columns=["participant", "gender", "age", "ethnicity_simplified", "in_uk_rep", "in_us_rep"],
    )
    df["gender"] = pd.Categorical(df["gender"], categories=GENDERS)
    df["age"] = pd.Categorical(df["age"], categories=AGE_BANDS)
    df["ethnicity_simplified"] = pd.Categorical(
        df["ethnicity_simplified"], categories=ETHNICITY_SIMPLIFIED
    )
    return df


def _ratings() -> pd.DataFrame:
    rows = [
        # participant, turn, llm, score, chosen, balanced
        ("p1", 0, A, 70, False, True),
        ("p1", 0, A, 90, True, True),
        ("p1", 0, B, 60, False, True),
        ("p1", 1, A, 1, False, True),  # later turn: ignored
        ("p2", 0, A, 40, False, True),
        ("p2", 0, C, 90, True, True),
        ("p2", 0, B, 100, False, False),  # not in the balanced subset: ignored
        ("p3", 0, B, 70, True, True),
        ("p3", 0, C, 50, False, True),
        ("p4", 0, A, 5, False, True),
        ("p4", 0, A, 35, False, True),
        ("p4", 0, B, 80, True, True),
        ("p5", 0, A, 60, True, True),
        ("p6", 2, B, 99, True, True),  # p6: later turns only
        ("p7", 0, C, 10, False, True),
        ("p7", 0, B, 30, True, True),
    ]
    df = pd.DataFrame(rows, columns=["participant", "turn", "llm", "score", "chosen", "balanced"])
    df["llm"] = pd.Categorical(df["llm"], categories=LLM_SHORT_NAMES)
    return df


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return {"participants": _participants(), "ratings": _ratings()}


# Injected juries (3 replicates of 3 raters) and what each rule must do with them.
JURIES = [["p1", "p1", "p3"], ["p5", "p6", "p5"], ["p2", "p4", "p6"]]


def _run(tables, rules=("mean", "chosen", "veto"), n_copies=1, seed=0, **kw):
    juries = JURIES * n_copies
    return run_juries(
        tables,
        "uk",
        rules=rules,
        sizes=[3],
        pools=["representative"],
        n_replicates=len(juries),
        seed=seed,
        juries={"uk": {"rep_3": juries}},
        **kw,
    )


def test_tables_hand_computed(tables):
    t = jury_tables(tables, "uk")
    assert t.participants == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert t.llms == [A, B, C]
    nan = np.nan
    np.testing.assert_array_equal(
        t.values.sel(rule="mean").values,
        [
            [80, 60, nan],
            [40, nan, 90],
            [nan, 70, 50],
            [20, 80, nan],
            [60, nan, nan],
            [nan, nan, nan],
        ],
    )
    np.testing.assert_array_equal(
        t.values.sel(rule="chosen").values,
        [[0.5, 0, nan], [0, nan, 1], [nan, 1, 0], [0, 1, nan], [1, nan, nan], [nan, nan, nan]],
    )
    np.testing.assert_array_equal(
        t.values.sel(rule="veto").values,
        [[0, 0, nan], [0, nan, 0], [nan, 0, 0], [0.5, 0, nan], [0, nan, nan], [nan, nan, nan]],
    )
    np.testing.assert_array_equal(t.utility("veto")[3], [0.5, 1.0, nan])
    assert t.n_ratings.sel(participant="p1", llm=A).item() == 2
    assert t.report["ratings_dropped_later_turn"] == 2
    assert t.report["ratings_dropped_not_balanced"] == 1
    assert t.report["rep_members_without_opening_ratings"] == {"uk": 1, "us": 0}
    assert t.llm_first_seen == (A, B, C)


def test_tables_for_selected_rules_only(tables):
    t = jury_tables(tables, "uk", rules=["chosen"])
    assert list(t.values["rule"].values) == ["chosen"]
    with pytest.raises(JuryInputError, match="without rule 'mean'"):
        t.utility("mean")
    with pytest.raises(JuryInputError, match="lack"):
        run_juries(t, "uk", rules="mean", n_replicates=2, seed=0)
    ds = run_juries(
        t, "uk", rules="chosen", sizes=[3], pools=["representative"], n_replicates=2, seed=0
    )
    assert list(ds["rule"].values) == ["chosen"]


def test_pools_and_targets(tables):
    t = jury_tables(tables, "uk")
    ids = np.array(t.participants)
    assert ids[t.pool("uk", "representative")].tolist() == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert ids[t.pool("uk", "male")].tolist() == ["p1", "p3", "p6"]
    assert ids[t.pool("uk", "white")].tolist() == ["p1", "p2", "p5", "p6"]
    assert ids[t.pool("uk", "over45")].tolist() == ["p2", "p3", "p5"]
    assert ids[t.target("uk", "nonmale")].tolist() == ["p2", "p4", "p5"]
    assert ids[t.target("uk", "nonwhite")].tolist() == ["p3", "p4"]
    assert ids[t.target("uk", "under45")].tolist() == ["p1", "p4", "p6"]
    with pytest.raises(JuryInputError, match="restricted"):
        t.pool("us", "male")


def test_jury_scores_unseen_and_duplicates(tables):
    t = jury_tables(tables, "uk")
    pos = {p: i for i, p in enumerate(t.participants)}
    juries = np.array([[pos[p] for p in j] for j in JURIES])
    assert UNSEEN_VALUE == {"mean": 1.0, "chosen": 0.0, "veto": 1.0}  # the original's fills
    mean = jury_scores(t.utility("mean"), juries, unseen=UNSEEN_VALUE["mean"])
    # p1 drawn twice counts twice: B = (60 + 60 + 70) / 3, not (60 + 70) / 2.
    np.testing.assert_allclose(mean[0], [80.0, 190.0 / 3.0, 50.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(mean[1], [60.0, 1.0, 1.0])  # unseen -> 1
    np.testing.assert_array_equal(mean[2], [30.0, 80.0, 90.0])
    chosen = jury_scores(t.utility("chosen"), juries, unseen=UNSEEN_VALUE["chosen"])
    np.testing.assert_allclose(chosen[0], [0.5, 1.0 / 3.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(chosen[1], [1.0, 0.0, 0.0])  # unseen -> 0
    np.testing.assert_array_equal(chosen[2], [0.0, 1.0, 1.0])
    veto = jury_scores(t.utility("veto"), juries, unseen=UNSEEN_VALUE["veto"])
    np.testing.assert_array_equal(veto[1], [1.0, 1.0, 1.0])  # unseen -> 1 (original's rule)
    np.testing.assert_array_equal(veto[2], [0.75, 1.0, 1.0])


def test_population_welfare_ignores_members_who_never_saw(tables):
    t = jury_tables(tables, "uk")
    u = t.utility("mean")
    np.testing.assert_array_equal(population_welfare(u, t.target("uk", "all")), [50.0, 70.0, 70.0])
    np.testing.assert_array_equal(
        population_welfare(u, t.target("uk", "nonmale")), [40.0, 80.0, 90.0]
    )
    np.testing.assert_array_equal(
        population_welfare(u, t.target("uk", "nonwhite")), [20.0, 75.0, 50.0]
    )
    np.testing.assert_array_equal(
        population_welfare(u, t.target("uk", "under45")), [50.0, 70.0, np.nan]
    )


def test_run_hand_computed_picks_welfare_regret(tables):
    ds = _run(tables, rules=("mean",))
    assert chosen_llm_labels(ds).sel(country="uk", rule="mean", scheme="rep_3").values.tolist() == [
        A,
        A,
        C,
    ]
    w = ds["welfare"].sel(country="uk", rule="mean", scheme="rep_3")
    r = ds["regret"].sel(country="uk", rule="mean", scheme="rep_3")
    np.testing.assert_array_equal(w.sel(target="all"), [50, 50, 70])
    np.testing.assert_array_equal(r.sel(target="all"), [20, 20, 0])  # optimum 70 (B and C tie)
    np.testing.assert_array_equal(w.sel(target="nonmale"), [40, 40, 90])
    np.testing.assert_array_equal(r.sel(target="nonmale"), [50, 50, 0])
    np.testing.assert_array_equal(w.sel(target="nonwhite"), [20, 20, 50])
    np.testing.assert_array_equal(r.sel(target="nonwhite"), [55, 55, 25])
    np.testing.assert_array_equal(w.sel(target="under45"), [50, 50, np.nan])  # no under-45 saw C
    with pytest.warns(RuntimeWarning, match="undefined"):
        s = summarise_welfare(ds).set_index("target")
    assert s.loc["all", "welfare_mean"] == pytest.approx(170 / 3, abs=1e-12)
    assert s.loc["all", "regret_mean"] == pytest.approx(40 / 3, abs=1e-12)
    assert s.loc["all", "p_optimal"] == pytest.approx(1 / 3)
    assert s.loc["nonwhite", "p_optimal"] == 0.0
    assert s.loc["under45", "welfare_mean"] == 50.0  # the NaN replicate is skipped ...
    assert s.loc["under45", "p_optimal"] == 0.0  # ... and is not an optimal pick
    assert s.loc["all", "welfare_q05"] == pytest.approx(50.0)
    assert s.loc["all", "welfare_q95"] == pytest.approx(68.0)  # linear: 50 + 0.9 * 20


def test_chosen_rule_and_ties(tables):
    # Jury 3 ties B and C on the chosen rule (both 1.0); juries 1-2 must pick A.
    ds = _run(tables, rules=("chosen",), n_copies=400, seed=11)
    picks = chosen_llm_labels(ds).sel(country="uk", rule="chosen", scheme="rep_3").values
    assert set(picks[0::3]) == {A} and set(picks[1::3]) == {A}
    tied = picks[2::3]
    assert set(tied) == {B, C}
    share_b = np.mean(tied == B)
    assert 0.40 < share_b < 0.60  # fair coin, n = 400: fails with prob. < 1e-4


def test_veto_rule_three_way_tie_includes_unseen(tables):
    ds = _run(tables, rules=("veto",), n_copies=300, seed=5)
    picks = chosen_llm_labels(ds).sel(country="uk", rule="veto", scheme="rep_3").values
    # Jury 2 saw only A (no veto): unseen B and C also score 1 -> three-way tie.
    assert set(picks[1::3]) == {A, B, C}
    # Jury 3: A has a 0.75 non-veto rate, B and C 1.0 -> never A.
    assert set(picks[2::3]) == {B, C}
    # Welfare of the veto rule is the target's non-veto rate of the pick.
    lw = ds["llm_welfare"].sel(country="uk", rule="veto", target="all").values
    np.testing.assert_allclose(lw, [1 - 0.5 / 4, 1.0, 1.0])


def test_pick_best_exact_and_tolerant_ties():
    rng = np.random.default_rng(0)
    scores = np.array([[0.1 + 0.2, 0.3, 0.0]])  # equal in exact arithmetic, not in floats
    assert 0.1 + 0.2 != 0.3
    exact = {int(pick_best(scores, np.random.default_rng(s), tie_rtol=0.0)[0]) for s in range(50)}
    assert exact == {0}
    tolerant = {int(pick_best(scores, np.random.default_rng(s))[0]) for s in range(50)}
    assert tolerant == {0, 1}
    assert pick_best(np.array([[np.nan, 2.0, 1.0]]), rng)[0] == 1


def test_seed_determinism_and_independence_of_requested_subsets():
    data = _random_tables(n=90, seed=3)
    a = run_juries(data, ("uk", "us"), n_replicates=40, seed=7)
    b = run_juries(data, ("uk", "us"), n_replicates=40, seed=7)
    c = run_juries(data, ("uk", "us"), n_replicates=40, seed=8)
    np.testing.assert_array_equal(a["chosen_llm"], b["chosen_llm"])
    np.testing.assert_array_equal(a["welfare"], b["welfare"])
    assert not np.array_equal(a["chosen_llm"], c["chosen_llm"])
    assert a.attrs["seed"] == 7 and a.attrs["method"] == "design"
    # The same scheme gives the same picks whatever else was requested.
    sub = run_juries(data, "us", rules=("chosen",), pools=["male"], n_replicates=40, seed=7)
    assert list(sub["scheme"].values) == ["rep_100", "male_100"]  # reference added
    for scheme in ("rep_100", "male_100"):
        np.testing.assert_array_equal(
            sub["chosen_llm"].sel(country="us", rule="chosen", scheme=scheme),
            a["chosen_llm"].sel(country="us", rule="chosen", scheme=scheme),
        )
    # A numpy Generator is accepted; the base seed drawn from it is recorded.
    g = run_juries(data, "uk", rules="mean", n_replicates=5, seed=np.random.default_rng(1))
    again = run_juries(data, "uk", rules="mean", n_replicates=5, seed=int(g.attrs["seed"]))
    np.testing.assert_array_equal(g["chosen_llm"], again["chosen_llm"])


def test_default_schemes_and_schema():
    data = _random_tables(n=60, seed=1)
    ds = run_juries(data, "uk", n_replicates=3, seed=0)
    assert list(ds["scheme"].values) == [
        "rep_10",
        "rep_20",
        "rep_50",
        "rep_100",
        "male_100",
        "white_100",
        "over45_100",
    ]
    assert ds["chosen_llm"].dims == ("country", "rule", "scheme", "replicate")
    assert ds["welfare"].dims == ("country", "rule", "target", "scheme", "replicate")
    assert list(ds["rule"].values) == ["mean", "chosen", "veto"]
    assert list(ds["target"].values) == ["all", "nonmale", "nonwhite", "under45"]
    assert ds.attrs["imputed"] == 0 and ds.attrs["n_replicates"] == 3
    assert (ds["regret"].fillna(0) >= 0).all()


def test_bad_inputs(tables):
    bad = dict(tables)
    bad["ratings"] = tables["ratings"].drop(columns="balanced")
    with pytest.raises(JuryInputError, match="balanced"):
        jury_tables(bad)
    bad = dict(tables)
    bad["ratings"] = pd.concat(
        [tables["ratings"], tables["ratings"].iloc[[0]].assign(participant="ghost")]
    )
    with pytest.raises(JuryInputError, match="ghost"):
        jury_tables(bad)
    bad = dict(tables)
    bad["ratings"] = tables["ratings"].assign(llm=tables["ratings"]["llm"].where(lambda x: x != A))
    with pytest.raises(JuryInputError, match="ratings.llm"):
        jury_tables(bad)
    with pytest.raises(JuryInputError, match="country"):
        run_juries(tables, "fr")
    with pytest.raises(JuryInputError, match="not in pool"):
        run_juries(
            tables,
            "uk",
            rules="mean",
            sizes=[3],
            pools=["male"],
            skewed_sizes=[3],
            n_replicates=1,
            juries={"uk": {"male_3": [["p1", "p2", "p3"]]}},
        )
    with pytest.raises(JuryInputError, match="shape"):
        run_juries(
            tables,
            "uk",
            sizes=[3],
            pools=["representative"],
            n_replicates=2,
            juries={"uk": {"rep_3": JURIES}},
        )


# --- imputation ----------------------------------------------------------------------------


def test_iterative_impute_recovers_exact_linear_relation_and_keeps_observed():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 10, 200)
    X = np.column_stack([x, 2 * x + 1, -x + 30])
    miss = rng.random(X.shape) < 0.25
    miss[:, 0] = False  # keep one complete column so the relation is identifiable
    Xm = np.where(miss, np.nan, X)
    filled, info = iterative_impute(Xm)
    assert info["converged"] and info["n_missing"] == int(miss.sum())
    np.testing.assert_array_equal(filled[~miss], X[~miss])
    np.testing.assert_allclose(filled[miss], X[miss], atol=1e-5)
    again, _ = iterative_impute(Xm)
    np.testing.assert_array_equal(filled, again)


def test_bayesian_ridge_matches_least_squares_with_abundant_data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5000, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 4.0 + rng.normal(scale=0.1, size=5000)
    coef, intercept = bayesian_ridge(X, y)
    ols = np.linalg.lstsq(np.column_stack([X, np.ones(5000)]), y, rcond=None)[0]
    np.testing.assert_allclose(coef, ols[:3], atol=1e-5)
    assert intercept == pytest.approx(ols[3], abs=1e-5)


def test_imputed_tables_are_clipped_and_fitted_on_everyone():
    # B = A + 40 for most raters; raters who only saw A (A near 95) would be imputed B ~ 135.
    rows, people = [], []
    rng = np.random.default_rng(4)
    for i in range(40):
        a = int(rng.integers(20, 60)) if i < 30 else int(rng.integers(93, 99))
        pid = f"u{i}"
        people.append((pid, "Male", "25-34", "White", i % 2 == 0, i % 2 == 1))
        rows.append((pid, 0, A, a, bool(i % 3 == 0), True))
        if i < 30:
            rows.append((pid, 0, B, a + 40, bool(i % 3 != 0), True))
        rows.append((pid, 0, C, int(rng.integers(1, 100)), False, True))
    p = pd.DataFrame(
        people,
        columns=["participant", "gender", "age", "ethnicity_simplified", "in_uk_rep", "in_us_rep"],
    )
    r = pd.DataFrame(rows, columns=["participant", "turn", "llm", "score", "chosen", "balanced"])
    data = {"participants": p, "ratings": r}
    base = jury_tables(data)
    imp = jury_tables(data, imputed=True)
    raw = base.values.sel(rule="mean").values
    # What the imputer gives before clipping, in the original's row/column order.
    order_r = np.argsort(np.array(base.participants, dtype=object), kind="stable")
    from prism_stats.welfare.jury_tables import _original_column_name

    order_c = np.argsort([_original_column_name(m) for m in base.llms], kind="stable")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        unclipped, _ = iterative_impute(raw[np.ix_(order_r, order_c)])
    assert unclipped.max() > 100  # the clipping below is exercised
    expected = np.empty_like(raw)
    expected[np.ix_(order_r, order_c)] = np.clip(unclipped, 1, 100)
    np.testing.assert_array_equal(imp.values.sel(rule="mean").values, expected)
    for rule, (lo, hi) in {"mean": (1, 100), "chosen": (0, 1), "veto": (0, 1)}.items():
        v = imp.values.sel(rule=rule).values
        assert not np.isnan(v).any() and v.min() >= lo and v.max() <= hi
        obs = ~np.isnan(base.values.sel(rule=rule).values)
        np.testing.assert_array_equal(v[obs], base.values.sel(rule=rule).values[obs])
    # Restricting to a country happens after imputing on everyone.
    uk = jury_tables(data, "uk", imputed=True)
    np.testing.assert_array_equal(
        uk.values.sel(rule="mean").values,
        imp.values.sel(rule="mean", participant=uk.participants).values,
    )
    ds = run_juries(
        data,
        "uk",
        rules="mean",
        sizes=[5],
        pools=["representative"],
        targets=["all"],
        n_replicates=4,
        seed=0,
        imputed=True,
    )
    assert ds.attrs["imputed"] == 1


def test_imputed_rep_member_without_ratings_stays_missing(tables):
    t = jury_tables(tables, "uk", imputed=True)
    assert np.isnan(t.values.sel(participant="p6").values).all()
    assert not np.isnan(t.values.sel(participant=["p1", "p2", "p3", "p4", "p5"]).values).any()


# --- legacy reproduction ---------------------------------------------------------------------


def _random_tables(n: int, seed: int, n_llm: int = 6) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"user{i}" for i in range(n)]
    p = pd.DataFrame(
        {
            "participant": ids,
            "gender": pd.Categorical(
                rng.choice(GENDERS[:3], n, p=[0.5, 0.45, 0.05]), categories=GENDERS
            ),
            "age": pd.Categorical(rng.choice(AGE_BANDS[:6], n), categories=AGE_BANDS),
            "ethnicity_simplified": pd.Categorical(
                rng.choice(ETHNICITY_SIMPLIFIED[:3], n, p=[0.7, 0.2, 0.1]),
                categories=ETHNICITY_SIMPLIFIED,
            ),
            "in_uk_rep": np.arange(n) % 2 == 0,
            "in_us_rep": np.arange(n) % 2 == 1,
        }
    )
    llms = list(LLM_SHORT_NAMES[:n_llm])
    rows = []
    for pid in ids:
        for _ in range(2):
            shown = rng.choice(n_llm, 2, replace=False)
            scores = rng.integers(1, 101, 2)
            win = int(np.argmax(scores))
            for k in range(2):
                rows.append((pid, 0, llms[shown[k]], int(scores[k]), k == win, True))
    r = pd.DataFrame(rows, columns=["participant", "turn", "llm", "score", "chosen", "balanced"])
    return {"participants": p, "ratings": r}


def _original_loop(data, n_rep):
    """A literal re-statement of the original notebook's loop (11b) for comparison."""
    p, r = data["participants"], data["ratings"]
    merged = r[(r.turn == 0) & r.balanced].copy()
    models = merged["llm"].astype(str).unique().tolist()
    merged["chosen"] = merged["chosen"].astype(float)
    tabs = {
        "mean": merged.pivot_table(
            values="score", index="participant", columns="llm", aggfunc="mean", observed=True
        ),
        "chosen": merged.pivot_table(
            values="chosen", index="participant", columns="llm", aggfunc="mean", observed=True
        ),
    }
    over = ["45-54", "55-64", "65+"]
    out = {}
    n_ties = 0
    rng = random.Random(1)
    for rule, fill in (("mean", 1), ("chosen", 0)):
        table = tabs[rule]
        for c in ("us", "uk"):
            rep = p[p[f"in_{c}_rep"]]
            pools = {
                "rep": rep.participant.tolist(),
                "male": rep[rep.gender == "Male"].participant.tolist(),
                "white": rep[rep.ethnicity_simplified == "White"].participant.tolist(),
                "over45": rep[rep.age.isin(over)].participant.tolist(),
            }
            for target in ("all", "nonmale", "nonwhite", "under45"):
                for scheme, size in [
                    ("rep", 10),
                    ("rep", 20),
                    ("rep", 50),
                    ("rep", 100),
                    ("male", 100),
                    ("white", 100),
                    ("over45", 100),
                ]:
                    picks = []
                    for _ in range(n_rep):
                        sample = rng.choices(pools[scheme], k=size)
                        fd = table.reindex(sample)
                        scores = []
                        for m in models:
                            col = fd[m].to_numpy() if m in fd else np.full(size, np.nan)
                            scores.append(fill if np.isnan(col).all() else np.nanmean(col))
                        winners = [i for i, v in enumerate(scores) if v >= max(scores)]
                        n_ties += len(winners) > 1
                        picks.append(models[rng.choice(winners)])
                    out[(rule, c, target, f"{scheme}_{size}")] = picks
    return out, n_ties


def test_legacy_python_random_reproduces_the_original_loop():
    data = _random_tables(n=80, seed=9, n_llm=6)
    n_rep = 6
    ref, n_ties = _original_loop(data, n_rep)
    assert n_ties >= 5  # the tie-breaking stream is exercised
    ds = run_juries(
        data, ("us", "uk"), rules=("mean", "chosen"), n_replicates=n_rep, legacy_python_random=True
    )
    assert ds["chosen_llm"].dims == ("country", "rule", "target", "scheme", "replicate")
    assert ds.attrs["legacy_python_random"] == 1 and ds.attrs["seed"] == 1
    labels = chosen_llm_labels(ds)
    for (rule, c, target, scheme), picks in ref.items():
        ours = labels.sel(country=c, rule=rule, target=target, scheme=scheme).values
        assert ours.tolist() == picks, (rule, c, target, scheme)
    with pytest.raises(JuryInputError, match="legacy"):
        run_juries(
            data, "uk", legacy_python_random=True, juries={"uk": {"rep_10": [["user0"] * 10]}}
        )
