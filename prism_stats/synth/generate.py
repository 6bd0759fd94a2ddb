"""Run the generator's stages: :func:`generate` (in memory) and :func:`synthesize` (to disk).

Each stage draws from its own child of ``numpy.random.SeedSequence(seed)``
(:func:`stage_rngs`); :func:`write_release` writes the four JSONL files and
:func:`write_truth` the truth folder. The process is described in :mod:`prism_stats.synth`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from prism_stats import __version__, vocab
from prism_stats._io import atomic_path, now_iso, write_json_atomic, write_text_atomic

from .conversations import Design, make_design
from .people import make_participants
from .population import check_planted, group_optima, true_population_means
from .scenarios import SCENARIOS, Departures, draw_departures
from .scenarios import resolve as resolve_departures
from .release import (
    ReleaseTexts,
    RepSample,
    _readable,
    balanced_subset,
    conversation_and_utterance_records,
    metadata_records,
    release_texts,
    rep_samples,
    survey_records,
    write_jsonl,
)
from .scores import expected_observed, scores
from .stated import StatedLink, observed_scale, plant_stated_link
from .text import text_features
from .topics import TopicDraw, draw_topics, set_opening_prompts, write_topic_truth
from .truth import PLANTED_DESCRIPTION, make_truth
from .util import SynthError

__all__ = [
    "DEFAULT_PARTICIPANTS",
    "DEFAULT_SEED",
    "SCENARIOS",
    "Departures",
    "Design",
    "SynthData",
    "SynthError",
    "SynthResult",
    "expected_observed",
    "generate",
    "make_design",
    "make_participants",
    "make_truth",
    "scores",
    "synthesize",
    "text_features",
    "true_population_means",
    "write_release",
    "write_truth",
]

DEFAULT_PARTICIPANTS = 1500
DEFAULT_SEED = 20240422
#: Independent random streams, one per stage (children of SeedSequence(seed)).
STAGES: tuple[str, ...] = (
    "participants",
    "design",
    "truth",
    "scores",
    "texts",
    "balanced",
    "rep",
    "metadata",
    "stated",  # appended last: the other streams stay the same
    "topics",  # appended after "stated": the other streams stay the same
    "departures",  # appended after "topics": the other streams stay the same
)


def stage_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One generator per stage of :data:`STAGES`, from ``SeedSequence(seed)``."""
    children = np.random.SeedSequence(seed).spawn(len(STAGES))
    return {
        name: np.random.default_rng(child) for name, child in zip(STAGES, children, strict=True)
    }


@dataclass
class SynthData:
    """A generated release held in memory.

    Attributes
    ----------
    participants
        Survey fields and derived columns (``people.make_participants``).
    design
        Conversations and the tidy response design (``conversations.Design``).
    ratings
        Score-process output aligned with ``design.responses``: ``llm``, ``latent``,
        ``text_effect``, ``score``, ``chosen``.
    truth
        The true parameters (``chain`` = ``draw`` = 1).
    texts
        Responses, prompts, feedback and attribute answers.
    balanced_conversations, balanced_users
        Balanced-subset flags per conversation and per participant.
    rep
        UK and US REP samples (flags and cell tables).
    seed, n
        The seed and the number of participants.
    topics
        The planted topics of the opening prompts (:class:`~.topics.TopicDraw`).
    """

    participants: pd.DataFrame
    design: Design
    ratings: pd.DataFrame
    truth: xr.Dataset
    texts: ReleaseTexts
    balanced_conversations: np.ndarray
    balanced_users: np.ndarray
    rep: dict[str, RepSample]
    seed: int
    n: int
    stated_link: dict | None = None
    topics: TopicDraw | None = None

    def records(self, *, metadata: bool = False) -> dict[str, list[dict]]:
        """The release records by file name (``survey.jsonl`` ... ``metadata.jsonl``)."""
        survey = survey_records(self.participants, self.balanced_users, self.rep)
        conversations, utterances = conversation_and_utterance_records(
            self.participants,
            self.design.conversations,
            self.design.responses,
            self.ratings,
            self.texts,
            self.balanced_conversations,
        )
        out = {
            "survey.jsonl": survey,
            "conversations.jsonl": conversations,
            "utterances.jsonl": utterances,
        }
        if metadata:
            rng = stage_rngs(self.seed)["metadata"]  # same flags on every call
            out["metadata.jsonl"] = metadata_records(survey, conversations, utterances, rng)
        return out

    def counts(self) -> dict[str, int]:
        """Sizes of the release (the published ones at the default size in brackets in docs)."""
        r = self.design.responses
        c = self.design.conversations
        later_a = r.index[(r["turn"] > 0) & (r["within_turn"] == 0)]
        double = int(
            (
                self.ratings["chosen"].to_numpy()[later_a]
                & self.ratings["chosen"].to_numpy()[later_a + 1]
            ).sum()
        )
        opening = c["n_shown"].value_counts()
        return {
            "participants": self.n,
            "survey_only": int(self.participants["survey_only"].sum()),
            "with_conversations": int((self.participants["num_completed_conversations"] > 0).sum()),
            "conversations": len(c),
            "interactions": int(r["interaction"].nunique()),
            "utterances": len(r),
            "openers_4": int(opening.get(4, 0)),
            "openers_3": int(opening.get(3, 0)),
            "openers_2": int(opening.get(2, 0)),
            "chosen": int(self.ratings["chosen"].sum()),
            "double_chosen": double,
            "empty_string": int(r["empty_string"].sum()),
            "balanced_users": int(self.balanced_users.sum()),
            "balanced_conversations": int(self.balanced_conversations.sum()),
            "balanced_utterances": int(
                self.balanced_conversations[r["conversation"].to_numpy()].sum()
            ),
            "uk_rep": self.rep["uk"].size,
            "us_rep": self.rep["us"].size,
        }

    def score_moments(self) -> dict[str, float]:
        """Mean, sd and the piles at 1, 50 and 100 of the observed scores."""
        s = self.ratings["score"].to_numpy()
        return {
            "mean": float(s.mean()),
            "sd": float(s.std(ddof=1)),
            "share_1": float((s == 1).mean()),
            "share_50": float((s == 50).mean()),
            "share_100": float((s == 100).mean()),
            "opening_mean": float(s[self.design.responses["turn"].to_numpy() == 0].mean()),
        }


