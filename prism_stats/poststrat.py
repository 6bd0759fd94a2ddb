"""Multilevel regression and post-stratification (MRP) to the UK and US census.

For each census cell c (age band x sex x ethnicity) of a country and each LLM m, the
estimand is the expected opening-turn rating of a **new** member of c, marginal over
participant effects, with the country's effect::

    eta_cm = intercept + llm_effect[m] + country_effect[k]
             + sum_f demographic_effect_f[c_f] + sum_f llm_f[m, c_f]
             + llm_residence[m, k]  or  llm_region[m, r(k)] + llm_country[m, k]
                                                               (LLM x residence, when fitted)

so the UK and US cells get their own country's LLM preferences. Conversation types are
averaged with equal weights (their effects, LLM x conversation type included, sum to zero
over types, so they drop out) and the turn is the opening one. For the Gaussian family the expected rating is
``eta_cm``; for the censored family it is ``E[clip(Z, 1, 100)]`` with
``Z ~ Normal(eta_cm, sqrt(sigma_participant^2 + sigma^2))`` — the mean of the slider
values a new rater would give, piles at the ends included.

Census sex maps to the model's gender levels Male/Female. A level the census needs but
the data never saw (e.g. no participant aged 65+ in a small sample), or a country absent
from the data, is a *new group*: its effect is drawn from the fitted population
distribution, ``Normal(0, sigma_f)``, draw by draw. Demographic factors the census does
not carry (education, religion, ...) are averaged over their distribution among the
country's residents in the data (documented approximation).

Population and subgroup estimates are census-weighted averages of the cell estimates,
kept as draws with dims (chain, draw, llm, group).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from . import census, vocab
from ._io import atomic_path, now_iso, write_text_atomic
from .model.design import HIGH, LOW, MRP_COUNTRY_LEVELS, country_regions
from .model.fit import Run
from .model.predict import new_rater_sd, stacked
from .model.spec import CENSUS_FACTORS, DEMOGRAPHIC_COLUMNS, ModelSpec
from .tabular import Table, interval

#: The standard groups (census cells) of MRP summaries, in report order.
GROUPS: tuple[str, ...] = ("all", "male", "nonmale", "white", "nonwhite", "under45", "over45")
#: Columns of ``poststrat_<country>.csv``.
CSV_COLUMNS: tuple[str, ...] = (
    "country", "group", "llm", "mean", "sd", "q05", "q50", "q95", "p_best", "raw_mean", "rep_mean",
    "converged",
)
#: Country code of each post-stratification country, per country variable of a spec.
COUNTRY_LEVEL = MRP_COUNTRY_LEVELS

GroupSpec = Sequence[bool] | Sequence[str] | Callable[[pd.DataFrame], Sequence[bool]]


class PoststratError(ValueError):
    """Post-stratification cannot be done as asked."""


def expected_clipped(mu: np.ndarray, sd: np.ndarray | float, low: float = LOW,
                     high: float = HIGH) -> np.ndarray:
    """``E[clip(Z, low, high)]`` for ``Z ~ Normal(mu, sd)`` (closed form).

    Used for the censored family's expected slider value, and by the synthetic truth.
    """
    mu = np.asarray(mu, dtype=float)
    sd = np.asarray(sd, dtype=float)
    a, b = (low - mu) / sd, (high - mu) / sd
    cdf_a, cdf_b = special.ndtr(a), special.ndtr(b)
    pdf_a, pdf_b = np.exp(-0.5 * a**2) / np.sqrt(2 * np.pi), np.exp(-0.5 * b**2) / np.sqrt(2 * np.pi)
    return low * cdf_a + high * (1 - cdf_b) + mu * (cdf_b - cdf_a) + sd * (pdf_a - pdf_b)


def resolve_groups(frame: pd.DataFrame, groups: Mapping[str, GroupSpec] | None = None) -> dict[str, np.ndarray]:
    """Boolean cell masks of the standard groups plus any user-supplied grouping.

    A user group is a boolean mask over the frame's cells, a list of cell labels
    (``"18-24|Male|White"``), or a callable taking the frame and returning a mask.
    """
    out = dict(census.group_masks(frame))
    for name, g in (groups or {}).items():
        if callable(g):
            mask = np.asarray(g(frame), dtype=bool)
        else:
            g = list(g)
            if g and isinstance(g[0], str):
                unknown = set(g) - set(frame["cell"])
                if unknown:
                    raise PoststratError(f"group {name!r}: unknown cell(s) {sorted(unknown)[:3]}")
                mask = frame["cell"].isin(g).to_numpy()
            else:
                mask = np.asarray(g, dtype=bool)
        if mask.shape != (len(frame),) or not mask.any():
            raise PoststratError(f"group {name!r} must select at least one of the {len(frame)} cells")
        out[name] = mask
    return out


def _effect_at(params: xr.Dataset, name: str, dim: str, labels: Sequence[str],
               scale_name: str, fixed_scale: float, rng: np.random.Generator,
               with_llm: bool, per_llm_scales: bool = False) -> np.ndarray:
    """Effect values at *labels* (S, [llm,] len(labels)); new levels drawn from N(0, sigma).

    The scale is the fitted hyperparameter under partial pooling, else the fixed prior
    scale; *per_llm_scales* multiplies it by the per-LLM ``llm_heterogeneity`` when the
    model has one (LLM x demographic interactions under "per_llm" pooling).
    """
    arr = stacked(params, name)  # (S, level) or (S, llm, level)
    known = [str(x) for x in params[dim].values]
    S = arr.shape[0]
    out_shape = (S, arr.shape[1], len(labels)) if with_llm else (S, len(labels))
    out = np.empty(out_shape)
    scale = stacked(params, scale_name) if scale_name in params else np.full(S, fixed_scale)
    for j, label in enumerate(labels):
        if label in known:
            out[..., j] = arr[..., known.index(label)]
        else:
            shape = (S, arr.shape[1]) if with_llm else (S,)
            sd = scale if not with_llm else scale[:, None]
            if per_llm_scales and "llm_heterogeneity" in params:
                sd = sd * stacked(params, "llm_heterogeneity")
            out[..., j] = sd * rng.standard_normal(shape)
    return out


def cell_predictions(
    params: xr.Dataset,
    spec: ModelSpec,
    frame: pd.DataFrame,
    country: str,
    *,
    participants: pd.DataFrame | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Expected opening-turn rating of a new member of each census cell, per LLM.

    Parameters
    ----------
    params : xarray.Dataset
        Model parameters with ``chain``/``draw`` dims (posterior, prior or truth).
    spec : ModelSpec
    frame : DataFrame
        Census frame (:func:`prism_stats.census.frame`).
    country : {"uk", "us"}
    participants : DataFrame, optional
        Tidy participants; needed only when the spec has non-census demographics.
    seed : int
        Seeds the draws of effects for levels unseen in the data.

    Returns
    -------
    xarray.DataArray
        ``cell_mean`` with dims (chain, draw, llm, cell).
    """
    rng = np.random.default_rng(seed)
    llms = [str(x) for x in params["llm"].values]
    S = int(np.prod([params.sizes[d] for d in ("chain", "draw") if d in params.sizes]))
    eta = stacked(params, "intercept")[:, None, None] + stacked(params, "llm_effect")[:, :, None]
    eta = np.broadcast_to(eta, (S, len(llms), len(frame))).copy()

    level = COUNTRY_LEVEL[spec.country][country]
    if "country_effect" in params:
        eta += _effect_at(params, "country_effect", "country", [level], "sigma_country",
                          spec.prior("sigma_country"), rng, False)[:, None, :]

    eta += _residence_llm(params, spec, level, rng)[:, :, None]

    labels_for = {
        "age": frame["age"].astype(str).tolist(),
        "gender": frame["sex"].astype(str).tolist(),  # census sex -> gender levels Male/Female
        "ethnicity": frame["ethnicity"].astype(str).tolist(),
    }
    for f in spec.demographics:
        has_main, has_llm = f"{f}_effect" in params, f"llm_{f}" in params
        if not (has_main or has_llm):
            continue
        if f in CENSUS_FACTORS:
            labels = labels_for[f]
            if has_main:
                eta += _effect_at(params, f"{f}_effect", f, labels, f"sigma_{f}",
                                  spec.prior("sigma_demographic"), rng, False)[:, None, :]
            if has_llm:
                eta += _effect_at(params, f"llm_{f}", f, labels, f"sigma_llm_{f}",
                                  spec.prior("sigma_interaction"), rng, True, per_llm_scales=True)
        else:
            eta += _marginal_effect(params, f, spec, participants, country)[:, :, None]

    if spec.family == "censored":
        eta = expected_clipped(eta, new_rater_sd(params)[:, None, None])

    dims = [d for d in ("chain", "draw") if d in params.sizes]
    shape = [params.sizes[d] for d in dims]
    return xr.DataArray(
        eta.reshape(*shape, len(llms), len(frame)),
        dims=[*dims, "llm", "cell"],
        coords={
            **{d: params[d].values for d in dims},
            "llm": llms,
            "cell": frame["cell"].tolist(),
        },
        name="cell_mean",
    )


