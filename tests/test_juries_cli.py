"""``prism-stats juries`` on a tiny hand-built tables folder (CliRunner)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from prism_stats.cli import welfare as welfare_cli
from prism_stats.vocab import LLM_SHORT_NAMES
from prism_stats.welfare import SUMMARY_COLUMNS, read_welfare

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps "juries" a sub-command
        """Test root."""

    welfare_cli.register(app)
    return app


@pytest.fixture
def tables_dir(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    p = pd.DataFrame(
        {
            "participant": [f"user{i}" for i in range(n)],
            "gender": np.where(np.arange(n) % 2 == 0, "Male", "Female"),
            "age": np.where(np.arange(n) % 3 == 0, "55-64", "25-34"),
            "ethnicity_simplified": np.where(np.arange(n) % 4 == 0, "Asian", "White"),
            "in_uk_rep": np.arange(n) < 20,
            "in_us_rep": np.arange(n) >= 20,
        }
    )
    rows = []
    for pid in p.participant:
        for _ in range(3):
            shown = rng.choice(4, 2, replace=False)
            scores = rng.integers(1, 101, 2)
            for k in range(2):
                rows.append(
                    (
                        pid,
                        0,
                        LLM_SHORT_NAMES[shown[k]],
                        int(scores[k]),
                        bool(k == np.argmax(scores)),
                        True,
                    )
                )
    r = pd.DataFrame(rows, columns=["participant", "turn", "llm", "score", "chosen", "balanced"])
    folder = tmp_path / "tables"
    folder.mkdir()
    p.to_csv(folder / "participants.csv", index=False)
    r.to_csv(folder / "ratings.csv", index=False)
    return folder


def test_juries_command_writes_files(tables_dir, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        _app(),
        [
            "juries",
            str(tables_dir),
            "--country",
            "uk",
            "--sizes",
            "5,10",
            "--pools",
            "representative,male",
            "--skewed-sizes",
            "10",
            "--rule",
            "mean",
            "-r",
            "chosen",
            "--replicates",
            "20",
            "--seed",
            "4",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "welfare_fosd_uk.csv",
        "welfare_gaps_uk.csv",
        "welfare_uk.csv",
        "welfare_uk.nc",
    ]
    csv = pd.read_csv(out / "welfare_uk.csv")
    assert tuple(csv.columns) == SUMMARY_COLUMNS
    assert sorted(set(zip(csv["pool"], csv["size"], strict=True))) == [
        ("male", 10),
        ("representative", 5),
        ("representative", 10),
    ]
    assert set(csv["rule"]) == {"mean", "chosen"} and set(csv["target"]) == {
        "all",
        "nonmale",
        "nonwhite",
        "under45",
    }
    ds = read_welfare(out / "welfare_uk.nc")
    assert ds.attrs["seed"] == 4 and ds.sizes["replicate"] == 20
    assert len(ds.attrs["data_hash"]) == 64
    gaps = pd.read_csv(out / "welfare_gaps_uk.csv")
    assert set(gaps["pool"]) == {"male"}


def test_juries_command_legacy_and_imputed_two_countries(tables_dir, tmp_path):
    out = tmp_path / "out2"
    res = runner.invoke(
        _app(),
        [
            "juries",
            str(tables_dir),
            "--country",
            "us,uk",
            "--rule",
            "mean,chosen",
            "--replicates",
            "5",
            "--legacy-python-random",
            "--imputed",
            "--plots",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    for c in ("uk", "us"):
        ds = read_welfare(out / f"welfare_{c}.nc")
        assert ds.attrs["legacy_python_random"] == 1 and ds.attrs["imputed"] == 1
        assert "target" in ds["chosen_llm"].dims
        assert (out / f"welfare_{c}_mean.png").stat().st_size > 0
        assert (out / f"welfare_gaps_{c}.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "fr"], "unknown country 'fr'"),
        (["--country", "uk", "--rule", "median"], "unknown value 'median'"),
        (["--country", "uk", "--sizes", "ten"], "'ten' is not an integer"),
    ],
)
def test_juries_command_rejects_bad_options(tables_dir, tmp_path, args, message):
    res = runner.invoke(_app(), ["juries", str(tables_dir), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_juries_command_reports_bad_tables(tables_dir, tmp_path):
    pd.read_csv(tables_dir / "ratings.csv").drop(columns="score").to_csv(
        tables_dir / "ratings.csv", index=False
    )
    res = runner.invoke(
        _app(), ["juries", str(tables_dir), "-c", "uk", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 1
    assert "score" in res.output and "Traceback" not in res.output


def test_registered_on_the_main_app():
    from prism_stats.cli import app

    res = runner.invoke(app, ["juries", "--help"])
    assert res.exit_code == 0
    assert "Usage: prism-stats juries" in res.output and "--imputed" in res.output
