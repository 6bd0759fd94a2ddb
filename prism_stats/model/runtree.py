"""The run's ArviZ DataTree: its groups, shared variable names, labelled coordinates, upgrades.

A run is one ``xarray.DataTree`` in the ArviZ 1.x layout, so every ArviZ tool works on it
directly (``arviz_stats.loo``/``loo_pit``/``summary``, ``arviz_plots.plot_ppc_dist``,
``plot_forest``, ...)::

    posterior              the model's parameters (chain, draw, named dims)
    posterior_predictive   score (chain, draw, participant)
    log_likelihood         score (chain, draw, participant)
    observed_data          score (participant)
    prior                  the parameters drawn from the priors (chain, draw, named dims)
    prior_predictive       score (chain, draw, participant)
    sample_stats           the sampler's statistics (energy, diverging, tree depth, ...)
    constant_data          the sufficient-statistics design (obs_cell, participant)

**One observation per participant.** The likelihood is evaluated per participant with
the participant's own effect integrated out (the unit that leave-one-participant-out
cross-validation leaves out), so the observation that ``observed_data``,
``posterior_predictive`` and ``log_likelihood`` share is the participant's whole set of
ratings, summarised by its mean: ``observed_data.score`` is each participant's mean
rating and ``posterior_predictive.score`` the mean of the participant's ratings
replicated by a *new* rater with the same attributes (effect drawn from the population,
cells and counts kept). That is the predictive distribution whose density
``log_likelihood.score`` holds, so LOO-PIT of the participant means is exact; it also
makes the posterior predictive check of the spread of participant means a check of the
population distribution of raters, not of their fitted effects.

Coordinates carry labels (participant ids, LLM short names, level names); coordinates no
variable uses (the ``<factor>_free`` helpers of the zero-sum parameterisation) are
dropped. Run folders written before this layout (format 1) are upgraded on reading:
what can be recomputed exactly from the stored design is (the observed data, the coords);
the predictive and prior groups cannot, and :func:`missing_groups` names them so that
callers can ask for a refit.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pymc as pm
import xarray as xr
from scipy import sparse

from .design import HIGH, LOW, Design
from .effects import is_raw
from .predict import linear_predictor, n_samples, simulate_cells, stacked
from .rating import build_model
from .spec import ModelSpec

#: Format of the run's DataTree: 1 = cell means as observed data, predictive checks in
#: separate files (prism-stats <= 0.1.0, before ArviZ-native runs); 2 = this layout.
RUN_FORMAT = 2
#: The variable shared by observed_data, posterior_predictive, prior_predictive and
#: log_likelihood.
OBSERVED = "score"
#: Every group of a complete run.
GROUPS: tuple[str, ...] = ("posterior", "posterior_predictive", "log_likelihood", "sample_stats",
                           "prior", "prior_predictive", "observed_data", "constant_data")
#: Prior draws stored in a run.
PRIOR_DRAWS = 500

_DESCRIPTIONS = {
    "observed_data": "mean of each participant's modelled ratings",
    "posterior_predictive": ("mean of each participant's ratings replicated by a new rater with "
                             "the same attributes (participant effect drawn from the population); "
                             "the predictive distribution of log_likelihood.score"),
    "prior_predictive": "as posterior_predictive, with the parameters drawn from the priors",
    "log_likelihood": ("log-density of each participant's ratings with the participant's own "
                       "effect integrated out"),
}


# --- tidying ---------------------------------------------------------------------------------


def drop_unused_coords(ds: xr.Dataset) -> xr.Dataset:
    """*ds* without coordinates that no variable's dims use (e.g. ``country_free``)."""
    used = {d for v in ds.data_vars.values() for d in v.dims}
    return ds.drop_vars([c for c in ds.coords if c not in used and all(d not in used for d in ds[c].dims)])


def tidy_posterior(post: xr.Dataset) -> xr.Dataset:
    """Drop the sampler-internal raw variables and the coordinates only they used."""
    return drop_unused_coords(post.drop_vars([v for v in post.data_vars if is_raw(v)]))


def tidy_sample_stats(stats: xr.Dataset) -> xr.Dataset:
    """Drop object-dtype statistics (divergence messages cannot go to netCDF; their
    content is kept in the numeric divergence fields)."""
    return stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])


def labelled_constant_data(design: Design) -> xr.Dataset:
    """The design with label coordinates along ``obs_cell`` (participant, LLM, type)."""
    ds = design.to_dataset()
    labels = {}
    for name in ("participant", "llm", "conversation_type"):
        if name in design.cells.columns and name in design.coords:
            codes = design.cells[name].to_numpy()
            labels[f"obs_{name}"] = ("obs_cell", np.asarray(design.coords[name], dtype=object)[codes])
    return ds.assign_coords(labels)


