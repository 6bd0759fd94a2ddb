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