def _residence_llm(params: xr.Dataset, spec: ModelSpec, level: str,
                   rng: np.random.Generator) -> np.ndarray:
    """LLM x residence terms of country *level*: (S, llm), 0 when the model has none.

    ``llm_region`` at the country's region plus ``llm_country`` at the country; a region or
    country absent from the data is a new level, drawn from its fitted population.
    """
    S, n_llm = stacked(params, "llm_effect").shape
    out = np.zeros((S, n_llm))
    if "llm_residence" in params:
        out += _effect_at(params, "llm_residence", "residence", [level], "sigma_llm_country",
                          spec.prior("sigma_llm_country"), rng, True)[:, :, 0]
    if "llm_region" in params:
        region = country_regions([level], spec.llm_residence)[0]
        out += _effect_at(params, "llm_region", "region", [region], "sigma_llm_region",
                          spec.prior("sigma_llm_region"), rng, True)[:, :, 0]
    if "llm_country" in params:
        out += _effect_at(params, "llm_country", "country", [level], "sigma_llm_country",
                          spec.prior("sigma_llm_country"), rng, True)[:, :, 0]
    return out


def _marginal_effect(params: xr.Dataset, factor: str, spec: ModelSpec,
                     participants: pd.DataFrame | None, country: str) -> np.ndarray:
    """A non-census factor's effect averaged over the country's residents: (S, llm)."""
    if participants is None:
        raise PoststratError(f"spec uses {factor!r}, which the census lacks: pass the participants "
                             "table so its distribution among residents can be used")
    column = DEMOGRAPHIC_COLUMNS[factor]
    residents = participants.loc[participants["reside_country"].astype(str) == vocab.COUNTRY_ISO3[country]]
    levels = [str(x) for x in params[factor].values]
    share = residents[column].astype(str).value_counts(normalize=True).reindex(levels, fill_value=0.0)
    w = share.to_numpy()
    S = stacked(params, "intercept").shape[0]
    n_llm = params.sizes["llm"]
    out = np.zeros((S, n_llm))
    if f"{factor}_effect" in params:
        out += (stacked(params, f"{factor}_effect") @ w)[:, None]
    if f"llm_{factor}" in params:
        out += stacked(params, f"llm_{factor}") @ w
    return out


