"""The notebooks and the README's Python snippet run against a `prism-stats run` output.

The notebooks are jupytext py:percent files (no .ipynb is committed); each is converted
with jupytext and executed with nbclient in a fresh kernel, in order, with
``PRISM_NB_RUN`` pointing at the output folder of the shared small pipeline (a real
``prism-stats run``, see conftest_pipeline.py): they open its run with ``Run.load`` and
its data, and use only the public API. The kernel starts as a user's would (no
``MPLBACKEND``): figures must render inline. Nothing is mocked.
"""

from __future__ import annotations

import os
import time
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ("conftest_pipeline",)  # the shared small-pipeline fixture

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
EXPECTED = ["01_data_tour.py", "02_fitting_and_diagnostics.py", "03_mrp.py", "04_welfare.py",
            "05_comparators.py", "06_preference_diversity.py", "07_dialogue_diversity.py"]
CI_SETTINGS = {
    "PRISM_NB_PARTICIPANTS": "200",
    "PRISM_NB_CHAINS": "2",
    "PRISM_NB_DRAWS": "100",
    "PRISM_NB_TUNE": "100",
    "PRISM_NB_REPLICATES": "50",
}


def test_the_notebooks_are_py_percent_files_without_ipynb():
    import jupytext

    assert [p.name for p in NOTEBOOKS] == EXPECTED
    assert not list(NOTEBOOK_DIR.glob("*.ipynb"))
    for path in NOTEBOOKS:
        text = path.read_text(encoding="utf-8")
        assert "format_name: percent" in text and "# %%" in text
        nb = jupytext.read(path)
        assert nb.cells[0].cell_type == "markdown"
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert "NotebookSettings.from_env()" in code[0], f"{path.name}: settings belong in the first code cell"
        assert all("prism_stats._" not in c and "from prism_stats.report.supplement import _" not in c
                   for c in code), f"{path.name} uses a private module"


#: Notebooks whose cells draw figures (each must show at least one inline PNG).
DRAWING = ("02_fitting_and_diagnostics.py", "03_mrp.py", "04_welfare.py", "05_comparators.py",
           "06_preference_diversity.py")


@pytest.mark.notebooks
@pytest.mark.mcmc
@pytest.mark.slow
def test_notebooks_execute_on_a_pipeline_output(small_pipeline, tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    for key, value in CI_SETTINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PRISM_NB_WORKDIR", str(tmp_path))
    monkeypatch.setenv("PRISM_NB_RUN", str(small_pipeline["out"]))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # as a user's kernel: figures render inline
    monkeypatch.delenv("PRISM_NB_DATA", raising=False)
    timings = {}
    for path in NOTEBOOKS:
        nb = jupytext.read(path)
        client = NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        t0 = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as exc:
            pytest.fail(f"{path.name} failed:\n{str(exc)[-4000:]}")
        timings[path.name] = time.perf_counter() - t0
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        errors = [o for o in outputs if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0]}"
        executed = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in executed), f"{path.name}: a cell did not run"
        if path.name in DRAWING:
            assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no inline figure"
    # the pipeline's run was opened, nothing was fitted again
    assert not (tmp_path / "runs").exists()
    print({k: round(v, 1) for k, v in timings.items()}, os.cpu_count())


@pytest.mark.mcmc
@pytest.mark.slow
def test_readme_python_snippet_runs_on_a_pipeline_output(small_pipeline, tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    snippet = next(b for b in blocks if "Run.load(" in b)
    out = Path(small_pipeline["out"])
    code = snippet.replace('"OUT/', f'"{out.as_posix()}/')
    assert code != snippet, "the README snippet must open a `prism-stats run` output folder"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=900, check=False,
                         env={**os.environ, "MPLBACKEND": "Agg",
                              "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    assert res.returncode == 0, res.stderr[-3000:]
