"""Design-based jury (welfare) analysis: a re-implementation of the original study.

Source: the PRISM welfare case study (Kirk et al. 2024, notebooks ``11b_welfare_analysis``
and ``11c_welfare_analysis_imputed``; SPEC.md §3.11, §5.8).  The method:

1. **Tables.** From the opening-turn (``turn == 0``) ratings of the balanced subset
   (the *utterance* flag ``balanced``), per participant x LLM means of the score
   (rule ``"mean"``), of ``chosen`` (rule ``"chosen"``) and of the veto indicator
   ``score <= 10`` (rule ``"veto"``); NaN where the participant never saw the LLM.
2. **Pools** ("seats of power", sampled *with replacement*): a country's REP sample
   (``in_uk_rep`` / ``in_us_rep``) or its male, white (``ethnicity_simplified ==
   "White"``) or over-45 (45-54, 55-64, 65+) members.
3. **Juries.** Representative juries of 10/20/50/100 and juries of 100 from each skewed
   pool, 1,000 replicates each.  A jury scores each LLM by the mean of its members'
   per-user values, ignoring NaN (a rater drawn twice counts twice); an LLM nobody in
   the jury saw scores 1 (``mean``), 0 (``chosen``) or 1 (``veto``, on the ``1 - veto
   rate`` scale).  The jury picks the highest-scoring LLM; ties are broken at random.
4. **Welfare** of a pick for a target population (all REP, non-male, non-white,
   under-45) = the mean over the target's members of their per-user value of the
   picked LLM, ignoring members who never saw it.  Regret = the best achievable welfare
   (max over LLMs) minus the welfare of the pick.
5. **Imputed variant** (``imputed=True``; the original's notebook 11c): each table is
   first completed by chained-equations imputation with a Bayesian ridge regression
   (:func:`iterative_impute`), then clipped to [1, 100] (ratings) or [0, 1] (shares).

Each rule measures welfare on its own table (as the original did for ratings and
choices): the ``veto`` rule's welfare is the *non-veto rate* ``1 - veto`` so that
higher is better for every rule.  The original defined the veto rule but never ran it.

Randomness
----------
By default every random step draws from ``numpy.random.Generator`` streams derived
from one seed: the juries of a (country, pool, size) from
``SeedSequence([seed, 0, country, pool, size])`` and the tie-breaks of a rule from
``SeedSequence([seed, 1, country, pool, size, rule])``.  Hence the juries are shared by
all rules and all targets (paired comparisons), and a scheme's results do not depend
on which other schemes, rules or countries were requested.

``legacy_python_random=True`` instead replays the original's ``random.seed(1)`` loop
with Python's ``random.Random`` (a private instance, never the global state).  Exact
reproduction of the original pickles requires: both countries in the order
``("us", "uk")``; rules ``("mean", "chosen")`` (rating block before choice block); all
four targets and the default seven schemes; 1,000 replicates; seed 1; the
participants table in ``survey.jsonl`` order (pools are drawn by position) and the
ratings table in ``utterances.jsonl`` order (the model order used for tie-breaking is
the order of first appearance among the filtered ratings).  The picks are then
identical; the welfare values agree up to floating-point summation order.  In that
mode the juries are drawn afresh for each target, as in the original, so
``chosen_llm`` gets a ``target`` dimension.  The imputed variant cannot be reproduced
bit-for-bit because the imputer is a re-implementation (see :func:`iterative_impute`).
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from prism_stats import __version__
from prism_stats.vocab import COUNTRIES_MRP, VETO_THRESHOLD

from .jury_tables import JuryInputError, JuryTables, _check_rule, jury_tables
from .results import (
    JURY_SIZES,
    POOLS,
    RULES,
    SKEWED_SIZE,
    TARGETS,
    Scheme,
    build_schemes,
    scheme_coords,
    welfare_dataset,
)

#: Jury score of an LLM nobody in the jury saw, per rule (on the utility scale).
UNSEEN_VALUE: dict[str, float] = {"mean": 1.0, "chosen": 0.0, "veto": 1.0}

# Stable integer codes of the random streams (never reorder: they key the seeds).
_STREAM_JURY, _STREAM_TIES = 0, 1
# Cap on the elements of one gathered (replicate, rater, llm) block.
_BLOCK_ELEMENTS = 4_000_000


# --- jury mechanics -----------------------------------------------------------------------


def jury_scores(utility: np.ndarray, juries: np.ndarray, *, unseen: float) -> np.ndarray:
    """Each jury's score of each LLM: the mean of its members' values, ignoring NaN.

    Parameters
    ----------
    utility
        ``(participant, llm)`` per-user values (higher is better).
    juries
        ``(replicate, size)`` integer positions into *utility*'s rows; a rater drawn
        twice counts twice.
    unseen
        Score of an LLM no jury member saw.

    Returns
    -------
    numpy.ndarray
        ``(replicate, llm)``.
    """
    utility = np.asarray(utility, dtype=np.float64)
    juries = np.asarray(juries, dtype=np.intp)
    n_rep, size = juries.shape
    out = np.empty((n_rep, utility.shape[1]))
    step = max(1, _BLOCK_ELEMENTS // max(1, size * utility.shape[1]))
    for start in range(0, n_rep, step):
        block = utility[juries[start : start + step]]  # (block, size, llm)
        seen = ~np.isnan(block)
        total = np.where(seen, block, 0.0).sum(axis=1)
        count = seen.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(count > 0, total / count, unseen)
    return out


def pick_best(
    scores: np.ndarray, rng: np.random.Generator, *, tie_rtol: float = 1e-12
) -> np.ndarray:
    """Position of the highest score in each row, ties broken uniformly at random.

    Scores within ``tie_rtol * |max|`` of the row maximum count as tied, so that two
    means that are equal in exact arithmetic but differ in the last bit because of
    summation order are treated as the tie they are (``tie_rtol=0``: exact comparison,
    as the original).  NaN never wins.
    """
    scores = np.asarray(scores, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(scores, axis=1, keepdims=True)
    tied = scores >= best - tie_rtol * np.abs(best)
    keys = rng.random(scores.shape)
    return np.argmax(np.where(tied, keys, -1.0), axis=1)


def population_welfare(utility: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Welfare of each LLM for a population: mean of members' values, ignoring NaN.

    Returns ``(llm,)``; NaN for an LLM no member saw (or an empty population).
    """
    block = np.asarray(utility, dtype=np.float64)[np.asarray(members, dtype=np.intp)]
    seen = ~np.isnan(block)
    count = seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(seen, block, 0.0).sum(axis=0) / count, np.nan)


