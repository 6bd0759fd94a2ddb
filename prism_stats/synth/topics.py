"""Write the opening prompts about planted topics whose choice depends on who writes them.

The opening prompt of every synthetic conversation is written about one of 20 planted
topics (named after the study's clusters, SPEC §3.2) or about nothing in particular
(:data:`NO_TOPIC`, the counterpart of the study's outliers). The topic follows a
multinomial logit with participant random effects::

    P(topic k | participant p, conversation type t) = softmax_k(eta),  eta_none = 0,
    eta_k = alpha_k + sum_f beta_k[level_f(p)] + beta_k[t] + u[p, k],
    u[p, k] ~ N(0, sigma_participant = 1.2)   (people return to their topics)

with the factors of the study's topic regressions (gender, age, region =
``special_region``, ethnicity = ``ethnicity_simplified``, religion =
``religion_simplified``, conversation type) and their reference levels (Male, 18-24, US,
White, No Affiliation, unguided). ``beta`` is zero except for the planted effects of
:data:`TOPICS` (log-odds, e.g. values-guided conversations about relationships,
non-binary participants about gender identity, the Middle East about Israel-Palestine;
modelled on the study's significant coefficients). ``alpha`` is calibrated on the drawn
release so that the expected topic shares equal the study's cluster sizes over 8,011
(``size``), the rest (~37%) going to :data:`NO_TOPIC`.

A topic's prompt is a generic opener (sometimes) and words drawn from the topic's own
vocabulary, a few function words and a little generic noise, cut to a length drawn
from the published opening-prompt length distribution (SPEC §1.4, as the filler prompts
before); :data:`NO_TOPIC` prompts are filler prose of the same lengths.

The truth (:meth:`TopicDraw.assignments`, :meth:`TopicDraw.effects`) has the topic of
every conversation and every effect on two scales: ``logodds`` (beta) and ``pp``, the
average effect on the probability of the topic in percentage points over the release's
conversations (each conversation's probability with the factor at the level minus at
the reference level, the participant effects and the other factors as drawn) -- the
quantity a linear probability model's coefficient approximates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from prism_stats import vocab
from prism_stats._io import write_json_atomic, write_text_atomic

from . import tables as T
from .release import ReleaseTexts
from .text import prose
from .util import text_lengths

#: The conversations' non-topic (counterpart of the study's outliers, cluster -1).
NO_TOPIC = "(no topic)"

#: Factors of the topic process: (label, participant column of the synthetic people or
#: "conversation_type", reference level). Labels and references are the study's (§3.2).
FACTORS: tuple[tuple[str, str, str], ...] = (
    ("gender", "gender", "Male"),
    ("age", "age_band", "18-24"),
    ("region", "special_region", "US"),
    ("ethnicity", "ethnicity_simplified", "White"),
    ("religion", "religion_simplified", "No Affiliation"),
    ("conversation type", "conversation_type", "unguided"),
)
#: Levels of each factor (vocabulary order).
FACTOR_LEVELS: dict[str, tuple[str, ...]] = {
    "gender": vocab.GENDERS,
    "age": vocab.AGE_BANDS,
    "region": vocab.SPECIAL_REGIONS,
    "ethnicity": vocab.ETHNICITY_SIMPLIFIED,
    "religion": vocab.RELIGION_SIMPLIFIED,
    "conversation type": vocab.CONVERSATION_TYPES,
}
VALUES, CONTROVERSY = "conversation type: values guided", "conversation type: controversy guided"
_NON_US = tuple(f"region: {r}" for r in vocab.SPECIAL_REGIONS if r != "US")


def term(factor: str, level: str) -> str:
    """The name of a (non-reference) level's effect, e.g. ``"gender: Female"``."""
    return f"{factor}: {level}"


def all_terms() -> list[str]:
    """Every non-reference level of every factor, in factor and vocabulary order."""
    return [term(f, lv) for f, _, ref in FACTORS for lv in FACTOR_LEVELS[f] if lv != ref]


