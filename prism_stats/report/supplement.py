"""The supplementary-materials bundle: every table and figure, an index page and a manifest.

:func:`build_supplement` reads what the analysis stages wrote -- a pipeline output
folder (``OUT`` with ``manifest.json``, ``validate/`` and ``run/``) or a bare run folder
(``posterior.nc``, ``run.json`` and whatever later stages added) -- and writes::

    DIR/tables/<name>.csv .tex .md   data (full precision), booktabs LaTeX, Markdown
    DIR/figures/<name>.png .pdf      fixed sizes, fixed dpi
    DIR/index.html, DIR/index.md     every table and figure with its caption
    DIR/manifest.json                package versions, seeds, data hashes, spec,
                                     stage run times, and a SHA-256 of every file

Nothing is invented: a table or figure whose inputs are missing is left out and
listed under "not produced" (with the reason) on the index page and in the manifest,
and a figure without finite data on an axis is an error, not an empty picture. In a
pipeline folder only the outputs of stages the pipeline manifest records as done (with
the current configuration) are used.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from .._io import now_iso, package_versions, sha256_file, write_json_atomic, write_text_atomic
from .figures import DPI, figure_data_problems, save_figure
from .tables import Table

SUPPLEMENT_KIND = "prism-stats supplement"


class SupplementError(ValueError):
    """The supplement cannot be built from the given folder (the message says why)."""


# --- where the inputs are ------------------------------------------------------------------------


@dataclass
class Sources:
    """The inputs of a supplement.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    root : Path or None
        The pipeline output folder, when the run belongs to one.
    manifest : dict or None
        The pipeline manifest.
    run_meta : dict
        ``run.json``.
    """

    run_dir: Path
    root: Path | None = None
    manifest: dict[str, Any] | None = None
    run_meta: dict[str, Any] = field(default_factory=dict)

    def current_outputs(self) -> set[Path] | None:
        """Outputs of the stages recorded as done (``None`` outside a pipeline)."""
        if self.manifest is None or self.root is None:
            return None
        return {(self.root / p).resolve() for rec in self.manifest.get("stages", {}).values()
                if rec.get("status") == "done" for p in rec.get("outputs", [])}

    def path(self, rel: str, base: Path | None = None) -> Path | None:
        """*rel* under the run folder (or *base*) when it exists and is current."""
        p = (base or self.run_dir) / rel
        if not p.is_file():
            return None
        current = self.current_outputs()
        if current is not None and p.resolve() not in current:
            return None
        return p

    @property
    def data_folder(self) -> Path | None:
        folder = (self.run_meta.get("data") or {}).get("folder")
        if folder is None and self.manifest:
            folder = (self.manifest.get("data") or {}).get("folder")
        return Path(folder) if folder and Path(folder).is_dir() else None

    def countries(self) -> list[str]:
        """Countries with MRP results, in ``vocab.COUNTRIES_MRP`` order."""
        from ..vocab import COUNTRIES_MRP

        return [c for c in COUNTRIES_MRP if self.path(f"poststrat_{c}.csv") is not None]


def locate(source: str | Path) -> Sources:
    """Find the run folder (and the pipeline around it) from a pipeline or run folder."""
    from ..model.fit import META_FILE
    from ..pipeline.engine import read_manifest

    source = Path(source).expanduser().resolve()
    if not source.is_dir():
        raise SupplementError(f"{source} is not a folder")
    manifest = read_manifest(source)
    if manifest is not None:
        root, run_dir = source, source / "run"
    else:
        run_dir = source
        parent_manifest = read_manifest(source.parent)
        root, manifest = (source.parent, parent_manifest) if (
            parent_manifest is not None and source.name == "run") else (None, None)
    meta_path = run_dir / META_FILE
    if not meta_path.is_file():
        raise SupplementError(
            f"{source} is neither a pipeline output folder nor a run folder (no {META_FILE}"
            f"{' in run/' if root is not None else ''}); run `prism-stats run` or `prism-stats fit` first")
    try:
        run_meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SupplementError(f"{meta_path}: not valid JSON ({exc})") from None
    return Sources(run_dir=run_dir, root=root, manifest=manifest, run_meta=run_meta)


# --- the contents --------------------------------------------------------------------------------


@dataclass
class FigureEntry:
    """A figure of the supplement: its name, caption and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[], Any]


