"""The supplementary-materials bundle: every table and figure, an index page and a manifest.

:func:`build_supplement` reads what the analysis stages wrote -- a pipeline output
folder (``OUT`` with ``manifest.json``, ``validate/`` and ``run/``) or a bare run folder
(``posterior.nc``, ``run.json`` and whatever later stages added) -- and writes::

    DIR/tables/<name>.csv .tex .md   data (full precision), booktabs LaTeX, Markdown
    DIR/figures/<name>.png .pdf      fixed sizes, fixed dpi
    DIR/index.html, DIR/index.md     every table and figure with its caption, the references
    DIR/references.bib               the cited works (BibTeX)
    DIR/manifest.json                package versions, seeds, data hashes, spec,
                                     stage run times, and a SHA-256 of every file

Every path in the index pages and the manifest is relative to ``DIR`` (the bundle can be
moved or shared without naming the machine it was built on).

Nothing is invented: a table or figure whose inputs are missing is left out and
listed under "not produced" (with the reason) on the index page and in the manifest,
and a figure without finite data on an axis is an error, not an empty picture. In a
pipeline folder only the outputs of stages the pipeline manifest records as done (with
the current configuration) are used.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import (
    content_sha256,
    now_iso,
    package_versions,
    save_figure,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from ..citations import REFERENCES, bibtex
from ..data import PrismDataError, find_release_files
from ..tabular import LATEX_PACKAGES, Table
from .contents import DEFAULT_OPTIONS, _collect, _read_json
from .figures import figure_data_problems
from .sources import Sources, SupplementError, locate

SUPPLEMENT_KIND = "prism-stats supplement"


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
    converged : bool or None
        Whether the fit passed its convergence gate (``None``: no diagnostics found).
    """

    folder: Path
    tables: list[dict[str, Any]]
    figures: list[dict[str, Any]]
    skipped: list[str]
    index_html: Path
    index_md: Path
    manifest: Path
    files: list[Path]
    converged: bool | None = None


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
    try:

        found, _ = find_release_files(folder)
        return {p.name: content_sha256(p) for p in found.values()}
    except (OSError, PrismDataError):  # the manifest still records the data hash of the run
        return {}


