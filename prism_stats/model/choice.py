"""Hierarchical conditional-logit model of the opening choice (best of 2-4 answers).

Every opening interaction shows a participant 2-4 LLMs and records the one they judged
best. The probability that participant p picks m from the set S is::

    P(m | S, p) = exp(v_pm) / sum_{s in S} exp(v_ps)
    v_pm = llm_effect[m] + sum_f llm_f[m, level_f(p)] + sigma_pair * z_pm

with zero-sum LLM effects (a common shift cancels in the softmax), LLM x demographic
varying effects (zero-sum over LLMs, rating-weighted zero-sum over levels, as in the
rating model) and participant heterogeneity as participant x LLM taste deviations
``sigma_pair * z_pm`` (non-centred, only for the pairs a participant was shown).

Post-stratified the same way as the ratings: for a new member of census cell c, the
probability of picking m when it is shown against a uniformly random set of rivals (set
sizes 2/3/4 with the published opening frequencies), averaged over a new taste deviation
by Monte Carlo. A statsmodels ``ConditionalLogit`` with LLM fixed effects is the
frequentist cross-check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from .. import census, vocab
from .._io import atomic_path, now_iso, package_versions, write_json_atomic
from .design import _VOCABULARIES, DesignError, _levels
from .fit import sample_model
from .effects import effect as _effect
from .effects import is_raw
from .predict import stacked
from .spec import DEMOGRAPHIC_COLUMNS

SLOTS = ("a", "b", "c", "d")
CHOICE_FACTORS_DEFAULT: tuple[str, ...] = ("age", "gender", "ethnicity")
#: Opening sets with 2, 3 and 4 LLMs in the release (SPEC §1.5).
OPENING_SET_COUNTS: dict[int, int] = {2: 225, 3: 1545, 4: 6241}


@dataclass
class ChoiceDesign:
    """Opening choice sets in index form.

    ``members`` (n_sets, 4) holds pair indices (participant x LLM pairs) padded with -1,
    ``chosen`` the slot of the chosen LLM, ``pair_participant``/``pair_llm`` the codes of
    every pair, and ``participant_levels`` the demographic codes per participant.
    """

    coords: dict[str, list[str]]
    members: np.ndarray
    chosen: np.ndarray
    pair_participant: np.ndarray
    pair_llm: np.ndarray
    participant_levels: pd.DataFrame
    level_shares: dict[str, np.ndarray]
    excluded: dict[str, int] = field(default_factory=dict)


def build_choice_design(data: Any, factors: tuple[str, ...] = CHOICE_FACTORS_DEFAULT,
                        subset: str = "all") -> ChoiceDesign:
    """Index the opening choice sets of tidy PRISM data (``choice_sets`` table)."""
    sets = data.choice_sets
    excluded: dict[str, int] = {}
    if subset == "balanced":
        keep = sets["balanced"].astype(bool)
        excluded["outside_balanced_subset"] = int((~keep).sum())
        sets = sets.loc[keep]
    missing_choice = sets["chosen_llm"].isna()
    if missing_choice.any():
        excluded["no_chosen_llm"] = int(missing_choice.sum())
        sets = sets.loc[~missing_choice]
    if sets.empty:
        raise DesignError("no opening choice sets to model")
    people = data.participants.set_index("participant")
    used = pd.Index(sets["participant"].astype(str).unique())
    people = people.loc[people.index.astype(str).isin(used)]
    p_labels = [str(p) for p in people.index]
    coords: dict[str, list[str]] = {"participant": p_labels}
    plev = {}
    for f in factors:
        codes, levels = _levels(people[DEMOGRAPHIC_COLUMNS[f]], _VOCABULARIES.get(f), f)
        plev[f], coords[f] = codes, levels
    llm_frame = sets[[f"llm_{s}" for s in SLOTS]].astype("string")
    seen = sorted(set(llm_frame.stack().dropna()), key=vocab.LLM_SHORT_NAMES.index)
    coords["llm"] = seen
    m_index = {m: i for i, m in enumerate(seen)}
    p_index = {p: i for i, p in enumerate(p_labels)}
    p_codes = sets["participant"].astype(str).map(p_index).to_numpy()
    m_codes = np.full((len(sets), 4), -1)
    for j, s in enumerate(SLOTS):
        col = llm_frame[f"llm_{s}"]
        m_codes[:, j] = col.map(m_index).fillna(-1).astype(int).to_numpy()
    chosen_m = sets["chosen_llm"].astype(str).map(m_index).to_numpy()
    chosen_slot = np.argmax(m_codes == chosen_m[:, None], axis=1)
    bad = ~(m_codes == chosen_m[:, None]).any(axis=1)
    if bad.any():
        raise DesignError(f"{int(bad.sum())} choice set(s) whose chosen LLM is not among those shown")
    # participant x LLM pairs actually shown
    key = np.where(m_codes >= 0, p_codes[:, None] * len(seen) + m_codes, -1)
    uniq = np.unique(key[key >= 0])
    members = np.where(key >= 0, np.searchsorted(uniq, np.maximum(key, 0)), -1)
    counts = np.bincount(p_codes, minlength=len(p_labels)).astype(float)
    shares = {f: np.bincount(plev[f], weights=counts, minlength=len(coords[f])) / counts.sum()
              for f in factors}
    return ChoiceDesign(coords=coords, members=members, chosen=chosen_slot,
                        pair_participant=uniq // len(seen), pair_llm=uniq % len(seen),
                        participant_levels=pd.DataFrame(plev), level_shares=shares,
                        excluded=excluded)


def build_choice_model(design: ChoiceDesign, factors: tuple[str, ...] = CHOICE_FACTORS_DEFAULT,
                       heterogeneity: bool = True, priors: dict[str, float] | None = None) -> pm.Model:
    """PyMC conditional-logit model with LLM x demographic effects and pair heterogeneity."""
    pri = {"sigma_llm": 1.0, "sigma_interaction": 0.5, "sigma_pair": 1.0, **(priors or {})}
    n_pairs = len(design.pair_llm)
    coords = {**design.coords, "pair": np.arange(n_pairs)}
    with pm.Model(coords=coords) as model:
        sigma_llm = pm.HalfNormal("sigma_llm", sigma=pri["sigma_llm"])
        b = _effect("llm_effect", sigma_llm, ("llm",), centered=True)
        v = b[design.pair_llm]
        for f in factors:
            if len(design.coords[f]) < 2:
                continue
            s = pm.HalfNormal(f"sigma_llm_{f}", sigma=pri["sigma_interaction"])
            g = _effect(f"llm_{f}", s, ("llm", f), centered=False, zerosum_axes=2,
                        weights=design.level_shares[f])
            codes = design.participant_levels[f].to_numpy()[design.pair_participant]
            v = v + g[design.pair_llm, codes]
        if heterogeneity:
            s = pm.HalfNormal("sigma_pair", sigma=pri["sigma_pair"])
            z = pm.Normal("pair_z", 0.0, 1.0, dims="pair")
            v = v + s * z
        members = design.members
        padded = pt.concatenate([v, pt.as_tensor_variable(np.array([-np.inf]))])
        util = padded[np.where(members >= 0, members, n_pairs)]  # (sets, 4); -inf pads
        chosen_util = util[np.arange(len(members)), design.chosen]
        pm.Potential("choice_likelihood", pt.sum(chosen_util - pt.logsumexp(util, axis=1)))
    return model


@dataclass
class ChoiceRun:
    """A fitted choice model (posterior DataTree, design, metadata)."""

    idata: xr.DataTree
    design: ChoiceDesign
    meta: dict[str, Any]
    folder: Path | None = None

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()

    @property
    def factors(self) -> tuple[str, ...]:
        return tuple(self.meta["factors"])

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "choice_posterior.nc") as tmp:
            self.idata.to_netcdf(tmp, engine="h5netcdf")
        write_json_atomic(folder / "choice_run.json", self.meta)
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path, data: Any) -> ChoiceRun:
        """Reopen a saved choice run (the design is rebuilt from the same data)."""
        folder = Path(folder)
        meta = json.loads((folder / "choice_run.json").read_text())
        idata = xr.open_datatree(folder / "choice_posterior.nc", engine="h5netcdf").load()
        design = build_choice_design(data, tuple(meta["factors"]), meta.get("subset", "all"))
        return cls(idata=idata, design=design, meta=meta, folder=folder)


def fit_choice(data: Any, *, factors: tuple[str, ...] = CHOICE_FACTORS_DEFAULT, heterogeneity: bool = True,
               subset: str = "all", chains: int = 2, draws: int = 1000, tune: int = 1000,
               seed: int = 20240422, sampler: str = "nutpie", progress: bool = True,
               out: str | Path | None = None) -> ChoiceRun:
    """Fit the hierarchical conditional logit to the opening choice sets."""
    design = build_choice_design(data, factors, subset)
    model = build_choice_model(design, factors, heterogeneity)
    raw, timings = sample_model(model, {"sampler": sampler, "chains": chains, "draws": draws,
                                        "tune": tune, "seed": seed}, progress=progress)
    post = raw["posterior"].to_dataset()
    post = post.drop_vars([v for v in post.data_vars if is_raw(v) or v == "pair_z"])
    stats = raw["sample_stats"].to_dataset()
    stats = stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])
    idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    meta = {"kind": "choice-model run", "created_at": now_iso(), "factors": list(factors),
            "heterogeneity": heterogeneity, "subset": subset, "seed": seed,
            "sampling": {"chains": chains, "draws": draws, "tune": tune, "sampler": sampler},
            "data_hash": str(getattr(data, "data_hash", "")), "n_sets": len(design.chosen),
            "n_pairs": len(design.pair_llm), "excluded": design.excluded,
            "timings": timings, "versions": package_versions()}
    run = ChoiceRun(idata=idata, design=design, meta=meta)
    if out is not None:
        run.save(out)
    return run


def cell_choice_probabilities(run: ChoiceRun, country: str, *, harmonisation: str = "default",
                              draws: int = 200, n_sets: int = 400, seed: int = 0) -> xr.DataArray:
    """P(a new member of each census cell picks m when m is shown in a random opening set).

    Monte Carlo over random rival sets (uniform rivals; sizes 2/3/4 in the published
    proportions, weighted by size since larger sets show m more often) and over a new
    member's taste deviations. Returns (sample, llm, cell).
    """
    rng = np.random.default_rng(seed)
    post = run.posterior
    frame = census.frame(country, harmonisation)
    S_all = int(post.sizes["chain"] * post.sizes["draw"])
    pick = np.sort(rng.choice(S_all, size=min(draws, S_all), replace=False))
    llms = run.design.coords["llm"]
    M = len(llms)
    v = stacked(post, "llm_effect")[pick][:, :, None] + np.zeros((1, 1, len(frame)))
    labels = {"age": frame["age"].astype(str), "gender": frame["sex"].astype(str),
              "ethnicity": frame["ethnicity"].astype(str)}
    for f in run.factors:
        if f"llm_{f}" not in post or f not in labels:
            continue
        levels = run.design.coords[f]
        table = stacked(post, f"llm_{f}")[pick]  # (S, M, L)
        idx = np.array([levels.index(x) if x in levels else -1 for x in labels[f]])
        vals = np.where(idx >= 0, table[:, :, np.maximum(idx, 0)], 0.0)
        v = v + vals
    sigma_pair = stacked(post, "sigma_pair")[pick] if "sigma_pair" in post else np.zeros(len(pick))
    sizes = np.array(list(OPENING_SET_COUNTS))
    w = np.array([k * n for k, n in OPENING_SET_COUNTS.items()], dtype=float)
    k = rng.choice(sizes, size=n_sets, p=w / w.sum())
    out = np.zeros((len(pick), M, len(frame)))
    for m in range(M):
        others = np.array([j for j in range(M) if j != m])
        rivals = np.stack([np.concatenate([rng.choice(others, kk - 1, replace=False),
                                           np.full(4 - kk, -1)]) for kk in k])  # (n_sets, 3)
        members = np.concatenate([np.full((n_sets, 1), m), rivals], axis=1)  # (n_sets, 4)
        taste = sigma_pair[:, None, None] * rng.standard_normal((len(pick), n_sets, 4))
        util = v[:, np.maximum(members, 0), :] + taste[..., None]  # (S, n_sets, 4, C)
        util = np.where((members >= 0)[None, :, :, None], util, -np.inf)
        util -= util.max(axis=2, keepdims=True)
        p = np.exp(util[:, :, 0, :]) / np.exp(util).sum(axis=2)
        out[:, m, :] = p.mean(axis=1)
    return xr.DataArray(out, dims=("sample", "llm", "cell"),
                        coords={"sample": pick, "llm": llms, "cell": frame["cell"].tolist()},
                        name="chosen_probability")


def conditional_logit_crosscheck(run: ChoiceRun, data: Any) -> pd.DataFrame:
    """statsmodels ``ConditionalLogit`` with LLM fixed effects beside the Bayesian LLM effects.

    Both are centred to sum to zero over LLMs (the logit identifies differences only).
    ``attrs["correlation"]`` holds their Pearson correlation.
    """
    # local: statsmodels (~1 s) only for this frequentist cross-check
    from statsmodels.discrete.conditional_models import ConditionalLogit

    d = run.design
    llms = d.coords["llm"]
    rows_set, rows_llm, rows_y = [], [], []
    for i, (mem, ch) in enumerate(zip(d.members, d.chosen, strict=True)):
        for j, pair in enumerate(mem):
            if pair < 0:
                continue
            rows_set.append(i)
            rows_llm.append(d.pair_llm[pair])
            rows_y.append(int(j == ch))
    X = np.zeros((len(rows_llm), len(llms) - 1))
    for r, m in enumerate(rows_llm):
        if m > 0:  # LLM 0 is the reference
            X[r, m - 1] = 1.0
    res = ConditionalLogit(np.array(rows_y), X, groups=np.array(rows_set)).fit(disp=False)
    coef = np.concatenate([[0.0], np.asarray(res.params)])
    se = np.concatenate([[np.nan], np.asarray(res.bse)])
    post = run.posterior["llm_effect"]
    table = pd.DataFrame({
        "llm": llms,
        "bayes_mean": post.mean(("chain", "draw")).values,
        "bayes_q05": post.quantile(0.05, dim=("chain", "draw")).values,
        "bayes_q95": post.quantile(0.95, dim=("chain", "draw")).values,
        "clogit": coef - coef.mean(),
        "clogit_se_vs_ref": se,
    })
    table.attrs["correlation"] = float(np.corrcoef(table["bayes_mean"], table["clogit"])[0, 1])
    table.attrs["n_sets"] = len(d.chosen)
    return table
