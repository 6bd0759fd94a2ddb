"""Texts of the synthetic release: filler prose and model responses with known features.

Model responses carry the text features of the original score regression (SPEC §3.9)
exactly as drawn: a response's character length, whether it contains a line break,
an enumeration (a newline followed by ``1.`` or a ``-``/``*`` bullet), a final ``?``,
a de-anthropomorphising phrase, a refusal phrase or a self-identification. The filler
vocabulary contains none of the trigger strings, so a text-based extractor
(:func:`text_features`, or any implementation of the SPEC definitions) recovers the
drawn flags exactly.

The feature distribution is known in closed form (:func:`feature_distribution`), which
gives the exact expectations used to centre the score contributions and the exact
distribution of the total text contribution used by the population-mean truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import tables as T
from .util import discrete_lognormal, text_lengths

EMPTY_TEXT = "EMPTY STRING"

#: Binary text features in the order used everywhere (``text_length`` is the sixth
#: column of :func:`text_features`; ``empty_string`` marks "EMPTY STRING" responses).
BINARY_FEATURES: tuple[str, ...] = (
    "line_breaks",
    "question_mark",
    "enumeration",
    "deanthro",
    "refusal",
    "self_identification",
)
TEXT_FEATURES: tuple[str, ...] = ("text_length", *BINARY_FEATURES, "empty_string")

#: De-anthropomorphising phrases (case-insensitive substrings).
DEANTHRO_PHRASES: tuple[str, ...] = (
    "As an AI language model",
    "As an AI",
    "As a language model",
    "As an artificial intelligence",
    "I don't have personal opinions",
    "I don't have personal experiences",
    "I do not have personal beliefs",
    "I don't have feelings",
    "I don't have emotions",
    "I'm just an AI",
    "I do not have a physical body",
)
#: Refusal phrases (case-insensitive substrings).
REFUSAL_PHRASES: tuple[str, ...] = (
    "I'm sorry, but",
    "I cannot provide",
    "I can't assist with",
    "I am unable to",
    "I'm not able to provide",
    "I cannot fulfill",
    "I can't help with",
    "I must decline",
    "I apologize, but I cannot",
    "I won't be able to",
)
#: Self-identification: a model or provider name introduced in the first person.
SELF_ID_NAMES: dict[str, tuple[str, str]] = {
    # family -> (model name, provider name)
    "Anthropic": ("Claude", "Anthropic"),
    "OpenAI": ("ChatGPT", "OpenAI"),
    "Cohere": ("Command", "Cohere"),
    "Google": ("PaLM", "Google"),
    "Meta": ("Llama", "Meta"),
    "Mistral": ("Mistral", "Mistral AI"),
    "HuggingFace": ("Zephyr", "Hugging Face"),
    "Other OA": ("Open Assistant", "LAION"),
    "Aleph Alpha": ("Luminous", "Aleph Alpha"),
}
_SELF_ID_RE = re.compile(
    r"\b(?:I am|I'm) (?:"
    + "|".join(re.escape(n) for n, _ in SELF_ID_NAMES.values())
    + r")\b|\b(?:created|developed|trained|built) by (?:"
    + "|".join(re.escape(p) for _, p in SELF_ID_NAMES.values())
    + r")\b",
    re.IGNORECASE,
)
_ENUM_RE = re.compile(r"\n[ \t]*(?:1\.|[-*])[ \t]")
_DEANTHRO_RE = re.compile("|".join(re.escape(p) for p in DEANTHRO_PHRASES), re.IGNORECASE)
_REFUSAL_RE = re.compile("|".join(re.escape(p) for p in REFUSAL_PHRASES), re.IGNORECASE)


def _self_id_phrase(llm: vocab.LLM) -> str:
    name, provider = SELF_ID_NAMES[llm.family]
    return f"I'm {name}, an assistant created by {provider}. "


_DEANTHRO_HEADS = tuple(f"{p}, " for p in DEANTHRO_PHRASES)
_REFUSAL_HEADS = tuple(f"{p} " for p in REFUSAL_PHRASES)
_SELF_ID_HEADS = tuple(_self_id_phrase(m) for m in vocab.LLMS)
#: Room reserved for each phrase kind (the longest variant), so that a response's
#: length never depends on which phrase variant (or which LLM's name) it carries.
_ROOM = {
    "deanthro": max(map(len, _DEANTHRO_HEADS)),
    "refusal": max(map(len, _REFUSAL_HEADS)),
    "self_identification": max(map(len, _SELF_ID_HEADS)),
}
#: Shortest bodies: plain, two paragraphs ("a\n\nb"), a two-item list ("a:\n1. b\n2. c").
_BODY_MIN = {"plain": 1, "lines": 4, "enum": 12}

# Filler vocabulary: ordinary words; no trigger phrase, no "?", "-", "*" or newline.
_WORDS: tuple[str, ...] = tuple(
    """the of and to in is that it for on with as was be by this are from at or have not
    but can all one more about which their will there when would what some like time other
    people also into only new could then than first way most over these many years may
    well should between because each much good those through such both very make life
    world important help think might different often need long place great little still
    work every part while where however around system family small large thing public local
    water point state high group country number community question important experience
    value values culture respect kindness honesty learning friends history health energy
    climate economy policy science music travel food recipe garden weather holiday city
    village market school university student teacher doctor research evidence source
    approach consider option choice decision example context perspective balance support
    benefit risk safety fairness freedom equality justice tradition change growth future
    practice idea information answer detail reason result effect cause problem solution
    plan step goal simple clear useful helpful careful thoughtful open calm gentle strong
    natural social personal general common modern recent early late certain possible
    likely usually generally typically especially particularly clearly simply quickly
    carefully together always sometimes never perhaps rather quite enough almost already
    again across along within without toward during before after since until although
    unless whether either neither another several various numerous further overall
    morning evening weekend season spring summer autumn winter river mountain ocean forest
    animal dog cat bird horse garden flower tree coffee bread dinner lunch breakfast
    football cricket tennis film book story poem song painting language word sentence
    meaning argument debate opinion belief faith religion election government law court
    budget income tax price cost money saving investment job career skill training
    project team meeting office home house room street road car train bus flight hotel""".split()  # noqa: SIM905
)


_TOKENS = np.array(list(_WORDS) + [w + "." for w in _WORDS], dtype=object)
_TOKEN_LENGTHS = np.array([len(t) for t in _TOKENS], dtype=np.int64)


def filler_stream(n_words: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A long stream of filler prose and the offsets where its words start."""
    idx = rng.integers(0, len(_WORDS), n_words)
    idx += len(_WORDS) * (rng.random(n_words) < 0.09)  # end a sentence after ~1 word in 11
    lengths = _TOKEN_LENGTHS[idx] + 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return " ".join(_TOKENS[idx].tolist()), starts


