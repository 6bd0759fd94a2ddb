"""Synthetic conversation design: who talks to which LLMs, how often and for how long.

See :func:`make_design`. The design fixes everything about the rating structure that
does not depend on the scores: conversations per participant and their types, turns,
the opening-turn model sets (2-4 LLMs without replacement), the A/B slots of later
turns, timings, and the text features of every response. Which LLM answers the later
turns (the opening winner) is decided by the score process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import tables as T
from .text import FeatureDistribution, default_feature_distribution, draw_features
from .util import SynthError, allocate

#: Last conversation end time of the release (codebook).
CONVERSATION_END = datetime(2023, 12, 22, 8, 4, 46)

# Conversation-type process (tuned so that at n = 1,500 the type shares are
# 38.9/30.7/30.4%, 89% of participants have all three types and 71% have at least two
# of each, as in the release): a "compliant" participant with >= 6 conversations does
# two of each type and spends extra conversations mostly on unguided ones; everybody
# else picks each conversation's type with weights favouring unguided, boosted for
# types not yet done.
_COMPLIANT = 0.845
_TYPE_WEIGHTS = np.array([0.6, 0.205, 0.195])
_UNUSED_BOOST = 1.8
_EXTRA_WEIGHTS = np.array([0.8, 0.1, 0.1])
# Turns: 2 + NegBin(mean = 1.40 x participant propensity ~ Gamma(2, 1/2), size 10);
# most participants stop at the instructed maximum of 10 turns; one conversation in
# ~8,000 is a 22-turn marathon (release range 2-22, mean 3.39, sd 1.58).
_TURN_MEAN_EXTRA = 1.40
_TURN_PROPENSITY_SHAPE = 2.0
_TURN_SIZE = 10.0
_TURN_STOP_AT_10 = 0.85
_MARATHON = 1 / 8011


@dataclass
class Design:
    """The rating structure of a synthetic release.

    Attributes
    ----------
    conversations
        One row per conversation, in release order (``conversation`` = position):
        ``participant`` (row of the participants table), ``conversation_type``,
        ``n_turns``, ``n_shown`` (opening LLMs), ``seq`` (order within the
        participant), ``generated_datetime``, ``timing_duration_s``.
    responses
        The tidy design: one row per response to be scored, ordered by conversation,
        turn and ``within_turn``: ``conversation``, ``participant``, ``turn``,
        ``within_turn``, ``llm`` (code into ``vocab.LLMS``; -1 at later turns, where
        the opening winner answers), ``n_shown``, ``interaction`` (running index of
        (conversation, turn)), ``identical_ab`` (later turns whose A and B texts are
        identical) and the text features (``text.TEXT_FEATURES``).
    """

    conversations: pd.DataFrame
    responses: pd.DataFrame


@lru_cache(maxsize=1)
def opening_target_shares() -> np.ndarray:
    """Expected share of opening appearances per LLM (``vocab.LLMS`` order).

    The per-model counts are not published; a monotone power transform of the
    utterance counts is fitted to the published minimum (808), maximum (1,567) and
    mean (1,430.9) of the opening appearances (its sd, 178, is close to the published
    171).
    """
    u = np.asarray(T.LLM_UTTERANCES, dtype=float)
    s = (u - u.min()) / (u.max() - u.min())
    lo, hi = 808.0, 1567.0
    lo_g, hi_g = 0.01, 5.0  # mean of lo + (hi - lo) s**g decreases in g: bisect
    for _ in range(80):
        gamma = (lo_g + hi_g) / 2
        if (lo + (hi - lo) * s**gamma).mean() > T.OPENING_APPEARANCES_MEAN:
            lo_g = gamma
        else:
            hi_g = gamma
    a = lo + (hi - lo) * s**gamma
    return a / a.sum()


@lru_cache(maxsize=1)
def opening_weights() -> np.ndarray:
    """Sampling weights whose without-replacement inclusion rates hit the target shares.

    Successive sampling without replacement flattens inclusion rates relative to the
    weights; a fixed-point iteration on a fixed-seed simulation of the 4/3/2 opener mix
    corrects for it.
    """
    target = opening_target_shares()
    rng = np.random.default_rng(20240422)
    sizes = np.repeat([2, 3, 4], [T.OPENING_SIZE_COUNTS[k] * 3 for k in (2, 3, 4)])
    w = target.copy()
    for _ in range(12):
        chosen = _top_k(np.log(w), sizes, rng)
        counts = np.bincount(chosen[chosen >= 0], minlength=len(w)).astype(float)
        achieved = counts / counts.sum()
        w = w * (target / achieved) ** 0.8
        w /= w.sum()
    return w


def _top_k(log_w: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gumbel-top-k: rows of k LLM codes (padded with -1) sampled without replacement."""
    keys = log_w[None, :] + rng.gumbel(size=(len(sizes), len(log_w)))
    order = np.argsort(-keys, axis=1)[:, :4]
    mask = np.arange(4)[None, :] < sizes[:, None]
    return np.where(mask, order, -1)


