"""The descriptive table of the original study, and the published numbers to check it against.

:func:`describe` computes, from :class:`~prism_stats.data.PrismData`, the counts the
PRISM paper and codebook report (participants, conversations, interactions,
utterances, countries, per-participant activity, scores, the balanced subset, the REP
samples, every demographic and LLM-usage distribution, conversation types and
per-LLM utterance counts). :data:`PUBLISHED_COUNTS` holds the published values and
:func:`compare_to_published` lines the two up; on the real release every row matches.

Sources of :data:`PUBLISHED_COUNTS` (tag per quantity in :data:`PUBLISHED_SOURCES`):
``CB`` the codebook (Kirk et al. 2024, DOI 10.57967/hf/2113, §4.1-4.3); ``NB:01`` the
printed output of the release notebook ``01_summary_tables`` as collected in the
project specification (SPEC.md §1.2, §1.5, §4 H1-H9), including the per-country table
and the use-case counts among participants shown the question (codebook "True" minus
the 247 not shown, SPEC §5 quirk 1).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from prism_stats import vocab

if TYPE_CHECKING:  # annotation only: tidy imports this module (PrismData.describe)
    from .tidy import PrismData

__all__ = ["PUBLISHED_COUNTS", "PUBLISHED_SOURCES", "Summary", "compare_to_published", "describe"]

NOT_SHOWN = "Not shown"

#: Participant-level categorical variables of the descriptive table (tidy column names).
PARTICIPANT_VARIABLES: tuple[str, ...] = (
    "age",
    "gender",
    "ethnicity_categorised",
    "ethnicity_simplified",
    "religion_categorised",
    "religion_simplified",
    "education",
    "employment",
    "marital",
    "english",
    "special_region",
    "lm_familiarity",
    "lm_direct_use",
    "lm_indirect_use",
    "lm_frequency_use",
)
#: Variables listed with non-zero levels only (long vocabularies).
SPARSE_VARIABLES: tuple[str, ...] = ("birth_country", "reside_country")

_OVERVIEW_LABELS: dict[str, str] = {
    "participants": "Participants",
    "participants_with_conversations": "  with conversations",
    "participants_survey_only": "  survey only",
    "conversations": "Conversations",
    "interactions": "Interactions (turns)",
    "utterances": "Utterances (scored responses)",
    "birth_countries": "Birth countries (incl. Prefer not to say)",
    "residence_countries": "Residence countries (incl. Prefer not to say)",
    "conversations_per_participant": "Conversations per participant",
    "llms_per_participant": "Distinct LLMs rated per participant",
    "turns_per_conversation": "Turns per conversation",
    "score": "Score",
    "chosen_true": "if_chosen True",
    "chosen_false": "if_chosen False",
    "balanced_participants": "Balanced subset: participants",
    "balanced_conversations": "Balanced subset: conversations",
    "balanced_utterances": "Balanced subset: utterances",
    "uk_rep": "UK REP sample",
    "us_rep": "US REP sample",
    "opening_appearances_per_llm": "Opening appearances per LLM",
    "unique_raters_per_llm": "Unique raters per LLM",
}
_STATS = ("mean", "sd", "min", "max")


@dataclass
class Summary:
    """The descriptive table of a :class:`PrismData`.

    Attributes
    ----------
    overview
        Scalar quantities (counts; ``<name>_mean``/``_sd``/``_min``/``_max`` for
        distributions; sd with ``ddof=1`` as in pandas, like the original tables).
    categories
        ``{variable: DataFrame(level, count, percent)}``; participant variables use the
        number of participants as denominator (``lm_frequency_use`` has a "Not shown"
        level; use cases use the participants shown the question), conversation type
        the number of conversations.
    llms
        Per-LLM utterances (and their percent), opening appearances and unique raters.
    providers
        Utterances per provider.
    selection
        The subsetting steps of the data described.
    """

    overview: dict[str, float]
    categories: dict[str, pd.DataFrame]
    llms: pd.DataFrame
    providers: pd.DataFrame
    selection: tuple[str, ...] = ()
    denominators: dict[str, int] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """A long table: ``section``, ``quantity``, ``level``, ``value``, ``percent``."""
        rows: list[dict[str, Any]] = [
            {"section": "overview", "quantity": k, "level": "", "value": v, "percent": np.nan}
            for k, v in self.overview.items()
        ]
        for var, df in self.categories.items():
            section = "conversations" if var == "conversation_type" else "participants"
            rows += [
                {"section": section, "quantity": var, "level": lvl, "value": c, "percent": p}
                for lvl, c, p in df[["level", "count", "percent"]].itertuples(index=False)
            ]
        for lvl, c, p in self.llms[["llm", "utterances", "percent"]].itertuples(index=False):
            rows.append(
                {
                    "section": "utterances",
                    "quantity": "llm_utterances",
                    "level": lvl,
                    "value": c,
                    "percent": p,
                }
            )
        for lvl, c, p in self.providers[["provider", "utterances", "percent"]].itertuples(
            index=False
        ):
            rows.append(
                {
                    "section": "utterances",
                    "quantity": "provider_utterances",
                    "level": lvl,
                    "value": c,
                    "percent": p,
                }
            )
        out = pd.DataFrame(rows, columns=["section", "quantity", "level", "value", "percent"])
        out["value"] = out["value"].astype(float)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (``json.dumps(summary.to_dict())`` works)."""

        def num(x: Any) -> Any:
            x = x.item() if hasattr(x, "item") else x
            return None if isinstance(x, float) and math.isnan(x) else x

        return {
            "selection": list(self.selection),
            "overview": {k: num(v) for k, v in self.overview.items()},
            "categories": {
                var: {
                    str(lvl): {"count": num(c), "percent": num(p)}
                    for lvl, c, p in df[["level", "count", "percent"]].itertuples(index=False)
                }
                for var, df in self.categories.items()
            },
            "llms": {
                str(r.llm): {
                    "utterances": num(r.utterances),
                    "percent": num(r.percent),
                    "opening_appearances": num(r.opening_appearances),
                    "unique_raters": num(r.unique_raters),
                }
                for r in self.llms.itertuples(index=False)
            },
            "providers": {
                str(r.provider): {"utterances": num(r.utterances), "percent": num(r.percent)}
                for r in self.providers.itertuples(index=False)
            },
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        o = self.overview
        out = [
            "PRISM descriptive summary"
            + (f" ({', '.join(self.selection)})" if self.selection else "")
        ]
        width = 48
        for key, label in _OVERVIEW_LABELS.items():
            if key in o:
                out.append(f"  {label:<{width}}{_fmt(o[key]):>12}")
            elif f"{key}_mean" in o:
                m, s, lo, hi = (o[f"{key}_{st}"] for st in _STATS)
                out.append(
                    f"  {label:<{width}}{_fmt(m, 2):>12} ± {_fmt(s, 2)}  [{_fmt(lo)}, {_fmt(hi)}]"
                )
        for var, df in self.categories.items():
            out.append(f"  {var}:")
            for lvl, c, p in df[["level", "count", "percent"]].itertuples(index=False):
                out.append(f"    {lvl!s:<{width - 2}}{int(c):>12,}  {p:5.1f}%")
        out.append("  utterances per LLM:")
        for r in self.llms.itertuples(index=False):
            out.append(f"    {r.llm!s:<{width - 2}}{int(r.utterances):>12,}  {r.percent:5.1f}%")
        out.append("  utterances per provider:")
        for r in self.providers.itertuples(index=False):
            out.append(
                f"    {r.provider!s:<{width - 2}}{int(r.utterances):>12,}  {r.percent:5.1f}%"
            )
        return "\n".join(out)


def _fmt(x: float, decimals: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if float(x).is_integer() and decimals == 0:
        return f"{int(x):,}"
    return f"{x:,.{decimals or 2}f}"


def _dist(values: pd.Series | np.ndarray, name: str, out: dict[str, float]) -> None:
    v = pd.Series(values, dtype=float)
    out[f"{name}_mean"] = float(v.mean()) if len(v) else np.nan
    out[f"{name}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else np.nan
    out[f"{name}_min"] = float(v.min()) if len(v) else np.nan
    out[f"{name}_max"] = float(v.max()) if len(v) else np.nan


def _counts(
    series: pd.Series, denominator: int, *, sparse: bool = False, na_label: str | None = None
) -> pd.DataFrame:
    counts = series.value_counts(sort=False, dropna=True)
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = counts.reindex(series.cat.categories, fill_value=0)
    if sparse:
        counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    levels = [str(x) for x in counts.index]
    values = counts.to_numpy(dtype=np.int64).tolist()
    if na_label is not None:
        levels.append(na_label)
        values.append(int(series.isna().sum()))
    df = pd.DataFrame({"level": levels, "count": np.asarray(values, dtype=np.int64)})
    df["percent"] = 100.0 * df["count"] / denominator if denominator else np.nan
    return df


def describe(data: PrismData) -> Summary:
    """The original study's descriptive table, computed from *data*.

    Participants "with conversations" are those with at least one conversation in
    ``data.conversations`` (on the full release this equals ``survey_only == False``).

    Parameters
    ----------
    data
        A :class:`~prism_stats.data.PrismData` (any subset).

    Returns
    -------
    Summary
    """
    p, c, r = data.participants, data.conversations, data.ratings
    n_p, n_c, n_r = len(p), len(c), len(r)
    per_participant = c.groupby("participant", observed=True).size()
    o: dict[str, float] = {
        "participants": n_p,
        "participants_with_conversations": int(per_participant.size),
        "participants_survey_only": int(n_p - p["participant"].isin(per_participant.index).sum()),
        "conversations": n_c,
        "interactions": int(r["interaction"].nunique()),
        "utterances": n_r,
        "birth_countries": int(p["birth_country"].nunique()),
        "residence_countries": int(p["reside_country"].nunique()),
    }
    _dist(per_participant.to_numpy(), "conversations_per_participant", o)
    _dist(
        r.groupby("participant", observed=True)["llm"].nunique().to_numpy(),
        "llms_per_participant",
        o,
    )
    _dist(c["n_turns"].to_numpy(), "turns_per_conversation", o)
    _dist(r["score"].to_numpy(), "score", o)
    o["chosen_true"] = int(r["chosen"].sum())
    o["chosen_false"] = int(n_r - r["chosen"].sum())
    o["balanced_participants"] = int(p["balanced"].sum())
    o["balanced_conversations"] = int(c["balanced"].sum())
    o["balanced_utterances"] = int(r["balanced"].sum())
    o["uk_rep"] = int(p["in_uk_rep"].sum())
    o["us_rep"] = int(p["in_us_rep"].sum())
    opening = r[r["turn"] == 0]
    appearances = opening["llm"].value_counts().reindex(vocab.LLM_SHORT_NAMES, fill_value=0)
    raters = (
        r.groupby("llm", observed=False)["participant"]
        .nunique()
        .reindex(vocab.LLM_SHORT_NAMES, fill_value=0)
    )
    seen = appearances > 0
    _dist(appearances[seen].to_numpy(), "opening_appearances_per_llm", o)
    _dist(raters[seen].to_numpy(), "unique_raters_per_llm", o)

    cats: dict[str, pd.DataFrame] = {}
    for var in PARTICIPANT_VARIABLES:
        na = NOT_SHOWN if var == "lm_frequency_use" else None
        cats[var] = _counts(p[var], n_p, na_label=na)
    shown = p[[f"usecase_{k}" for k in vocab.LM_USECASE_KEYS if k != "other_text"]]
    n_shown = int(shown.notna().all(axis=1).sum())
    sel = shown.fillna(False).astype(bool).sum()
    cats["usecase_selected"] = pd.DataFrame(
        {
            "level": [k.removeprefix("usecase_") for k in sel.index],
            "count": sel.to_numpy(dtype=np.int64),
            "percent": 100.0 * sel.to_numpy(dtype=float) / n_shown if n_shown else np.nan,
        }
    )
    for var in SPARSE_VARIABLES:
        cats[var] = _counts(p[var], n_p, sparse=True)
    cats["conversation_type"] = _counts(c["conversation_type"], n_c)

    llm_utts = r["llm"].value_counts().reindex(vocab.LLM_SHORT_NAMES, fill_value=0)
    llms = pd.DataFrame(
        {
            "llm": list(vocab.LLM_SHORT_NAMES),
            "utterances": llm_utts.to_numpy(dtype=np.int64),
            "percent": 100.0 * llm_utts.to_numpy(dtype=float) / n_r if n_r else np.nan,
            "opening_appearances": appearances.to_numpy(dtype=np.int64),
            "unique_raters": raters.to_numpy(dtype=np.int64),
        }
    )
    prov = r["provider"].value_counts().reindex(vocab.PROVIDERS, fill_value=0)
    providers = pd.DataFrame(
        {
            "provider": list(vocab.PROVIDERS),
            "utterances": prov.to_numpy(dtype=np.int64),
            "percent": 100.0 * prov.to_numpy(dtype=float) / n_r if n_r else np.nan,
        }
    )
    return Summary(
        overview=o,
        categories=cats,
        llms=llms,
        providers=providers,
        selection=tuple(data.selection),
        denominators={
            "participants": n_p,
            "conversations": n_c,
            "utterances": n_r,
            "usecases_shown": n_shown,
        },
    )


# --- published numbers -------------------------------------------------------------------------

_PNTS = vocab.PREFER_NOT

#: The published descriptive numbers of the full release (tidy labels; see module docstring).
PUBLISHED_COUNTS: dict[str, dict[str, Any]] = {
    "overview": {
        "participants": 1500,
        "participants_with_conversations": 1396,
        "participants_survey_only": 104,
        "conversations": 8011,
        "interactions": 27172,
        "utterances": 68371,
        "birth_countries": 75,
        "residence_countries": 38,
        "conversations_per_participant_mean": 5.74,
        "conversations_per_participant_sd": 0.98,
        "conversations_per_participant_min": 1,
        "conversations_per_participant_max": 7,
        "llms_per_participant_mean": 13.9,
        "llms_per_participant_sd": 2.5,
        "llms_per_participant_min": 2,
        "llms_per_participant_max": 19,
        "turns_per_conversation_mean": 3.39,
        "turns_per_conversation_sd": 1.58,
        "turns_per_conversation_min": 2,
        "turns_per_conversation_max": 22,
        "score_mean": 65.1,
        "score_sd": 29.3,
        "score_min": 1,
        "score_max": 100,
        "chosen_true": 27437,
        "chosen_false": 40934,
        "balanced_participants": 1246,
        "balanced_conversations": 6696,
        "balanced_utterances": 57401,
        "uk_rep": 243,
        "us_rep": 230,
        "opening_appearances_per_llm_mean": 1430.9,
        "opening_appearances_per_llm_sd": 171.1,
        "opening_appearances_per_llm_min": 808,
        "opening_appearances_per_llm_max": 1567,
        "unique_raters_per_llm_mean": 924.3,
        "unique_raters_per_llm_sd": 94.4,
        "unique_raters_per_llm_min": 554,
        "unique_raters_per_llm_max": 995,
    },
    "categories": {
        "age": {"18-24": 297, "25-34": 454, "35-44": 237, "45-54": 208, "55-64": 197, "65+": 106, _PNTS: 1},
        "gender": {"Male": 757, "Female": 718, "Non-binary / third gender": 21, _PNTS: 4},
        "ethnicity_categorised": {
            "White": 969, "Black / African": 122, "Hispanic / Latino": 121, "Asian": 95, _PNTS: 86,
            "Mixed": 68, "Other": 17, "Middle Eastern / Arab": 14, "Indigenous / First Peoples": 8,
        },
        "ethnicity_simplified": {
            "White": 969, "Black": 122, "Hispanic": 121, "Asian": 95, _PNTS: 86, "Mixed": 68, "Other": 39,
        },
        "religion_categorised": {
            "Non-religious": 762, "Christian": 487, "Agnostic": 71, _PNTS: 59, "Jewish": 42, "Muslim": 31,
            "Spiritual": 18, "Buddhist": 12, "Folk religion": 6, "Hindu": 5, "Other": 4, "Sikh": 3,
        },
        "religion_simplified": {
            "No Affiliation": 851, "Christian": 487, _PNTS: 59, "Jewish": 42, "Muslim": 31, "Other": 30,
        },
        "education": {
            "University Bachelors Degree": 637, "Graduate / Professional degree": 241,
            "Some University but no degree": 236, "Completed Secondary School": 209, "Vocational": 125,
            "Some Secondary": 24, "Completed Primary School": 16, _PNTS: 9, "Some Primary": 3,
        },
        "employment": {
            "Working full-time": 712, "Working part-time": 265, "Student": 191, "Unemployed, seeking work": 113,
            "Retired": 104, "Homemaker / Stay-at-home parent": 46, "Unemployed, not seeking work": 46, _PNTS: 23,
        },
        "marital": {"Never been married": 870, "Married": 463, "Divorced / Separated": 123, _PNTS: 23, "Widowed": 21},
        "english": {"Native speaker": 886, "Fluent": 405, "Advanced": 160, "Intermediate": 42, "Basic": 7},
        "special_region": {
            "US": 338, "Europe": 313, "UK": 292, "Latin America and the Caribbean": 146,
            "Australia and New Zealand": 129, "Africa": 118, "Asia": 60, "Northern America": 50,
            "Middle East": 50, _PNTS: 3, "Oceania": 1,
        },
        "lm_familiarity": {"Somewhat familiar": 920, "Very familiar": 424, "Not familiar at all": 156},
        "lm_direct_use": {"Yes": 1162, "No": 259, "Unsure": 79},
        "lm_indirect_use": {"Yes": 1104, "No": 215, "Unsure": 181},
        "lm_frequency_use": {
            "Once per month": 374, "Every week": 316, "More than once a month": 291,
            "Less than one a year": 162, "Every day": 110, NOT_SHOWN: 247,
        },
        "usecase_selected": {
            "research": 617, "professional_work": 469, "creative_writing": 392,
            "technical_or_programming_help": 337, "lifestyle_and_hobbies": 310, "homework_assistance": 286,
            "personal_recommendations": 266, "casual_conversation": 262, "language_learning": 229,
            "source_suggestions": 217, "daily_productivity": 216, "historical_or_news_insight": 183,
            "well-being_guidance": 159, "games": 143, "travel_guidance": 133, "medical_guidance": 130,
            "financial_guidance": 107, "relationship_advice": 98, "other": 124,
        },
        "birth_country": {
            "USA": 338, "GBR": 292, "ZAF": 91, "MEX": 69, "AUS": 65, "NZL": 64, "CHL": 63, "CAN": 50,
            "ISR": 47, "NGA": 19, "ESP": 19, "DEU": 17, "BEL": 17, "HUN": 17, "POL": 17, "IRL": 17,
            "LVA": 16, "DNK": 15, "CZE": 15, "NOR": 15, "FRA": 14, "ITA": 14, "GRC": 14, "CHE": 14,
            "FIN": 12, "EST": 11, "AUT": 11, "SVN": 10, "NLD": 9, "IND": 9, "JPN": 9, "KOR": 9,
            "PRT": 8, "ROU": 7, "PHL": 7, "SWE": 7, "RUS": 6, "UKR": 4, "BGD": 4, "CHN": 4, "HKG": 3,
            "PAK": 3, "GHA": 3, "DOM": 3, "VEN": 3, "IDN": 3, _PNTS: 3, "VNM": 2,
            "LKA": 2, "TUR": 2, "ARG": 2, "KAZ": 2, "SVK": 1, "SDN": 1, "TON": 1, "AFG": 1, "NPL": 1,
            "HND": 1, "BLR": 1, "BIH": 1, "BRA": 1, "BGR": 1, "COL": 1, "CUB": 1, "CIV": 1, "MYS": 1,
            "GUY": 1, "ISL": 1, "JAM": 1, "KEN": 1, "KWT": 1, "LTU": 1, "LUX": 1, "MWI": 1, "ZMB": 1,
        },
        "reside_country": {
            "USA": 386, "GBR": 340, "ZAF": 86, "NZL": 77, "AUS": 72, "MEX": 67, "CHL": 65, "ISR": 61,
            "CAN": 54, "ESP": 18, "BEL": 17, "HUN": 16, "IRL": 15, "DNK": 15, "NOR": 15, "POL": 14,
            "LVA": 14, "CZE": 14, "CHE": 14, "DEU": 13, "ITA": 13, "GRC": 13, "FIN": 13, "FRA": 12,
            "JPN": 11, "EST": 10, "AUT": 10, "SVN": 10, "NLD": 8, "KOR": 7, "PRT": 7, "SWE": 6,
            "LUX": 2, "ISL": 1, "TZA": 1, "LSO": 1, "URY": 1, _PNTS: 1,
        },
        "conversation_type": {"unguided": 3113, "values guided": 2460, "controversy guided": 2438},
    },
    "llm_utterances": {
        "command": 4812, "claude-instant-1": 4292, "palm-2": 4168, "zephyr-7b-beta": 4133,
        "llama-2-7b-chat": 3995, "command-light": 3929, "command-nightly": 3816, "gpt-4-turbo": 3735,
        "gpt-4": 3515, "llama-2-70b-chat": 3493, "gpt-3.5-turbo": 3471, "guanaco-33b": 3468,
        "claude-2.1": 3338, "mistral-7b-instruct": 3261, "claude-2": 3209, "falcon-7b-instruct": 2608,
        "pythia-12b": 2314, "llama-2-13b-chat": 1744, "luminous-supreme-control": 1722,
        "flan-t5-xxl": 1715, "luminous-extended-control": 1633,
    },
    "provider_utterances": {
        "huggingface_api": 26731, "cohere": 12557, "anthropic": 10839, "openai": 10721, "google": 4168, "aleph": 3355,
    },
}  # fmt: skip

#: Where each published quantity comes from ("CB" codebook, "NB:01" release notebook 01).
PUBLISHED_SOURCES: dict[str, str] = {
    **{k: "CB" for k in PUBLISHED_COUNTS["overview"]},
    **{
        k: "NB:01"
        for k in PUBLISHED_COUNTS["overview"]
        if k.startswith(
            ("conversations_per", "llms_per", "turns_per", "opening_app", "unique_raters")
        )
    },
    **{k: "CB" for k in PUBLISHED_COUNTS["categories"]},
    "usecase_selected": "NB:01",
    "birth_country": "NB:01",
    "reside_country": "NB:01",
    "llm_utterances": "CB",
    "provider_utterances": "CB",
}


def _decimals(x: float) -> int:
    if isinstance(x, int) or float(x).is_integer():
        return 0
    text = repr(float(x))
    return len(text.split(".")[1]) if "." in text else 0


def compare_to_published(summary: Summary) -> pd.DataFrame:
    """Line up *summary* with :data:`PUBLISHED_COUNTS`.

    Counts must match exactly; a published mean/sd matches when ours rounds to it at
    the published precision (e.g. 65.1 matches 65.05 <= ours < 65.15).

    Returns
    -------
    DataFrame
        ``section``, ``quantity``, ``level``, ``ours``, ``published``, ``difference``,
        ``match`` (bool) and ``source``; levels present on only one side count as 0 on the
        other.
    """
    ours = summary.to_frame()
    ours_map = {
        (q, str(lvl)): v
        for q, lvl, v in ours[["quantity", "level", "value"]].itertuples(index=False)
    }
    rows = []

    def add(section: str, quantity: str, level: str, published: float, source: str) -> None:
        mine = ours_map.get((quantity, level), 0.0 if level else np.nan)
        d = _decimals(published)
        tol = 0.5 * 10.0**-d + 1e-9 if d else 1e-9
        match = bool(np.isfinite(mine) and abs(mine - published) <= tol)
        rows.append(
            {
                "section": section,
                "quantity": quantity,
                "level": level,
                "ours": mine,
                "published": float(published),
                "difference": mine - published,
                "match": match,
                "source": source,
            }
        )

    for q, v in PUBLISHED_COUNTS["overview"].items():
        add("overview", q, "", v, PUBLISHED_SOURCES[q])
    for var, levels in PUBLISHED_COUNTS["categories"].items():
        section = "conversations" if var == "conversation_type" else "participants"
        ours_levels = {lvl for (q, lvl), v in ours_map.items() if q == var and v}
        for lvl in list(levels) + sorted(ours_levels - set(levels)):
            add(section, var, lvl, levels.get(lvl, 0), PUBLISHED_SOURCES[var])
    for q in ("llm_utterances", "provider_utterances"):
        for lvl, v in PUBLISHED_COUNTS[q].items():
            add("utterances", q, lvl, v, PUBLISHED_SOURCES[q])
    return pd.DataFrame(rows)
