"""Model-based collective welfare: juries drawn from census pools, judged by the model.

The design-based analysis (:mod:`prism_stats.welfare.juries`) draws juries from the
small REP samples and measures welfare on them. Here populations and pools are census
populations (:mod:`prism_stats.census`), and every quantity comes from the fitted
rating model, with its full posterior uncertainty:

- a **pool** is a distribution over the 60 census cells: the census shares
  (representative), the shares restricted to male / white / over-45 cells, or any
  user-supplied cell weights;
- a **jury** of n is drawn from the pool (its cell counts are multinomial);
- each **juror** rates every LLM as a new participant of their cell would:
  ``y_jm = eta_{c_j m} + u_j + e_jm`` with a new participant effect
  ``u_j ~ N(0, sigma_participant)`` and ``e_jm`` the noise plus, when the model has them,
  the juror's lasting taste for m and their own noise scale: sd
  ``sqrt(E[s_j^2] + sigma_rater_llm^2)`` (:func:`~prism_stats.model.predict.rating_noise_sd`;
  the juries average over jurors, so the mean noise variance is what matters);
- the jury **picks** by a rule: ``mean`` (highest mean rating), ``chosen`` (highest
  share of jurors who choose the LLM when it is shown against a random opening set of
  2-4 LLMs) or ``veto`` (lowest share of ratings <= 10);
- the **welfare** of a target group (all / non-male / non-white / under-45 cells) is its
  MRP value of the picked LLM under the same rule (mean rating, chosen share, or
  1 - veto rate), and the **regret** is the gap to the group's best LLM.

Exact shortcuts that make the full grid cheap (2 countries x 7 schemes x 4 targets x
1,000 juries x 1,000 draws in seconds rather than hours):

- under the ``mean`` rule a juror's own effect ``u_j`` shifts all their ratings
  equally and cannot change the pick, and the jury mean of the noise is
  ``N(0, sigma / sqrt(n))`` per LLM; so the jury's mean ratings are the
  cell-count-weighted ``eta`` plus one normal draw per LLM;
- under ``chosen`` and ``veto`` each juror contributes a Bernoulli per LLM with the
  cell's probability; the jury's count per LLM is drawn as Binomial(n, mean
  probability of the jury's cells). This treats a juror's votes for different LLMs as
  independent (they share ``u_j``), a documented approximation;
- the chosen probability of a cell is computed exactly from the rating model: with
  ``z`` the standardised noise of m, ``P(m best in S) = E_z prod_{s in S} Phi(z +
  (eta_m - eta_s)/sigma)``, averaged over random sets by elementary symmetric
  polynomials (a uniformly random set of k-1 rivals) and over set sizes k = 2, 3, 4 with
  the published opening frequencies (225 / 1,545 / 6,241 sets, weighted by k);
- jury compositions are drawn once per (scheme, replicate) and crossed with the
  posterior draws; the noise is drawn independently per (draw, replicate). Every
  (draw, replicate) pair is a valid joint draw of (parameters, jury); pairs that share
  a replicate share its cell counts.

For the censored family, juries compare expected (clipped) ratings plus Gaussian noise;
the veto probabilities use the latent scale exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from scipy import special

from .. import census
from ..model.choice import cell_choice_probabilities
from ..model.fit import Run
from ..model.predict import new_rater_sd, rating_noise_sd
from ..model.spec import ModelSpec
from ..poststrat import cell_predictions
from .juries import VETO_THRESHOLD
from .results import (
    JURY_SIZES,
    POOLS,
    RULES,
    SKEWED_SIZE,
    TARGETS,
    Scheme,
    WelfareResultError,
    build_schemes,
    scheme_coords,
    welfare_dataset,
)

if TYPE_CHECKING:
    import pandas as pd

#: Opening sets with 2, 3 and 4 LLMs in the release (SPEC §1.5).
OPENING_SET_COUNTS: dict[int, int] = {2: 225, 3: 1545, 4: 6241}
_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(16)
_GH_W = _GH_W / _GH_W.sum()


def _thin(params: xr.Dataset, draws: int | None) -> xr.Dataset:
    """Keep about *draws* posterior draws, evenly spaced within each chain."""
    if draws is None:
        return params
    n_chain = params.sizes.get("chain", 1)
    per_chain = max(1, int(np.ceil(draws / n_chain)))
    n_draw = params.sizes["draw"]
    if per_chain >= n_draw:
        return params
    idx = np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int))
    return params.isel(draw=idx)


def pool_shares(frame, pools: Sequence[str], custom: Mapping[str, Sequence[float]] | None = None) -> dict[str, np.ndarray]:
    """Cell distributions of the pools: census shares restricted to the pool's cells.

    ``custom`` maps extra pool names to non-negative cell weights (length 60) or boolean
    masks; they are multiplied by the census counts when boolean, used as given otherwise.
    """
    counts = frame["count"].to_numpy(dtype=float)
    masks = census.group_masks(frame)
    pool_mask = {"representative": masks["all"], "male": masks["male"], "white": masks["white"],
                 "over45": masks["over45"]}
    out = {}
    for p in pools:
        if p in pool_mask:
            w = np.where(pool_mask[p], counts, 0.0)
        elif custom and p in custom:
            w = np.asarray(custom[p])
            w = np.where(w, counts, 0.0) if w.dtype == bool else w.astype(float)
        else:
            raise WelfareResultError(f"unknown pool {p!r}: not one of {POOLS} nor a custom pool")
        if w.shape != counts.shape or (w < 0).any() or w.sum() <= 0:
            raise WelfareResultError(f"pool {p!r} needs {len(counts)} non-negative cell weights")
        out[p] = w / w.sum()
    return out


def _elementary_symmetric(a: np.ndarray, kmax: int) -> np.ndarray:
    """e_0..e_kmax of the values along the last axis: array (kmax+1, ...)."""
    e = np.zeros((kmax + 1, *a.shape[:-1]))
    e[0] = 1.0
    for j in range(a.shape[-1]):
        x = a[..., j]
        for k in range(kmax, 0, -1):
            e[k] = e[k] + x * e[k - 1]
    return e


def chosen_probabilities(eta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(a member of each cell picks LLM m when it is shown in a random opening set).

    Parameters
    ----------
    eta : array (S, M, C)
        Expected ratings per draw, LLM and cell.
    sigma : array (S,)
        Residual sd per draw.

    Returns
    -------
    array (S, M, C)
    """
    S, M, C = eta.shape
    size_weight = {k: k * n for k, n in OPENING_SET_COUNTS.items() if k <= M}
    total = sum(size_weight.values())
    kmax = max(size_weight) - 1
    out = np.zeros((S, M, C))
    scaled = eta / sigma[:, None, None]
    for m in range(M):
        rivals = np.delete(scaled, m, axis=1)  # (S, M-1, C)
        diff = scaled[:, m : m + 1, :] - rivals  # (S, M-1, C)
        acc = np.zeros((S, C))
        for z, w in zip(_GH_Z, _GH_W, strict=True):
            a = special.ndtr(z + diff)  # P(rival below m | z)
            e = _elementary_symmetric(np.moveaxis(a, 1, -1), kmax)  # (kmax+1, S, C)
            for k, sw in size_weight.items():
                acc += w * (sw / total) * e[k - 1] / special.comb(M - 1, k - 1)
        out[:, m, :] = acc
    return out