def relative_paths(obj: Any, base: Path) -> Any:
    """*obj* (JSON-like) with every absolute path string made relative to *base*."""
    if isinstance(obj, Mapping):
        return {k: relative_paths(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [relative_paths(v, base) for v in obj]
    if isinstance(obj, str) and obj.startswith(("/", "~")) and "\n" not in obj and len(obj) < 4096:
        return os.path.relpath(Path(obj).expanduser(), base)
    return obj


def _references_html() -> list[str]:
    e = html.escape
    return (["<h2 id=\"references\">References</h2><ul>"]
            + [f"<li>{e(r.text)}</li>" for r in REFERENCES.values()] + ["</ul>"])


def _references_md() -> list[str]:
    return ["## References", ""] + [f"- {r.text}" for r in REFERENCES.values()] + [""]


_LATEX_NOTE = ("LaTeX tables need " + ", ".join(f"\\usepackage{{{p}}}" for p in LATEX_PACKAGES)
               + "; the references are in references.bib.")


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
                figures: list[dict[str, Any]], skipped: list[str], warning: str | None = None) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
        f"<title>{e(title)}</title>",
        _STYLE,
        "</head>", "<body>", f"<h1>{e(title)}</h1>",
    ]
    if warning:
        parts.append(f"<p class=\"warning\" style=\"border:2px solid #b00;padding:0.5em;color:#b00\">"
                     f"<b>{e(warning)}</b></p>")
    parts.append("<table>")
    parts += [f"<tr><th style=\"text-align:left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in header]
    parts.append("</table>")
    parts.append("<h2>Tables</h2><ol>")
    parts += [f"<li><a href=\"#{e(t.name)}\">{e(t.title)}</a></li>" for t, _ in tables]
    parts.append(f"</ol><p class=\"files\">{e(_LATEX_NOTE)}</p><h2>Figures</h2><ol>")
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
    parts += _references_html()
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _index_md(title: str, header: list[tuple[str, str]], tables: list[tuple[Table, dict]],
              figures: list[dict[str, Any]], skipped: list[str], warning: str | None = None) -> str:
    lines = [f"# {title}", ""]
    if warning:
        lines += [f"> **{warning}**", ""]
    lines += [f"- **{k}**: {v}" for k, v in header]
    lines += ["", "## Tables", "", _LATEX_NOTE, ""]
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
    lines += _references_md()
    return "\n".join(lines)


#: Tables and figures computed from the rating model's posterior (name prefixes): marked
#: when the fit failed its convergence gate.
FROM_FIT = ("model_diagnostics", "crosscheck", "mrp_", "recovery", "llm_x_", "llm_forest",
            "subgroup_heatmap", "compare_", "ppc", "welfare_model_", "welfare_gaps_model_",
            "rankings_model_rating")
UNCONVERGED_NOTE = ("From a fit that failed its convergence gate (results marked converged = false): "
                    "provisional, not for conclusions.")


def _mark_unconverged(tables: list[Table], figures: list[Any]) -> None:
    """Prefix the caption of every item computed from an unconverged fit with a warning."""
    for item in [*tables, *figures]:
        if item.name.startswith(FROM_FIT) and not item.caption.startswith(UNCONVERGED_NOTE):
            item.caption = f"{UNCONVERGED_NOTE} {item.caption}"


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
        ``dpi`` (default 150), ``formats`` (default ``["png", "pdf"]``),
        ``welfare_rules`` (rules whose welfare distributions are drawn; default all) and
        ``recovery_benchmark`` (path of the pooled table of ``benchmarks/recovery.py
        --csv``: adds the package's recovery under departures from the model, table and
        figure; default none).
    data : PrismData, optional
        The tidy data, for the descriptive tables when ``validate/descriptives.csv`` is
        not there (default: read from the run's data folder when available).

    Returns
    -------
    SupplementResult
    """
    opts = {**DEFAULT_OPTIONS, **dict(options or {})}
    src = locate(source)
    out = Path(out).expanduser().resolve()
    tables_dir, figures_dir = out / "tables", out / "figures"
    col = _collect(src, opts, data)
    diag = _read_json(src.path("diagnostics.json")) or {}
    converged = diag.get("passed") if isinstance(diag.get("passed"), bool) else None
    if converged is False:
        _mark_unconverged(col.tables, col.figures)

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
    spec = meta.get("spec") or {}
    sampling = meta.get("sampling") or {}
    data_hash = (meta.get("data") or {}).get("data_hash")
    data_folder = src.data_folder or (meta.get("data") or {}).get("folder")
    data_label = relative_paths(str(data_folder), out) if data_folder else "unknown folder"
    header = [
        ("Created", now_iso()),
        ("prism-stats", __version__),
        ("Data", f"{data_label} (hash {str(data_hash)[:16]})"),
        ("Model spec", f"{spec.get('name')} (model hash {str(meta.get('model_hash'))[:16]})"),
        ("Sampling", (f"{sampling.get('sampler')}, {sampling.get('chains')} chains x "
                      f"{sampling.get('draws')} draws after {sampling.get('tune')} tuning steps, "
                      f"seed {sampling.get('seed')}")),
        ("Convergence gate", _gate(diag)),
    ]
    title = "prism-stats supplementary materials"
    warning = ("WARNING: the model fit failed its convergence gate (" + _gate(diag).removeprefix("failed: ")
               + "); every model-based table and figure below is marked as coming from an unconverged fit. "
               "Refit with more draws before drawing conclusions.") if converged is False else None
    index_html = write_text_atomic(out / "index.html",
                                   _index_html(title, header, written_tables, figure_records, col.skipped,
                                               warning))
    index_md = write_text_atomic(out / "index.md",
                                 _index_md(title, header, written_tables, figure_records, col.skipped,
                                           warning))
    files.append(write_text_atomic(out / "references.bib", bibtex()))
    manifest = {
        "kind": SUPPLEMENT_KIND,
        "created_at": now_iso(),
        "prism_stats_version": __version__,
        "converged": converged,
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
        "recovery_benchmark_sha256": (sha256_file(opts["recovery_benchmark"])
                                      if opts["recovery_benchmark"] else None),
        "tables": table_records,
        "figures": figure_records,
        "not_produced": col.skipped,
        "references": {k: r.text for k, r in REFERENCES.items()},
        "latex_packages": list(LATEX_PACKAGES),
    }
    manifest_path = write_json_atomic(out / "manifest.json", relative_paths(manifest, out))
    files += [index_html, index_md, manifest_path]
    return SupplementResult(folder=out, tables=table_records, figures=figure_records,
                            skipped=col.skipped, index_html=index_html, index_md=index_md,
                            manifest=manifest_path, files=files, converged=converged)
