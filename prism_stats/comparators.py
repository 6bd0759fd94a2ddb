"""Frequentist comparators of the Bayesian estimates.

* **Response-feature regressions** (after the original study's notebook 09, SPEC §3.9):
  OLS of the opening-turn score on features of the response text -- length, line
  breaks, enumeration, a final question mark, refusal, de-anthropomorphising and
  self-identification phrases -- now with participant-clustered standard errors (the
  original used non-robust OLS SEs although every participant rates many responses).
* **Demographic regressions**: the topic-free part of the original topic regressions
  (SPEC §3.2): score on gender, age, region, ethnicity, religion, LLM and conversation
  type, with participant-clustered SEs (the original's R code asked for clustering but
  got HC1; SPEC §5.6).
* **The comparison table**: per LLM, the raw mean of residents, the REP-sample mean,
  the raked mean (with a clustered SE, :mod:`prism_stats.weights`) and the MRP mean
  (with its interval), the rank of every LLM under each estimator and the Spearman and
  Kendall rank correlations between estimators; written as CSV, LaTeX (booktabs) and
  Markdown.

Clustered standard errors are statsmodels' cluster-robust sandwich with the usual
small-sample correction ``G/(G-1) (N-1)/(N-K)``; inference uses t with ``G - 1``
degrees of freedom.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from prism_stats import vocab
from prism_stats._io import write_text_atomic
from prism_stats.report.tables import latex_table, markdown_table
from prism_stats.weights import WeightingResult, weighted_llm_estimates

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


# --- OLS with participant-clustered SEs ------------------------------------------------------


class ComparatorError(ValueError):
    """A comparator cannot be computed from the inputs given."""


@dataclass(frozen=True)
class RegressionTable:
    """An OLS fit with participant-clustered standard errors.

    ``coefficients`` is indexed by term with columns ``coef``, ``se``, ``t``, ``p``,
    ``ci_low``, ``ci_high`` (95%).
    """

    name: str
    outcome: str
    coefficients: pd.DataFrame
    n_obs: int
    n_clusters: int
    r2: float
    r2_adj: float
    cov_type: str = "cluster (participant)"
    notes: dict[str, object] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Coefficients with the fit statistics as ``attrs``."""
        out = self.coefficients.copy()
        out.attrs.update(
            name=self.name,
            outcome=self.outcome,
            n_obs=self.n_obs,
            n_clusters=self.n_clusters,
            r2=self.r2,
            r2_adj=self.r2_adj,
            cov_type=self.cov_type,
        )
        return out

    def _display(self) -> pd.DataFrame:
        c = self.coefficients
        stars = c["p"].map(
            lambda p: "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
        )
        return pd.DataFrame(
            {
                "term": c.index,
                "coef": [f"{v:.4f}{s}" for v, s in zip(c["coef"], stars, strict=True)],
                "se": [f"({v:.4f})" for v in c["se"]],
                "p": [_format_p(p) for p in c["p"]],
            }
        )

    def _footer(self) -> str:
        return (
            f"N = {self.n_obs:,}; participants (clusters) = {self.n_clusters:,}; "
            f"R² = {self.r2:.3f} (adj. {self.r2_adj:.3f}); SEs clustered by participant."
        )

    def to_markdown(self) -> str:
        """A Markdown table of the coefficients with the fit statistics below."""
        return (
            f"**{self.name}** (outcome: {self.outcome})\n\n"
            + markdown_table(self._display(), align="lrrr")
            + f"\n{self._footer()}\n"
        )

    def to_latex(self, label: str | None = None) -> str:
        """A booktabs LaTeX table of the coefficients."""
        return latex_table(
            self._display(),
            align="lrrr",
            caption=f"{self.name} (outcome: {self.outcome}). {self._footer()} "
            "* p<0.05, ** p<0.01, *** p<0.001.",
            label=label,
            header=["Term", "Coefficient", "SE", "p"],
        )


