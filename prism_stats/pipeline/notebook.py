"""Settings shared by the notebooks: sizes and folders from environment variables.

Each notebook runs top to bottom on its own and keeps its set-up to a few lines of the
public API (``Run.load`` an existing run folder, or ``fit`` and save one). Environment
variables (defaults in brackets): ``PRISM_NB_RUN`` (a ``prism-stats run``/``demo``
output folder, or a run folder: the notebooks open that run and its data instead of
fitting), ``PRISM_NB_DATA`` (a real release folder; default: the run's data, else the
synthetic release), ``PRISM_NB_PARTICIPANTS`` (1500) and ``PRISM_NB_SEED`` (20240422) of
the synthetic release, ``PRISM_NB_CHAINS``/``_DRAWS``/``_TUNE`` (2/1000/1000),
``PRISM_NB_REPLICATES`` (juries per scheme, 1000) and ``PRISM_NB_WORKDIR`` (where data and
the notebooks' own run folder are kept; ``<tmp>/prism-stats-notebooks``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import ensure_synthetic

#: The files that make a folder a run folder (``prism_stats.model.fit``).
_RUN_FILES = ("posterior.nc", "run.json")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class NotebookSettings:
    """Notebook sizes and folders (see the module docstring for the variables)."""

    participants: int = 1500
    seed: int = 20240422
    chains: int = 2
    draws: int = 1000
    tune: int = 1000
    replicates: int = 1000
    workdir: Path = Path(tempfile.gettempdir()) / "prism-stats-notebooks"
    data: Path | None = None
    run: Path | None = None

    @classmethod
    def from_env(cls) -> NotebookSettings:
        """Settings from the ``PRISM_NB_*`` environment variables."""
        workdir = os.environ.get("PRISM_NB_WORKDIR")
        data = os.environ.get("PRISM_NB_DATA")
        run = os.environ.get("PRISM_NB_RUN")
        return cls(
            participants=_int("PRISM_NB_PARTICIPANTS", 1500),
            seed=_int("PRISM_NB_SEED", 20240422),
            chains=_int("PRISM_NB_CHAINS", 2),
            draws=_int("PRISM_NB_DRAWS", 1000),
            tune=_int("PRISM_NB_TUNE", 1000),
            replicates=_int("PRISM_NB_REPLICATES", 1000),
            workdir=Path(workdir) if workdir else cls.workdir,
            data=Path(data) if data else None,
            run=Path(run).expanduser() if run else None,
        )

    def run_folder(self) -> Path:
        """The run folder the notebooks open: ``PRISM_NB_RUN`` (its ``run/`` sub-folder for a
        pipeline output), else the folder notebook 02 saves its fit in (named by the sizes)."""
        if self.run is not None:
            nested = self.run / "run"
            return nested if all((nested / f).is_file() for f in _RUN_FILES) else self.run
        return self.workdir / "runs" / (f"ratings-{self.participants}-{self.seed}-"
                                        f"{self.chains}x{self.draws}-{self.tune}")

    def data_folder(self, run: Any = None) -> Path:
        """The release: ``PRISM_NB_DATA``; else the data of the run (*run*, or the run folder
        when it exists); else the synthetic release (written once)."""
        if self.data is not None:
            return self.data
        folder = getattr(run, "data_folder", None)
        meta = self.run_folder() / "run.json"
        if folder is None and meta.is_file():
            folder = (json.loads(meta.read_text(encoding="utf-8")).get("data") or {}).get("folder")
        if folder and Path(folder).is_dir():
            return Path(folder)
        synthetic = self.workdir / f"synthetic-{self.participants}-{self.seed}"
        return ensure_synthetic(synthetic, self.participants, self.seed)
