"""The rankings, stated and regressions commands: outputs, help and clean errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from data_helpers import copy_release
from prism_stats.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return copy_release(tmp_path_factory.mktemp("mini"), metadata=False)


def _clean_error(res, needle: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert needle in lines[0], res.output
    assert "Traceback" not in res.output


def test_rankings_writes_results_tables_and_figures(mini, tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["rankings", str(mini), "--out", str(out), "--by", "gender,conversation_type",
                              "--min-group-size", "1", "--replicates", "20", "--formats", "png", "--dpi", "50"])
    assert res.exit_code == 0, res.output
    for name in ("rankings.csv", "group_sizes.csv", "pair_counts.csv", "rc_normalisations.csv",
                 "rater_scale_use.csv", "score_disagreement.csv", "battles_summary.json"):
        assert (out / name).is_file(), name
    assert (out / "tables" / "rankings_overall.tex").is_file()
    assert (out / "figures" / "rankings_win_rate.png").is_file()
    assert "47 battles from 11 openers" in res.output  # opening sizes 4,3,2,4,4,3,4,3,4,2,4


def test_help_documents_every_option():
    for command, options in (
        ("rankings", ("--out", "--by", "--group-file", "--min-group-size", "--replicates", "--seed", "--choice",
                      "--run", "--chains", "--draws", "--tune", "--country", "--formats", "--dpi", "--lenient")),
        ("stated", ("--out", "--attributes", "--fit", "--chains", "--draws", "--tune", "--seed", "--formats")),
        ("regressions", ("--out", "--which", "--turn", "--llms", "--trim")),
    ):
        res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0
        for opt in options:
            assert opt in res.output, (command, opt)


def test_unknown_grouping_column_is_a_one_line_error(mini, tmp_path):
    res = runner.invoke(app, ["rankings", str(mini), "--out", str(tmp_path / "x"), "--by", "gender,shoe_size",
                              "--replicates", "0"])
    _clean_error(res, "unknown grouping 'shoe_size'")


def test_empty_group_and_bad_group_files_are_errors(mini, tmp_path):
    f = tmp_path / "groups.csv"
    f.write_text("participant,group\nuser0,A\nuser1,A\nuser4,B\n")  # user4 has no conversations
    res = runner.invoke(app, ["rankings", str(mini), "--out", str(tmp_path / "x"), "--by", "none",
                              "--group-file", str(f), "--replicates", "0"])
    _clean_error(res, "['B'] are empty")
    f.write_text("participant,group\nghost,A\n")
    res = runner.invoke(app, ["rankings", str(mini), "--out", str(tmp_path / "x"), "--by", "none",
                              "--group-file", str(f)])
    _clean_error(res, "unknown participant")
    f.write_text("user,label\nuser0,A\n")
    _clean_error(runner.invoke(app, ["rankings", str(mini), "--out", str(tmp_path / "x"), "--group-file", str(f)]),
                 "needs columns 'participant' and 'group'")
    _clean_error(runner.invoke(app, ["rankings", str(mini), "--out", str(tmp_path / "x"), "--by", "gender,,age"]),
                 "empty item")
    missing = runner.invoke(app, ["rankings", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and missing.output.startswith("error: --data: Release folder")  # the data layer's help follows


def test_stated_without_the_model_and_bad_attributes(mini, tmp_path):
    out = tmp_path / "s"
    res = runner.invoke(app, ["stated", str(mini), "--out", str(out), "--no-fit", "--formats", "png", "--dpi", "50"])
    assert res.exit_code == 0, res.output
    assert (out / "attribute_correlations.csv").is_file() and (out / "figures" / "attribute_correlations.png").is_file()
    _clean_error(runner.invoke(app, ["stated", str(mini), "--out", str(out), "--attributes", "vibes"]),
                 "--attributes")


def test_regressions_command(small_data, synth_small, tmp_path):
    out = tmp_path / "g"
    res = runner.invoke(app, ["regressions", str(synth_small), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("response_features", "demographics"):
        assert (out / f"regression_{name}.csv").is_file() and (out / f"regression_{name}.tex").is_file()
    _clean_error(runner.invoke(app, ["regressions", str(synth_small), "--out", str(out), "--which", "astrology"]),
                 "--which")
    _clean_error(runner.invoke(app, ["regressions", str(synth_small), "--out", str(out), "--llms", "gpt-5"]),
                 "--llms")