def _format_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _dummies(values: pd.Series, name: str, reference: str | None) -> pd.DataFrame:
    cats = values.astype("category")
    used = [c for c in cats.cat.categories if (cats == c).any()]
    if len(used) < 2:
        return pd.DataFrame(index=values.index)
    ref = reference if reference is not None else used[0]
    if ref not in used:
        raise ComparatorError(f"{name}: reference level {ref!r} has no observations")
    cols = {f"{name}: {c}": (cats == c).to_numpy(dtype=float) for c in used if c != ref}
    return pd.DataFrame(cols, index=values.index)


def ols_clustered(
    y: pd.Series,
    X: pd.DataFrame,
    clusters: pd.Series,
    *,
    name: str,
    outcome: str,
    add_constant: bool = True,
) -> RegressionTable:
    """OLS of *y* on *X* with cluster-robust (CR1) standard errors by *clusters*."""
    import statsmodels.api as sm

    if not (len(y) == len(X) == len(clusters)):
        raise ComparatorError("y, X and clusters differ in length")
    data = pd.concat([y.rename("__y__"), X], axis=1)
    if data.isna().any().any() or clusters.isna().any():
        raise ComparatorError(f"{name}: missing values in the regression data")
    design = (
        sm.add_constant(X.astype(float), has_constant="add") if add_constant else X.astype(float)
    )
    if add_constant:
        design = design.rename(columns={"const": "Intercept"})
    rank = np.linalg.matrix_rank(design.to_numpy())
    if rank < design.shape[1]:
        raise ComparatorError(
            f"{name}: the design matrix is rank deficient ({rank} < {design.shape[1]})"
        )
    groups = pd.factorize(clusters.astype(str))[0]
    fit = sm.OLS(y.astype(float).to_numpy(), design).fit(
        cov_type="cluster",
        cov_kwds={"groups": groups, "use_correction": True, "df_correction": True},
        use_t=True,
    )
    ci = np.asarray(fit.conf_int(alpha=0.05))
    coefs = pd.DataFrame(
        {
            "coef": np.asarray(fit.params),
            "se": np.asarray(fit.bse),
            "t": np.asarray(fit.tvalues),
            "p": np.asarray(fit.pvalues),
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
        },
        index=pd.Index(design.columns, name="term"),
    )
    return RegressionTable(
        name=name,
        outcome=outcome,
        coefficients=coefs,
        n_obs=int(fit.nobs),
        n_clusters=len(np.unique(groups)),
        r2=float(fit.rsquared),
        r2_adj=float(fit.rsquared_adj),
    )


def response_feature_regression(
    ratings: pd.DataFrame,
    *,
    turn: int | None = 0,
    features: Sequence[str] = FEATURES,
    llms: Sequence[str] | None = None,
    max_length_quantile: float | None = None,
) -> RegressionTable:
    """Score on response features (the original's notebook 09 full model), clustered SEs.

    Parameters
    ----------
    ratings
        Tidy ratings with ``score``, ``response``, ``participant``, ``turn``, ``llm``.
    turn
        0 (default, the original's "all turn-0 utterances") or ``None`` for all turns.
    features
        Regressors among :data:`FEATURES` (default: all seven, the full model).
    llms
        Restrict to these LLMs (the original's command / gpt-4 / gpt-4-turbo subset).
    max_length_quantile
        Drop responses at or above this quantile of length (the original's H2-4
        models trim at the 95th percentile: 0.95); default no trimming.

    Returns
    -------
    RegressionTable
        ``notes`` has the prevalence of every flag and the trimming threshold.
    """
    needed = {"score", "response", "participant"} | ({"turn"} if turn is not None else set())
    missing = needed - set(ratings.columns)
    if missing:
        raise ComparatorError(f"ratings lack columns {sorted(missing)}")
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ComparatorError(f"unknown features {unknown}; choose from {list(FEATURES)}")
    r = ratings if turn is None else ratings[ratings["turn"] == turn]
    if llms is not None:
        r = r[r["llm"].astype(str).isin(llms)]
    feats = response_features(r["response"])
    notes: dict[str, object] = {"turn": turn, "llms": list(llms) if llms else "all"}
    if max_length_quantile is not None:
        threshold = float(feats["text_length"].quantile(max_length_quantile))
        keep = (feats["text_length"] < threshold).to_numpy()
        notes["length_threshold"] = threshold
        notes["n_trimmed"] = int((~keep).sum())
        r, feats = r[keep], feats[keep]
    if len(r) < len(features) + 2:
        raise ComparatorError("too few ratings for the regression")
    notes["prevalence"] = {f: float(feats[f].mean()) for f in features if feats[f].dtype == bool}
    table = ols_clustered(
        r["score"],
        feats[list(features)].astype(float),
        r["participant"],
        name="Score on response features",
        outcome="score" + (f" (turn {turn})" if turn is not None else " (all turns)"),
    )
    table.notes.update(notes)
    return table