def _conversation_types(n_conv: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Type codes (0 unguided, 1 values, 2 controversy) of each participant's conversations."""
    out = []
    for k in n_conv:
        if k >= 6 and rng.random() < _COMPLIANT:
            extra = rng.choice(3, size=k - 6, p=_EXTRA_WEIGHTS)
            types = np.concatenate([np.repeat([0, 1, 2], 2), extra])
            rng.shuffle(types)
        else:
            counts = np.zeros(3)
            types = np.empty(k, dtype=int)
            for j in range(k):
                w = _TYPE_WEIGHTS * (1 + _UNUSED_BOOST * (counts == 0))
                types[j] = rng.choice(3, p=w / w.sum())
                counts[types[j]] += 1
        out.append(types.astype(int))
    return out


def _turns(participant: np.ndarray, n_people: int, rng: np.random.Generator) -> np.ndarray:
    """Turns of each conversation (participants differ in their propensity to go on)."""
    propensity = rng.gamma(_TURN_PROPENSITY_SHAPE, 1 / _TURN_PROPENSITY_SHAPE, n_people)[
        participant
    ]
    lam = _TURN_MEAN_EXTRA * propensity
    turns = 2 + rng.negative_binomial(_TURN_SIZE, _TURN_SIZE / (_TURN_SIZE + lam))
    long = turns > 10
    turns = np.where(long & (rng.random(len(turns)) < _TURN_STOP_AT_10), 10, np.minimum(turns, 13))
    return np.where(rng.random(len(turns)) < _MARATHON, 22, turns)


def make_design(
    participants: pd.DataFrame,
    rng: np.random.Generator,
    *,
    features: FeatureDistribution | None = None,
) -> Design:
    """The rating design for *participants* (see :class:`Design`).

    Parameters
    ----------
    participants
        Output of :func:`~prism_stats.synth.people.make_participants` (uses
        ``num_completed_conversations`` and ``generated_datetime``).
    rng
        The random generator of this stage.
    features
        Distribution of the response text features (default: the calibrated one).

    Returns
    -------
    Design
    """
    features = features or default_feature_distribution()
    n_conv = participants["num_completed_conversations"].to_numpy(dtype=int)
    if (n_conv < 0).any() or (n_conv > 50).any():
        raise SynthError("design: num_completed_conversations must lie in 0..50")
    people = np.flatnonzero(n_conv > 0)
    if len(people) == 0:
        raise SynthError("design: no participant has conversations")
    types = _conversation_types(n_conv[people], rng)
    participant = np.repeat(people, n_conv[people])
    ctype = np.concatenate(types)
    seq = np.concatenate([np.arange(k) for k in n_conv[people]])
    n_turns = _turns(participant, len(participants), rng)

    # Timings: per-turn effort plus reading/setup; a few conversations span sessions.
    per_turn = rng.lognormal(np.log(135.0), 0.45, (len(participant), 1))[:, 0]
    duration = 40.0 + n_turns * per_turn
    slow = rng.random(len(duration)) < 0.005
    duration[slow] *= rng.uniform(2, 12, int(slow.sum()))
    duration = np.clip(np.round(duration, 1), 73.5, 17145.8)
    gaps = rng.exponential(45.0, len(duration))
    survey_end = participants["generated_datetime"].to_numpy()[participant]
    # Cumulative end time within each participant (conversations follow the survey).
    elapsed = pd.Series(duration + gaps).groupby(participant).cumsum().to_numpy()
    ends = np.array(
        [
            min(s + timedelta(seconds=float(e)), CONVERSATION_END)
            for s, e in zip(survey_end, elapsed, strict=True)
        ],
        dtype=object,
    )
    order = np.lexsort((seq, participant, ends.astype("datetime64[s]")))
    conversations = pd.DataFrame(
        {
            "participant": participant[order],
            "conversation_type": np.array(vocab.CONVERSATION_TYPES, dtype=object)[ctype[order]],
            "n_turns": n_turns[order],
            "seq": seq[order],
            "generated_datetime": ends[order],
            "timing_duration_s": duration[order],
        }
    )
    n_c = len(conversations)
    sizes = np.repeat([2, 3, 4], allocate([T.OPENING_SIZE_COUNTS[k] for k in (2, 3, 4)], n_c, rng))
    rng.shuffle(sizes)
    conversations["n_shown"] = sizes
    conversations.index.name = "conversation"

    # Opening turn: k LLMs without replacement; within_turn_id is a random answer id.
    sets = _top_k(np.log(opening_weights()), sizes, rng)
    answer_ids = np.argsort(
        rng.random((n_c, 4)) + (np.arange(4)[None, :] >= sizes[:, None]), axis=1
    )
    open_conv = np.repeat(np.arange(n_c), sizes)
    slot = np.concatenate([np.arange(k) for k in sizes])
    opening = pd.DataFrame(
        {
            "conversation": open_conv,
            "turn": 0,
            "within_turn": answer_ids[open_conv, slot],
            "llm": sets[open_conv, slot],
            "n_shown": sizes[open_conv],
        }
    )
    # Later turns: two responses (A/B) of the opening winner.
    later_turns = conversations["n_turns"].to_numpy() - 1
    lat_conv = np.repeat(np.arange(n_c), later_turns * 2)
    lat_turn = (
        np.concatenate([np.repeat(np.arange(1, t + 1), 2) for t in later_turns])
        if n_c
        else np.array([], int)
    )
    later = pd.DataFrame(
        {
            "conversation": lat_conv,
            "turn": lat_turn,
            "within_turn": np.tile([0, 1], int(later_turns.sum())),
            "llm": -1,
            "n_shown": 2,
        }
    )
    responses = pd.concat([opening, later], ignore_index=True)
    responses = responses.sort_values(["conversation", "turn", "within_turn"], ignore_index=True)
    responses.insert(
        1, "participant", conversations["participant"].to_numpy()[responses["conversation"]]
    )
    key = responses["conversation"].to_numpy() * 1000 + responses["turn"].to_numpy()
    responses["interaction"] = np.unique(key, return_inverse=True)[1]

    # Text features, independent of everything; identical A/B pairs share one draw.
    feats = draw_features(len(responses), features, rng)
    is_later = responses["turn"].to_numpy() > 0
    n_later_inter = int(is_later.sum() // 2)
    identical_inter = rng.random(n_later_inter) < T.IDENTICAL_AB_SHARE
    identical = np.zeros(len(responses), dtype=bool)
    identical[np.flatnonzero(is_later)] = np.repeat(identical_inter, 2)
    b_rows = np.flatnonzero(identical & (responses["within_turn"].to_numpy() == 1))
    responses["identical_ab"] = identical
    for col in feats.columns:
        values = feats[col].to_numpy().copy()
        values[b_rows] = values[b_rows - 1]
        responses[col] = values
    return Design(conversations=conversations, responses=responses)
