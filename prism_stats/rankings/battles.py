"""Pairwise battles from the opening turns, and the pair-count tables built from them.

Every opening interaction shows a participant 2-4 LLMs and records a 1-100 score for
each. As in the original study (SPEC §3.6, ``ranking.extract_battles``), **every pair of
LLMs shown together is one battle**: the LLM with the higher score wins, and the battle
is a **tie when the two scores differ by at most 5 points** (``tie_margin``). An opener
with k answers gives k(k-1)/2 battles (the release: 42,306 battles, 17.48% ties).

Battle order (it matters for online Elo only) is the order of the ``choice_sets`` table
(opening interactions in the order of the release's utterances) and, within an
interaction, the slot pairs (a,b), (a,c), (a,d), (b,c), (b,d), (c,d) of the answers by
``within_turn_id`` -- the order in which the original enumerates pairs of its wide table.

Count tables (:func:`pair_counts`) are ``xarray.Dataset`` objects with dims ``llm`` and
``opponent`` (both the LLM short names, in vocabulary order):

* ``wins[m, o]`` -- battles m won outright against o;
* ``ties[m, o]`` -- ties between m and o (symmetric);
* ``battles[m, o]`` -- battles between m and o (symmetric; ``wins + wins.T + ties``).

From them: the **win-rate matrix** (:func:`win_rate_matrix`: wins / battles, ties are
non-wins but count in the denominator, as the original's ``compute_pairwise_win_fraction``),
**win counts with ties counted for both** (:func:`win_counts`, the comparisons Rank
Centrality is built from), the **raw win totals** the study ordered LLMs by
(:func:`raw_win_totals`) and the **average pairwise win rate** (:func:`average_win_rate`,
SPEC §3.7).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import vocab

SLOTS: tuple[str, ...] = ("a", "b", "c", "d")
#: Scores within this many points are a tie (the original's ``tie_thresh``).
TIE_MARGIN: float = 5.0
#: Outcome labels of the ``winner`` column.
OUTCOMES: tuple[str, ...] = ("a", "b", "tie")
BATTLE_COLUMNS: tuple[str, ...] = (
    "interaction", "conversation", "participant", "conversation_type",
    "llm_a", "llm_b", "score_a", "score_b", "winner",
)


class RankingError(ValueError):
    """A ranking cannot be computed from the inputs given (the message says why)."""


def _choice_sets(data: Any) -> pd.DataFrame:
    sets = getattr(data, "choice_sets", data)
    if not isinstance(sets, pd.DataFrame):
        raise RankingError("expected PrismData or a choice_sets DataFrame")
    needed = {"participant", *(f"llm_{s}" for s in SLOTS[:2]), *(f"score_{s}" for s in SLOTS[:2])}
    missing = sorted(needed - set(sets.columns))
    if missing:
        raise RankingError(f"choice sets lack columns {missing}")
    return sets


def battles(data: Any, *, tie_margin: float = TIE_MARGIN) -> pd.DataFrame:
    """Every pair of LLMs shown together in an opening interaction, with its outcome.

    Parameters
    ----------
    data : PrismData or DataFrame
        Tidy data (its ``choice_sets``) or a table with the ``choice_sets`` columns
        (``participant``, ``llm_a``... ``llm_d``, ``score_a``... ``score_d``; optional
        ``interaction``, ``conversation``, ``conversation_type``).
    tie_margin : float
        A battle is a tie when ``|score_a - score_b| <= tie_margin`` (5 in the study).

    Returns
    -------
    DataFrame
        One row per battle, columns :data:`BATTLE_COLUMNS`; ``winner`` is ``"a"``
        (``llm_a`` scored more than ``tie_margin`` higher), ``"b"`` or ``"tie"``.
        Answers whose LLM or score is missing are skipped, as in the original.
    """
    sets = _choice_sets(data)
    slots = [s for s in SLOTS if f"llm_{s}" in sets.columns and f"score_{s}" in sets.columns]
    llm = {s: sets[f"llm_{s}"].astype("string") for s in slots}
    score = {s: pd.to_numeric(sets[f"score_{s}"], errors="coerce") for s in slots}
    n = len(sets)
    ids = {c: (sets[c].astype("string").to_numpy() if c in sets.columns else np.full(n, pd.NA))
           for c in ("interaction", "conversation", "participant", "conversation_type")}
    pairs = list(itertools.combinations(slots, 2))
    blocks = []
    for k, (s, t) in enumerate(pairs):
        ok = (llm[s].notna() & llm[t].notna() & score[s].notna() & score[t].notna()).to_numpy()
        rows = np.flatnonzero(ok)
        blocks.append(pd.DataFrame({
            "_row": rows, "_pair": k,
            **{c: v[rows] for c, v in ids.items()},
            "llm_a": llm[s].to_numpy()[rows], "llm_b": llm[t].to_numpy()[rows],
            "score_a": score[s].to_numpy(dtype=float)[rows],
            "score_b": score[t].to_numpy(dtype=float)[rows],
        }))
    out = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(
        columns=["_row", "_pair", *BATTLE_COLUMNS[:-1]])
    out = out.sort_values(["_row", "_pair"], kind="stable").drop(columns=["_row", "_pair"])
    diff = out["score_a"].to_numpy(dtype=float) - out["score_b"].to_numpy(dtype=float)
    winner = np.where(np.abs(diff) <= tie_margin, "tie", np.where(diff > 0, "a", "b"))
    out["winner"] = pd.Categorical(winner, categories=list(OUTCOMES))
    for c in ("llm_a", "llm_b"):
        out[c] = pd.Categorical(out[c].astype(object), categories=list(vocab.LLM_SHORT_NAMES))
    if "conversation_type" in sets.columns:
        out["conversation_type"] = pd.Categorical(out["conversation_type"].astype(object),
                                                  categories=list(vocab.CONVERSATION_TYPES))
    out = out.reset_index(drop=True)
    out.attrs["tie_margin"] = float(tie_margin)
    return out.loc[:, list(BATTLE_COLUMNS)]


def outcome_shares(battle_table: pd.DataFrame) -> pd.Series:
    """Share of battles won by the first LLM (``a``), the second (``b``) and tied."""
    return battle_table["winner"].value_counts(normalize=True).reindex(list(OUTCOMES), fill_value=0.0)


_VOCAB_INDEX = {m: i for i, m in enumerate(vocab.LLM_SHORT_NAMES)}


def vocab_codes(values: pd.Series) -> np.ndarray:
    """Index of each LLM name in ``vocab.LLM_SHORT_NAMES`` (-1: missing or unknown).

    Fast path for the categorical columns :func:`battles` makes.
    """
    if isinstance(values.dtype, pd.CategoricalDtype) and \
            list(values.cat.categories) == list(vocab.LLM_SHORT_NAMES):
        return values.cat.codes.to_numpy(dtype=np.int64)
    return values.astype(object).map(_VOCAB_INDEX).fillna(-1).to_numpy(dtype=np.int64)


def llms_in(battle_table: pd.DataFrame, llms: Any = None) -> list[str]:
    """The LLM labels of a battle table in vocabulary order (or *llms* as given)."""
    if llms is not None:
        llms = [str(m) for m in llms]
        unknown = sorted(set(llms) - set(vocab.LLM_SHORT_NAMES))
        if unknown:
            raise RankingError(f"unknown LLM(s) {unknown}")
        return llms
    codes = np.concatenate([vocab_codes(battle_table["llm_a"]), vocab_codes(battle_table["llm_b"])])
    if (codes < 0).any():
        bad = pd.concat([battle_table["llm_a"], battle_table["llm_b"]]).astype(str)
        raise RankingError(f"battles name unknown LLM(s): {sorted(set(bad) - set(vocab.LLM_SHORT_NAMES))[:3]}")
    return [vocab.LLM_SHORT_NAMES[i] for i in np.unique(codes)]


def _codes(values: pd.Series, llms: list[str]) -> np.ndarray:
    lookup = np.full(len(vocab.LLM_SHORT_NAMES) + 1, -1, dtype=np.int64)
    for i, m in enumerate(llms):
        lookup[_VOCAB_INDEX[m]] = i
    codes = lookup[vocab_codes(values)]  # -1 -> last slot -> -1
    if (codes < 0).any():
        raise RankingError(f"battles name LLMs outside {llms[:3]}...: "
                           f"{sorted(set(values.astype(str)[codes < 0]))[:3]}")
    return codes


def battle_codes(battle_table: pd.DataFrame, llms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes: (index of llm_a, index of llm_b, outcome 0 = a, 1 = b, 2 = tie)."""
    a = _codes(battle_table["llm_a"], llms)
    b = _codes(battle_table["llm_b"], llms)
    w = battle_table["winner"]
    if isinstance(w.dtype, pd.CategoricalDtype) and list(w.cat.categories) == list(OUTCOMES):
        outcome = w.cat.codes.to_numpy(dtype=np.int64)
    else:
        outcome = pd.Categorical(w.astype(str), categories=list(OUTCOMES)).codes.astype(np.int64)
    if (outcome < 0).any():
        raise RankingError(f"winner must be one of {OUTCOMES}")
    return a, b, outcome


