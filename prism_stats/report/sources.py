"""Where a supplement's inputs are: a pipeline or run folder, and the outputs it records.

:func:`locate` finds the run folder (and the pipeline output folder around it, with its
manifest) from either; :class:`Sources` resolves an input file, using in a pipeline
folder only the outputs of stages the manifest records as done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import read_manifest
from ..vocab import COUNTRIES_MRP


class SupplementError(ValueError):
    """The supplement cannot be built from the given folder (the message says why)."""


# --- where the inputs are ------------------------------------------------------------------------


@dataclass
class Sources:
    """The inputs of a supplement.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    root : Path or None
        The pipeline output folder, when the run belongs to one.
    manifest : dict or None
        The pipeline manifest.
    run_meta : dict
        ``run.json``.
    """

    run_dir: Path
    root: Path | None = None
    manifest: dict[str, Any] | None = None
    run_meta: dict[str, Any] = field(default_factory=dict)

    def current_outputs(self) -> set[Path] | None:
        """Outputs of the stages recorded as done (``None`` outside a pipeline)."""
        if self.manifest is None or self.root is None:
            return None
        return {(self.root / p).resolve() for rec in self.manifest.get("stages", {}).values()
                if rec.get("status") == "done" for p in rec.get("outputs", [])}

    def path(self, rel: str, base: Path | None = None) -> Path | None:
        """*rel* under the run folder (or *base*) when it exists and is current."""
        p = (base or self.run_dir) / rel
        if not p.is_file():
            return None
        current = self.current_outputs()
        if current is not None and p.resolve() not in current:
            return None
        return p

    @property
    def data_folder(self) -> Path | None:
        folder = (self.run_meta.get("data") or {}).get("folder")
        if folder is None and self.manifest:
            folder = (self.manifest.get("data") or {}).get("folder")
        return Path(folder) if folder and Path(folder).is_dir() else None

    def countries(self) -> list[str]:
        """Countries with MRP results, in ``vocab.COUNTRIES_MRP`` order."""
        return [c for c in COUNTRIES_MRP if self.path(f"poststrat_{c}.csv") is not None]


def locate(source: str | Path) -> Sources:
    """Find the run folder (and the pipeline around it) from a pipeline or run folder."""
    from ..model.fit import META_FILE  # local: the model layer loads PyMC (~4 s)

    source = Path(source).expanduser().resolve()
    if not source.is_dir():
        raise SupplementError(f"{source} is not a folder")
    manifest = read_manifest(source)
    if manifest is not None:
        root, run_dir = source, source / "run"
    else:
        run_dir = source
        parent_manifest = read_manifest(source.parent)
        root, manifest = (source.parent, parent_manifest) if (
            parent_manifest is not None and source.name == "run") else (None, None)
    meta_path = run_dir / META_FILE
    if not meta_path.is_file():
        raise SupplementError(
            f"{source} is neither a pipeline output folder nor a run folder (no {META_FILE}"
            f"{' in run/' if root is not None else ''}); run `prism-stats run` or `prism-stats fit` first")
    try:
        run_meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SupplementError(f"{meta_path}: not valid JSON ({exc})") from None
    return Sources(run_dir=run_dir, root=root, manifest=manifest, run_meta=run_meta)
