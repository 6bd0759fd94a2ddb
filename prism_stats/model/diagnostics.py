"""Posterior and prior predictive checks and PSIS-LOO of a fitted run.

(Convergence diagnostics and the strict gate are :mod:`prism_stats.model.convergence`.)

- :func:`predictive_checks`: replicated score distribution, per-LLM means and
  per-participant means against the observed ones. Because the likelihood is collapsed
  onto cells, the checks are computed from cell-level replicates (exact for the Gaussian
  family), and the score distribution from individual replicated ratings.
- :func:`prior_predictive`: the same simulations with parameters drawn from the prior.
- :func:`loo` / :func:`compare`: PSIS-LOO with a participant as the left-out unit.
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from .design import HIGH, LOW, Design
from .fit import Run
from .effects import is_raw
from .predict import n_samples, simulate_cells, simulate_ratings
from .rating import build_model
from .spec import ModelSpec

# --- predictive checks ----------------------------------------------------------------

def _observed_summaries(design: Design) -> dict[str, np.ndarray]:
    c = design.cells
    n = c["n"].to_numpy()
    total = c["mean"].to_numpy() * n
    n_llm = len(design.coords["llm"])
    n_p = len(design.coords["participant"])
    llm = c["llm"].to_numpy()
    p = c["participant"].to_numpy()
    return {
        "llm_mean": np.bincount(llm, total, n_llm) / np.bincount(llm, n, n_llm),
        "participant_mean": np.bincount(p, total, n_p) / np.bincount(p, n, n_p),
    }


def _replicated_means(sim: dict[str, np.ndarray], design: Design, family: str) -> dict[str, np.ndarray]:
    c = design.cells
    n = c["n"].to_numpy()
    if family == "gaussian":
        total = sim["mean"] * n
    else:  # mean of the clipped ratings
        total = sim["n_low"] * LOW + sim["n_high"] * HIGH + sim["n_int"] * sim["mean_int"]
    n_llm = len(design.coords["llm"])
    n_p = len(design.coords["participant"])
    llm, p = c["llm"].to_numpy(), c["participant"].to_numpy()
    llm_tot = np.stack([np.bincount(llm, row, n_llm) for row in total])
    p_tot = np.stack([np.bincount(p, row, n_p) for row in total])
    return {"llm_mean": llm_tot / np.bincount(llm, n, n_llm), "participant_mean": p_tot / np.bincount(p, n, n_p)}


def _predictive(params: xr.Dataset, design: Design, spec: ModelSpec, n_draws: int, seed: int,
                observed_scores: np.ndarray | None) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    S = n_samples(params)
    picks = np.sort(rng.choice(S, size=min(n_draws, S), replace=False))
    sim = simulate_cells(params, design, spec, rng, picks)
    rep = _replicated_means(sim, design, spec.family)
    obs = _observed_summaries(design)
    bins = np.arange(-50.5, 151.5, 1.0)  # Gaussian replicates leave [1, 100]; show where
    n_hist = min(len(picks), 50)
    hist = np.stack([
        np.histogram(simulate_ratings(params, design, spec, rng, int(s)), bins=bins)[0]
        for s in picks[:n_hist]
    ]) / design.n_ratings
    ds = xr.Dataset(
        {
            "llm_mean": (("sample", "llm"), rep["llm_mean"]),
            "participant_mean": (("sample", "participant"), rep["participant_mean"]),
            "observed_llm_mean": ("llm", obs["llm_mean"]),
            "observed_participant_mean": ("participant", obs["participant_mean"]),
            "score_density": (("hist_sample", "score_bin"), hist),
        },
        coords={
            "llm": design.coords["llm"],
            "participant": design.coords["participant"],
            "sample": picks,
            "score_bin": (bins[:-1] + bins[1:]) / 2,
        },
    )
    if observed_scores is not None:
        ds["observed_score_density"] = ("score_bin", np.histogram(observed_scores, bins=bins)[0]
                                        / len(observed_scores))
    # Posterior predictive p-values of the per-LLM means (share of replicates above observed).
    ds["llm_mean_ppp"] = (ds["llm_mean"] >= ds["observed_llm_mean"]).mean("sample")
    ds.attrs.update(family=spec.family, n_draws=len(picks), seed=seed)
    return ds


def predictive_checks(run: Run, *, n_draws: int = 200, seed: int = 0,
                      observed_scores: np.ndarray | None = None) -> xr.Dataset:
    """Posterior predictive checks of a run.

    Returns a Dataset with replicated ``llm_mean`` (sample, llm), ``participant_mean``
    (sample, participant), ``score_density`` (histogram of replicated ratings on 1-point
    bins) and their observed counterparts, plus ``llm_mean_ppp`` (posterior predictive
    p-values). *observed_scores* (the individual ratings) adds the observed histogram.
    """
    return _predictive(run.posterior, run.design, run.spec, n_draws, seed, observed_scores)


def prior_samples(design: Design, spec: ModelSpec, n_draws: int = 200, seed: int = 0) -> xr.Dataset:
    """Parameters drawn from the spec's prior, with dims (chain=1, draw, ...).

    Raw non-centred variables are dropped. When participant effects are marginalized out
    of the model, they are drawn here from their prior, iid Normal(0, sigma_participant),
    so the result has every parameter the linear predictor needs.
    """
    model = build_model(design, spec)
    with model:
        prior = pm.sample_prior_predictive(draws=n_draws, random_seed=seed, var_names=[
            v.name for v in model.free_RVs + model.deterministics])
    ds = prior["prior"].to_dataset() if isinstance(prior, xr.DataTree) else prior.prior
    ds = ds.drop_vars([v for v in ds.data_vars if is_raw(v)])
    if "participant_effect" not in ds:
        rng = np.random.default_rng([seed, 2])
        tau = ds["sigma_participant"]
        z = rng.standard_normal((*tau.shape, len(design.coords["participant"])))
        ds["participant_effect"] = (
            (*tau.dims, "participant"), tau.values[..., None] * z)
        ds = ds.assign_coords(participant=design.coords["participant"])
    return ds


def prior_predictive(design: Design, spec: ModelSpec, *, n_draws: int = 200, seed: int = 0,
                     observed_scores: np.ndarray | None = None) -> xr.Dataset:
    """Prior predictive checks (same layout as :func:`predictive_checks`)."""
    params = prior_samples(design, spec, n_draws, seed)
    return _predictive(params, design, spec, n_draws, seed + 1, observed_scores)


# --- PSIS-LOO ---------------------------------------------------------------------------

def loo(run: Run):
    """PSIS-LOO with participants as the left-out units (arviz ``ELPDData``)."""
    if "log_likelihood" not in run.idata.children:
        raise ValueError("this run stored no log-likelihood; refit with loglik=True")
    return az.loo(run.idata, var_name="score")


def compare(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Rank runs of different specs on the same data by leave-one-participant-out ELPD.

    The runs must share their participants (the same data and subset); the table is
    arviz's ``compare`` output (elpd, se, elpd_diff, dse, weight, ...).
    """
    sets = {name: tuple(r.design.coords["participant"]) for name, r in runs.items()}
    if len(set(sets.values())) > 1:
        raise ValueError("LOO comparison needs runs on the same participants; got different sets")
    return az.compare({name: r.idata for name, r in runs.items()})
