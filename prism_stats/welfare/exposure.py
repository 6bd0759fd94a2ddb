"""Exposure-matched model-based juries: each juror rates only the LLMs the study would have shown.

In the study a juror has ratings only for the LLMs they met in opening turns (sets of
2-4 of the 21, drawn at random, over their conversations), and a jury scores an LLM by
the mean over the jurors who saw it (SPEC §3.11). Full-information model-based juries
(:func:`prism_stats.welfare.model_welfare`, ``exposure="full"``) let every juror rate
every LLM, so each juror's leniency shifts all their ratings alike and cancels in the
pick. Here (``exposure="matched"``):

- each juror's **exposure** -- which LLMs they saw and how many times -- is the exposure of
  a participant drawn uniformly at random from the run's own design
  (:func:`exposure_profiles`: every participant's opening-turn counts per LLM; the
  balanced subset when the run's spec selects it, or when a release is given with
  ``balanced=True``). LLMs were assigned at random in the study, so a juror's exposure
  is drawn independently of their census cell;
- an LLM no juror saw gets the study's fill value (:data:`UNSEEN_VALUE`: rating 1,
  chosen share 0, and 1 on the ``1 - veto rate`` scale, as in the design-based juries);
- ``mean`` rule: the jury mean of LLM m averages ``eta + u_j + v_jm + noise`` over the
  k_m jurors who saw m, so the participant effects ``u_j`` enter through ``W u`` with
  ``W[m, j] = 1[j saw m] / k_m`` -- covariance ``tau^2 W W'``, drawn with one factor
  ``L L' = W W'`` per jury (a QR decomposition of ``W'``) -- and no longer cancel;
  tastes and noise are independent across LLMs (:func:`jury_exposure`,
  :func:`prism_stats.welfare.sampling.pick_exposed_means`);
- ``chosen`` / ``veto`` rules: a juror's value is their share over the times they were
  shown the LLM; the jurors who saw it ``a`` times contribute a Binomial of ``a`` votes
  each with their cells' average probability (the same per-showing probabilities and
  Binomial treatment as the full-information juries).

With many jurors every LLM is seen by many of them and the jury means converge to the
full-information ones (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .juries import UNSEEN_VALUE
from .results import WelfareResultError

#: Exposure options of the model-based juries.
EXPOSURES: tuple[str, ...] = ("full", "matched")
#: Where each exposure's welfare files go, relative to the run folder (CLI and pipeline).
EXPOSURE_FOLDERS: dict[str, str] = {"full": "", "matched": "exposure_matched"}


def exposure_profiles(source: Any, llms: list[str] | None = None, *, balanced: bool = True) -> xr.DataArray:
    """Opening-turn exposure of every participant: counts (profile, llm).

    Parameters
    ----------
    source : Run, Design, PrismData or DataArray
        A fitted run or its design (the participants and ratings the model saw), a
        release (opening-turn ratings; the balanced subset when *balanced* and the
        release marks one), or profiles already made (returned aligned to *llms*).
    llms : list of str, optional
        LLM order of the result (default: the source's).
    balanced : bool
        For a release: only the balanced subset's ratings (as the study's juries).

    Returns
    -------
    xarray.DataArray
        Integer counts, dims ``("profile", "llm")``; participants who saw no LLM are left
        out (``attrs["excluded"]`` counts them).
    """
    if isinstance(source, xr.DataArray):
        counts = source
    elif hasattr(source, "ratings") and hasattr(source, "participants"):
        ratings = source.ratings
        keep = ratings["turn"].to_numpy() == 0
        what = "release, opening turns"
        if balanced and "balanced" in ratings and ratings["balanced"].astype(bool).any():
            keep &= ratings["balanced"].to_numpy(dtype=bool)
            what += ", balanced subset"
        sub = ratings.loc[keep]
        table = sub.groupby([sub["participant"].astype(str), sub["llm"].astype(str)], observed=True).size()
        table = table.unstack(fill_value=0)
        counts = xr.DataArray(table.to_numpy(), dims=("profile", "llm"),
                              coords={"profile": table.index.to_numpy(), "llm": table.columns.to_numpy()},
                              attrs={"source": what})
    else:
        design = getattr(source, "design", source)
        if not hasattr(design, "cells"):
            raise WelfareResultError(f"cannot take exposure profiles from a {type(source).__name__}")
        cells = design.cells.loc[design.cells["later"] == 0]
        n_p, n_m = len(design.coords["participant"]), len(design.coords["llm"])
        table = np.zeros((n_p, n_m), dtype=np.int64)
        np.add.at(table, (cells["participant"].to_numpy(), cells["llm"].to_numpy()), cells["n"].to_numpy())
        counts = xr.DataArray(table, dims=("profile", "llm"),
                              coords={"profile": design.coords["participant"], "llm": design.coords["llm"]},
                              attrs={"source": "run design, opening turns"})
    if llms is not None:
        counts = counts.reindex(llm=list(llms), fill_value=0)
    seen_any = counts.sum("llm") > 0
    out = counts.isel(profile=np.flatnonzero(seen_any.values)).astype(np.int64)
    out.attrs = {**counts.attrs, "excluded": int((~seen_any).sum())}
    if out.sizes["profile"] == 0:
        raise WelfareResultError("no participant saw any LLM in opening turns: no exposure to match")
    return out


@dataclass
class JuryExposure:
    """What the jurors of each replicate jury saw (arrays over replicates R, LLMs M, cells C).

    Attributes
    ----------
    seen_cells : (R, M, C)
        Jurors of cell c who saw LLM m.
    n_seen : (R, M)
        Jurors who saw m (k_m).
    inv_exposure : (R, M)
        ``sum_j (1 / n_jm) / k_m^2`` over the jurors who saw m (0 where nobody did).
    factor : (R, M, K)
        ``L`` with ``L L' = W W'``, ``W[m, j] = 1[j saw m] / k_m``.
    showings : (R, A, M, C)
        Jurors of cell c who saw m exactly ``a + 1`` times.
    """

    seen_cells: np.ndarray
    n_seen: np.ndarray
    inv_exposure: np.ndarray
    factor: np.ndarray
    showings: np.ndarray


def jury_exposure(profiles: np.ndarray, compositions: np.ndarray, rng: np.random.Generator) -> JuryExposure:
    """Draw every juror's exposure (a uniformly drawn profile) for juries of cell counts.

    Parameters
    ----------
    profiles : (P, M) int
        Exposure counts of the design's participants.
    compositions : (R, C) int
        Jurors of each census cell in each replicate jury (rows sum to the jury size).
    rng : numpy.random.Generator
    """
    profiles = np.asarray(profiles, dtype=np.int64)
    compositions = np.asarray(compositions, dtype=np.int64)
    R, C = compositions.shape
    n = int(compositions[0].sum())
    if (compositions.sum(axis=1) != n).any():
        raise WelfareResultError("every jury of a scheme must have the same size")
    P = profiles.shape[0]
    cells = np.stack([np.repeat(np.arange(C), row) for row in compositions])  # (R, n)
    counts = profiles[rng.integers(P, size=(R, n))]  # (R, n, M)
    seen = counts > 0
    onehot = np.zeros((R, n, C))
    np.put_along_axis(onehot, cells[..., None], 1.0, axis=2)
    seen_cells = np.einsum("rjm,rjc->rmc", seen.astype(float), onehot)
    n_seen = seen.sum(axis=1)  # (R, M)
    safe = np.maximum(n_seen, 1)
    with np.errstate(divide="ignore"):
        inv_n = np.where(seen, 1.0 / np.maximum(counts, 1), 0.0)
    inv_exposure = inv_n.sum(axis=1) / safe**2
    W = seen / safe[:, None, :]  # (R, n, M): W' per jury
    factor = np.transpose(np.linalg.qr(W, mode="r"), (0, 2, 1))  # (R, M, min(n, M))
    A = max(1, int(counts.max()))
    showings = np.stack([np.einsum("rjm,rjc->rmc", (counts == a + 1).astype(float), onehot)
                         for a in range(A)], axis=1)  # (R, A, M, C)
    return JuryExposure(seen_cells=seen_cells, n_seen=n_seen.astype(np.int64),
                        inv_exposure=inv_exposure, factor=np.ascontiguousarray(factor),
                        showings=showings)


def unseen_value(rule: str) -> float:
    """The study's fill value of an LLM no juror saw, on the rule's pick scale."""
    return float(UNSEEN_VALUE[rule])


__all__ = ["EXPOSURES", "EXPOSURE_FOLDERS", "JuryExposure", "exposure_profiles", "jury_exposure", "unseen_value"]
