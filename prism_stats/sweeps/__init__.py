"""Calibration and sensitivity at scale: SBC and specification sweeps, serially or on Dask.

Simulation-based calibration (SBC) and specification sweeps (a multiverse analysis):

- :func:`run_sbc` (:mod:`.sbc`; one replicate: :mod:`.sbc_replicate`): draw parameters
  from a spec's prior, simulate a PRISM-shaped dataset, fit, and record the rank of every
  parameter and MRP estimand among the posterior draws; :func:`calibration_test` (:mod:`.calibration`) tests the ranks for
  uniformity with exact simultaneous ECDF bands; :func:`plot_ecdf_difference`
  (:mod:`.plots`) draws them.
- :func:`run_sweep` (:mod:`.sweep`): fit and post-stratify every point of a grid of
  specification choices (``models/grids/*.toml``, read by :mod:`.grid`); one table of
  per-LLM UK/US estimates and welfare exclusion gaps, and a specification-curve figure.
- :mod:`.execution`: seeds from one root, one file per task, resumability, retries, and
  Dask workers (one single-threaded process per fit, per-worker compile directories).

Importing this package does not import PyMC: workers import it only inside the tasks, after
their compile directory is set.
"""

from __future__ import annotations

from .calibration import CalibrationResult, calibration_test, ecdf_pvalue, simultaneous_band
from .execution import RunReport, Task, dask_client, run_tasks
from .grid import Grid, GridError, load_grid
from .plots import plot_ecdf_difference, plot_pvalues, plot_spec_curve
from .sbc import SbcConfig, SbcError, SbcResult, collect_ranks, load_sbc, run_sbc
from .sweep import SweepResult, collect_sweep, run_sweep

__all__ = [
    "CalibrationResult",
    "Grid",
    "GridError",
    "RunReport",
    "SbcConfig",
    "SbcError",
    "SbcResult",
    "SweepResult",
    "Task",
    "calibration_test",
    "collect_ranks",
    "collect_sweep",
    "dask_client",
    "ecdf_pvalue",
    "load_grid",
    "load_sbc",
    "plot_ecdf_difference",
    "plot_pvalues",
    "plot_spec_curve",
    "run_sbc",
    "run_sweep",
    "run_tasks",
    "simultaneous_band",
]
