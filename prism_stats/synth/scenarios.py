r"""Departures of the synthetic world from the rating model: scenario knobs and their truth.

The default generator rates with (almost) exactly the structure the main rating model
assumes: a residence country shifts every LLM equally, the noise is Gaussian with one
spread for everybody, every rater uses the slider the same way, and LLMs differ between
raters only through additive LLM x age / gender / ethnicity effects. Recovery on such
data is not evidence that the estimates hold on real data. Each knob of
:class:`Departures` adds one structure that real ratings may have and a model may lack;
all are off by default (the demo and the calibrated defaults are unchanged), and
:data:`SCENARIOS` names the combinations the recovery benchmark runs.

Knobs (latent points are points of the 1-100 scale before clipping)
-------------------------------------------------------------------
``llm_country``
    LLM x residence-country preferences. Residents of GBR and USA get their own
    deviation of every LLM, ``N(0, llm_country)`` centred over LLMs, plus
    ``sparse_flips`` LLMs shifted by +-2.5 ``llm_country`` (rank reversals of a few
    LLMs; the signs alternate).
``llm_region``
    Every other residence country shares the deviation of its UN region,
    ``N(0, llm_region)``, plus its own ``N(0, llm_region / 2)``; all centred over LLMs.
``llm_age_gender``
    A non-additive LLM x age x gender pattern: for three LLMs, ``+-llm_age_gender``
    times (+1 under 45, -1 from 45; 0 for "Prefer not to say") times (+1 men, -1 women;
    0 otherwise), centred over LLMs. No sum of LLM x age and LLM x gender effects can
    represent it.
``scale_use``
    Share of raters who do not use the slider as the model assumes. Each rater has a
    *style*: ``full`` (the model's), ``compressed`` (uses part of the slider: their
    deviations from the pivot are halved and shifted up by 3 points) or ``extreme``
    (deviations stretched by 1.6, so ratings pile at 1 and 100). The observed
    pre-slider value is ``pivot + shift + stretch * (latent - pivot)``, with the pivot
    the intercept. Older raters compress more: the compressed share of the
    non-``full`` raters rises from 0.35 (18-24) to 0.85 (65+).
``spread``
    Heteroscedastic raters: rater p's noise sd is ``sigma_noise * exp(spread z_p -
    spread^2)``, ``z_p ~ N(0, 1)`` (the mean noise variance is unchanged).
``pile``
    Probability that a rating snaps to the nearer end of the slider (1 below 50.5,
    100 otherwise).
``heap``
    Probability that a rating is rounded to the nearest multiple of 10 (clipped to
    1..100): heaping at round numbers.
``skew``
    Skewed UK/US rater pools: the eligible-pool weights of each age x sex x ethnicity
    cell are multiplied by ``exp(skew * (1[under 45] + 1[male] + 1[white]))``, so the
    UK and US samples hold more young white men than the census (the census truth is
    unchanged).

The truth
---------
The departure parameters are stored in the truth Dataset with the prefix ``dep_``
(``dep_llm_country`` (llm, country), ``dep_llm_age_gender`` (llm, age, gender),
``dep_style`` and ``dep_spread`` (participant), the style table ``dep_style_shift``,
``dep_style_stretch`` (rater_style), ``dep_style_share`` (age, rater_style) and the
scalars ``dep_pivot``, ``dep_spread_sd``, ``dep_pile``, ``dep_heap``), so they are never
mistaken for parameters of a fitted model. :func:`expected_observed_departures` gives the
expected observed rating of a *new* member of a census cell in closed form over the
styles, the rater spread (Gauss-Hermite), the text contribution and the Gaussian
participant effect and noise; rounding to integers and heaping are mean-preserving to
well under 0.01 points at these spreads and are left out (checked by simulation in the
tests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from prism_stats import vocab

from .util import SynthError

#: Rater styles and their (shift, stretch) of the deviation from the pivot.
STYLES: tuple[str, ...] = ("full", "compressed", "extreme")
STYLE_SHIFT: dict[str, float] = {"full": 0.0, "compressed": 3.0, "extreme": 0.0}
STYLE_STRETCH: dict[str, float] = {"full": 1.0, "compressed": 0.5, "extreme": 1.6}
#: Share of the non-``full`` raters who compress, by age band (older raters compress more).
COMPRESSED_SHARE: dict[str, float] = {
    "18-24": 0.35, "25-34": 0.45, "35-44": 0.55, "45-54": 0.65, "55-64": 0.75, "65+": 0.85,
    vocab.PREFER_NOT: 0.6,
}
#: LLMs carrying the non-additive LLM x age x gender pattern, with their signs.
AGE_GENDER_LLMS: dict[str, float] = {"gpt-4-turbo": 1.0, "llama-2-70b-chat": -1.0, "mistral-7b-instruct": 1.0}
#: The two post-stratification countries (own deviations under ``llm_country``).
MRP_COUNTRIES: tuple[str, ...] = ("GBR", "USA")
FLIP_SIZE = 2.5  # a flipped LLM moves by FLIP_SIZE * llm_country
_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(9)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class Departures:
    """Knobs of the departures from the rating model (see the module docstring).

    Every knob is 0 (off) by default; :meth:`active` says whether any is on.
    """

    llm_country: float = 0.0
    llm_region: float = 0.0
    sparse_flips: int = 0
    llm_age_gender: float = 0.0
    scale_use: float = 0.0
    spread: float = 0.0
    pile: float = 0.0
    heap: float = 0.0
    skew: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or (value < 0 and f.name != "skew"):
                raise SynthError(f"departures: {f.name} must be a finite number >= 0, got {value!r}")
        for name in ("scale_use", "pile", "heap"):
            if getattr(self, name) > 1:
                raise SynthError(f"departures: {name} is a probability, got {getattr(self, name)!r}")
        if int(self.sparse_flips) != self.sparse_flips or self.sparse_flips > len(vocab.LLMS) // 2:
            raise SynthError(f"departures: sparse_flips must be an integer 0..10, got {self.sparse_flips!r}")

    @property
    def active(self) -> bool:
        """Whether any knob is on."""
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def rating_active(self) -> bool:
        """Whether any knob changes the rating process (all but ``skew``)."""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "skew")

    def to_dict(self) -> dict[str, float]:
        """The knobs as a plain dict (JSON-ready)."""
        return {k: (int(v) if k == "sparse_flips" else float(v)) for k, v in asdict(self).items()}


#: Named scenarios of the recovery benchmark (``prism-stats synth --scenario NAME``).
SCENARIOS: dict[str, Departures] = {
    "model": Departures(),
    "country": Departures(llm_country=3.0, llm_region=1.5, sparse_flips=3),
    "country_mild": Departures(llm_country=1.5, llm_region=0.75, sparse_flips=3),
    "scale_use": Departures(scale_use=0.4, spread=0.35, pile=0.04, heap=0.25),
    "nonadditive": Departures(llm_age_gender=4.0),
    "skewed": Departures(skew=0.8),
    "all": Departures(llm_country=2.5, llm_region=1.25, sparse_flips=3, llm_age_gender=3.0,
                      scale_use=0.4, spread=0.35, pile=0.04, heap=0.25, skew=0.8),
}


def resolve(departures: Departures | str | Mapping | None) -> Departures:
    """A :class:`Departures` from a scenario name, a dict of knobs, or ``None`` (all off)."""
    if departures is None:
        return Departures()
    if isinstance(departures, Departures):
        return departures
    if isinstance(departures, str):
        if departures not in SCENARIOS:
            raise SynthError(f"unknown scenario {departures!r}; known: {', '.join(SCENARIOS)}")
        return SCENARIOS[departures]
    known = {f.name for f in fields(Departures)}
    unknown = set(departures) - known
    if unknown:
        raise SynthError(f"departures: unknown knob(s) {sorted(unknown)}; known: {sorted(known)}")
    return replace(Departures(), **dict(departures))


# --- drawing the departure parameters -----------------------------------------------------------


def _centre_rows(m: np.ndarray) -> np.ndarray:
    return m - m.mean(axis=-1, keepdims=True)


def _country_deviations(countries: list[str], dep: Departures, rng: np.random.Generator) -> np.ndarray:
    """(llm, country) latent deviations of each residence country's raters."""
    n_llm = len(vocab.LLM_SHORT_NAMES)
    regions = sorted({_region(c) for c in countries})
    region_dev = {r: rng.normal(0.0, dep.llm_region, n_llm) for r in regions}
    out = np.zeros((n_llm, len(countries)))
    for j, c in enumerate(countries):
        if c in MRP_COUNTRIES:
            dev = rng.normal(0.0, dep.llm_country, n_llm)
            flips = rng.choice(n_llm, size=int(dep.sparse_flips), replace=False)
            signs = np.where(np.arange(len(flips)) % 2 == 0, 1.0, -1.0)
            dev[flips] += FLIP_SIZE * dep.llm_country * signs * rng.choice([-1.0, 1.0])
        else:
            dev = region_dev[_region(c)] + rng.normal(0.0, dep.llm_region / 2, n_llm)
        out[:, j] = dev
    return _centre_rows(out.T).T


