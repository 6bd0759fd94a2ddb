"""The exact schema of the PRISM release files, as declarative field specifications.

Every field of ``survey.jsonl``, ``conversations.jsonl``, ``utterances.jsonl`` and
``metadata.jsonl`` is described once here (type, whether null is allowed, category
vocabulary, numeric range, nested keys); :mod:`prism_stats.data.validate` checks the
files against these specifications and :mod:`prism_stats.data.tidy` reads them.

Sources
-------
- Field lists, key order, types and ranges: the PRISM codebook (Kirk et al. 2024,
  DOI 10.57967/hf/2113) §4.1-4.4 and the project specification
  (``SPEC.md`` §1.1-1.5), which derives the undocumented ``location`` keys and the
  nested key counts from the release notebooks.
- Integer-ness of nested survey values (``lm_usecases``, ``stated_prefs``, ``order_*``):
  the release pipeline casts every non-null value with ``int()``
  (``src/data_processing/process_survey.py`` of github.com/HannahKirk/prism-alignment).
- Category vocabularies: :mod:`prism_stats.vocab` (not redefined here).
- Simplified religion/ethnicity groupings: SPEC §1.2 (from the release's
  ``01_human_annotation`` notebook).
"""

from __future__ import annotations

from dataclasses import dataclass

from prism_stats import vocab

# --- where the release lives ------------------------------------------------------------

HUB_REPO_ID = "HannahRoseKirk/prism-alignment"
HUB_URL = f"https://huggingface.co/datasets/{HUB_REPO_ID}"
GITHUB_URL = "https://github.com/HannahKirk/prism-alignment"
DOI = "10.57967/hf/2113"

# --- field kinds --------------------------------------------------------------------------

INT = "int"  # a JSON integer (never a bool, never 5.0)
NUMBER = "number"  # a JSON integer or float (finite)
STR = "str"
BOOL = "bool"
DICT = "dict"
LIST = "list"

#: Human-readable names of the kinds, for messages.
KIND_NAMES: dict[str, str] = {
    INT: "an integer",
    NUMBER: "a number",
    STR: "a string",
    BOOL: "a boolean",
    DICT: "an object",
    LIST: "a list",
}


