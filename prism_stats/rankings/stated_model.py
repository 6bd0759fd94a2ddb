"""Does saying an attribute matters go with rewarding it? A hierarchical model.

For conversation c of participant p, ``y_c`` is the opening score of the top-rated
response (the highest turn-0 score of the conversation; SPEC quirk 3) and ``x_ca`` the
participant's rating of that response on attribute a (``performance_attributes``, or
``choice_attributes``), standardised over the conversations used. ``s_pa`` is p's stated
importance of a (survey, 0-100), standardised over the participants used::

    y*_c   ~ Normal(alpha + u_p + sum_a beta_pa x_ca, sigma)      y_c = clip(y*_c, 1, 100)
    beta_pa = b0_a + b1_a s_pa + tau_a z_pa          z_pa ~ Normal(0, 1)
    u_p     ~ Normal(0, sigma_participant)

``b0_a`` is how many score points one standard deviation of attribute a is worth to a
participant of average stated importance, and **``b1_a`` -- the dependence -- is how
much that reward grows per standard deviation of stated importance**: b1 > 0 means
people who say a matters reward it more. Participant slopes and intercepts are
non-centred. The top score sits at the slider's end (100) for a large share of
conversations, so by default scores at 1 and 100 are treated as censored (a Tobit
likelihood, ``censored=False`` for a plain Gaussian): the coefficients are then on the
latent scale, not shrunk by the ceiling. Conversations with any N/A attribute (or no opening score) are left out and
counted (complete cases; N/A is not "performed badly").

Priors: ``alpha ~ N(50, 25)``, ``sigma ~ HalfNormal(25)``, ``sigma_participant ~
HalfNormal(15)``, ``b0 ~ N(0, 10)``, ``b1 ~ N(0, 5)``, ``tau ~ HalfNormal(5)`` (score
points). Defaults are small (2 chains x 500 tune + 500 draws, nutpie): 130 s at PRISM
size on a shared 2-core machine under load ~6 (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._display import ResultDisplay
from .. import vocab
from .battles import RankingError

ATTRIBUTE_SETS: dict[str, str] = {"performance": "perf_", "choice": "choice_"}
PRIORS: dict[str, float] = {"alpha_mu": 50.0, "alpha_sd": 25.0, "sigma": 25.0,
                            "sigma_participant": 15.0, "b0": 10.0, "b1": 5.0, "tau": 5.0}
SUMMARY_LEVEL = 0.90
#: Ends of the score slider: top scores piled there are censored observations.
LOW, HIGH = 1.0, 100.0


@dataclass
class StatedDesign:
    """The model's data: one row per conversation used.

    ``y`` (N,), ``x`` (N, A) standardised attribute ratings, ``participant`` (N,) codes
    into ``participants``, ``stated`` (P, A) standardised stated importance;
    ``scaling`` holds the means and sds used; ``excluded`` the conversations left out.
    """

    y: np.ndarray
    x: np.ndarray
    participant: np.ndarray
    stated: np.ndarray
    participants: list[str]
    attributes: list[str]
    attribute_set: str
    scaling: dict[str, dict[str, float]]
    excluded: dict[str, int] = field(default_factory=dict)


def top_opening_scores(data: Any) -> pd.Series:
    """Highest opening-turn score per conversation (the top-rated response's score)."""
    r = data.ratings
    opening = r.loc[r["turn"] == 0, ["conversation", "score"]]
    return opening.groupby(opening["conversation"].astype(str))["score"].max().astype(float)


def build_stated_design(data: Any, *, attribute_set: str = "performance",
                        attributes: tuple[str, ...] = vocab.ATTRIBUTE_KEYS) -> StatedDesign:
    """Assemble and standardise the model's data (complete cases)."""
    if attribute_set not in ATTRIBUTE_SETS:
        raise RankingError(f"attribute_set must be one of {list(ATTRIBUTE_SETS)}, got {attribute_set!r}")
    prefix = ATTRIBUTE_SETS[attribute_set]
    convs = data.conversations
    people = data.participants.set_index(data.participants["participant"].astype(str))
    cols = [f"{prefix}{a}" for a in attributes]
    missing = [c for c in cols if c not in convs.columns] + \
        [f"pref_{a}" for a in attributes if f"pref_{a}" not in people.columns]
    if missing:
        raise RankingError(f"columns missing for the stated-vs-revealed model: {missing[:4]}")
    frame = convs[["conversation", "participant", *cols]].copy()
    frame["conversation"] = frame["conversation"].astype(str)
    frame["participant"] = frame["participant"].astype(str)
    frame["y"] = frame["conversation"].map(top_opening_scores(data))
    excluded = {"no_opening_score": int(frame["y"].isna().sum())}
    frame = frame[frame["y"].notna()]
    na = frame[cols].isna().any(axis=1)
    excluded["attribute_not_applicable"] = int(na.sum())
    frame = frame[~na]
    stated_raw = people.loc[frame["participant"].unique(), [f"pref_{a}" for a in attributes]].astype(float)
    no_stated = stated_raw.isna().any(axis=1)
    if no_stated.any():
        excluded["no_stated_importance"] = int(frame["participant"].isin(stated_raw.index[no_stated]).sum())
        frame = frame[~frame["participant"].isin(stated_raw.index[no_stated])]
        stated_raw = stated_raw[~no_stated]
    if len(frame) < 3 * len(attributes) or len(stated_raw) < 3:
        raise RankingError(f"too few complete conversations ({len(frame)}) for the stated-vs-revealed model")
    x_raw = frame[cols].to_numpy(dtype=float)
    x_mean, x_sd = x_raw.mean(axis=0), x_raw.std(axis=0, ddof=1)
    s_mean, s_sd = stated_raw.mean().to_numpy(), stated_raw.std(ddof=1).to_numpy()
    if (x_sd == 0).any() or (s_sd == 0).any():
        raise RankingError("an attribute (or its stated importance) does not vary: cannot standardise")
    plabels = [str(p) for p in stated_raw.index]
    codes = pd.Index(plabels).get_indexer(frame["participant"])
    return StatedDesign(
        y=frame["y"].to_numpy(dtype=float), x=(x_raw - x_mean) / x_sd, participant=codes,
        stated=(stated_raw.to_numpy() - s_mean) / s_sd, participants=plabels,
        attributes=list(attributes), attribute_set=attribute_set,
        scaling={a: {"x_mean": float(x_mean[i]), "x_sd": float(x_sd[i]),
                     "stated_mean": float(s_mean[i]), "stated_sd": float(s_sd[i])}
                 for i, a in enumerate(attributes)},
        excluded=excluded)


def build_stated_model(design: StatedDesign, priors: dict[str, float] | None = None, *,
                       censored: bool = True):
    """The PyMC model of the module docstring (``censored``: scores at 1/100 censored)."""
    import pymc as pm

    pri = {**PRIORS, **(priors or {})}
    coords = {"participant": design.participants, "attribute": design.attributes}
    with pm.Model(coords=coords) as model:
        alpha = pm.Normal("alpha", pri["alpha_mu"], pri["alpha_sd"])
        sigma = pm.HalfNormal("sigma", pri["sigma"])
        sigma_p = pm.HalfNormal("sigma_participant", pri["sigma_participant"])
        b0 = pm.Normal("b0", 0.0, pri["b0"], dims="attribute")
        b1 = pm.Normal("b1", 0.0, pri["b1"], dims="attribute")
        tau = pm.HalfNormal("tau", pri["tau"], dims="attribute")
        u_z = pm.Normal("participant_z", 0.0, 1.0, dims="participant")
        beta_z = pm.Normal("slope_z", 0.0, 1.0, dims=("participant", "attribute"))
        slope = b0 + b1 * design.stated + tau * beta_z  # (P, A)
        p = design.participant
        mu = alpha + sigma_p * u_z[p] + (design.x * slope[p]).sum(axis=1)
        if censored:
            pm.Censored("y", pm.Normal.dist(mu, sigma), lower=LOW, upper=HIGH, observed=design.y)
        else:
            pm.Normal("y", mu, sigma, observed=design.y)
    return model


@dataclass(repr=False)
class StatedFit(ResultDisplay):
    """A fitted stated-vs-revealed model: the posterior of its population parameters."""

    posterior: xr.Dataset
    design: StatedDesign
    meta: dict[str, Any]

    def summary(self, level: float = SUMMARY_LEVEL) -> pd.DataFrame:
        """Per attribute: the dependence b1 (mean, interval, P(>0)) and the base reward b0.

        Columns ``attribute, dependence_mean, dependence_lo, dependence_hi,
        p_positive, reward_mean, reward_lo, reward_hi, slope_sd`` (score points per
        standard deviation; ``slope_sd`` = posterior mean of tau).
        """
        q = [(1 - level) / 2, 1 - (1 - level) / 2]
        post = self.posterior
        b1 = post["b1"].stack(sample=("chain", "draw")).transpose("attribute", "sample").values
        b0 = post["b0"].stack(sample=("chain", "draw")).transpose("attribute", "sample").values
        tau = post["tau"].mean(("chain", "draw")).values
        return pd.DataFrame({
            "attribute": self.design.attributes,
            "dependence_mean": b1.mean(axis=1),
            "dependence_lo": np.quantile(b1, q[0], axis=1),
            "dependence_hi": np.quantile(b1, q[1], axis=1),
            "p_positive": (b1 > 0).mean(axis=1),
            "reward_mean": b0.mean(axis=1),
            "reward_lo": np.quantile(b0, q[0], axis=1),
            "reward_hi": np.quantile(b0, q[1], axis=1),
            "slope_sd": tau,
        })


def fit_stated(data: Any, *, attribute_set: str = "performance", chains: int = 2, draws: int = 500,
               tune: int = 500, seed: int = 20240422, sampler: str = "nutpie",
               progress: bool = False, priors: dict[str, float] | None = None,
               censored: bool = True) -> StatedFit:
    """Fit the stated-vs-revealed model (see the module docstring).

    Returns a :class:`StatedFit` whose posterior keeps the population parameters
    (``alpha, sigma, sigma_participant, b0, b1, tau``); ``meta`` holds the sampler
    settings, timings, the convergence summary (max R-hat, min bulk ESS, divergences)
    and the excluded conversations.
    """
    from .._io import now_iso
    from ..model.convergence import diagnose
    from ..model.fit import sample_model

    design = build_stated_design(data, attribute_set=attribute_set)
    model = build_stated_model(design, priors, censored=censored)
    raw, timings = sample_model(model, {"sampler": sampler, "chains": chains, "draws": draws,
                                        "tune": tune, "seed": seed}, progress=progress)
    keep = ["alpha", "sigma", "sigma_participant", "b0", "b1", "tau"]
    post = raw["posterior"].to_dataset()[keep]
    stats = raw["sample_stats"].to_dataset()
    stats = stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])
    diag = diagnose(xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}))
    meta = {"kind": "stated-vs-revealed model", "created_at": now_iso(), "attribute_set": attribute_set,
            "censored": censored,
            "n_conversations": len(design.y), "n_participants": len(design.participants),
            "excluded": design.excluded, "scaling": design.scaling, "priors": {**PRIORS, **(priors or {})},
            "sampling": {"sampler": sampler, "chains": chains, "draws": draws, "tune": tune, "seed": seed},
            "timings": timings,
            # the summary's estimands (b0, b1) beside the worst parameter (usually tau, the
            # weakly identified spread of the participant slopes)
            "diagnostics": {"max_rhat": diag.max_rhat, "min_ess_bulk": diag.min_ess_bulk,
                            "divergences": diag.divergences,
                            "min_ess_bulk_b0_b1": float(diag.table.loc[["b0", "b1"], "min_ess_bulk"].min()),
                            "max_rhat_b0_b1": float(diag.table.loc[["b0", "b1"], "max_rhat"].max())}}
    return StatedFit(posterior=post.load(), design=design, meta=meta)
