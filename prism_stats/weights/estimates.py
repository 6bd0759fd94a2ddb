"""Weighted per-LLM estimates with participant-clustered standard errors.

:func:`weighted_llm_estimates` gives, per LLM, the weighted mean rating, chosen share
and veto rate, with standard errors by linearisation (calibration residuals for raked
weights) or a participant bootstrap that re-weights every replicate (see
:mod:`prism_stats.weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from prism_stats import vocab
from prism_stats.vocab import VETO_THRESHOLD

from .margins import WeightingError
from .raking import WeightingResult

# --- weighted per-LLM estimates -------------------------------------------------------------


STATISTICS: tuple[str, ...] = ("mean_rating", "chosen_share", "veto_rate")


def _rating_matrices(
    ratings: pd.DataFrame, participants: pd.Index, llms: Sequence[str], veto_threshold: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per statistic: (A, B) participant x llm matrices of outcome sums and counts."""
    pid = pd.Categorical(ratings["participant"].astype(str), categories=participants.astype(str))
    lid = pd.Categorical(ratings["llm"].astype(str), categories=list(llms))
    rows, cols = pid.codes, lid.codes
    shape = (len(participants), len(llms))
    count = np.zeros(shape)
    np.add.at(count, (rows, cols), 1.0)
    outcomes = {
        "mean_rating": ratings["score"].to_numpy(dtype=float),
        "chosen_share": ratings["chosen"].to_numpy(dtype=float),
        "veto_rate": (ratings["score"].to_numpy(dtype=float) <= veto_threshold).astype(float),
    }
    out = {}
    for name, y in outcomes.items():
        a = np.zeros(shape)
        np.add.at(a, (rows, cols), y)
        out[name] = (a, count)
    return out


def _ratio(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    den = w @ b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (w @ a) / den, np.nan)


def _linearised_se(
    w: np.ndarray, a: np.ndarray, b: np.ndarray, est: np.ndarray, x: np.ndarray | None
) -> np.ndarray:
    """Taylor-linearised SE of the ratio estimators, participants as PSUs."""
    n = len(w)
    if n < 2:
        return np.full(b.shape[1], np.nan)
    den = w @ b
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (a - b * np.nan_to_num(est)) / np.where(den > 0, den, np.nan)
    u = np.nan_to_num(u)
    if x is not None:
        # Calibration: residuals of u on the calibration variables (weighted LS).
        sw = np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(x * sw, u * sw, rcond=None)
        u = u - x @ coef
    z = w[:, None] * u
    var = n / (n - 1) * np.square(z - z.mean(axis=0)).sum(axis=0)
    return np.where(den > 0, np.sqrt(var), np.nan)