def count_arrays(a: np.ndarray, b: np.ndarray, outcome: np.ndarray, n_llms: int,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(wins, ties) as (M, M) arrays from coded battles (optionally weighted)."""
    w = np.ones(len(a)) if weights is None else np.asarray(weights, dtype=float)
    M = n_llms
    wins = np.zeros(M * M)
    np.add.at(wins, a[outcome == 0] * M + b[outcome == 0], w[outcome == 0])
    np.add.at(wins, b[outcome == 1] * M + a[outcome == 1], w[outcome == 1])
    ties = np.zeros(M * M)
    t = outcome == 2
    np.add.at(ties, a[t] * M + b[t], w[t])
    ties = ties.reshape(M, M)
    return wins.reshape(M, M), ties + ties.T


def counts_dataset(wins: np.ndarray, ties: np.ndarray, llms: list[str]) -> xr.Dataset:
    """Labelled (llm, opponent) count tables from (wins, ties) arrays."""
    coords = {"llm": list(llms), "opponent": list(llms)}
    dims = ("llm", "opponent")
    return xr.Dataset({
        "wins": (dims, np.asarray(wins, dtype=float)),
        "ties": (dims, np.asarray(ties, dtype=float)),
        "battles": (dims, np.asarray(wins + wins.T + ties, dtype=float)),
    }, coords=coords)


def pair_counts(battle_table: pd.DataFrame, llms: Any = None) -> xr.Dataset:
    """Wins, ties and battles per (llm, opponent) pair (see the module docstring)."""
    names = llms_in(battle_table, llms)
    wins, ties = count_arrays(*battle_codes(battle_table, names), len(names))
    ds = counts_dataset(wins, ties, names)
    ds.attrs["n_battles"] = len(battle_table)
    ds.attrs["tie_margin"] = float(battle_table.attrs.get("tie_margin", TIE_MARGIN))
    return ds


def _as_counts(x: Any, llms: Any = None) -> xr.Dataset:
    if isinstance(x, xr.Dataset):
        return x
    if isinstance(x, pd.DataFrame):
        return pair_counts(x, llms)
    raise RankingError("expected a battle table (DataFrame) or pair counts (xarray.Dataset)")


def win_rate_matrix(x: Any, llms: Any = None) -> xr.DataArray:
    """Share of battles between m and o that m won (ties: non-wins, in the denominator).

    NaN on the diagonal and for pairs that never met.
    """
    c = _as_counts(x, llms)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = c["wins"] / c["battles"].where(c["battles"] > 0)
    return rate.rename("win_rate")


def win_counts(x: Any, llms: Any = None) -> xr.DataArray:
    """Wins of m over o with a tie counted as a win for both (the comparisons of RC)."""
    c = _as_counts(x, llms)
    return (c["wins"] + c["ties"]).rename("win_count")


def raw_win_totals(x: Any, llms: Any = None) -> pd.Series:
    """Total wins per LLM, ties counted for both, highest first (the study's raw ordering)."""
    totals = win_counts(x, llms).sum("opponent").to_series()
    return totals.sort_values(ascending=False, kind="stable").rename("wins")


def average_win_rate(x: Any, llms: Any = None) -> pd.Series:
    """Mean over opponents met of the pairwise win rate (SPEC §3.7), highest first."""
    rate = win_rate_matrix(x, llms).mean("opponent", skipna=True).to_series()
    return rate.sort_values(ascending=False, kind="stable").rename("average_win_rate")


def winner_order(battle_table: pd.DataFrame) -> list[str]:
    """LLMs in the order the original Rank Centrality indexes them.

    By number of comparisons won (a tie is a win for both) from most to fewest, equal
    counts in order of first appearance among the comparisons (ties first, both
    directions, then outright wins of ``a``, then of ``b``); LLMs that never win come
    last, alphabetically. The original's normalisation quirk depends on this order
    (see :mod:`prism_stats.rankings.centrality`).
    """
    names = llms_in(battle_table)
    a, b, outcome = battle_codes(battle_table, names)
    t = outcome == 2
    winners = np.concatenate([a[t], b[t], a[outcome == 0], b[outcome == 1]])
    losers = np.concatenate([b[t], a[t], b[outcome == 0], a[outcome == 1]])
    counts = np.bincount(winners, minlength=len(names))
    first = np.full(len(names), len(winners))
    uniq, idx = np.unique(winners, return_index=True)
    first[uniq] = idx
    won = [k for k in range(len(names)) if counts[k] > 0]
    order = sorted(won, key=lambda k: (-counts[k], first[k]))
    never = sorted({names[k] for k in np.unique(losers)} - {names[k] for k in won})
    return [names[k] for k in order] + never
