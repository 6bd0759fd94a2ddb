"""The study's topic regressions: per topic, a linear probability model of topic choice.

For each topic k (SPEC §3.2), OLS on every conversation (outliers count as 0)::

    1[topic == k] ~ gender + age + region + ethnicity + religion + conversation type

with the study's reference levels (:data:`prism_stats.topics.design.FACTORS`). Two sets
of standard errors (SPEC §5.6):

* ``hc1`` -- heteroskedasticity-robust HC1, what the study's R code effectively computed
  (``vcovHC(type = "HC1", cluster = ~user_id)`` ignores ``cluster``); t with the residual
  degrees of freedom, as ``lmtest::coeftest`` does;
* ``cluster`` -- clustered by participant (CR1, small-sample factor
  ``G/(G-1) (N-1)/(N-K)``; t with ``G - 1`` degrees of freedom), what the study intended.
  A participant writes ~6 prompts and people return to their topics, so for
  participant-level factors these are the honest ones and usually larger -- except for
  levels held by a handful of people (``participants`` column), where a sandwich from so
  few clusters is unreliable and often too small (the study's 4 "Prefer not to say"
  genders: SPEC §5.6).

p-values can be corrected for multiple testing (Holm, Benjamini-Hochberg, Bonferroni:
``statsmodels.stats.multitest``) over the whole table -- every topic x term except the
intercepts -- separately for each kind of standard error. All fits use statsmodels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .assignments import TopicError
from .design import PARTICIPANT_FACTORS, TopicDesign

# Heavy libraries are imported inside the functions that use them, so that importing
# prism_stats.topics (e.g. for the CLI's --help) does not load them.

CORRECTIONS: dict[str | None, str | None] = {
    None: None, "none": None, "holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh",
    "bonferroni": "bonferroni",
}
SE_TYPES: tuple[str, ...] = ("hc1", "cluster")
INTERCEPT = "Intercept"


@dataclass
class LPMResult:
    """The topic regressions.

    Attributes
    ----------
    coefficients : DataFrame
        One row per topic x term (intercepts included): ``topic``, ``topic_label``,
        ``term``, ``factor``, ``level``, ``participants`` (holding the level; participant-
        level factors only), ``coef`` (probability scale), and per SE type
        ``se_<t>``, ``t_<t>``, ``p_<t>``, ``p_<t>_adj`` (corrected; NaN for intercepts),
        ``ci_low_<t>``, ``ci_high_<t>`` (95%).
    fits : DataFrame
        Per topic: ``topic``, ``topic_label``, ``n``, ``prevalence``, ``r2``, ``r2_adj``.
    correction : str or None
        The multiple-testing correction applied.
    alpha : float
        The significance level of :meth:`significant` and :meth:`counts` (the study: 0.01).
    n_participants : int
        Number of clusters.
    """

    coefficients: pd.DataFrame
    fits: pd.DataFrame
    correction: str | None
    alpha: float
    n_participants: int
    notes: dict[str, Any] = field(default_factory=dict)

    def significant(self, se: str = "cluster", *, adjusted: bool = True) -> pd.Series:
        """Whether each row's p-value (corrected when *adjusted* and a correction was
        chosen) is below ``alpha``; intercepts are never significant."""
        col = f"p_{se}_adj" if adjusted and self.correction else f"p_{se}"
        c = self.coefficients
        return (c[col] < self.alpha) & (c["term"] != INTERCEPT)

    def counts(self, *, adjusted: bool = True) -> pd.DataFrame:
        """Significant coefficients by factor and SE type (the study's count table)."""
        c = self.coefficients[self.coefficients["term"] != INTERCEPT]
        out = c.groupby("factor", sort=False).size().rename("coefficients").to_frame()
        for se in SE_TYPES:
            out[f"significant_{se}"] = self.significant(se, adjusted=adjusted)[c.index].groupby(
                c["factor"], sort=False).sum()
        out.loc["all"] = out.sum()
        return out.reset_index()

    def se_ratios(self) -> pd.DataFrame:
        """Clustered over HC1 standard error by factor: mean, median, min, max."""
        c = self.coefficients[self.coefficients["term"] != INTERCEPT]
        ratio = (c["se_cluster"] / c["se_hc1"]).rename("ratio")
        out = ratio.groupby(c["factor"], sort=False).agg(["mean", "median", "min", "max"])
        out.insert(0, "participant_level", [f in PARTICIPANT_FACTORS for f in out.index])
        return out.reset_index()


def _correct(p: np.ndarray, method: str | None) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    if method is None:
        return np.full_like(p, np.nan)
    return multipletests(p, method=method)[1]


def topic_regressions(design: TopicDesign, *, correction: str | None = "holm",
                      alpha: float = 0.01) -> LPMResult:
    """Fit the linear probability model of every topic (see the module docstring).

    Parameters
    ----------
    design
        :func:`~prism_stats.topics.design.topic_design` of the data and assignments.
    correction
        ``"holm"`` (default), ``"bh"`` (Benjamini-Hochberg false discovery rate),
        ``"bonferroni"`` or ``None``.
    alpha
        Significance level (the study's 0.01).
    """
    if correction not in CORRECTIONS:
        raise TopicError(f"unknown correction {correction!r}; choose one of "
                         f"{[k for k in CORRECTIONS if k]}")
    from threadpoolctl import threadpool_limits

    # Many small least-squares problems: multithreaded BLAS only spins on a busy machine
    # (32 s instead of 1 s for 44 fits at load 6 on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_all(design, CORRECTIONS[correction], alpha)


def _fit_all(design: TopicDesign, method: str | None, alpha: float) -> LPMResult:
    import statsmodels.api as sm

    X = sm.add_constant(design.X, has_constant="add").rename(columns={"const": INTERCEPT})
    rank = np.linalg.matrix_rank(X.to_numpy())
    if rank < X.shape[1]:
        raise TopicError(f"the topic design is rank deficient ({rank} < {X.shape[1]} columns)")
    groups = design.participant_codes()
    terms = pd.concat([pd.DataFrame({"term": [INTERCEPT], "factor": ["intercept"], "level": [""]}),
                       design.terms], ignore_index=True)
    blocks, fits = [], []
    for k in design.topics:
        y = design.outcome(k)
        model = sm.OLS(y, X)
        block = terms.copy()
        block.insert(0, "topic_label", design.labels.get(k, str(k)))
        block.insert(0, "topic", k)
        for se, kwargs in (("hc1", {"cov_type": "HC1"}),
                           ("cluster", {"cov_type": "cluster", "cov_kwds": {
                               "groups": groups, "use_correction": True, "df_correction": True}})):
            fit = model.fit(use_t=True, **kwargs)
            if se == "hc1":
                block["coef"] = np.asarray(fit.params)
                fits.append({"topic": k, "topic_label": design.labels.get(k, str(k)),
                             "n": int(fit.nobs), "prevalence": float(y.mean()),
                             "r2": float(fit.rsquared), "r2_adj": float(fit.rsquared_adj)})
            ci = np.asarray(fit.conf_int(alpha=0.05))
            block[f"se_{se}"] = np.asarray(fit.bse)
            block[f"t_{se}"] = np.asarray(fit.tvalues)
            block[f"p_{se}"] = np.asarray(fit.pvalues)
            block[f"ci_low_{se}"], block[f"ci_high_{se}"] = ci[:, 0], ci[:, 1]
        blocks.append(block)
    coefs = pd.concat(blocks, ignore_index=True)
    # How many participants hold each participant-level level: a clustered SE built from a
    # handful of clusters is unreliable (too small, for a level held by one person).
    people = design.frame.groupby("participant", sort=False).first()
    held = {f"{f}: {lv}": int(k) for f in PARTICIPANT_FACTORS if f in people.columns
            for lv, k in people[f].value_counts().items()}
    coefs.insert(coefs.columns.get_loc("coef"), "participants",
                 coefs["term"].map(held).astype("Int64"))
    tested = (coefs["term"] != INTERCEPT).to_numpy()
    for se in SE_TYPES:
        adj = np.full(len(coefs), np.nan)
        adj[tested] = _correct(coefs.loc[tested, f"p_{se}"].to_numpy(), method)
        coefs[f"p_{se}_adj"] = adj
    return LPMResult(coefs, pd.DataFrame(fits), correction=method, alpha=alpha,
                     n_participants=design.n_participants,
                     notes={"references": design.references, "dropped_levels": design.dropped,
                            "tests": int(tested.sum())})
