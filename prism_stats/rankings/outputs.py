"""Writing the preference-diversity results to a folder, and reading them back as supplement items.

Layout of a rankings folder (the CLI's ``--out``; ``OUT/run/rankings`` in the pipeline)::

    battles_summary.json       battle counts, outcome shares, settings
    pair_counts.csv            llm, opponent, wins, ties, battles, win_rate
    rankings.csv               every (grouping, group, ranking, llm): value, rank, bootstrap interval
    group_sizes.csv            participants and battles per group; "ranked" / "too small"
    rc_normalisations.csv      Rank Centrality, original vs corrected
    model_ranks.csv            model-based expected rank, P(best), 90% rank interval
    model_p_rank.csv           P(rank = k)
    model_undecided.csv        pairs the model cannot order
    agreement.csv, agreement_summary.csv, model_rankings.json
    attribute_correlations.csv attribute_blocks.csv attribute_missing.csv
    stated_model.csv stated_model.json
    rater_scale_use.csv score_disagreement.csv score_disagreement_sites.csv
    regression_<name>.csv regression_<name>.json
    tables/  figures/          rendered by :func:`write_supplement_items`

Every file is written atomically. :func:`supplement_items` rebuilds the tables and the
figure recipes from whatever of these files exist (and says what is missing), so the
pipeline's supplement and the CLI share one path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_path, write_json_atomic, write_text_atomic

FigureRecipe = tuple[str, str, str, Callable[[], Any]]


def _csv(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    return write_text_atomic(folder / name, frame.to_csv(index=False))


def write_classical(result: Any, folder: str | Path) -> list[Path]:
    """Write a :class:`~prism_stats.rankings.analysis.ClassicalRankings`."""
    folder = Path(folder)
    counts = result.counts.to_dataframe().reset_index()
    written = [
        write_json_atomic(folder / "battles_summary.json",
                          {**result.summary, "settings": result.subgroups.settings}),
        _csv(folder, "pair_counts.csv", counts[counts["llm"] != counts["opponent"]]),
        _csv(folder, "rankings.csv", result.subgroups.table),
        _csv(folder, "group_sizes.csv", result.subgroups.sizes),
        _csv(folder, "rc_normalisations.csv", result.normalisations.reset_index()),
    ]
    if result.bootstrap is not None:
        path = folder / "bootstrap_all.nc"
        with atomic_path(path) as tmp:
            result.bootstrap.to_netcdf(tmp, engine="h5netcdf")
        written.append(path)
    return written


def write_model(result: Any, folder: str | Path) -> list[Path]:
    """Write a :class:`~prism_stats.rankings.analysis.ModelRankings`."""
    folder = Path(folder)
    return [
        _csv(folder, "model_ranks.csv", result.ranks),
        _csv(folder, "model_p_rank.csv", result.p_rank),
        _csv(folder, "model_undecided.csv", result.undecided),
        _csv(folder, "agreement.csv", result.agreement),
        _csv(folder, "agreement_summary.csv", result.agreement_summary),
        write_json_atomic(folder / "model_rankings.json", {**result.meta, "notes": result.notes}),
    ]


def write_stated(result: Any, folder: str | Path) -> list[Path]:
    """Write a :class:`~prism_stats.rankings.analysis.StatedAnalysis`."""
    folder = Path(folder)
    corr = result.correlations
    written = [
        _csv(folder, "attribute_correlations.csv", corr.long()),
        _csv(folder, "attribute_blocks.csv", corr.blocks.rename_axis("attribute").reset_index()),
        _csv(folder, "attribute_missing.csv", corr.missing),
    ]
    if result.fit is not None:
        written.append(_csv(folder, "stated_model.csv", result.fit.summary()))
        written.append(write_json_atomic(folder / "stated_model.json", {"fitted": True, **result.fit.meta}))
    else:  # not asked for: say so, so the supplement does not report it missing
        (folder / "stated_model.csv").unlink(missing_ok=True)
        written.append(write_json_atomic(folder / "stated_model.json",
                                         {"fitted": False, "reason": "the model fit was not requested"}))
    return written


def write_score_use(result: Any, folder: str | Path) -> list[Path]:
    """Write a :class:`~prism_stats.rankings.analysis.ScoreUse`."""
    folder = Path(folder)
    return [
        _csv(folder, "rater_scale_use.csv", result.raters),
        _csv(folder, "score_disagreement.csv", result.disagreement),
        _csv(folder, "score_disagreement_sites.csv", result.sites),
    ]


def write_regression(table: Any, folder: str | Path, name: str) -> list[Path]:
    """Write a :class:`prism_stats.comparators.RegressionTable`: coefficients, fit, LaTeX, Markdown."""
    folder = Path(folder)
    coefs = table.coefficients.reset_index()
    meta = {"name": table.name, "outcome": table.outcome, "n_obs": table.n_obs,
            "n_clusters": table.n_clusters, "r2": table.r2, "r2_adj": table.r2_adj,
            "cov_type": table.cov_type, "notes": table.notes}
    return [_csv(folder, f"regression_{name}.csv", coefs),
            write_json_atomic(folder / f"regression_{name}.json", meta),
            write_text_atomic(folder / f"regression_{name}.tex", table.to_table(f"regression_{name}").to_latex()),
            write_text_atomic(folder / f"regression_{name}.md", table.to_table(f"regression_{name}").to_markdown())]


# --- reading back ---------------------------------------------------------------------------------


class _Reader:
    """Reads result files of a folder, optionally only those *usable* says are current."""

    def __init__(self, folder: Path, usable: Callable[[Path], bool] | None) -> None:
        self.folder, self.usable = folder, usable

    def _ok(self, path: Path) -> bool:
        return path.is_file() and (self.usable is None or self.usable(path))

    def csv(self, name: str) -> pd.DataFrame | None:
        path = self.folder / name
        return pd.read_csv(path) if self._ok(path) else None

    def json(self, name: str) -> dict[str, Any] | None:
        path = self.folder / name
        return json.loads(path.read_text(encoding="utf-8")) if self._ok(path) else None


def _regression_table(coefs: pd.DataFrame, meta: dict[str, Any], name: str) -> Any:
    from ..tabular import coefficient_table  # the one regression writer (comparators use it too)

    return coefficient_table(f"regression_{name}", meta.get("name", name), coefs,
                             outcome=str(meta.get("outcome")), n_obs=meta.get("n_obs"),
                             n_clusters=meta.get("n_clusters"), r2=float(meta.get("r2", float("nan"))),
                             r2_adj=meta.get("r2_adj"),
                             note="The original study reported non-robust standard errors. ")


def supplement_items(folder: str | Path, usable: Callable[[Path], bool] | None = None,
                     ) -> tuple[list[Any], list[FigureRecipe], list[str]]:
    """Tables, figure recipes ``(name, title, caption, draw)`` and what is missing, from *folder*.

    *usable* (optional) says whether a file may be used (the supplement passes "written
    by a stage recorded as done").
    """
    from . import plots
    from . import tables as T

    folder = Path(folder)
    reader = _Reader(folder, usable)
    _read = lambda _f, name: reader.csv(name)  # noqa: E731
    _json = lambda _f, name: reader.json(name)  # noqa: E731
    tables: list[Any] = []
    figures: list[FigureRecipe] = []
    skipped: list[str] = []
    rankings = _read(folder, "rankings.csv")
    if rankings is None:
        skipped.append("rankings tables: no rankings.csv (pipeline stage rankings, or `prism-stats rankings`)")
    else:
        settings = (_json(folder, "battles_summary.json") or {}).get("settings", {})
        tables.append(T.overall_table(rankings))
        norm = _read(folder, "rc_normalisations.csv")
        if norm is not None:
            tables.append(T.normalisation_table(norm))
        tables += T.subgroup_tables(rankings)
        sizes = _read(folder, "group_sizes.csv")
        if sizes is not None:
            tables.append(T.sizes_table(sizes, settings.get("min_group_size")))
        figures.append(("rankings_subgroup_heatmap", "Rankings by subgroup",
                        "The study's ranking (Rank Centrality, corrected normalisation) of every LLM "
                        "in the whole sample and in each subgroup the study used: rank (colour and "
                        "number) and 90% participant-bootstrap rank interval.",
                        lambda: plots.subgroup_rank_heatmap(rankings)))
        figures.append(("rankings_methods", "Elo and Rank Centrality compared",
                        "Whole sample: rank of every LLM under online Elo, MLE-Elo (L2, as the "
                        "original), Bradley-Terry (no penalty) and Rank Centrality (original and "
                        "corrected normalisation), with 90% participant-bootstrap rank intervals.",
                        lambda: plots.method_comparison(rankings)))
    pairs = _read(folder, "pair_counts.csv")
    if pairs is not None:
        figures.append(("rankings_win_rate", "Pairwise win rates",
                        "Share of the opening battles between two LLMs that the row LLM won (ties "
                        "count as non-wins and stay in the denominator); rows and columns ordered "
                        "by the average win rate.", lambda: plots.win_rate_heatmap(pairs)))
    ranks = _read(folder, "model_ranks.csv")
    if ranks is None:
        skipped.append("model-based ranks: no model_ranks.csv (pipeline stage rankings_model, or "
                       "`prism-stats rankings --choice` / `--run RUN`)")
    else:
        for source in dict.fromkeys(ranks["source"]):
            t = T.model_census_table(ranks, source)
            if t is not None:
                tables.append(t)
            figures.append((f"rankings_model_{source}", f"Model-based ranks ({source} model)",
                            f"{source.capitalize()} model: expected rank and 90% rank interval of every "
                            "LLM, post-stratified to the UK and US census groups and for the sample "
                            "groups (through their age, gender and ethnicity composition).",
                            lambda source=source: plots.model_rank_heatmap(ranks, source)))
        summary = _read(folder, "agreement_summary.csv")
        if summary is not None and len(summary):
            tables.append(T.agreement_summary_table(summary))
    stated = _read(folder, "stated_model.csv")
    stated_meta = _json(folder, "stated_model.json") or {}
    if stated is not None and stated_meta.get("fitted", True):
        tables.append(T.stated_table(stated, stated_meta))
        figures.append(("stated_forest", "Stated vs revealed preferences",
                        "Posterior mean and 90% interval of b1 (how much more a participant rewards "
                        "a one-sd better attribute rating per sd of the attribute's stated "
                        "importance) and b0 (the reward at average stated importance).",
                        lambda: plots.stated_forest(stated)))
    elif stated_meta.get("fitted") is not False:
        skipped.append("stated-vs-revealed table: no stated_model.csv (pipeline stage stated, or "
                       "`prism-stats stated`)")
    corr = _read(folder, "attribute_correlations.csv")
    if corr is not None:
        figures.append(("attribute_correlations", "Attribute correlations",
                        "Pearson correlations of stated importance, performance and choice "
                        "attributes on the conversation-level merge, ordered by complete-linkage "
                        "clustering (as the original notebook 04).",
                        lambda: plots.correlation_heatmap(corr)))
    dis, raters = _read(folder, "score_disagreement.csv"), _read(folder, "rater_scale_use.csv")
    if dis is not None and raters is not None:
        tables += T.score_use_tables(dis, raters)
    for name in ("response_features", "demographics"):
        coefs, meta = _read(folder, f"regression_{name}.csv"), _json(folder, f"regression_{name}.json")
        if coefs is not None and meta is not None:
            tables.append(_regression_table(coefs, meta, name))
    return tables, figures, skipped


def write_supplement_items(folder: str | Path, *, formats: Sequence[str] = ("png", "pdf"),
                           dpi: int = 150) -> tuple[list[Path], list[str]]:
    """Render :func:`supplement_items` into ``folder/tables`` and ``folder/figures``."""
    from .._io import figure_data_problems, save_figure

    folder = Path(folder)
    tables, figures, skipped = supplement_items(folder)
    written: list[Path] = []
    for t in tables:
        written += list(t.write(folder / "tables").values())
    for name, _title, _caption, draw in figures:
        fig = draw()
        problems = figure_data_problems(fig)
        if problems:
            skipped.append(f"figure {name}: {'; '.join(problems)}")
            continue
        written += save_figure(fig, folder / "figures", name, formats=formats, dpi=dpi)
    return written, skipped
