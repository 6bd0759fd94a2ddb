"""Same inputs and seed, same bits: serially or on Dask workers, cold or warm compile cache,
one or two cores, a fresh compilation or a compiled model reused with new data.

The root cause of the flaky Dask-vs-serial sweep was PyTensor's numba fast-math flags
(see :mod:`prism_stats.model.compiled`): they let LLVM reorder floating-point sums
differently when a function is compiled in the process (inlinable) or loaded from the
disk cache (not inlinable). These tests pin the fix down.
"""

from __future__ import annotations

import os
import sys

import cloudpickle
import numpy as np
import pandas as pd
import pytensor
import pytest

from prism_stats.model.compiled import structure_key

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SPEC = "ratings_additive"
SAMPLING = {"chains": 2, "draws": 60, "tune": 60, "seed": 5}


def fit_fingerprint(payload: dict) -> dict:
    """Fit the small spec and return its draws, log-likelihood and MRP table (worker side)."""
    from prism_stats.data import load_prism
    from prism_stats.model import fit
    from prism_stats.poststrat import poststratify

    data = load_prism(payload["data"])
    run = fit(data, SPEC, cores=payload.get("cores", 1), progress=False, **SAMPLING)
    post = run.posterior
    return {
        "pid": os.getpid(),
        "compile_dir": os.environ.get("PRISM_STATS_COMPILE_DIR", "default"),
        "compile_s": run.meta["timings"]["compile_s"],
        "draws": {v: post[v].values for v in sorted(post.data_vars)},
        "loglik": run.idata["log_likelihood"]["score"].values,
        "mrp": poststratify(run, "uk", data=data, seed=3).summary(),
    }


def _assert_identical(a: dict, b: dict, what: str) -> None:
    assert a["draws"].keys() == b["draws"].keys(), what
    for name in a["draws"]:
        np.testing.assert_array_equal(a["draws"][name], b["draws"][name], err_msg=f"{what}: {name}")
    np.testing.assert_array_equal(a["loglik"], b["loglik"], err_msg=what)
    pd.testing.assert_frame_equal(a["mrp"], b["mrp"], check_exact=True, obj=what)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from prism_stats.synth import synthesize

    out = tmp_path_factory.mktemp("determinism_data")
    synthesize(out, participants=40, seed=8)
    return str(out)


def test_numba_fastmath_is_off():
    """Importing the model layer turns fast-math off (the cause of cold/warm differences)."""
    assert pytensor.config.numba__fastmath is False


def test_structure_key_ignores_data_but_not_structure(release):
    from prism_stats.data import load_prism
    from prism_stats.model import build_design, load_spec

    data = load_prism(release)
    spec = load_spec(SPEC)
    design = build_design(data, spec)
    rescored = data.ratings.assign(score=np.clip(data.ratings["score"] + 3, 1, 100))
    same = build_design((data.participants, rescored), spec)
    assert structure_key(design, spec) == structure_key(same, spec)
    assert structure_key(design, spec) != structure_key(design, load_spec("ratings"))
    fewer = data.participants.assign(gender="Male")  # one gender level: no gender effect
    assert structure_key(build_design((fewer, data.ratings), spec), spec) != structure_key(design, spec)


@pytest.mark.slow
@pytest.mark.mcmc
def test_fit_is_bit_identical_serial_dask_cold_warm_and_cores(release, tmp_path):
    from prism_stats.model.compiled import clear_compiled
    from prism_stats.sweeps.execution import dask_client

    clear_compiled()
    serial = fit_fingerprint({"data": release, "cores": 1})
    two_cores = fit_fingerprint({"data": release, "cores": 2})  # reuses the compiled model
    assert two_cores["compile_s"] < 1.0
    _assert_identical(serial, two_cores, "serial, 1 vs 2 cores")

    root = tmp_path / "compile"
    results = {}
    for cache in ("cold", "warm"):  # the second cluster's workers find their slots filled
        with dask_client(workers=2, compile_root=root) as client:
            workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
            futures = [client.submit(fit_fingerprint, {"data": release}, workers=[w], pure=False)
                       for w in workers]
            results[cache] = [f.result() for f in futures]
    for cache, pair in results.items():
        dirs = {r["compile_dir"] for r in pair}
        assert len(dirs) == 2 and all(d.startswith(str(root)) for d in dirs), dirs
        for r in pair:
            _assert_identical(serial, r, f"serial vs Dask worker ({cache} compile cache)")
    # the warm workers compiled from their disk cache: faster than cold
    assert min(r["compile_s"] for r in results["warm"]) < max(r["compile_s"] for r in results["cold"])
