"""Settings shared by the notebooks: sizes from environment variables, data and a cached fit.

Each notebook runs top to bottom on its own; this keeps their first cell to two lines
and their settings identical. Environment variables (defaults in brackets):
``PRISM_NB_DATA`` (a real release folder; default: the synthetic release),
``PRISM_NB_PARTICIPANTS`` (1500) and ``PRISM_NB_SEED`` (20240422) of the synthetic
release, ``PRISM_NB_CHAINS``/``_DRAWS``/``_TUNE`` (2/1000/1000), ``PRISM_NB_REPLICATES``
(juries per scheme, 1000) and ``PRISM_NB_WORKDIR`` (where data and cached fits are kept;
``<tmp>/prism-stats-notebooks``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import cached_fit, ensure_synthetic


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

    @classmethod
    def from_env(cls) -> NotebookSettings:
        """Settings from the ``PRISM_NB_*`` environment variables."""
        workdir = os.environ.get("PRISM_NB_WORKDIR")
        data = os.environ.get("PRISM_NB_DATA")
        return cls(
            participants=_int("PRISM_NB_PARTICIPANTS", 1500),
            seed=_int("PRISM_NB_SEED", 20240422),
            chains=_int("PRISM_NB_CHAINS", 2),
            draws=_int("PRISM_NB_DRAWS", 1000),
            tune=_int("PRISM_NB_TUNE", 1000),
            replicates=_int("PRISM_NB_REPLICATES", 1000),
            workdir=Path(workdir) if workdir else cls.workdir,
            data=Path(data) if data else None,
        )

    def data_folder(self) -> Path:
        """The release folder: ``PRISM_NB_DATA``, or the synthetic release (written once)."""
        if self.data is not None:
            return self.data
        folder = self.workdir / f"synthetic-{self.participants}-{self.seed}"
        return ensure_synthetic(folder, self.participants, self.seed)

    def fit(self, data: Any, spec: Any = "ratings", **kwargs: Any) -> Any:
        """Fit *spec* with the notebook sampler settings, reusing an identical cached fit."""
        return cached_fit(data, spec, cache_dir=self.workdir / "runs", chains=self.chains,
                          draws=self.draws, tune=self.tune, **kwargs)