# --- the analysis -------------------------------------------------------------------------


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _base_seed(seed: int | np.random.Generator | None) -> tuple[int, str]:
    if seed is None:
        return int(np.random.SeedSequence().entropy), "fresh entropy"
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1)), "drawn from a numpy Generator"
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and int(seed) >= 0:
        return int(seed), "given"
    raise JuryInputError(
        f"seed must be a non-negative int, a numpy Generator or None; got {seed!r}"
    )


def run_juries(
    data_or_tables: Any,
    countries: str | Sequence[str] = COUNTRIES_MRP,
    *,
    rules: str | Sequence[str] = RULES,
    sizes: Sequence[int] = JURY_SIZES,
    pools: Sequence[str] = POOLS,
    skewed_sizes: Sequence[int] = (SKEWED_SIZE,),
    targets: Sequence[str] = TARGETS,
    n_replicates: int = 1000,
    seed: int | np.random.Generator | None = None,
    imputed: bool | None = None,
    legacy_python_random: bool = False,
    tie_rtol: float = 1e-12,
    juries: Mapping[str, Mapping[str, Any]] | None = None,
    data_hash: str | None = None,
) -> xr.Dataset:
    """Simulate juries and the welfare their picks give each target population.

    Parameters
    ----------
    data_or_tables
        ``PrismData``, a mapping with ``participants`` and ``ratings`` tables, or
        :class:`JuryTables` (see :func:`jury_tables`).
    countries
        ``"uk"``, ``"us"`` or both (the ``country`` dimension, in this order).
    rules
        Subset of ``("mean", "chosen", "veto")``.
    sizes, pools, skewed_sizes
        The jury schemes (:func:`prism_stats.welfare.results.build_schemes`): the
        representative pool at every size in *sizes*, each skewed pool at every size
        in *skewed_sizes*; default the original seven schemes.
    targets
        Subset of ``("all", "nonmale", "nonwhite", "under45")``.
    n_replicates
        Juries per scheme (original: 1,000).
    seed
        An int, a ``numpy.random.Generator`` (a base seed is drawn from it) or
        ``None`` (fresh entropy); the base seed used is stored in ``attrs["seed"]``.
        With ``legacy_python_random`` an int for ``random.Random`` (default 1).
    imputed
        Use the imputed tables (11c); ``None``: no, or as given :class:`JuryTables` are.
    legacy_python_random
        Replay the original's ``random.seed(1)`` / ``random.choices`` loop; see the
        module docstring for what exact reproduction requires.  Ties are then
        detected by exact comparison, as the original.
    tie_rtol
        Relative tolerance within which scores count as tied (see :func:`pick_best`).
    juries
        Inject the juries instead of drawing them: ``{country: {scheme: labels}}`` with
        ``labels`` an ``(n_replicates, size)`` array of participant ids from the
        scheme's pool.  Schemes not given are drawn.  Tie-breaks still use *seed*.
    data_hash
        Recorded in the attributes (defaults to the data's own hash when known).

    Returns
    -------
    xarray.Dataset
        The shared welfare schema of :mod:`prism_stats.welfare.results`
        (``method="design"``).
    """
    countries = _as_list(countries)
    rules = _as_list(rules)
    for c in countries:
        if c not in COUNTRIES_MRP:
            raise JuryInputError(f"unknown country {c!r}; expected one of {COUNTRIES_MRP}")
    for rule in rules:
        _check_rule(rule)
    targets = list(targets)
    for t in targets:
        if t not in TARGETS:
            raise JuryInputError(f"unknown target {t!r}; expected one of {TARGETS}")
    if len(set(countries)) != len(countries) or len(set(rules)) != len(rules):
        raise JuryInputError("countries and rules must not repeat")
    if not countries or not rules or not targets:
        raise JuryInputError("need at least one country, rule and target")
    n_replicates = int(n_replicates)
    if n_replicates < 1:
        raise JuryInputError(f"n_replicates must be >= 1, got {n_replicates}")
    schemes = build_schemes(sizes, pools, skewed_sizes)
    tables = jury_tables(
        data_or_tables, None if len(countries) > 1 else countries[0], imputed=imputed, rules=rules
    )
    if legacy_python_random and juries:
        raise JuryInputError("injected juries cannot be combined with legacy_python_random")

    pool_pos = {c: {p: tables.pool(c, p) for p in POOLS} for c in countries}
    target_pos = {c: {t: tables.target(c, t) for t in targets} for c in countries}
    for c in countries:
        for s in schemes:
            if pool_pos[c][s.pool].size == 0:
                raise JuryInputError(
                    f"pool {s.pool!r} of {c!r} is empty: cannot draw scheme {s.name}"
                )
        for t, pos in target_pos[c].items():
            if pos.size == 0:
                warnings.warn(
                    f"target {t!r} of {c!r} is empty; its welfare is undefined",
                    RuntimeWarning,
                    stacklevel=2,
                )
    utilities = {rule: tables.utility(rule) for rule in rules}
    n_llm = len(tables.llms)

    # Welfare of each LLM for each target (does not depend on the juries).
    llm_welfare = np.full((len(countries), len(rules), len(targets), n_llm), np.nan)
    for ic, c in enumerate(countries):
        for ir, rule in enumerate(rules):
            for it, t in enumerate(targets):
                llm_welfare[ic, ir, it] = population_welfare(utilities[rule], target_pos[c][t])

    if legacy_python_random:
        legacy_seed = 1 if seed is None else seed
        if isinstance(legacy_seed, np.random.Generator) or not isinstance(
            legacy_seed, (int, np.integer)
        ):
            raise JuryInputError("legacy_python_random needs an int seed (the original used 1)")
        chosen = _legacy_loop(
            tables, countries, rules, targets, schemes, n_replicates, int(legacy_seed), pool_pos
        )
        chosen_dims = ("country", "rule", "target", "scheme", "replicate")
        base_seed, seed_source = int(legacy_seed), "python random.Random (legacy)"
    else:
        base_seed, seed_source = _base_seed(seed)
        injected = _injected(juries, tables, countries, schemes, n_replicates, pool_pos)
        chosen = np.empty((len(countries), len(rules), len(schemes), n_replicates), dtype=np.int16)
        for ic, c in enumerate(countries):
            ckey = COUNTRIES_MRP.index(c)
            for js, s in enumerate(schemes):
                skey = [ckey, POOLS.index(s.pool), s.size]
                drawn = injected.get((c, s.name))
                if drawn is None:
                    rng = np.random.default_rng(
                        np.random.SeedSequence([base_seed, _STREAM_JURY, *skey])
                    )
                    pool = pool_pos[c][s.pool]
                    drawn = pool[rng.integers(0, pool.size, size=(n_replicates, s.size))]
                for ir, rule in enumerate(rules):
                    scores = jury_scores(utilities[rule], drawn, unseen=UNSEEN_VALUE[rule])
                    rng_tie = np.random.default_rng(
                        np.random.SeedSequence([base_seed, _STREAM_TIES, *skey, RULES.index(rule)])
                    )
                    chosen[ic, ir, js] = pick_best(scores, rng_tie, tie_rtol=tie_rtol)
        chosen_dims = ("country", "rule", "scheme", "replicate")

    coords: dict[str, Any] = {
        "country": countries,
        "rule": rules,
        "target": targets,
        "llm": tables.llms,
        "replicate": np.arange(n_replicates),
        **scheme_coords(schemes),
    }
    chosen_coords = {k: v for k, v in coords.items() if k in chosen_dims or k in ("pool", "size")}
    chosen_da = xr.DataArray(chosen, dims=chosen_dims, coords=chosen_coords)
    lw_da = xr.DataArray(
        llm_welfare,
        dims=("country", "rule", "target", "llm"),
        coords={k: coords[k] for k in ("country", "rule", "target", "llm")},
    )
    attrs = {
        "seed": base_seed,
        "seed_source": seed_source,
        "n_replicates": n_replicates,
        "imputed": bool(tables.imputed),
        "legacy_python_random": bool(legacy_python_random),
        "juries_shared_across_targets": not legacy_python_random,
        "juries_shared_across_rules": not legacy_python_random,
        "injected_juries": json.dumps(sorted(f"{c}/{s}" for c, s in (juries_keys(juries)))),
        "tie_rtol": 0.0 if legacy_python_random else float(tie_rtol),
        "unseen_values": dict(UNSEEN_VALUE),
        "veto_threshold": VETO_THRESHOLD,
        "pool_sizes": {c: {p: int(v.size) for p, v in pool_pos[c].items()} for c in countries},
        "target_sizes": {c: {t: int(v.size) for t, v in target_pos[c].items()} for c in countries},
        "n_raters_in_tables": len(tables.participants),
        "report": json.loads(json.dumps(tables.report, default=_jsonable)),
        "data_hash": data_hash if data_hash is not None else tables.data_hash,
        "prism_stats_version": __version__,
        "source": "prism_stats.welfare.juries.run_juries",
    }
    return welfare_dataset(chosen_da, lw_da, method="design", attrs=attrs)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def juries_keys(juries: Mapping[str, Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    """``(country, scheme)`` pairs of an injected-juries mapping."""
    return [(c, s) for c, per in (juries or {}).items() for s in per]


def _injected(
    juries: Mapping[str, Mapping[str, Any]] | None,
    tables: JuryTables,
    countries: list[str],
    schemes: list[Scheme],
    n_replicates: int,
    pool_pos: dict[str, dict[str, np.ndarray]],
) -> dict[tuple[str, str], np.ndarray]:
    out: dict[tuple[str, str], np.ndarray] = {}
    if not juries:
        return out
    position = {p: i for i, p in enumerate(tables.participants)}
    by_name = {s.name: s for s in schemes}
    for c, per in juries.items():
        if c not in countries:
            raise JuryInputError(f"injected juries for country {c!r}, which is not being run")
        for name, labels in per.items():
            if name not in by_name:
                raise JuryInputError(
                    f"injected juries for scheme {name!r}, not among {list(by_name)}"
                )
            s = by_name[name]
            arr = np.asarray(labels, dtype=object)
            if arr.shape != (n_replicates, s.size):
                raise JuryInputError(
                    f"injected juries {c}/{name}: shape {arr.shape}, expected {(n_replicates, s.size)}"
                )
            unknown = [x for x in arr.ravel().tolist() if str(x) not in position]
            if unknown:
                raise JuryInputError(
                    f"injected juries {c}/{name}: unknown participants {unknown[:5]}"
                )
            pos = np.vectorize(lambda x: position[str(x)], otypes=[np.intp])(arr)
            outside = np.setdiff1d(pos, pool_pos[c][s.pool])
            if outside.size:
                ids = [tables.participants[i] for i in outside[:5]]
                raise JuryInputError(
                    f"injected juries {c}/{name}: {ids} not in pool {s.pool!r} of {c!r}"
                )
            out[(c, name)] = pos
    return out


def _legacy_loop(
    tables: JuryTables,
    countries: list[str],
    rules: list[str],
    targets: list[str],
    schemes: list[Scheme],
    n_replicates: int,
    seed: int,
    pool_pos: dict[str, dict[str, np.ndarray]],
) -> np.ndarray:
    """The original loop: rule block > country > target > scheme > replicate.

    Per replicate: ``random.choices(pool, k=size)``, the per-model ``np.nanmean`` over
    the drawn raters in the original's model order (unseen models get the fill
    value), then ``random.choice`` among the models whose score is ``>=`` the maximum.
    The per-row reductions below are the same pairwise sums as ``np.nanmean`` on each
    model's column, so the scores, and hence the ties, are bit-identical.
    """
    rng = random.Random(seed)
    llm_pos = {m: j for j, m in enumerate(tables.llms)}
    model_order = np.array([llm_pos[m] for m in tables.llm_first_seen], dtype=np.intp)
    out = np.empty(
        (len(countries), len(rules), len(targets), len(schemes), n_replicates), dtype=np.int16
    )
    for ir, rule in enumerate(rules):
        # The original's veto rule scores 1 - nanmean(veto); others nanmean(value).
        raw = np.asarray(tables.values.sel(rule=rule).values, dtype=np.float64)[:, model_order]
        fill = UNSEEN_VALUE[rule]
        for ic, c in enumerate(countries):
            for it in range(len(targets)):
                for js, s in enumerate(schemes):
                    pool = pool_pos[c][s.pool]
                    n_pool = len(pool)
                    for k in range(n_replicates):
                        drawn = rng.choices(range(n_pool), k=s.size)
                        block = np.ascontiguousarray(raw[pool[drawn]].T)  # (model, rater)
                        seen = ~np.isnan(block)
                        count = seen.sum(axis=1)
                        total = np.where(seen, block, 0.0).sum(axis=1)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            mean = total / count
                        score = 1.0 - mean if rule == "veto" else mean
                        score = np.where(count > 0, score, fill).tolist()
                        top = max(score)
                        winners = [i for i, v in enumerate(score) if v >= top]
                        out[ic, ir, it, js, k] = model_order[rng.choice(winners)]
    return out
