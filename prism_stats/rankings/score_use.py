"""How raters use the 1-100 scale: normalisation, expressivity, centrality, disagreement.

After the original notebook 05 and ``ranking.py`` (SPEC §3.5, quirk 10) and the "field
sites" of notebook 03 (SPEC §3.3):

* :func:`normalised_scores` -- each rater's z-score, ``(score - mean) / sd`` with the
  mean and sd (ddof 1) of the rater's **opening-turn** scores (``basis="opening"``, the
  study's ``normalized_score_openers``) or of all their scores (``"all"``); a rater
  whose scores do not vary (sd 0) gets 0, as in the original; a rater with a single
  score has no sd and gets NaN.
* :func:`within_turn_rank` -- rank of each response within its interaction (1 = best),
  ties broken by uniform noise of +-1e-4 from a seeded generator.
* :func:`rater_scale_use` -- per rater and phase (opening turn vs later turns):
  **expressivity** (mean within-interaction range and sd of the scores) and
  **centrality** (mean score and its distance from the slider's start value 50).
* :func:`identical_response_disagreement` -- the same response text rated by different
  raters (inter-rater sites) versus by the same rater more than once (intra-rater
  sites): the score range per site, summarised. ``"EMPTY STRING"`` responses (and
  blank ones) are not sites: they are the release's placeholder, not a shared answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .battles import RankingError

SLIDER_START = 50.0
EMPTY_RESPONSE = "EMPTY STRING"
BASES: tuple[str, ...] = ("opening", "all")


def _check(ratings: pd.DataFrame, columns: set[str]) -> None:
    missing = sorted(columns - set(ratings.columns))
    if missing:
        raise RankingError(f"ratings lack columns {missing}")


def normalised_scores(ratings: pd.DataFrame, basis: str = "opening") -> pd.Series:
    """Per-rater z-scores of every rating (see the module docstring), aligned with *ratings*."""
    if basis not in BASES:
        raise RankingError(f"basis must be one of {BASES}, got {basis!r}")
    _check(ratings, {"participant", "score", "turn"})
    rater = ratings["participant"].astype(str)
    ref = ratings if basis == "all" else ratings[ratings["turn"] == 0]
    stats = ref.groupby(ref["participant"].astype(str))["score"].agg(["mean", "std"])
    mean = rater.map(stats["mean"])
    sd = rater.map(stats["std"])
    z = (ratings["score"].astype(float) - mean) / sd
    z = z.where(sd != 0, 0.0)
    return z.rename(f"z_{basis}")


def within_turn_rank(ratings: pd.DataFrame, *, seed: int = 42) -> pd.Series:
    """Rank of each response within its interaction (1 = highest score), noisy tie-break."""
    _check(ratings, {"interaction", "score"})
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    noisy = ratings["score"].astype(float) + rng.uniform(-1e-4, 1e-4, len(ratings))
    return noisy.groupby(ratings["interaction"].astype(str)).rank(ascending=False, method="first").rename(
        "within_turn_rank")


def rater_scale_use(ratings: pd.DataFrame) -> pd.DataFrame:
    """Expressivity and centrality per rater and phase.

    Returns one row per (participant, phase) with phase ``opening`` (turn 0) or
    ``later`` (turns >= 1): ``n_ratings``, ``n_interactions``, ``mean_score``,
    ``sd_score``, ``expressivity_range`` (mean over interactions of max - min),
    ``expressivity_sd`` (mean over interactions of the within-interaction sd, ddof 1),
    ``centrality`` (= mean score) and ``distance_from_start`` (|mean - 50|).
    """
    _check(ratings, {"participant", "interaction", "score", "turn"})
    r = ratings.assign(participant=ratings["participant"].astype(str),
                       interaction=ratings["interaction"].astype(str),
                       phase=np.where(ratings["turn"].to_numpy() == 0, "opening", "later"),
                       score=ratings["score"].astype(float))
    per_inter = r.groupby(["participant", "phase", "interaction"])["score"].agg(
        ["max", "min", "std"]).reset_index()
    per_inter["range"] = per_inter["max"] - per_inter["min"]
    expr = per_inter.groupby(["participant", "phase"]).agg(
        n_interactions=("range", "size"), expressivity_range=("range", "mean"),
        expressivity_sd=("std", "mean"))
    cent = r.groupby(["participant", "phase"])["score"].agg(n_ratings="size", mean_score="mean",
                                                           sd_score="std")
    out = cent.join(expr).reset_index()
    out["centrality"] = out["mean_score"]
    out["distance_from_start"] = (out["mean_score"] - SLIDER_START).abs()
    return out


def _summary(ranges: pd.Series, kind: str) -> dict[str, float]:
    q = ranges.quantile([0.25, 0.5, 0.75]) if len(ranges) else pd.Series([np.nan] * 3, index=[0.25, 0.5, 0.75])
    return {"kind": kind, "n_sites": int(len(ranges)), "mean_range": float(ranges.mean()),
            "sd_range": float(ranges.std(ddof=1)) if len(ranges) > 1 else np.nan,
            "median_range": float(q[0.5]), "q25_range": float(q[0.25]), "q75_range": float(q[0.75])}


def identical_response_disagreement(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ranges on identical responses: different raters vs the same rater.

    Returns
    -------
    (summary, sites)
        ``summary``: one row per kind (``inter`` = same text, different raters: range
        of the raters' mean scores; ``intra`` = same text rated repeatedly by one rater:
        range of that rater's scores) with ``n_sites, mean_range, sd_range,
        median_range, q25_range, q75_range``. ``sites``: one row per site (``kind``,
        ``response_id`` (a hash of the text), ``participant`` (intra only), ``n_ratings``,
        ``range``). ``summary.attrs["excluded_placeholders"]`` counts the empty /
        placeholder responses left out.
    """
    _check(ratings, {"participant", "score", "response"})
    text = ratings["response"].astype("string").fillna("")
    placeholder = (text.str.strip() == "") | (text == EMPTY_RESPONSE)
    r = pd.DataFrame({"participant": ratings["participant"].astype(str), "score": ratings["score"].astype(float),
                      "text": text})[~placeholder.to_numpy()]
    r["response_id"] = pd.util.hash_pandas_object(r["text"], index=False).astype("uint64")
    per_user = r.groupby(["response_id", "participant"])["score"].agg(["mean", "max", "min", "size"]).reset_index()
    intra = per_user[per_user["size"] >= 2].assign(kind="intra", range=lambda d: d["max"] - d["min"])
    intra = intra.rename(columns={"size": "n_ratings"})[["kind", "response_id", "participant", "n_ratings", "range"]]
    inter_g = per_user.groupby("response_id").agg(n_raters=("participant", "size"), hi=("mean", "max"),
                                                  lo=("mean", "min"), n_ratings=("size", "sum"))
    inter_g = inter_g[inter_g["n_raters"] >= 2].reset_index()
    inter = pd.DataFrame({"kind": "inter", "response_id": inter_g["response_id"], "participant": pd.NA,
                          "n_ratings": inter_g["n_ratings"], "range": inter_g["hi"] - inter_g["lo"]})
    sites = pd.concat([inter, intra], ignore_index=True)
    summary = pd.DataFrame([_summary(inter["range"], "inter"), _summary(intra["range"], "intra")])
    summary.attrs["excluded_placeholders"] = int(placeholder.sum())
    return summary, sites