def group_means(cell_mean: xr.DataArray, frame: pd.DataFrame, masks: Mapping[str, np.ndarray]) -> xr.DataArray:
    """Census-weighted averages of cell estimates: dims (..., llm, group)."""
    counts = frame["count"].to_numpy(dtype=float)
    weights = np.stack([np.where(m, counts, 0.0) for m in masks.values()])
    weights /= weights.sum(axis=1, keepdims=True)
    w = xr.DataArray(weights, dims=("group", "cell"),
                     coords={"group": list(masks), "cell": cell_mean["cell"].values})
    return xr.dot(cell_mean, w, dim="cell").rename("group_mean")


def summarise_draws(group_mean: xr.DataArray) -> pd.DataFrame:
    """Mean, sd, 5/50/95% quantiles, P(best) and expected rank per (group, llm).

    Ties (equal values within a draw) are broken in LLM order -- the earlier LLM ranks
    better and counts as the best -- a fixed rule, so the table never depends on the sort
    algorithm.
    """
    sample_dims = [d for d in ("chain", "draw") if d in group_mean.dims]
    stacked_ = group_mean.stack(sample=sample_dims).transpose("group", "llm", "sample")
    values = stacked_.values  # (G, M, S)
    best = values.argmax(axis=1)  # (G, S)
    M = values.shape[1]
    p_best = np.stack([(best == m).mean(axis=1) for m in range(M)], axis=1)  # (G, M)
    # rank 1 = best; ties (rare with continuous draws): the earlier LLM ranks better
    ranks = (-values).argsort(axis=1, kind="stable").argsort(axis=1, kind="stable") + 1
    q = np.quantile(values, [0.05, 0.5, 0.95], axis=2)
    rows = []
    for gi, g in enumerate(stacked_["group"].values):
        for mi, m in enumerate(stacked_["llm"].values):
            rows.append({
                "group": str(g), "llm": str(m),
                "mean": values[gi, mi].mean(), "sd": values[gi, mi].std(ddof=1) if values.shape[2] > 1 else 0.0,
                "q05": q[0, gi, mi], "q50": q[1, gi, mi], "q95": q[2, gi, mi],
                "p_best": p_best[gi, mi], "expected_rank": ranks[gi, mi].mean(),
            })
    return pd.DataFrame(rows)


