"""The recovery benchmark in the supplement: its table (arithmetic and formatting), the
checked reader of ``benchmarks/recovery.py --csv`` and the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prism_stats.report import SupplementError
from prism_stats.report.contents import read_scenario_recovery
from prism_stats.report.figures import figure_data_problems, plot_scenario_recovery
from prism_stats.report.tables import SCENARIO_RECOVERY_COLUMNS, scenario_recovery_table

BENCHMARK_CSV = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "recovery_scenarios_unpooled.csv"


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "scenario": ["model", "model", "country"],
        "country": ["uk", "us", "uk"],
        "group": ["all", "nonmale", "under45"],
        "coverage90": [0.9047619, 0.8, 0.857],
        "rmse_mrp": [1.1, 2.0, 1.5],
        "rmse_raw": [1.6, 1.9, 1.5],
        "rmse_rep": [2.0, 2.2, 2.1],
        "rmse_raked": [1.9, np.nan, np.nan],
        "mrp_below_raw": [True, False, False],
        "releases": [5, 5, 13],
    })


def test_table_reports_each_cell_and_recomputes_mrp_below_raw():
    table = scenario_recovery_table(_frame())
    assert table.name == "recovery_scenarios"
    shown = table.display
    assert list(shown["Country"]) == ["UK", "US", "UK"]
    assert list(shown["90% coverage"]) == ["0.90", "0.80", "0.86"]
    assert list(shown["RMSE raked"]) == ["1.90", "–", "–"]
    # recomputed from the RMSEs (a tie is not "below")
    assert list(shown["MRP below raw"]) == ["yes", "no", "no"]
    assert list(shown["Releases"]) == [5, 5, 13]
    assert "up to 13 releases" in table.caption


def test_reader_accepts_the_benchmark_output_and_names_what_is_wrong(tmp_path):
    real = read_scenario_recovery(BENCHMARK_CSV)
    assert set(SCENARIO_RECOVERY_COLUMNS) <= set(real.columns) and len(real) > 0
    with pytest.raises(SupplementError, match="no such file"):
        read_scenario_recovery(tmp_path / "missing.csv")
    partial = tmp_path / "partial.csv"
    _frame().drop(columns=["rmse_raw", "releases"]).to_csv(partial, index=False)
    with pytest.raises(SupplementError, match=r"partial\.csv: missing column\(s\) rmse_raw, releases"):
        read_scenario_recovery(partial)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SupplementError, match="not a CSV file"):
        read_scenario_recovery(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(SCENARIO_RECOVERY_COLUMNS) + "\n")
    with pytest.raises(SupplementError, match="no rows"):
        read_scenario_recovery(header_only)


def test_figure_plots_every_cell():
    frame = _frame()
    fig = plot_scenario_recovery(frame)
    coverage, ratio = fig.axes[:2]
    assert figure_data_problems(fig) == []
    np.testing.assert_allclose(np.sort(coverage.collections[0].get_offsets()[:, 0]),
                               np.sort(frame["coverage90"]))
    np.testing.assert_allclose(np.sort(ratio.collections[0].get_offsets()[:, 0]),
                               np.sort(frame["rmse_mrp"] / frame["rmse_raw"]))
    assert len(coverage.get_yticklabels()) == len(frame)
