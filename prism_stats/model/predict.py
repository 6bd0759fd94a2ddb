"""The rating model evaluated in NumPy: linear predictor, log-likelihoods, redraws, simulation.

Every function takes *params*, a Dataset of the model's variables with ``chain`` /
``draw`` dims (a posterior, a prior sample, or the synthetic truth with one chain and one
draw), the :class:`~prism_stats.model.design.Design` and the spec, so the same code serves
the fitted posterior, prior predictive checks, simulation-based calibration and the
generator's truth.
"""

from __future__ import annotations

import numba
import numpy as np
import xarray as xr
from scipy import sparse, special

from .design import HIGH, LOW, Design
from .marginal import rater_marginal
from .spec import ModelSpec

#: Gauss-Hermite nodes for integrating a participant effect out of the censored likelihood.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
#: ... and for integrating a new rater's noise scale out of the Gaussian one.
_SCALE_NODES, _SCALE_WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_SCALE_WEIGHTS = _SCALE_WEIGHTS / _SCALE_WEIGHTS.sum()


def stacked(params: xr.Dataset, name: str) -> np.ndarray:
    """Variable *name* as an array with the sample dims flattened first: (S, ...)."""
    da = params[name]
    sample_dims = [d for d in ("chain", "draw") if d in da.dims]
    other = [d for d in da.dims if d not in sample_dims]
    return da.transpose(*sample_dims, *other).values.reshape((-1, *[da.sizes[d] for d in other]))


def n_samples(params: xr.Dataset) -> int:
    """Number of (chain, draw) samples in *params*."""
    return int(np.prod([params.sizes[d] for d in ("chain", "draw") if d in params.sizes]))


def scalar_or_zero(params: xr.Dataset, name: str) -> np.ndarray:
    """Scalar variable *name* per sample (S,), zeros when the model has no such variable."""
    if name in params:
        return stacked(params, name)
    return np.zeros(n_samples(params))


def rating_noise_sd(params: xr.Dataset) -> np.ndarray:
    """SD of one rating around a *new* rater's own mean for an LLM, per sample (S,).

    ``sqrt(E[s_p^2] + sigma_rater_llm^2)``: the noise (averaged over the raters' noise
    scales, ``E[exp(2 rater_scale)] = exp(2 rater_scale_sd^2)``) plus the rater's lasting
    taste for that LLM. A new rater's ratings of different LLMs share their participant
    effect but not this term.
    """
    sigma = stacked(params, "sigma")
    zeta = scalar_or_zero(params, "rater_scale_sd")
    omega = scalar_or_zero(params, "sigma_rater_llm")
    return np.sqrt(sigma**2 * np.exp(2 * zeta**2) + omega**2)


def new_rater_sd(params: xr.Dataset) -> np.ndarray:
    """SD of one rating by a new rater around the cell's expected rating, per sample (S,)."""
    return np.sqrt(stacked(params, "sigma_participant") ** 2 + rating_noise_sd(params) ** 2)


def _predictor_terms(params: xr.Dataset, design: Design, spec: ModelSpec,
                     participant: bool) -> list[tuple[str, np.ndarray]]:
    """The linear predictor's terms in summation order: (variable, each cell's column).

    A column indexes the variable flattened over its non-sample dims (``llm x level``
    interactions: ``m * n_levels + level``); ``turn_effect`` has columns (0, effect).
    """
    cells = design.cells
    p = cells["participant"].to_numpy()
    m = cells["llm"].to_numpy()
    t = cells["conversation_type"].to_numpy()
    plev = design.participant_levels
    terms: list[tuple[str, np.ndarray]] = [("intercept", np.zeros(len(cells), dtype=np.int64)),
                                           ("llm_effect", m)]
    if participant:
        terms.append(("participant_effect", p))
    if "country_effect" in params:
        terms.append(("country_effect", plev["country"].to_numpy()[p]))
    if "ctype_effect" in params:
        terms.append(("ctype_effect", t))
    if "turn_effect" in params and spec.turns == "all":
        terms.append(("turn_effect", cells["later"].to_numpy()))
    for f in spec.demographics:
        if f"{f}_effect" in params:
            terms.append((f"{f}_effect", plev[f].to_numpy()[p]))
    pairs = [(f"llm_{f}", plev[f].to_numpy()[p]) for f in spec.llm_interactions if f"llm_{f}" in params]
    if "llm_region" in params:
        pairs.append(("llm_region", plev["region"].to_numpy()[p]))
    if "llm_country" in params:
        pairs.append(("llm_country", plev["country"].to_numpy()[p]))
    if "llm_residence" in params:
        pairs.append(("llm_residence", plev["residence"].to_numpy()[p]))
    if "llm_ctype" in params:
        pairs.append(("llm_ctype", t))
    for name, level in pairs:
        terms.append((name, m * params[name].shape[-1] + level))
    return terms


