"""Shared welfare schema: assembly, summaries, exclusion gaps, FOSD, files, figures."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from prism_stats.welfare import (
    FOSD_COLUMNS,
    GAP_COLUMNS,
    SUMMARY_COLUMNS,
    Scheme,
    WelfareResultError,
    build_schemes,
    chosen_llm_codes,
    chosen_llm_labels,
    exclusion_gaps,
    fosd_dominates,
    fosd_table,
    plot_exclusion_gaps,
    plot_welfare_distributions,
    read_welfare,
    scheme_coords,
    summarise_welfare,
    welfare_dataset,
    write_welfare,
)
from prism_stats.welfare.plots import PAGE_WIDTH
from prism_stats.welfare.results import decode_chosen

LLMS = ["m0", "m1", "m2"]


def _dataset(picks: dict[str, list[int]], llm_welfare: list[float]) -> xr.Dataset:
    """One country, one rule, one target; *picks* per scheme name (same replicate count)."""
    schemes = [Scheme.parse(s) for s in picks]
    n_rep = len(next(iter(picks.values())))
    chosen = xr.DataArray(
        np.array([[list(picks.values())]], dtype=np.int64),
        dims=("country", "rule", "scheme", "replicate"),
        coords={
            "country": ["uk"],
            "rule": ["mean"],
            "replicate": np.arange(n_rep),
            **scheme_coords(schemes),
        },
    )
    lw = xr.DataArray(
        np.array(llm_welfare, dtype=float)[None, None, None, :],
        dims=("country", "rule", "target", "llm"),
        coords={"country": ["uk"], "rule": ["mean"], "target": ["all"], "llm": LLMS},
    )
    return welfare_dataset(
        chosen, lw, method="design", attrs={"seed": 3, "imputed": False, "n_replicates": n_rep}
    )


def test_welfare_dataset_lookup_regret_and_missing_pick():
    ds = _dataset({"rep_100": [0, 1, 2, -1], "male_100": [1, 1, 0, 2]}, [50.0, 70.0, 60.0])
    w = ds["welfare"].sel(country="uk", rule="mean", target="all")
    np.testing.assert_array_equal(w.sel(scheme="rep_100"), [50, 70, 60, np.nan])
    np.testing.assert_array_equal(ds["regret"].sel(scheme="male_100").squeeze(), [0, 0, 20, 10])
    assert ds["optimal_welfare"].item() == 70.0
    assert ds["chosen_llm"].dtype == object  # LLM names, not codes
    assert chosen_llm_labels(ds).sel(scheme="rep_100").squeeze().values.tolist() == [
        "m0",
        "m1",
        "m2",
        "",
    ]
    assert ds.attrs == {
        **ds.attrs,
        "method": "design",
        "seed": 3,
        "imputed": 0,
    }  # bool stored as 0/1
    assert ds["pool"].values.tolist() == ["representative", "male"]
    with pytest.raises(WelfareResultError, match="codes"):
        _dataset({"rep_100": [3]}, [1.0, 2.0, 3.0])
    with pytest.raises(WelfareResultError, match="method"):
        welfare_dataset(ds["chosen_llm"], ds["llm_welfare"], method="bayes")


def test_summary_columns_values_and_order():
    ds = _dataset({"rep_10": [0, 1, 1, 2, 1], "rep_100": [1, 1, 1, 1, 1]}, [50.0, 70.0, 60.0])
    s = summarise_welfare(ds)
    assert tuple(s.columns) == SUMMARY_COLUMNS
    assert s["pool"].tolist() == ["representative", "representative"]
    assert s["size"].tolist() == [10, 100] and s["size"].dtype == np.int64
    row = s.iloc[0]
    x = np.array([50.0, 70, 70, 60, 70])
    assert row.welfare_mean == pytest.approx(x.mean())
    assert row.welfare_q05 == pytest.approx(np.quantile(x, 0.05))
    assert row.welfare_q95 == pytest.approx(np.quantile(x, 0.95))
    assert row.regret_mean == pytest.approx(np.mean(70 - x))
    assert row.p_optimal == pytest.approx(0.6)
    assert s.iloc[1].p_optimal == 1.0 and s.iloc[1].regret_mean == 0.0


def test_summary_reduces_over_chain_and_draw_too():
    # A model-based-like dataset: llm_welfare varies by posterior draw; picks per (draw, replicate).
    chosen = xr.DataArray(
        np.array([[[[[0, 1], [1, 1], [2, 0]]]]]),  # (country, rule, scheme, draw, replicate)
        dims=("country", "rule", "scheme", "draw", "replicate"),
        coords={
            "country": ["us"],
            "rule": ["chosen"],
            "draw": [0, 1, 2],
            "replicate": [0, 1],
            **scheme_coords([Scheme("representative", 100)]),
        },
    ).expand_dims(chain=[0], axis=3)
    lw = xr.DataArray(
        np.array(
            [[[[[0.2, 0.5, 0.1], [0.4, 0.3, 0.2], [0.1, 0.1, 0.6]]]]]
        ),  # (country, rule, target, draw, llm)
        dims=("country", "rule", "target", "draw", "llm"),
        coords={
            "country": ["us"],
            "rule": ["chosen"],
            "target": ["all"],
            "draw": [0, 1, 2],
            "llm": LLMS,
        },
    ).expand_dims(chain=[0], axis=3)
    ds = welfare_dataset(chosen.drop_vars(["pool", "size"]), lw, method="model")
    assert ds["pool"].values.tolist() == ["representative"]  # derived from the scheme name
    assert ds["welfare"].dims == (
        "country",
        "rule",
        "target",
        "scheme",
        "chain",
        "draw",
        "replicate",
    )
    w = ds["welfare"].squeeze()
    np.testing.assert_allclose(
        w.transpose("draw", "replicate"), [[0.2, 0.5], [0.3, 0.3], [0.6, 0.1]]
    )
    s = summarise_welfare(ds)
    assert len(s) == 1
    assert s.welfare_mean.item() == pytest.approx(np.mean([0.2, 0.5, 0.3, 0.3, 0.6, 0.1]))
    # optimal per draw: 0.5, 0.4, 0.6 -> optimal picks: (d0, r1) and (d2, r0)
    assert s.p_optimal.item() == pytest.approx(2 / 6)
    assert s.regret_mean.item() == pytest.approx(np.mean([0.3, 0.0, 0.1, 0.1, 0.0, 0.5]))


def test_exclusion_gaps_paired_by_replicate():
    rep = [0, 1, 1, 2]  # welfare 50 70 70 60
    male = [1, 0, 0, 0]  # welfare 70 50 50 50
    ds = _dataset({"rep_100": rep, "male_100": male}, [50.0, 70.0, 60.0])
    g = exclusion_gaps(ds)
    assert tuple(g.columns) == GAP_COLUMNS
    assert len(g) == 1 and g.pool.item() == "male" and g["size"].item() == 100
    gap = np.array([20.0, -20, -20, -10])
    assert g.gap_mean.item() == pytest.approx(gap.mean())
    assert g.gap_q05.item() == pytest.approx(np.quantile(gap, 0.05))
    assert g.gap_q95.item() == pytest.approx(np.quantile(gap, 0.95))
    assert g.p_worse.item() == pytest.approx(0.75)
    assert g.n_pairs.item() == 4
    no_ref = _dataset({"rep_10": rep, "male_100": male}, [50.0, 70.0, 60.0])
    with pytest.raises(WelfareResultError, match="rep_100"):
        exclusion_gaps(no_ref)


@pytest.mark.parametrize(
    ("upper", "lower", "expected"),
    [
        ([3, 4, 5], [1, 2, 3], True),
        ([1, 2, 3], [3, 4, 5], False),
        ([2, 2, 2], [2, 2, 2], True),
        ([1, 5], [2, 3], False),  # crossing CDFs: neither dominates
        ([5, 1], [3, 2], False),
        ([3, 5, 4, 6], [1, 2], True),  # unequal sizes
        ([1, 2], [3, 5, 4, 6], False),
    ],
)
def test_fosd_hand_made(upper, lower, expected):
    assert fosd_dominates(upper, lower) is expected


def test_fosd_equals_sorted_elementwise_check_for_equal_sizes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        a = rng.integers(0, 5, n).astype(float)
        b = rng.integers(0, 5, n).astype(float)
        literal = bool(np.all(np.sort(a) >= np.sort(b)))
        assert fosd_dominates(a, b) is literal


def test_fosd_table():
    ds = _dataset(
        {"rep_10": [0, 0, 1, 2], "rep_100": [1, 1, 2, 1], "white_100": [1, 1, 1, 1]},
        [50.0, 70.0, 60.0],
    )
    f = fosd_table(ds)
    assert tuple(f.columns) == FOSD_COLUMNS
    assert f.scheme.tolist() == ["rep_10", "white_100"]  # the reference is not listed
    r10 = f.set_index("scheme").loc["rep_10"]
    assert bool(r10.dominated_by_reference) and not bool(r10.dominates_reference)
    assert r10.max_cdf_excess <= 0
    w = f.set_index("scheme").loc["white_100"]  # always the best LLM: dominates rep_100
    assert not bool(w.dominated_by_reference) and bool(w.dominates_reference)
    assert w.max_cdf_excess == pytest.approx(0.25)  # F_ref(60) - F_white(60) = 1/4 - 0
    with pytest.raises(WelfareResultError, match="reference"):
        fosd_table(ds, reference="rep_20")


def test_build_schemes():
    assert [s.name for s in build_schemes()] == [
        "rep_10",
        "rep_20",
        "rep_50",
        "rep_100",
        "male_100",
        "white_100",
        "over45_100",
    ]
    assert [s.name for s in build_schemes([10], ["over45"])] == ["rep_100", "over45_100"]
    assert [s.name for s in build_schemes([20, 10], ["representative"])] == ["rep_10", "rep_20"]
    assert Scheme.parse("over45_100") == Scheme("over45", 100)
    # custom pools (model-based welfare) parse back; the standard builder still refuses them
    assert Scheme.parse("female_100") == Scheme("female", 100)
    with pytest.raises(WelfareResultError):
        Scheme.parse("fe-male_100")
    with pytest.raises(WelfareResultError):
        Scheme("rep", 10)
    with pytest.raises(WelfareResultError):
        build_schemes([10], ["female"])


def test_write_and_read_roundtrip(tmp_path):
    ds = _dataset({"rep_100": [0, 1, 1, 2], "male_100": [1, 0, 0, 0]}, [50.0, 70.0, 60.0])
    ds.attrs["data_hash"] = "abc"
    paths = write_welfare(ds, tmp_path, "uk")
    assert sorted(p.name for p in paths.values()) == [
        "welfare_fosd_uk.csv",
        "welfare_gaps_uk.csv",
        "welfare_uk.csv",
        "welfare_uk.nc",
    ]
    back = read_welfare(tmp_path / "welfare_uk.nc")
    xr.testing.assert_identical(
        back[["welfare", "regret", "chosen_llm"]], ds[["welfare", "regret", "chosen_llm"]]
    )
    assert back.attrs["data_hash"] == "abc" and back.attrs["method"] == "design"
    # the file holds compact codes labelled with CF flag attributes; reading restores names
    with xr.open_dataset(tmp_path / "welfare_uk.nc", engine="h5netcdf") as raw:
        assert raw["chosen_llm"].dtype == np.int16
        meanings = raw["chosen_llm"].attrs["flag_meanings"].split()
        assert meanings == ["none", *map(str, ds["llm"].values)]
        # a file of the earlier layout (codes without labels) is decoded with the llm coordinate
        legacy = raw.load()
        legacy["chosen_llm"].attrs = {}
    assert set(np.unique(back["chosen_llm"].values)) <= set(map(str, ds["llm"].values)) | {""}
    xr.testing.assert_equal(decode_chosen(legacy)["chosen_llm"], ds["chosen_llm"])
    assert (chosen_llm_codes(back).values >= -1).all()
    csv = pd.read_csv(tmp_path / "welfare_uk.csv")
    assert tuple(csv.columns) == SUMMARY_COLUMNS
    pd.testing.assert_frame_equal(csv, summarise_welfare(ds), check_dtype=False)
    assert not list(tmp_path.glob(".*part"))  # no temporary files left behind
    with pytest.raises(WelfareResultError, match="country"):
        write_welfare(ds, tmp_path, "us")


def layout_problems(fig) -> list[str]:
    """Overlapping tick labels on an axis, and legends that cover a panel's data area."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # a plain Figure has no canvas of its own: draw with Agg
    canvas.draw()
    renderer = canvas.get_renderer()
    problems = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, labels in (("x", ax.get_xticklabels()), ("y", ax.get_yticklabels())):
            boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
            for a, b in zip(boxes, boxes[1:], strict=False):
                if a.overlaps(b):
                    problems.append(f"{ax.get_title()!r}: {axis} tick labels overlap")
    panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        box = legend.get_window_extent(renderer)
        if any(box.overlaps(p) for p in panels):
            problems.append("a legend lies on a panel")
    return problems