# --- observed and replicated participant means --------------------------------------------------


def _to_participants(design: Design) -> sparse.csr_matrix:
    p = design.cells["participant"].to_numpy()
    n_p = len(design.coords["participant"])
    return sparse.csr_matrix((np.ones(len(p)), (p, np.arange(len(p)))), shape=(n_p, len(p)))


def observed_scores(design: Design) -> xr.DataArray:
    """``observed_data.score``: each participant's mean rating (exact, from the cells)."""
    n = design.cells["n"].to_numpy(dtype=float)
    to_p = _to_participants(design)
    mean = (to_p @ (n * design.cells["mean"].to_numpy())) / (to_p @ n)
    return xr.DataArray(mean, dims="participant", coords={"participant": design.coords["participant"]},
                        name=OBSERVED, attrs={"description": _DESCRIPTIONS["observed_data"]})


def _cell_totals(sim: dict[str, np.ndarray], n: np.ndarray, family: str) -> np.ndarray:
    if family == "gaussian":
        return sim["mean"] * n
    return sim["n_low"] * LOW + sim["n_high"] * HIGH + sim["n_int"] * sim["mean_int"]


def replicated_scores(params: xr.Dataset, design: Design, spec: ModelSpec, rng: np.random.Generator,
                      *, chunk: int = 200) -> xr.DataArray:
    """Participant mean ratings replicated by new raters, one per sample: (chain, draw, participant).

    Each sample's participant effects are redrawn from ``Normal(0, sigma_participant)``
    (the participant's own effect integrated out, as in ``log_likelihood.score``); the
    cells, their counts and every other parameter are the sample's. Gaussian cell means
    come from their exact sampling distribution, censored ones from clipped ratings.
    """
    participants = design.coords["participant"]
    tau = params["sigma_participant"]
    z = rng.standard_normal((*tau.shape, len(participants)))
    params = params.assign(participant_effect=((*tau.dims, "participant"), tau.values[..., None] * z))
    params = params.assign_coords(participant=participants)
    n = design.cells["n"].to_numpy(dtype=float)
    to_p = _to_participants(design)
    n_per = to_p @ n
    S = n_samples(params)
    out = np.empty((S, len(participants)))
    # Gaussian family without rater-level terms: the replicated mean of a participant's
    # ratings is exactly Normal(sum_c n_c eta_c / n_p, sigma^2 / n_p) given the effects, so
    # one draw per participant replaces a draw per cell and a chi-square (same distribution,
    # about 3x faster at PRISM size); other models simulate the cells.
    closed_form = spec.family == "gaussian" and not (getattr(spec, "rater_llm", False)
                                                     or getattr(spec, "rater_scale", False))
    sigma = stacked(params, "sigma")
    for start in range(0, S, chunk):
        sel = np.arange(start, min(start + chunk, S))
        if closed_form:
            eta = linear_predictor(params, design, spec, sel)
            noise = sigma[sel, None] / np.sqrt(n_per)[None, :] * rng.standard_normal((len(sel), len(n_per)))
            out[sel] = (to_p @ (n[None, :] * eta).T).T / n_per + noise
            continue
        sim = simulate_cells(params, design, spec, rng, sel)
        out[sel] = (to_p @ _cell_totals(sim, n[None, :], spec.family).T).T / n_per
    dims = [d for d in ("chain", "draw") if d in params.sizes]
    return xr.DataArray(
        out.reshape(*[params.sizes[d] for d in dims], len(participants)),
        dims=[*dims, "participant"],
        coords={**{d: params[d].values for d in dims}, "participant": participants},
        name=OBSERVED,
    )


def prior_samples(design: Design, spec: ModelSpec, draws: int = 200, seed: int = 0,
                  model: pm.Model | None = None) -> xr.Dataset:
    """Parameters drawn from the spec's prior, with dims (chain=1, draw, ...).

    Raw non-centred variables (and the coordinates only they use) are dropped. When
    participant effects are marginalized out of the model, they are drawn here from their
    prior, iid Normal(0, sigma_participant), so the result has every parameter the linear
    predictor needs. *model* reuses an already built PyMC model of the same design.
    """
    model = model if model is not None else build_model(design, spec)
    pymc_log = logging.getLogger("pymc")
    level = pymc_log.level
    pymc_log.setLevel(logging.WARNING)  # PyMC lists the sampled variables at INFO
    try:
        with model, warnings.catch_warnings():
            # The likelihood terms that are Potentials (the marginal and within-cell parts)
            # are rightly ignored here: these are draws from the prior.
            warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
            prior = pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=[
                v.name for v in model.free_RVs + model.deterministics])
    finally:
        pymc_log.setLevel(level)
    ds = prior["prior"].to_dataset() if isinstance(prior, xr.DataTree) else prior.prior
    ds = tidy_posterior(ds)
    if "participant_effect" not in ds:
        rng = np.random.default_rng([seed, 2])
        tau = ds["sigma_participant"]
        z = rng.standard_normal((*tau.shape, len(design.coords["participant"])))
        ds["participant_effect"] = ((*tau.dims, "participant"), tau.values[..., None] * z)
        ds = ds.assign_coords(participant=design.coords["participant"])
    return ds


