"""Subgroups of participants (or of battles) and the classical rankings within each.

A *grouping* splits the battles into named groups. The groupings the study used
(:data:`STUDY_GROUPINGS`) are

================== ============================================ ======================
name               groups                                       unit
================== ============================================ ======================
gender             ``gender``                                   participant
age                ``age`` (6 bands)                            participant
ethnicity          ``ethnicity_simplified``                     participant
religion           ``religion_simplified``                      participant
region             ``special_region`` (from birth country)      participant
conversation_type  the battle's conversation type               battle
rep                UK REP, US REP (``in_uk_rep``, ``in_us_rep``) participant
================== ============================================ ======================

plus any user grouping: the name of a ``participants`` column, or a mapping participant
id -> group label (dict or Series, named by the caller). "Prefer not to say" is a group
of its own. Participants without a label (e.g. outside both REP samples, or missing from
a user mapping) are left out of that grouping and counted (``unlabelled``).

**Minimum size.** A group with fewer than ``min_group_size`` participants with battles
(default 20, the threshold of the study's group figures, SPEC §3.5) is not ranked: it is
listed in :attr:`SubgroupRankings.sizes` with status ``"too small"``, never silently
dropped. An unknown grouping name, an empty grouping (nobody labelled) and, for user
mappings, a label none of whose participants has battles are errors.

Each group's bootstrap has its own random stream, ``SeedSequence([seed, crc32(name)])``,
so a group's intervals do not depend on which other groups were asked for.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._display import ResultDisplay
from .battles import RankingError, battles as make_battles
from .bootstrap import METHODS, bootstrap_ratings, point_ratings, rank_values, summarise_bootstrap

#: grouping name -> participants column (``None``: defined specially below).
STUDY_GROUPINGS: dict[str, str | None] = {
    "gender": "gender",
    "age": "age",
    "ethnicity": "ethnicity_simplified",
    "religion": "religion_simplified",
    "region": "special_region",
    "conversation_type": None,
    "rep": None,
}
MIN_GROUP_SIZE = 20
REP_GROUPS: dict[str, str] = {"UK REP": "in_uk_rep", "US REP": "in_us_rep"}

GroupingSpec = str | Mapping[str, Any] | pd.Series


@dataclass
class Grouping:
    """Groups of a battle table: boolean masks over its rows.

    Attributes
    ----------
    name : str
    masks : dict
        Group label -> boolean array over the battles (groups may overlap only for
        user-defined battle masks; the study's groupings partition their labelled rows).
    unit : {"participant", "battle"}
    unlabelled : int
        Participants with battles but no group label (left out of this grouping).
    source : str
        The column or mapping the groups come from.
    """

    name: str
    masks: dict[str, np.ndarray]
    unit: str = "participant"
    unlabelled: int = 0
    source: str = ""


def _participant_labels(people: pd.DataFrame, column: str) -> pd.Series:
    labels = people.set_index(people["participant"].astype(str))[column]
    return labels


def _ordered_labels(labels: pd.Series) -> list[str]:
    present = set(labels.dropna().astype(str))
    if isinstance(labels.dtype, pd.CategoricalDtype):
        return [str(c) for c in labels.cat.categories if str(c) in present]
    return sorted(present)


def resolve_grouping(data: Any, battle_table: pd.DataFrame, by: GroupingSpec, *,
                     name: str | None = None) -> Grouping:
    """The groups of one grouping over *battle_table* (see the module docstring).

    Parameters
    ----------
    data : PrismData
        For the participant attributes.
    battle_table : DataFrame
        From :func:`~prism_stats.rankings.battles.battles`.
    by : str, mapping or Series
        A study grouping name, a ``participants`` column, or participant id -> label.
    name : str, optional
        The grouping's name (default: *by* when a string, else ``"custom"``).
    """
    people = data.participants
    person = battle_table["participant"].astype(str)
    with_battles = set(person)
    if isinstance(by, str):
        key = by.strip()
        if not key:
            raise RankingError("empty grouping name")
        name = name or key
        if key == "conversation_type":
            ctype = battle_table["conversation_type"]
            masks = {g: (ctype.astype(str) == g).to_numpy() for g in _ordered_labels(ctype)}
            return Grouping(name, masks, unit="battle", source="conversation_type")
        if key == "rep":
            flags = people.set_index(people["participant"].astype(str))
            missing = [c for c in REP_GROUPS.values() if c not in flags.columns]
            if missing:
                raise RankingError(f"grouping 'rep' needs participants columns {missing}")
            masks = {g: person.map(flags[c].astype(bool)).fillna(False).to_numpy(dtype=bool)
                     for g, c in REP_GROUPS.items()}
            in_any = {p for p in with_battles if bool(flags.loc[p, list(REP_GROUPS.values())].any())}
            return Grouping(name, masks, unit="participant", unlabelled=len(with_battles - in_any),
                            source="in_uk_rep, in_us_rep")
        column = STUDY_GROUPINGS.get(key) or key
        if column not in people.columns:
            raise RankingError(
                f"unknown grouping {key!r}: not a study grouping ({', '.join(STUDY_GROUPINGS)}) "
                "nor a column of the participants table")
        labels = _participant_labels(people, column)
        source = column
        user = False
    else:
        name = name or "custom"
        mapping = by if isinstance(by, pd.Series) else pd.Series(dict(by), dtype=object)
        mapping.index = mapping.index.astype(str)
        unknown = sorted(set(mapping.index) - set(people["participant"].astype(str)))
        if unknown:
            raise RankingError(f"grouping {name!r} names {len(unknown)} unknown participant(s), "
                               f"e.g. {unknown[:3]}")
        labels = mapping
        source = "user mapping"
        user = True
    per_battle = person.map(labels.astype(object).where(labels.notna(), None))
    order = _ordered_labels(labels)
    if not order:
        raise RankingError(f"grouping {name!r} is empty: no participant has a group label")
    masks = {g: (per_battle.astype(str) == g).to_numpy() & per_battle.notna().to_numpy() for g in order}
    if user:
        empty = [g for g, m in masks.items() if not m.any()]
        if empty:
            raise RankingError(f"grouping {name!r}: group(s) {empty} are empty (none of their "
                               "participants has opening battles)")
    labelled = {p for p in with_battles if p in labels.index and pd.notna(labels.get(p))}
    return Grouping(name, masks, unit="participant", unlabelled=len(with_battles - labelled),
                    source=source)


def group_seed(seed: int, grouping: str, group: str) -> np.random.SeedSequence:
    """The bootstrap stream of one group (independent of the other groups asked for)."""
    return np.random.SeedSequence([int(seed), zlib.crc32(f"{grouping}|{group}".encode())])


@dataclass(repr=False)
class SubgroupRankings(ResultDisplay):
    """Classical rankings per group.

    Attributes
    ----------
    table : DataFrame
        One row per (grouping, group, ranking, llm): the columns of
        :func:`~prism_stats.rankings.bootstrap.summarise_bootstrap` plus ``grouping``,
        ``group``; ``grouping == "all"`` is the whole sample.
    sizes : DataFrame
        One row per (grouping, group): ``n_participants``, ``n_battles``, ``status``
        (``"ranked"`` or ``"too small"``), plus ``unlabelled`` (per grouping).
    settings : dict
        ``min_group_size``, ``replicates``, ``seed``, ``methods``, ``level``.
    bootstraps : dict
        (grouping, group) -> the bootstrap replicates (xarray.Dataset) of that group.
    """

    table: pd.DataFrame
    sizes: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    bootstraps: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def ranks(self, ranking: str = "rc_corrected") -> pd.DataFrame:
        """The rows of one ranking method."""
        return self.table[self.table["ranking"] == ranking].reset_index(drop=True)

    def too_small(self) -> pd.DataFrame:
        """The groups not ranked because they are below the minimum size."""
        return self.sizes[self.sizes["status"] == "too small"].reset_index(drop=True)


def _rank_one(battle_table: pd.DataFrame, methods: Sequence[str], replicates: int,
              seed: np.random.SeedSequence, level: float) -> tuple[pd.DataFrame, Any]:
    """Point estimates and bootstrap summary (and replicates) of the LLMs in these battles."""
    point = point_ratings(battle_table, methods=methods)
    if replicates > 0:
        boot = bootstrap_ratings(battle_table, replicates=replicates, seed=seed, methods=methods)
        return summarise_bootstrap(point, boot, level=level), boot
    rows = []
    for m in methods:
        ranks = rank_values(point[m].to_numpy()[None, :], axis=1)[0]
        rows += [{"ranking": m, "llm": llm, "value": v, "rank": r}
                 for llm, v, r in zip(point.index, point[m], ranks, strict=True)]
    return pd.DataFrame(rows), None


def subgroup_rankings(data: Any, by: Sequence[GroupingSpec] | GroupingSpec = tuple(STUDY_GROUPINGS), *,
                      min_group_size: int = MIN_GROUP_SIZE, replicates: int = 1000, seed: int = 0,
                      methods: Sequence[str] = METHODS, level: float = 0.90,
                      battle_table: pd.DataFrame | None = None, include_all: bool = True,
                      names: Sequence[str] | None = None) -> SubgroupRankings:
    """The study's rankings (every method, with participant-bootstrap intervals) per group.

    Parameters
    ----------
    data : PrismData
    by : grouping or sequence of groupings
        Study grouping names, participants column names, or participant -> label
        mappings (see the module docstring). Default: every study grouping.
    min_group_size : int
        Groups with fewer participants with battles are reported as too small.
    replicates : int
        Bootstrap replicates per group (0: point estimates only).
    seed : int
    methods : sequence of str
        Ranking methods (:data:`~prism_stats.rankings.bootstrap.METHODS`).
    level : float
        Central interval level.
    battle_table : DataFrame, optional
        Precomputed battles (default: built from *data*).
    include_all : bool
        Also rank the whole sample (grouping ``"all"``).
    names : sequence of str, optional
        Names of the groupings in *by* that are mappings.
    """
    if min_group_size < 1:
        raise RankingError(f"min_group_size must be >= 1, got {min_group_size}")
    if replicates < 0:
        raise RankingError(f"replicates must be >= 0, got {replicates}")
    specs = [by] if isinstance(by, (str, Mapping, pd.Series)) else list(by)
    bt = make_battles(data) if battle_table is None else battle_table
    if bt.empty:
        raise RankingError("no opening battles in the data")
    groupings = []
    if include_all:
        groupings.append(Grouping("all", {"all": np.ones(len(bt), dtype=bool)}, source="everyone"))
    mapping_names = list(names or [])
    for spec in specs:
        nm = None if isinstance(spec, str) else (mapping_names.pop(0) if mapping_names else None)
        groupings.append(resolve_grouping(data, bt, spec, name=nm))
    seen: set[str] = set()
    for g in groupings:
        if g.name in seen:
            raise RankingError(f"grouping {g.name!r} asked for twice")
        seen.add(g.name)
    frames, size_rows, boots = [], [], {}
    person = bt["participant"].astype(str)
    for g in groupings:
        for label, mask in g.masks.items():
            n_people = int(person[mask].nunique())
            ranked = n_people >= min_group_size
            size_rows.append({"grouping": g.name, "group": label, "n_participants": n_people,
                              "n_battles": int(mask.sum()), "status": "ranked" if ranked else "too small",
                              "unlabelled": g.unlabelled, "source": g.source})
            if not ranked:
                continue
            sub = bt.loc[mask].reset_index(drop=True)
            res, boots[(g.name, label)] = _rank_one(sub, methods, replicates,
                                                    group_seed(seed, g.name, label), level)
            res.insert(0, "group", label)
            res.insert(0, "grouping", g.name)
            frames.append(res)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return SubgroupRankings(table=table, sizes=pd.DataFrame(size_rows), settings={
        "min_group_size": int(min_group_size), "replicates": int(replicates), "seed": int(seed),
        "methods": list(methods), "level": float(level), "n_battles": len(bt)}, bootstraps=boots)