def _region(iso3: str) -> str:
    country = vocab.COUNTRY_BY_ISO3.get(iso3)
    return country.region if country is not None else vocab.PREFER_NOT


def _age_gender_pattern(size: float) -> np.ndarray:
    """(llm, age, gender) non-additive pattern, centred over LLMs."""
    age_sign = np.array([1.0 if a in ("18-24", "25-34", "35-44") else -1.0 if a != vocab.PREFER_NOT
                         else 0.0 for a in vocab.AGE_BANDS])
    gender_sign = np.array([{"Male": 1.0, "Female": -1.0}.get(g, 0.0) for g in vocab.GENDERS])
    out = np.zeros((len(vocab.LLM_SHORT_NAMES), len(age_sign), len(gender_sign)))
    for llm, sign in AGE_GENDER_LLMS.items():
        out[vocab.LLM_SHORT_NAMES.index(llm)] = size * sign * np.outer(age_sign, gender_sign)
    return out - out.mean(axis=0, keepdims=True)


def style_shares(scale_use: float) -> np.ndarray:
    """(age, rater_style) probabilities of the rater styles by age band."""
    rows = []
    for age in vocab.AGE_BANDS:
        c = COMPRESSED_SHARE[age]
        rows.append([1.0 - scale_use, scale_use * c, scale_use * (1.0 - c)])
    return np.array(rows)