@dataclass
class SupplementResult:
    """What :func:`build_supplement` wrote.

    Attributes
    ----------
    folder : Path
    tables, figures : list of dict
        One record per table / figure: name, title, caption and files (and, for
        figures, the size in inches and the dpi).
    skipped : list of str
        Tables and figures not produced, with the reason.
    index_html, index_md, manifest : Path
    files : list of Path
        Every file written.
    """

    folder: Path
    tables: list[dict[str, Any]]
    figures: list[dict[str, Any]]
    skipped: list[str]
    index_html: Path
    index_md: Path
    manifest: Path
    files: list[Path]


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
            from ..data import load_prism

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
        from .tables import descriptives_tables

        frame = None
        if self.src.root is not None:
            frame = _read_csv(self.src.path("descriptives.csv", base=self.src.root / "validate"))
        if frame is None:
            data = self.data()
            if data is None:
                self.skipped.append("descriptive tables: no validate/descriptives.csv and the run's "
                                    "data folder is not available")
                return
            from ..data import describe

            frame = describe(data).to_frame()
        self.tables += descriptives_tables(frame)

    def diagnostics(self) -> None:
        from .tables import crosscheck_table, diagnostics_table

        diag = _read_json(self.src.path("diagnostics.json"))
        conv = _read_csv(self.src.path("convergence.csv"))
        if diag is None:
            self.skipped.append("model diagnostics: diagnostics.json missing")
            return
        if conv is None:
            conv = pd.DataFrame(diag.get("per_variable", []))
        loo = _read_json(self.src.path("loo.json"))
        cc_attrs = _read_json(self.src.path("crosscheck_mixedlm.json"))
        self.tables.append(diagnostics_table(conv, diag, loo, cc_attrs))
        cc = _read_csv(self.src.path("crosscheck_mixedlm.csv"))
        if cc is not None:
            self.tables.append(crosscheck_table(cc, cc_attrs))

    def mrp(self) -> None:
        from .tables import mrp_llm_table, mrp_subgroup_table, recovery_table

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

    def interactions(self) -> None:
        import xarray as xr

        from .tables import effect_summaries, llm_demographic_tables

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
        for method, folder in (("model", self.src.run_dir), ("design", self.src.run_dir / "juries")):
            for c in ("uk", "us"):
                if self.src.path(f"welfare_{c}.nc", base=folder) is not None:
                    out.append((method, c, folder))
        return out

    def welfare(self) -> None:
        from .tables import welfare_gaps_table, welfare_table

        sets = self.welfare_sets()
        if not sets:
            self.skipped.append("welfare tables: no welfare_<country>.nc (run the welfare stage)")
            return
        for method, c, folder in sets:
            summary = _read_csv(self.src.path(f"welfare_{c}.csv", base=folder))
            if summary is not None:
                self.tables.append(welfare_table(summary, c, method))
            gaps = self.gaps(method, c, folder)
            if gaps is not None and len(gaps):
                self.tables.append(welfare_gaps_table(gaps, c, method))

    def gaps(self, method: str, country: str, folder: Path) -> pd.DataFrame | None:
        """Model-based: the expected exclusion gaps; design-based: gaps between single juries."""
        if method == "model":
            expected = _read_csv(self.src.path(f"welfare_expected_gaps_{country}.csv", base=folder))
            if expected is not None:
                return expected
        return _read_csv(self.src.path(f"welfare_gaps_{country}.csv", base=folder))

    def comparison(self) -> None:
        from .tables import balance_table, comparison_tables

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

    # -- figures -------------------------------------------------------------------------------
    def figure_list(self) -> None:
        import xarray as xr

        from ..model.plots import plot_llm_forest, plot_predictive
        from .figures import plot_raking_balance, plot_recovery, plot_subgroup_heatmap

        ps = self.poststrat()
        if ps is not None:
            countries = " and ".join(c.upper() for c in self.src.countries())
            self.figures.append(FigureEntry(
                "llm_forest", "LLM forest plot",
                f"Population estimates per LLM (MRP), {countries}: posterior mean (dot) and 90% "
                "interval of the expected opening-turn rating of a new adult of the country; "
                "crosses: the raw mean of the country's resident participants.",
                lambda: plot_llm_forest(ps)))
            self.figures.append(FigureEntry(
                "subgroup_heatmap", "Subgroup x LLM heatmap",
                "MRP estimates per LLM (rows) and census subgroup (columns). Colour: the LLM's "
                "estimate minus the average LLM's for the subgroup; text: the posterior mean "
                "(1-100); box: the subgroup's highest estimate.",
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
            from ..welfare import plot_exclusion_gaps, plot_welfare_distributions, read_welfare

            ds = read_welfare(folder / f"welfare_{c}.nc")
            for rule in [str(r) for r in ds["rule"].values]:
                if rules_wanted is not None and rule not in rules_wanted:
                    continue
                self.figures.append(FigureEntry(
                    f"welfare_{method}_{c}_{rule}", f"Welfare distributions, {c.upper()}, {rule} ({method})",
                    f"{c.upper()}, {method}-based, rule '{rule}': distribution of the welfare each "
                    "target population gets from the LLM a jury picks, per jury scheme (violin over "
                    "the 5th-95th percentiles; bars: 5-95% and 25-75%; tick: median; diamond: mean; "
                    "dashed: the best achievable welfare).",
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
                    f"welfare_gaps_{method}_{c}", f"Exclusion gaps, {c.upper()} ({method})",
                    f"{c.upper()}, {method}-based exclusion gaps: {what}; left of zero: the skewed "
                    "pool serves the target worse.",
                    lambda gaps=gaps, c=c: plot_exclusion_gaps(gaps, c)))
        for stem, title, caption in (
            ("ppc", "Posterior predictive checks",
             ("Posterior predictive checks: replicated score distribution (90% band) against the "
              "observed one; per-LLM mean scores (replicated 90% interval, observed tick); "
              "distribution of per-participant mean scores.")),
            ("prior_predictive", "Prior predictive checks",
             ("Prior predictive checks (the same panels with parameters drawn from the priors): the "
              "priors allow every plausible rating distribution without piling far outside 1-100.")),
        ):
            path = self.src.path(f"{stem}.nc")
            if path is None:
                self.skipped.append(f"{title.lower()}: {stem}.nc missing (run the diagnostics stage)")
                continue
            checks = xr.load_dataset(path, engine="h5netcdf")
            self.figures.append(FigureEntry(stem, title, caption,
                                            lambda checks=checks, title=title: plot_predictive(checks, title=title)))
        balances = getattr(self, "_balances", None)
        if balances:
            self.figures.append(FigureEntry(
                "raking_balance", "Raking balance",
                "Raking balance: absolute standardised difference (ASD) between the sample and the "
                "census share of every margin category, unweighted (open) and raked (filled); "
                "dashed: 0.1.",
                lambda: plot_raking_balance(balances)))


def _rankings(col: _Collector) -> None:
    """Preference-diversity tables and figures from ``rankings/`` (:mod:`prism_stats.rankings.outputs`)."""
    from ..rankings.outputs import supplement_items

    folder = col.src.run_dir / "rankings"
    current = col.src.current_outputs()
    tables, figures, skipped = supplement_items(
        folder, None if current is None else (lambda p: p.resolve() in current))
    col.tables += tables
    col.figures += [FigureEntry(*f) for f in figures]
    col.skipped += skipped


def _collect(src: Sources, options: Mapping[str, Any], data: Any) -> _Collector:
    col = _Collector(src, options, data)
    for step in (col.descriptives, col.diagnostics, col.mrp, col.interactions, col.welfare, col.comparison):
        step()
    col.figure_list()
    _rankings(col)
    return col


def supplement_contents(
    source: str | Path, *, options: Mapping[str, Any] | None = None, data: Any = None,
) -> tuple[list[Table], list[FigureEntry], list[str]]:
    """The supplement's tables and figures without writing anything.

    Returns the :class:`~prism_stats.report.tables.Table` objects, the figure entries
    (call ``entry.draw()`` for a matplotlib figure) and the reasons for what cannot be
    produced from *source* (a pipeline or run folder).
    """
    opts = {"dpi": DPI, "formats": ["png", "pdf"], "welfare_rules": None, **dict(options or {})}
    col = _collect(locate(source), opts, data)
    return col.tables, col.figures, col.skipped


# --- writing -------------------------------------------------------------------------------------


def _seeds(src: Sources) -> dict[str, Any]:
    seeds: dict[str, Any] = {"sampling": src.run_meta.get("seed")}
    cfg = (src.manifest or {}).get("config") or {}
    for section in ("diagnostics", "poststrat", "welfare", "compare"):
        if section in cfg and "seed" in cfg[section]:
            seeds[section] = cfg[section]["seed"]
    if (src.manifest or {}).get("demo") and "demo" in cfg:
        seeds["synthetic_data"] = cfg["demo"].get("seed")
    return seeds


def _data_files(folder: Path | None) -> dict[str, str]:
    if folder is None:
        return {}
    from ..data import PrismDataError, find_release_files
    from ..pipeline.data import _content_sha256

    try:

        found, _ = find_release_files(folder)
        return {p.name: _content_sha256(p) for p in found.values()}
    except (OSError, PrismDataError):  # the manifest still records the data hash of the run
        return {}


def _stage_times(src: Sources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rec in ((src.manifest or {}).get("stages") or {}).items():
        if rec.get("status") == "done":  # the supplement stage itself is still running
            out[name] = {k: rec.get(k) for k in ("status", "started_at", "finished_at", "duration_s",
                                                 "fingerprint")}
    return out


_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "line-height:1.4}table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
    "th,td{padding:2px 8px;border-bottom:1px solid #ddd}thead th{border-bottom:2px solid #333}"
    "caption{caption-side:bottom;text-align:left;font-size:0.9em;color:#333;padding-top:4px}"
    "figure{margin:2em 0}figure img{max-width:100%;border:1px solid #eee}"
    "figcaption{font-size:0.9em}.files{font-size:0.85em;color:#555}</style>"
)


def _index_html(title: str, header: list[tuple[str, str]], tables: list[tuple[Table, dict]],
                figures: list[dict[str, Any]], skipped: list[str]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
        f"<title>{e(title)}</title>",
        _STYLE,
        "</head>", "<body>", f"<h1>{e(title)}</h1>", "<table>",
    ]
    parts += [f"<tr><th style=\"text-align:left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in header]
    parts.append("</table>")
    parts.append("<h2>Tables</h2><ol>")
    parts += [f"<li><a href=\"#{e(t.name)}\">{e(t.title)}</a></li>" for t, _ in tables]
    parts.append("</ol><h2>Figures</h2><ol>")
    parts += [f"<li><a href=\"#fig-{e(f['name'])}\">{e(f['title'])}</a></li>" for f in figures]
    parts.append("</ol>")
    for i, (t, files) in enumerate(tables, start=1):
        links = " · ".join(f"<a href=\"tables/{e(Path(p).name)}\">{k.upper()}</a>" for k, p in files.items())
        parts += [f"<h3 id=\"{e(t.name)}\">Table {i}. {e(t.title)}</h3>", t.to_html(),
                  f"<p class=\"files\">{links}</p>"]
    for i, f in enumerate(figures, start=1):
        png = next((p for p in f["files"] if p.endswith(".png")), f["files"][0])
        links = " · ".join(f"<a href=\"{e(p)}\">{Path(p).suffix[1:].upper()}</a>" for p in f["files"])
        parts += [f"<figure id=\"fig-{e(f['name'])}\"><img src=\"{e(png)}\" alt=\"{e(f['title'])}\">",
                  (f"<figcaption><b>Figure {i}. {e(f['title'])}.</b> {e(f['caption'])} "
                   f"<span class=\"files\">({links})</span></figcaption></figure>")]
    if skipped:
        parts.append("<h2>Not produced</h2><ul>")
        parts += [f"<li>{e(s)}</li>" for s in skipped]
        parts.append("</ul>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _index_md(title: str, header: list[tuple[str, str]], tables: list[tuple[Table, dict]],
              figures: list[dict[str, Any]], skipped: list[str]) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in header]
    lines += ["", "## Tables", ""]
    for i, (t, files) in enumerate(tables, start=1):
        links = ", ".join(f"[{k.upper()}](tables/{Path(p).name})" for k, p in files.items())
        lines += [f"Table {i}. " + t.to_markdown().removeprefix("### "), f"Files: {links}", ""]
    lines += ["## Figures", ""]
    for i, f in enumerate(figures, start=1):
        png = next((p for p in f["files"] if p.endswith(".png")), f["files"][0])
        lines += [f"### Figure {i}. {f['title']}", "", f"![{f['title']}]({png})", "", f["caption"],
                  "", "Files: " + ", ".join(f"[{Path(p).suffix[1:].upper()}]({p})" for p in f["files"]), ""]
    if skipped:
        lines += ["## Not produced", ""] + [f"- {s}" for s in skipped] + [""]
    return "\n".join(lines)


def _gate(diag: Mapping[str, Any]) -> str:
    if not diag:
        return "unknown (no diagnostics.json)"
    return "passed" if diag.get("passed") else "failed: " + "; ".join(diag.get("failures", []))


def build_supplement(
    source: str | Path,
    out: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    data: Any = None,
) -> SupplementResult:
    """Write the supplementary materials of a pipeline or run folder.

    Parameters
    ----------
    source : path
        A pipeline output folder (``prism-stats run``/``demo``) or a run folder.
    out : path
        Where to write (created). Files of an earlier supplement with the same names are
        replaced atomically; other files are left alone.
    options : mapping, optional
        ``dpi`` (default 150), ``formats`` (default ``["png", "pdf"]``) and
        ``welfare_rules`` (rules whose welfare distributions are drawn; default all).
    data : PrismData, optional
        The tidy data, for the descriptive tables when ``validate/descriptives.csv`` is
        not there (default: read from the run's data folder when available).

    Returns
    -------
    SupplementResult
    """
    opts = {"dpi": DPI, "formats": ["png", "pdf"], "welfare_rules": None, **dict(options or {})}
    src = locate(source)
    out = Path(out).expanduser().resolve()
    tables_dir, figures_dir = out / "tables", out / "figures"
    col = _collect(src, opts, data)

    files: list[Path] = []
    table_records, written_tables = [], []
    for t in col.tables:
        paths = t.write(tables_dir)
        files += paths.values()
        written_tables.append((t, {k: str(p) for k, p in paths.items()}))
        table_records.append({"name": t.name, "title": t.title, "caption": t.caption,
                              "rows": len(t.data),
                              "files": {k: {"path": p.relative_to(out).as_posix(), "sha256": sha256_file(p)}
                                        for k, p in paths.items()}})
    figure_records = []
    for f in col.figures:
        try:
            fig = f.draw()
        except ValueError as exc:  # a plotting function refused its input: say so, draw nothing
            col.skipped.append(f"figure {f.name}: {exc}")
            continue
        problems = figure_data_problems(fig)
        if problems:
            raise SupplementError(f"figure {f.name!r} would show no data: {'; '.join(problems)}")
        size = [round(float(v), 3) for v in fig.get_size_inches()]
        paths = save_figure(fig, figures_dir, f.name, formats=opts["formats"], dpi=int(opts["dpi"]))
        files += paths
        figure_records.append({"name": f.name, "title": f.title, "caption": f.caption,
                               "size_inches": size, "dpi": int(opts["dpi"]),
                               "files": [p.relative_to(out).as_posix() for p in paths],
                               "sha256": {p.name: sha256_file(p) for p in paths}})

    meta = src.run_meta
    diag = _read_json(src.path("diagnostics.json")) or {}
    spec = meta.get("spec") or {}
    sampling = meta.get("sampling") or {}
    data_hash = (meta.get("data") or {}).get("data_hash")
    header = [
        ("Created", now_iso()),
        ("prism-stats", __version__),
        ("Data", f"{src.data_folder or (meta.get('data') or {}).get('folder')} (hash {str(data_hash)[:16]})"),
        ("Model spec", f"{spec.get('name')} (model hash {str(meta.get('model_hash'))[:16]})"),
        ("Sampling", (f"{sampling.get('sampler')}, {sampling.get('chains')} chains x "
                      f"{sampling.get('draws')} draws after {sampling.get('tune')} tuning steps, "
                      f"seed {sampling.get('seed')}")),
        ("Convergence gate", _gate(diag)),
    ]
    title = "prism-stats supplementary materials"
    index_html = write_text_atomic(out / "index.html",
                                   _index_html(title, header, written_tables, figure_records, col.skipped))
    index_md = write_text_atomic(out / "index.md",
                                 _index_md(title, header, written_tables, figure_records, col.skipped))
    manifest = {
        "kind": SUPPLEMENT_KIND,
        "created_at": now_iso(),
        "prism_stats_version": __version__,
        "source": {"run_folder": str(src.run_dir), "pipeline_folder": str(src.root) if src.root else None},
        "versions": package_versions(),
        "fit_versions": meta.get("versions"),
        "seeds": _seeds(src),
        "data": {"folder": str(src.data_folder) if src.data_folder else (meta.get("data") or {}).get("folder"),
                 "data_hash": data_hash, "files_sha256": _data_files(src.data_folder)},
        "spec": {"name": spec.get("name"), "source": meta.get("spec_source"),
                 "model_hash": meta.get("model_hash"), "spec": spec},
        "sampling": sampling,
        "fit_timings": meta.get("timings"),
        "stages": _stage_times(src),
        "config": (src.manifest or {}).get("config"),
        "options": opts,
        "tables": table_records,
        "figures": figure_records,
        "not_produced": col.skipped,
    }
    manifest_path = write_json_atomic(out / "manifest.json", manifest)
    files += [index_html, index_md, manifest_path]
    return SupplementResult(folder=out, tables=table_records, figures=figure_records,
                            skipped=col.skipped, index_html=index_html, index_md=index_md,
                            manifest=manifest_path, files=files)