def test_figures_for_design_and_model_datasets():
    ds = _dataset(
        {
            "rep_10": [0, 0, 1, 2, 1, 0],
            "rep_100": [1, 1, 2, 1, 1, 1],
            "male_100": [2, 2, 2, 2, 2, 2],
        },
        [50.0, 70.0, 60.0],
    )
    fig = plot_welfare_distributions(ds)
    assert len(fig.axes) == 1 and fig.get_size_inches()[0] <= PAGE_WIDTH
    # schemes in words, the first on top; the target (model-based "all" too) is "All"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "Representative, 10 raters",
        "Representative, 100 raters",
        "Male, 100 raters",
    ]
    assert fig.axes[0].get_title() == "Welfare of: All"
    fig2 = plot_welfare_distributions(ds, kind="samples")
    fig3 = plot_exclusion_gaps(ds)
    for f in (fig, fig2, fig3):
        buf = io.BytesIO()
        f.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"
    # With posterior draws (model-based layout): pooled over chain, draw and replicate.
    model = ds.copy()
    model["welfare"] = ds["welfare"].expand_dims(chain=[0, 1], draw=[0, 1, 2])
    model["regret"] = ds["regret"].expand_dims(chain=[0, 1], draw=[0, 1, 2])
    model.attrs["method"] = "model"
    fig4 = plot_welfare_distributions(model, "uk", "mean")
    assert "model-based" in fig4.texts[0].get_text()
    for f in (fig, fig3, fig4):
        assert f.get_size_inches()[0] <= PAGE_WIDTH
        assert layout_problems(f) == []
    with pytest.raises(ValueError, match="kind"):
        plot_welfare_distributions(ds, kind="box")
