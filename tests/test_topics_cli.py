"""``prism-stats topics``, the pipeline stage and the supplement hook: clear errors for bad
inputs, the result folder with its tables and figures, and the stage registration."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from prism_stats.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_clean(res, code: int, needle: str) -> None:
    assert res.exit_code == code, res.output
    assert needle in res.output, res.output
    assert "Traceback" not in res.output


def test_assignments_with_unknown_conversations_or_topics(synth_small, tmp_path):
    truth = pd.read_csv(synth_small / "truth" / "topics.csv")
    bad = pd.concat([truth, pd.DataFrame({"conversation": ["c999999"], "topic": [0],
                                          "topic_label": [truth["topic_label"].iloc[0]]})])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    res = invoke("topics", synth_small, "--out", tmp_path / "o", "--assignments",
                 tmp_path / "bad.csv", "--no-progress")
    assert_clean(res, 2, "1 conversation id(s) not in the data: 'c999999'")
    labels = pd.DataFrame({"topic": [0, 1], "topic_label": truth.set_index("topic")
                           .loc[[0, 1], "topic_label"].drop_duplicates().tolist()})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    res = invoke("topics", synth_small, "--out", tmp_path / "o", "--assignments",
                 synth_small / "truth" / "topics.csv", "--topic-labels", tmp_path / "labels.csv",
                 "--no-progress")
    assert_clean(res, 2, "unknown topic id(s) 2, 3, 4")
    assert not (tmp_path / "o").exists()


def test_bad_options(synth_small, tmp_path):
    assert_clean(invoke("topics", synth_small, "--out", tmp_path, "--embeddings", "bert"), 2,
                 "'bert' is not one of 'tfidf', 'sentence-transformers'")
    assert_clean(invoke("topics", synth_small, "--out", tmp_path, "--correction", "fdr"), 2,
                 "'fdr' is not one of 'holm', 'bh', 'bonferroni', 'none'")
    (tmp_path / "x.csv").write_text("topic,topic_label\n0,a\n")
    assert_clean(invoke("topics", synth_small, "--out", tmp_path, "--topic-labels", tmp_path / "x.csv"), 2,
                 "--topic-labels needs --assignments")
    assert_clean(invoke("topics", synth_small, "--out", tmp_path, "--assignments", "nothere.csv"), 2,
                 "'nothere.csv' does not exist")
    assert_clean(invoke("topics", tmp_path / "nothing", "--out", tmp_path), 2, "error:")


def test_sentence_transformers_without_the_extra(synth_small, tmp_path):
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        res = invoke("topics", synth_small, "--out", tmp_path / "o", "--embeddings",
                     "sentence-transformers", "--no-model", "--no-progress")
        assert_clean(res, 2, 'pip install "prism-stats[topics]"')
    else:
        pytest.skip("sentence-transformers is installed")


@pytest.fixture(scope="module")
def given_topics(synth_small, tmp_path_factory):
    """The CLI with the planted topics as the user's table, no model (fast)."""
    out = tmp_path_factory.mktemp("topics_cli")
    res = invoke("topics", synth_small, "--out", out, "--assignments",
                 synth_small / "truth" / "topics.csv", "--no-model", "--no-progress")
    assert res.exit_code == 0, res.output
    return out, res.output


