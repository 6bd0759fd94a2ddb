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
# Steps: prior predictive check → fit (nutpie) → convergence diagnostics → posterior
# predictive checks → PSIS-LOO → a frequentist cross-check with statsmodels' MixedLM.
#
# Settings (environment variables; defaults = the full analysis):
#
# | variable | default | meaning |
# |---|---|---|
# | `PRISM_NB_PARTICIPANTS` | 1500 | size of the synthetic release |
# | `PRISM_NB_DATA` | – | a real release folder to use instead |
# | `PRISM_NB_CHAINS`, `PRISM_NB_DRAWS`, `PRISM_NB_TUNE` | 2, 1000, 1000 | sampler settings |
# | `PRISM_NB_WORKDIR` | `<tmp>/prism-stats-notebooks` | data and the cached run folder |
#
# The fitted run is saved under `WORK/runs/ratings-<key>`, where the key hashes the data,
# the model and the sampler settings; notebooks 03–05 reopen it instead of refitting
# (`prism_stats.pipeline.cached_fit`).

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prism_stats.data import load_prism
from prism_stats.model import (
    build_design,
    diagnose,
    load_spec,
    loo,
    predictive_checks,
    prior_predictive,
)
from prism_stats.model.crosscheck import mixedlm_crosscheck
from prism_stats.model.plots import plot_predictive
from prism_stats.pipeline import NotebookSettings

nb = NotebookSettings.from_env()
DATA = nb.data_folder()
data = load_prism(DATA)
spec = load_spec("ratings")
print(f"{spec.name}: {spec.description}")

# %% [markdown]
# ## The design
#
# Ratings are collapsed onto cells (participant x LLM x conversation type): the Gaussian
# likelihood only needs each cell's count, mean and sum of squares, so the model
# evaluates a few thousand cells instead of every rating.

# %%
design = build_design(data, spec)
print(f"{design.n_ratings:,} ratings in {design.n_cells:,} cells; "
      f"{len(design.coords['participant']):,} participants, {len(design.coords['llm'])} LLMs")
opening = data.ratings.loc[data.ratings["turn"] == 0, "score"].to_numpy(dtype=float)

# %% [markdown]
# ## Prior predictive check
#
# Data simulated from the priors alone should cover every plausible rating distribution
# without piling up far outside 1–100.

# %%
prior = prior_predictive(design, spec, n_draws=100, seed=1, observed_scores=opening)
plot_predictive(prior, title="Prior predictive checks")

# %% [markdown]
# ## Fit
#
# nutpie shows its progress bar while sampling. With the default settings (2 chains x
# 1,000 draws after 1,000 tuning steps) this takes a couple of minutes at full size; a
# cached run with the same data, model and settings is reopened instantly.

# %%
run = nb.fit(data, spec)
print(f"run folder: {run.folder}")
print({k: round(v, 1) for k, v in run.meta["timings"].items() if v is not None})

# %% [markdown]
# ## Convergence
#
# Rank-normalised R-hat and bulk/tail ESS for every parameter, divergences and E-BFMI;
# the strict gate asks for R-hat ≤ 1.01, ESS ≥ 400 and no divergence. (Short runs, as in
# CI, are not expected to pass it.)

# %%
diag = diagnose(run)
print(diag)

# %%
diag.table.sort_values("max_rhat", ascending=False).head(10)

# %% [markdown]
# ## Posterior predictive checks
#
# Replicated data against the observed: the score distribution (the Gaussian model
# cannot produce the piles at 1, 50 and 100; `models/ratings_censored.toml` handles the
# ends), the per-LLM means and the spread of participant means.

# %%
ppc = predictive_checks(run, n_draws=100, seed=2, observed_scores=opening)
plot_predictive(ppc)

# %%
pd.Series(ppc["llm_mean_ppp"].values, index=ppc["llm"].values, name="posterior predictive p").round(2)

# %% [markdown]
# ## Leave-one-participant-out cross-validation
#
# PSIS-LOO with a participant as the left-out unit (the per-participant log-likelihood is
# stored in the run). Pareto k above 0.7 would flag participants whose influence the
# approximation cannot handle.

# %%
elpd = loo(run)
print(elpd)

# %% [markdown]
# ## LLM effects, and a frequentist cross-check
#
# The LLM main effects (points on the rating scale, summing to zero) with 90% intervals,
# and the same effects from a REML fit of statsmodels' MixedLM with a participant random
# intercept. The two should agree closely; REML can fail on very small or unbalanced
# data, which is reported rather than hidden.

# %%
effects = run.posterior["llm_effect"]
q = effects.quantile([0.05, 0.95], dim=("chain", "draw"))
llm_table = pd.DataFrame({
    "mean": effects.mean(("chain", "draw")).values,
    "q05": q.sel(quantile=0.05).values,
    "q95": q.sel(quantile=0.95).values,
}, index=[str(x) for x in effects["llm"].values]).sort_values("mean")
fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
y = np.arange(len(llm_table))
ax.hlines(y, llm_table["q05"], llm_table["q95"], color="C0")
ax.plot(llm_table["mean"], y, "o", color="C0", ms=4)
ax.axvline(0, color="grey", lw=0.6)
ax.set_yticks(y, llm_table.index, fontsize=7)
ax.set(xlabel="LLM effect (points), 90% interval", title="LLM main effects")
fig

# %%
try:
    cross = mixedlm_crosscheck(run, data)
except (np.linalg.LinAlgError, ValueError) as exc:
    cross = None
    print(f"MixedLM could not be fitted on these data: {type(exc).__name__}: {exc}")
if cross is not None:
    print(f"correlation of the LLM effects, Bayes vs REML: {cross.attrs['correlation']:.3f}")
cross
