"""True welfare of jury schemes under the synthetic generator (the benchmark for recovery).

The model-based analysis estimates welfare from a fitted model. On synthetic data the
generator's own process gives the truth: jurors are new members of census cells whose
ratings are simulated exactly as the generator rates (latent mean + new participant
effect + random conversation type + text-feature contribution + noise; then the
generator's observation process -- clipped and rounded to 1..100, and under departures
from the model the rater's style, piles and heaping -- and the slider left at 50 with
probability ``pi_default``). The
welfare of a target group is its true population value of the picked LLM (mean
observed rating, or 1 - the share of ratings <= 10).

Only the ``mean`` and ``veto`` rules are simulated; they are the ones whose truth has a
closed-form welfare table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .. import census, vocab
from ..synth.scenarios import cell_latent_shift, new_rater_traits, observe
from ..synth.population import cell_expected_scores
from ..model.predict import stacked
from ..model.spec import ModelSpec
from ..poststrat import cell_predictions
from .model_based import VETO_THRESHOLD, pool_shares
from .results import (
    JURY_SIZES,
    POOLS,
    SKEWED_SIZE,
    TARGETS,
    build_schemes,
    scheme_coords,
    welfare_dataset,
)

TRUTH_RULES: tuple[str, ...] = ("mean", "veto")


def _scalar(params: xr.Dataset, name: str) -> float:
    return float(np.asarray(params[name].values).ravel()[0])


def true_welfare(
    params: xr.Dataset,
    country: str,
    *,
    rules: Sequence[str] = TRUTH_RULES,
    sizes: Sequence[int] = JURY_SIZES,
    pools: Sequence[str] = POOLS,
    skewed_sizes: Sequence[int] = (SKEWED_SIZE,),
    targets: Sequence[str] = TARGETS,
    replicates: int = 2000,
    seed: int = 0,
    harmonisation: str = "default",
) -> xr.Dataset:
    """Simulate juries under the synthetic truth (``DIR/truth/params.nc``).

    Returns the welfare schema of :mod:`prism_stats.welfare.results` (``method="truth"``,
    sample dim ``replicate``).
    """
    bad = set(rules) - set(TRUTH_RULES)
    if bad:
        raise ValueError(f"true welfare is simulated for rules {TRUTH_RULES} only, not {sorted(bad)}")
    truth_spec = ModelSpec(name="synthetic-truth")
    frame = census.frame(country, harmonisation)
    counts = frame["count"].to_numpy(dtype=float)
    masks = census.group_masks(frame)
    eta = cell_predictions(params, truth_spec, frame, country).isel(chain=0, draw=0)
    eta = eta.transpose("llm", "cell").values  # latent mean without the conversation type
    llms = [str(x) for x in params["llm"].values]
    ages = frame["age"].astype(str).to_numpy()
    # departures from the model (synth.scenarios): LLM x country / x age x gender shifts
    eta = eta + cell_latent_shift(params, llms, vocab.COUNTRY_ISO3[country], list(ages),
                                  frame["sex"].astype(str).tolist()).T
    M, C = eta.shape
    ctype = stacked(params, "ctype_effect")[0] if "ctype_effect" in params else np.zeros(1)
    pi = _scalar(params, "pi_default")
    tau = _scalar(params, "sigma_participant")
    has_text = "text_offset" in params and "sigma_noise" in params
    noise = _scalar(params, "sigma_noise" if has_text else "sigma")
    offsets = params["text_offset"].values if has_text else np.zeros(1)
    weights = params["text_weight"].values if has_text else np.ones(1)

    # True welfare tables (target, llm) per rule: the generator's exact cell expectations.
    cell_value = {
        "mean": cell_expected_scores(params, frame, country)[0].T,  # (M, C)
        "veto": 1.0 - cell_expected_scores(params, frame, country, veto=VETO_THRESHOLD)[0].T,
    }
    target_w = np.stack([np.where(masks[t], counts, 0.0) / counts[masks[t]].sum() for t in targets])
    lw = np.stack([target_w @ cell_value[r].T for r in rules])  # (rule, target, llm)

    schemes = build_schemes(sizes, pools, skewed_sizes)
    shares = pool_shares(frame, sorted({s.pool for s in schemes}))
    rng = np.random.default_rng([seed, sum(map(ord, country)), 7])
    chosen = np.empty((len(rules), len(schemes), replicates), dtype=np.int16)
    for si, scheme in enumerate(schemes):
        n = scheme.size
        cells = rng.choice(C, size=(replicates, n), p=shares[scheme.pool])
        style, spread = new_rater_traits(params, ages[cells.ravel()], rng)
        latent = (eta.T[cells]  # (R, n, M)
                  + tau * rng.standard_normal((replicates, n, 1))
                  + ctype[rng.integers(0, len(ctype), (replicates, n, 1))]
                  + rng.choice(offsets, size=(replicates, n, M), p=weights)
                  + noise * spread.reshape(replicates, n, 1) * rng.standard_normal((replicates, n, M)))
        per_rating = None if style is None else np.repeat(style, M)
        observed = observe(latent.ravel(), per_rating, params, rng).reshape(latent.shape)
        observed = np.where(rng.random((replicates, n, M)) < pi, 50.0, observed)
        jitter = rng.random((replicates, M)) * 1e-9  # random tie-break
        for ri, rule in enumerate(rules):
            if rule == "mean":
                score = observed.mean(axis=1)
            else:
                score = -(observed <= VETO_THRESHOLD).mean(axis=1)
            chosen[ri, si] = (score + jitter).argmax(axis=1)

    chosen_da = xr.DataArray(
        chosen[None], dims=("country", "rule", "scheme", "replicate"),
        coords={"country": [country], "rule": list(rules), **scheme_coords(schemes),
                "replicate": np.arange(replicates)},
    )
    lw_da = xr.DataArray(
        lw[None], dims=("country", "rule", "target", "llm"),
        coords={"country": [country], "rule": list(rules), "target": list(targets), "llm": llms},
    )
    return welfare_dataset(chosen_da, lw_da, method="truth",
                           attrs={"seed": seed, "n_replicates": replicates, "population": "census"})


__all__ = ["TRUTH_RULES", "true_welfare"]