def test_result_folder_tables_and_figures(given_topics):
    out, output = given_topics
    for name in ("assignments.csv", "topics.csv", "prevalence.csv", "lpm.csv", "lpm_counts.csv",
                 "lpm_se_ratios.csv", "neighbourhoods.csv", "neighbourhood_summary.csv",
                 "truth_comparison.json", "topics.json"):
        assert (out / name).is_file(), name
    for name in ("topics_sizes", "topics_lpm_counts", "topics_lpm", "topics_neighbourhoods"):
        for ext in ("csv", "tex", "md"):
            assert (out / "tables" / f"{name}.{ext}").is_file()
    for name in ("topics_prevalence", "topics_forest"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    truth = json.loads((out / "truth_comparison.json").read_text())
    assert truth["ari"] == pytest.approx(1.0)  # the planted topics read back
    assert 0.85 <= truth["lpm"]["coverage_95_cluster"] <= 1.0
    assert "adjusted Rand index 1.000" in output and "significant coefficients" in output
    meta = json.loads((out / "topics.json").read_text())
    assert meta["assignments"]["source"].endswith("topics.csv")
    assert meta["regressions"]["correction"] == "holm"


def test_pipeline_stage_registration_and_config(tmp_path):
    from prism_stats.pipeline.config import ConfigError, PipelineConfig
    from prism_stats.pipeline.stages import stage_names

    default = PipelineConfig()
    assert "topics" not in stage_names(default)
    on = PipelineConfig.from_dict({"topics": {"enabled": True, "draws": 200}})
    names = stage_names(on)
    assert names.index("topics") == len(names) - 2 and names[-1] == "supplement"
    with pytest.raises(ConfigError, match="topics.embeddings must be one of"):
        PipelineConfig.from_dict({"topics": {"embeddings": "bert"}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[topics\]"):
        PipelineConfig.from_dict({"topics": {"epochs": 3}})
    (tmp_path / "run.toml").write_text('[topics]\nenabled = true\nassignments = "a.csv"\n')
    cfg = PipelineConfig.from_toml(tmp_path / "run.toml")
    assert cfg.sections["topics"]["assignments"] == str((tmp_path / "a.csv").resolve())


def test_stage_and_supplement_hook(small_data, synth_small, tmp_path):
    from prism_stats.pipeline.config import PipelineConfig
    from prism_stats.pipeline.stages import topics_stage
    from prism_stats.report.contents import _Collector
    from prism_stats.report.sources import Sources

    cfg = PipelineConfig.from_dict({"topics": {
        "enabled": True, "model": False,
        "assignments": str(synth_small / "truth" / "topics.csv")}})
    notes = []
    ctx = SimpleNamespace(config=cfg, data=small_data, out=tmp_path,
                          reporter=SimpleNamespace(note=notes.append))
    written = topics_stage(ctx)
    assert (tmp_path / "topics" / "lpm.csv") in written
    assert any("topics, " in n for n in notes)
    col = _Collector(Sources(run_dir=tmp_path / "run", root=tmp_path), {}, None)
    col.topics()
    assert {"topics_sizes", "topics_lpm"} <= {t.name for t in col.tables}
    assert {"topics_prevalence", "topics_forest"} == {f.name for f in col.figures}
    from prism_stats.report import figure_data_problems

    for f in col.figures:
        assert figure_data_problems(f.draw()) == []
    empty = _Collector(Sources(run_dir=tmp_path / "x", root=tmp_path / "x"), {}, None)
    empty.topics()  # no topics stage: nothing, and nothing reported missing
    assert empty.tables == [] and empty.skipped == []


@pytest.mark.mcmc
@pytest.mark.slow
def test_discovery_and_model_end_to_end(synth_small, tmp_path):
    out = tmp_path / "o"
    res = invoke("topics", synth_small, "--out", out, "--draws", "150", "--tune", "150",
                 "--seed", "7")
    assert res.exit_code == 0, res.output
    assert "✓" in res.output  # the progress display
    effects = pd.read_csv(out / "model_effects.csv")
    assert {"mean", "q05", "q95", "p_direction"} <= set(effects.columns)
    assert (out / "tables" / "topics_model_effects.md").is_file()
    assert (out / "model_posterior.nc").is_file()
    truth = json.loads((out / "truth_comparison.json").read_text())
    assert truth["ari"] > 0.5
    topics = pd.read_csv(out / "topics.csv")
    assert Path(out / "figures" / "topics_forest.pdf").is_file() and len(topics) > 10