#: Demographic factors of the topic-free regression: (participants column, label,
#: reference level) -- the original's reference levels (SPEC §3.2).
DEMOGRAPHIC_FACTORS: tuple[tuple[str, str, str], ...] = (
    ("gender", "gender", "Male"),
    ("age", "age", "18-24"),
    ("special_region", "region", "US"),
    ("ethnicity_simplified", "ethnicity", "White"),
    ("religion_simplified", "religion", "No Affiliation"),
)


def demographic_regression(
    ratings: pd.DataFrame,
    participants: pd.DataFrame,
    *,
    turn: int | None = 0,
    factors: Sequence[tuple[str, str, str]] = DEMOGRAPHIC_FACTORS,
    llm_reference: str = vocab.LLM_SHORT_NAMES[0],
    conversation_type_reference: str = vocab.CONVERSATION_TYPES[0],
) -> RegressionTable:
    """Score on demographics + LLM + conversation type, participant-clustered SEs.

    The topic-free part of the original topic regressions: the same demographic
    factors and reference levels (gender Male, age 18-24, region US, ethnicity White,
    religion No Affiliation, conversation type unguided), "Prefer not to say" kept as
    its own level, plus the LLM (reference *llm_reference*). Levels without
    observations are dropped.
    """
    needed_r = {"participant", "score", "llm", "conversation_type"} | (
        {"turn"} if turn is not None else set()
    )
    missing = needed_r - set(ratings.columns)
    if missing:
        raise ComparatorError(f"ratings lack columns {sorted(missing)}")
    cols = [c for c, _, _ in factors]
    missing_p = ({"participant", *cols}) - set(participants.columns)
    if missing_p:
        raise ComparatorError(f"participants lack columns {sorted(missing_p)}")
    r = ratings if turn is None else ratings[ratings["turn"] == turn]
    people = participants[["participant", *cols]].copy()
    people["participant"] = people["participant"].astype(str)
    merged = r.assign(participant=r["participant"].astype(str)).merge(
        people, on="participant", how="left", validate="many_to_one"
    )
    lost = merged[cols].isna().any(axis=1)
    if lost.any():
        raise ComparatorError(
            f"{int(lost.sum())} ratings have no or incomplete participant demographics"
        )
    blocks = [_dummies(merged[c], label, ref) for c, label, ref in factors]
    blocks.append(_dummies(merged["llm"], "llm", llm_reference))
    blocks.append(
        _dummies(merged["conversation_type"], "conversation type", conversation_type_reference)
    )
    X = pd.concat(blocks, axis=1)
    table = ols_clustered(
        merged["score"],
        X,
        merged["participant"],
        name="Score on demographics, LLM and conversation type",
        outcome="score" + (f" (turn {turn})" if turn is not None else " (all turns)"),
    )
    table.notes.update(
        references={label: ref for _, label, ref in factors}
        | {"llm": llm_reference, "conversation type": conversation_type_reference},
        turn=turn,
    )
    return table


# --- the comparison table ---------------------------------------------------------------------

ESTIMATORS: tuple[str, ...] = ("raw", "rep", "raked", "mrp")
_REP_FLAG = {"uk": "in_uk_rep", "us": "in_us_rep"}


