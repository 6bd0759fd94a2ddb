"""Fixed vocabularies of the PRISM release and of the census frames.

Every categorical column in the tidy tables uses one of these vocabularies as its
ordered category list, so that codes are stable across datasets, subsets and runs.

Sources
-------
- Category strings and counts: the PRISM codebook (Kirk et al. 2024, DOI
  10.57967/hf/2113), §4.1-4.3.
- The 21 LLMs: ``data/storage/mappings/model_mapping.csv`` and ``models.jsonl`` of the
  PRISM repository (long name, short name, code, family, provider key, access).
- Countries: pycountry standard names as used in ``survey.jsonl``; ISO 3166 alpha-3
  codes; UN M49 regions and subregions (the ``lukes`` ISO-3166 table the release used).
- Census ethnicity groups and their mapping from ``ethnicity.categorised``: the
  original census-rebalancing notebook (PRISM ``02_census_rebalancing``).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFER_NOT = "Prefer not to say"

# --- survey demographics (release strings, in display order) ---------------------------

AGE_BANDS_RELEASE: tuple[str, ...] = (
    "18-24 years old",
    "25-34 years old",
    "35-44 years old",
    "45-54 years old",
    "55-64 years old",
    "65+ years old",
    PREFER_NOT,
)
#: Tidy age bands (the census age bands plus "Prefer not to say").
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+", PREFER_NOT)
AGE_FROM_RELEASE: dict[str, str] = dict(zip(AGE_BANDS_RELEASE, AGE_BANDS, strict=True))
#: Age bands at or above 45 (the "over45" groups of the welfare analysis).
AGE_OVER45: tuple[str, ...] = ("45-54", "55-64", "65+")

GENDERS: tuple[str, ...] = ("Male", "Female", "Non-binary / third gender", PREFER_NOT)

EMPLOYMENT: tuple[str, ...] = (
    "Working full-time",
    "Working part-time",
    "Student",
    "Unemployed, seeking work",
    "Unemployed, not seeking work",
    "Retired",
    "Homemaker / Stay-at-home parent",
    PREFER_NOT,
)
EDUCATION: tuple[str, ...] = (
    "Some Primary",
    "Completed Primary School",
    "Some Secondary",
    "Completed Secondary School",
    "Vocational",
    "Some University but no degree",
    "University Bachelors Degree",
    "Graduate / Professional degree",
    PREFER_NOT,
)
MARITAL: tuple[str, ...] = (
    "Never been married",
    "Married",
    "Divorced / Separated",
    "Widowed",
    PREFER_NOT,
)
ENGLISH: tuple[str, ...] = ("Native speaker", "Fluent", "Advanced", "Intermediate", "Basic")
LM_FAMILIARITY: tuple[str, ...] = ("Very familiar", "Somewhat familiar", "Not familiar at all")
YES_NO_UNSURE: tuple[str, ...] = ("Yes", "No", "Unsure")
# "Less than one a year" is the release's own spelling (sic).
LM_FREQUENCY: tuple[str, ...] = (
    "Every day",
    "Every week",
    "More than once a month",
    "Once per month",
    "Less than one a year",
)

RELIGION_CATEGORISED: tuple[str, ...] = (
    "Non-religious",
    "Christian",
    "Agnostic",
    "Jewish",
    "Muslim",
    "Spiritual",
    "Buddhist",
    "Folk religion",
    "Hindu",
    "Sikh",
    "Other",
    PREFER_NOT,
)
RELIGION_SIMPLIFIED: tuple[str, ...] = (
    "No Affiliation",
    "Christian",
    "Jewish",
    "Muslim",
    "Other",
    PREFER_NOT,
)
ETHNICITY_CATEGORISED: tuple[str, ...] = (
    "White",
    "Black / African",
    "Hispanic / Latino",
    "Asian",
    "Mixed",
    "Middle Eastern / Arab",
    "Indigenous / First Peoples",
    "Other",
    PREFER_NOT,
)
ETHNICITY_SIMPLIFIED: tuple[str, ...] = (
    "White",
    "Black",
    "Hispanic",
    "Asian",
    "Mixed",
    "Other",
    PREFER_NOT,
)

#: ``religion.categorised`` -> ``religion.simplified`` (codebook; SPEC §1.2).
RELIGION_SIMPLIFIED_FROM_CATEGORISED: dict[str, str] = {
    "Non-religious": "No Affiliation",
    "Agnostic": "No Affiliation",
    "Spiritual": "No Affiliation",
    "Christian": "Christian",
    "Jewish": "Jewish",
    "Muslim": "Muslim",
    "Buddhist": "Other",
    "Folk religion": "Other",
    "Hindu": "Other",
    "Sikh": "Other",
    "Other": "Other",
    PREFER_NOT: PREFER_NOT,
}
#: ``ethnicity.categorised`` -> ``ethnicity.simplified`` (codebook; SPEC §1.2).
ETHNICITY_SIMPLIFIED_FROM_CATEGORISED: dict[str, str] = {
    "White": "White",
    "Black / African": "Black",
    "Hispanic / Latino": "Hispanic",
    "Asian": "Asian",
    "Mixed": "Mixed",
    "Middle Eastern / Arab": "Other",
    "Indigenous / First Peoples": "Other",
    "Other": "Other",
    PREFER_NOT: PREFER_NOT,
}

# --- census harmonisation -----------------------------------------------------------------

#: Sexes of the census frames. Non-binary and "Prefer not to say" participants have no
#: census cell (see ``prism_stats.census`` for how they are treated).
CENSUS_SEXES: tuple[str, ...] = ("Male", "Female")
#: The five census ethnicity groups of the original rebalancing.
CENSUS_ETHNICITIES: tuple[str, ...] = ("White", "Black", "Asian", "Mixed", "Other")
#: Age bands of the census frames (the survey bands without "Prefer not to say").
CENSUS_AGES: tuple[str, ...] = AGE_BANDS[:-1]
#: ``ethnicity.categorised`` -> census group. "Prefer not to say" maps to nothing.
CENSUS_ETHNICITY_FROM_CATEGORISED: dict[str, str] = {
    "White": "White",
    "Black / African": "Black",
    "Asian": "Asian",
    "Mixed": "Mixed",
    "Hispanic / Latino": "Other",
    "Middle Eastern / Arab": "Other",
    "Indigenous / First Peoples": "Other",
    "Other": "Other",
}
#: Ethnicity factor used by the models: the census groups plus "Prefer not to say".
ETHNICITY_GROUPS: tuple[str, ...] = CENSUS_ETHNICITIES + (PREFER_NOT,)

#: Ratings at or below this score count as a veto (the original study's ``score <= 10``).
VETO_THRESHOLD: int = 10

COUNTRIES_MRP: tuple[str, ...] = ("uk", "us")
#: Residence ISO3 code of each post-stratification country.
COUNTRY_ISO3: dict[str, str] = {"uk": "GBR", "us": "USA"}
#: Census population subgroups (``census.group_masks``): MRP groups, welfare pools and
#: targets, the synthetic truth's population means.
POPULATION_GROUPS: tuple[str, ...] = (
    "all", "male", "nonmale", "white", "nonwhite", "under45", "over45",
)
#: Display labels of the population groups in tables and figures.
GROUP_LABELS: dict[str, str] = {
    "all": "All", "male": "Male", "nonmale": "Non-male", "white": "White",
    "nonwhite": "Non-white", "under45": "Under 45", "over45": "45+",
}

# --- conversations --------------------------------------------------------------------

CONVERSATION_TYPES: tuple[str, ...] = ("unguided", "values guided", "controversy guided")
ROLES: tuple[str, ...] = ("user", "model")
ATTRIBUTE_KEYS: tuple[str, ...] = (
    "values",
    "fluency",
    "factuality",
    "safety",
    "diversity",
    "creativity",
    "helpfulness",
)
STATED_PREF_KEYS: tuple[str, ...] = (
    "values",
    "creativity",
    "fluency",
    "factuality",
    "diversity",
    "safety",
    "personalisation",
    "helpfulness",
    "other",
    "other_text",
)
LM_USECASE_KEYS: tuple[str, ...] = (
    "homework_assistance",
    "research",
    "source_suggestions",
    "professional_work",
    "creative_writing",
    "casual_conversation",
    "personal_recommendations",
    "daily_productivity",
    "technical_or_programming_help",
    "travel_guidance",
    "lifestyle_and_hobbies",
    "well-being_guidance",
    "medical_guidance",
    "financial_guidance",
    "games",
    "historical_or_news_insight",
    "relationship_advice",
    "language_learning",
    "other",
    "other_text",
)
LOCATION_KEYS: tuple[str, ...] = (
    "birth_country",
    "birth_countryISO",
    "birth_region",
    "birth_subregion",
    "reside_country",
    "reside_region",
    "reside_subregion",
    "reside_countryISO",
    "same_birth_reside_country",
    "special_region",
)
SPECIAL_REGIONS: tuple[str, ...] = (
    "US",
    "UK",
    "Europe",
    "Latin America and the Caribbean",
    "Australia and New Zealand",
    "Africa",
    "Asia",
    "Northern America",
    "Middle East",
    "Oceania",
    PREFER_NOT,
)

# --- LLMs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LLM:
    """One of the 21 LLMs of PRISM."""

    long_name: str
    short_name: str
    code: str
    family: str
    provider: str  # the release's ``model_provider`` key
    access: str  # "open" or "commercial"
    style: str  # "chat" or "instruct"


# Order: the codebook's utterance-count order (command ... luminous-extended-control).
LLMS: tuple[LLM, ...] = (
    LLM("command", "command", "COM", "Cohere", "cohere", "commercial", "instruct"),
    LLM("claude-instant-1", "claude-instant-1", "CL1", "Anthropic", "anthropic", "commercial", "chat"),
    LLM("models/chat-bison-001", "palm-2", "PALM", "Google", "google", "commercial", "chat"),
    LLM("HuggingFaceH4/zephyr-7b-beta", "zephyr-7b-beta", "ZEPH", "HuggingFace", "huggingface_api", "open", "chat"),
    LLM("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b-chat", "LL7", "Meta", "huggingface_api", "open", "chat"),
    LLM("command-light", "command-light", "COML", "Cohere", "cohere", "commercial", "instruct"),
    LLM("command-nightly", "command-nightly", "COMN", "Cohere", "cohere", "commercial", "instruct"),
    LLM("gpt-4-1106-preview", "gpt-4-turbo", "GPT4*", "OpenAI", "openai", "commercial", "chat"),
    LLM("gpt-4", "gpt-4", "GPT4", "OpenAI", "openai", "commercial", "chat"),
    LLM("meta-llama/Llama-2-70b-chat-hf", "llama-2-70b-chat", "LL70", "Meta", "huggingface_api", "open", "chat"),
    LLM("gpt-3.5-turbo", "gpt-3.5-turbo", "GP3*", "OpenAI", "openai", "commercial", "chat"),
    LLM("timdettmers/guanaco-33b-merged", "guanaco-33b", "GUAN", "Other OA", "huggingface_api", "open", "instruct"),
    LLM("claude-2.1", "claude-2.1", "CL2*", "Anthropic", "anthropic", "commercial", "chat"),
    LLM("mistralai/Mistral-7B-Instruct-v0.1", "mistral-7b-instruct", "MIST", "Mistral", "huggingface_api", "open", "instruct"),
    LLM("claude-2", "claude-2", "CL2", "Anthropic", "anthropic", "commercial", "chat"),
    LLM("tiiuae/falcon-7b-instruct", "falcon-7b-instruct", "FAL7", "Other OA", "huggingface_api", "open", "instruct"),
    LLM("OpenAssistant/oasst-sft-4-pythia-12b-epoch-3.5", "pythia-12b", "PYTH", "Other OA", "huggingface_api", "open", "chat"),
    LLM("meta-llama/Llama-2-13b-chat-hf", "llama-2-13b-chat", "LL13", "Meta", "huggingface_api", "open", "chat"),
    LLM("luminous-supreme-control", "luminous-supreme-control", "LUMS", "Aleph Alpha", "aleph", "commercial", "instruct"),
    LLM("google/flan-t5-xxl", "flan-t5-xxl", "FLAN", "Google", "huggingface_api", "open", "instruct"),
    LLM("luminous-extended-control", "luminous-extended-control", "LUMX", "Aleph Alpha", "aleph", "commercial", "instruct"),
)
LLM_SHORT_NAMES: tuple[str, ...] = tuple(m.short_name for m in LLMS)
LLM_BY_LONG_NAME: dict[str, LLM] = {m.long_name: m for m in LLMS}
LLM_BY_SHORT_NAME: dict[str, LLM] = {m.short_name: m for m in LLMS}
PROVIDERS: tuple[str, ...] = ("huggingface_api", "cohere", "anthropic", "openai", "google", "aleph")

# --- countries ------------------------------------------------------------------------


@dataclass(frozen=True)
class Country:
    """A birth or residence country as the release names it."""

    name: str  # pycountry standard name, as in ``location.birth_country``
    iso3: str
    region: str  # UN M49 region
    subregion: str  # UN M49 subregion (the release's "lukes" table)


_NA, _LA, _NE, _WE, _EE, _SE = (
    "Northern America",
    "Latin America and the Caribbean",
    "Northern Europe",
    "Western Europe",
    "Eastern Europe",
    "Southern Europe",
)
_SSA, _ANZ, _WA, _EA, _SA, _SEA = (
    "Sub-Saharan Africa",
    "Australia and New Zealand",
    "Western Asia",
    "Eastern Asia",
    "Southern Asia",
    "South-eastern Asia",
)

#: The 75 birth countries of the release (and the 37 residence countries among them,
#: plus three residence-only ones), in the codebook's count order.
COUNTRIES: tuple[Country, ...] = (
    Country("United States", "USA", "Americas", _NA),
    Country("United Kingdom", "GBR", "Europe", _NE),
    Country("South Africa", "ZAF", "Africa", _SSA),
    Country("Mexico", "MEX", "Americas", _LA),
    Country("Australia", "AUS", "Oceania", _ANZ),
    Country("New Zealand", "NZL", "Oceania", _ANZ),
    Country("Chile", "CHL", "Americas", _LA),
    Country("Canada", "CAN", "Americas", _NA),
    Country("Israel", "ISR", "Asia", _WA),
    Country("Nigeria", "NGA", "Africa", _SSA),
    Country("Spain", "ESP", "Europe", _SE),
    Country("Germany", "DEU", "Europe", _WE),
    Country("Belgium", "BEL", "Europe", _WE),
    Country("Hungary", "HUN", "Europe", _EE),
    Country("Poland", "POL", "Europe", _EE),
    Country("Ireland", "IRL", "Europe", _NE),
    Country("Latvia", "LVA", "Europe", _NE),
    Country("Denmark", "DNK", "Europe", _NE),
    Country("Czechia", "CZE", "Europe", _EE),
    Country("Norway", "NOR", "Europe", _NE),
    Country("France", "FRA", "Europe", _WE),
    Country("Italy", "ITA", "Europe", _SE),
    Country("Greece", "GRC", "Europe", _SE),
    Country("Switzerland", "CHE", "Europe", _WE),
    Country("Finland", "FIN", "Europe", _NE),
    Country("Estonia", "EST", "Europe", _NE),
    Country("Austria", "AUT", "Europe", _WE),
    Country("Slovenia", "SVN", "Europe", _SE),
    Country("Netherlands", "NLD", "Europe", _WE),
    Country("India", "IND", "Asia", _SA),
    Country("Japan", "JPN", "Asia", _EA),
    Country("Korea, Republic of", "KOR", "Asia", _EA),
    Country("Portugal", "PRT", "Europe", _SE),
    Country("Romania", "ROU", "Europe", _EE),
    Country("Philippines", "PHL", "Asia", _SEA),
    Country("Sweden", "SWE", "Europe", _NE),
    Country("Russian Federation", "RUS", "Europe", _EE),
    Country("Ukraine", "UKR", "Europe", _EE),
    Country("Bangladesh", "BGD", "Asia", _SA),
    Country("China", "CHN", "Asia", _EA),
    Country("Hong Kong", "HKG", "Asia", _EA),
    Country("Pakistan", "PAK", "Asia", _SA),
    Country("Ghana", "GHA", "Africa", _SSA),
    Country("Dominican Republic", "DOM", "Americas", _LA),
    Country("Venezuela, Bolivarian Republic of", "VEN", "Americas", _LA),
    Country("Indonesia", "IDN", "Asia", _SEA),
    Country("Viet Nam", "VNM", "Asia", _SEA),
    Country("Sri Lanka", "LKA", "Asia", _SA),
    Country("Türkiye", "TUR", "Asia", _WA),
    Country("Argentina", "ARG", "Americas", _LA),
    Country("Kazakhstan", "KAZ", "Asia", "Central Asia"),
    Country("Slovakia", "SVK", "Europe", _EE),
    Country("Sudan", "SDN", "Africa", "Northern Africa"),
    Country("Tonga", "TON", "Oceania", "Polynesia"),
    Country("Afghanistan", "AFG", "Asia", _SA),
    Country("Nepal", "NPL", "Asia", _SA),
    Country("Honduras", "HND", "Americas", _LA),
    Country("Belarus", "BLR", "Europe", _EE),
    Country("Bosnia and Herzegovina", "BIH", "Europe", _SE),
    Country("Brazil", "BRA", "Americas", _LA),
    Country("Bulgaria", "BGR", "Europe", _EE),
    Country("Colombia", "COL", "Americas", _LA),
    Country("Cuba", "CUB", "Americas", _LA),
    Country("Côte d'Ivoire", "CIV", "Africa", _SSA),
    Country("Malaysia", "MYS", "Asia", _SEA),
    Country("Guyana", "GUY", "Americas", _LA),
    Country("Iceland", "ISL", "Europe", _NE),
    Country("Jamaica", "JAM", "Americas", _LA),
    Country("Kenya", "KEN", "Africa", _SSA),
    Country("Kuwait", "KWT", "Asia", _WA),
    Country("Lithuania", "LTU", "Europe", _NE),
    Country("Luxembourg", "LUX", "Europe", _WE),
    Country("Malawi", "MWI", "Africa", _SSA),
    Country("Zambia", "ZMB", "Africa", _SSA),
    Country("Tanzania, United Republic of", "TZA", "Africa", _SSA),
    Country("Lesotho", "LSO", "Africa", _SSA),
    Country("Uruguay", "URY", "Americas", _LA),
)
COUNTRY_BY_NAME: dict[str, Country] = {c.name: c for c in COUNTRIES}
COUNTRY_BY_ISO3: dict[str, Country] = {c.iso3: c for c in COUNTRIES}
#: Residence-country codes of the tidy tables: every ISO3 above plus "Prefer not to say".
COUNTRY_CODES: tuple[str, ...] = tuple(c.iso3 for c in COUNTRIES) + (PREFER_NOT,)
REGIONS: tuple[str, ...] = ("Americas", "Europe", "Asia", "Africa", "Oceania", PREFER_NOT)
SUBREGIONS: tuple[str, ...] = tuple(dict.fromkeys(c.subregion for c in COUNTRIES)) + (PREFER_NOT,)


def special_region(birth: Country | None) -> str:
    """The release's ``location.special_region`` of a birth country.

    US and UK are split out; Mexico and Latin America form one region; Canada is
    "Northern America"; Western Asia is "Middle East"; Australia and New Zealand keep
    their subregion; every other country gets its UN region. ``None`` (a participant
    who preferred not to say) gives "Prefer not to say".
    """
    if birth is None:
        return PREFER_NOT
    if birth.iso3 == "USA":
        return "US"
    if birth.iso3 == "GBR":
        return "UK"
    if birth.iso3 == "MEX" or birth.subregion == _LA:
        return _LA
    if birth.subregion in (_NA, _WA, _ANZ):
        return {_NA: _NA, _WA: "Middle East", _ANZ: _ANZ}[birth.subregion]
    return birth.region
