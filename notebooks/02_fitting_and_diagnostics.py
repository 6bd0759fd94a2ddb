# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Fitting the rating model and checking it
#
# The main model (`models/ratings.toml`): opening-turn scores, Gaussian on the rating
# scale, collapsed to sufficient statistics; partial pooling of participants (integrated
# out exactly and redrawn afterwards), LLMs, countries of residence and conversation
# types; demographic main effects and LLM x (age, gender, ethnicity) varying effects.
#
# Steps: open a run (or fit one) → the design → prior predictive check → convergence
# diagnostics → posterior predictive checks → PSIS-LOO and LOO-PIT → the LLM effects and a
# frequentist cross-check with statsmodels' MixedLM. The run is an ArviZ DataTree, so the
# ArviZ functions (arviz-stats, arviz-plots) work on it directly.
#
# Settings (environment variables; defaults = the full analysis):
#
# | variable | default | meaning |
# |---|---|---|
# | `PRISM_NB_RUN` | – | a `prism-stats run` output folder (or a run folder): open it instead of fitting |
# | `PRISM_NB_PARTICIPANTS` | 1500 | size of the synthetic release |
# | `PRISM_NB_DATA` | – | a real release folder to use instead |
# | `PRISM_NB_CHAINS`, `PRISM_NB_DRAWS`, `PRISM_NB_TUNE` | 2, 1000, 1000 | sampler settings |
# | `PRISM_NB_WORKDIR` | `<tmp>/prism-stats-notebooks` | data and the notebooks' run folder |
#
# Without `PRISM_NB_RUN` the fitted run is saved under `WORK/runs/`, named by the sizes;
# notebooks 03–06 open it with `Run.load` instead of refitting.

# %%
# %matplotlib inline

import arviz_plots as azp
import arviz_stats as azs
import numpy as np
import pandas as pd

from prism_stats.data import load_prism
from prism_stats.model import Run, diagnose, fit, loo, loo_pit, predictive_checks
from prism_stats.model.crosscheck import mixedlm_crosscheck
from prism_stats.model.plots import plot_predictive
from prism_stats.pipeline import NotebookSettings

nb = NotebookSettings.from_env()
DATA = nb.data_folder()  # PRISM_NB_DATA, the run's data, or the synthetic release
data = load_prism(DATA)
RUN = nb.run_folder()
run = Run.load(RUN) if (RUN / "posterior.nc").is_file() else fit(
    data, "ratings", chains=nb.chains, draws=nb.draws, tune=nb.tune, out=RUN)
run

# %% [markdown]
# ## The model and the design
#
# The main model (`models/ratings.toml`): opening-turn scores, Gaussian on the rating
# scale, collapsed to sufficient statistics; partial pooling of participants (integrated
# out exactly and redrawn afterwards), LLMs, countries of residence and conversation
# types; demographic main effects and LLM × (age, gender, ethnicity) varying effects.
# Ratings are collapsed onto cells (participant × LLM × conversation type): the Gaussian
# likelihood only needs each cell's count, mean and sum of squares.

# %%
spec, design = run.spec, run.design
print(f"{spec.name}: {spec.description}")
print(f"{design.n_ratings:,} ratings in {design.n_cells:,} cells; "
      f"{len(design.coords['participant']):,} participants, {len(design.coords['llm'])} LLMs")
print({k: round(v, 1) for k, v in run.meta["timings"].items() if v is not None})
opening = data.ratings.loc[data.ratings["turn"] == 0, "score"].to_numpy(dtype=float)

# %% [markdown]
# ## Prior predictive check
#
# The run stores draws from the priors and the participant mean ratings they predict
# (`prior`, `prior_predictive`), next to the observed ones (`observed_data`).

# %%
run.require("prior", "prior_predictive")  # a run folder of an earlier version: asks for a refit
azp.plot_ppc_dist(run.idata, group="prior_predictive", num_samples=50)

# %% [markdown]
# ## Convergence
#
# Rank-normalised R-hat and bulk/tail ESS for every parameter (arviz-stats), divergences,
# E-BFMI and tree-depth saturation; the strict gate asks for R-hat ≤ 1.01, ESS ≥ 400, no
# divergence, E-BFMI ≥ 0.3 and at most 1% of draws at the maximum tree depth. (Short
# runs, as in CI, are not expected to pass it.)

# %%
diag = diagnose(run)
print(diag)

# %%
diag.table.sort_values("max_rhat", ascending=False).head(10)

# %%
azs.summary(run.idata, var_names=["intercept", "sigma", "sigma_participant", "sigma_llm"])

# %% [markdown]
# ## Posterior predictive checks
#
# The participant mean ratings replicated by new raters with the same attributes against
# the observed ones (ArviZ), and three panels of replicated data: the score distribution
# (the Gaussian model cannot produce the piles at 1, 50 and 100;
# `models/ratings_censored.toml` handles the ends), the per-LLM means and the spread of
# participant means.

# %%
azp.plot_ppc_dist(run.idata, num_samples=50)

# %%
ppc = predictive_checks(run, draws=100, seed=2, observed_scores=opening)
plot_predictive(ppc)

# %%
pd.Series(ppc["llm_mean_ppp"].values, index=ppc["llm"].values, name="posterior predictive p").round(2)

# %% [markdown]
# ## Leave-one-participant-out cross-validation
#
# PSIS-LOO with a participant as the left-out unit (the per-participant log-likelihood is
# stored in the run), and LOO-PIT of the participant means: close to uniform when the
# model predicts a left-out rater well. Pareto k above 0.7 would flag participants whose
# influence the approximation cannot handle.

# %%
elpd = loo(run)
print(elpd)

# %%
pit = loo_pit(run)
print(f"LOO-PIT: mean {float(pit.mean()):.2f} (0.5 if calibrated), "
      f"share below 0.1: {float((pit < 0.1).mean()):.2f}, above 0.9: {float((pit > 0.9).mean()):.2f}")
azp.plot_loo_pit(run.idata)

# %% [markdown]
# ## LLM effects, and a frequentist cross-check
#
# The LLM main effects (points on the rating scale, summing to zero) with their credible
# intervals (arviz-plots), and the same effects from a REML fit of statsmodels' MixedLM with a participant random
# intercept. The two should agree closely; REML can fail on very small or unbalanced
# data, which is reported rather than hidden.

# %%
azp.plot_forest(run.idata, var_names=["llm_effect"], combined=True)

# %%
try:
    cross = mixedlm_crosscheck(run, data)
except (np.linalg.LinAlgError, ValueError) as exc:
    cross = None
    print(f"MixedLM could not be fitted on these data: {type(exc).__name__}: {exc}")
if cross is not None:
    print(f"correlation of the LLM effects, Bayes vs REML: {cross.attrs['correlation']:.3f}")
cross