def _term_table(params: xr.Dataset, terms: list[tuple[str, np.ndarray]], sel) -> tuple[np.ndarray, np.ndarray]:
    """Every term's values side by side (S, columns) and each cell's columns (cells, terms)."""
    blocks, offset, codes = [], 0, []
    for name, column in terms:
        values = stacked(params, name)[sel]
        values = values.reshape(values.shape[0], -1)
        if name == "turn_effect":
            values = np.column_stack([np.zeros(len(values)), values[:, 0]])
        blocks.append(values)
        codes.append(column + offset)
        offset += values.shape[1]
    return (np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float64),
            np.ascontiguousarray(np.stack(codes, axis=1), dtype=np.int64))


@numba.njit(parallel=True, nogil=True, cache=True)
def _sum_terms(table, codes, out):  # pragma: no cover - compiled
    """out[s, i] = sum over terms of table[s, codes[i, t]], added in term order."""
    for s in numba.prange(table.shape[0]):
        for i in range(codes.shape[0]):
            acc = table[s, codes[i, 0]]
            for k in range(1, codes.shape[1]):
                acc += table[s, codes[i, k]]
            out[s, i] = acc


@numba.njit(parallel=True, nogil=True, cache=True)
def _block_residuals(table_t, codes, n, ybar, ss, block, group_starts, R, Q):  # pragma: no cover
    """Per block and sample: R = sum n (ybar - eta), Q = sum (ss + n (ybar - eta)^2).

    table_t : (columns, S) term values; R, Q : (blocks, S). Cells are sorted by block, and
    each group of consecutive cells (``group_starts``) holds whole blocks, so groups run in
    parallel and every block is summed by one thread in cell order (the same bits on any
    number of threads). The inner loops run over samples (contiguous, vectorised). R and Q
    come in zeroed (a block code without cells stays zero).
    """
    S = table_t.shape[1]
    for g in numba.prange(group_starts.shape[0] - 1):
        eta = np.empty(S)
        for i in range(group_starts[g], group_starts[g + 1]):
            eta[:] = table_t[codes[i, 0], :]
            for k in range(1, codes.shape[1]):
                eta += table_t[codes[i, k], :]
            b = block[i]
            for s in range(S):
                d = ybar[i] - eta[s]
                R[b, s] += n[i] * d
                Q[b, s] += ss[i] + n[i] * d * d


def linear_predictor(params: xr.Dataset, design: Design, spec: ModelSpec,
                     samples: slice | np.ndarray | None = None,
                     participant: bool = True) -> np.ndarray:
    """Linear predictor of every observation cell: array (S, obs_cell).

    *samples* selects flattened samples (to work in chunks). ``participant=False`` leaves
    the participant effect out (the mean of a new rater with the same attributes). The
    terms are added in a fixed order by a compiled kernel (samples in parallel; the same
    bits on any number of threads).
    """
    sel = slice(None) if samples is None else samples
    table, codes = _term_table(params, _predictor_terms(params, design, spec, participant), sel)
    out = np.empty((table.shape[0], len(codes)))
    _sum_terms(table, codes, out)
    return out


