"""Text features of model responses (SPEC §3.9): length, line breaks, enumeration, phrases.

:func:`response_features` flags, per response, a final question mark, an enumeration,
a de-anthropomorphising phrase, a refusal phrase and a self-identification (the model
naming itself or its maker), with the phrase lists and patterns defined here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

# --- response features ------------------------------------------------------------------------

#: Phrases by which a model disclaims human qualities (matched case-insensitively, with
#: straight and curly apostrophes). Written for this package after the description of
#: the original's list (SPEC §3.9: "As an AI...", "I don't have personal...").
DEANTHROPOMORPHISING_PHRASES: tuple[str, ...] = (
    "as an ai",
    "as an artificial intelligence",
    "as a language model",
    "as a large language model",
    "as an ai language model",
    "as a machine",
    "as a computer program",
    "as a chatbot",
    "as a virtual assistant",
    "i am an ai",
    "i'm an ai",
    "i am just an ai",
    "i'm just an ai",
    "i am a computer program",
    "i'm just a computer program",
    "i am not a human",
    "i'm not a human",
    "i don't have personal",
    "i do not have personal",
    "i don't have feelings",
    "i do not have feelings",
    "i don't have emotions",
    "i do not have emotions",
    "i don't have opinions",
    "i do not have opinions",
    "i don't have beliefs",
    "i do not have beliefs",
    "i don't have a physical",
    "i do not have a physical",
    "i don't have the ability to feel",
    "i do not have the ability to feel",
    "i don't experience",
    "i do not experience",
)

#: Phrases that open or carry a refusal (case-insensitive). Written for this package
#: after the description of the original's list (SPEC §3.9: "I'm sorry, but",
#: "I cannot provide", ...).
REFUSAL_PHRASES: tuple[str, ...] = (
    "i'm sorry, but",
    "i am sorry, but",
    "sorry, but i can",
    "i apologize, but",
    "i apologise, but",
    "i cannot provide",
    "i can't provide",
    "i cannot help with",
    "i can't help with",
    "i cannot assist",
    "i can't assist",
    "i cannot fulfill",
    "i can't fulfill",
    "i cannot fulfil",
    "i cannot comply",
    "i can't comply",
    "i cannot answer",
    "i can't answer",
    "i cannot engage",
    "i can't engage",
    "i cannot support",
    "i cannot endorse",
    "i cannot create",
    "i can't create",
    "i cannot generate",
    "i can't generate",
    "i cannot write",
    "i can't write",
    "i cannot share",
    "i can't share",
    "i won't be able to",
    "i will not be able to",
    "i'm unable to",
    "i am unable to",
    "i'm not able to provide",
    "i am not able to provide",
    "i must decline",
    "i have to decline",
    "it is not appropriate for me",
    "it's not appropriate for me",
    "i'm not comfortable",
    "i am not comfortable",
)

#: Model and provider names of the 21 PRISM LLMs (and their public product names).
MODEL_NAMES: tuple[str, ...] = (
    "openai",
    "chatgpt",
    "gpt-4",
    "gpt-3.5",
    "gpt-3",
    "gpt",
    "anthropic",
    "claude",
    "cohere",
    "google",
    "palm",
    "bard",
    "lamda",
    "meta",
    "llama",
    "mistral",
    "zephyr",
    "hugging face",
    "huggingface",
    "falcon",
    "technology innovation institute",
    "guanaco",
    "pythia",
    "open assistant",
    "openassistant",
    "laion",
    "aleph alpha",
    "luminous",
    "flan-t5",
    "flan",
)

_SELF_REFERENCE = (
    r"(?:i am|i'm|i’m|my name is|i was (?:created|developed|trained|built|made|designed)"
    r"|created by|developed by|trained by|built by|made by|designed by|powered by"
    r"|a (?:language )?model (?:from|by|of))"
)
#: Self-identification: the model names itself or its maker ("I am Claude", "a language
#: model trained by OpenAI") -- a self-reference followed within a few words by a
#: model or provider name.
SELF_IDENTIFICATION_PATTERN = re.compile(
    _SELF_REFERENCE
    + r"\W+(?:\w+\W+){0,4}?(?:"
    + "|".join(re.escape(n) for n in sorted(MODEL_NAMES, key=len, reverse=True))
    + r")\b",
    flags=re.IGNORECASE,
)
#: A newline followed by a numbered item ("1." / "1)") or a bullet ("-", "*", "•").
ENUMERATION_PATTERN = re.compile(r"\n[ \t]*(?:\d+[.)]|[-*•])[ \t]")

FEATURES: tuple[str, ...] = (
    "text_length",
    "line_breaks",
    "question_mark_end",
    "enumeration",
    "deanthro",
    "refusal",
    "self_identification",
)


def _contains_any(text: str, phrases: Sequence[str]) -> bool:
    # Plain substring tests on lower-cased text: much faster than a regex alternation.
    return any(p in text for p in phrases)


_LOWER_MODEL_NAMES = tuple(n.lower() for n in MODEL_NAMES)


def _self_identifies(text: str) -> bool:
    return _contains_any(text, _LOWER_MODEL_NAMES) and bool(
        SELF_IDENTIFICATION_PATTERN.search(text)
    )


def response_features(responses: pd.Series) -> pd.DataFrame:
    """Text features of model responses (SPEC §3.9 definitions).

    Columns: ``text_length`` (characters), ``line_breaks`` ("\\n" present),
    ``question_mark_end`` (last non-space character is "?"), ``enumeration``
    (:data:`ENUMERATION_PATTERN`), ``deanthro`` / ``refusal`` (any phrase of
    :data:`DEANTHROPOMORPHISING_PHRASES` / :data:`REFUSAL_PHRASES`, case-insensitive),
    ``self_identification`` (:data:`SELF_IDENTIFICATION_PATTERN`). Flags are bool.
    Curly apostrophes are read as straight ones.
    """
    text = responses.astype("string").fillna("")
    lower = text.str.lower().str.replace("’", "'", regex=False)
    out = pd.DataFrame(index=responses.index)
    out["text_length"] = text.str.len().astype(int)
    out["line_breaks"] = text.str.contains("\n", regex=False).astype(bool)
    out["question_mark_end"] = text.str.rstrip().str.endswith("?").astype(bool)
    out["enumeration"] = text.map(lambda t: bool(ENUMERATION_PATTERN.search(t))).astype(bool)
    out["deanthro"] = lower.map(lambda t: _contains_any(t, DEANTHROPOMORPHISING_PHRASES)).astype(
        bool
    )
    out["refusal"] = lower.map(lambda t: _contains_any(t, REFUSAL_PHRASES)).astype(bool)
    out["self_identification"] = lower.map(_self_identifies).astype(bool)
    return out
