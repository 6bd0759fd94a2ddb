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
# # 07 · Dialogue diversity: what people talk about, and who talks about what
#
# The study's first case study (SPEC §3.2–3.3): cluster the opening prompts into topics,
# ask how topic choice depends on who the participant is, and look for near-duplicate
# prompts and who writes them. Four steps:
#
# 1. **Topics** — embed the prompts (TF-IDF + SVD here: offline, no downloaded model;
#    `embeddings="sentence-transformers"` uses the study's `all-mpnet-base-v2` when it is
#    installed and cached), reduce with UMAP and cluster with HDBSCAN, as the study did;
#    label the clusters with class-based TF-IDF terms. Outliers are a class of their own.
# 2. **The study's regressions** — per topic, a linear probability model on gender, age,
#    region, ethnicity, religion and conversation type, with the HC1 standard errors the
#    study had and the participant-clustered ones it meant to have.
# 3. **A hierarchical model** — all topics at once, effects pooled within each factor
#    family, participant random effects: 22 topics × 30 coefficients read together, not
#    as 660 tests.
# 4. **Neighbourhoods** — near-duplicate prompts and the diversity of their authors.
#
# On the synthetic default the prompts carry **planted topics** whose prevalence depends
# on the author and the conversation type, so every step is checked against the truth.
# Settings as in notebook 01 (`PRISM_NB_PARTICIPANTS`, `PRISM_NB_DATA`,
# `PRISM_NB_DRAWS`/`_TUNE`/`_CHAINS` for the hierarchical model).

# %%

import json

import pandas as pd

from prism_stats.data import load_prism
from prism_stats.pipeline import NotebookSettings
from prism_stats.report.topics import (
    disagreement_table,
    plot_coefficient_forest,
    plot_prevalence_heatmap,
)
from prism_stats.topics import (
    discover_topics,
    fit_topic_model,
    neighbourhood_analysis,
    prevalence,
    read_assignments,
    topic_design,
    topic_regressions,
)
from prism_stats.topics.hierarchical import compare_with_lpm

nb = NotebookSettings.from_env()
DATA = nb.data_folder()
data = load_prism(DATA)
TRUTH = DATA / "truth" / "topics.csv"
print(f"{len(data.conversations):,} opening prompts; planted truth: {TRUTH.is_file()}")

# %% [markdown]
# ## 1. Topics
#
# HDBSCAN's minimum cluster size was 80 for the study's 8,011 prompts; for other sizes it
# scales with the number of prompts (never below 10).

# %%
conv = data.conversations
topics = discover_topics(conv["opening_prompt"], conv["conversation"], seed=42,
                         progress=print)
topics.topics.head(12)

# %% [markdown]
# Against the planted topics (synthetic data only): the adjusted Rand index is 1 for a
# perfect partition and 0 for chance. Prompts too short to carry a word of their topic
# cannot be placed by any method, which caps it at about 0.8 here.

# %%
if TRUTH.is_file():
    from sklearn.metrics import adjusted_rand_score

    planted = read_assignments(TRUTH, conv["conversation"])
    ari = adjusted_rand_score(planted.table["topic"], topics.table["topic"])
    print(f"adjusted Rand index against the planted topics: {ari:.3f}")
    print(pd.crosstab(planted.table["topic_label"], topics.table["topic"]).iloc[:8, :10])

# %% [markdown]
# The regressions and the model below use the **planted** topics on synthetic data, so
# that their estimates can be compared with the true effects (on real data, the
# discovered topics or the study's released assignments, `read_assignments(...)`).

# %%
assignments = planted if TRUTH.is_file() else topics
design = topic_design(data, assignments)
plot_prevalence_heatmap(prevalence(design))

# %% [markdown]
# ## 2. The study's regressions: HC1 and clustered standard errors
#
# A participant writes about six prompts and tends to return to their topics, so for the
# participant-level factors the clustered standard errors are larger than HC1; for the
# conversation type, which varies within a participant, they are about the same.

# %%
lpm = topic_regressions(design, correction="holm", alpha=0.01)
print(lpm.counts())
lpm.se_ratios()

# %% [markdown]
# ## 3. The hierarchical model of topic choice
#
# Effects are average changes in the probability of the topic (percentage points), so
# they read like the regressions' coefficients; intervals are 90%.

# %%
model = fit_topic_model(design, chains=nb.chains, draws=nb.draws, tune=nb.tune, seed=1)
print(model.diagnostics)
model.effects.sort_values("p_direction", ascending=False).head(10)

# %%
plot_coefficient_forest(lpm.coefficients, model.effects)

# %% [markdown]
# Where the two disagree: significant in the regressions (clustered SEs, Holm) but not
# credible in the model (probability of direction below 0.995), or the reverse.

# %%
disagreements = compare_with_lpm(model.effects, lpm)
disagreement_table(disagreements).display_frame().head(15)

# %% [markdown]
# Recovery of the planted effects (synthetic data): the share of true effects inside
# the model's 90% intervals and the regressions' 95% clustered intervals.

# %%
effects_path = DATA / "truth" / "topic_effects.csv"
if effects_path.is_file():
    truth = pd.read_csv(effects_path).rename(columns={"topic": "topic_label"})
    m = model.effects.merge(truth, on=["topic_label", "term"])
    inside = (m["q05"] <= m["pp"]) & (m["pp"] <= m["q95"])
    c = lpm.coefficients.merge(truth, on=["topic_label", "term"])
    covered = (100 * c["ci_low_cluster"] <= c["pp"]) & (c["pp"] <= 100 * c["ci_high_cluster"])
    print(json.dumps({"model_90": round(float(inside.mean()), 3),
                      "model_90_planted": round(float(inside[m["planted"]].mean()), 3),
                      "lpm_95_clustered": round(float(covered.mean()), 3)}))

# %% [markdown]
# ## 4. Near-duplicate neighbourhoods
#
# Prompts within a cosine distance of 0.05, 0.125 or 0.2 of each other (single link) form
# neighbourhoods; the adjusted entropy compares the diversity of their authors with as
# many random prompts' authors.

# %%
hoods = neighbourhood_analysis(data, conv["conversation"], topics.embeddings.full, seed=1)
hoods.summary[["threshold", "neighbourhoods", "share_prompts", "k_mean", "gender_mean",
               "intersectional_mean", "intersectional_at_or_above", "intersectional_low",
               "intersectional_high"]]

# %% [markdown]
# The same analysis, with the tables and figures of the supplement, runs from the command
# line: `prism-stats topics DATA --out DIR` (or as the pipeline's `topics` stage with
# `[topics] enabled = true`).
