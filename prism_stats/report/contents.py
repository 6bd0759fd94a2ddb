"""What goes into the supplement: every table and figure whose inputs exist, or why not.

:func:`supplement_contents` reads the analysis outputs found by
:mod:`prism_stats.report.sources` and builds the tables (:mod:`prism_stats.report.tables`)
and the figure entries (drawn later by the writer, :mod:`prism_stats.report.supplement`);
a table or figure whose inputs are missing is listed as not produced, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..citations import census_citation, cite
from ..comparators import comparison_tables
from ..data import describe, load_prism
from ..rankings.outputs import supplement_items as rankings_supplement_items
from ..tabular import Table
from .figures import (
    DPI,
    plot_raking_balance,
    plot_recovery,
    plot_scenario_recovery,
    plot_subgroup_heatmap,
)
from .sources import Sources, SupplementError, locate
from .spec_table import model_table
from .tables import (
    SCENARIO_RECOVERY_COLUMNS,
    WELFARE_METHODS,
    balance_table,
    crosscheck_table,
    descriptives_tables,
    diagnostics_table,
    effect_summaries,
    llm_demographic_tables,
    mrp_llm_table,
    mrp_subgroup_table,
    recovery_table,
    scenario_recovery_table,
    welfare_exposure_table,
    welfare_gaps_table,
    welfare_table,
)
from .topics import topic_supplement

# --- the contents --------------------------------------------------------------------------------


@dataclass
class FigureEntry:
    """A figure of the supplement: its name, caption and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[], Any]


def _read_csv(path: Path | None) -> pd.DataFrame | None:
    return None if path is None else pd.read_csv(path)