def cell_loglik(eta: np.ndarray, sigma: np.ndarray, design: Design, family: str) -> np.ndarray:
    """Full log-likelihood of every observation cell's ratings given their means: (S, obs_cell).

    The sum over cells equals the log-likelihood of the individual ratings exactly
    (constants included).
    """
    c = design.cells
    s = sigma[:, None]
    log2pi = np.log(2.0 * np.pi)
    if family == "gaussian":
        n, ybar, ss = (c[k].to_numpy()[None, :] for k in ("n", "mean", "ss"))
        return -0.5 * n * log2pi - n * np.log(s) - (ss + n * (ybar - eta) ** 2) / (2 * s**2)
    n, ybar, ss = (c[k].to_numpy()[None, :] for k in ("n_int", "mean_int", "ss_int"))
    ll = -0.5 * n * log2pi - n * np.log(s) - (ss + n * (ybar - eta) ** 2) / (2 * s**2)
    ll += c["n_low"].to_numpy()[None, :] * special.log_ndtr((LOW - eta) / s)
    ll += c["n_high"].to_numpy()[None, :] * special.log_ndtr((eta - HIGH) / s)
    return ll


class _Blocks:
    """Cell -> block -> participant aggregation of the marginal likelihood (NumPy side).

    Blocks are participant x LLM pairs with a rater x LLM taste, and otherwise whole
    participants: without a taste term any partition nested in participants gives the
    same likelihood (:mod:`prism_stats.model.marginal`), and the coarsest is the cheapest.
    """

    def __init__(self, design: Design, spec: ModelSpec) -> None:
        c = design.cells
        p = c["participant"].to_numpy()
        self.n_participants = len(design.coords["participant"])
        self.block = np.ascontiguousarray(c["pair"].to_numpy() if spec.rater_llm else p, dtype=np.int64)
        n_blocks = int(self.block.max()) + 1
        self.block_participant = np.zeros(n_blocks, dtype=np.int64)
        self.block_participant[self.block] = p
        self.to_p = sparse.csr_matrix((np.ones(n_blocks), (self.block_participant, np.arange(n_blocks))),
                                      shape=(self.n_participants, n_blocks))
        self.n = c["n"].to_numpy().astype(float)
        self.ybar = c["mean"].to_numpy(dtype=float)
        self.ss = c["ss"].to_numpy(dtype=float)
        self.N = np.bincount(self.block, weights=self.n, minlength=n_blocks)
        # groups of whole blocks for the parallel kernel (cells are sorted by block)
        if np.any(np.diff(self.block) < 0):
            raise ValueError("design cells must be sorted by participant (and LLM)")
        edges = np.flatnonzero(np.diff(self.block)) + 1  # first cell of each block but the first
        n_groups = min(256, len(edges) + 1)  # enough for any thread count, few enough to be cheap
        cuts = edges[(np.arange(1, n_groups) * len(edges)) // n_groups]
        self.group_starts = np.unique(np.r_[0, cuts, len(self.block)]).astype(np.int64)
        self.identity = n_blocks == self.n_participants and bool(
            np.array_equal(self.block_participant, np.arange(n_blocks)))

    def participant_sum(self, x: np.ndarray) -> np.ndarray:  # (S, blocks) -> (S, participants)
        if self.identity:  # blocks are the participants
            return x
        return (self.to_p @ x.T).T

    def residual_sums(self, params: xr.Dataset, design: Design, spec: ModelSpec,
                      sel: slice) -> tuple[np.ndarray, np.ndarray]:
        """Per block: residual sum R and residual sum of squares Q around the predictor
        without the participant effect (one compiled pass over the cells)."""
        table, codes = _term_table(params, _predictor_terms(params, design, spec, False), sel)
        R = np.zeros((len(self.N), table.shape[0]))
        Q = np.zeros_like(R)
        _block_residuals(np.ascontiguousarray(table.T), codes, self.n, self.ybar, self.ss, self.block,
                         self.group_starts, R, Q)
        return R.T, Q.T

    def terms(self, sums: tuple[np.ndarray, np.ndarray], s2: np.ndarray, omega2: np.ndarray,
              tau2: np.ndarray):
        """``rater_marginal`` for residual *sums*; s2 (S, participants)."""
        R, Q = sums
        block_s2 = s2 if self.identity else s2[:, self.block_participant]
        return rater_marginal(self.N[None, :], R, Q, block_s2, omega2[:, None],
                              tau2[:, None], self.participant_sum, np.log, np.log1p)


def _noise_variance(params: xr.Dataset, sel: slice, n_participants: int) -> np.ndarray:
    """(S, participant) noise variance of each rater under the posterior."""
    s2 = stacked(params, "sigma")[sel, None] ** 2
    if "rater_scale" in params:
        return s2 * np.exp(2.0 * stacked(params, "rater_scale")[sel])
    return np.broadcast_to(s2, (s2.shape[0], n_participants))


def _sample_array(values: np.ndarray, params: xr.Dataset, design: Design, name: str,
                  draw_coords: bool) -> xr.DataArray:
    dims = [d for d in ("chain", "draw") if d in params.sizes]
    coords = {d: params[d].values for d in dims} if draw_coords else {}
    return xr.DataArray(
        values.reshape(*[params.sizes[d] for d in dims], values.shape[-1]),
        dims=[*dims, "participant"],
        coords={**coords, "participant": design.coords["participant"]},
        name=name,
    )


def _gaussian_pass(params: xr.Dataset, design: Design, spec: ModelSpec, rng: np.random.Generator | None,
                   loglik: bool, chunk: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Participant redraws (with *rng*) and/or LOO terms (with *loglik*) from one pass over
    the cells per chunk of samples (Gaussian family)."""
    S = n_samples(params)
    blocks = _Blocks(design, spec)
    n_p = blocks.n_participants
    sigma = stacked(params, "sigma")
    tau = stacked(params, "sigma_participant")
    omega = scalar_or_zero(params, "sigma_rater_llm")
    zeta = scalar_or_zero(params, "rater_scale_sd")
    draws = np.empty((S, n_p)) if rng is not None else None
    ll = np.empty((S, n_p)) if loglik else None
    for start in range(0, S, chunk):
        sel = slice(start, min(start + chunk, S))
        sums = blocks.residual_sums(params, design, spec, sel)
        omega2, tau2 = omega[sel] ** 2, tau[sel] ** 2
        # a new rater has the population's noise scale, a participant their fitted one:
        # the same without heteroscedastic raters, so one evaluation serves both
        s2 = np.broadcast_to(sigma[sel, None] ** 2, (sums[0].shape[0], n_p))
        shared = None if "rater_scale" in params else blocks.terms(sums, s2, omega2, tau2)
        if draws is not None:
            _, A, G = shared or blocks.terms(sums, _noise_variance(params, sel, n_p), omega2, tau2)
            precision = 1.0 / tau2[:, None] + A
            draws[sel] = G / precision + rng.standard_normal(precision.shape) / np.sqrt(precision)
        if ll is None:
            continue
        if shared is not None:
            ll[sel] = shared[0]
            continue
        terms = [np.log(w) + blocks.terms(sums, s2 * np.exp(2.0 * zeta[sel, None] * z), omega2, tau2)[0]
                 for z, w in zip(_SCALE_NODES, _SCALE_WEIGHTS, strict=True)]
        ll[sel] = np.logaddexp.reduce(np.stack(terms), axis=0)
    return draws, ll


def draw_participant_effects(params: xr.Dataset, design: Design, spec: ModelSpec,
                             rng: np.random.Generator, chunk: int = 250) -> xr.DataArray:
    """Draw participant effects from their exact conditional posterior (Gaussian family).

    Given the other parameters (rater x LLM tastes integrated out), ``u_p | y ~ N(G_p / P_p,
    1 / P_p)`` with ``P_p = 1/tau^2 + A_p`` (:mod:`prism_stats.model.marginal`), so pairing
    one draw of u with each posterior draw gives draws from the joint posterior.
    """
    draws, _ = _gaussian_pass(params, design, spec, rng, False, chunk)
    return _sample_array(draws, params, design, "participant_effect", True)


def participant_posterior(params: xr.Dataset, design: Design, spec: ModelSpec, rng: np.random.Generator,
                          *, chunk: int = 250) -> tuple[xr.DataArray, xr.DataArray]:
    """:func:`draw_participant_effects` and :func:`participant_loglik` from one pass (Gaussian
    family): the same values as the two calls, in half the time. Returns ``(effects, loglik)``."""
    draws, ll = _gaussian_pass(params, design, spec, rng, True, chunk)
    return (_sample_array(draws, params, design, "participant_effect", True),
            _sample_array(ll, params, design, "score", False))


def participant_loglik(params: xr.Dataset, design: Design, spec: ModelSpec,
                       chunk: int = 250) -> xr.DataArray:
    """Log-likelihood of each participant's ratings with their own effects integrated out.

    Returns DataArray ``score`` (chain, draw, participant). This is the predictive density
    of a *new rater* with the participant's attributes, i.e. the quantity that
    leave-one-participant-out cross-validation needs; conditioning on the participant's
    own effects instead would make PSIS-LOO unreliable (every participant's data dominate
    their own parameters). It also keeps storage at S x participants.

    Gaussian family: closed form (:mod:`prism_stats.model.marginal`), with a new rater's
    noise scale integrated over its population distribution by Gauss-Hermite quadrature
    (24 nodes) when the spec has ``rater_scale``. Censored family: adaptive Gauss-Hermite
    quadrature (24 nodes) of the participant effect around the Gaussian approximation.
    """
    if spec.family == "gaussian":
        _, ll = _gaussian_pass(params, design, spec, None, True, chunk)
    else:
        ll = _censored_participant_loglik(params, design, spec, stacked(params, "sigma"),
                                          stacked(params, "sigma_participant"), min(chunk, 100))
    return _sample_array(ll, params, design, "score", False)


def _censored_participant_loglik(params, design, spec, sigma, tau, chunk) -> np.ndarray:
    c = design.cells
    p = c["participant"].to_numpy()
    n_p = len(design.coords["participant"])
    S = n_samples(params)
    to_p = sparse.csr_matrix((np.ones(len(p)), (p, np.arange(len(p)))), shape=(n_p, len(p)))

    def per_participant(x: np.ndarray) -> np.ndarray:  # (s, cells) -> (s, participants)
        return (to_p @ x.T).T

    out = np.empty((S, n_p))
    for start in range(0, S, chunk):
        sel = slice(start, min(start + chunk, S))
        mu = linear_predictor(params, design, spec, sel, participant=False)
        s2, t2 = sigma[sel, None] ** 2, tau[sel, None] ** 2
        # Centre and scale the quadrature on the interior ratings' Gaussian posterior of u.
        n_int, ybar = c["n_int"].to_numpy()[None, :], c["mean_int"].to_numpy()[None, :]
        prec = per_participant(np.broadcast_to(n_int, mu.shape).astype(float)) / s2 + 1.0 / t2
        centre = per_participant(n_int * (ybar - mu)) / s2 / prec
        scale = 1.0 / np.sqrt(prec)
        terms = []
        for z, w in zip(_GH_NODES, _GH_WEIGHTS, strict=True):
            u = centre + scale * z  # (s, participants)
            ll = per_participant(cell_loglik(mu + u[:, p], sigma[sel], design, "censored"))
            log_prior = -0.5 * np.log(2 * np.pi * t2) - u**2 / (2 * t2)
            # importance ratio against the standard-normal weight of hermegauss
            terms.append(np.log(w) + ll + log_prior + 0.5 * z**2 + np.log(scale))
        out[sel] = np.logaddexp.reduce(np.stack(terms), axis=0)
    return out


def _rater_noise(params: xr.Dataset, design: Design, spec: ModelSpec, sel: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: the rater x LLM taste draw (S, cells) and the rater's noise sd (S, cells)."""
    c = design.cells
    p = c["participant"].to_numpy()
    S = len(sel)
    sigma = stacked(params, "sigma")[sel][:, None]
    sd = np.broadcast_to(sigma, (S, len(c)))
    if "rater_scale" in params:
        sd = sigma * np.exp(stacked(params, "rater_scale")[sel])[:, p]
    taste = np.zeros((S, len(c)))
    if "sigma_rater_llm" in params and spec.rater_llm:
        pair = c["pair"].to_numpy()
        omega = stacked(params, "sigma_rater_llm")[sel][:, None]
        taste = (omega * rng.standard_normal((S, int(pair.max()) + 1)))[:, pair]
    return taste, sd


def simulate_cells(params: xr.Dataset, design: Design, spec: ModelSpec,
                   rng: np.random.Generator, samples: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Simulate every cell's ratings from the model: sufficient statistics per sample.

    Returns a dict of arrays (S, obs_cell): ``mean``, ``ss`` (Gaussian; unbounded ratings)
    and, for the censored family, ``n_low``, ``n_high``, ``n_int``, ``mean_int``,
    ``ss_int`` of the clipped ratings. Individual ratings are drawn only where the
    censored family needs them; Gaussian cell statistics are drawn from their exact
    sampling distributions (mean ~ Normal, SS ~ s^2 chi^2_{n-1}), with the rater x LLM
    taste shared by the cells of a participant x LLM pair.
    """
    sel = samples if samples is not None else np.arange(n_samples(params))
    eta = linear_predictor(params, design, spec, sel)
    n = design.cells["n"].to_numpy()[None, :]
    if spec.family == "gaussian":
        taste, sd = _rater_noise(params, design, spec, np.asarray(sel), rng)
        mean = eta + taste + sd / np.sqrt(n) * rng.standard_normal(eta.shape)
        ss = sd**2 * rng.chisquare(np.maximum(n - 1, 1e-12), size=eta.shape) * (n > 1)
        return {"mean": mean, "ss": ss}
    sigma = stacked(params, "sigma")[sel][:, None]
    # Censored: draw individual ratings (cells are small), clip, and re-collapse.
    nmax = int(n.max())
    draws = eta[..., None] + sigma[..., None] * rng.standard_normal((*eta.shape, nmax))
    valid = np.arange(nmax)[None, None, :] < n[..., None]
    low = valid & (draws <= LOW)
    high = valid & (draws >= HIGH)
    inner = valid & ~low & ~high
    n_int = inner.sum(-1)
    tot = np.where(inner, draws, 0.0).sum(-1)
    sq = np.where(inner, draws**2, 0.0).sum(-1)
    mean_int = np.where(n_int > 0, tot / np.maximum(n_int, 1), 0.0)
    return {
        "n_low": low.sum(-1),
        "n_high": high.sum(-1),
        "n_int": n_int,
        "mean_int": mean_int,
        "ss_int": np.maximum(sq - n_int * mean_int**2, 0.0),
    }


def simulate_ratings(params: xr.Dataset, design: Design, spec: ModelSpec,
                     rng: np.random.Generator, sample: int = 0) -> np.ndarray:
    """Individual replicated ratings of one sample, in cell order (length = n_ratings).

    Gaussian ratings are unbounded (that is the model); censored ones are clipped to
    [1, 100]. Used for score-distribution posterior/prior predictive checks.
    """
    sel = np.array([sample])
    eta = linear_predictor(params, design, spec, sel)[0]
    n = design.cells["n"].to_numpy()
    if spec.family == "gaussian":
        taste, sd = _rater_noise(params, design, spec, sel, rng)
        centre, scale = eta + taste[0], np.broadcast_to(sd[0], eta.shape)
    else:
        centre, scale = eta, np.full(eta.shape, float(stacked(params, "sigma")[sample]))
    y = np.repeat(centre, n) + np.repeat(scale, n) * rng.standard_normal(int(n.sum()))
    if spec.family == "censored":
        y = np.clip(y, LOW, HIGH)
    return y


__all__ = [
    "cell_loglik",
    "draw_participant_effects",
    "linear_predictor",
    "n_samples",
    "new_rater_sd",
    "participant_loglik",
    "participant_posterior",
    "rating_noise_sd",
    "scalar_or_zero",
    "simulate_cells",
    "simulate_ratings",
    "stacked",
]