class _Stream:
    """Random slices of one filler stream (vectorised source of prose)."""

    def __init__(self, total_chars: int, rng: np.random.Generator) -> None:
        # Texts are random slices of one stream; beyond ~6 MB of prose the stream is
        # reused (slices from different offsets are still practically unique).
        n_words = min(max(int(total_chars / 5.5) + 2000, 20000), 1_000_000)
        self.text, starts = filler_stream(n_words, rng)
        self.starts = (
            starts[starts < len(self.text) - 5000] if len(self.text) > 10000 else starts[:1]
        )
        self.rng = rng

    def take(self, length: int) -> str:
        """A slice of exactly *length* characters (cut mid-word if need be)."""
        if length <= 0:
            return ""
        start = int(self.starts[self.rng.integers(len(self.starts))])
        if start + length > len(self.text):
            start = 0
        piece = self.text[start : start + length]
        if len(piece) < length:  # enormous request: repeat the stream
            piece = (self.text * (length // len(self.text) + 1))[:length]
        return piece[:-1] + "s" if piece.endswith(" ") else piece


def prose(lengths: np.ndarray, rng: np.random.Generator, *, capitalise: bool = True) -> list[str]:
    """Filler texts of exactly the given lengths (free-text survey and feedback fields)."""
    lengths = np.asarray(lengths, dtype=int)
    stream = _Stream(int(lengths.sum()) + 1, rng)
    out = []
    for length in lengths:
        piece = stream.take(int(length))
        out.append(piece[:1].upper() + piece[1:] if capitalise else piece)
    return out


_COMMON_OPENERS: tuple[str, ...] = (
    "Hello",
    "Hi",
    "hello",
    "Hi, how are you?",
    "What is the meaning of life?",
    "What do you think about abortion?",
    "Is there a god?",
    "Tell me a joke",
)
_COMMON_FOLLOWUPS: tuple[str, ...] = ("Thank you", "thanks", "ok", "yes", "Why?", "Thanks!", "no")


def prompts(
    n: int, moments: tuple[float, float, int, int], rng: np.random.Generator, *, opening: bool
) -> list[str]:
    """User prompts with the published length distribution; a few common ones repeat."""
    lengths = text_lengths(n, moments, rng)
    texts = prose(lengths, rng)
    common = _COMMON_OPENERS if opening else _COMMON_FOLLOWUPS
    share = 0.025 if opening else 0.02  # 7,811 of 8,011 openers / 26,673 of 27,172 prompts unique
    for i in np.flatnonzero(rng.random(n) < share):
        texts[i] = common[rng.integers(len(common))]
    for i in np.flatnonzero(rng.random(n) < 0.3):  # questions end with "?"
        if not texts[i].endswith("?"):
            texts[i] = texts[i][:-1] + "?" if len(texts[i]) > 1 else texts[i]
    return texts


# --- the feature distribution ------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDistribution:
    """The exact distribution of response features (independent of everything else).

    A response is "EMPTY STRING" with probability ``p_empty``; otherwise its layout
    (plain / line breaks / enumeration) and the four phrase/ending flags are independent
    Bernoulli draws and its base length ``L0`` follows a discretised log-normal. Its
    actual length is ``max(L0, room(flags))`` where ``room`` is the minimum length that
    fits the drawn phrases and layout.

    Attributes
    ----------
    support, p_length
        Support and probabilities of ``L0``.
    prevalence
        Probability of each binary feature (``TEXT_PREVALENCE``).
    p_empty
        Probability of an "EMPTY STRING" response.
    """

    support: np.ndarray
    p_length: np.ndarray
    prevalence: dict[str, float]
    p_empty: float

    def combos(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All non-empty flag combinations: flags (k x 6), probabilities, room (k)."""
        pv = self.prevalence
        layouts = (  # (line_breaks, enumeration, probability, minimum body)
            (0, 0, 1 - pv["line_breaks"], _BODY_MIN["plain"]),
            (1, 0, pv["line_breaks"] - pv["enumeration"], _BODY_MIN["lines"]),
            (1, 1, pv["enumeration"], _BODY_MIN["enum"]),
        )
        flags, probs, rooms = [], [], []
        for lb, en, p_layout, body in layouts:
            for q in (0, 1):
                for d in (0, 1):
                    for r in (0, 1):
                        for s in (0, 1):
                            p = p_layout
                            for name, v in (
                                ("question_mark", q),
                                ("deanthro", d),
                                ("refusal", r),
                                ("self_identification", s),
                            ):
                                p *= pv[name] if v else 1 - pv[name]
                            flags.append((lb, q, en, d, r, s))
                            probs.append(p)
                            rooms.append(
                                body
                                + 1
                                + d * _ROOM["deanthro"]
                                + r * _ROOM["refusal"]
                                + s * _ROOM["self_identification"]
                            )
        return np.array(flags), np.array(probs), np.array(rooms)

    def means(self) -> dict[str, float]:
        """Exact expectation of every feature of :data:`TEXT_FEATURES`."""
        flags, probs, rooms = self.combos()
        cdf = np.cumsum(self.p_length)
        tail_sum = np.cumsum((self.support * self.p_length)[::-1])[::-1]
        mean_len = 0.0
        for p, room in zip(probs, rooms, strict=True):
            # E[max(L0, room)] = room * P(L0 <= room) + E[L0; L0 > room]
            k = np.searchsorted(self.support, room, side="right")
            below = cdf[k - 1] if k > 0 else 0.0
            above = tail_sum[k] if k < len(self.support) else 0.0
            mean_len += p * (room * below + above)
        pe = self.p_empty
        out = {"text_length": (1 - pe) * mean_len + pe * len(EMPTY_TEXT)}
        for j, name in enumerate(BINARY_FEATURES):
            out[name] = (1 - pe) * float((flags[:, j] * probs).sum())
        out["empty_string"] = pe
        return out

    def contribution_atoms(
        self, betas: dict[str, float], *, n_atoms: int = 512
    ) -> tuple[np.ndarray, np.ndarray]:
        """Support and weights of the total text contribution ``sum_f beta_f (x_f - E x_f)``.

        The exact distribution has one atom per (flags, length) pair; it is compressed
        to at most *n_atoms* bins (each bin at its probability-weighted mean), which
        keeps the mean exactly zero and moves no mass further than one bin width.
        """
        mu = self.means()
        flags, probs, rooms = self.combos()
        binary = np.array([betas[f] for f in BINARY_FEATURES])
        base = (flags - np.array([mu[f] for f in BINARY_FEATURES])) @ binary
        base = base - betas.get("empty_string", 0.0) * mu["empty_string"]
        lengths = np.maximum(self.support[None, :], rooms[:, None])
        values = base[:, None] + betas["text_length"] * (lengths - mu["text_length"])
        weights = (1 - self.p_empty) * probs[:, None] * self.p_length[None, :]
        empty_value = (
            betas["text_length"] * (len(EMPTY_TEXT) - mu["text_length"])
            - mu["line_breaks"] * betas["line_breaks"]
            - mu["question_mark"] * betas["question_mark"]
            - mu["enumeration"] * betas["enumeration"]
            - mu["deanthro"] * betas["deanthro"]
            - mu["refusal"] * betas["refusal"]
            - mu["self_identification"] * betas["self_identification"]
            + betas.get("empty_string", 0.0) * (1 - mu["empty_string"])
        )
        values = np.concatenate([values.ravel(), [empty_value]])
        weights = np.concatenate([weights.ravel(), [self.p_empty]])
        keep = weights > 0
        values, weights = values[keep], weights[keep]
        # Bin on quantiles of the distribution so the mass spreads evenly over atoms.
        order = np.argsort(values)
        values, weights = values[order], weights[order]
        cum = np.cumsum(weights)
        bins = np.minimum((cum / cum[-1] * n_atoms).astype(int), n_atoms - 1)
        w = np.bincount(bins, weights=weights, minlength=n_atoms)
        v = np.bincount(bins, weights=weights * values, minlength=n_atoms)
        used = w > 0
        atoms, atom_w = v[used] / w[used], w[used]
        atoms -= (atoms * atom_w).sum() / atom_w.sum()  # exact zero mean after round-off
        return atoms, atom_w / atom_w.sum()


def default_feature_distribution() -> FeatureDistribution:
    """The calibrated feature distribution (SPEC §3.9 prevalences, §1.4 lengths)."""
    mean, sd, lo, hi = T.RESPONSE_CHARS
    support, p = discrete_lognormal(mean, sd, lo, hi)
    return FeatureDistribution(support, p, dict(T.TEXT_PREVALENCE), T.EMPTY_SHARE)


def draw_features(n: int, dist: FeatureDistribution, rng: np.random.Generator) -> pd.DataFrame:
    """*n* independent feature draws (columns :data:`TEXT_FEATURES`)."""
    pv = dist.prevalence
    empty = rng.random(n) < dist.p_empty
    u = rng.random(n)
    line_breaks = u < pv["line_breaks"]
    enumeration = u < pv["enumeration"]  # a subset of the line-break texts
    out = {
        "line_breaks": line_breaks,
        "question_mark": rng.random(n) < pv["question_mark"],
        "enumeration": enumeration,
        "deanthro": rng.random(n) < pv["deanthro"],
        "refusal": rng.random(n) < pv["refusal"],
        "self_identification": rng.random(n) < pv["self_identification"],
    }
    body = np.where(
        enumeration,
        _BODY_MIN["enum"],
        np.where(line_breaks, _BODY_MIN["lines"], _BODY_MIN["plain"]),
    )
    room = (
        body
        + 1
        + out["deanthro"] * _ROOM["deanthro"]
        + out["refusal"] * _ROOM["refusal"]
        + out["self_identification"] * _ROOM["self_identification"]
    )
    base = rng.choice(dist.support, size=n, p=dist.p_length)
    length = np.maximum(base, room)
    for name in BINARY_FEATURES:
        out[name] = np.where(empty, False, out[name])
    frame = pd.DataFrame(
        {"text_length": np.where(empty, len(EMPTY_TEXT), length), **out, "empty_string": empty}
    )
    return frame[list(TEXT_FEATURES)]


# --- realising responses ------------------------------------------------------------------------


def response_texts(
    features: pd.DataFrame, llm_codes: np.ndarray, rng: np.random.Generator
) -> list[str]:
    """Response texts that carry exactly the given features.

    Parameters
    ----------
    features
        Columns :data:`TEXT_FEATURES` (one row per response).
    llm_codes
        Index into ``vocab.LLMS`` of each response's model (only the name used by a
        self-identification depends on it; the length never does).
    rng
        Source of the filler prose and phrase variants.
    """
    n = len(features)
    stream = _Stream(int(features["text_length"].sum()) + 1, rng)
    de_pick = rng.integers(len(_DEANTHRO_HEADS), size=n)
    ref_pick = rng.integers(len(_REFUSAL_HEADS), size=n)
    bullet = rng.random(n) < 0.5
    cols = {c: features[c].to_numpy() for c in TEXT_FEATURES}
    out: list[str] = []
    for i in range(n):
        if cols["empty_string"][i]:
            out.append(EMPTY_TEXT)
            continue
        head = ""
        if cols["self_identification"][i]:
            head += _SELF_ID_HEADS[llm_codes[i]]
        if cols["deanthro"][i]:
            head += _DEANTHRO_HEADS[de_pick[i]]
        if cols["refusal"][i]:
            head += _REFUSAL_HEADS[ref_pick[i]]
        tail = "?" if cols["question_mark"][i] else "."
        body_len = int(cols["text_length"][i]) - len(head) - len(tail)
        if cols["enumeration"][i]:
            body = _enumerated(stream, body_len, "- " if bullet[i] else None)
        elif cols["line_breaks"][i]:
            first = max(1, (body_len - 2) // 2)
            body = stream.take(first) + "\n\n" + stream.take(body_len - 2 - first)
        else:
            body = stream.take(body_len)
        text = head + body + tail
        out.append(text[:1].upper() + text[1:])
    return out


def _enumerated(stream: _Stream, length: int, bullet: str | None) -> str:
    """A body "intro:" + list items of exactly *length* characters."""
    n_items = 2 if length < 80 else 3 if length < 250 else 4 if length < 600 else 5
    markers = [bullet or f"{k}. " for k in range(1, n_items + 1)]
    fixed = 1 + sum(1 + len(m) for m in markers)  # ":" and "\n" + marker per item
    free = length - fixed
    intro = max(1, free // (n_items + 1))
    item = max(1, (free - intro) // n_items)
    last = free - intro - item * (n_items - 1)
    parts = [stream.take(intro), ":"]
    for k, m in enumerate(markers):
        parts.append("\n" + m + stream.take(last if k == n_items - 1 else item))
    return "".join(parts)


def text_features(texts: pd.Series | list[str]) -> pd.DataFrame:
    """The SPEC §3.9 text features of model responses (a reference extractor).

    ``text_length`` (characters), ``line_breaks`` ("\\n" present), ``question_mark``
    (last character "?"), ``enumeration`` (a newline followed by "1." or a "-"/"*"
    bullet), ``deanthro`` / ``refusal`` (case-insensitive phrase lists
    :data:`DEANTHRO_PHRASES`, :data:`REFUSAL_PHRASES`) and ``self_identification`` (a
    model or provider name introduced in the first person). Integer 0/1 columns.
    """
    s = pd.Series(list(texts), dtype=object)
    return pd.DataFrame(
        {
            "text_length": s.str.len().astype(int),
            "line_breaks": s.str.contains("\n", regex=False).astype(int),
            "question_mark": s.str.endswith("?").astype(int),
            "enumeration": s.map(lambda t: bool(_ENUM_RE.search(t))).astype(int),
            "deanthro": s.map(lambda t: bool(_DEANTHRO_RE.search(t))).astype(int),
            "refusal": s.map(lambda t: bool(_REFUSAL_RE.search(t))).astype(int),
            "self_identification": s.map(lambda t: bool(_SELF_ID_RE.search(t))).astype(int),
        }
    )
