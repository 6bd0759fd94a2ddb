"""Shared test set-up: non-interactive plotting, the tests folder on sys.path, and the
session-scoped synthetic release and small real fit that many model tests reuse."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).parent))

import matplotlib
import pytest

matplotlib.use("Agg")

#: Size and sampling of the small real fit shared by the model tests (seeded).
SMALL_PARTICIPANTS = 300
SMALL_SEED = 20240422
SMALL_SAMPLING = {"chains": 2, "draws": 300, "tune": 300, "seed": 11}


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory):
    """A small synthetic release (300 participants) with its truth, written once."""
    from prism_stats.synth import synthesize

    out = tmp_path_factory.mktemp("synth_small")
    synthesize(out, participants=SMALL_PARTICIPANTS, seed=SMALL_SEED)
    return out


@pytest.fixture(scope="session")
def small_data(synth_small):
    from prism_stats.data import load_prism

    return load_prism(synth_small)


@pytest.fixture(scope="session")
def small_run(small_data, tmp_path_factory):
    """The main spec fitted to the small release (real MCMC, seeded), saved to a folder."""
    from prism_stats.model import fit

    out = tmp_path_factory.mktemp("small_run")
    return fit(small_data, "ratings", progress=False, out=out, **SMALL_SAMPLING)
