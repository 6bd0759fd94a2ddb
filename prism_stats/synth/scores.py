"""The score process of the synthetic release, and the closed-form expected observed score.

:func:`scores` rates every response of a design under the true parameters (see the
:mod:`prism_stats.synth` docstring for the process); :func:`expected_observed` is the
expectation of an observed score given its latent mean, used for the true population
means (:mod:`prism_stats.synth.population`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from prism_stats import vocab

from .conversations import Design
from .scenarios import latent_shift, noise_multiplier, observe, rater_styles
from .util import SynthError

# --- closed-form expectations -------------------------------------------------------------------


def _clipped_normal_mean(
    mu: np.ndarray, sd: float | np.ndarray, lo: float = 1.0, hi: float = 100.0
) -> np.ndarray:
    """E[clip(Z, lo, hi)] for Z ~ N(mu, sd)."""
    a = (lo - mu) / sd
    b = (hi - mu) / sd
    pa, pb = ndtr(a), ndtr(b)
    phi_a = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)
    phi_b = np.exp(-0.5 * b * b) / np.sqrt(2 * np.pi)
    return lo * pa + hi * (1 - pb) + mu * (pb - pa) + sd * (phi_a - phi_b)


def expected_observed(
    eta: np.ndarray | float,
    sd: float | np.ndarray,
    pi_default: float | np.ndarray = 0.0,
    offsets: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Expected observed score of a response with latent mean *eta*.

    ``E[observed] = pi_default * 50 + (1 - pi_default) * E[clip(Z, 1, 100)]`` with
    ``Z ~ N(eta, sd)`` (rounding to integers ignored). With *offsets* / *weights* (a
    discrete distribution of an extra additive term, e.g. the synthetic truth's text
    contribution ``text_offset`` / ``text_weight``), ``Z = eta + offset + N(0, sd)``
    averaged over the offsets.

    Parameters
    ----------
    eta
        Latent means (any shape).
    sd
        Total sd of the normal part (for a new participant: sqrt(sigma_participant^2 +
        sigma^2)); broadcasts against *eta*.
    pi_default
        Probability that the slider is left at its start value 50.
    offsets, weights
        Optional discrete additive term (weights sum to 1).
    """
    eta = np.asarray(eta, dtype=float)
    if offsets is None:
        clipped = _clipped_normal_mean(eta, sd)
    else:
        w = np.asarray(weights, dtype=float)
        sd_b = np.asarray(sd, dtype=float)[..., None] if np.ndim(sd) else sd
        clipped = _clipped_normal_mean(eta[..., None] + np.asarray(offsets, dtype=float), sd_b) @ w
    return pi_default * 50.0 + (1 - pi_default) * clipped


# --- the score process --------------------------------------------------------------------------


def _codes(values, levels: list[str], what: str) -> np.ndarray:
    index = pd.Index(levels)
    codes = index.get_indexer(pd.Index(values))
    if (codes < 0).any():
        bad = sorted(set(np.asarray(values, dtype=object)[codes < 0]))
        raise SynthError(f"truth has no {what} level for {bad[:5]}")
    return codes


