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

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from scipy import special
from threadpoolctl import threadpool_limits

from .. import census
from ..model.choice import cell_choice_probabilities
from ..model.fit import Run
from ..model.predict import new_rater_sd, rating_noise_sd, scalar_or_zero, stacked
from ..model.spec import ModelSpec
from ..poststrat import cell_predictions
from .exposure import EXPOSURES, JuryExposure, exposure_profiles, jury_exposure, unseen_value
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
from .sampling import (
    BinomialTables,
    chosen_probabilities_kernel,
    pick_by_noisy_mean,
    pick_by_votes,
    pick_exposed_means,
    pick_exposed_votes,
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


def chosen_probabilities(eta: np.ndarray, sigma: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """P(a member of each cell picks LLM m when it is shown in a random opening set).

    Parameters
    ----------
    eta : array (S, M, C)
        Expected ratings per draw, LLM and cell.
    sigma : array (S,)
        Residual sd per draw.
    threads : int, optional
        Threads sharing the draws (default: the CPUs this process may use).

    Returns
    -------
    array (S, M, C)
    """
    S, M, C = eta.shape
    size_weight = {k: k * n for k, n in OPENING_SET_COUNTS.items() if k <= M}
    total = sum(size_weight.values())
    sizes = np.array(list(size_weight), dtype=np.int64)
    factors = np.array([w / total / special.comb(M - 1, k - 1) for k, w in size_weight.items()])
    scaled = np.ascontiguousarray(eta / np.asarray(sigma)[:, None, None], dtype=np.float64)
    out = np.empty((S, M, C))
    step = max(1, -(-S // (4 * _threads(threads))))

    def part(start: int) -> None:
        sl = slice(start, min(start + step, S))
        chosen_probabilities_kernel(scaled[sl], _GH_Z, _GH_W, sizes, factors, out[sl])

    _parallel(part, range(0, S, step), threads)
    return out


def _threads(threads: int | None) -> int:
    """Threads to use: *threads*, else ``$NUMBA_NUM_THREADS`` (1 in the sweeps' workers),
    else the CPUs this process may run on."""
    if threads is not None:
        if threads < 1:
            raise WelfareResultError(f"threads must be >= 1, got {threads}")
        return int(threads)
    if os.environ.get("NUMBA_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["NUMBA_NUM_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _parallel(fn, items, threads: int | None) -> None:
    """Run ``fn(item)`` for every item on a thread pool (the kernels release the GIL).

    Results never depend on the number of threads: every unit of work has its own
    random generator, spawned from the run's seed in a fixed order.
    """
    items = list(items)
    n = min(_threads(threads), len(items))
    if n <= 1:
        for item in items:
            fn(item)
        return
    # one BLAS thread per worker thread (no oversubscription of the cores)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n) as pool:
        for _ in pool.map(fn, items):
            pass


def _rule_tables(params: xr.Dataset, spec: ModelSpec, frame, country: str, rules: Sequence[str],
                 seed: int, choice: Any = None, harmonisation: str = "default",
                 threads: int | None = None) -> dict[str, np.ndarray]:
    """Per-rule cell values (S, M, C): expected rating, chosen probability, veto probability."""
    expected = cell_predictions(params, spec, frame, country, seed=seed)
    eta = expected.transpose(..., "llm", "cell").values.reshape(-1, expected.sizes["llm"], len(frame))
    sigma = rating_noise_sd(params)
    out = {"mean": eta}
    if "chosen" in rules and choice is not None:
        out["chosen"] = _choice_model_probabilities(choice, country, expected["llm"].values, eta.shape[0],
                                                    harmonisation, seed)
    elif "chosen" in rules:
        out["chosen"] = chosen_probabilities(eta, sigma, threads=threads)
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
    threads: int | None = None,
    exposure: str = "full",
    profiles: Any = None,
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
        Posterior draws processed at once (memory: chunk x replicates x LLMs floats per
        thread).
    threads : int, optional
        Threads sharing the work (default: the CPUs this process may use); the results do
        not depend on it.
    exposure : {"full", "matched"}
        ``"full"``: every juror rates every LLM; ``"matched"``: each juror rates only the
        LLMs a participant of the run's design saw in opening turns, and the study's fill
        rules apply to LLMs no juror saw (:mod:`prism_stats.welfare.exposure`).
    profiles : optional
        Exposure profiles for ``"matched"`` (anything
        :func:`~prism_stats.welfare.exposure.exposure_profiles` takes; default: the
        run's design). Required when *run* is ``(params, spec)``.

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
    if exposure not in EXPOSURES:
        raise WelfareResultError(f"unknown exposure {exposure!r}; expected one of {EXPOSURES}")
    if exposure == "matched":
        if profiles is None and not isinstance(run, Run):
            raise WelfareResultError("exposure='matched' needs exposure profiles (a run, its design "
                                     "or a release) when welfare is computed from (params, spec)")
        profiles = exposure_profiles(run if profiles is None else profiles,
                                     [str(x) for x in params["llm"].values])
    params = _thin(params, draws)
    frame = census.frame(country, harmonisation)
    masks = census.group_masks(frame)
    counts = frame["count"].to_numpy(dtype=float)

    all_pools = list(dict.fromkeys(list(pools) + list(custom_pools or {})))
    schemes = build_schemes(sizes, [p for p in all_pools if p in POOLS], skewed_sizes)
    for p in custom_pools or {}:
        schemes += [Scheme(p, int(s)) for s in skewed_sizes]
    shares = pool_shares(frame, sorted({s.pool for s in schemes}), custom_pools)

    tables = _rule_tables(params, spec, frame, country, rules, seed, choice, harmonisation, threads)
    # a juror's ratings of different LLMs share their participant effect (it cancels in the
    # pick) but not their noise and lasting taste for each LLM
    sigma = rating_noise_sd(params)
    S, M, _ = tables["mean"].shape
    target_w = np.stack([np.where(masks[t], counts, 0.0) / counts[masks[t]].sum() for t in targets])

    root = np.random.SeedSequence([seed, sum(map(ord, country))])
    comp_seeds, noise_seeds, exposure_seeds = root.spawn(3)
    comp_rngs = dict(zip([s.name for s in schemes], comp_seeds.spawn(len(schemes)), strict=True))
    compositions = {
        s.name: np.random.default_rng(comp_rngs[s.name]).multinomial(s.size, shares[s.pool], size=replicates)
        for s in schemes
    }
    chosen = np.empty((len(rules), len(schemes), S, replicates), dtype=np.int16)
    # units of work: (rule, scheme, chunk of draws), each with its own generator
    units = [(ri, si, start) for ri in range(len(rules)) for si in range(len(schemes))
             for start in range(0, S, chunk)]
    unit_seeds = dict(zip(units, noise_seeds.spawn(len(units)), strict=True))
    vote_tables = {s.size: BinomialTables(s.size) for s in schemes
                   if set(rules) - {"mean"} and exposure == "full"}
    if exposure == "matched":
        seen = {s.name: jury_exposure(profiles.values, compositions[s.name], np.random.default_rng(q))
                for s, q in zip(schemes, exposure_seeds.spawn(len(schemes)), strict=True)}
        tau = stacked(params, "sigma_participant")
        taste2 = scalar_or_zero(params, "sigma_rater_llm") ** 2
        noise2 = sigma**2 - taste2

    def run_unit(unit: tuple[int, int, int]) -> None:
        ri, si, start = unit
        rule, scheme = rules[ri], schemes[si]
        rng = np.random.default_rng(unit_seeds[unit])
        sl = slice(start, min(start + chunk, S))
        n = scheme.size
        if exposure == "matched":
            _matched_picks(rule, seen[scheme.name], tables[rule][sl], tau[sl], taste2[sl], noise2[sl],
                           rng, chosen[ri, si, sl])
            return
        K = compositions[scheme.name].astype(float)  # (R, C)
        avg = np.ascontiguousarray(np.einsum("rc,smc->srm", K, tables[rule][sl], optimize=True) / n)
        picks = chosen[ri, si, sl]
        if rule == "mean":
            pick_by_noisy_mean(avg, np.ascontiguousarray(sigma[sl] / np.sqrt(n)), rng, picks)
        else:
            t = vote_tables[n]
            pick_by_votes(avg, n, rule == "veto", rng, t.cdf, t.guide, t.grid, picks)

    _parallel(run_unit, units, threads)

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
        "exposure": exposure,
        **({"exposure_profiles": int(profiles.sizes["profile"]),
            "exposure_source": str(profiles.attrs.get("source", ""))} if exposure == "matched" else {}),
    })
    for v in ("welfare", "regret"):
        ds[v] = ds[v].astype(np.float32)
    return ds


def _matched_picks(rule: str, seen: JuryExposure, table: np.ndarray, tau: np.ndarray,
                   taste2: np.ndarray, noise2: np.ndarray, rng: np.random.Generator,
                   out: np.ndarray) -> None:
    """Picks of exposure-matched juries for a chunk of draws (see :mod:`.exposure`)."""
    if rule == "mean":
        mean = np.einsum("rmc,smc->srm", seen.seen_cells, table, optimize=True)
        mean = np.ascontiguousarray(mean / np.maximum(seen.n_seen, 1)[None])
        pick_exposed_means(mean, seen.n_seen, seen.factor, seen.inv_exposure, np.ascontiguousarray(tau),
                           np.ascontiguousarray(taste2), np.ascontiguousarray(noise2),
                           unseen_value(rule), rng, out)
        return
    jurors = seen.showings.sum(axis=-1)  # (R, A, M)
    prob = np.einsum("ramc,smc->sram", seen.showings, table, optimize=True)
    prob = np.ascontiguousarray(prob / np.maximum(jurors, 1)[None])
    pick_exposed_votes(prob, jurors.round().astype(np.int64), seen.n_seen, rule == "veto",
                       unseen_value(rule), rng, out)


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
