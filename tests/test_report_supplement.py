"""The supplementary-materials bundle built from a real (small) pipeline run: every table
in three formats and structurally valid, the index page, the manifest; from a pipeline
folder, from a bare run folder, and through the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from prism_stats.cli import app
from prism_stats.report import (
    build_supplement,
    latex_problems,
    locate,
    markdown_problems,
    supplement_contents,
)

pytest_plugins = ("conftest_pipeline",)  # the shared small-pipeline fixture
pytestmark = [pytest.mark.mcmc, pytest.mark.slow]

REQUIRED_TABLES = (
    "descriptives_participants", "descriptives_overview", "model_diagnostics", "mrp_llm",
    "mrp_subgroups_uk", "mrp_subgroups_us", "recovery", "llm_x_age", "llm_x_gender",
    "llm_x_ethnicity", "model_priors", "welfare_model_uk", "welfare_gaps_model_uk", "welfare_design_uk",
    "welfare_matched_uk", "welfare_gaps_matched_us", "welfare_exposure_uk", "welfare_exposure_us",
    "welfare_gaps_design_uk", "compare_uk", "compare_us", "compare_rank_correlations",
    "raking_balance", "recovery_scenarios",
)
#: The package's recovery benchmark (benchmarks/recovery.py --csv), an optional input.
BENCHMARK_CSV = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "recovery_scenarios_unpooled.csv"


@pytest.fixture(scope="module")
def bundle(small_pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("supplement")
    return build_supplement(small_pipeline["out"], out, options={"dpi": 60, "formats": ["png"],
                                                                  "welfare_rules": ["mean"],
                                                                  "recovery_benchmark": str(BENCHMARK_CSV)})


def test_every_required_table_is_written_in_three_valid_formats(bundle):
    names = [t["name"] for t in bundle.tables]
    assert set(REQUIRED_TABLES) <= set(names), bundle.skipped
    for rec in bundle.tables:
        files = {k: bundle.folder / v["path"] for k, v in rec["files"].items()}
        assert set(files) == {"csv", "tex", "md"}
        tex = files["tex"].read_text()
        assert latex_problems(tex) == [], rec["name"]
        assert tex.count(r"\begin{tabular}") + tex.count(r"\begin{longtable}") == 1
        assert markdown_problems(files["md"].read_text()) == [], rec["name"]
        assert len(pd.read_csv(files["csv"])) == rec["rows"] > 0


def test_tables_carry_the_run_results(bundle, small_pipeline):
    out = Path(small_pipeline["out"])
    mrp = pd.read_csv(bundle.folder / "tables" / "mrp_llm.csv")
    source = pd.read_csv(out / "run" / "poststrat_uk.csv").query("group == 'all'")
    merged = mrp.query("country == 'uk'").merge(source, on="llm", suffixes=("", "_src"))
    assert len(merged) == 21
    assert (merged["mean"] - merged["mean_src"]).abs().max() < 1e-9
    diag = pd.read_csv(bundle.folder / "tables" / "model_diagnostics.csv")
    assert {"llm_effect", "intercept", "sigma"} <= set(diag["variable"])
    compare = pd.read_csv(bundle.folder / "tables" / "compare_uk.csv")
    assert {"raw_mean", "rep_mean", "raked_mean", "mrp_mean"} <= set(compare.columns)


def test_index_page_shows_every_table_and_figure_with_its_caption(bundle):
    html = bundle.index_html.read_text()
    md = bundle.index_md.read_text()
    for rec in bundle.tables:
        assert f'id="{rec["name"]}"' in html
        assert rec["title"] in md
    for rec in bundle.figures:
        png = next(p for p in rec["files"] if p.endswith(".png"))
        assert f'src="{png}"' in html and f"]({png})" in md
        assert (bundle.folder / png).is_file()
        assert rec["caption"][:40].replace("'", "&#x27;") in html
    assert html.count("<figure") == len(bundle.figures)


def test_manifest_records_versions_seeds_hashes_spec_and_stage_times(bundle, small_pipeline):
    m = json.loads(bundle.manifest.read_text())
    assert m["kind"] == "prism-stats supplement"
    assert m["versions"]["pymc"] and m["versions"]["prism-stats"]
    assert m["seeds"]["sampling"] == 20240422 and m["seeds"]["welfare"] == 1
    final = small_pipeline["final_manifest"]
    assert m["data"]["data_hash"] == final["data"]["data_hash"]
    assert set(m["data"]["files_sha256"]) == {"survey.jsonl", "conversations.jsonl", "utterances.jsonl"}
    assert m["spec"]["name"] == "ratings" and m["spec"]["model_hash"]
    assert m["stages"]["fit"]["duration_s"] > 0 and m["stages"]["validate"]["status"] == "done"
    assert m["fit_timings"]["sampling_s"] > 0
    assert m["recovery_benchmark_sha256"] == hashlib.sha256(BENCHMARK_CSV.read_bytes()).hexdigest()
    for rec in m["tables"]:
        for f in rec["files"].values():
            assert len(f["sha256"]) == 64


def test_from_a_bare_run_folder(small_pipeline, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(Path(small_pipeline["out"]) / "run", run)
    assert locate(run).root is None
    tables, figures, skipped = supplement_contents(run)
    names = {t.name for t in tables}
    # descriptives come from the run's data folder when there is no validate/ folder
    assert {"descriptives_participants", "mrp_llm", "compare_uk", "welfare_model_us"} <= names
    assert {"llm_forest", "ppc"} <= {f.name for f in figures}
    assert skipped == []


def test_missing_inputs_are_listed_not_invented(small_pipeline, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for f in ("posterior.nc", "run.json", "diagnostics.json"):
        shutil.copy(Path(small_pipeline["out"]) / "run" / f, run / f)
    result = build_supplement(run, tmp_path / "supp", options={"formats": ["png"], "dpi": 40})
    names = {t["name"] for t in result.tables}
    assert "mrp_llm" not in names and "welfare_model_uk" not in names
    assert any("MRP" in s for s in result.skipped)
    assert "Not produced" in result.index_html.read_text()


def test_supplement_command(small_pipeline, tmp_path):
    res = CliRunner().invoke(app, ["supplement", small_pipeline["out"], "--out", str(tmp_path / "s"),
                                   "--formats", "png", "--dpi", "50", "--welfare-rules", "mean"])
    assert res.exit_code == 0, res.output
    assert "tables and" in res.output and (tmp_path / "s" / "index.html").is_file()
    bad = CliRunner().invoke(app, ["supplement", small_pipeline["out"], "--out", str(tmp_path / "t"),
                                   "--welfare-rules", "median"])
    assert bad.exit_code == 2 and "--welfare-rules" in bad.output
    missing = CliRunner().invoke(app, ["supplement", small_pipeline["out"], "--out", str(tmp_path / "u"),
                                       "--recovery-benchmark", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "--recovery-benchmark" in missing.output and "does not exist" in missing.output
    assert not (tmp_path / "u").exists()


def test_recovery_benchmark_is_optional_and_adds_a_table_and_a_figure(small_pipeline):
    tables, figures, _ = supplement_contents(small_pipeline["out"])
    assert "recovery_scenarios" not in {t.name for t in tables}
    tables, figures, _ = supplement_contents(small_pipeline["out"],
                                             options={"recovery_benchmark": str(BENCHMARK_CSV)})
    table = next(t for t in tables if t.name == "recovery_scenarios")
    assert len(table.data) == len(pd.read_csv(BENCHMARK_CSV))
    assert "recovery_scenarios" in {f.name for f in figures}


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (CI installs TeX Live from Debian in .ci/run)")
def test_all_tables_compile(bundle, tmp_path):
    from prism_stats.tabular import LATEX_PACKAGES

    body = "\n".join((bundle.folder / r["files"]["tex"]["path"]).read_text() for r in bundle.tables)
    doc = ("\\documentclass{article}\n\\usepackage[margin=1in]{geometry}\n"
           + "".join(f"\\usepackage{{{p}}}\n" for p in LATEX_PACKAGES)
           + "\\begin{document}\n" + body + "\n\\end{document}\n")
    (tmp_path / "all.tex").write_text(doc)
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"],
                         check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]
    log = (tmp_path / "all.log").read_text(errors="replace")
    overfull = [line for line in log.splitlines() if line.startswith("Overfull \\hbox")]
    assert not overfull, overfull[:5]


def test_bundle_is_relocatable_and_cites_its_sources(bundle, small_pipeline):
    out = Path(small_pipeline["out"]).resolve()
    roots = {str(out.parent), str(bundle.folder), str(Path(small_pipeline["data"]).resolve())}
    for name in ("index.md", "index.html", "manifest.json"):
        text = (bundle.folder / name).read_text()
        assert not [r for r in roots if r in text], f"{name} holds an absolute path"
        assert '"/' not in text and "(/" not in text, name
    md = (bundle.folder / "index.md").read_text()
    for source in ("Kirk, H. R.", "10.57967/hf/2113", "Office for National Statistics",
                   "American Community Survey 2022 1-year"):
        assert source in md, source
    assert (bundle.folder / "references.bib").read_text().count("@") == 4
    captions = {t["name"]: t["caption"] for t in bundle.tables}
    assert "ONS Census 2021" in captions["mrp_llm"] and "ACS 2022 1-year" in captions["mrp_llm"]
    assert "multiplicity" in captions["llm_x_age"].lower()
    model = pd.read_csv(bundle.folder / "tables" / "model_priors.csv")
    assert {"Intercept", "LLM effects", "LLM × age effects"} <= set(model["term"])
    # probabilities never print as 0.00; figure captions describe, the prior check reports shares
    assert "0.00" not in (bundle.folder / "tables" / "mrp_llm.md").read_text().replace("0.001", "")
    prior = next(f for f in bundle.figures if f["name"] == "prior_predictive")
    assert "beyond the plotted range" in prior["caption"] and "allow every" not in prior["caption"]