@dataclass(frozen=True)
class Comparison:
    """Per-LLM estimates under the four estimators, ranks and rank correlations.

    ``table`` (index ``llm``): ``n_ratings`` (residents' opening-turn ratings),
    ``raw_mean``, ``raw_se``, ``rep_mean``, ``rep_se``, ``raked_mean``, ``raked_se``,
    ``mrp_mean``, ``mrp_q05``, ``mrp_q95``, ``rank_raw`` ... ``rank_mrp`` (1 = highest
    mean). ``rank_correlations``: one row per pair of estimators with ``n_llms``,
    ``spearman``, ``spearman_p``, ``kendall``, ``kendall_p``.
    """

    country: str
    table: pd.DataFrame
    rank_correlations: pd.DataFrame
    weighting: dict[str, object]
    notes: dict[str, object] = field(default_factory=dict)

    def _display(self) -> pd.DataFrame:
        t = self.table

        def mean_se(m: float, s: float) -> str:
            if not np.isfinite(m):
                return "--"
            return f"{m:.1f} ({s:.1f})" if np.isfinite(s) else f"{m:.1f}"

        def mrp(m: float, lo: float, hi: float) -> str:
            if not np.isfinite(m):
                return "--"
            return f"{m:.1f} [{lo:.1f}, {hi:.1f}]"

        def rank(v: float) -> str:
            return "--" if not np.isfinite(v) else str(int(v))

        return pd.DataFrame(
            {
                "LLM": t.index,
                "n": t["n_ratings"].map(lambda v: f"{int(v):,}"),
                "Raw": [mean_se(m, s) for m, s in zip(t["raw_mean"], t["raw_se"], strict=True)],
                "REP": [mean_se(m, s) for m, s in zip(t["rep_mean"], t["rep_se"], strict=True)],
                "Raked": [
                    mean_se(m, s) for m, s in zip(t["raked_mean"], t["raked_se"], strict=True)
                ],
                "MRP": [
                    mrp(m, a, b)
                    for m, a, b in zip(t["mrp_mean"], t["mrp_q05"], t["mrp_q95"], strict=True)
                ],
                **{f"#{e}": t[f"rank_{e}"].map(rank) for e in ESTIMATORS},
            }
        )

    def _rank_display(self) -> pd.DataFrame:
        rc = self.rank_correlations
        return pd.DataFrame(
            {
                "Estimators": [
                    f"{a} vs {b}" for a, b in zip(rc["estimator_a"], rc["estimator_b"], strict=True)
                ],
                "LLMs": rc["n_llms"].astype(str),
                "Spearman": [f"{v:.3f}" if np.isfinite(v) else "--" for v in rc["spearman"]],
                "Kendall": [f"{v:.3f}" if np.isfinite(v) else "--" for v in rc["kendall"]],
            }
        )

    def _caption(self) -> str:
        w = self.weighting
        margins = ", ".join(w.get("margins", []))
        return (
            f"Mean opening-turn score per LLM, {self.country.upper()}: raw mean of residents, "
            f"REP-sample mean and raked mean (SE clustered by participant), MRP posterior mean "
            f"[90% interval]; # = rank (1 = highest). Raking margins: {margins}; "
            f"n = {w.get('n')}, Kish deff {w.get('kish_deff', float('nan')):.2f}."
        )

    def to_markdown(self) -> str:
        """Both tables as Markdown."""
        return (
            f"## {self.country.upper()}: LLM ratings under four estimators\n\n"
            + markdown_table(self._display(), align="lrllll" + "r" * len(ESTIMATORS))
            + f"\n{self._caption()}\n\n### Rank correlations\n\n"
            + markdown_table(self._rank_display(), align="lrrr")
        )

    def to_latex(self) -> str:
        """Both tables as booktabs LaTeX."""
        return (
            latex_table(
                self._display(),
                align="lrllll" + "r" * len(ESTIMATORS),
                caption=self._caption(),
                label=f"tab:compare-{self.country}",
                header=["LLM", "$n$", "Raw", "REP", "Raked", "MRP"]
                + [f"\\#{e}" for e in ESTIMATORS],
            )
            + "\n"
            + latex_table(
                self._rank_display(),
                align="lrrr",
                caption=f"Rank correlations between estimators, {self.country.upper()}.",
                label=f"tab:compare-{self.country}-ranks",
                header=["Estimators", "LLMs", "Spearman $\\rho$", "Kendall $\\tau$"],
            )
        )

    def write(self, folder: str | Path, stem: str | None = None) -> list[Path]:
        """Write ``<stem>.csv``, ``<stem>_ranks.csv``, ``<stem>.tex`` and ``<stem>.md``."""
        folder = Path(folder)
        stem = stem or f"compare_{self.country}"
        paths = [
            write_text_atomic(folder / f"{stem}.csv", self.table.reset_index().to_csv(index=False)),
            write_text_atomic(
                folder / f"{stem}_ranks.csv", self.rank_correlations.to_csv(index=False)
            ),
            write_text_atomic(folder / f"{stem}.tex", self.to_latex()),
            write_text_atomic(folder / f"{stem}.md", self.to_markdown()),
        ]
        return paths


