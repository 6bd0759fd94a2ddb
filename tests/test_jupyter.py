"""At home in Jupyter: importing the package leaves the matplotlib backend alone, figures
render inline (once) in a kernel, and result objects have a short repr and an HTML view."""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import prism_stats

PACKAGE = Path(prism_stats.__file__).parent

_IMPORT_ALL = """
import importlib, pkgutil, sys
import matplotlib
before = matplotlib.rcParams._get("backend")
import prism_stats
names = [m.name for m in pkgutil.walk_packages(prism_stats.__path__, "prism_stats.")]
for name in names:
    importlib.import_module(name)
after = matplotlib.rcParams._get("backend")
assert after is before or after == before, (before, after)
print(len(names), "modules; backend untouched:", repr(before)[:60])
"""


def test_importing_every_module_leaves_the_matplotlib_backend_alone():
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # CI sets it; users do not
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE.parent), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", _IMPORT_ALL], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    n = len(list(pkgutil.walk_packages(prism_stats.__path__, "prism_stats.")))
    assert res.stdout.startswith(f"{n} modules"), res.stdout


def test_no_module_forces_a_backend():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if re.search(r"matplotlib\.use\(|\bplt\.switch_backend\(", p.read_text(encoding="utf-8"))]
    assert not offenders


@pytest.mark.slow
def test_figures_render_inline_once_in_a_kernel():
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    cells = [
        "import pandas as pd\n"
        "from prism_stats.report import plot_recovery\n"
        "truth = pd.DataFrame({'country': 'uk', 'group': 'all', 'llm': ['a', 'b'], 'mean': [60.0, 55.0]})\n"
        "est = truth.assign(q05=truth['mean'] - 2, q95=truth['mean'] + 2)\n"
        "plot_recovery(truth, est)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env_backend = os.environ.pop("MPLBACKEND", None)  # the kernel starts as a user's would
    try:
        NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    outputs = nb.cells[0].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, [list(o.get("data", {})) for o in outputs]


def test_poststrat_result_repr_and_html():
    from prism_stats import census
    from prism_stats.poststrat import PoststratResult

    frame = census.frame("uk")
    rng = np.random.default_rng(0)
    llms, groups = ["gpt-4", "claude-2"], ["all", "male"]
    gm = xr.DataArray(rng.normal(60, 1, (2, 50, 2, 2)) + np.array([3.0, 0.0])[:, None],
                      dims=("chain", "draw", "llm", "group"),
                      coords={"llm": llms, "group": groups}).transpose("chain", "draw", "llm", "group")
    cm = xr.DataArray(rng.normal(60, 1, (2, 50, 2, len(frame))), dims=("chain", "draw", "llm", "cell"),
                      coords={"llm": llms, "cell": frame["cell"].tolist()})
    result = PoststratResult(country="uk", cell_mean=cm, group_mean=gm, frame=frame)
    text = repr(result)
    assert len(text) < 200 and "uk" in text and "2 LLMs" in text and "highest for all" in text
    page = result._repr_html_()
    assert "<table" in page and "gpt-4" in page and "Male" in page and len(page) < 20_000


def test_rankings_results_have_short_reprs():
    from prism_stats.rankings.analysis import ModelRankings, ScoreUse

    big = pd.DataFrame({"llm": [f"m{i}" for i in range(5000)], "p_best": np.linspace(0, 1, 5000)})
    result = ModelRankings(ranks=big, p_rank=big, undecided=big.head(0), agreement=big,
                           agreement_summary=big.head(3), notes=["a note"])
    text = repr(result)
    assert len(text) <= 300 and "DataFrame 5,000 x 2" in text
    page = result._repr_html_()
    assert page.count("<details>") == 4 and len(page) < 20_000  # the empty table is left out
    use = ScoreUse(raters=big, disagreement=big, sites=big)
    assert repr(use).startswith("ScoreUse(raters=DataFrame")
