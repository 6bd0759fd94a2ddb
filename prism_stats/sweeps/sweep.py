"""Specification sweeps (a multiverse analysis) of the rating model, MRP and welfare.

A *grid file* (TOML, examples in ``models/grids/``) names a base spec, the data, sampler
settings and the choices to vary::

    name = "multiverse"
    base = "ratings"                 # spec name or TOML path (relative to the grid file)
    seed = 20240422                  # root seed of every fit

    [data]
    folder = "data/prism"            # a release folder (relative to the grid file) ...
    # synthetic = 300                # ... or the participants of a synthetic PRISM
    # synthetic_seed = 20240422

    [sampling]                       # overrides of the base spec's [sampling]
    chains = 2
    draws = 1000
    tune = 1000

    [poststrat]
    countries = ["uk", "us"]

    [welfare]                        # optional model-based welfare (exclusion gaps):
    enabled = true                   # keyword arguments of model_welfare (sizes,
    sizes = [100]                    # skewed_sizes, pools, targets, rules, replicates,
    replicates = 200                 # draws); harmonisation and seed come from the point

    [axes]                           # Cartesian product of these choices
    family = ["gaussian", "censored"]
    llm_interactions = [["age", "gender", "ethnicity"], ["gender"]]
    country = ["reside_country", "special_region"]
    subset = ["all", "balanced"]
    turns = ["opening", "all"]
    "priors.sigma_interaction" = [2.0, 4.0]
    harmonisation = ["default", "original"]

    [[points]]                       # and/or explicit points (unnamed axes: base values)
    family = "censored"
    subset = "balanced"

Axes: the spec fields ``family``, ``turns``, ``subset``, ``country``, ``demographics``,
``llm_interactions``, ``conversation_type``; any ``priors.<key>``, ``pooling.<key>`` or
``parameterisation.<key>``; and ``harmonisation`` (of the census frames used for
post-stratification). Each grid point gets an id (a hash of its resolved spec, census
harmonisation, data, sampler settings and root seed) and a folder ``points/<id>/``.

Points that differ only in the harmonisation share one fit: the unit of work is a *fit*
(:class:`FitGroup`), which post-stratifies to every harmonisation its points need. Each
fit's seed is the child of ``SeedSequence(seed)`` keyed by the fit's hash, so adding or
removing grid points never changes another point's results.

Per point: the census-population (and subgroup) mean rating of every LLM in the UK and the
US (mean, sd, 5/50/95% quantiles, P(best), rank of the posterior mean), the convergence
diagnostics, and -- when :mod:`prism_stats.welfare.model_based` is available and
``[welfare]`` is enabled -- the welfare exclusion gaps
(:func:`prism_stats.welfare.results.exclusion_gaps`). Outputs::

    grid.json                    the resolved grid (points, ids, fits, seeds)
    data/                        the synthetic release, when the grid asks for one
    points/<id>/point.json       settings, seed, diagnostics, timings, welfare note
    points/<id>/estimates.csv    MRP estimates of the point
    points/<id>/gaps.csv         exclusion gaps of the point (empty without welfare)
    failures.json                fits that failed twice (errors and tracebacks)
    sweep.csv                    THE table: every point x country x quantity (long)
    points.csv                   one row per point: choices, diagnostics, timings
    spec_curve.png/.pdf          the specification curve of the headline estimate
    spec_curve_gaps.png/.pdf     the same for the exclusion gaps (with welfare)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import (
    now_iso,
    package_versions,
    save_figure,
    write_json_atomic,
    write_text_atomic,
)
from .execution import (
    RunReport,
    Task,
    dask_client,
    fit_slot,
    keyed_seed,
    process_cached,
    run_tasks,
    seed_int,
    seed_record,
)
from .grid import Grid, GridError, GridPoint, load_grid
from .plots import plot_spec_curve

# The model, poststrat, welfare, data and synth layers are imported inside the task
# functions: importing prism_stats.sweeps must not load PyMC, because a Dask worker
# first sets its own compile directory (see prism_stats.sweeps.execution).

#: Each skewed rater pool and the population it leaves out (headline exclusion gaps).
EXCLUDED_TARGET: dict[str, str] = {"male": "nonmale", "white": "nonwhite", "over45": "under45"}
#: Columns of sweep.csv after the point id and the axes.
TABLE_COLUMNS: tuple[str, ...] = (
    "country", "quantity", "group", "llm", "rule", "pool", "size", "target",
    "mean", "sd", "q05", "q50", "q95", "rank", "p_best", "p_worse",
)
#: Table column of an axis whose name collides with a table column (the spec's country
#: grouping variable vs the post-stratification country).
AXIS_COLUMNS: dict[str, str] = {"country": "country_variable"}
GRID_FILE = "grid.json"
POINTS_DIR = "points"


# --- one fit (runs on a worker) -----------------------------------------------------------

def _welfare_gaps(run: Any, country: str, harmonisation: str, settings: Mapping[str, Any],
                  seed: int) -> tuple[pd.DataFrame | None, str]:
    """Model-based exclusion gaps of *run* (:func:`prism_stats.welfare.model_based.model_welfare`
    with the grid's ``[welfare]`` settings), or ``(None, reason)`` when unavailable."""
    if not settings.get("enabled", False):
        return None, "welfare not requested ([welfare] enabled = false)"
    try:
        from ..welfare.model_based import model_welfare
    except ImportError as exc:
        return None, f"welfare skipped: prism_stats.welfare.model_based is not available ({exc})"
    from ..welfare.summaries import exclusion_gaps

    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items() if k != "enabled"}
    ds = model_welfare(run, country, seed=seed, harmonisation=harmonisation, **kwargs)
    return exclusion_gaps(ds), "ok"