def _rule_tables(params: xr.Dataset, spec: ModelSpec, frame, country: str, rules: Sequence[str],
                 seed: int, choice: Any = None, harmonisation: str = "default") -> dict[str, np.ndarray]:
    """Per-rule cell values (S, M, C): expected rating, chosen probability, veto probability."""
    expected = cell_predictions(params, spec, frame, country, seed=seed)
    eta = expected.transpose(..., "llm", "cell").values.reshape(-1, expected.sizes["llm"], len(frame))
    sigma = rating_noise_sd(params)
    out = {"mean": eta}
    if "chosen" in rules and choice is not None:
        out["chosen"] = _choice_model_probabilities(choice, country, expected["llm"].values, eta.shape[0],
                                                    harmonisation, seed)
    elif "chosen" in rules:
        out["chosen"] = chosen_probabilities(eta, sigma)
    if "veto" in rules:
        latent = eta if spec.family == "gaussian" else cell_predictions(
            params, spec.replace(family="gaussian"), frame, country, seed=seed
        ).transpose(..., "llm", "cell").values.reshape(eta.shape)
        sd = new_rater_sd(params)[:, None, None]
        # integer slider: a rating <= 10 is a latent value below 10.5
        out["veto"] = special.ndtr((VETO_THRESHOLD + 0.5 - latent) / sd)
    return out


