"""Posterior and prior predictive checks and PSIS-LOO of a fitted run.

(Convergence diagnostics and the strict gate are :mod:`prism_stats.model.convergence`;
the run's ArviZ groups, on which every ArviZ function works directly, are
:mod:`prism_stats.model.runtree`.)

- :func:`predictive_checks`: replicated score distribution, per-LLM means and
  per-participant means against the observed ones (the supplement's three-panel figure).
  Because the likelihood is collapsed onto cells, the checks are computed from
  cell-level replicates (exact for the Gaussian family), and the score distribution from
  individual replicated ratings: its histogram has 1-point bins over [-50, 150] and the
  share of replicated ratings beyond either end is kept (``score_share_below``/``_above``),
  never dropped.
- :func:`prior_predictive`: the same simulations with parameters drawn from the prior.
- :func:`loo` / :func:`loo_pit` / :func:`compare`: PSIS-LOO (arviz-stats) with a
  participant as the left-out unit.
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from .._compat import renamed_kwargs
from .design import HIGH, LOW, Design
from .fit import Run
from .predict import n_samples, simulate_cells, simulate_ratings
from .runtree import OBSERVED, prior_samples
from .spec import ModelSpec

#: Edges of the score histogram (1-point bins): Gaussian replicates leave [1, 100]; the
#: figure shows where, and the shares beyond the edges are reported separately.
SCORE_BINS = np.arange(-50.5, 151.5, 1.0)

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


def _histogram(values: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Shares per bin, and the shares below the first and above the last edge."""
    n = len(values)
    return (np.histogram(values, bins=bins)[0] / n, float(np.mean(values < bins[0])),
            float(np.mean(values > bins[-1])))


# Hand-written on purpose: the checks below replicate the *collapsed* likelihood exactly
# (cell sufficient statistics, per-LLM and per-participant means from cell totals) and
# keep a histogram of individual replicated ratings; ArviZ plots these from stored
# replicates, which at PRISM size would be 68k ratings x draws. The run's ArviZ groups
# (posterior_predictive.score) cover the participant-level check ArviZ can plot.
def _predictive(params: xr.Dataset, design: Design, spec: ModelSpec, draws: int, seed: int,
                observed_scores: np.ndarray | None) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    S = n_samples(params)
    picks = np.sort(rng.choice(S, size=min(draws, S), replace=False))
    sim = simulate_cells(params, design, spec, rng, picks)
    rep = _replicated_means(sim, design, spec.family)
    obs = _observed_summaries(design)
    bins = SCORE_BINS
    n_hist = min(len(picks), 50)
    hists = [_histogram(simulate_ratings(params, design, spec, rng, int(s)), bins) for s in picks[:n_hist]]
    hist = np.stack([h[0] for h in hists])
    ds = xr.Dataset(
        {
            "llm_mean": (("sample", "llm"), rep["llm_mean"]),
            "participant_mean": (("sample", "participant"), rep["participant_mean"]),
            "observed_llm_mean": ("llm", obs["llm_mean"]),
            "observed_participant_mean": ("participant", obs["participant_mean"]),
            "score_density": (("hist_sample", "score_bin"), hist),
            "score_share_below": ("hist_sample", np.array([h[1] for h in hists])),
            "score_share_above": ("hist_sample", np.array([h[2] for h in hists])),
        },
        coords={
            "llm": design.coords["llm"],
            "participant": design.coords["participant"],
            "sample": picks,
            "score_bin": (bins[:-1] + bins[1:]) / 2,
        },
    )
    if observed_scores is not None:
        ds["observed_score_density"] = ("score_bin", _histogram(np.asarray(observed_scores), bins)[0])
    # Posterior predictive p-values of the per-LLM means (share of replicates above observed).
    ds["llm_mean_ppp"] = (ds["llm_mean"] >= ds["observed_llm_mean"]).mean("sample")
    ds.attrs.update(family=spec.family, n_draws=len(picks), seed=seed,
                    score_range=f"[{bins[0] + 0.5:g}, {bins[-1] - 0.5:g}]")
    return ds


@renamed_kwargs(n_draws="draws")
def predictive_checks(run: Run, *, draws: int = 200, seed: int = 0,
                      observed_scores: np.ndarray | None = None) -> xr.Dataset:
    """Posterior predictive checks of a run.

    Returns a Dataset with replicated ``llm_mean`` (sample, llm), ``participant_mean``
    (sample, participant), ``score_density`` (histogram of replicated ratings on 1-point
    bins over [-50, 150], with ``score_share_below``/``score_share_above`` beyond the
    edges) and their observed counterparts, plus ``llm_mean_ppp`` (posterior predictive
    p-values). *observed_scores* (the individual ratings) adds the observed histogram.
    *draws* posterior draws are used (sampled without replacement, seeded).
    """
    return _predictive(run.posterior, run.design, run.spec, draws, seed, observed_scores)


@renamed_kwargs(n_draws="draws")
def prior_predictive(design: Design, spec: ModelSpec, *, draws: int = 200, seed: int = 0,
                     observed_scores: np.ndarray | None = None) -> xr.Dataset:
    """Prior predictive checks (same layout as :func:`predictive_checks`)."""
    params = prior_samples(design, spec, draws, seed)
    return _predictive(params, design, spec, draws, seed + 1, observed_scores)


# --- PSIS-LOO ---------------------------------------------------------------------------

def loo(run: Run):
    """PSIS-LOO with participants as the left-out units (``arviz_stats.ELPDData``)."""
    run.require("log_likelihood")
    return azs.loo(run.idata, var_name=OBSERVED)


def loo_pit(run: Run) -> xr.DataArray:
    """LOO-PIT values of the participant mean ratings (``arviz_stats.loo_pit``), one per participant.

    Under a calibrated model they are close to uniform on [0, 1]; ``arviz_plots.plot_loo_pit``
    draws their ECDF with simultaneous bands.
    """
    run.require("log_likelihood", "posterior_predictive")
    return azs.loo_pit(run.idata, var_names=OBSERVED)[OBSERVED]


def compare(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Rank runs of different specs on the same data by leave-one-participant-out ELPD.

    The runs must share their participants (the same data and subset); the table is
    arviz-stats' ``compare`` output (elpd, se, elpd_diff, dse, weight, ...).
    """
    sets = {name: tuple(r.design.coords["participant"]) for name, r in runs.items()}
    if len(set(sets.values())) > 1:
        raise ValueError("LOO comparison needs runs on the same participants; got different sets")
    for r in runs.values():
        r.require("log_likelihood")
    return azs.compare({name: r.idata for name, r in runs.items()}, var_name=OBSERVED)