def generate(
    participants: int = DEFAULT_PARTICIPANTS,
    seed: int = DEFAULT_SEED,
    *,
    truth: xr.Dataset | None = None,
    text_effects: bool = True,
    stated_link: StatedLink | bool | None = None,
    departures: Departures | str | Mapping | None = None,
) -> SynthData:
    """Generate a synthetic release in memory (nothing is written).

    Parameters
    ----------
    participants
        Number of participants (default 1,500, the published size).
    seed
        Master seed; every stage uses its own child stream.
    truth
        Parameters to use instead of drawing them (names and dims of
        ``ARCHITECTURE.md``; ``participant`` must cover the participants with
        conversations, ``country`` their residence countries). The planted-pattern check
        is then skipped.
    text_effects
        Whether the response text features enter the scores (when drawing the truth).
    stated_link
        Plant a stated-vs-revealed link (``True``: the default coefficients of
        :class:`~prism_stats.synth.stated.StatedLink`; off by default, see
        :mod:`~prism_stats.synth.stated`).
    departures
        How the world departs from the rating model: a scenario name of
        :data:`~prism_stats.synth.scenarios.SCENARIOS`, a dict of knobs or a
        :class:`~prism_stats.synth.scenarios.Departures` (default: none). Their
        parameters are drawn from their own stream and added to the truth (``dep_*``),
        so the release without departures is unchanged for a given seed.

    Returns
    -------
    SynthData
    """
    if int(participants) != participants or participants < 10:
        raise SynthError(f"participants must be an integer >= 10, got {participants!r}")
    dep = resolve_departures(departures)
    rngs = stage_rngs(seed)
    people = make_participants(int(participants), rngs["participants"], skew=dep.skew)
    design = make_design(people, rngs["design"])
    if truth is None:
        truth = make_truth(people, rngs["truth"], text_features=text_effects)
    else:
        truth = truth.copy()  # attrs are updated below; leave the caller's object alone
    planted = None
    if stated_link:
        link = stated_link if isinstance(stated_link, StatedLink) else StatedLink()
        planted = plant_stated_link(people, design.conversations, design.responses, link,
                                    rngs["stated"])
    if dep.active:
        truth = draw_departures(truth, people, dep, rngs["departures"])
    ratings = scores(design, people, truth, rngs["scores"],
                     offset=None if planted is None else planted.offset)
    texts = release_texts(
        design.conversations, design.responses, ratings["llm"].to_numpy(), rngs["texts"]
    )
    if planted is not None:
        texts.performance = planted.performance
        planted.truth["observed_scale"] = observed_scale(planted, design.responses,
                                                         ratings["score"].to_numpy())
    topics = draw_topics(people, design.conversations, rngs["topics"])
    set_opening_prompts(texts, design.responses, topics.prompts)
    balanced_conv = balanced_subset(design.conversations, rngs["balanced"])
    balanced_users = np.zeros(len(people), dtype=bool)
    balanced_users[design.conversations["participant"].to_numpy()[balanced_conv]] = True
    rep = rep_samples(people, balanced_users, rngs["rep"])
    truth.attrs.update(
        seed=int(seed),
        n=int(participants),
        n_participants=int(participants),
        version=__version__,
        generator="prism_stats.synth",
    )
    return SynthData(
        people,
        design,
        ratings,
        truth,
        texts,
        balanced_conv,
        balanced_users,
        rep,
        int(seed),
        int(participants),
        None if planted is None else planted.truth,
        topics,
    )