def scores(
    design: Design, participants: pd.DataFrame, truth: xr.Dataset, rng: np.random.Generator,
    offset: np.ndarray | None = None,
) -> pd.DataFrame:
    """Run the score process on a design (see the :mod:`prism_stats.synth` docstring).

    Opening turns are scored first; the highest-scored response of each opener is
    chosen (ties at random) and its LLM answers the later turns twice (A/B), whose
    higher score is chosen (ties at random; identical A/B texts are both chosen).

    Parameters
    ----------
    design
        From :func:`~prism_stats.synth.conversations.make_design`.
    participants
        The participants the design was built for.
    truth
        Parameters (``chain`` = ``draw`` = 1) with the names and dims of
        ``ARCHITECTURE.md``; ``text_beta`` / ``text_mean`` switch the text-feature
        contributions on, and then ``sigma_noise`` is the normal residual sd (else
        ``sigma``).
    rng
        The random generator of this stage.
    offset
        Optional extra latent shift per response (the stated-vs-revealed link of
        :mod:`~prism_stats.synth.stated`; ``None``: none).

    Returns
    -------
    pandas.DataFrame
        Aligned with ``design.responses``: ``llm`` (code into ``vocab.LLMS``, resolved
        for later turns), ``latent``, ``text_effect``, ``score`` (1-100) and ``chosen``.
    """
    if truth.sizes.get("chain", 1) != 1 or truth.sizes.get("draw", 1) != 1:
        raise SynthError("scores: the truth must have exactly one chain and one draw")
    tr = truth.isel(chain=0, draw=0) if "chain" in truth.dims else truth
    r = design.responses
    n = len(r)
    p_row = r["participant"].to_numpy()
    people = participants.iloc[p_row]
    part = _codes(
        people["user_id"].to_numpy(), list(map(str, tr["participant"].values)), "participant"
    )
    country = _codes(
        people["reside_iso"].to_numpy(), list(map(str, tr["country"].values)), "country"
    )
    age = _codes(people["age_band"].to_numpy(), list(map(str, tr["age"].values)), "age")
    gender = _codes(people["gender"].to_numpy(), list(map(str, tr["gender"].values)), "gender")
    eth = _codes(
        people["ethnicity_group"].to_numpy(), list(map(str, tr["ethnicity"].values)), "ethnicity"
    )
    conv_type = design.conversations["conversation_type"].to_numpy()[r["conversation"].to_numpy()]
    ctype = _codes(conv_type, list(map(str, tr["conversation_type"].values)), "conversation_type")
    llm_truth = list(map(str, tr["llm"].values))
    if llm_truth != list(vocab.LLM_SHORT_NAMES):
        raise SynthError(
            "scores: the truth's llm coordinate must be vocab.LLM_SHORT_NAMES in order"
        )

    def val(name: str) -> np.ndarray:
        return np.asarray(tr[name].values, dtype=float)

    later = r["turn"].to_numpy() > 0
    base = (
        val("intercept")
        + val("participant_effect")[part]
        + val("country_effect")[country]
        + val("ctype_effect")[ctype]
        + val("turn_effect") * later
        + val("age_effect")[age]
        + val("gender_effect")[gender]
        + val("ethnicity_effect")[eth]
    )
    if offset is not None:  # planted stated-vs-revealed link (off by default)
        base = base + np.asarray(offset, dtype=float)
    if "text_beta" in tr:
        feats = r[list(map(str, tr["text_feature"].values))].to_numpy(dtype=float)
        text = (feats - val("text_mean")) @ val("text_beta")
        resid_sd = float(val("sigma_noise"))
    else:
        text = np.zeros(n)
        resid_sd = float(val("sigma"))
    pi = float(val("pi_default")) if "pi_default" in tr else 0.0
    noise = rng.normal(0.0, resid_sd, n) * noise_multiplier(tr, part)
    slider_default = rng.random(n) < pi
    jitter = rng.random(n)

    llm = r["llm"].to_numpy().copy()
    latent = np.full(n, np.nan)
    score = np.zeros(n, dtype=int)
    chosen = np.zeros(n, dtype=bool)

    def rate(rows: np.ndarray) -> None:
        m = llm[rows]
        lat = (
            base[rows]
            + val("llm_effect")[m]
            + val("llm_age")[m, age[rows]]
            + val("llm_gender")[m, gender[rows]]
            + val("llm_ethnicity")[m, eth[rows]]
            + text[rows]
            + noise[rows]
            + latent_shift(tr, m, country[rows], age[rows], gender[rows])
        )
        latent[rows] = lat
        observed = observe(lat, rater_styles(tr, part[rows]), tr, rng)
        score[rows] = np.where(slider_default[rows], 50, observed).astype(int)

    inter = r["interaction"].to_numpy()
    opening = np.flatnonzero(~later)
    rate(opening)
    # The best response of each opener (ties at random) is chosen ...
    order = opening[np.lexsort((jitter[opening], score[opening], inter[opening]))]
    last = np.r_[inter[order][1:] != inter[order][:-1], True]
    winners = order[last]
    chosen[winners] = True
    # ... and its LLM answers every later turn of the conversation.
    winner_llm = np.full(len(design.conversations), -1)
    winner_llm[r["conversation"].to_numpy()[winners]] = llm[winners]
    later_rows = np.flatnonzero(later)
    llm[later_rows] = winner_llm[r["conversation"].to_numpy()[later_rows]]
    rate(later_rows)
    a = later_rows[r["within_turn"].to_numpy()[later_rows] == 0]
    b = a + 1
    a_wins = (score[a] > score[b]) | ((score[a] == score[b]) & (jitter[a] < 0.5))
    identical = r["identical_ab"].to_numpy()[a]
    chosen[a] = a_wins | identical
    chosen[b] = ~a_wins | identical
    return pd.DataFrame(
        {"llm": llm, "latent": latent, "text_effect": text, "score": score, "chosen": chosen},
        index=r.index,
    )
