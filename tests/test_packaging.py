"""Packaging invariants: pyproject and environment.yml agree, the CLI entry point exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import prism_stats

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].strip().lower()


def test_environment_yml_lists_every_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = (ROOT / "environment.yml").read_text().lower()
    for req in project["dependencies"]:
        name = _name(req)
        assert re.search(rf"^\s*-\s*{re.escape(name)}\b", env, flags=re.MULTILINE), f"{name} missing from environment.yml"
    assert "python=3.12" in env


def test_version_and_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == prism_stats.__version__
    assert project["requires-python"] == ">=3.12"
    assert project["scripts"]["prism-stats"] == "prism_stats.cli:main"
    # pymc-extras pins a single PyMC minor and would silently downgrade PyMC 6
    assert not any(_name(r) == "pymc-extras" for r in project["dependencies"])


def test_model_specs_ship_with_the_package():
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert build["targets"]["wheel"]["force-include"]["models"] == "prism_stats/_specs"
    assert (ROOT / "models" / "ratings.toml").is_file()


# --- dependencies, licence, extras, shipped defaults, docs --------------------------------------

import ast  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402

import pytest  # noqa: E402

#: Import name -> distribution name, where they differ.
DIST_OF = {"sklearn": "scikit-learn", "yaml": "pyyaml", "IPython": "ipython", "arviz_stats": "arviz-stats",
           "huggingface_hub": "huggingface_hub", "distributed": "dask",
           "umap": "umap-learn", "sentence_transformers": "sentence-transformers"}
#: Imports guarded by ``try/except ImportError`` or only used under an optional extra.
OPTIONAL = {"IPython": "Jupyter display (only inside a kernel)", "huggingface_hub": "[hub] extra",
            "distributed": "[dask] extra",
            "sentence_transformers": "[topics] extra (sentence-transformer embeddings)"}
#: Core dependencies used without an import statement, and why.
USED_INDIRECTLY = {"h5netcdf": "xarray's engine='h5netcdf' (every saved run and result)",
                   "jinja2": "pandas Styler (LaTeX and HTML tables)",
                   "tabulate": "DataFrame.to_markdown (Markdown tables)"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _third_party_imports() -> set[str]:
    names = set()
    for path in (ROOT / "prism_stats").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "prism_stats"}


def test_dependencies_are_what_the_package_imports():
    declared = {_name(r) for r in _project()["dependencies"]}
    imported = _third_party_imports()
    for module in sorted(imported - set(OPTIONAL)):
        dist = DIST_OF.get(module, module).lower()
        assert dist in declared, f"{module} is imported but {dist} is not a core dependency"
    used = {DIST_OF.get(m, m).lower() for m in imported} | set(USED_INDIRECTLY)
    assert declared - used == set(), f"declared but never imported: {sorted(declared - used)}"
    # only transitive: h5py (through h5netcdf's extra) and the arviz meta-package (through PyMC)
    assert not {"h5py", "arviz", "dask"} & declared
    # recent h5netcdf (1.8) does not depend on h5py: without the extra a fresh install cannot
    # write or read a single netCDF file
    assert any(r.replace(" ", "").startswith("h5netcdf[h5py]") for r in _project()["dependencies"])
    extras = _project()["optional-dependencies"]
    assert {"dask", "notebooks", "docs", "test", "hub"} <= set(extras)
    assert any(_name(r) == "jupyter" for r in extras["notebooks"])
    # CI installs .[test]: it must bring what the Dask, notebook, ArviZ-plot and docs tests need
    test_extra = {_name(r) for r in extras["test"]}
    assert {"dask", "jupytext", "nbclient", "arviz-plots", "mkdocs", "mkdocstrings"} <= test_extra


def test_licence_file_is_mit_as_pyproject_says():
    assert _project()["license"] == "MIT" and _project()["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_environment_yml_is_for_users():
    env = (ROOT / "environment.yml").read_text()
    deps = [line for line in env.splitlines() if line.strip().startswith("-")]
    assert not [d for d in deps if "[test]" in d or "pytest" in d], deps
    assert re.search(r"^\s*-\s*-e \.\s*$", env, flags=re.MULTILINE)


def test_default_configuration_ships_with_the_package_and_is_found_by_name(tmp_path, monkeypatch):
    from prism_stats.pipeline.config import ConfigError, config_dirs, find_config, load_config

    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert build["targets"]["wheel"]["force-include"]["configs"] == "prism_stats/_configs"
    assert [d.name for d in config_dirs()][-1] == "_configs"
    monkeypatch.chdir(tmp_path)  # found outside the checkout's working directory too
    assert find_config("run") == ROOT / "configs" / "run.toml"
    assert load_config("run").to_dict() == load_config(ROOT / "configs" / "run.toml").to_dict()
    with pytest.raises(ConfigError, match="no configuration named 'nope'"):
        find_config("nope")


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("pip") and not (ROOT / ".venv").exists(), reason="no pip")
def test_the_wheel_carries_specs_configs_and_the_licence(tmp_path):
    pytest.importorskip("hatchling", reason="the build backend (test extra) is not installed")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next(tmp_path.glob("prism_stats-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "prism_stats/_specs/ratings.toml" in names
    assert "prism_stats/_configs/run.toml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
                          str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                         capture_output=True, text=True, timeout=300, check=False, env=env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    page = (tmp_path / "site" / "api" / "model" / "index.html").read_text()
    assert 'id="prism_stats.model.fit.fit"' in page and 'id="prism_stats.model.Run"' in page