def draw_departures(truth: xr.Dataset, participants: pd.DataFrame, departures: Departures,
                    rng: np.random.Generator) -> xr.Dataset:
    """The truth with the departure parameters of *departures* added (``dep_*`` variables).

    *participants* are the generator's participants (columns ``user_id``, ``age_band``);
    the truth's ``participant`` coordinate lists those with conversations. Returns the
    truth unchanged (apart from the ``departures`` attribute) when no rating knob is on.
    """
    out = truth.copy()
    out.attrs["departures"] = json.dumps(departures.to_dict())
    if not departures.rating_active:
        return out
    countries = [str(c) for c in truth["country"].values]
    people = [str(p) for p in truth["participant"].values]
    age_of = participants.set_index("user_id")["age_band"].astype(str)
    ages = age_of.reindex(people).to_numpy()
    pivot = float(np.asarray(truth["intercept"].values).ravel()[0])
    shares = style_shares(departures.scale_use)
    age_idx = np.array([vocab.AGE_BANDS.index(a) for a in ages])
    u = rng.random(len(people))
    style = np.minimum((u[:, None] > np.cumsum(shares[age_idx], axis=1)).sum(axis=1), len(STYLES) - 1)
    z = rng.standard_normal(len(people))
    spread = np.exp(departures.spread * z - departures.spread**2)
    dev = _country_deviations(countries, departures, rng)
    cd = ("chain", "draw")
    out["dep_llm_country"] = (cd + ("llm", "country"), dev[None, None])
    out["dep_llm_age_gender"] = (cd + ("llm", "age", "gender"),
                                 _age_gender_pattern(departures.llm_age_gender)[None, None])
    out = out.assign_coords(rater_style=list(STYLES))
    out["dep_style"] = (("participant",), style.astype(np.int64))
    out["dep_spread"] = (("participant",), spread)
    out["dep_style_shift"] = (("rater_style",), np.array([STYLE_SHIFT[s] for s in STYLES]))
    out["dep_style_stretch"] = (("rater_style",), np.array([STYLE_STRETCH[s] for s in STYLES]))
    out["dep_style_share"] = (("age", "rater_style"), shares)
    for name, value in (("dep_pivot", pivot), ("dep_spread_sd", departures.spread),
                        ("dep_pile", departures.pile), ("dep_heap", departures.heap)):
        out[name] = (cd, np.array([[float(value)]]))
    return out


def has_departures(truth: xr.Dataset) -> bool:
    """Whether *truth* carries departure parameters."""
    return "dep_llm_country" in truth


# --- the score process ----------------------------------------------------------------------------


def _scalar(tr: xr.Dataset, name: str) -> float:
    return float(np.asarray(tr[name].values).ravel()[0])


def latent_shift(tr: xr.Dataset, llm: np.ndarray, country: np.ndarray, age: np.ndarray,
                 gender: np.ndarray) -> np.ndarray:
    """Extra latent mean of ratings (codes into the truth's coordinates); 0 without departures."""
    if not has_departures(tr):
        return np.zeros(len(llm))
    lc = np.asarray(tr["dep_llm_country"].values).reshape(len(tr["llm"]), len(tr["country"]))
    lag = np.asarray(tr["dep_llm_age_gender"].values).reshape(
        len(tr["llm"]), len(tr["age"]), len(tr["gender"]))
    return lc[llm, country] + lag[llm, age, gender]