def write_release(
    folder: str | Path, data: SynthData, *, metadata: bool = False
) -> dict[str, Path]:
    """Write the release files of *data* into *folder*; returns their paths by file name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: write_jsonl(folder / name, recs)
        for name, recs in data.records(metadata=metadata).items()
    }


def write_truth(
    folder: str | Path, data: SynthData, *, extra: dict | None = None
) -> dict[str, Path]:
    """Write ``params.nc``, ``population_means.csv`` and ``truth.json`` into *folder*."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth = data.truth
    pop = true_population_means(truth)
    optima = group_optima(pop)
    params_path = folder / "params.nc"
    ds = truth.copy()
    ds.attrs = {
        k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in truth.attrs.items()
    }
    ds.attrs["planted"] = PLANTED_DESCRIPTION
    with atomic_path(params_path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
        _readable(tmp)
    pop_path = write_text_atomic(folder / "population_means.csv", pop.to_csv(index=False))

    def scalar(name: str) -> float | None:
        return float(truth[name].values.squeeze()) if name in truth else None

    info = {
        "generator": "prism_stats.synth",
        "version": __version__,
        "created": now_iso(),
        "seed": data.seed,
        "participants": data.n,
        "scalars": {
            name: scalar(name)
            for name in (
                "intercept",
                "sigma",
                "sigma_noise",
                "sigma_participant",
                "pi_default",
                "turn_effect",
            )
        },
        "scales": {
            name: scalar(name)
            for name in truth.data_vars
            if name.startswith("sigma_") and name not in ("sigma_noise", "sigma_participant")
        },
        "text_features": (
            {
                f: {"beta": float(b), "mean": float(m)}
                for f, b, m in zip(
                    truth["text_feature"].values,
                    truth["text_beta"].values,
                    truth["text_mean"].values,
                    strict=True,
                )
            }
            if "text_beta" in truth
            else None
        ),
        "planted": {
            "description": PLANTED_DESCRIPTION,
            "check": check_planted(pop),
            "group_optima": optima.to_dict(orient="records"),
        },
        "departures": json.loads(truth.attrs.get("departures", "{}")),
        "counts": data.counts(),
        "score_moments": data.score_moments(),
        "rep_cells": {c: data.rep[c].cells.to_dict(orient="records") for c in vocab.COUNTRIES_MRP},
        **({"stated_link": data.stated_link} if data.stated_link else {}),
        **(extra or {}),
    }
    json_path = write_json_atomic(folder / "truth.json", info)
    topic_paths = write_topic_truth(folder, data.topics) if data.topics is not None else {}
    return {"params.nc": params_path, "population_means.csv": pop_path, "truth.json": json_path,
            **topic_paths}


@dataclass
class SynthResult:
    """What :func:`synthesize` wrote and measured.

    Attributes
    ----------
    folder
        The output folder.
    paths
        Release files by name, plus the truth files as ``truth/<name>``.
    truth
        The true parameters.
    population_means
        True census-population means (``truth/population_means.csv``).
    counts, moments, seconds
        Release sizes, score moments and stage timings.
    data
        The in-memory release.
    """

    folder: Path
    paths: dict[str, Path]
    truth: xr.Dataset
    population_means: pd.DataFrame
    counts: dict[str, int]
    moments: dict[str, float]
    seconds: dict[str, float]
    data: SynthData


def synthesize(
    out_dir: str | Path,
    participants: int = DEFAULT_PARTICIPANTS,
    seed: int = DEFAULT_SEED,
    *,
    truth: xr.Dataset | None = None,
    metadata: bool = False,
    text_effects: bool = True,
    stated_link: StatedLink | bool | None = None,
    departures: Departures | str | Mapping | None = None,
) -> SynthResult:
    """Generate a synthetic PRISM release and write it, with its truth, to *out_dir*.

    Parameters
    ----------
    out_dir
        Folder for ``survey.jsonl``, ``conversations.jsonl``, ``utterances.jsonl``
        (``metadata.jsonl`` with *metadata*) and ``truth/``.
    participants
        Number of participants (1,500 = the published size).
    seed
        Master seed (the same seed gives byte-identical data files).
    truth
        Optional parameters to use instead of drawing them (see :func:`generate`).
    metadata
        Also write ``metadata.jsonl``.
    text_effects
        Whether the response text features enter the scores (when drawing the truth).
    departures
        Departures from the rating model (see :func:`generate`).

    Returns
    -------
    SynthResult
    """
    t0 = time.perf_counter()
    data = generate(participants, seed, truth=truth, text_effects=text_effects,
                    stated_link=stated_link, departures=departures)
    t1 = time.perf_counter()
    out_dir = Path(out_dir)
    paths = write_release(out_dir, data, metadata=metadata)
    t2 = time.perf_counter()
    truth_paths = write_truth(out_dir / "truth", data)
    t3 = time.perf_counter()
    paths.update({f"truth/{k}": v for k, v in truth_paths.items()})
    pop = pd.read_csv(truth_paths["population_means.csv"])
    seconds = {
        "generate": t1 - t0,
        "write_release": t2 - t1,
        "write_truth": t3 - t2,
        "total": t3 - t0,
    }
    return SynthResult(
        out_dir, paths, data.truth, pop, data.counts(), data.score_moments(), seconds, data
    )
