"""The model side of ``peers.py``: the R formula of a spec, the ratings frame and the
"average rater" grid written for R, and the LLM means for an average rater of every fitter.

**LLM mean for an average rater.** The prediction for a *new* rater (participant and
rater x LLM terms at zero) at the opening turn, averaged over the spec's other predictors
with the package's weights: participant-level factors (country, region, demographics) by
their share of the ratings, conversation types equally. It is one contrast of every
parameterisation: for the default spec it equals the package's ``intercept + llm_effect``
(its participant-level effects sum to zero weighted by the ratings, the others with equal
weights), and in R it is a linear combination of the fixed and random coefficients,
computed draw by draw by ``peers.R``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# --- the R formula of a spec ---------------------------------------------------------------

@dataclass(frozen=True)
class RTerm:
    """One term of the R formula: a fixed effect, or a random intercept ``(1|term)``."""

    term: str
    random: bool
    scale: str | None = None  # the package's name of the term's sd (random terms)
    rater: bool = False  # belongs to the rater: zero for a new (average) rater

    def __str__(self) -> str:
        return f"(1|{self.term})" if self.random else self.term


@dataclass
class RFormula:
    """The R formula derived from a spec, and what could not be carried over."""

    terms: list[RTerm]
    notes: list[str] = field(default_factory=list)
    response: str = "score"

    @property
    def formula(self) -> str:
        return f"{self.response} ~ " + " + ".join(str(t) for t in self.terms)

    @property
    def fixed_terms(self) -> list[str]:
        return [t.term for t in self.terms if not t.random]

    @property
    def random_terms(self) -> list[RTerm]:
        return [t for t in self.terms if t.random]


def _pool(spec, key: str) -> str:
    """Pooling of *key*, "partial" for families the spec does not know (older specs)."""
    try:
        return spec.pool(key)
    except KeyError:
        return spec.pooling.get(key, "partial")


def r_formula(spec, levels: Mapping[str, int] | None = None) -> RFormula:
    """The lme4/rstanarm formula of *spec* (a :class:`~prism_stats.model.ModelSpec`).

    Mapping (documented choice): a family the spec pools partially (a hierarchical scale is
    estimated) becomes a random intercept ``(1|x)``; a family with ``"fixed"`` pooling
    (zero-sum effect with a fixed prior scale, i.e. a fixed effect with a weakly
    informative prior) becomes a fixed effect. LLM x factor terms are always random
    (``(1|llm:x)``): as fixed effects they would be hundreds of unpenalised coefficients,
    and lme4 cannot hold a variance at a given value. Participants are ``(1|participant)``
    whatever their parameterisation (centred, non-centred and marginalized are the same
    model). LLM x residence (``llm_residence``), ``llm_ctype`` and ``rater_llm`` become
    random LLM x factor intercepts; ``rater_scale`` and the censored family are dropped with
    a note.

    Parameters
    ----------
    spec : ModelSpec
    levels : mapping, optional
        Number of observed levels per factor (``design.coords``); factors with one level
        carry no term (as in the package's model).
    """
    notes: list[str] = []
    terms: list[RTerm] = [RTerm("participant", True, "sigma_participant", rater=True)]

    def has(factor: str) -> bool:
        if levels is None or levels.get(factor, 2) > 1:
            return True
        notes.append(f"{factor}: one observed level, no term (as in the package)")
        return False

    def main_effect(factor: str, family: str, scale: str) -> None:
        pool = _pool(spec, family)
        terms.append(RTerm(factor, True, scale) if pool != "fixed" else RTerm(factor, False))

    def interaction(factor: str, family: str, scale: str, rater: bool = False) -> None:
        pool = _pool(spec, family)
        if pool == "fixed":
            notes.append(f"llm:{factor}: the package holds its scale fixed ({family} pooling "
                         "'fixed'); R estimates it")
        elif pool in ("per_llm", "per_country"):
            notes.append(f"llm:{factor}: one sd for all levels in R (the package's '{pool}' "
                         "multipliers cannot be expressed)")
        terms.append(RTerm(f"llm:{factor}", True, scale, rater))

    if _pool(spec, "llm") == "fixed":
        terms.append(RTerm("llm", False))
    else:
        terms.append(RTerm("llm", True, "sigma_llm"))
    if has("country"):
        main_effect("country", "country", "sigma_country")
        if getattr(spec, "unpooled_countries", ()):
            notes.append(f"country: {', '.join(spec.unpooled_countries)} pooled with the other countries in R "
                         "(the package: their own level, prior Normal(0, priors.sigma_country))")
    if spec.conversation_type and has("conversation_type"):
        main_effect("conversation_type", "conversation_type", "sigma_ctype")
    if spec.turns == "all":
        terms.append(RTerm("later", False))
        notes.append("later: 0/1 indicator of a later turn (predictions are for the opening turn)")
    for f in spec.demographics:
        if has(f):
            main_effect(f, "demographic", f"sigma_{f}")
    for f in spec.llm_interactions:
        if has(f):
            interaction(f, "interaction", f"sigma_llm_{f}")
    residence = spec.llm_residence
    if residence == "uk_us_rest" and has("residence"):
        interaction("residence", "llm_country", "sigma_llm_country")
        notes.append("llm:residence: GBR, USA and the rest of the world as random intercepts "
                     "(the package: a rating-weighted zero-sum effect)")
    elif residence in ("country", "region", "subregion") and has("country"):
        if residence != "country" and (levels is None or levels.get("region", 0) > 1):
            interaction("region", "llm_country", "sigma_llm_region")
            notes.append(f"llm:region: countries nested in their UN M49 {residence} (level labels "
                         "unique, so llm:country is nested in llm:region)")
        interaction("country", "llm_country", "sigma_llm_country")
    if getattr(spec, "llm_ctype", False) and spec.conversation_type and has("conversation_type"):
        interaction("conversation_type", "llm_ctype", "sigma_llm_ctype")
    if getattr(spec, "rater_llm", False):
        terms.append(RTerm("participant:llm", True, "sigma_rater_llm", rater=True))
    if getattr(spec, "rater_scale", False):
        notes.append("rater_scale DROPPED: heteroscedastic raters (one noise sd per rater) "
                     "cannot be expressed in lme4 or stan_glmer; R fits one residual sd")
    if spec.family != "gaussian":
        notes.append(f"family {spec.family!r} DROPPED: lme4/stan_glmer fit a Gaussian on the "
                     "1-100 scale (no censoring at 1 and 100)")
    notes.append("priors: rstanarm's defaults (autoscaled), not the spec's [priors]; lme4 is REML")
    return RFormula(terms, notes)


# --- data: the R frame and the average-rater grid ----------------------------------------

def safe_label(label: str) -> str:
    """A level label R keeps verbatim in coefficient names (no spaces, colons, brackets)."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(label)).strip("_") or "_"


def _safe_levels(labels: Sequence[str], what: str) -> list[str]:
    out = [safe_label(x) for x in labels]
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: levels {list(labels)} collide once made R-safe ({out})")
    return out


def average_grid(design, spec) -> pd.DataFrame:
    """The "average rater" grid: one row per participant-level attribute combination (codes)
    with its share of the design's ratings, crossed with the conversation types at equal
    weights; ``weight`` sums to 1 (and ``later`` = 0 when the spec uses all turns)."""
    plev = design.participant_levels
    cols = list(plev.columns)
    rows = plev.iloc[design.cells["participant"].to_numpy()].reset_index(drop=True)
    rows["n"] = design.cells["n"].to_numpy()
    grid = rows.groupby(cols, sort=True)["n"].sum().reset_index()
    grid["weight"] = grid["n"] / grid["n"].sum()
    grid = grid.drop(columns="n")
    if spec.conversation_type:
        n_ct = len(design.coords["conversation_type"])
        grid = grid.merge(pd.DataFrame({"conversation_type": np.arange(n_ct)}), how="cross")
        grid["weight"] /= n_ct
    if spec.turns == "all":
        grid["later"] = 0  # predictions are for the opening turn
    return grid


def rating_frame(design, spec) -> pd.DataFrame:
    """One row per rating with R-safe labels: score, participant, llm, conversation type,
    later, and every participant-level factor of the design (country, demographics, region)."""
    if (design.cells["n"] != 1).any():
        raise ValueError("rating_frame needs an uncollapsed design (build_design(collapse=False))")
    c = design.cells
    p = c["participant"].to_numpy()
    frame = {"score": c["mean"].to_numpy()}
    frame["participant"] = np.array([f"p{i}" for i in range(len(design.coords["participant"]))])[p]
    for dim, codes in (("llm", c["llm"].to_numpy()),
                       ("conversation_type", c["conversation_type"].to_numpy())):
        frame[dim] = np.array(_safe_levels(design.coords[dim], dim))[codes]
    for col in design.participant_levels.columns:
        labels = np.array(_safe_levels(design.coords[col], col))
        frame[col] = labels[design.participant_levels[col].to_numpy()[p]]
    if spec.turns == "all":
        frame["later"] = c["later"].to_numpy()
    return pd.DataFrame(frame)


def llm_label_map(design) -> dict[str, str]:
    """R-safe LLM label -> the package's LLM name, in the design's LLM order."""
    return dict(zip(_safe_levels(design.coords["llm"], "llm"), design.coords["llm"], strict=True))


def grid_labels(grid: pd.DataFrame, design) -> pd.DataFrame:
    """The grid with R-safe labels instead of codes (for peers.R)."""
    out = grid.copy()
    for col in grid.columns:
        if col not in ("weight", "later"):
            out[col] = np.array(_safe_levels(design.coords[col], col))[grid[col].to_numpy()]
    return out


def package_llm_means(posterior, design, spec, grid: pd.DataFrame):
    """The package's LLM means for an average rater, per draw: DataArray (chain, draw, llm).

    ``intercept`` plus every effect of the model but the participants', each averaged over
    the grid (its non-LLM dims indexed by the grid's codes, weighted by ``weight``).
    """
    import xarray as xr

    from prism_stats.model.rating import effect_names

    llm = posterior["llm_effect"]
    total = posterior["intercept"] + xr.zeros_like(llm)
    w = grid["weight"].to_numpy()
    for name, dims in effect_names(design, spec).items():
        if name == "participant_effect" or "participant" in dims:
            continue
        if name not in posterior:
            raise KeyError(f"effect {name} (dims {dims}) is not in the posterior")
        other = [d for d in dims if d != "llm"]
        missing = [d for d in other if d not in grid.columns]
        if missing:
            raise KeyError(f"effect {name}: no weights for dims {missing} in the "
                           "average-rater grid")
        da = posterior[name]
        if other:
            idx = {d: xr.DataArray(grid[d].to_numpy(), dims="row") for d in other}
            da = (da.isel(idx) * xr.DataArray(w, dims="row")).sum("row")
        total = total + da
    return total.transpose("chain", "draw", "llm").rename("llm_mean")


def r_config(work: Path, formula: RFormula, llm_map: Mapping[str, str], sampling: Mapping[str, Any],
             **extra: Any) -> dict[str, Any]:
    """The configuration peers.R (and the package's worker) read: inputs in *work*
    (``ratings.csv``, ``grid.csv``), the formula, the LLM levels (R-safe -> package names)
    and the sampler settings, rstanarm's taken from the package's (warm-up = tune)."""
    return {"csv": str(work / "ratings.csv"), "grid": str(work / "grid.csv"),
            "formula": formula.formula, "fixed_terms": formula.fixed_terms,
            "random_terms": [{"term": t.term, "scale": t.scale, "rater": t.rater}
                             for t in formula.random_terms],
            "llm_levels": list(llm_map), "llm_map": dict(llm_map),
            "chains": int(sampling["chains"]),
            "iter": int(sampling["tune"]) + int(sampling["draws"]), "warmup": int(sampling["tune"]),
            "adapt_delta": float(sampling["target_accept"]),
            "seed": int(sampling["seed"]), "cores": int(sampling["chains"]),
            "sampling": dict(sampling), **extra}


def r_draws(table: pd.DataFrame, llm_map: Mapping[str, str]):
    """peers.R's draw table as a Dataset (chain, draw[, llm]) with the package's LLM names."""
    import xarray as xr

    table = table.set_index(["chain", "draw"]).sort_index()
    chains = table.index.get_level_values("chain").unique()
    draws = table.index.get_level_values("draw").unique()
    shape = (len(chains), len(draws))
    cols = [c for c in table.columns if c.startswith("llm_mean[")]
    llms = [llm_map[c[len("llm_mean["):-1]] for c in cols]
    ds = xr.Dataset({"llm_mean": (("chain", "draw", "llm"),
                                  table[cols].to_numpy().reshape(*shape, len(cols)))},
                    coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), "llm": llms})
    for c in table.columns:
        if c not in cols:
            ds[c] = (("chain", "draw"), table[c].to_numpy().reshape(shape))
    return ds


