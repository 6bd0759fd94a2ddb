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
# # 01 · A tour of the PRISM data
#
# This notebook reads a PRISM release, validates it, and looks at what is in it: who the
# participants are, what they rated, and how the UK and US representative (REP) samples
# compare with the census. It runs on the **synthetic default** (a release in the exact
# PRISM schema, generated from a known hierarchical process, 1,500 participants) unless
# `PRISM_NB_DATA` points at a real release folder.
#
# Settings (environment variables, read in the next cell; the defaults are the full-size
# analysis, CI sets small values):
#
# | variable | default | meaning |
# |---|---|---|
# | `PRISM_NB_PARTICIPANTS` | 1500 | size of the synthetic release |
# | `PRISM_NB_DATA` | – | a real release folder to use instead |
# | `PRISM_NB_WORKDIR` | `<tmp>/prism-stats-notebooks` | where data and the notebooks' run are kept |
# | `PRISM_NB_RUN` | – | a `prism-stats run` output folder: its data are used |
#
# The other notebooks share the work folder: `02` fits the model once and saves the run
# folder there (named by the sizes); `03`–`06` open it with `Run.load`. With
# `PRISM_NB_RUN` they all open the run of a `prism-stats run` output folder instead.

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prism_stats import census, vocab
from prism_stats.data import compare_to_published, describe, load_prism, validate_release
from prism_stats.pipeline import NotebookSettings
from prism_stats.report import descriptives_tables

nb = NotebookSettings.from_env()
DATA = nb.data_folder()
print(f"release folder: {DATA}")

# %% [markdown]
# ## Validation
#
# `validate_release` checks every file against the PRISM schema (fields, types,
# vocabularies, ids, the conversation structure, cross-file consistency) and reports
# every finding with its file, line and field. `load_prism(..., strict=True)` refuses a
# release with errors; `strict=False` excludes invalid rows and counts them.

# %%
report = validate_release(DATA)
print(report)

# %%
data = load_prism(DATA, strict=True)
data

# %% [markdown]
# The tidy tables: one row per participant, per scored response (`ratings`) and per
# opening choice set (`choice_sets`); categorical columns use the package vocabularies.

# %%
data.participants[["participant", "age", "gender", "ethnicity", "reside_country",
                   "in_uk_rep", "in_us_rep", "n_conversations"]].head()

# %%
data.ratings[["conversation", "participant", "turn", "llm", "score", "chosen",
              "conversation_type"]].head()

# %% [markdown]
# ## Descriptive table
#
# `describe` reproduces the original study's descriptive tables; the report module turns
# them into the supplement's participant table.

# %%
summary = describe(data)
participants_table, overview_table = descriptives_tables(summary.to_frame())
overview_table.display_frame()

# %%
participants_table.display_frame().head(25)

# %% [markdown]
# How close is this release to the published counts and percentages? (For the synthetic
# default, the generator is calibrated to them at 1,500 participants; at other sizes the
# counts scale and the percentages should still agree.)

# %%
published = compare_to_published(summary)
print(f"{int(published['match'].sum())} of {len(published)} published quantities matched")
published.head(15)

# %% [markdown]
# ## Ratings
#
# Scores are a 1–100 slider: note the piles at 1, at 100 and at 50 (the slider's start).

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
scores = data.ratings["score"].to_numpy()
axes[0].hist(scores, bins=np.arange(0.5, 101.5, 1), color="C0")
axes[0].set(xlabel="score", ylabel="ratings", title="All scored responses")
opening = data.ratings.loc[data.ratings["turn"] == 0]
by_llm = opening.groupby("llm", observed=True)["score"].agg(["mean", "sem", "size"]).sort_values("mean")
axes[1].errorbar(by_llm["mean"], np.arange(len(by_llm)), xerr=1.96 * by_llm["sem"], fmt="o", ms=3)
axes[1].set_yticks(np.arange(len(by_llm)), by_llm.index, fontsize=7)
axes[1].set(xlabel="mean opening-turn score (95% CI, ratings treated as independent)",
            title="Raw means per LLM")
fig

# %% [markdown]
# The raw means above treat every rating as independent and every participant as equally
# representative. Participants rate many responses, differ in leniency, and are not a
# random sample of any population — which is why notebook 02 fits a multilevel model and
# notebook 03 post-stratifies it to the census.

# %% [markdown]
# ## Who the participants are, and the REP samples
#
# Residence countries, and how the UK REP sample compares with the UK census in age.

# %%
data.participants["reside_country"].astype(str).value_counts().head(10)

# %%
frame = census.frame("uk")
census_age = frame.groupby("age", observed=True)["count"].sum()
census_age = census_age / census_age.sum()
rep = data.participants.loc[data.participants["in_uk_rep"]]
rep_age = rep["age"].astype(str).value_counts(normalize=True).reindex(vocab.CENSUS_AGES, fill_value=0)
comparison = pd.DataFrame({"UK census": census_age.reindex(vocab.CENSUS_AGES).to_numpy(),
                           "UK REP sample": rep_age.to_numpy()}, index=list(vocab.CENSUS_AGES))
print(f"UK REP sample: {len(rep)} participants")
(100 * comparison).round(1)

# %% [markdown]
# ## The synthetic truth
#
# A synthetic release carries its generating parameters in `truth/`: the true population
# mean rating of every LLM for every census subgroup. Notebook 03 checks the MRP
# estimates against it.

# %%
truth_file = DATA / "truth" / "population_means.csv"
if truth_file.is_file():
    truth = pd.read_csv(truth_file)
    best = truth.loc[truth.groupby(["country", "group"])["mean"].idxmax()]
    display_best = best.pivot(index="group", columns="country", values="llm")
else:
    display_best = "no truth/ folder: this is not a synthetic release"
display_best
