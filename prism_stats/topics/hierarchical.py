"""Fit a hierarchical Bayesian model of topic choice (PyMC, sampled with nutpie).

Effects are pooled across topics; participants have random effects.

The model is a multinomial logit over the topic classes (the outliers, ``-1``, are the
reference class when present, else the first topic)::

    P(class k | participant p, conversation type t) = softmax_k(eta[p, t]),  eta_ref = 0
    eta[p, t, k] = alpha[k] + sum_j X[p, j] beta[k, j] + gamma[k, t] + u[p, k]
    beta[k, j]   = sigma[family(j)] * z[k, j],    z ~ N(0, 1)      (partial pooling)
    gamma[k, t]  = sigma[conversation type] * z'[k, t]
    u[p, k]      = sigma_participant * w[p, k],   w ~ N(0, 1)       (participant effects)
    alpha ~ N(0, 3);  sigma[family], sigma_participant ~ HalfNormal(1)

One scale per factor family (gender, age, region, ethnicity, religion, conversation type)
is shared by every topic and level of the family, so the 22 x 30 effects are estimated
together: a family whose effects are mostly small shrinks its noisy estimates towards 0
instead of reading each as an independent test. The participant effects make a
participant's repeated prompts correlated (people return to their topics), which is what
clustered standard errors do for the regressions.

Speed: the conversations are collapsed exactly to counts -- classes per participant,
per conversation type, and conversations per participant x type -- so the likelihood
is ``sum counts * eta - sum n[p, t] * logsumexp(eta[p, t])`` on a dense participant x
type x class array, without per-conversation indexing. The data enter through
``pm.Data`` so the compiled model is reused across releases of the same shape.

Effects are reported on the probability scale, comparable with the linear probability
model: the average over the data's conversations of each conversation's probability of
the topic with the factor at the level minus at the reference (the other factors and the
participant effects as estimated), in percentage points, per posterior draw; with 90%
intervals and the probability of direction ``max(P(effect > 0), P(effect < 0))``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .assignments import OUTLIER, TopicError
from .design import PARTICIPANT_FACTORS, TopicDesign

# Heavy libraries are imported inside the functions that use them, so that importing
# prism_stats.topics (e.g. for the CLI's --help) does not load them.

CTYPE = "conversation type"
INTERVAL = 0.90
#: Degrees of freedom of the pooled effects' Student-t: most effects are small and a few
#: large (a non-binary participant and gender identity), which a normal would over-shrink.
EFFECT_NU = 4.0


@dataclass
class CollapsedTopics:
    """The design collapsed to counts (see the module docstring).

    Attributes
    ----------
    participants : list of str
        Participant ids (rows of ``Xp``, ``counts_p``, ``n``).
    ctypes : list of str
        Conversation types (columns of ``n``; rows of ``Xc``, ``counts_t``), reference first.
    classes : list of int
        Topic ids, the reference class first.
    labels : list of str
        Class labels (same order).
    Xp, Xc : ndarray
        Participant x participant-term and type x type-term indicators.
    terms_p, terms_c : DataFrame
        ``term``, ``factor``, ``level`` of the columns of ``Xp`` / ``Xc``.
    n : ndarray
        Conversations per participant x type.
    counts_p, counts_t : ndarray
        Conversations per participant x class and per type x class.
    """

    participants: list[str]
    ctypes: list[str]
    classes: list[int]
    labels: list[str]
    Xp: np.ndarray
    Xc: np.ndarray
    terms_p: pd.DataFrame
    terms_c: pd.DataFrame
    n: np.ndarray
    counts_p: np.ndarray
    counts_t: np.ndarray

    @property
    def families(self) -> list[str]:
        return [f for f in (*PARTICIPANT_FACTORS, CTYPE)
                if f in set(self.terms_p["factor"]) | set(self.terms_c["factor"])]


def collapse(design: TopicDesign) -> CollapsedTopics:
    """Collapse the conversations of *design* to the counts the model needs (exactly)."""
    frame = design.frame
    if CTYPE not in frame.columns:
        raise TopicError("the hierarchical model needs the conversation type factor")
    terms = design.terms
    is_c = (terms["factor"] == CTYPE).to_numpy()
    terms_p, terms_c = terms[~is_c].reset_index(drop=True), terms[is_c].reset_index(drop=True)
    p_codes, participants = pd.factorize(frame["participant"])
    ref_t = design.references[CTYPE]
    ctypes = [ref_t] + [lv for lv in terms_c["level"]]
    t_codes = pd.Categorical(frame[CTYPE], categories=ctypes).codes
    present = sorted(set(frame["topic"].astype(int)))
    ref_class = OUTLIER if OUTLIER in present else present[0]
    classes = [ref_class] + [t for t in present if t != ref_class]
    k_codes = pd.Categorical(frame["topic"].astype(int), categories=classes).codes
    P, T, K = len(participants), len(ctypes), len(classes)
    first = frame.groupby(p_codes, sort=True).head(1)
    Xp = design.X.loc[first.index, terms_p["term"]].to_numpy(dtype=float)
    Xc = np.zeros((T, len(terms_c)))
    for j in range(len(terms_c)):
        Xc[j + 1, j] = 1.0
    n = np.zeros((P, T))
    np.add.at(n, (p_codes, t_codes), 1)
    counts_p = np.zeros((P, K))
    np.add.at(counts_p, (p_codes, k_codes), 1)
    counts_t = np.zeros((T, K))
    np.add.at(counts_t, (t_codes, k_codes), 1)
    labels = [design.labels.get(c, str(c)) for c in classes]
    return CollapsedTopics(list(map(str, participants)), ctypes, classes, labels, Xp, Xc,
                           terms_p, terms_c, n, counts_p, counts_t)


def build_model(data: CollapsedTopics, *, participant_effects: bool = True):
    """The PyMC model of *data* (see the module docstring for the equations)."""
    import pymc as pm
    import pytensor.tensor as pt

    topics = data.labels[1:]
    families = data.families
    fam_p = np.array([families.index(f) for f in data.terms_p["factor"]], dtype=int)
    coords = {"topic": topics, "term_p": list(data.terms_p["term"]),
              "term_c": list(data.terms_c["term"]), "family": families,
              "participant": data.participants, "ctype": data.ctypes}
    with pm.Model(coords=coords) as model:
        Xp = pm.Data("Xp", data.Xp, dims=("participant", "term_p"))
        Xc = pm.Data("Xc", data.Xc, dims=("ctype", "term_c"))
        n = pm.Data("n", data.n, dims=("participant", "ctype"))
        counts_p = pm.Data("counts_p", data.counts_p[:, 1:], dims=("participant", "topic"))
        counts_t = pm.Data("counts_t", data.counts_t[:, 1:], dims=("ctype", "topic"))
        alpha = pm.Normal("alpha", 0.0, 3.0, dims="topic")
        sigma = pm.HalfNormal("sigma_family", 1.0, dims="family")
        z_p = pm.StudentT("z_p", nu=EFFECT_NU, mu=0.0, sigma=1.0, dims=("topic", "term_p"))
        beta_p = pm.Deterministic("beta_p", z_p * sigma[fam_p][None, :], dims=("topic", "term_p"))
        # conversation type: few, large and well-measured effects -> centred
        beta_c = pm.StudentT("beta_c", nu=EFFECT_NU, mu=0.0, sigma=sigma[families.index(CTYPE)],
                             dims=("topic", "term_c"))
        v = pt.dot(Xp, beta_p.T)  # participant x topic
        if participant_effects:
            sigma_u = pm.HalfNormal("sigma_participant", 1.0)
            w = pm.Normal("w", 0.0, 1.0, dims=("participant", "topic"))
            v = v + sigma_u * w
        g = pt.dot(Xc, beta_c.T)  # ctype x topic
        eta = alpha[None, None, :] + v[:, None, :] + g[None, :, :]
        P, T = data.n.shape
        eta = pt.concatenate([pt.zeros((P, T, 1)), eta], axis=2)
        linear = (counts_p * v).sum() + (counts_t * g).sum() + (counts_p.sum(0) * alpha).sum()
        pm.Potential("likelihood", linear - (n * pt.logsumexp(eta, axis=2)).sum())
    return model


def _softmax_with_ref(eta: np.ndarray) -> np.ndarray:
    """Softmax over the last axis with an implicit reference logit 0 in front."""
    m = np.maximum(eta.max(axis=-1, keepdims=True), 0.0)
    e = np.exp(eta - m)
    ref = np.exp(-m)
    total = ref + e.sum(axis=-1, keepdims=True)
    return np.concatenate([ref, e], axis=-1) / total


def average_effects(data: CollapsedTopics, post: xr.Dataset, draws: np.ndarray) -> np.ndarray:
    """Average effects (percentage points): draw x class x term (participant then type terms)."""
    weights = data.n / data.n.sum()
    terms = pd.concat([data.terms_p, data.terms_c], ignore_index=True)
    out = np.empty((len(draws), len(data.classes), len(terms)))
    stacked = {v: post[v].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
               for v in ("alpha", "beta_p", "beta_c") if v in post}
    w_u = None
    if "w" in post:
        w_u = post["w"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        s_u = post["sigma_participant"].stack(sample=("chain", "draw")).to_numpy()
    factor_p = data.terms_p["factor"].to_numpy()
    for i, s in enumerate(draws):
        alpha, bp, bc = stacked["alpha"][s], stacked["beta_p"][s], stacked["beta_c"][s]
        v = data.Xp @ bp.T + (s_u[s] * w_u[s] if w_u is not None else 0.0)
        g = data.Xc @ bc.T
        col = 0
        for f in dict.fromkeys(factor_p):
            idx = np.flatnonzero(factor_p == f)
            base = v - data.Xp[:, idx] @ bp[:, idx].T
            p_ref = np.einsum("pt,ptk->k", weights,
                              _softmax_with_ref(alpha + base[:, None, :] + g[None, :, :]))
            for j in idx:
                p_lv = np.einsum("pt,ptk->k", weights, _softmax_with_ref(
                    alpha + (base + bp[:, j])[:, None, :] + g[None, :, :]))
                out[i, :, col] = 100 * (p_lv - p_ref)
                col += 1
        eta_p = alpha + v  # participant x topic; the type enters as a whole
        for j in range(len(data.terms_c)):
            t = j + 1
            p_lv = np.einsum("p,pk->k", data.n.sum(1) / data.n.sum(),
                             _softmax_with_ref(eta_p + g[t]))
            p_ref = np.einsum("p,pk->k", data.n.sum(1) / data.n.sum(),
                              _softmax_with_ref(eta_p + g[0]))
            out[i, :, col] = 100 * (p_lv - p_ref)
            col += 1
    return out


@dataclass
class TopicModelResult:
    """A fitted hierarchical topic model.

    Attributes
    ----------
    posterior : xarray.Dataset
        Draws of ``alpha``, ``beta_p``, ``beta_c``, ``sigma_family`` and (with participant
        effects) ``sigma_participant`` (the participant effects ``w`` are dropped after
        the average effects are computed).
    effects : DataFrame
        Per topic x term: ``topic``, ``topic_label``, ``term``, ``factor``, ``level``,
        ``mean``, ``sd``, ``q05``, ``q95`` (percentage points), ``p_direction``,
        ``logodds`` (posterior mean of beta against the reference class).
    scales : DataFrame
        ``parameter``, ``mean``, ``q05``, ``q95`` of the pooling scales.
    diagnostics : dict
        Max R-hat, min bulk ESS, divergences, seconds.
    """

    posterior: xr.Dataset
    effects: pd.DataFrame
    scales: pd.DataFrame
    diagnostics: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def credible(self, alpha: float = 0.01) -> pd.Series:
        """Effects whose probability of direction is at least ``1 - alpha/2`` (the
        posterior counterpart of a two-sided test at level *alpha*)."""
        return self.effects["p_direction"] >= 1 - alpha / 2


def _diagnostics(idata: Any, names: list[str]) -> dict[str, Any]:
    import arviz_stats as az  # local: loaded only when the topic model is fitted

    post = idata["posterior"].to_dataset()[names]
    rhat = az.rhat(post)
    ess = az.ess(post, method="bulk")
    stats = idata["sample_stats"].to_dataset()
    worst_ess = {v: float(ess[v].min()) for v in ess.data_vars}
    return {"max_rhat": float(max(float(rhat[v].max()) for v in rhat.data_vars)),
            "min_ess_bulk": min(worst_ess.values()),
            "min_ess_bulk_by_variable": {v: round(e) for v, e in worst_ess.items()},
            "divergences": int(stats["diverging"].sum()) if "diverging" in stats else 0,
            "steps_per_draw": float(stats["n_steps"].mean()) if "n_steps" in stats else None}


def fit_topic_model(design: TopicDesign, *, chains: int = 2, draws: int = 300, tune: int = 300,
                    seed: int = 0, participant_effects: bool = True, effect_draws: int = 200,
                    target_accept: float = 0.8, progress: bool = False) -> TopicModelResult:
    """Fit the hierarchical model of topic choice with nutpie and summarise its effects.

    Parameters
    ----------
    design
        The topic design (:func:`~prism_stats.topics.design.topic_design`).
    chains, draws, tune, seed
        Sampler settings (nutpie; chains run in parallel).
    participant_effects
        Include the participant random effects (default; ``False`` is faster and ignores
        that a participant's prompts are correlated).
    effect_draws
        Posterior draws (evenly thinned) used for the probability-scale effects.
    target_accept, progress
        Passed to nutpie.
    """
    import nutpie

    data = collapse(design)
    if len(data.classes) < 2:
        raise TopicError("the hierarchical model needs at least two topic classes")
    t0 = time.perf_counter()
    model = build_model(data, participant_effects=participant_effects)
    compiled = nutpie.compile_pymc_model(model)
    t1 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=chains,
                          seed=seed, progress_bar=progress, save_warmup=False,
                          target_accept=target_accept)
    t2 = time.perf_counter()
    post = idata["posterior"].to_dataset()
    names = ["alpha", "beta_p", "beta_c", "sigma_family"] + (
        ["sigma_participant"] if participant_effects else [])
    diag = _diagnostics(idata, names)
    total = post.sizes["chain"] * post.sizes["draw"]
    pick = np.unique(np.linspace(0, total - 1, min(effect_draws, total)).round().astype(int))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # small products: threads only spin
        ame = average_effects(data, post, pick)
    t3 = time.perf_counter()
    terms = pd.concat([data.terms_p, data.terms_c], ignore_index=True)
    lo, hi = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    beta = np.concatenate([post["beta_p"].mean(("chain", "draw")).to_numpy(),
                           post["beta_c"].mean(("chain", "draw")).to_numpy()], axis=1)
    rows = []
    for k in range(1, len(data.classes)):
        d = ame[:, k, :]
        for j, tr in enumerate(terms.itertuples(index=False)):
            x = d[:, j]
            rows.append({"topic": data.classes[k], "topic_label": data.labels[k], "term": tr.term,
                         "factor": tr.factor, "level": tr.level, "mean": float(x.mean()),
                         "sd": float(x.std(ddof=1)), "q05": float(np.quantile(x, lo)),
                         "q95": float(np.quantile(x, hi)),
                         "p_direction": float(max((x > 0).mean(), (x < 0).mean())),
                         "logodds": float(beta[k - 1, j])})
    effects = pd.DataFrame(rows)
    if data.classes[0] != OUTLIER:  # no outliers: the reference class is a topic too
        d = ame[:, 0, :]
        ref_rows = [{"topic": data.classes[0], "topic_label": data.labels[0], "term": tr.term,
                     "factor": tr.factor, "level": tr.level, "mean": float(d[:, j].mean()),
                     "sd": float(d[:, j].std(ddof=1)), "q05": float(np.quantile(d[:, j], lo)),
                     "q95": float(np.quantile(d[:, j], hi)),
                     "p_direction": float(max((d[:, j] > 0).mean(), (d[:, j] < 0).mean())),
                     "logodds": 0.0} for j, tr in enumerate(terms.itertuples(index=False))]
        effects = pd.concat([pd.DataFrame(ref_rows), effects], ignore_index=True)
    scale_names = ["sigma_family"] + (["sigma_participant"] if participant_effects else [])
    scales = []
    for name in scale_names:
        da = post[name]
        for label, sub in ([(f, da.sel(family=f)) for f in da["family"].values]
                           if "family" in da.dims else [("participant", da)]):
            x = sub.to_numpy().ravel()
            scales.append({"parameter": f"{name}[{label}]" if "family" in da.dims else name,
                           "mean": float(x.mean()), "q05": float(np.quantile(x, lo)),
                           "q95": float(np.quantile(x, hi))})
    diag.update(compile_s=round(t1 - t0, 2), sampling_s=round(t2 - t1, 2),
                effects_s=round(t3 - t2, 2), chains=chains, draws=draws, tune=tune)
    keep = post[[v for v in post.data_vars if v not in ("w", "z_p", "z_c")]]
    settings = {"chains": chains, "draws": draws, "tune": tune, "seed": seed,
                "participant_effects": participant_effects, "effect_draws": len(pick),
                "reference_class": data.labels[0], "participants": len(data.participants),
                "conversations": int(data.n.sum())}
    return TopicModelResult(keep, effects, pd.DataFrame(scales), diag, settings)


def compare_with_lpm(effects: pd.DataFrame, lpm, *, se: str = "cluster",
                     adjusted: bool = True) -> pd.DataFrame:
    """Where the hierarchical model and the regressions disagree.

    A regression coefficient is significant when its p-value (``se`` type; corrected when
    *adjusted* and the regressions used a correction) is below the regressions' alpha; a
    model effect is credible when its probability of direction is at least
    ``1 - alpha/2``. Rows: every topic x term where exactly one of the two says so, with
    both estimates (percentage points) and their intervals (the regression's 95%, the
    model's 90%).
    """
    coefs = lpm.coefficients
    coefs = coefs[coefs["term"] != "Intercept"].copy()
    coefs["significant_lpm"] = lpm.significant(se, adjusted=adjusted)[coefs.index]
    merged = coefs.merge(effects, on=["topic", "term"], how="inner", suffixes=("", "_model"))
    merged["credible_model"] = merged["p_direction"] >= 1 - lpm.alpha / 2
    p_col = f"p_{se}_adj" if adjusted and lpm.correction else f"p_{se}"
    out = merged.loc[merged["significant_lpm"] != merged["credible_model"]]
    return pd.DataFrame({
        "topic": out["topic"], "topic_label": out["topic_label"], "term": out["term"],
        "factor": out["factor"], "lpm_pp": 100 * out["coef"],
        "lpm_low": 100 * out[f"ci_low_{se}"], "lpm_high": 100 * out[f"ci_high_{se}"],
        "lpm_p": out[p_col], "model_pp": out["mean"], "model_q05": out["q05"],
        "model_q95": out["q95"], "p_direction": out["p_direction"],
        "significant_lpm": out["significant_lpm"], "credible_model": out["credible_model"],
    }).reset_index(drop=True)