# --- comparison -----------------------------------------------------------------------------

def ess_summary(draws, shared_scales: Sequence[str]) -> dict[str, Any]:
    """Min bulk ESS (ArviZ) over the LLM means, and over the LLM means and shared scales."""
    import arviz as az

    if draws.sizes["chain"] * draws.sizes["draw"] < 4:
        return {"min_ess_llm": None, "min_ess_all": None}
    ess = az.ess(draws[["llm_mean", *shared_scales]], method="bulk")
    rhat = az.rhat(draws[["llm_mean", *shared_scales]])
    per = {v: float(ess[v].min()) for v in ess.data_vars}
    return {"min_ess_llm": per["llm_mean"], "min_ess_all": min(per.values()),
            "worst_ess_var": min(per, key=per.get), "ess_by_var": per,
            "max_rhat_compared": float(max(float(rhat[v].max()) for v in rhat.data_vars))}


def agreement(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """Correlation, max abs difference, RMSE and mean offset of two sets of LLM means."""
    a, b = a.align(b, join="inner")
    d = a.to_numpy() - b.to_numpy()
    return {"n_llms": len(d), "correlation": float(np.corrcoef(a, b)[0, 1]),
            "max_abs_diff": float(np.abs(d).max()), "rmse": float(np.sqrt(np.mean(d**2))),
            "mean_offset": float(d.mean())}