@dataclass(frozen=True)
class FieldSpec:
    """One field (or nested key) of a release record.

    Attributes
    ----------
    name
        The JSON key.
    kind
        One of ``INT``, ``NUMBER``, ``STR``, ``BOOL``, ``DICT``, ``LIST``.
    nullable
        Whether JSON ``null`` is allowed.
    categories
        Allowed string values (``None``: free text).
    lo, hi
        Inclusive numeric range (``None``: unbounded on that side).
    keys
        For ``DICT`` fields, the specifications of the nested keys (``None``: the
        object's content is not checked).
    vocabulary
        Where the category list comes from, named in messages when the list is long.
    """

    name: str
    kind: str
    nullable: bool = False
    categories: tuple[str, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    keys: tuple[FieldSpec, ...] | None = None
    vocabulary: str | None = None

    def range_text(self) -> str:
        """The numeric range as ``lo..hi`` (``>= lo`` when open above)."""
        if self.lo is not None and self.hi is not None:
            return f"{_num(self.lo)}..{_num(self.hi)}"
        if self.lo is not None:
            return f">= {_num(self.lo)}"
        return f"<= {_num(self.hi)}"


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


@dataclass(frozen=True)
class FileSpec:
    """One release file: its canonical name, its fields and its primary key."""

    role: str
    filename: str
    fields: tuple[FieldSpec, ...]
    id_field: str | None
    required: bool = True

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _cat(name: str, categories: tuple[str, ...], vocabulary: str, **kw: object) -> FieldSpec:
    return FieldSpec(name, STR, categories=categories, vocabulary=vocabulary, **kw)  # type: ignore[arg-type]


# --- derived vocabularies (release strings) -----------------------------------------------

PNTS = vocab.PREFER_NOT
COUNTRY_NAMES: tuple[str, ...] = tuple(c.name for c in vocab.COUNTRIES) + (PNTS,)
LLM_LONG_NAMES: tuple[str, ...] = tuple(m.long_name for m in vocab.LLMS)
SAME_COUNTRY: tuple[str, ...] = ("Yes", "No", PNTS)
CONSENT: tuple[str, ...] = ("Yes, I consent to take part",)
CONSENT_AGE: tuple[str, ...] = ("I certify that I am 18 years of age or over",)
METADATA_COLUMNS: tuple[str, ...] = (
    "model_response",
    "user_prompt",
    "open_feedback",
    "self_description",
    "system_string",
)

# The categorised -> simplified maps are vocabularies (shared with the generator).
RELIGION_SIMPLIFIED_FROM_CATEGORISED = vocab.RELIGION_SIMPLIFIED_FROM_CATEGORISED
ETHNICITY_SIMPLIFIED_FROM_CATEGORISED = vocab.ETHNICITY_SIMPLIFIED_FROM_CATEGORISED

# --- survey.jsonl ---------------------------------------------------------------------------

_SELF_DESCRIBED = FieldSpec("self_described", STR)
RELIGION_KEYS: tuple[FieldSpec, ...] = (
    _SELF_DESCRIBED,
    _cat("categorised", vocab.RELIGION_CATEGORISED, "vocab.RELIGION_CATEGORISED"),
    _cat("simplified", vocab.RELIGION_SIMPLIFIED, "vocab.RELIGION_SIMPLIFIED"),
)
ETHNICITY_KEYS: tuple[FieldSpec, ...] = (
    _SELF_DESCRIBED,
    _cat("categorised", vocab.ETHNICITY_CATEGORISED, "vocab.ETHNICITY_CATEGORISED"),
    _cat("simplified", vocab.ETHNICITY_SIMPLIFIED, "vocab.ETHNICITY_SIMPLIFIED"),
)
_COUNTRY = "vocab.COUNTRIES (names) plus 'Prefer not to say'"
_ISO = "vocab.COUNTRY_CODES"
LOCATION_KEYS: tuple[FieldSpec, ...] = (
    _cat("birth_country", COUNTRY_NAMES, _COUNTRY),
    _cat("birth_countryISO", vocab.COUNTRY_CODES, _ISO),
    _cat("birth_region", vocab.REGIONS, "vocab.REGIONS"),
    _cat("birth_subregion", vocab.SUBREGIONS, "vocab.SUBREGIONS"),
    _cat("reside_country", COUNTRY_NAMES, _COUNTRY),
    _cat("reside_region", vocab.REGIONS, "vocab.REGIONS"),
    _cat("reside_subregion", vocab.SUBREGIONS, "vocab.SUBREGIONS"),
    _cat("reside_countryISO", vocab.COUNTRY_CODES, _ISO),
    _cat("same_birth_reside_country", SAME_COUNTRY, "Yes/No/Prefer not to say"),
    _cat("special_region", vocab.SPECIAL_REGIONS, "vocab.SPECIAL_REGIONS"),
)
assert tuple(k.name for k in LOCATION_KEYS) == vocab.LOCATION_KEYS
#: Use-case flags: 1 selected, 0 shown but not selected, null not shown.
LM_USECASES_KEYS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(k, STR, nullable=True) if k == "other_text" else FieldSpec(k, INT, True, lo=0, hi=1)
    for k in vocab.LM_USECASE_KEYS
)
#: Stated-preference sliders (Qualtrics, 0-100); only the free text may be null.
STATED_PREFS_KEYS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(k, STR, nullable=True) if k == "other_text" else FieldSpec(k, INT, lo=0, hi=100)
    for k in vocab.STATED_PREF_KEYS
)
#: Presentation order of the options (``other`` is always last); null when not shown.
ORDER_LM_USECASES_KEYS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(k, INT, nullable=True, lo=1, hi=len(vocab.LM_USECASE_KEYS) - 1)
    for k in vocab.LM_USECASE_KEYS
    if k != "other_text"
)
ORDER_STATED_PREFS_KEYS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(k, INT, nullable=True, lo=1, hi=len(vocab.STATED_PREF_KEYS) - 1)
    for k in vocab.STATED_PREF_KEYS
    if k != "other_text"
)

