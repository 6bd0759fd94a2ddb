"""Figures: the data check itself, the report's own figures on hand-made inputs, and every
supplement figure rendered from the outputs of a real (small) pipeline run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from prism_stats.report import (
    figure_data_problems,
    plot_raking_balance,
    plot_recovery,
    plot_subgroup_heatmap,
    save_figure,
    supplement_contents,
)

pytest_plugins = ("conftest_pipeline",)  # the shared small-pipeline fixture


def finite_artists(ax) -> int:
    """Independent count of artists with finite data (lines, collections, images)."""
    n = 0
    for line in ax.get_lines():
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        n += int(x.size > 0 and np.isfinite(x).any() and np.isfinite(y).any())
    for coll in ax.collections:
        off = np.asarray(coll.get_offsets(), dtype=float)
        verts = [np.asarray(p.vertices, dtype=float) for p in coll.get_paths()]
        n += int((off.size > 0 and np.isfinite(off).any())
                 or any(v.size > 0 and np.isfinite(v).any() for v in verts))
    for img in ax.get_images():
        n += int(np.isfinite(np.asarray(img.get_array(), dtype=float)).any())
    return n


# --- the data check ----------------------------------------------------------------------------


def test_empty_and_nan_axes_are_flagged():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([1, 2], [3, 4])
    ax2.plot([np.nan, np.nan], [np.nan, np.nan])
    problems = figure_data_problems(fig)
    assert len(problems) == 1 and "axes 1" in problems[0]
    assert figure_data_problems(Figure()) == ["the figure has no axes"]


# --- the report's own figures ------------------------------------------------------------------


def summary_frame() -> pd.DataFrame:
    rows = []
    for c in ("uk", "us"):
        for g, bonus in (("all", None), ("male", "a"), ("nonwhite", "c")):
            for llm, m in (("a", 60.0), ("b", 65.0), ("c", 62.0)):
                mean = m + (10.0 if llm == bonus else 0.0)
                rows.append({"country": c, "group": g, "llm": llm, "mean": mean,
                             "q05": mean - 2, "q95": mean + 2, "p_best": 0.3})
    return pd.DataFrame(rows)


def test_heatmap_shows_the_estimates_and_boxes_each_groups_best():
    fig = plot_subgroup_heatmap(summary_frame())
    assert figure_data_problems(fig) == []
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert image.shape == (3, 3)  # 3 LLMs x 3 groups
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["b", "c", "a"]  # ordered by the "all" estimate
    # colour = deviation from the group's average LLM: zero mean per column
    assert np.allclose(np.asarray(image).mean(axis=0), 0.0)
    boxes = sorted((round(p.get_x() + 0.5), round(p.get_y() + 0.5)) for p in ax.patches)
    # best per column: all -> b (row 0); male -> a (row 2, 70); nonwhite -> c (row 1, 72)
    assert boxes == [(0, 0), (1, 2), (2, 1)]
    texts = {t.get_text() for t in ax.texts}
    assert {"65.0", "70.0", "72.0"} <= texts


def test_balance_and_recovery_figures_have_data(tmp_path):
    balance = pd.DataFrame({"margin": ["age", "age", "sex"], "category": ["18-24", "65+", "Male"],
                            "asd_before": [0.3, 0.05, 0.2], "asd_after": [0.0, 0.0, 0.01]})
    fig = plot_raking_balance({"uk": balance, "us": balance})
    assert figure_data_problems(fig) == [] and len(fig.axes) == 2
    s = summary_frame()
    truth = s[["country", "group", "llm"]].assign(mean=s["mean"] + 1.0)
    fig2 = plot_recovery(truth, s)
    assert figure_data_problems(fig2) == []
    assert "coverage 100%" in fig2.axes[0].get_title()
    paths = save_figure(fig2, tmp_path, "recovery", formats=("png", "pdf"), dpi=50)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)


# --- every supplement figure, from a real run ----------------------------------------------------

REQUIRED_FIGURES = ("llm_forest", "subgroup_heatmap", "recovery", "welfare_model_uk_mean",
                    "welfare_matched_uk_mean", "welfare_design_us_mean", "ppc", "prior_predictive",
                    "raking_balance")


@pytest.mark.mcmc
@pytest.mark.slow
def test_every_supplement_figure_renders_with_data(small_pipeline):
    _, figures, skipped = supplement_contents(small_pipeline["out"])
    names = [f.name for f in figures]
    assert set(REQUIRED_FIGURES) <= set(names), (names, skipped)
    assert len(names) == len(set(names))
    for entry in figures:
        fig = entry.draw()
        try:
            axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
            assert axes, entry.name
            for ax in axes:
                assert finite_artists(ax) > 0, f"{entry.name}: an axes without data"
            assert figure_data_problems(fig) == [], entry.name
            w, h = fig.get_size_inches()
            assert 2 < w < 20 and 2 < h < 12, entry.name
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)
        assert entry.caption and entry.title


@pytest.mark.mcmc
@pytest.mark.slow
def test_supplement_figure_files_have_their_fixed_size(small_pipeline):
    import json

    from PIL import Image

    out = Path(small_pipeline["out"]) / "supplement"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["figures"]
    for rec in manifest["figures"]:
        png = out / next(p for p in rec["files"] if p.endswith(".png"))
        pdf = out / next(p for p in rec["files"] if p.endswith(".pdf"))
        assert pdf.read_bytes()[:5] == b"%PDF-"
        with Image.open(png) as im:
            expected = [round(s * rec["dpi"]) for s in rec["size_inches"]]
            assert abs(im.size[0] - expected[0]) <= 1 and abs(im.size[1] - expected[1]) <= 1, rec["name"]