def _ranks(values: pd.Series) -> pd.Series:
    return values.rank(ascending=False, method="min")


def rank_correlations(table: pd.DataFrame, estimators: Sequence[str] = ESTIMATORS) -> pd.DataFrame:
    """Spearman and Kendall (tau-b) correlations between the estimators' LLM means.

    Each pair uses the LLMs with both estimates; fewer than 3 gives NaN.
    """
    rows = []
    for a, b in itertools.combinations(estimators, 2):
        x, y = table[f"{a}_mean"], table[f"{b}_mean"]
        ok = x.notna() & y.notna()
        n = int(ok.sum())
        if n >= 3 and x[ok].nunique() > 1 and y[ok].nunique() > 1:
            sp = stats.spearmanr(x[ok], y[ok])
            kt = stats.kendalltau(x[ok], y[ok])
            rows.append((a, b, n, sp.statistic, sp.pvalue, kt.statistic, kt.pvalue))
        else:
            rows.append((a, b, n, math.nan, math.nan, math.nan, math.nan))
    return pd.DataFrame(
        rows,
        columns=[
            "estimator_a",
            "estimator_b",
            "n_llms",
            "spearman",
            "spearman_p",
            "kendall",
            "kendall_p",
        ],
    )


def _unit_weights(ids: pd.Index) -> pd.Series:
    return pd.Series(1.0, index=pd.Index(ids.astype(str), name="participant"))