SURVEY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("user_id", STR),
    FieldSpec("survey_only", BOOL),
    FieldSpec("num_completed_conversations", INT, lo=0),
    FieldSpec("timing_duration_s", NUMBER, lo=0),
    FieldSpec("timing_duration_mins", NUMBER, lo=0),
    FieldSpec("generated_datetime", STR),
    _cat("consent", CONSENT, "the consent statement"),
    _cat("consent_age", CONSENT_AGE, "the age statement"),
    _cat("lm_familiarity", vocab.LM_FAMILIARITY, "vocab.LM_FAMILIARITY"),
    _cat("lm_indirect_use", vocab.YES_NO_UNSURE, "vocab.YES_NO_UNSURE"),
    _cat("lm_direct_use", vocab.YES_NO_UNSURE, "vocab.YES_NO_UNSURE"),
    _cat("lm_frequency_use", vocab.LM_FREQUENCY, "vocab.LM_FREQUENCY", nullable=True),
    FieldSpec("self_description", STR),
    FieldSpec("system_string", STR),
    _cat("age", vocab.AGE_BANDS_RELEASE, "vocab.AGE_BANDS_RELEASE"),
    _cat("gender", vocab.GENDERS, "vocab.GENDERS"),
    _cat("employment_status", vocab.EMPLOYMENT, "vocab.EMPLOYMENT"),
    _cat("education", vocab.EDUCATION, "vocab.EDUCATION"),
    _cat("marital_status", vocab.MARITAL, "vocab.MARITAL"),
    _cat("english_proficiency", vocab.ENGLISH, "vocab.ENGLISH"),
    FieldSpec("study_id", STR),
    FieldSpec("study_locale", STR),  # free text: only "uk" and "us" are known values
    FieldSpec("religion", DICT, keys=RELIGION_KEYS),
    FieldSpec("ethnicity", DICT, keys=ETHNICITY_KEYS),
    FieldSpec("location", DICT, keys=LOCATION_KEYS),
    FieldSpec("lm_usecases", DICT, keys=LM_USECASES_KEYS),
    FieldSpec("stated_prefs", DICT, keys=STATED_PREFS_KEYS),
    FieldSpec("order_lm_usecases", DICT, keys=ORDER_LM_USECASES_KEYS),
    FieldSpec("order_stated_prefs", DICT, keys=ORDER_STATED_PREFS_KEYS),
    FieldSpec("included_in_US_REP", BOOL),
    FieldSpec("included_in_UK_REP", BOOL),
    FieldSpec("included_in_balanced_subset", BOOL),
)

# --- conversations.jsonl --------------------------------------------------------------------

#: Performance/choice sliders (Dynabench, 1-100); null where the participant ticked N/A.
ATTRIBUTE_KEYS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(k, INT, nullable=True, lo=1, hi=100) for k in vocab.ATTRIBUTE_KEYS
)
_CTYPE = _cat("conversation_type", vocab.CONVERSATION_TYPES, "vocab.CONVERSATION_TYPES")
_MODEL_NAME = _cat("model_name", LLM_LONG_NAMES, "the PRISM LLMs (vocab.LLMS long names)")
_PROVIDER = _cat("model_provider", vocab.PROVIDERS, "vocab.PROVIDERS")
_SCORE = FieldSpec("score", INT, lo=1, hi=100)