def noise_multiplier(tr: xr.Dataset, participant: np.ndarray) -> np.ndarray:
    """Per-rating multiplier of the noise sd (the rater's spread); 1 without departures."""
    if not has_departures(tr):
        return np.ones(len(participant))
    return np.asarray(tr["dep_spread"].values)[participant]


def rater_styles(tr: xr.Dataset, participant: np.ndarray) -> np.ndarray | None:
    """Style code of the raters of ratings (``None`` without departures)."""
    if not has_departures(tr):
        return None
    return np.asarray(tr["dep_style"].values)[participant]


def new_rater_traits(tr: xr.Dataset, ages: np.ndarray, rng: np.random.Generator
                     ) -> tuple[np.ndarray | None, np.ndarray]:
    """Style and noise multiplier of new raters of the given age bands (as the generator draws them)."""
    if not has_departures(tr):
        return None, np.ones(len(ages))
    shares = tr["dep_style_share"].sel(age=xr.DataArray(np.asarray(ages, dtype=str), dims="rater")).values
    style = (rng.random(len(ages))[:, None] > np.cumsum(shares, axis=1)).sum(axis=1)
    s = _scalar(tr, "dep_spread_sd")
    spread = np.exp(s * rng.standard_normal(len(ages)) - s * s)
    return np.minimum(style, len(STYLES) - 1), spread


def observe(latent: np.ndarray, style: np.ndarray | None, tr: xr.Dataset,
            rng: np.random.Generator) -> np.ndarray:
    """Observed slider values (floats on 1..100, integer-valued) of latent ratings.

    Without departures (``style`` None): ``round(clip(latent, 1, 100))``. With them: the
    rater's style (code per rating), then piles at the ends, clipping, rounding and
    heaping (module docstring). The slider-default value 50 is applied by the caller.
    """
    if style is None:
        return np.rint(np.clip(latent, 1, 100))
    pivot = _scalar(tr, "dep_pivot")
    pre = (pivot + np.asarray(tr["dep_style_shift"].values)[style]
           + np.asarray(tr["dep_style_stretch"].values)[style] * (latent - pivot))
    n = len(latent)
    snap = rng.random(n) < _scalar(tr, "dep_pile")
    pre = np.where(snap, np.where(pre < 50.5, 1.0, 100.0), pre)
    value = np.rint(np.clip(pre, 1, 100))
    heap = rng.random(n) < _scalar(tr, "dep_heap")
    return np.where(heap, np.clip(10.0 * np.rint(value / 10.0), 1, 100), value)


# --- the truth on the observed scale ----------------------------------------------------------------


def _clipped_normal_mean(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    a, b = (1.0 - mu) / sd, (100.0 - mu) / sd
    pa, pb = ndtr(a), ndtr(b)
    phi_a = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)
    phi_b = np.exp(-0.5 * b * b) / np.sqrt(2 * np.pi)
    return pa + 100.0 * (1 - pb) + mu * (pb - pa) + sd * (phi_a - phi_b)


def cell_latent_shift(tr: xr.Dataset, llms: list[str], iso3: str, ages: list[str],
                      sexes: list[str]) -> np.ndarray:
    """(cell, llm) extra latent mean of census cells of country *iso3* (0 without departures)."""
    if not has_departures(tr):
        return np.zeros((len(ages), len(llms)))
    lc = tr["dep_llm_country"].isel(chain=0, draw=0).sel(llm=llms)
    countries = [str(c) for c in tr["country"].values]
    country_part = lc.sel(country=iso3).values if iso3 in countries else np.zeros(len(llms))
    lag = tr["dep_llm_age_gender"].isel(chain=0, draw=0).sel(llm=llms)
    ag = lag.sel(age=xr.DataArray(ages, dims="cell"), gender=xr.DataArray(sexes, dims="cell"))
    return country_part[None, :] + ag.transpose("cell", "llm").values


