"""Compile once: what a second dataset of the same structure costs, cold and warm.

For one spec (default ``ratings``) on the synthetic release of ``--participants`` and a
second dataset of the same structure (a few participants fewer, every level kept, scores
perturbed -- another sweep point, SBC replicate, recovery seed or pipeline rerun), each
step in a fresh subprocess with its own PyTensor compile directory:

* ``cold``: dataset A, empty compile directory (the first fit on a machine);
* ``warm, same data``: dataset A again (a pipeline rerun);
* ``new data, new process``: dataset B in the warm directory -- a cache hit only when
  the graph of B is the graph of A (data as ``pm.Data`` containers), otherwise a
  compilation from scratch;
* ``new data, same process``: A then B in one process (SBC replicates, sweeps on a
  worker, recovery seeds): :func:`prism_stats.model.compiled.compile_model` gives B the
  compiled model of A (``with_data``);
* the sampling cost per gradient with numba fast-math on and off (this package turns it
  off for bit-identical draws; see :mod:`prism_stats.model.compiled`).

``--code DIR`` measures another checkout of the package (e.g. the code before this
change, exported with ``git archive``) with the same steps: it is put first on the
workers' ``PYTHONPATH``.

Usage::

    ./dev.sh bench compile_reuse [--participants 300] [--spec ratings] [--code DIR] [--json FILE]
    ./dev.sh bench compile_reuse --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_SEED,
    RESULT_PREFIX,
    REPO,
    load1,
    machine,
    prepare_data,
    print_machine,
    print_table,
    write_json,
)

STEP_DRAWS = 150  # draws (and tuning steps) of the per-gradient timing


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="compile_reuse", description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=300)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--spec", default="ratings")
    p.add_argument("--code", help="another checkout of prism_stats to measure (put first on PYTHONPATH)")
    p.add_argument("--no-fastmath", action="store_true", help="skip the fast-math timing")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--dry-run", action="store_true", help="print the plan, compile nothing")
    p.add_argument("--step", help=argparse.SUPPRESS)  # worker mode (JSON config)
    return p.parse_args(argv)


# --- worker side ----------------------------------------------------------------------------

def _second_dataset(data, spec):
    """Dataset B: drop up to 5 participants whose removal keeps every level, perturb scores."""
    import numpy as np

    from prism_stats.model import build_design

    design = build_design(data, spec)
    plev = design.participant_levels
    keep = np.ones(len(plev), dtype=bool)
    for i in range(len(plev)):
        trial = keep.copy()
        trial[i] = False
        if all(len(np.unique(plev[c].to_numpy()[trial])) == len(np.unique(plev[c])) for c in plev.columns):
            keep = trial
        if (~keep).sum() == 5:
            break
    labels = set(np.asarray(design.coords["participant"])[keep])
    ratings = data.ratings.loc[data.ratings["participant"].astype(str).isin(labels)].copy()
    noise = np.random.default_rng(1).integers(-5, 6, len(ratings))
    ratings["score"] = np.clip(ratings["score"].to_numpy() + noise, 1, 100)
    return data.participants, ratings


def _compile(design, spec, fastmath: bool | None):
    """Compile like the package does (or, with *fastmath*, under that numba flag)."""
    import nutpie
    import pytensor

    from prism_stats.model import build_model

    try:
        from prism_stats.model.compiled import compile_model
    except ImportError:  # the code before compile_model existed
        compile_model = None
    if compile_model is not None and fastmath is None:
        c = compile_model(design, spec)
        return c.model, c.reused
    flags = {} if fastmath is None else {"numba__fastmath": fastmath}
    with pytensor.config.change_flags(**flags):
        return nutpie.compile_pymc_model(build_model(design, spec)), False


def step(cfg: dict) -> dict:
    import nutpie

    from _worker import load_tables
    from prism_stats.model import build_design, load_spec

    data = load_tables(cfg["data"])
    spec = load_spec(cfg["spec"])
    out: dict = {"load1_before": load1()}
    designs = {"a": build_design(data, spec)}
    if "b" in cfg["datasets"]:
        designs["b"] = build_design(_second_dataset(data, spec), spec)
    for name in cfg["datasets"]:
        t0 = time.perf_counter()
        compiled, reused = _compile(designs[name], spec, cfg.get("fastmath"))
        out[f"compile_{name}_s"] = time.perf_counter() - t0
        out[f"reused_{name}"] = bool(reused)
    if cfg.get("sample"):
        t0 = time.perf_counter()
        tr = nutpie.sample(compiled, draws=STEP_DRAWS, tune=STEP_DRAWS, chains=1, cores=1, seed=3,
                           progress_bar=False, save_warmup=True)
        secs = time.perf_counter() - t0
        steps = int(tr["warmup_sample_stats"]["n_steps"].sum() + tr["sample_stats"]["n_steps"].sum())
        out["us_per_grad"] = 1e6 * secs / steps
    out["load1_after"] = load1()
    return out


def run_step(cfg: dict, compiledir: Path, code: str | None, timeout: float) -> dict:
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
    if code:
        env["PYTHONPATH"] = os.pathsep.join([code, env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, __file__, "--step", json.dumps(cfg)], capture_output=True,
                          text=True, env=env, cwd=str(REPO), timeout=timeout, check=False)
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"step {cfg} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(found[-1][len(RESULT_PREFIX):])


# --- driver ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        print(RESULT_PREFIX + json.dumps(step(json.loads(args.step))), flush=True)
        return 0
    info = machine()
    print_machine(info)
    plan = [("cold", ["a"], None), ("warm, same data", ["a"], None),
            ("new data, new process", ["b"], None), ("new data, same process", ["a", "b"], None)]
    if not args.no_fastmath:
        plan += [("per gradient, fast-math off", ["a"], False), ("per gradient, fast-math on", ["a"], True)]
    print(f"# compile reuse: spec {args.spec}, {args.participants} participants"
          + (f", code {args.code}" if args.code else ""))
    if args.dry_run:
        for label, datasets, _ in plan:
            print(f"would compile {'+'.join(datasets)} ({label})")
        return 0
    data = prepare_data(args.participants, args.seed)
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="prism-compile-") as tmp:
        for label, datasets, fastmath in plan:
            # the fast-math timings get their own directories (their code differs)
            folder = Path(tmp) / ("main" if fastmath is None else f"fastmath-{fastmath}")
            cfg = {"data": data["path"], "spec": args.spec, "datasets": datasets,
                   "fastmath": fastmath, "sample": fastmath is not None}
            r = run_step(cfg, folder, args.code, args.timeout)
            raw[label] = r
            last = datasets[-1]
            rows.append({"step": label, "seconds": r[f"compile_{last}_s"],
                         "reused": "yes" if r.get(f"reused_{last}") else "no",
                         "us_per_grad": r.get("us_per_grad"),
                         "load": f"{r['load1_before']} -> {r['load1_after']}"})
            print(f"{label}: {r[f'compile_{last}_s']:.2f} s", flush=True)
    print_table(rows, [("step", "step", ""), ("seconds", "compile s (last dataset)", ".2f"),
                       ("reused", "in-process reuse", ""), ("us_per_grad", "µs/grad", ".0f"),
                       ("load", "load", "")])
    write_json(args.json, {"machine": info, "args": vars(args), "steps": raw})
    return 0


if __name__ == "__main__":
    sys.exit(main())