def _read_json(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else json.loads(path.read_text(encoding="utf-8"))


class _Collector:
    """Gathers tables and figures, recording why something could not be made."""

    def __init__(self, src: Sources, options: Mapping[str, Any], data: Any) -> None:
        self.src = src
        self.options = options
        self._data = data
        self.tables: list[Table] = []
        self.figures: list[FigureEntry] = []
        self.skipped: list[str] = []
        self._poststrat: pd.DataFrame | None = None

    # -- shared inputs -------------------------------------------------------------------
    def data(self) -> Any:
        if self._data is None and self.src.data_folder is not None:
            self._data = load_prism(self.src.data_folder, strict=False)
        return self._data

    def poststrat(self) -> pd.DataFrame | None:
        if self._poststrat is None:
            frames = [pd.read_csv(self.src.path(f"poststrat_{c}.csv")) for c in self.src.countries()]
            self._poststrat = pd.concat(frames, ignore_index=True) if frames else None
        return self._poststrat

    def truth(self) -> pd.DataFrame | None:
        folder = self.src.data_folder
        path = folder / "truth" / "population_means.csv" if folder is not None else None
        return pd.read_csv(path) if path is not None and path.is_file() else None

    # -- tables ------------------------------------------------------------------------------
    def descriptives(self) -> None:
        frame = None
        if self.src.root is not None:
            frame = _read_csv(self.src.path("descriptives.csv", base=self.src.root / "validate"))
        if frame is None:
            data = self.data()
            if data is None:
                self.skipped.append("descriptive tables: no validate/descriptives.csv and the run's "
                                    "data folder is not available")
                return
            frame = describe(data).to_frame()
        self.tables += descriptives_tables(frame)

    def diagnostics(self) -> None:
        diag = _read_json(self.src.path("diagnostics.json"))
        conv = _read_csv(self.src.path("convergence.csv"))
        if diag is None:
            self.skipped.append("model diagnostics: diagnostics.json missing")
            return
        if conv is None:
            conv = pd.DataFrame(diag.get("per_variable", []))
        spec = self.src.run_meta.get("spec")
        if spec:
            self.tables.append(model_table(spec))
        loo = _read_json(self.src.path("loo.json"))
        cc_attrs = _read_json(self.src.path("crosscheck_mixedlm.json"))
        self.tables.append(diagnostics_table(conv, diag, loo, cc_attrs))
        cc = _read_csv(self.src.path("crosscheck_mixedlm.csv"))
        if cc is not None:
            self.tables.append(crosscheck_table(cc, cc_attrs))

    def mrp(self) -> None:
        ps = self.poststrat()
        if ps is None:
            self.skipped.append("MRP tables: no poststrat_<country>.csv (run the poststratify stage)")
            return
        self.tables.append(mrp_llm_table(ps))
        for c in self.src.countries():
            self.tables.append(mrp_subgroup_table(ps, c))
        truth = self.truth()
        if truth is not None:
            self.tables.append(recovery_table(truth, ps))

    def scenario_recovery(self) -> None:
        """The package's recovery benchmark (option ``recovery_benchmark``), table and figure."""
        path = self.options.get("recovery_benchmark")
        if not path:
            return
        table = read_scenario_recovery(path)
        self.tables.append(scenario_recovery_table(table))
        self.figures.append(FigureEntry(
            "recovery_scenarios", "Recovery when the data are not built like the model",
            "Recovery benchmark of the package (benchmarks/recovery.py), per generator scenario, "
            "country and group. Left: share of the 21 LLMs whose 90% interval covers the true "
            "population mean, mean over releases (solid: 0.90; dashed: 0.85). Right: RMSE of MRP "
            "over the RMSE of the raw residents' means (below 1: MRP is closer to the truth).",
            lambda: plot_scenario_recovery(table)))

    def interactions(self) -> None:
        path = self.src.path("posterior.nc")
        if path is None:
            self.skipped.append("LLM x demographic effects: posterior.nc missing")
            return
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            post = tree["posterior"].to_dataset()
            names = [v for v in ("llm_age", "llm_gender", "llm_ethnicity") if v in post]
            effects = effect_summaries(post[names].load()) if names else None
            llm_order = [str(x) for x in post["llm_effect"].mean(("chain", "draw")).to_series()
                         .sort_values(ascending=False).index] if "llm_effect" in post else None
        if effects is None or effects.empty:
            self.skipped.append("LLM x demographic effects: the spec has no LLM x demographic terms")
            return
        self.tables += llm_demographic_tables(effects, llm_order)

    def welfare_sets(self) -> list[tuple[str, str, Path]]:
        """``(method, country, folder)`` of every welfare result present."""
        out = []
        for method, folder in (("model", self.src.run_dir), ("matched", self.src.run_dir / "exposure_matched"),
                               ("design", self.src.run_dir / "juries")):
            for c in ("uk", "us"):
                if self.src.path(f"welfare_{c}.nc", base=folder) is not None:
                    out.append((method, c, folder))
        return out

    def welfare(self) -> None:
        sets = self.welfare_sets()
        if not sets:
            self.skipped.append("welfare tables: no welfare_<country>.nc (run the welfare stage)")
            return
        side_by_side: dict[str, dict[str, pd.DataFrame]] = {}
        for method, c, folder in sets:
            summary = _read_csv(self.src.path(f"welfare_{c}.csv", base=folder))
            if summary is not None:
                self.tables.append(welfare_table(summary, c, method))
                side_by_side.setdefault(c, {})[method] = summary
            gaps = self.gaps(method, c, folder)
            if gaps is not None and len(gaps):
                self.tables.append(welfare_gaps_table(gaps, c, method))
        for c, summaries in side_by_side.items():
            if "matched" in summaries:  # full-information and exposure-matched juries side by side
                self.tables.append(welfare_exposure_table(summaries, c))

    def gaps(self, method: str, country: str, folder: Path) -> pd.DataFrame | None:
        """Model-based: the expected exclusion gaps; design-based: gaps between single juries."""
        if method in ("model", "matched"):
            expected = _read_csv(self.src.path(f"welfare_expected_gaps_{country}.csv", base=folder))
            if expected is not None:
                return expected
        return _read_csv(self.src.path(f"welfare_gaps_{country}.csv", base=folder))

    def comparison(self) -> None:
        compare, ranks, weights, balances = {}, {}, {}, {}
        for c in ("uk", "us"):
            t = _read_csv(self.src.path(f"compare_{c}.csv"))
            if t is None:
                continue
            compare[c] = t
            r = _read_csv(self.src.path(f"compare_{c}_ranks.csv"))
            if r is not None:
                ranks[c] = r
            w = _read_json(self.src.path(f"compare_{c}_weights.json"))
            if w is not None:
                weights[c] = w
            b = _read_csv(self.src.path(f"compare_{c}_balance.csv"))
            if b is not None:
                balances[c] = b
        if not compare:
            self.skipped.append("comparison tables and raking balance: no compare_<country>.csv "
                                "(run the compare stage)")
            return
        self.tables += comparison_tables(compare, ranks, weights)
        if balances:
            self.tables.append(balance_table(balances))
            self._balances = balances

    def topics(self) -> None:
        """The dialogue-diversity tables and figures, when the topics stage ran."""
        folder = self.src.root / "topics" if self.src.root is not None else None
        if folder is None or self.src.path("topics.json", base=folder) is None:
            return  # an optional stage: nothing to report as missing
        tables, figures, skipped = topic_supplement(folder)
        self.tables += tables
        self.figures += [FigureEntry(f.name, f.title, f.caption, f.draw) for f in figures]
        self.skipped += skipped

    # -- figures -------------------------------------------------------------------------------
    def figure_list(self) -> None:
        # local: the model (and welfare) layers load PyMC, ~4 s; a supplement of tables alone
        # and `import prism_stats.report` do without it
        from ..model.plots import plot_llm_forest, plot_predictive

        ps = self.poststrat()
        if ps is not None:
            countries = " and ".join(c.upper() for c in self.src.countries())
            census = census_citation(self.src.countries())
            self.figures.append(FigureEntry(
                "llm_forest", "LLM forest plot",
                f"Population estimates per LLM (MRP), {countries}: posterior mean (dot) and 90% "
                "interval of the expected opening-turn rating of a new adult of the country, "
                f"post-stratified to the census ({census}); crosses: the raw mean of the "
                f"country's resident participants. Ratings: {cite('prism_data')[1:-1]}.",
                lambda: plot_llm_forest(ps)))
            self.figures.append(FigureEntry(
                "subgroup_heatmap", "Subgroup × LLM heatmap",
                "MRP estimates per LLM (rows) and census subgroup (columns; census cells from "
                f"{census}). Colour: the LLM's estimate minus the average LLM's for the subgroup; "
                "text: the posterior mean (1–100); box: the subgroup's highest posterior mean.",
                lambda: plot_subgroup_heatmap(ps)))
            truth = self.truth()
            if truth is not None:
                self.figures.append(FigureEntry(
                    "recovery", "Recovery of the synthetic truth",
                    "Synthetic data: MRP posterior mean and 90% interval per LLM (whole population) "
                    "against the true population mean of the generating process; dashed: identity.",
                    lambda: plot_recovery(truth, ps)))
        else:
            self.skipped.append("forest plot and heatmap: no MRP results")
        rules_wanted = self.options.get("welfare_rules")
        for method, c, folder in self.welfare_sets():
            from ..welfare import (  # local: loads PyMC (see figure_list)
                plot_exclusion_gaps,
                plot_welfare_distributions,
                read_welfare,
            )

            ds = read_welfare(folder / f"welfare_{c}.nc")
            for rule in [str(r) for r in ds["rule"].values]:
                if rules_wanted is not None and rule not in rules_wanted:
                    continue
                pools = (f"census pools ({census_citation(c)})" if method in ("model", "matched")
                         else f"the study's rater pools {cite('kirk2024')}")
                self.figures.append(FigureEntry(
                    f"welfare_{method}_{c}_{rule}",
                    f"Welfare distributions, {c.upper()}, {RULE_TITLES.get(rule, rule)} "
                    f"({WELFARE_METHODS[method][0]})",
                    f"{c.upper()}, {WELFARE_METHODS[method][1]}, rule '{RULE_TITLES.get(rule, rule)}': "
                    "distribution of the welfare each target population gets from the LLM a jury "
                    f"picks, per jury scheme (pool and jury size; juries drawn from {pools}): violin "
                    "over the 5th–95th percentiles; bars: 5–95% and 25–75%; tick: median; diamond: "
                    "mean; dashed line: the best achievable welfare.",
                    lambda ds=ds, c=c, rule=rule: plot_welfare_distributions(ds, c, rule)))
            gaps = self.gaps(method, c, folder)
            if gaps is not None and len(gaps):
                if "p_negative" in gaps.columns:  # expected gaps: the plot's column names
                    gaps = gaps.rename(columns={"p_negative": "p_worse"}).assign(
                        n_pairs=int(ds.attrs.get("n_draws", 0)))
                    what = ("expected welfare under juries from a skewed census pool minus under "
                            "representative juries of the same size (posterior mean and 90% interval)")
                else:
                    what = ("welfare under a jury from a skewed pool minus under a representative "
                            "jury of the same size (mean and 5-95% quantiles over pairs of juries)")
                self.figures.append(FigureEntry(
                    f"welfare_gaps_{method}_{c}", f"Exclusion gaps, {c.upper()} ({WELFARE_METHODS[method][0]})",
                    f"{c.upper()}, {WELFARE_METHODS[method][0]} exclusion gaps: {what}; negative values: "
                    "the skewed pool gives the target less welfare than the representative pool.",
                    lambda gaps=gaps, c=c: plot_exclusion_gaps(gaps, c)))
        for stem, title, what in (
            ("ppc", "Posterior predictive checks", "parameters drawn from the posterior"),
            ("prior_predictive", "Prior predictive checks", "parameters drawn from the priors"),
        ):
            path = self.src.path(f"{stem}.nc")
            if path is None:
                self.skipped.append(f"{title.lower()}: {stem}.nc missing (run the diagnostics stage)")
                continue
            checks = xr.load_dataset(path, engine="h5netcdf")
            self.figures.append(FigureEntry(stem, title, predictive_caption(checks, title, what),
                                            lambda checks=checks, title=title: plot_predictive(checks, title=title)))
        balances = getattr(self, "_balances", None)
        if balances:
            self.figures.append(FigureEntry(
                "raking_balance", "Raking balance",
                "Raking balance: absolute standardised difference (ASD) between the sample and the "
                "census share of every margin category, unweighted (open) and raked (filled); "
                "dashed: 0.1.",
                lambda: plot_raking_balance(balances)))


#: Jury rules in words (figure titles and captions).
RULE_TITLES: dict[str, str] = {"mean": "mean rating", "chosen": "chosen share", "veto": "non-veto rate"}


def predictive_caption(checks: xr.Dataset, title: str, what: str) -> str:
    """What a predictive-check figure shows, with the shares beyond the histogram (no verdict)."""
    from ..model.plots import outside_shares  # local: as in figure_list

    caption = (f"{title} ({what}; {checks.attrs.get('n_draws', '?')} draws): replicated score "
               "distribution (90% band of 1-point histograms) against the observed one; per-LLM mean "
               "scores (replicated 90% interval, observed tick); distribution of per-participant mean "
               "scores.")
    beyond = outside_shares(checks)
    if beyond is not None:
        caption += (f" Median share of replicated ratings beyond the plotted range "
                    f"{checks.attrs.get('score_range', '')}: {beyond[0]:.1%} below, {beyond[1]:.1%} above "
                    "(annotated in the panel, not drawn).")
    return caption


def _rankings(col: _Collector) -> None:
    """Preference-diversity tables and figures from ``rankings/`` (:mod:`prism_stats.rankings.outputs`)."""
    folder = col.src.run_dir / "rankings"
    current = col.src.current_outputs()
    tables, figures, skipped = rankings_supplement_items(
        folder, None if current is None else (lambda p: p.resolve() in current))
    col.tables += tables
    col.figures += [FigureEntry(*f) for f in figures]
    col.skipped += skipped


#: Supplement options and their defaults (see :func:`prism_stats.report.build_supplement`).
DEFAULT_OPTIONS: dict[str, Any] = {"dpi": DPI, "formats": ["png", "pdf"], "welfare_rules": None,
                                   "recovery_benchmark": None}


def read_scenario_recovery(path: str | Path) -> pd.DataFrame:
    """The pooled table of ``benchmarks/recovery.py --csv``, checked.

    Raises
    ------
    SupplementError
        The file is missing, not a CSV, lacks a column or has no rows (the message names it).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise SupplementError(f"recovery benchmark table {path}: no such file")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SupplementError(f"recovery benchmark table {path}: not a CSV file ({exc})") from None
    missing = [c for c in SCENARIO_RECOVERY_COLUMNS if c not in table.columns]
    if missing:
        raise SupplementError(f"recovery benchmark table {path}: missing column(s) {', '.join(missing)} "
                              "(write it with benchmarks/recovery.py --csv)")
    if table.empty:
        raise SupplementError(f"recovery benchmark table {path}: no rows")
    return table


def _collect(src: Sources, options: Mapping[str, Any], data: Any) -> _Collector:
    col = _Collector(src, options, data)
    for step in (col.descriptives, col.diagnostics, col.mrp, col.interactions, col.welfare, col.comparison):
        step()
    col.figure_list()
    col.scenario_recovery()
    _rankings(col)
    col.topics()
    return col


def supplement_contents(
    source: str | Path, *, options: Mapping[str, Any] | None = None, data: Any = None,
) -> tuple[list[Table], list[FigureEntry], list[str]]:
    """The supplement's tables and figures without writing anything.

    Returns the :class:`~prism_stats.tabular.Table` objects, the figure entries
    (call ``entry.draw()`` for a matplotlib figure) and the reasons for what cannot be
    produced from *source* (a pipeline or run folder).
    """
    col = _collect(locate(source), {**DEFAULT_OPTIONS, **dict(options or {})}, data)
    return col.tables, col.figures, col.skipped