def expected_observed_departures(eta: np.ndarray, ages: list[str], tr: xr.Dataset,
                                 sigma_participant: float, sigma_noise: float, pi_default: float,
                                 offsets: np.ndarray | None = None,
                                 weights: np.ndarray | None = None,
                                 veto: float | None = None) -> np.ndarray:
    """Expected observed score of a new rater under the departures, closed form.

    Parameters
    ----------
    eta : array (cell, ...)
        Latent means (departure shifts included), first axis the census cells.
    ages : list of str
        Age band of each cell (the style shares depend on it).
    tr : xarray.Dataset
        The truth, with ``dep_*`` variables.
    sigma_participant, sigma_noise, pi_default
        The truth's participant sd, noise sd and slider-default probability.
    offsets, weights
        The discrete text contribution (``text_offset`` / ``text_weight``), if any.
    veto : float, optional
        Instead of the mean, the probability that the observed rating is at most *veto*
        (rounding and heaping included: a value heaps down to a multiple of 10 from
        5 above it).

    Returns
    -------
    numpy.ndarray
        Same shape as *eta*: ``pi * 50 + (1 - pi) * E[pile(clip(pre))]`` averaged over
        styles (by age), rater spread (Gauss-Hermite) and text (or the veto probability).
    """
    eta = np.asarray(eta, dtype=float)
    if offsets is None:
        offsets, weights = np.zeros(1), np.ones(1)
    else:
        offsets, weights = compress_atoms(offsets, weights)
    pivot = _scalar(tr, "dep_pivot")
    pile = _scalar(tr, "dep_pile")
    heap = _scalar(tr, "dep_heap")
    s = _scalar(tr, "dep_spread_sd")
    shift = np.asarray(tr["dep_style_shift"].values)
    stretch = np.asarray(tr["dep_style_stretch"].values)
    share = tr["dep_style_share"].sel(age=xr.DataArray(list(ages), dims="cell")).values  # (cell, style)
    extra = (1,) * (eta.ndim - 1)
    out = np.zeros(eta.shape)
    for z, wz in zip(_GH_Z, _GH_W, strict=True):
        noise = sigma_noise * np.exp(s * z - s * s)
        for k in range(len(shift)):
            w_k = share[:, k].reshape(-1, *extra)
            if not np.any(w_k):
                continue
            mu = pivot + shift[k] + stretch[k] * (eta[..., None] + offsets - pivot)
            sd = stretch[k] * np.sqrt(sigma_participant**2 + noise**2)
            low_end = ndtr((50.5 - mu) / sd)
            if veto is None:
                clipped = _clipped_normal_mean(mu, sd)
                ends = low_end * 1.0 + (1.0 - low_end) * 100.0
            else:
                top = 10.0 * np.floor(veto / 10.0) + 4.5  # values that heap down to <= veto
                clipped = (1 - heap) * ndtr((veto + 0.5 - mu) / sd) + heap * ndtr((top - mu) / sd)
                ends = low_end
            value = ((1 - pile) * clipped + pile * ends) @ weights
            out += wz * w_k * value
    if veto is not None:
        return (1 - pi_default) * out
    return pi_default * 50.0 + (1 - pi_default) * out


def compress_atoms(offsets: np.ndarray, weights: np.ndarray, k: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A discrete distribution merged into at most *k* atoms of equal probability mass.

    Each new atom is the weighted mean of the old atoms it merges, so the mean is kept
    exactly and the expectation of a smooth function changes by about half its curvature
    times the within-bin variance (well under 0.01 points for the text contribution
    here, whose atoms enter a clipped normal of sd >= 15). It makes the truth under
    departures ~8 times cheaper to compute.
    """
    offsets = np.asarray(offsets, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if len(offsets) <= k:
        return offsets, weights
    order = np.argsort(offsets)
    o, w = offsets[order], weights[order]
    cum = np.cumsum(w) - 0.5 * w
    bins = np.minimum((cum / w.sum() * k).astype(int), k - 1)
    mass = np.bincount(bins, weights=w, minlength=k)
    keep = mass > 0
    mean = np.bincount(bins, weights=w * o, minlength=k)[keep] / mass[keep]
    return mean, mass[keep] / mass[keep].sum()


def skew_weights(table_columns: tuple[tuple[str, str], ...], ages: tuple[str, ...], skew: float) -> np.ndarray:
    """(age, column) multipliers of the UK/US eligible-pool weights under ``skew``."""
    young = np.array([1.0 if a in ("18-24", "25-34", "35-44") else 0.0 for a in ages])
    male = np.array([1.0 if sex == "Male" else 0.0 for _, sex in table_columns])
    white = np.array([1.0 if group == "White" else 0.0 for group, _ in table_columns])
    return np.exp(skew * (young[:, None] + male[None, :] + white[None, :]))


__all__ = [
    "SCENARIOS",
    "STYLES",
    "Departures",
    "cell_latent_shift",
    "draw_departures",
    "expected_observed_departures",
    "has_departures",
    "latent_shift",
    "noise_multiplier",
    "new_rater_traits",
    "observe",
    "rater_styles",
    "resolve",
    "skew_weights",
]