def comparison_table(
    participants: pd.DataFrame,
    ratings: pd.DataFrame,
    country: str,
    *,
    weighting: WeightingResult,
    poststrat: pd.DataFrame | None = None,
    turn: int = 0,
    se: str = "linearisation",
    n_boot: int = 500,
    rng: np.random.Generator | int | None = None,
    llms: Sequence[str] = vocab.LLM_SHORT_NAMES,
) -> Comparison:
    """Per-LLM raw, REP, raked and MRP means of one country, their ranks and agreement.

    Parameters
    ----------
    participants, ratings
        Tidy tables (``PrismData``).
    country
        ``"uk"`` or ``"us"``.
    weighting
        The raking (or post-stratification) result of the country's residents, e.g.
        :func:`prism_stats.weights.default_participant_weights`.
    poststrat
        The MRP output ``poststrat_<country>.csv`` (columns ``country, group, llm,
        mean, q05, q95, ...``); its ``group == "all"`` rows are used. ``None``: no MRP
        column.
    turn
        The turn whose scores are compared (0: the opening turn).
    se, n_boot, rng
        Standard errors of the raw, REP and raked means (see
        :func:`prism_stats.weights.weighted_llm_estimates`).

    Notes
    -----
    Raw: unweighted mean over residents (``reside_country``). REP: unweighted mean over
    the release's REP sample (``in_uk_rep`` / ``in_us_rep``; membership, not residence,
    defines it). Raked: residents in the weighting sample, weighted by their
    participant's weight. All three use every rating of *turn*; SEs are clustered by
    participant.
    """
    country = country.lower()
    if country not in _REP_FLAG:
        raise ComparatorError(f"unknown country {country!r}; expected 'uk' or 'us'")
    people = participants.set_index(participants["participant"].astype(str))
    iso = vocab.COUNTRY_ISO3[country]
    residents = people.index[
        (people["reside_country"].astype("string") == iso).fillna(False).to_numpy()
    ]
    rep = people.index[people[_REP_FLAG[country]].fillna(False).to_numpy(dtype=bool)]
    outsiders = set(weighting.weights.index.astype(str)) - set(residents)
    if outsiders:
        raise ComparatorError(
            f"the weighting includes {len(outsiders)} participant(s) who are not residents of "
            f"{iso} (e.g. {sorted(outsiders)[:3]}): were the weights computed for {country}?"
        )
    kwargs = {"turn": turn, "se": se, "n_boot": n_boot, "rng": rng, "llms": llms}
    raw = weighted_llm_estimates(ratings, _unit_weights(residents), **kwargs)
    rep_est = weighted_llm_estimates(ratings, _unit_weights(rep), **kwargs)
    raked = weighted_llm_estimates(ratings, weighting, **kwargs)

    table = pd.DataFrame(index=pd.Index(list(llms), name="llm"))
    table["n_ratings"] = raw["n_ratings"]
    table["raw_mean"], table["raw_se"] = raw["mean_rating"], raw["mean_rating_se"]
    table["rep_mean"], table["rep_se"] = rep_est["mean_rating"], rep_est["mean_rating_se"]
    table["raked_mean"], table["raked_se"] = raked["mean_rating"], raked["mean_rating_se"]
    if poststrat is not None:
        missing = {"group", "llm", "mean", "q05", "q95"} - set(poststrat.columns)
        if missing:
            raise ComparatorError(f"poststrat table lacks columns {sorted(missing)}")
        ps = poststrat[poststrat["group"].astype(str) == "all"]
        if "country" in ps:
            ps = ps[ps["country"].astype(str).str.lower() == country]
        if ps["llm"].duplicated().any():
            raise ComparatorError("poststrat table has several 'all' rows for an LLM")
        ps = ps.set_index(ps["llm"].astype(str))
        unknown = sorted(set(ps.index) - set(llms))
        if unknown:
            raise ComparatorError(f"poststrat table names unknown LLMs {unknown}")
        table["mrp_mean"] = ps["mean"].reindex(table.index).astype(float)
        table["mrp_q05"] = ps["q05"].reindex(table.index).astype(float)
        table["mrp_q95"] = ps["q95"].reindex(table.index).astype(float)
    else:
        table["mrp_mean"] = table["mrp_q05"] = table["mrp_q95"] = np.nan
    for e in ESTIMATORS:
        table[f"rank_{e}"] = _ranks(table[f"{e}_mean"])
    return Comparison(
        country=country,
        table=table,
        rank_correlations=rank_correlations(table),
        weighting=weighting.summary(),
        notes={
            "turn": turn,
            "se": se,
            "n_residents": len(residents),
            "n_rep": len(rep),
            "n_ratings_residents": int(raw["n_ratings"].sum()),
            "n_ratings_rep": int(rep_est["n_ratings"].sum()),
        },
    )


def write_country_comparison(
    out_dir: str | Path,
    data,
    country: str,
    poststrat: pd.DataFrame,
    *,
    harmonisation: str = "default",
    bounds: tuple[float, float] | None = None,
    se: str = "linearisation",
    n_boot: int = 500,
    seed: int = 20240101,
) -> tuple[Comparison, WeightingResult, list[Path]]:
    """Rake a country's residents, build its comparison table and write every output.

    Writes ``compare_<country>.csv`` / ``_ranks.csv`` / ``.tex`` / ``.md`` (see
    :meth:`Comparison.write`), the weighting summary ``compare_<country>_weights.json``
    and the balance table ``compare_<country>_balance.csv``. Shared by the ``compare``
    command and the pipeline's compare stage.
    """
    from prism_stats._io import write_json_atomic
    from prism_stats.weights import default_participant_weights

    out_dir = Path(out_dir)
    weighting = default_participant_weights(data.participants, country,
                                            harmonisation=harmonisation, bounds=bounds)
    comparison = comparison_table(data.participants, data.ratings, country, weighting=weighting,
                                  poststrat=poststrat, se=se, n_boot=n_boot, rng=seed)
    written = [Path(p) for p in comparison.write(out_dir)]
    written.append(write_json_atomic(out_dir / f"compare_{country}_weights.json", {
        "weighting": comparison.weighting, "notes": comparison.notes,
        "harmonisation": harmonisation, "data_hash": getattr(data, "data_hash", None)}))
    written.append(write_text_atomic(out_dir / f"compare_{country}_balance.csv",
                                     weighting.balance.to_csv(index=False)))
    return comparison, weighting, written