def _sample_group_membership(participants: pd.DataFrame) -> dict[str, pd.Series]:
    """Membership of the standard groups among *participants* (the original's definitions)."""
    gender = participants["gender"].astype(str)
    eth = participants.get("ethnicity_simplified", participants.get("ethnicity")).astype(str)
    age = participants["age"].astype(str)
    over45 = age.isin(vocab.AGE_OVER45)
    return {
        "all": pd.Series(True, index=participants.index),
        "male": gender == "Male",
        "nonmale": gender != "Male",
        "white": eth == "White",
        "nonwhite": eth != "White",
        "under45": ~over45,
        "over45": over45,
    }


def sample_means(data: Any, country: str, groups: Sequence[str]) -> pd.DataFrame:
    """Raw (residents) and REP-sample mean opening-turn score per (group, llm).

    Raw = every opening-turn rating by residents of the country; REP = by members of the
    country's representative sample. Groups follow the original welfare analysis
    (non-male = gender other than Male, non-white = simplified ethnicity other than White,
    under-45 = not in the 45+ bands). User-defined groups get NaN (no sample analogue).
    """
    participants, ratings = data.participants, data.ratings
    opening = ratings.loc[ratings["turn"] == 0, ["participant", "llm", "score"]]
    iso3 = vocab.COUNTRY_ISO3[country]
    members = {
        "raw_mean": participants["reside_country"].astype(str) == iso3,
        "rep_mean": participants[f"in_{country}_rep"].astype(bool),
    }
    membership = _sample_group_membership(participants)
    frames = []
    for column, base in members.items():
        for g in groups:
            if g not in membership:
                continue
            who = set(participants.loc[base & membership[g], "participant"].astype(str))
            sub = opening.loc[opening["participant"].astype(str).isin(who)]
            m = sub.groupby(sub["llm"].astype(str), observed=True)["score"].mean()
            frames.append(pd.DataFrame({"group": g, "llm": m.index, column: m.to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=["group", "llm", "raw_mean", "rep_mean"])
    out = pd.concat(frames).groupby(["group", "llm"], as_index=False).first()
    return out


@dataclass(repr=False)
class PoststratResult:
    """MRP estimates for one country.

    Attributes
    ----------
    country : str
    cell_mean : xarray.DataArray
        (chain, draw, llm, cell) expected rating of a new member of each census cell.
    group_mean : xarray.DataArray
        (chain, draw, llm, group) census-weighted group estimates.
    frame : DataFrame
        The census frame used.
    sample : DataFrame
        Raw and REP sample means per (group, llm) (empty when no data were given).
    meta : dict
    """

    country: str
    cell_mean: xr.DataArray
    group_mean: xr.DataArray
    frame: pd.DataFrame
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per (group, llm): mean, sd, q05, q50, q95, p_best, expected_rank, raw/REP means.

        Rows are sorted by group, then by decreasing mean; LLMs with equal means keep the
        LLM order of the run (stable sort).
        """
        s = summarise_draws(self.group_mean)
        s.insert(0, "country", self.country)
        if len(self.sample):
            s = s.merge(self.sample, on=["group", "llm"], how="left")
        else:
            s["raw_mean"] = np.nan
            s["rep_mean"] = np.nan
        # Whether the fit passed its convergence gate (empty when not from a Run).
        s["converged"] = self.meta.get("converged")
        order = {g: i for i, g in enumerate(self.group_mean["group"].values)}
        return s.sort_values(["group", "mean"], key=lambda c: c.map(order) if c.name == "group" else -c,
                             kind="stable").reset_index(drop=True)

    def __repr__(self) -> str:
        gm = self.group_mean
        draws = " x ".join(str(gm.sizes[d]) for d in ("chain", "draw") if d in gm.sizes)
        best = ""
        if "all" in gm["group"].values:
            means = gm.sel(group="all").mean([d for d in ("chain", "draw") if d in gm.dims])
            best = f"; highest for all: {means.idxmax('llm').item()} ({float(means.max()):.1f})"
        return (f"PoststratResult({self.country}: {gm.sizes['llm']} LLMs x {gm.sizes['group']} groups, "
                f"{len(self.frame)} census cells, {draws} draws{best})")

    def _repr_html_(self) -> str:
        """Posterior mean [90% interval] per LLM (rows) and group (columns)."""
        s = self.summary()
        groups = list(dict.fromkeys(s["group"]))
        first = s.loc[s["group"] == groups[0]].sort_values("mean", ascending=False)
        order = first["llm"].tolist()
        cols: dict[str, list[str]] = {"LLM": order}
        for g in groups:
            sub = s.loc[s["group"] == g].set_index("llm").reindex(order)
            cols[vocab.GROUP_LABELS.get(g, g)] = [interval(m, lo, hi) for m, lo, hi in
                                                  zip(sub["mean"], sub["q05"], sub["q95"], strict=True)]
        table = Table(f"mrp_{self.country}", f"MRP, {self.country.upper()}",
                      f"{self.country.upper()}: expected opening-turn rating (1-100) of a new adult, "
                      "posterior mean [90% interval], census-weighted.", s, display=pd.DataFrame(cols))
        return f"<div><b>{html.escape(repr(self))}</b>{table.to_html()}</div>"

    def to_dataset(self) -> xr.Dataset:
        """Cells, groups, census weights and group masks in one Dataset."""
        masks = resolve_groups(self.frame, self.meta.get("user_groups_cells"))
        ds = xr.Dataset(
            {
                "cell_mean": self.cell_mean,
                "group_mean": self.group_mean,
                "census_count": ("cell", self.frame["count"].to_numpy(dtype=float)),
                "group_member": (("group", "cell"),
                                 np.stack([masks[g] for g in self.group_mean["group"].values])),
            }
        )
        ds.attrs.update({k: v for k, v in self.meta.items() if isinstance(v, (str, int, float))})
        if isinstance(self.meta.get("converged"), bool):  # netCDF has no booleans
            ds.attrs["converged"] = int(self.meta["converged"])
        return ds

    def save(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``poststrat_<country>.nc`` and ``.csv`` atomically into *folder*."""
        folder = Path(folder)
        nc = folder / f"poststrat_{self.country}.nc"
        csv = folder / f"poststrat_{self.country}.csv"
        with atomic_path(nc) as tmp:
            self.to_dataset().to_netcdf(tmp, engine="h5netcdf")
        summary = self.summary()
        write_text_atomic(csv, summary.loc[:, list(CSV_COLUMNS)].to_csv(index=False))
        return nc, csv


def poststratify(
    run: Run | tuple[xr.Dataset, ModelSpec],
    country: str,
    *,
    data: Any = None,
    groups: Mapping[str, GroupSpec] | None = None,
    harmonisation: str = "default",
    seed: int = 0,
) -> PoststratResult:
    """Post-stratify a fitted rating model to a country's census.

    Parameters
    ----------
    run : Run or (params, spec)
        A fitted run, or parameters with ``chain``/``draw`` dims and their spec (e.g. the
        synthetic truth).
    country : {"uk", "us"}
    data : PrismData, optional
        Tidy data, for the raw and REP sample means (and non-census demographics).
    groups : mapping, optional
        Extra groups of census cells (see :func:`resolve_groups`).
    harmonisation : str
        Census harmonisation (see :func:`prism_stats.census.frame`).
    seed : int
        Seed for effects of levels unseen in the data.

    Returns
    -------
    PoststratResult
    """
    if country not in vocab.COUNTRIES_MRP:
        raise PoststratError(f"country must be one of {vocab.COUNTRIES_MRP}, got {country!r}")
    params, spec = (run.posterior, run.spec) if isinstance(run, Run) else run
    frame = census.frame(country, harmonisation)
    masks = resolve_groups(frame, groups)
    participants = getattr(data, "participants", None)
    cells = cell_predictions(params, spec, frame, country, participants=participants, seed=seed)
    gm = group_means(cells, frame, masks)
    sample = sample_means(data, country, list(masks)) if data is not None else pd.DataFrame()
    meta = {
        "country": country,
        "harmonisation": harmonisation,
        "family": spec.family,
        "spec": spec.name,
        "seed": seed,
        "created_at": now_iso(),
        "estimand": "expected opening-turn rating of a new member of each census cell; "
                    "conversation types equally weighted",
    }
    if isinstance(run, Run):
        meta["converged"] = run.converged
    if groups:
        meta["user_groups_cells"] = {k: frame["cell"][masks[k]].tolist() for k in groups}
    return PoststratResult(country=country, cell_mean=cells, group_mean=gm, frame=frame,
                           sample=sample, meta=meta)
