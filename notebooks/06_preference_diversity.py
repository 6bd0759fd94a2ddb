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
# # 06 · Preference diversity: who prefers which LLM?
#
# The original study's second case study, reproduced and then modelled:
#
# 1. **Battles** — every pair of LLMs shown together at an opening turn; a tie when the
#    scores differ by at most 5 points. Win rates, Elo, MLE-Elo (with the original's L2
#    penalty) and unpenalised Bradley–Terry, Rank Centrality with the original's
#    normalisation quirk and corrected, all with a participant bootstrap.
# 2. **Subgroups** — gender, age, ethnicity, religion, region, conversation type and the
#    UK/US REP samples; groups below a minimum size are reported, not dropped.
# 3. **The models' answer** — rank distributions from the hierarchical choice model and
#    the rating model, post-stratified to the UK and US census, and where the study's
#    point ranking sits inside the models' intervals.
# 4. **Stated vs revealed preferences**, and 5. **how raters use the scale**.
#
# Settings as in notebook 02 (`PRISM_NB_*`). The rating model is opened with `Run.load`
# (a `prism-stats run` output with `PRISM_NB_RUN`, or notebook 02's run folder); the choice and stated-vs-revealed models are fitted here with the same
# sampler settings.

# %%
# %matplotlib inline

from prism_stats.data import load_prism
from prism_stats.model import Run, fit
from prism_stats.model.choice import fit_choice
from prism_stats.pipeline import NotebookSettings
from prism_stats.rankings import battles, compare_normalisations, outcome_shares, win_rate_matrix
from prism_stats.rankings import plots
from prism_stats.rankings.analysis import classical_rankings, model_rankings, score_use, stated_analysis

nb = NotebookSettings.from_env()
DATA = nb.data_folder()  # PRISM_NB_DATA, the run's data, or the synthetic release
data = load_prism(DATA)
RUN = nb.run_folder()  # PRISM_NB_RUN (a `prism-stats run` output), else notebook 02's run folder
run = Run.load(RUN) if (RUN / "posterior.nc").is_file() else fit(
    data, "ratings", chains=nb.chains, draws=nb.draws, tune=nb.tune, out=RUN)

# %% [markdown]
# ## Battles and win rates
#
# In the release: 42,306 battles, a 42.19%, b 40.33%, tie 17.48% (SPEC H13).

# %%
b = battles(data)
print(f"{len(b):,} battles;", outcome_shares(b).round(4).to_dict())
rate = win_rate_matrix(b)
rate.mean("opponent").to_series().sort_values(ascending=False).head(8)

# %% [markdown]
# ## Rank Centrality: the original normalisation and the corrected one
#
# The original divides each count by a "pair total" taken from the upper and lower
# triangles flattened in row-major order, which pairs (i, j) with (j, i) only for three
# LLMs or fewer; the corrected version divides by the pair's own total. The table shows
# how much the ranks move.

# %%
compare_normalisations(b)

# %% [markdown]
# ## Every method, every subgroup, with a participant bootstrap
#
# A replicate resamples participants (with all their battles). Ranks come with 90%
# bootstrap intervals; groups with fewer than 20 participants are listed as too small.

# %%
classical = classical_rankings(data, replicates=nb.replicates, seed=nb.seed)
classical.subgroups.too_small()

# %%
overall = classical.overall
overall[overall["ranking"].isin(["mle_elo", "rc_corrected"])].sort_values(["ranking", "rank"]).head(10)

# %%
plots.subgroup_rank_heatmap(classical.subgroups.table)

# %%
plots.method_comparison(classical.subgroups.table)

# %% [markdown]
# ## The models' answer: rank distributions
#
# The choice model (conditional logit over the 2–4 answers, with LLM × age/gender/ethnicity
# effects and participant taste heterogeneity) and the rating model (notebook 02) give a
# full distribution of each LLM's rank: P(rank = k), expected rank, P(best) and a 90%
# rank interval, post-stratified to the UK and US census groups and for the sample groups.

# %%
choice = fit_choice(data, chains=nb.chains, draws=nb.draws, tune=nb.tune, seed=nb.seed, progress=False)
model = model_rankings(data, run=run, choice_run=choice, classical=classical, seed=nb.seed)
model.notes

# %%
model.ranks.query("source == 'choice' and grouping == 'census_uk' and group == 'all'").sort_values(
    "expected_rank").head(8)

# %% [markdown]
# Where do the study's point ranks (corrected Rank Centrality) fall inside the model's 90%
# rank intervals, and which LLMs could be best?

# %%
model.agreement_summary.head(12)

# %%
plots.model_rank_heatmap(model.ranks, "choice")

# %% [markdown]
# Pairs of LLMs the data cannot order (0.05 < P(m ranks above m') < 0.95), whole sample:

# %%
model.undecided.query("source == 'choice' and grouping == 'all'").head(10)

# %% [markdown]
# ## Stated vs revealed preferences
#
# Correlations of stated importance, performance and choice attributes (clustered with
# complete linkage, as the original), and the hierarchical model: does saying an
# attribute matters go with rewarding it? `b1` > 0 means participants who rate the
# attribute as more important give a larger score bonus to answers that do well on it.

# %%
stated = stated_analysis(data, chains=nb.chains, draws=nb.draws, tune=nb.tune, seed=nb.seed)
plots.correlation_heatmap(stated.correlations.long())

# %%
summary = stated.dependence()
plots.stated_forest(summary)
summary.round(2)

# %% [markdown]
# ## How raters use the scale
#
# Expressivity (within-interaction range and sd), centrality (mean score and its distance
# from the slider's start value) and the disagreement on identical responses: in the
# release, different raters' scores of the same response span 34.6 points on average,
# the same rater's only 5.75 (SPEC H21).

# %%
use = score_use(data)
use.disagreement

# %%
use.raters.groupby("phase")[["expressivity_range", "centrality", "distance_from_start"]].describe().round(1)