def _estimates(run: Any, data: Any, country: str, harmonisation: str, groups: Sequence[str] | None,
               seed: int) -> pd.DataFrame:
    from ..poststrat import poststratify

    ps = poststratify(run, country, data=data, harmonisation=harmonisation, seed=seed)
    s = ps.summary()
    if groups is not None:
        s = s.loc[s["group"].isin(groups)]
    s = s.copy()
    s["rank"] = s.groupby("group")["mean"].rank(ascending=False, method="min").astype(int)
    return s


def run_fit_group(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Fit one spec and write the outputs of every grid point that uses it (worker side)."""
    from ..data import load_prism
    from ..model import diagnose, fit
    from ..model.spec import ModelSpec

    t0 = time.perf_counter()
    folder, data_hash = payload["data_folder"], payload["data_hash"]
    data, _ = process_cached(("sweep-data", folder, data_hash), lambda: load_prism(folder), max_items=2)
    if data.data_hash != data_hash:
        raise RuntimeError(f"the data in {folder} changed since the sweep started (hash mismatch)")
    spec = ModelSpec.from_dict(payload["spec"], source=f"grid point fit {payload['fit_key']}")
    seq = np.random.SeedSequence(payload["seed"]["root"], spawn_key=tuple(payload["seed"]["spawn_key"]))
    s_fit, s_post, s_welfare = seq.spawn(3)
    sampling = payload["sampling"]
    with fit_slot():
        run = fit(data, spec, chains=int(sampling["chains"]), draws=int(sampling["draws"]),
                  tune=int(sampling["tune"]), seed=seed_int(s_fit), sampler=sampling.get("sampler"),
                  target_accept=sampling.get("target_accept"), cores=1, progress=False,
                  loglik=False)
    diag = diagnose(run)
    fit_s = time.perf_counter() - t0
    diagnostics = {"max_rhat": diag.max_rhat, "min_ess_bulk": diag.min_ess_bulk,
                   "min_ess_tail": diag.min_ess_tail, "divergences": diag.divergences,
                   "passed": diag.passed, "failures": diag.failures()}
    countries = payload["countries"]
    post_seeds = dict(zip(countries, s_post.spawn(len(countries)), strict=True))
    welfare_seeds = dict(zip(countries, s_welfare.spawn(len(countries)), strict=True))
    welfare_cache: dict[tuple[str, str], tuple[pd.DataFrame | None, str]] = {}

    def gaps_for(country: str, harmonisation: str) -> tuple[pd.DataFrame | None, str]:
        # one welfare analysis per (country, harmonisation); the same seed for every
        # harmonisation, so their difference is not simulation noise
        key = (country, harmonisation)
        if key not in welfare_cache:
            try:
                welfare_cache[key] = _welfare_gaps(run, country, harmonisation, payload["welfare"],
                                                   seed_int(welfare_seeds[country]))
            except Exception as exc:  # noqa: BLE001 - kept with the point, reported by the sweep
                welfare_cache[key] = (None, f"welfare failed: {type(exc).__name__}: {exc}")
        return welfare_cache[key]

    done = []
    for point in payload["points"]:
        folder_p = Path(point["folder"])
        h = point["harmonisation"]
        frames = [_estimates(run, data, c, h, payload["groups"], seed_int(post_seeds[c])).assign(country=c)
                  for c in countries]
        estimates = pd.concat(frames, ignore_index=True)
        welfare = [gaps_for(c, h) for c in countries]
        gap_frames = [g for g, _ in welfare if g is not None and len(g)]
        gaps = pd.concat(gap_frames, ignore_index=True) if gap_frames else pd.DataFrame()
        welfare_note = "; ".join(dict.fromkeys(note for _, note in welfare))
        write_text_atomic(folder_p / "estimates.csv", estimates.to_csv(index=False))
        write_text_atomic(folder_p / "gaps.csv", gaps.to_csv(index=False))
        write_json_atomic(folder_p / "point.json", {
            "id": point["id"], "choices": point["choices"], "harmonisation": h,
            "fit_key": payload["fit_key"], "spec": payload["spec"], "sampling": sampling,
            "seed": payload["seed"], "data_hash": data_hash, "diagnostics": diagnostics,
            "timings": {"fit_s": fit_s, **run.meta.get("timings", {})},
            "welfare": welfare_note, "welfare_settings": payload["welfare"],
            "design": run.meta.get("design"), "written": now_iso(),
        })
        done.append(point["id"])
    return {"fit_key": payload["fit_key"], "points": done, "seconds": time.perf_counter() - t0,
            "max_rhat": diag.max_rhat, "divergences": diag.divergences}


# --- driver -------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """A finished (or partly finished) sweep.

    Attributes
    ----------
    table : DataFrame
        ``sweep.csv``: point, the axes, then :data:`TABLE_COLUMNS` (quantity
        ``population_mean`` rows per LLM and group; ``exclusion_gap`` rows per rule, pool,
        size and target when welfare ran).
    points : DataFrame
        One row per point: id, choices, fit key, diagnostics, seconds, welfare note.
    report : RunReport
    out : Path
    axes : list of str
    missing : list of str
        Points without results (their fit failed twice; see ``failures.json``).
    """

    table: pd.DataFrame
    points: pd.DataFrame
    report: RunReport | None
    out: Path
    axes: list[str]
    missing: list[str] = field(default_factory=list)

    def headline(self, llm: str | None = None, group: str = "all") -> pd.DataFrame:
        """Per (country, point): the headline LLM's estimate and whether it is ranked first.

        The headline LLM of a country is *llm*, else the LLM ranked first at most points.
        """
        est = self.table.loc[(self.table["quantity"] == "population_mean") & (self.table["group"] == group)]
        rows = []
        for country, sub in est.groupby("country", sort=False):
            name = llm or sub.loc[sub["rank"] == 1, "llm"].mode().iloc[0]
            pick = sub.loc[sub["llm"] == name].copy()
            pick["is_top"] = pick["rank"] == 1
            pick["headline_llm"] = name
            rows.append(pick)
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def __str__(self) -> str:
        lines = [f"sweep: {len(self.points)} points in {self.out}"]
        if self.report is not None:
            lines.append(self.report.summary_line())
        h = self.headline()
        for country, sub in h.groupby("country", sort=False):
            name = sub["headline_llm"].iloc[0]
            lines.append(f"{country}: {name} ranked first at {int(sub['is_top'].sum())} of {len(sub)} points; "
                         f"its population mean ranges {sub['mean'].min():.1f}-{sub['mean'].max():.1f}")
        notes = self.points["welfare"].dropna().unique() if "welfare" in self.points else []
        for note in notes:
            if note != "ok":
                lines.append(f"note: {note}")
        bad = self.points.loc[~self.points["passed"].astype(bool), "point"].tolist() if "passed" in self.points else []
        if bad:
            lines.append(f"convergence gate failed at {len(bad)} point(s): {', '.join(bad)}")
        if self.missing:
            lines.append(f"MISSING points (fit failed twice, see failures.json): {', '.join(self.missing)}")
        return "\n".join(lines)


def axis_column(axis: str) -> str:
    """Column name of *axis* in ``sweep.csv`` and ``points.csv``."""
    return AXIS_COLUMNS.get(axis, axis)


def _axis_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value)) if value else "none"
    return str(value)


def prepare_data(grid: Grid, out: Path, data: str | Path | None) -> tuple[str, str]:
    """Resolve the sweep's data (``--data`` overrides the grid file): ``(folder, data_hash)``.

    A synthetic grid writes its release once into ``out/data`` (reused on reruns).
    """
    from ..data import load_prism

    folder = str(data) if data is not None else grid.data_folder
    if folder is None:
        if grid.synthetic is None:
            raise GridError(f"{grid.source}: no data: give --data or [data] folder/synthetic")
        target = out / "data"
        marker = target / "utterances.jsonl"
        if not marker.exists():
            from ..synth import synthesize

            synthesize(target, grid.synthetic, grid.synthetic_seed)
        folder = str(target.resolve())
    try:
        prism = load_prism(folder)
    except Exception as exc:  # noqa: BLE001 - the data layer's errors name the file, line and field
        raise GridError(f"data {folder}: {exc}") from None
    return str(Path(folder).resolve()), prism.data_hash


def build_tasks(grid: Grid, out: Path, folder: str, data_hash: str) -> tuple[list[Task], list[GridPoint]]:
    """One task per fit, with the points it serves."""
    points = grid.points(data_hash)
    sampling = grid.sampler_settings()
    groups: dict[str, list[GridPoint]] = {}
    for p in points:
        groups.setdefault(p.fit_key, []).append(p)
    tasks = []
    for fit_key, members in groups.items():
        seq = keyed_seed(grid.seed, fit_key)
        payload = {
            "fit_key": fit_key, "spec": members[0].spec.to_dict(), "sampling": sampling,
            "seed": seed_record(seq), "data_folder": folder, "data_hash": data_hash,
            "countries": list(grid.countries), "groups": list(grid.groups) if grid.groups else None,
            "welfare": grid.welfare,
            "points": [{"id": p.id, "harmonisation": p.harmonisation,
                        "choices": {k: v for k, v in p.choices.items()},
                        "folder": str((out / POINTS_DIR / p.id).resolve())} for p in members],
        }
        outputs = tuple(out / POINTS_DIR / p.id / "point.json" for p in members)
        tasks.append(Task(fit_key, payload, outputs))
    return tasks, points


def collect_sweep(out: str | Path, points: Sequence[GridPoint] | None = None,
                  report: RunReport | None = None) -> SweepResult:
    """Aggregate the point folders of a sweep into ``sweep.csv`` and ``points.csv``."""
    out = Path(out)
    meta = json.loads((out / GRID_FILE).read_text())
    axes = [axis_column(a) for a in meta["axes"]]
    ids = [p.id for p in points] if points is not None else [p["id"] for p in meta["points"]]
    estimate_frames, gap_frames, rows, missing = [], [], [], []
    for pid in ids:
        folder = out / POINTS_DIR / pid
        if not (folder / "point.json").exists():
            missing.append(pid)
            continue
        info = json.loads((folder / "point.json").read_text())
        choices = {axis_column(a): _axis_text(info["choices"].get(a)) for a in meta["axes"]}
        rows.append({"point": pid, **choices, "fit_key": info["fit_key"],
                     "seed_root": info["seed"]["root"], "seed_spawn_key": info["seed"]["spawn_key"][0],
                     **{k: v for k, v in info["diagnostics"].items() if k != "failures"},
                     "fit_s": info["timings"].get("fit_s"), "compile_s": info["timings"].get("compile_s"),
                     "sampling_s": info["timings"].get("sampling_s"), "welfare": info.get("welfare", "")})
        est = pd.read_csv(folder / "estimates.csv")
        est = est.assign(point=pid, quantity="population_mean", **choices)
        estimate_frames.append(est)
        if (folder / "gaps.csv").stat().st_size > 1:
            gaps = pd.read_csv(folder / "gaps.csv")
            if len(gaps):
                gaps = gaps.rename(columns={"gap_mean": "mean", "gap_q05": "q05", "gap_q95": "q95"})
                gap_frames.append(gaps.assign(point=pid, quantity="exclusion_gap", **choices))
    frames = estimate_frames + gap_frames
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for c in TABLE_COLUMNS:
        if c not in table:
            table[c] = np.nan
    table = table.loc[:, ["point", *axes, *TABLE_COLUMNS]]
    for c in ("rank", "size"):  # integers, missing where they do not apply
        table[c] = pd.array(np.round(pd.to_numeric(table[c])), dtype="Int64")
    points_df = pd.DataFrame(rows)
    write_text_atomic(out / "sweep.csv", table.to_csv(index=False))
    write_text_atomic(out / "points.csv", points_df.to_csv(index=False))
    return SweepResult(table=table, points=points_df, report=report, out=out, axes=axes, missing=missing)


def run_sweep(
    grid: str | Path | Grid,
    *,
    out: str | Path,
    data: str | Path | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    progress: bool = True,
    plots: bool = True,
) -> SweepResult:
    """Fit and post-stratify every point of a grid; aggregate the table and the figures.

    Parameters
    ----------
    grid : path or Grid
        The grid file (see module docstring).
    out : path
        Output folder. Finished points are reused when the sweep is rerun.
    data : path, optional
        Release folder (overrides the grid's ``[data]``).
    client, scheduler, workers
        Where to run: an existing Dask client; a scheduler address; a new LocalCluster of
        *workers* single-threaded processes; or (all None) serially in this process.
    retries : int
        Extra attempts per failing fit (then reported, never dropped).
    progress : bool
        One progress bar over the fits.
    plots : bool
        Write the specification-curve figures.
    """
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folder, data_hash = prepare_data(grid, out, data)
    tasks, points = build_tasks(grid, out, folder, data_hash)
    write_json_atomic(out / GRID_FILE, {
        "name": grid.name, "description": grid.description, "source": grid.source,
        "base": grid.base.to_dict(), "seed": grid.seed, "data_folder": folder, "data_hash": data_hash,
        "sampling": grid.sampler_settings(), "countries": list(grid.countries), "welfare": grid.welfare,
        "axes": grid.axis_names,
        "points": [{"id": p.id, "fit_key": p.fit_key, "harmonisation": p.harmonisation,
                    "choices": p.choices} for p in points],
        "fits": len(tasks), "written": now_iso(), "versions": package_versions(),
    })
    kwargs = {"retries": retries, "progress": progress, "label": "sweep fits",
              "failures_path": out / "failures.json"}
    if client is not None:
        report = run_tasks(tasks, run_fit_group, client=client, **kwargs)
    elif scheduler is not None or workers:
        with dask_client(scheduler, workers or 2) as c:
            report = run_tasks(tasks, run_fit_group, client=c, **kwargs)
    else:
        report = run_tasks(tasks, run_fit_group, **kwargs)
    result = collect_sweep(out, points, report)
    if plots and len(result.table):
        plot_sweep(result)
    return result


def plot_sweep(result: SweepResult) -> list[Path]:
    """Write ``spec_curve`` (headline LLM estimate) and, with welfare, ``spec_curve_gaps``."""
    paths = []
    varying = [a for a in result.axes if result.points[a].nunique() > 1] or result.axes
    head = result.headline()
    if len(head):
        names = ", ".join(f"{c}: {n}" for c, n in head.groupby("country", sort=False)["headline_llm"].first().items())
        fig = plot_spec_curve(head, varying, ylabel="population mean rating (90% interval)",
                              title=f"Headline LLM ({names}) across {len(result.points)} specifications; "
                                    "filled = ranked first")
        paths += save_figure(fig, result.out, "spec_curve")
    gaps = result.table.loc[result.table["quantity"] == "exclusion_gap"]
    if len(gaps):
        pairs = gaps.loc[gaps["pool"].map(EXCLUDED_TARGET) == gaps["target"]]
        pairs = pairs.loc[pairs["rule"] == pairs["rule"].iloc[0]]
        pairs = pairs.loc[pairs["size"] == pairs["size"].max()].copy()
        pairs["panel"] = pairs["country"] + ": " + pairs["pool"] + " pool, " + pairs["target"]
        pairs["is_top"] = pairs["q95"] < 0
        fig = plot_spec_curve(pairs, varying, panels="panel", ncols=len(EXCLUDED_TARGET),
                              ylabel="exclusion gap (90% interval)",
                              title="Welfare lost by the excluded group when a skewed pool decides; "
                                    "filled = 90% interval below 0")
        paths += save_figure(fig, result.out, "spec_curve_gaps")
    return paths
