"""Design-based weights: raking to census margins and weighted per-LLM estimates.

Raking and post-stratification to census margins, and weighted per-LLM estimates with
participant-clustered standard errors: :mod:`.margins` (margin keys and census targets),
:mod:`.raking` (the algorithms and :class:`WeightingResult`), :mod:`.participants` (a
country's residents -> weights) and :mod:`.estimates` (weighted estimates and their
variance estimators).

These are the frequentist comparators of the MRP estimates. The workflow is::

    result = participant_weights(data.participants, "uk")       # rake residents
    table = weighted_llm_estimates(data.ratings, result)         # per-LLM estimates

or, with any sample and margins, :func:`rake` / :func:`poststratify` directly.

Raking (iterative proportional fitting)
---------------------------------------
Weights start at the base weights (1 by default, scaled to mean 1) and are multiplied,
margin after margin, by target total / weighted total of each category until every
margin matches: one sweep over all margins is one iteration, and the algorithm stops
when the largest absolute difference between a weighted share and its target share
(``max_margin_error``) is below ``tol``. Margins may be one-way (``"age"``) or any
cross-classification (``("age", "sex")``). With ``bounds=(lo, hi)`` the adjustment
factors ``g = w / base`` (with unit base weights: the weights relative to their mean)
are trimmed to ``[lo, hi]`` after every sweep, clipping and rescaling in turn, so
convergence then means "margins met *and* factors within bounds" -- an infeasible
combination does not converge and says so (as with weightipy's ``cap``, a feasible
combination can occasionally be missed too).

Weights are returned scaled to mean 1 over the sample (sum = n); multiply by
N / n for population totals.

Diagnostics: Kish's design effect due to weighting ``n sum(w^2) / (sum w)^2``, the
effective sample size ``(sum w)^2 / sum(w^2)``, the weight range, and a balance table
with, for every category of every margin, the target share, the unweighted and the
weighted sample share and the absolute standardised difference (ASD) before and after
weighting,

    ASD = |p_sample - p_target| / sqrt((p_sample (1 - p_sample) + p_target (1 - p_target)) / 2),

the pooled-standard-deviation form for a binary indicator (Austin 2009).

Standard errors of weighted estimates
-------------------------------------
A participant rates many responses, so ratings are clustered by participant. Per-LLM
estimates are ratios ``sum_i w_i a_i / sum_i w_i b_i`` over participants ``i`` (``a_i``:
the participant's summed outcome for that LLM, ``b_i``: their number of ratings of it).
Two variance estimators are offered:

* ``"linearisation"`` (default): Taylor linearisation with participants as primary
  sampling units (with-replacement approximation, ``n / (n - 1)`` correction). For raked
  or post-stratified weights the linearised scores are first replaced by their residuals
  from a weighted regression on the calibration variables (the margin indicators), the
  Deville-Särndal (1992) variance of a calibration estimator -- as R's
  ``survey::calibrate`` does. Without calibration information the weights are treated
  as fixed.
* ``"bootstrap"``: a participant bootstrap; each replicate resamples participants with
  replacement and, when the weights came from raking / post-stratification, re-weights
  the replicate to the same margins, so weighting variability is included.
"""

from __future__ import annotations

from prism_stats.vocab import VETO_THRESHOLD

from .estimates import STATISTICS, weighted_llm_estimates
from .margins import (
    DEFAULT_MARGINS,
    ONE_WAY_MARGINS,
    MarginKey,
    WeightingError,
    census_margins,
    margin_name,
    parse_margins,
)
from .participants import default_participant_weights, participant_weights, weighting_sample
from .raking import (
    RakingConvergenceError,
    WeightingResult,
    effective_sample_size,
    kish_deff,
    poststratify,
    rake,
)

__all__ = [
    "DEFAULT_MARGINS",
    "ONE_WAY_MARGINS",
    "STATISTICS",
    "VETO_THRESHOLD",
    "MarginKey",
    "RakingConvergenceError",
    "WeightingError",
    "WeightingResult",
    "census_margins",
    "default_participant_weights",
    "effective_sample_size",
    "kish_deff",
    "margin_name",
    "parse_margins",
    "participant_weights",
    "poststratify",
    "rake",
    "weighted_llm_estimates",
    "weighting_sample",
]