def weighted_llm_estimates(
    ratings: pd.DataFrame,
    weights: WeightingResult | pd.Series,
    *,
    turn: int | None = 0,
    se: Literal["linearisation", "bootstrap", "none"] = "linearisation",
    n_boot: int = 500,
    rng: np.random.Generator | int | None = None,
    veto_threshold: int = VETO_THRESHOLD,
    llms: Sequence[str] = vocab.LLM_SHORT_NAMES,
) -> pd.DataFrame:
    """Weighted per-LLM mean rating, chosen share and veto rate, with clustered SEs.

    Parameters
    ----------
    ratings
        Tidy ratings (``PrismData.ratings``): ``participant``, ``llm``, ``turn``,
        ``score``, ``chosen``.
    weights
        A :class:`WeightingResult` (weights plus what the calibration-aware SEs and
        the re-weighting bootstrap need) or a Series of participant weights (treated
        as fixed). Ratings by participants without a weight are left out (they are
        not in the weighted sample; counted in ``attrs["n_ratings_unweighted"]``).
    turn
        Conversation turn to use (0: opening turn, as in the original); ``None``: all.
    se
        ``"linearisation"`` (default), ``"bootstrap"`` (participant bootstrap, needs
        *rng*) or ``"none"``.
    n_boot, rng
        Bootstrap replicates and the random generator (or seed).
    veto_threshold
        Scores ``<=`` this are vetoes (10, as in the original).
    llms
        LLMs (rows) in output order.

    Returns
    -------
    pandas.DataFrame
        One row per LLM (index ``llm``): ``n_ratings``, ``n_participants``,
        ``mean_rating``, ``mean_rating_se``, ``chosen_share``, ``chosen_share_se``,
        ``veto_rate``, ``veto_rate_se``. ``attrs`` records the settings.
    """
    needed = {"participant", "llm", "score", "chosen"} | ({"turn"} if turn is not None else set())
    missing = needed - set(ratings.columns)
    if missing:
        raise WeightingError(f"ratings lack columns {sorted(missing)}")
    result = weights if isinstance(weights, WeightingResult) else None
    w_series = result.weights if result is not None else weights
    if not isinstance(w_series, pd.Series):
        raise WeightingError("weights must be a WeightingResult or a Series indexed by participant")
    w_series = w_series.astype(float)
    if w_series.index.has_duplicates or not np.isfinite(w_series).all() or (w_series < 0).any():
        raise WeightingError("weights must be unique per participant, finite and >= 0")
    r = ratings if turn is None else ratings[ratings["turn"] == turn]
    unknown_llm = sorted(set(r["llm"].astype(str)) - set(llms))
    if unknown_llm:
        raise WeightingError(f"ratings name LLMs outside the list: {unknown_llm}")
    in_sample = r["participant"].astype(str).isin(w_series.index.astype(str))
    n_unweighted = int((~in_sample).sum())
    r = r[in_sample.to_numpy()]
    if r["score"].isna().any() or r["chosen"].isna().any():
        raise WeightingError("ratings have missing score or chosen values")
    index = pd.Index(w_series.index.astype(str))
    mats = _rating_matrices(r, index, llms, veto_threshold)
    w = w_series.to_numpy()

    out = pd.DataFrame(index=pd.Index(list(llms), name="llm"))
    count = mats["mean_rating"][1]
    out["n_ratings"] = count.sum(axis=0).astype(int)
    out["n_participants"] = (count[w > 0] > 0).sum(axis=0).astype(int)
    estimates = {name: _ratio(w, a, b) for name, (a, b) in mats.items()}
    ses: dict[str, np.ndarray] = {}
    if se == "linearisation":
        x = None
        if result is not None and result.sample is not None:
            x = result.calibration_matrix()
            # Align the calibration rows with the weight index (same order by construction).
        for name, (a, b) in mats.items():
            ses[name] = _linearised_se(w, a, b, estimates[name], x)
    elif se == "bootstrap":
        if rng is None:
            raise WeightingError("the bootstrap needs rng (a numpy Generator or a seed)")
        gen = np.random.default_rng(rng)
        n = len(w)
        reps = {name: np.full((n_boot, len(llms)), np.nan) for name in mats}
        failed = 0
        for k in range(n_boot):
            mult = np.bincount(gen.integers(0, n, n), minlength=n).astype(float)
            if result is not None and result.sample is not None:
                try:
                    wk = result.reweight(mult * result.base_weights)
                except WeightingError:
                    failed += 1
                    continue
            else:
                wk = w * mult
            for name, (a, b) in mats.items():
                reps[name][k] = _ratio(wk, a, b)
        for name in mats:
            ses[name] = np.nanstd(reps[name], axis=0, ddof=1)
        out.attrs["bootstrap_failed_replicates"] = failed
    elif se != "none":
        raise WeightingError(f"unknown se method {se!r}")
    for name in STATISTICS:
        out[name] = estimates[name]
        out[f"{name}_se"] = ses.get(name, np.full(len(llms), np.nan))
    out.attrs.update(
        turn=turn,
        se=se,
        n_boot=n_boot if se == "bootstrap" else None,
        veto_threshold=veto_threshold,
        n_participants=int((w > 0).sum()),
        n_ratings_unweighted=n_unweighted,
    )
    return out
