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
# # 04 · Collective welfare: whom does a jury's choice serve?
#
# A jury drawn from a rater pool picks one LLM (by its mean rating, by how often it is
# chosen, or by the fewest vetoes); how well does that LLM serve a target population —
# everyone, non-male, non-white or under-45 people? And how much worse off is a target
# when the jury is drawn from a skewed pool (male, white, 45+) instead of a
# representative one (the *exclusion gap*)?
#
# Two analyses share one result schema:
#
# * **design-based** — the original study's reproduction: juries resample the REP
#   samples' raters and welfare is measured on them;
# * **model-based** — juries are drawn from census pools and judged by the fitted
#   model, with its full posterior uncertainty.
#
# Settings as in notebook 02, plus `PRISM_NB_REPLICATES` (juries per scheme, default 1,000).

# %%
# %matplotlib inline

import xarray as xr

from prism_stats.data import load_prism
from prism_stats.model import Run, fit
from prism_stats.pipeline import NotebookSettings
from prism_stats.welfare import (
    exclusion_gaps,
    expected_gaps,
    fosd_table,
    model_welfare,
    plot_exclusion_gaps,
    plot_welfare_distributions,
    run_juries,
    summarise_welfare,
    true_welfare,
)

nb = NotebookSettings.from_env()
DATA = nb.data_folder()  # PRISM_NB_DATA, the run's data, or the synthetic release
data = load_prism(DATA)
RUN = nb.run_folder()  # PRISM_NB_RUN (a `prism-stats run` output), else notebook 02's run folder
run = Run.load(RUN) if (RUN / "posterior.nc").is_file() else fit(
    data, "ratings", chains=nb.chains, draws=nb.draws, tune=nb.tune, out=RUN)

# %% [markdown]
# ## Design-based juries (the original study)
#
# Seven schemes (representative juries of 10, 20, 50, 100; juries of 100 from the male,
# white and 45+ members of the REP sample), three rules and four targets, for both
# countries. The juries are shared by all rules and targets (paired comparisons).

# %%
design = run_juries(data, ["uk", "us"], replicates=nb.replicates, seed=1)
design_summary = summarise_welfare(design)
design_summary.query("country == 'uk' and rule == 'mean'")

# %%
plot_welfare_distributions(design, "uk", "mean")

# %% [markdown]
# Exclusion gaps between single juries, and first-order stochastic dominance against
# representative juries of 100 (the original study's check):

# %%
exclusion_gaps(design).query("rule == 'mean'")

# %%
fosd_table(design).query("rule == 'mean' and country == 'uk'")[
    ["target", "scheme", "dominated_by_reference", "dominates_reference", "max_cdf_excess"]]

# %% [markdown]
# ## Model-based welfare
#
# Jurors are new members of census cells drawn from the pool; their ratings come from
# the posterior (new participant effects and noise included), so the answer is about the
# country's adult population rather than about the few hundred REP raters.

# %%
model = {c: model_welfare(run, c, replicates=nb.replicates, draws=min(200, nb.chains * nb.draws), seed=1)
         for c in ("uk", "us")}
model_summary = summarise_welfare(xr.concat(list(model.values()), dim="country"))
model_summary.query("rule == 'mean' and target == 'all'")

# %%
plot_welfare_distributions(model["uk"], "uk", "mean")

# %% [markdown]
# The expected exclusion gap averages out the luck of the draw of a single jury: its
# interval is the posterior uncertainty of how much worse a skewed pool serves a target
# on average.

# %%
gaps = expected_gaps(model["uk"])
gaps.query("rule == 'mean'")

# %%
plot_exclusion_gaps(gaps.rename(columns={"p_negative": "p_worse"}).assign(n_pairs=model["uk"].attrs.get("n_draws", 0)), "uk")

# %% [markdown]
# ## Against the synthetic truth
#
# The generator defines the true welfare of every scheme (mean and veto rules); the
# model-based expected gaps should bracket the true ones.

# %%
params_file = DATA / "truth" / "params.nc"
if params_file.is_file():
    truth_params = xr.load_dataset(params_file)
    truth = true_welfare(truth_params, "uk", replicates=nb.replicates, seed=1)
    true_gaps = exclusion_gaps(truth).query("rule == 'mean'")[["target", "pool", "gap_mean"]]
    est = gaps.query("rule == 'mean'")[["target", "pool", "gap_mean", "gap_q05", "gap_q95"]]
    check = est.merge(true_gaps.rename(columns={"gap_mean": "true_gap"}), on=["target", "pool"])
    check["covered"] = (check["gap_q05"] <= check["true_gap"]) & (check["true_gap"] <= check["gap_q95"])
else:
    check = "no truth/ folder: not a synthetic release"
check
