"""Online Elo by hand; MLE-Elo against the original's literal procedure (scikit-learn on
duplicated battles); Bradley-Terry against statsmodels and choix; the batched solver."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from prism_stats.rankings import bradley_terry, mle_elo, online_elo, pair_counts
from prism_stats.rankings.elo import anchor_batch, logistic_elo_batch

LLMS = ["command", "palm-2", "gpt-4", "flan-t5-xxl"]


def _battles(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Random battles among four LLMs with strengths 1.0, 0.5, 0.2, -0.6 (logit scale) and ties."""
    rng = np.random.default_rng(seed)
    strength = dict(zip(LLMS, (1.0, 0.5, 0.2, -0.6), strict=True))
    rows = []
    for i in range(n):
        a, b = rng.choice(LLMS, 2, replace=False)
        p = 1 / (1 + math.exp(-(strength[a] - strength[b])))
        u = rng.random()
        winner = "tie" if u < 0.15 else ("a" if rng.random() < p else "b")
        rows.append((f"p{i % 40}", f"i{i}", a, b, winner))
    return pd.DataFrame(rows, columns=["participant", "interaction", "llm_a", "llm_b", "winner"])


def test_online_elo_by_hand():
    b = pd.DataFrame({"llm_a": ["command", "command", "gpt-4"], "llm_b": ["gpt-4", "palm-2", "palm-2"],
                      "winner": ["a", "tie", "b"], "participant": "p"})
    r = {"command": 1000.0, "gpt-4": 1000.0, "palm-2": 1000.0}

    def step(a, b, sa):
        ea = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
        eb = 1 / (1 + 10 ** ((r[a] - r[b]) / 400))
        r[a], r[b] = r[a] + 4 * (sa - ea), r[b] + 4 * (1 - sa - eb)

    step("command", "gpt-4", 1.0)   # command wins: +2 / -2
    step("command", "palm-2", 0.5)  # tie
    step("gpt-4", "palm-2", 0.0)    # palm-2 wins
    got = online_elo(b)
    assert r["command"] == pytest.approx(1002 + 4 * (0.5 - 1 / (1 + 10 ** (-2 / 400))))
    for m, v in r.items():
        assert got[m] == pytest.approx(v, abs=1e-9)


def _original_mle_elo(b: pd.DataFrame, C: float = 1.0) -> pd.Series:
    """The original's procedure written out: battles duplicated, a tie = one win each."""
    from sklearn.linear_model import LogisticRegression

    models = pd.Series(np.arange(len(LLMS)), index=LLMS)
    df = pd.concat([b, b], ignore_index=True)
    X = np.zeros((len(df), len(LLMS)))
    X[np.arange(len(df)), models[df["llm_a"]]] = math.log(10)
    X[np.arange(len(df)), models[df["llm_b"]]] = -math.log(10)
    y = np.zeros(len(df))
    y[(df["winner"] == "a").to_numpy()] = 1.0
    tie = (df["winner"] == "tie").to_numpy().copy()
    tie[len(tie) // 2:] = False
    y[tie] = 1.0
    lr = LogisticRegression(fit_intercept=False, C=C).fit(X, y)
    elo = 400 * lr.coef_[0] + 1000
    elo += 800 - elo[models["flan-t5-xxl"]]
    return pd.Series(elo, index=LLMS)


def test_mle_elo_equals_the_originals_procedure():
    b = _battles()
    ours = mle_elo(b)
    ref = _original_mle_elo(b)
    assert ours["flan-t5-xxl"] == pytest.approx(800)
    for m in LLMS:
        assert ours[m] == pytest.approx(ref[m], abs=0.05)  # same objective, same solver; weights vs rows
    assert ours.attrs["penalty"] == "l2" and ours.attrs["C"] == 1.0


def test_bradley_terry_equals_statsmodels_and_choix():
    import choix
    import statsmodels.api as sm

    b = _battles()
    bt = bradley_terry(b)
    # statsmodels: unpenalised logit on the duplicated design, anchor column dropped
    df = pd.concat([b, b], ignore_index=True)
    idx = {m: i for i, m in enumerate(LLMS)}
    X = np.zeros((len(df), len(LLMS)))
    X[np.arange(len(df)), df["llm_a"].map(idx)] = math.log(10)
    X[np.arange(len(df)), df["llm_b"].map(idx)] = -math.log(10)
    y = (df["winner"] == "a").to_numpy(dtype=float)
    tie = (df["winner"] == "tie").to_numpy().copy()
    tie[len(tie) // 2:] = False
    y[tie] = 1.0
    keep = [i for i, m in enumerate(LLMS) if m != "flan-t5-xxl"]
    fit = sm.Logit(y, X[:, keep]).fit(disp=False)
    ref = dict.fromkeys(LLMS, 800.0)
    for k, i in enumerate(keep):
        ref[LLMS[i]] = 800.0 + 400 * fit.params[k]
    for m in LLMS:
        assert bt[m] == pytest.approx(ref[m], abs=1e-3)
    # choix on the comparison counts, centred on the Elo scale
    c = pair_counts(b, llms=LLMS)
    theta = choix.ilsr_pairwise_dense(2 * c["wins"].values + c["ties"].values, alpha=0.0, tol=1e-12)
    elo = theta * 400 / math.log(10)
    elo += 800 - elo[LLMS.index("flan-t5-xxl")]
    assert np.allclose(bt.reindex(LLMS).to_numpy(), elo, atol=1e-3)
    # the penalty shrinks: the unpenalised spread is wider
    pen = mle_elo(b)
    assert np.ptp(bt.to_numpy()) > np.ptp(pen.to_numpy())


def test_bradley_terry_not_estimable_is_nan_with_a_reason():
    b = pd.DataFrame({"llm_a": ["command", "command", "gpt-4"], "llm_b": ["gpt-4", "palm-2", "palm-2"],
                      "winner": ["a", "a", "a"], "participant": "p"})  # command never loses
    bt = bradley_terry(b)
    assert bt.isna().all() and "not estimable" in bt.attrs["note"]
    assert np.isfinite(mle_elo(b).to_numpy()).all()  # the penalty keeps MLE-Elo finite


def test_batched_newton_matches_the_library_fits():
    from sklearn.linear_model import LogisticRegression

    from prism_stats.rankings.elo import design_rows

    tables = [pair_counts(_battles(seed=s), llms=LLMS) for s in (1, 2, 3)]
    wins = np.stack([t["wins"].values for t in tables])
    ties = np.stack([t["ties"].values for t in tables])
    pen = anchor_batch(logistic_elo_batch(wins, ties, penalised=True), LLMS)
    unpen = anchor_batch(logistic_elo_batch(wins, ties, penalised=False), LLMS)
    for r, t in enumerate(tables):
        first, second, y, w = design_rows(t["wins"].values, t["ties"].values)
        X = np.zeros((len(y), len(LLMS)))
        X[np.arange(len(y)), first] = math.log(10)
        X[np.arange(len(y)), second] = -math.log(10)
        exact = LogisticRegression(fit_intercept=False, solver="newton-cholesky", tol=1e-10).fit(
            X, y, sample_weight=w)
        ref = 400 * exact.coef_[0] + 1000
        ref += 800 - ref[LLMS.index("flan-t5-xxl")]
        assert np.allclose(pen[r], ref, atol=1e-3)
        assert np.allclose(unpen[r], bradley_terry(t).reindex(LLMS).to_numpy(), atol=1e-3)
