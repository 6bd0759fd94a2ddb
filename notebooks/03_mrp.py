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
# # 03 · Multilevel regression and post-stratification (MRP)
#
# Which LLM would the UK and US adult populations rate highest — overall and within
# subgroups? The fitted model predicts the expected opening-turn rating of a **new**
# member of each census cell (age band x sex x ethnicity, 60 cells), and the census
# weights those predictions into population and subgroup estimates, draw by draw.
#
# Settings as in notebook 02 (`PRISM_NB_PARTICIPANTS`, `PRISM_NB_DATA`,
# `PRISM_NB_CHAINS`/`_DRAWS`/`_TUNE`, `PRISM_NB_WORKDIR`, `PRISM_NB_RUN`). The run is
# opened with `Run.load` — a `prism-stats run` output folder, or the run folder notebook
# 02 saved under `WORK/runs/`; when there is none,
# the model is fitted here.

# %%
# %matplotlib inline

import pandas as pd

from prism_stats import census
from prism_stats.data import load_prism
from prism_stats.model import Run, fit
from prism_stats.model.plots import plot_llm_forest
from prism_stats.pipeline import NotebookSettings
from prism_stats.poststrat import poststratify
from prism_stats.report import (
    mrp_subgroup_table,
    plot_recovery,
    plot_subgroup_heatmap,
    recovery_table,
)

nb = NotebookSettings.from_env()
DATA = nb.data_folder()  # PRISM_NB_DATA, the run's data, or the synthetic release
data = load_prism(DATA)
RUN = nb.run_folder()  # PRISM_NB_RUN (a `prism-stats run` output), else notebook 02's run folder
run = Run.load(RUN) if (RUN / "posterior.nc").is_file() else fit(
    data, "ratings", chains=nb.chains, draws=nb.draws, tune=nb.tune, out=RUN)
run

# %% [markdown]
# ## The census frames
#
# 60 cells per country with their adult counts (ONS Census 2021 for England and Wales;
# ACS 2022 for the US, each adult counted once — see `docs/census.md`).

# %%
frame = census.frame("uk")
frame.head(8)

# %% [markdown]
# ## Post-stratify
#
# `poststratify` returns the cell predictions and the census-weighted group estimates as
# draws (dims chain, draw, llm, group), and a summary with posterior mean, interval,
# the probability of being the best LLM and the expected rank, beside the raw and REP
# sample means.

# %%
results = {c: poststratify(run, c, data=data) for c in ("uk", "us")}
summary = pd.concat([r.summary() for r in results.values()], ignore_index=True)
summary.loc[summary["group"] == "all"].head(10)

# %%
plot_llm_forest(summary)

# %% [markdown]
# ## Who is served best?
#
# The heatmap subtracts, within each subgroup, the average LLM's estimate, so the
# colours show which LLM is relatively better for whom; boxes mark each subgroup's
# highest estimate.

# %%
plot_subgroup_heatmap(summary)

# %%
mrp_subgroup_table(summary, "uk").display_frame().head(8)

# %% [markdown]
# Posterior probability that each LLM is the best one, per subgroup (UK):

# %%
p_best = summary.loc[summary["country"] == "uk"].pivot(index="llm", columns="group", values="p_best")
p_best.loc[p_best.max(axis=1) > 0.05].round(2)

# %% [markdown]
# ## User-defined groups
#
# Any set of census cells is a group: a boolean mask, a list of cell labels, or a function
# of the frame. Here, women under 35:

# %%
young_women = poststratify(run, "uk", data=data, groups={
    "women_under35": lambda f: (f["sex"].astype(str) == "Female") & f["age"].astype(str).isin(["18-24", "25-34"]),
})
young_women.summary().query("group == 'women_under35'").head(5)

# %% [markdown]
# ## Against the synthetic truth
#
# On synthetic data the true population means are known: how many 90% intervals cover
# them, how large are the errors, and is the best LLM found?

# %%
truth_file = DATA / "truth" / "population_means.csv"
if truth_file.is_file():
    truth = pd.read_csv(truth_file)
    recovery = recovery_table(truth, summary)
    shown = recovery.display_frame()
else:
    truth, shown = None, "no truth/ folder: not a synthetic release"
shown

# %%
plot_recovery(truth, summary) if truth is not None else None