def _choice_model_probabilities(choice: Any, country: str, llms, n_draws: int, harmonisation: str,
                                seed: int) -> np.ndarray:
    """Chosen probabilities from a fitted choice model, aligned to the rating model's draws.

    The two models are fitted separately, so their posterior draws are independent and any
    pairing is a valid joint draw: draw i of the ratings is paired with draw i (cycled) of
    the choice model.
    """
    p = cell_choice_probabilities(choice, country, harmonisation=harmonisation, draws=n_draws, seed=seed)
    p = p.sel(llm=[str(m) for m in llms])
    values = p.transpose("sample", "llm", "cell").values
    return values[np.arange(n_draws) % values.shape[0]]


def model_welfare(
    run: Run | tuple[xr.Dataset, ModelSpec],
    country: str,
    *,
    rules: Sequence[str] = RULES,
    sizes: Sequence[int] = JURY_SIZES,
    pools: Sequence[str] = POOLS,
    skewed_sizes: Sequence[int] = (SKEWED_SIZE,),
    targets: Sequence[str] = TARGETS,
    replicates: int = 1000,
    draws: int | None = 200,
    seed: int = 0,
    harmonisation: str = "default",
    custom_pools: Mapping[str, Sequence[float]] | None = None,
    choice: Any = None,
    chunk: int = 50,
) -> xr.Dataset:
    """Model-based welfare of juries drawn from census pools.

    Parameters
    ----------
    run : Run or (params, spec)
        A fitted rating model, or parameters with ``chain``/``draw`` dims and their spec
        (e.g. the synthetic truth, for the true welfare).
    country : {"uk", "us"}
    rules, sizes, pools, skewed_sizes, targets
        The grid (defaults: the original study's 7 schemes, 3 rules, 4 targets).
    replicates : int
        Juries per scheme.
    draws : int or None
        Posterior draws used (evenly thinned; ``None`` = all).
    seed : int
        Root seed (jury compositions, noise and tie-breaks are spawned from it).
    harmonisation : str
        Census harmonisation of the frame.
    custom_pools : mapping, optional
        Extra pools as cell weights or masks over the 60 census cells.
    choice : ChoiceRun, optional
        A fitted choice model (:mod:`prism_stats.model.choice`) for the ``chosen`` rule;
        without one, chosen probabilities are derived from the rating model.
    chunk : int
        Posterior draws processed at once (memory: chunk x replicates x LLMs floats).

    Returns
    -------
    xarray.Dataset
        The schema of :mod:`prism_stats.welfare.results` with ``method="model"`` and
        sample dims (chain, draw, replicate); ``welfare`` and ``regret`` are float32.
    """
    params, spec = (run.posterior, run.spec) if isinstance(run, Run) else run
    for r in rules:
        if r not in RULES:
            raise WelfareResultError(f"unknown rule {r!r}; expected one of {RULES}")
    params = _thin(params, draws)
    frame = census.frame(country, harmonisation)
    masks = census.group_masks(frame)
    counts = frame["count"].to_numpy(dtype=float)

    all_pools = list(dict.fromkeys(list(pools) + list(custom_pools or {})))
    schemes = build_schemes(sizes, [p for p in all_pools if p in POOLS], skewed_sizes)
    for p in custom_pools or {}:
        schemes += [Scheme(p, int(s)) for s in skewed_sizes]
    shares = pool_shares(frame, sorted({s.pool for s in schemes}), custom_pools)

    tables = _rule_tables(params, spec, frame, country, rules, seed, choice, harmonisation)
    # a juror's ratings of different LLMs share their participant effect (it cancels in the
    # pick) but not their noise and lasting taste for each LLM
    sigma = rating_noise_sd(params)
    S, M, _ = tables["mean"].shape
    target_w = np.stack([np.where(masks[t], counts, 0.0) / counts[masks[t]].sum() for t in targets])

    root = np.random.SeedSequence([seed, sum(map(ord, country))])
    comp_seeds, noise_seeds = root.spawn(2)
    comp_rngs = dict(zip([s.name for s in schemes], comp_seeds.spawn(len(schemes)), strict=True))
    compositions = {
        s.name: np.random.default_rng(comp_rngs[s.name]).multinomial(s.size, shares[s.pool], size=replicates)
        for s in schemes
    }
    noise_rng = np.random.default_rng(noise_seeds)

    chosen = np.empty((len(rules), len(schemes), S, replicates), dtype=np.int16)
    for ri, rule in enumerate(rules):
        table = tables[rule]  # (S, M, C)
        for si, scheme in enumerate(schemes):
            K = compositions[scheme.name].astype(float)  # (R, C)
            n = scheme.size
            for start in range(0, S, chunk):
                sl = slice(start, min(start + chunk, S))
                avg = np.einsum("rc,smc->srm", K, table[sl], optimize=True) / n  # (s, R, M)
                if rule == "mean":
                    score = avg + (sigma[sl, None, None] / np.sqrt(n)) * noise_rng.standard_normal(avg.shape)
                else:
                    votes = noise_rng.binomial(n, np.clip(avg, 0.0, 1.0)).astype(float)
                    # random tie-break among equal counts (jitter below one vote)
                    votes += 0.5 * noise_rng.random(votes.shape)
                    score = -votes if rule == "veto" else votes
                chosen[ri, si, sl] = score.argmax(axis=-1)

    # Welfare of each LLM for each target, per rule: (rule, target, llm, S)
    lw = np.empty((len(rules), len(targets), M, S))
    for ri, rule in enumerate(rules):
        value = tables[rule] if rule != "veto" else 1.0 - tables[rule]
        lw[ri] = np.einsum("tc,smc->tms", target_w, value)

    sample_shape = [params.sizes[d] for d in ("chain", "draw")]
    chain_draw = {"chain": params["chain"].values, "draw": params["draw"].values}
    llms = [str(x) for x in params["llm"].values]
    chosen_da = xr.DataArray(
        chosen.reshape(len(rules), len(schemes), *sample_shape, replicates)[None],
        dims=("country", "rule", "scheme", "chain", "draw", "replicate"),
        coords={"country": [country], "rule": list(rules), **scheme_coords(schemes),
                **chain_draw, "replicate": np.arange(replicates)},
    )
    lw_da = xr.DataArray(
        lw.reshape(len(rules), len(targets), M, *sample_shape)[None],
        dims=("country", "rule", "target", "llm", "chain", "draw"),
        coords={"country": [country], "rule": list(rules), "target": list(targets), "llm": llms,
                **chain_draw},
    )
    ds = welfare_dataset(chosen_da, lw_da, method="model", attrs={
        "seed": seed,
        "n_replicates": replicates,
        "n_draws": S,
        "spec": spec.name,
        "family": spec.family,
        "harmonisation": harmonisation,
        "population": "census",
        "chosen_source": "choice model" if choice is not None else "rating model",
    })
    for v in ("welfare", "regret"):
        ds[v] = ds[v].astype(np.float32)
    return ds