# --- the tree ---------------------------------------------------------------------------------------


def _with_description(da: xr.DataArray, group: str) -> xr.Dataset:
    da = da.copy()
    da.attrs["description"] = _DESCRIPTIONS[group]
    return xr.Dataset({OBSERVED: da})


def build_tree(
    posterior: xr.Dataset,
    sample_stats: xr.Dataset,
    design: Design,
    spec: ModelSpec,
    *,
    log_likelihood: xr.DataArray | None = None,
    predictive: bool = True,
    prior_draws: int = PRIOR_DRAWS,
    seed: int = 0,
    model: pm.Model | None = None,
) -> xr.DataTree:
    """Assemble a run's DataTree (see the module docstring).

    *posterior* must already hold every parameter the linear predictor needs (participant
    effects included). ``predictive=False`` leaves out the posterior and prior predictive
    groups (sweeps and SBC replicates do not need them); ``prior_draws=0`` the prior.
    Seeds are spawned from *seed*, so the same run gives the same replicates.
    """
    post_rng, prior_seq = np.random.SeedSequence([int(seed), 3]).spawn(2)
    groups: dict[str, xr.Dataset] = {"posterior": tidy_posterior(posterior)}
    if predictive:
        rep = replicated_scores(groups["posterior"], design, spec, np.random.default_rng(post_rng))
        groups["posterior_predictive"] = _with_description(rep, "posterior_predictive")
    if log_likelihood is not None:
        groups["log_likelihood"] = _with_description(log_likelihood.rename(OBSERVED), "log_likelihood")
    groups["sample_stats"] = tidy_sample_stats(sample_stats)
    if predictive and prior_draws > 0:
        prior_seed, rep_seed = prior_seq.generate_state(2)
        prior = prior_samples(design, spec, prior_draws, int(prior_seed), model=model)
        groups["prior"] = prior
        rep = replicated_scores(prior, design, spec, np.random.default_rng(int(rep_seed)))
        groups["prior_predictive"] = _with_description(rep, "prior_predictive")
    groups["observed_data"] = xr.Dataset({OBSERVED: observed_scores(design)})
    groups["constant_data"] = labelled_constant_data(design)
    tree = xr.DataTree.from_dict(groups)
    tree.attrs["run_format"] = RUN_FORMAT
    return tree


def tree_format(idata: xr.DataTree) -> int:
    """The format of a stored run tree (1 when it predates :data:`RUN_FORMAT`)."""
    return int(idata.attrs.get("run_format", 1))


def upgrade_tree(idata: xr.DataTree, design: Design) -> xr.DataTree:
    """A format-1 tree in the current layout, as far as the stored data allow.

    Exact and cheap: unused coordinates dropped, ``observed_data.score`` computed from
    the design, ``log_likelihood.score`` described, label coordinates on the design.
    The predictive and prior groups stay missing (:func:`missing_groups`).
    """
    if tree_format(idata) >= RUN_FORMAT:
        return idata
    groups = {"posterior": tidy_posterior(idata["posterior"].to_dataset())}
    if "log_likelihood" in idata.children:
        groups["log_likelihood"] = _with_description(
            idata["log_likelihood"].to_dataset()[OBSERVED], "log_likelihood")
    groups["sample_stats"] = tidy_sample_stats(idata["sample_stats"].to_dataset())
    groups["observed_data"] = xr.Dataset({OBSERVED: observed_scores(design)})
    groups["constant_data"] = labelled_constant_data(design)
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(idata.attrs)
    tree.attrs["run_format"] = RUN_FORMAT
    tree.attrs["upgraded_from_format"] = 1
    return tree


def missing_groups(idata: xr.DataTree) -> list[str]:
    """The groups of :data:`GROUPS` the tree lacks."""
    return [g for g in GROUPS if g not in idata.children]
