"""The original study's regressions, with participant-clustered standard errors.

:func:`ols_clustered` (statsmodels OLS with cluster-robust CR1 standard errors) and its
two uses: :func:`response_feature_regression` (score on the text features of
:mod:`prism_stats.comparators.features`) and :func:`demographic_regression` (score on
demographics, LLM and conversation type). Results are :class:`RegressionTable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prism_stats import vocab
from prism_stats.tabular import latex_table, markdown_table

from .features import FEATURES, response_features

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
    import statsmodels.api as sm  # local: ~1 s to import; the CLI's compare needs no OLS

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