def expected_gaps(ds: xr.Dataset, *, quantiles: tuple[float, float] = (0.05, 0.95)) -> pd.DataFrame:
    """Posterior of the *expected* exclusion gap: jury randomness averaged out per draw.

    :func:`prism_stats.welfare.results.exclusion_gaps` describes the gap between two
    single juries (posterior and jury randomness together). Here the welfare under each
    scheme is first averaged over replicates within each posterior draw, so the interval
    is the posterior uncertainty of "how much worse, on average, does the skewed pool
    serve this target" — the quantity to compare with a true gap.

    Returns
    -------
    pandas.DataFrame
        Columns ``country, rule, target, pool, size, gap_mean, gap_q05, gap_q95,
        p_negative`` (posterior probability that the skewed pool serves the target worse).
    """
    import pandas as pd

    draw_dims = [d for d in ("chain", "draw") if d in ds["welfare"].dims]
    per_draw = ds["welfare"].mean("replicate")
    rows = []
    for scheme, pool, size in zip(ds["scheme"].values, ds["pool"].values, ds["size"].values, strict=True):
        if pool == "representative":
            continue
        ref = Scheme("representative", int(size)).name
        if ref not in ds["scheme"].values:
            continue
        gap = per_draw.sel(scheme=scheme, drop=True) - per_draw.sel(scheme=ref, drop=True)
        stacked_gap = gap.stack(sample=draw_dims) if draw_dims else gap.expand_dims(sample=[0])
        q = stacked_gap.quantile(list(quantiles), dim="sample")
        for country in gap["country"].values:
            for rule in gap["rule"].values:
                for target in gap["target"].values:
                    sel = dict(country=country, rule=rule, target=target)
                    g = stacked_gap.sel(sel).values
                    rows.append({
                        "country": str(country), "rule": str(rule), "target": str(target),
                        "pool": str(pool), "size": int(size), "gap_mean": float(g.mean()),
                        "gap_q05": float(q.sel(sel).values[0]), "gap_q95": float(q.sel(sel).values[1]),
                        "p_negative": float((g < 0).mean()),
                    })
    return pd.DataFrame(rows)
