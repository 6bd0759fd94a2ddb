"""The notebooks execute top to bottom on a small synthetic release with short sampling.

They are jupytext py:percent files (no .ipynb is committed); each is converted with
jupytext and executed with nbclient in a fresh kernel, in order, sharing one work folder
so that 03-06 reuse the run that 02 fitted. The sizes come from the environment
variables the notebooks read in their first cell; nothing is mocked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

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


@pytest.mark.notebooks
@pytest.mark.mcmc
@pytest.mark.slow
def test_notebooks_execute(tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    for key, value in CI_SETTINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PRISM_NB_WORKDIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
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
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0]}"
        executed = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in executed), f"{path.name}: a cell did not run"
    # 02 fitted the model once; 03-06 reopened its cached run folder instead of refitting
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1 and (runs[0] / "posterior.nc").is_file()
    print({k: round(v, 1) for k, v in timings.items()}, os.cpu_count())
