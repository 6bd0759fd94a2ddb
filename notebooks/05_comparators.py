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
# # 05 · Frequentist comparators
#
# How much does the model matter? Per LLM, four estimates of the population's mean
# opening-turn rating:
#
# * **raw** — the mean over the country's resident participants;
# * **REP** — the mean over the country's representative sample;
# * **raked** — residents weighted to the census margins (iterative proportional
#   fitting), with standard errors clustered by participant (calibration-aware
#   linearisation);
# * **MRP** — the post-stratified model (notebook 03).
#
# Then the regressions of the original study, now with participant-clustered standard
# errors: score on response features, and score on demographics.
#
# Settings as in notebook 02. The run is opened with `Run.load` (a `prism-stats run`
# output with `PRISM_NB_RUN`, or notebook 02's run folder), or fitted when there is none.

# %%
# %matplotlib inline

from prism_stats.comparators import (
    comparison_table,
    demographic_regression,
    response_feature_regression,
)
from prism_stats.data import load_prism
from prism_stats.model import Run, fit
from prism_stats.pipeline import NotebookSettings
from prism_stats.poststrat import poststratify
from prism_stats.report import plot_raking_balance
from prism_stats.weights import default_participant_weights, weighted_llm_estimates

nb = NotebookSettings.from_env()
DATA = nb.data_folder()  # PRISM_NB_DATA, the run's data, or the synthetic release
data = load_prism(DATA)
RUN = nb.run_folder()  # PRISM_NB_RUN (a `prism-stats run` output), else notebook 02's run folder
run = Run.load(RUN) if (RUN / "posterior.nc").is_file() else fit(
    data, "ratings", chains=nb.chains, draws=nb.draws, tune=nb.tune, out=RUN)

# %% [markdown]
# ## Raking weights
#
# Residents with conversations are raked to the census margins of age, sex, ethnicity
# and age x sex (falling back to the one-way margins when a cross cell is empty). The
# diagnostics say how far the sample was from the census and what the weighting costs
# (Kish's design effect).

# %%
weights = {c: default_participant_weights(data.participants, c) for c in ("uk", "us")}
{c: {k: w.summary()[k] for k in ("margins", "n", "converged", "kish_deff", "ess", "weight_ratio",
                                  "max_asd_before", "max_asd_after")}
 for c, w in weights.items()}

# %%
plot_raking_balance({c: w.balance for c, w in weights.items()})

# %%
weighted_llm_estimates(data, weights["uk"]).sort_values("mean_rating", ascending=False).head(8)

# %% [markdown]
# ## Raw vs REP vs raked vs MRP

# %%
comparisons = {}
for c in ("uk", "us"):
    mrp = poststratify(run, c, data=data).summary()
    comparisons[c] = comparison_table(data, c, weighting=weights[c], poststrat=mrp, seed=nb.seed)
comparisons["uk"].table.head(10)

# %% [markdown]
# Do the estimators agree on the ranking of the LLMs?

# %%
comparisons["uk"].rank_correlations

# %%
print(comparisons["us"].to_markdown())

# %% [markdown]
# ## Regressions with participant-clustered standard errors
#
# Response features (length, line breaks, enumerations, a final question, refusals,
# de-anthropomorphising and self-identifying phrases) and demographics. Each participant
# rates many responses, so the standard errors are clustered by participant.

# %%
features = response_feature_regression(data)
features.to_frame()

# %%
demographics = demographic_regression(data)
demographics.to_frame().head(15)
