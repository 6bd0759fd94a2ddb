"""Frequentist cross-check of the rating model with statsmodels' MixedLM.

The same ratings (the run's spec filters) are fitted by REML with a participant random
intercept and fixed effects for the LLM (sum-to-zero coded, so its coefficients are on
the scale of the Bayesian ``llm_effect``), the conversation type and the demographic main
effects. Choices that keep the REML design full-rank on any subset:

- the country is left to the participant random intercept (countries nest participants,
  and a country seen through one rater would duplicate that rater's dummy columns); LLMs
  are randomised within participants, so the LLM contrasts do not depend on it;
- demographic levels with fewer than :data:`MIN_LEVEL_PARTICIPANTS` raters are merged
  into one "(rare levels)" level;
- LLM x demographic interactions are left out (a fixed-effects version would have
  hundreds of coefficients); the Bayesian ``llm_effect`` is their rating-weighted average
  over levels, so both estimate the LLM main effect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from .design import select_ratings
from .fit import Run
from .spec import DEMOGRAPHIC_COLUMNS

#: Demographic levels with fewer raters than this are merged in the REML design.
MIN_LEVEL_PARTICIPANTS = 10


def mixedlm_frame(data: Any, run: Run) -> pd.DataFrame:
    """The ratings of the run's spec joined to the participant columns the model uses."""
    spec = run.spec
    kept, _ = select_ratings(data.ratings, spec)
    cols = ["participant"] + [DEMOGRAPHIC_COLUMNS[f] for f in spec.demographics]
    people = data.participants.loc[:, list(dict.fromkeys(cols))].copy()
    frame = kept.loc[:, ["participant", "llm", "conversation_type", "turn", "score"]].merge(
        people, on="participant", how="left")
    for c in frame.columns:
        if c != "score" and c != "turn":
            frame[c] = frame[c].astype(str)
    for f in spec.demographics:
        col = DEMOGRAPHIC_COLUMNS[f]
        raters = frame.groupby(col)["participant"].nunique()
        rare = raters.index[raters < MIN_LEVEL_PARTICIPANTS]
        frame.loc[frame[col].isin(rare), col] = "(rare levels)"
    frame["later"] = (frame["turn"] > 0).astype(float)
    return frame


def fit_mixedlm(frame: pd.DataFrame, run: Run):
    """REML fit; returns the statsmodels results object."""
    spec = run.spec
    terms = ["C(llm, Sum)"]
    if spec.conversation_type:
        terms.append("C(conversation_type)")
    if spec.turns == "all":
        terms.append("later")
    terms += [f"C({DEMOGRAPHIC_COLUMNS[f]})" for f in spec.demographics]
    formula = "score ~ " + " + ".join(terms)
    model = smf.mixedlm(formula, frame, groups=frame["participant"])
    return model.fit(reml=True, method=["lbfgs"])


def mixedlm_crosscheck(run: Run, data: Any) -> pd.DataFrame:
    """LLM effects, Bayesian (posterior mean, 90% interval) beside REML (estimate, SE).

    Returns a DataFrame with columns ``llm, bayes_mean, bayes_q05, bayes_q95, reml, reml_se``;
    ``attrs["correlation"]`` holds the Pearson correlation of the two sets of effects.
    """
    frame = mixedlm_frame(data, run)
    res = fit_mixedlm(frame, run)
    llms = sorted(frame["llm"].unique())  # patsy's level order for Sum coding
    coef = np.array([res.params.get(f"C(llm, Sum)[S.{m}]", np.nan) for m in llms[:-1]])
    se = np.array([res.bse.get(f"C(llm, Sum)[S.{m}]", np.nan) for m in llms[:-1]])
    # The omitted level is minus the sum of the others; its SE from the covariance.
    names = [f"C(llm, Sum)[S.{m}]" for m in llms[:-1]]
    cov = res.cov_params().loc[names, names].to_numpy()
    reml = np.append(coef, -coef.sum())
    reml_se = np.append(se, np.sqrt(cov.sum()))
    post = run.posterior["llm_effect"]
    table = pd.DataFrame({"llm": llms, "reml": reml, "reml_se": reml_se})
    q = post.quantile([0.05, 0.95], dim=("chain", "draw"))
    bayes = pd.DataFrame({
        "llm": [str(x) for x in post["llm"].values],
        "bayes_mean": post.mean(("chain", "draw")).values,
        "bayes_q05": q.sel(quantile=0.05).values,
        "bayes_q95": q.sel(quantile=0.95).values,
    })
    table = bayes.merge(table, on="llm", how="inner")
    table = table.loc[:, ["llm", "bayes_mean", "bayes_q05", "bayes_q95", "reml", "reml_se"]]
    table.attrs["correlation"] = float(np.corrcoef(table["bayes_mean"], table["reml"])[0, 1])
    table.attrs["n_ratings"] = len(frame)
    table.attrs["sigma_participant_reml"] = float(np.sqrt(res.cov_re.iloc[0, 0]))
    table.attrs["sigma_reml"] = float(np.sqrt(res.scale))
    return table