@dataclass(frozen=True)
class PlantedTopic:
    """One planted topic: name, the study's cluster size, vocabulary and effects.

    ``effects`` maps terms (:func:`term`) to log-odds effects against :data:`NO_TOPIC`.
    """

    name: str
    size: int
    words: tuple[str, ...]
    effects: Mapping[str, float] = field(default_factory=dict)


def _w(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


#: The planted topics (study names and sizes, SPEC §3.2; vocabularies and effects are
#: this package's, modelled on the study's significant coefficients).
TOPICS: tuple[PlantedTopic, ...] = (
    PlantedTopic("Greeting Introductions", 131, _w(
        "hello, hi, hey, greetings, howdy, good morning, good evening, how are you, nice to meet"
        " you, who are you, your name, introduce yourself, chat with me, hiya, what's up"),
        {VALUES: -0.8, CONTROVERSY: -0.9, "age: 55-64": -0.6, "age: 65+": -0.7}),
    PlantedTopic("Discussions on Abortion", 158, _w(
        "abortion, pro choice, pro life, roe v wade, pregnancy, fetus, unborn, reproductive"
        " rights, termination, bodily autonomy, planned parenthood, trimester, embryo, abortion"
        " ban, abortion law"),
        {CONTROVERSY: 1.3, **dict.fromkeys(_NON_US, -0.9)}),
    PlantedTopic("Israel-Palestine Conflict", 320, _w(
        "israel, palestine, gaza, hamas, west bank, jerusalem, zionism, idf, netanyahu,"
        " palestinian, israeli, ceasefire, settlements, two state solution, hostages"),
        {CONTROVERSY: 1.4, "region: Middle East": 1.4, "religion: Muslim": 0.6}),
    PlantedTopic("Holiday Celebration Planning", 98, _w(
        "christmas, birthday party, thanksgiving, halloween, celebration, decorations, gifts,"
        " new year, easter, anniversary, festive, guests, diwali, eid, party ideas"),
        {VALUES: -0.5, CONTROVERSY: -1.0, "ethnicity: Asian": -0.5}),
    PlantedTopic("Religion and Spirituality", 441, _w(
        "god, religion, faith, prayer, bible, church, spiritual, soul, heaven, afterlife, jesus,"
        " allah, quran, meditation, divine, atheism, sin"),
        {VALUES: 1.0, CONTROVERSY: 0.5, "gender: Non-binary / third gender": -1.0,
         "religion: Christian": 0.5, "religion: Muslim": 0.6}),
    PlantedTopic("Animal and Pet Inquiries", 188, _w(
        "dog, cat, puppy, kitten, pet, vet, breed, animals, dog food, leash, aquarium, hamster,"
        " parrot, rabbit, adopt a pet"),
        {CONTROVERSY: -0.8, "gender: Female": 0.4, "region: Africa": -0.6}),
    PlantedTopic("Recipe and Cooking Queries", 360, _w(
        "recipe, cook, bake, oven, chicken, pasta, ingredients, dinner ideas, vegetarian, soup,"
        " cake, flour, sauce, garlic, spices"),
        {VALUES: -1.3, CONTROVERSY: -1.6, "gender: Female": 0.4, "age: 45-54": -0.4}),
    PlantedTopic("Health and Wellness Advice", 111, _w(
        "health, exercise, diet, sleep, lose weight, doctor, symptoms, vitamins, stress,"
        " fitness, headache, calories, wellness, blood pressure, anxiety"),
        {CONTROVERSY: -0.4}),
    PlantedTopic("Weather Inquiries", 85, _w(
        "weather, forecast, rain, sunny, temperature, snow, umbrella, humidity, storm, cloudy,"
        " degrees, windy, heatwave"),
        {CONTROVERSY: -1.0, "region: Latin America and the Caribbean": 0.6}),
    PlantedTopic("Climate Change", 193, _w(
        "climate change, global warming, carbon, emissions, fossil fuels, renewable energy,"
        " solar panels, greenhouse gases, net zero, sea level, deforestation, sustainability,"
        " ice caps"),
        {CONTROVERSY: 0.4, "region: Latin America and the Caribbean": -0.5,
         "ethnicity: Black": -0.5}),
    PlantedTopic("Economic Policy and Income Inequality", 135, _w(
        "inequality, wealth, taxes, minimum wage, poverty, billionaires, inflation, economy,"
        " capitalism, socialism, redistribution, universal basic income, welfare state, wages"),
        {CONTROVERSY: 0.6}),
    PlantedTopic("Gender and LGBTQ+ Identity", 286, _w(
        "transgender, gender identity, lgbtq, gay, lesbian, pronouns, nonbinary, same sex"
        " marriage, pride month, queer, sexuality, trans rights, feminism, bisexual"),
        {CONTROVERSY: 1.0, VALUES: 0.4, "gender: Non-binary / third gender": 1.6,
         "gender: Female": 0.35}),
    PlantedTopic("Popular Culture (Sports, Music, TV)", 493, _w(
        "movie, music, football, song, netflix, tv series, band, album, actor, taylor swift,"
        " marvel, video game, premier league, celebrity, concert"),
        {VALUES: -1.3, CONTROVERSY: -1.5, "gender: Female": -0.5, "age: 55-64": -0.5}),
    PlantedTopic("Exploring AI and Machine Learning", 129, _w(
        "artificial intelligence, machine learning, neural network, chatbot, chatgpt, algorithm,"
        " robots, automation, ai, data science, large language model, deep learning, sentient"),
        {CONTROVERSY: -0.3, "gender: Female": -0.4, "religion: Muslim": -0.6}),
    PlantedTopic("Travel Recommendations", 207, _w(
        "travel, trip, visit, destination, flights, hotel, itinerary, beach, tourist,"
        " backpacking, passport, vacation, sightseeing, paris, japan"),
        {VALUES: -0.8, CONTROVERSY: -1.2, "age: 65+": 0.5, "region: Europe": 0.3}),
    PlantedTopic("Election and Political Parties", 401, _w(
        "election, vote, democrats, republicans, trump, biden, parliament, labour party,"
        " conservatives, candidate, ballot, campaign, president, voting, political party"),
        {CONTROVERSY: 1.3, VALUES: 0.7, "age: 65+": 0.6, "gender: Female": -0.3,
         "region: Europe": -0.5}),
    PlantedTopic("Job Search", 448, _w(
        "job, resume, cv, job interview, career, hiring, salary, employer, cover letter,"
        " linkedin, job application, promotion, unemployed, recruiter, job market"),
        {CONTROVERSY: -1.0, VALUES: 0.3, "age: 45-54": -0.5, "age: 55-64": -0.7,
         "age: 65+": -0.7, "region: Latin America and the Caribbean": -0.6}),
    PlantedTopic("Managing Relationships", 816, _w(
        "relationship, boyfriend, girlfriend, partner, marriage, dating, breakup, friendship,"
        " husband, wife, argue, trust issues, family, parents, love"),
        {VALUES: 1.3, CONTROVERSY: -0.6, "gender: Female": 0.25, "age: 55-64": -0.4}),
    PlantedTopic("Debating Immigration Policies", 131, _w(
        "immigration, immigrants, refugees, border, asylum seekers, migrants, deportation,"
        " visa, illegal immigration, citizenship, integration, border control, migration"),
        {CONTROVERSY: 1.2, "region: Europe": 0.5, "region: UK": 0.5}),
    PlantedTopic("Discussions on Race and Racism", 99, _w(
        "racism, race, racial, discrimination, black lives matter, white privilege, prejudice,"
        " segregation, diversity, affirmative action, slavery, hate crime, systemic racism"),
        {CONTROVERSY: 1.0, "ethnicity: Black": 0.7, "region: Europe": -0.4}),
)
TOPIC_NAMES: tuple[str, ...] = tuple(t.name for t in TOPICS)

#: Openers shared by all topics (used by ~60% of topic prompts); made of English stop
#: words only, so that they carry no topic of their own for any embedding that drops them.
_OPENERS: tuple[str, ...] = (
    "what do you", "what about", "can you", "how do i", "how can i", "is it", "should i",
    "why do", "why is", "would you", "could you", "what is the", "do you", "are there",
    "what are the", "is there", "where can i", "which is", "how much", "i am",
)
#: Function words (English stop words, which the embeddings drop) and generic noise.
_FUNCTION = ("the", "a", "of", "about", "is", "and", "to", "in", "my", "for", "it", "with",
             "what", "how", "do", "you", "should", "i", "are", "this")
_NOISE = ("people", "really", "best", "way", "good", "things", "idea", "important", "today",
          "question", "world", "time", "think", "life", "help", "new", "some", "right")


@dataclass(frozen=True)
class TopicProcess:
    """Settings of the topic process (configuration as data).

    Attributes
    ----------
    topics
        The planted topics.
    sigma_participant
        Sd of the participant random effects (log-odds, per topic). 1.2 gives an
        intra-participant correlation of a topic indicator of ~0.06, a design effect of
        ~1.3 for participant-level factors at ~5.7 prompts per person.
    topic_word_share, noise_share
        Probability that a word of a topic prompt is a topic word / a generic noise word
        (the rest are function words).
    opener_share
        Probability that a topic prompt starts with a generic opener.
    reference_conversations
        The study's number of opening prompts: shares are ``size`` over it.
    """

    topics: tuple[PlantedTopic, ...] = TOPICS
    sigma_participant: float = 1.2
    topic_word_share: float = 0.55
    noise_share: float = 0.15
    opener_share: float = 0.6
    reference_conversations: int = 8011

    def shares(self) -> np.ndarray:
        """Target shares: :data:`NO_TOPIC` first, then the topics."""
        s = np.array([t.size for t in self.topics], dtype=float) / self.reference_conversations
        if s.sum() >= 1:
            raise ValueError("topic sizes exceed the reference number of conversations")
        return np.concatenate([[1 - s.sum()], s])

    def names(self) -> tuple[str, ...]:
        return (NO_TOPIC, *(t.name for t in self.topics))

    def beta(self) -> pd.DataFrame:
        """Log-odds effects, terms x classes (:data:`NO_TOPIC` column all zero)."""
        terms = all_terms()
        out = pd.DataFrame(0.0, index=pd.Index(terms, name="term"), columns=list(self.names()))
        for t in self.topics:
            unknown = set(t.effects) - set(terms)
            if unknown:
                raise ValueError(f"topic {t.name!r}: unknown effect terms {sorted(unknown)}")
            for key, value in t.effects.items():
                out.loc[key, t.name] = value
        return out


DEFAULT_TOPIC_PROCESS = TopicProcess()


def participant_levels(people: pd.DataFrame) -> pd.DataFrame:
    """The demographic factor levels of the synthetic people (columns = factor labels)."""
    birth = people["birth_iso"].to_numpy()
    region = [vocab.special_region(None if b == vocab.PREFER_NOT else vocab.COUNTRY_BY_ISO3[b])
              for b in birth]
    return pd.DataFrame({
        "gender": people["gender"].astype(str).to_numpy(),
        "age": people["age_band"].astype(str).to_numpy(),
        "region": region,
        "ethnicity": people["ethnicity_categorised"].map(
            vocab.ETHNICITY_SIMPLIFIED_FROM_CATEGORISED).to_numpy(),
        "religion": people["religion_categorised"].map(
            vocab.RELIGION_SIMPLIFIED_FROM_CATEGORISED).to_numpy(),
    })


def _dummies(levels: pd.DataFrame) -> np.ndarray:
    """Conversation x term indicator matrix (columns :func:`all_terms`)."""
    cols = []
    for f, _, ref in FACTORS:
        for lv in FACTOR_LEVELS[f]:
            if lv != ref:
                cols.append((levels[f].to_numpy() == lv).astype(float))
    return np.column_stack(cols)


@dataclass
class TopicDraw:
    """The drawn topics of one release, with everything needed for the truth.

    Attributes
    ----------
    process
        The settings used.
    levels
        Conversation x factor levels (the six factors of :data:`FACTORS`).
    participant
        Participant index of each conversation.
    alpha
        Calibrated intercepts per class (:data:`NO_TOPIC` = 0).
    u
        Participant x class random effects (:data:`NO_TOPIC` column 0).
    topic
        Class index of each conversation (0 = :data:`NO_TOPIC`, k = ``topics[k-1]``).
    prompts
        The opening prompt of each conversation.
    """

    process: TopicProcess
    levels: pd.DataFrame
    participant: np.ndarray
    alpha: np.ndarray
    u: np.ndarray
    topic: np.ndarray
    prompts: list[str]

    def linear_predictor(self) -> np.ndarray:
        """Conversation x class ``eta`` (see the module docstring)."""
        beta = self.process.beta().to_numpy()
        return self.alpha[None, :] + _dummies(self.levels) @ beta + self.u[self.participant]

    def assignments(self, conversation_ids: list[str] | None = None) -> pd.DataFrame:
        """The true topic of every conversation: ``conversation``, ``topic``, ``topic_label``.

        ``topic`` is -1 for :data:`NO_TOPIC` and 0.. for the topics in order (the layout
        of a topic assignments file, so the truth can be read back as one).
        """
        ids = conversation_ids or [f"c{i}" for i in range(len(self.topic))]
        names = np.array(self.process.names(), dtype=object)
        return pd.DataFrame({"conversation": ids, "topic": self.topic - 1,
                             "topic_label": names[self.topic]})

    def effects(self) -> pd.DataFrame:
        """Every (topic, term): ``logodds`` and the average effect ``pp`` (see the docstring).

        Columns ``topic``, ``factor``, ``level``, ``term``, ``logodds``, ``pp``, ``planted``
        (the effect is one of the planted non-zero ones). Rows for the topics only.
        """
        beta_df = self.process.beta()
        beta = beta_df.to_numpy()
        x = _dummies(self.levels)
        eta = self.alpha[None, :] + x @ beta + self.u[self.participant]
        rows = []
        col = 0
        names = self.process.names()
        for f, _, ref in FACTORS:
            lv_list = [lv for lv in FACTOR_LEVELS[f] if lv != ref]
            idx = np.arange(col, col + len(lv_list))
            col += len(lv_list)
            base = eta - x[:, idx] @ beta[idx]
            p_ref = softmax(base, axis=1).mean(axis=0)
            for j, lv in zip(idx, lv_list, strict=True):
                p_lv = softmax(base + beta[j][None, :], axis=1).mean(axis=0)
                for k in range(1, len(names)):
                    rows.append((names[k], f, lv, term(f, lv), float(beta[j, k]),
                                 100 * float(p_lv[k] - p_ref[k]), bool(beta[j, k] != 0)))
        return pd.DataFrame(rows, columns=["topic", "factor", "level", "term", "logodds", "pp",
                                           "planted"])

    def summary(self) -> dict:
        """JSON-ready description: settings, calibrated intercepts and achieved shares."""
        names = self.process.names()
        counts = np.bincount(self.topic, minlength=len(names))
        return {
            "classes": list(names),
            "no_topic": NO_TOPIC,
            "sigma_participant": self.process.sigma_participant,
            "factors": [{"factor": f, "reference": ref} for f, _, ref in FACTORS],
            "target_shares": dict(zip(names, np.round(self.process.shares(), 5).tolist(),
                                      strict=True)),
            "alpha": dict(zip(names, np.round(self.alpha, 5).tolist(), strict=True)),
            "counts": dict(zip(names, counts.tolist(), strict=True)),
            "planted_effects": {t.name: dict(t.effects) for t in self.process.topics},
        }


def _calibrate_alpha(base: np.ndarray, target: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Intercepts whose expected shares over the conversations equal *target*."""
    alpha = np.log(target / target[0])
    for _ in range(iterations):
        share = softmax(base + alpha[None, :], axis=1).mean(axis=0)
        step = np.log(target / share)
        alpha = alpha + step - step[0]
        if np.max(np.abs(step)) < 1e-10:
            break
    return alpha


def draw_topics(people: pd.DataFrame, conversations: pd.DataFrame, rng: np.random.Generator,
                process: TopicProcess = DEFAULT_TOPIC_PROCESS) -> TopicDraw:
    """Draw the topic and the opening prompt of every conversation.

    Parameters
    ----------
    people
        The synthetic participants (``synth_people.make_participants``).
    conversations
        The design's conversations (``participant`` index, ``conversation_type``).
    rng
        The topic stream (its own child seed, so nothing else of the release changes).
    process
        The settings (:data:`DEFAULT_TOPIC_PROCESS`).
    """
    part = conversations["participant"].to_numpy()
    levels = participant_levels(people).iloc[part].reset_index(drop=True)
    levels["conversation type"] = conversations["conversation_type"].astype(str).to_numpy()
    n_classes = len(process.topics) + 1
    u = rng.normal(0.0, process.sigma_participant, size=(len(people), n_classes))
    u[:, 0] = 0.0
    base = _dummies(levels) @ process.beta().to_numpy() + u[part]
    alpha = _calibrate_alpha(base, process.shares())
    p = softmax(base + alpha[None, :], axis=1)
    cum = np.cumsum(p, axis=1)
    topic = np.minimum((rng.random(len(p))[:, None] > cum).sum(axis=1), n_classes - 1)
    prompts = topic_prompts(topic, rng, process)
    return TopicDraw(process, levels, part, alpha, u, topic, prompts)


def topic_prompts(topic: np.ndarray, rng: np.random.Generator,
                  process: TopicProcess = DEFAULT_TOPIC_PROCESS) -> list[str]:
    """Opening prompts of the given classes with the published length distribution."""
    lengths = text_lengths(len(topic), T.OPENING_PROMPT_CHARS, rng)
    out = np.empty(len(topic), dtype=object)
    none = np.flatnonzero(topic == 0)
    out[none] = prose(lengths[none], rng)
    kinds = np.array([process.topic_word_share, process.noise_share])
    for i in np.flatnonzero(topic > 0):
        words = process.topics[topic[i] - 1].words
        parts = [_OPENERS[rng.integers(len(_OPENERS))]] if rng.random() < process.opener_share else []
        length = sum(len(w) + 1 for w in parts)
        while length <= lengths[i]:
            r = rng.random()
            if r < kinds[0]:
                w = words[rng.integers(len(words))]
            elif r < kinds.sum():
                w = _NOISE[rng.integers(len(_NOISE))]
            else:
                w = _FUNCTION[rng.integers(len(_FUNCTION))]
            parts.append(w)
            length += len(w) + 1
        text = " ".join(parts)[: lengths[i]].rstrip()
        out[i] = text[:1].upper() + text[1:]
    texts = list(out)
    for i in np.flatnonzero(rng.random(len(texts)) < 0.3):  # questions end with "?"
        if len(texts[i]) > 1 and not texts[i].endswith("?"):
            texts[i] = texts[i][:-1] + "?"
    return texts


def write_topic_truth(folder: str | Path, draw: TopicDraw,
                      conversation_ids: list[str] | None = None) -> dict[str, Path]:
    """Write ``topics.csv`` (true topic per conversation), ``topic_effects.csv`` and
    ``topics.json`` (settings, intercepts, shares) into *folder*."""
    folder = Path(folder)
    return {
        "topics.csv": write_text_atomic(folder / "topics.csv",
                                        draw.assignments(conversation_ids).to_csv(index=False)),
        "topic_effects.csv": write_text_atomic(folder / "topic_effects.csv",
                                               draw.effects().to_csv(index=False)),
        "topics.json": write_json_atomic(folder / "topics.json", json.loads(
            json.dumps(draw.summary()))),
    }


def set_opening_prompts(texts: ReleaseTexts, responses: pd.DataFrame, prompts: list[str]) -> None:
    """Put the topic prompts (one per conversation) at the opening interactions of *texts*."""
    first = responses.loc[responses["turn"].to_numpy() == 0, ["conversation", "interaction"]]
    first = first.drop_duplicates("conversation")
    for c, i in zip(first["conversation"].to_numpy(), first["interaction"].to_numpy(), strict=True):
        texts.prompts[int(i)] = prompts[int(c)]
