"""Synthetic truth for stated versus revealed preferences (off unless asked for).

By default the synthetic release's attribute answers are independent of everything (the
calibrated defaults). With ``generate(..., stated_link=True)`` (or a :class:`StatedLink`)
the performance-attribute answers of each conversation are drawn first, from the same
published slider distributions (``tables.PERFORMANCE_MOMENTS``, N/A as before),
and they move the opening scores of that conversation, with a strength that depends on
how much the participant said the attribute matters. For conversation c of participant
p, with attribute answers standardised by the published moments
(``x_ca = (perf_ca - mean_a) / sd_a``; N/A -> 0) and stated importance likewise
(``s_pa``, ``tables.STATED_PREF_MOMENTS``)::

    beta_pa = reward_a + dependence_a * s_pa + slope_sd * e_pa      e_pa ~ N(0, 1)
    delta_c = sum_a beta_pa * x_ca

and ``delta_c`` is added to the latent score of **every opening response of c** (later
turns are untouched). A common shift keeps which response is top-rated (up to ties at
the clipped ends and the ~3% slider-default answers, which stay at 50), so the answers
describe the top-rated response as in the release. The known
coefficients are ``reward`` and ``dependence`` (score points per standard deviation, on
the latent scale), which :mod:`prism_stats.rankings.stated_model` estimates with its
censored likelihood. On the observed 1-100 scale the ceiling shrinks slopes: the truth
records ``observed_scale``, the least-squares slope of the observed top opening score on
``delta_c`` (what a plain Gaussian fit of the observed scores would roughly recover,
``dependence * observed_scale``). The shifts add variance to the opening scores, which is why the link is
off by default (the default release stays calibrated to the published moments).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import tables as T
from .release import attribute_dicts

ATTRIBUTES: tuple[str, ...] = vocab.ATTRIBUTE_KEYS


@dataclass(frozen=True)
class StatedLink:
    """Coefficients of the planted link (score points per standard deviation).

    Attributes
    ----------
    reward : dict
        ``reward_a``: the score a one-sd better rating on a is worth to a participant
        of average stated importance.
    dependence : dict
        ``dependence_a``: how much that reward grows per sd of stated importance.
    slope_sd : float
        Participant-level scatter of the slopes around their mean.
    """

    reward: dict[str, float] = field(default_factory=lambda: {a: 2.0 for a in ATTRIBUTES})
    dependence: dict[str, float] = field(default_factory=lambda: {
        "values": 0.0, "fluency": 0.0, "factuality": 3.0, "safety": -2.0,
        "diversity": 0.0, "creativity": 0.0, "helpfulness": 2.0})
    slope_sd: float = 1.0

    def vector(self, name: str) -> np.ndarray:
        values = getattr(self, name)
        unknown = sorted(set(values) - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f"stated link: unknown attribute(s) {unknown}")
        return np.array([float(values.get(a, 0.0)) for a in ATTRIBUTES])


@dataclass
class PlantedLink:
    """What the link adds to a release: the answers, the score shifts and the truth."""

    performance: list[dict]
    offset: np.ndarray
    delta: np.ndarray
    truth: dict


def _standardise(values: np.ndarray, moments: dict[str, tuple[float, float]]) -> np.ndarray:
    mean = np.array([moments[a][0] for a in ATTRIBUTES])
    sd = np.array([moments[a][1] for a in ATTRIBUTES])
    return (values - mean) / sd


def plant_stated_link(people: pd.DataFrame, conversations: pd.DataFrame, responses: pd.DataFrame,
                      link: StatedLink, rng: np.random.Generator) -> PlantedLink:
    """Draw the performance answers and the opening-score shifts of the link.

    Parameters
    ----------
    people
        ``make_participants`` output (``stated_prefs`` dicts).
    conversations, responses
        The design (``participant`` row per conversation; ``conversation``, ``turn`` per
        response).
    """
    n_conv = len(conversations)
    performance = attribute_dicts(n_conv, T.PERFORMANCE_MOMENTS, T.PERFORMANCE_ANY_NULL, rng)
    perf = np.array([[np.nan if d[a] is None else d[a] for a in ATTRIBUTES] for d in performance],
                    dtype=float)
    x = np.nan_to_num(_standardise(perf, T.PERFORMANCE_MOMENTS), nan=0.0)
    stated = np.array([[d[a] for a in ATTRIBUTES] for d in people["stated_prefs"]], dtype=float)
    s = _standardise(stated, T.STATED_PREF_MOMENTS)
    slopes = (link.vector("reward") + link.vector("dependence") * s
              + link.slope_sd * rng.standard_normal(s.shape))  # (people, A)
    owner = conversations["participant"].to_numpy()
    delta = (x * slopes[owner]).sum(axis=1)
    conv = responses["conversation"].to_numpy()
    offset = np.where(responses["turn"].to_numpy() == 0, delta[conv], 0.0)
    truth = {**asdict(link), "attribute_set": "performance",
             "applies_to": "latent score of every opening response of the conversation",
             "standardisation": {"performance": {a: list(T.PERFORMANCE_MOMENTS[a]) for a in ATTRIBUTES},
                                 "stated": {a: list(T.STATED_PREF_MOMENTS[a]) for a in ATTRIBUTES}},
             "units": "score points per standard deviation (published moments)"}
    return PlantedLink(performance=performance, offset=offset, delta=delta, truth=truth)


def observed_scale(planted: PlantedLink, responses: pd.DataFrame, score: np.ndarray) -> float:
    """Least-squares slope of the observed top opening score on the planted shift.

    The factor by which the bounded 1-100 scale shrinks the latent coefficients.
    """
    opening = responses["turn"].to_numpy() == 0
    top = pd.Series(score[opening]).groupby(responses["conversation"].to_numpy()[opening]).max()
    d = planted.delta[top.index.to_numpy()]
    d = d - d.mean()
    return float((d * (top.to_numpy() - top.mean())).sum() / (d * d).sum())