#: A participant message of ``conversation_history``.
HISTORY_USER_KEYS: tuple[FieldSpec, ...] = (
    FieldSpec("turn", INT, lo=0),
    _cat("role", vocab.ROLES, "vocab.ROLES"),
    FieldSpec("content", STR),
)
#: A model response of ``conversation_history``.
HISTORY_MODEL_KEYS: tuple[FieldSpec, ...] = (
    FieldSpec("turn", INT, lo=0),
    _cat("role", vocab.ROLES, "vocab.ROLES"),
    FieldSpec("content", STR),
    _PROVIDER,
    _MODEL_NAME,
    _SCORE,
    FieldSpec("if_chosen", BOOL),
    FieldSpec("within_turn_id", INT, lo=0, hi=3),
)

CONVERSATION_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("conversation_id", STR),
    FieldSpec("user_id", STR),
    FieldSpec("included_in_balanced_subset", BOOL),
    FieldSpec("generated_datetime", STR),
    FieldSpec("timing_duration_s", NUMBER, lo=0),
    FieldSpec("timing_duration_mins", NUMBER, lo=0),
    _CTYPE,
    FieldSpec("opening_prompt", STR),
    FieldSpec("conversation_turns", INT, lo=1),
    FieldSpec("conversation_history", LIST),
    FieldSpec("performance_attributes", DICT, keys=ATTRIBUTE_KEYS),
    FieldSpec("choice_attributes", DICT, keys=ATTRIBUTE_KEYS),
    FieldSpec("open_feedback", STR),
)

# --- utterances.jsonl -----------------------------------------------------------------------

UTTERANCE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("utterance_id", STR),
    FieldSpec("interaction_id", STR),
    FieldSpec("conversation_id", STR),
    FieldSpec("user_id", STR),
    FieldSpec("turn", INT, lo=0),
    FieldSpec("within_turn_id", INT, lo=0, hi=3),
    FieldSpec("included_in_balanced_subset", BOOL),
    _CTYPE,
    FieldSpec("user_prompt", STR),
    FieldSpec("model_response", STR),
    _MODEL_NAME,
    _PROVIDER,
    _SCORE,
    FieldSpec("if_chosen", BOOL),
)

# --- metadata.jsonl (optional) --------------------------------------------------------------

METADATA_FIELDS: tuple[FieldSpec, ...] = (
    _cat("column_id", METADATA_COLUMNS, "the five text sources"),
    FieldSpec("user_id", STR),
    FieldSpec("conversation_id", STR, nullable=True),
    FieldSpec("interaction_id", STR, nullable=True),
    FieldSpec("utterance_id", STR, nullable=True),
    FieldSpec("pii_flag", BOOL),
    FieldSpec("pii_manual_flag", NUMBER, nullable=True),
    FieldSpec("language_flag", STR),
    FieldSpec("en_flag", BOOL),
    FieldSpec("moderation_flag", DICT, nullable=True),
)

SURVEY = FileSpec("survey", "survey.jsonl", SURVEY_FIELDS, "user_id")
CONVERSATIONS = FileSpec(
    "conversations", "conversations.jsonl", CONVERSATION_FIELDS, "conversation_id"
)
UTTERANCES = FileSpec("utterances", "utterances.jsonl", UTTERANCE_FIELDS, "utterance_id")
METADATA = FileSpec("metadata", "metadata.jsonl", METADATA_FIELDS, None, required=False)

#: The release files in reading (and error-reporting) order.
FILES: tuple[FileSpec, ...] = (SURVEY, CONVERSATIONS, UTTERANCES, METADATA)
FILE_BY_ROLE: dict[str, FileSpec] = {f.role: f for f in FILES}
REQUIRED_FILES: tuple[str, ...] = tuple(f.filename for f in FILES if f.required)

#: Responses per interaction: 2-4 models at the opening turn, A/B of one model later.
OPENING_RESPONSES: tuple[int, int] = (2, 4)
LATER_RESPONSES = 2
