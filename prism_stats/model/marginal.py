r"""Exact marginal likelihood of a rater's ratings with their random effects integrated out.

For participant p, a rating i of LLM m(i) in an observation cell with mean ``mu_i``::

    y_i = mu_i + u_p + v_{p m(i)} + e_i,
    u_p ~ N(0, tau^2)          participant effect (leniency)
    v_pm ~ N(0, omega^2)       rater x LLM taste (0 when the spec has no ``rater_llm``)
    e_i ~ N(0, s_p^2)          noise; s_p = sigma, or sigma * exp(rater_scale_p)

so a rater's ratings are jointly normal with a block covariance (one block per LLM they
rated, ``s_p^2 I + omega^2 11'``) plus ``tau^2 11'``. Its log-density needs, per block b,
only the count ``N_b``, the residual sum ``R_b = sum(y - mu)`` and the residual sum of
squares ``Q_b = sum((y - mu)^2)`` (within-cell sums of squares included), and follows from
Woodbury's identity::

    a_b = N_b / (s^2 + N_b omega^2)        g_b = R_b / (s^2 + N_b omega^2)
    A_p = sum_b a_b                        G_p = sum_b g_b
    log p(y_p) = -1/2 [ N_p log(2 pi) + sum_b (N_b log s^2 + log(1 + N_b omega^2 / s^2))
                        + log(1 + tau^2 A_p)
                        + sum_b (Q_b - omega^2 R_b^2 / (s^2 + N_b omega^2)) / s^2
                        - G_p^2 / (1 / tau^2 + A_p) ]

and the participant effect's conditional posterior is ``u_p | y ~ N(G_p / (1/tau^2 + A_p),
1 / (1/tau^2 + A_p))`` (``v`` integrated out). The same function serves the PyMC model
(PyTensor tensors, summed into a ``Potential``), the per-participant log-likelihood for
PSIS-LOO and the participant redraws (NumPy, with a leading sample dimension), so the
three cannot drift apart.

With ``omega = 0`` each observation cell can be its own block (the blocks only need to
nest in participants), which is what the model does when it has no ``rater_llm`` term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


def rater_marginal(N: Any, R: Any, Q: Any, s2: Any, omega2: Any, tau2: Any,
                   to_participant: Callable[[Any], Any], log: Callable[[Any], Any],
                   log1p: Callable[[Any], Any]) -> tuple[Any, Any, Any]:
    """Per-participant marginal log-likelihood and the sufficient terms of ``u_p``.

    Parameters
    ----------
    N, R, Q : arrays over blocks
        Ratings, residual sum and residual sum of squares per block (a block is a
        participant x LLM pair, or any finer partition when ``omega2`` is 0).
    s2 : array over blocks or scalar
        Noise variance of the block's rater.
    omega2, tau2 : scalar (or broadcastable)
        Rater x LLM taste variance and participant-effect variance.
    to_participant : callable
        Sums a block array into a participant array.
    log, log1p : callable
        The backend's elementwise functions (``numpy`` or ``pytensor.tensor``).

    Returns
    -------
    loglik, A, G
        Arrays over participants: the log-likelihood and the terms of the participant
        effect's conditional posterior (precision ``1/tau2 + A``, mean ``G / (1/tau2 + A)``).
    """
    denom = s2 + N * omega2
    a = N / denom
    g = R / denom
    A = to_participant(a)
    G = to_participant(g)
    quad = to_participant((Q - omega2 * R**2 / denom) / s2) - G**2 / (1.0 / tau2 + A)
    logdet = to_participant(N * log(s2) + log1p(N * omega2 / s2)) + log1p(tau2 * A)
    loglik = -0.5 * (to_participant(N) * LOG_2PI + logdet + quad)
    return loglik, A, G


__all__ = ["LOG_2PI", "rater_marginal"]
