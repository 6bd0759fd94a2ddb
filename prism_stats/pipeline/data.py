"""Building blocks around the data and the fit: release hash, synthetic default, cached fits.

A cheap release hash, the synthetic default dataset made once, and fits cached by their
inputs.

These are what the pipeline stages use, and what notebooks and scripts can use to avoid
regenerating data or refitting a model whose inputs have not changed.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import content_sha256, sha256_json, write_json_atomic

# The analysis layers (data, model, poststrat, welfare, comparators, report) are imported
# inside the functions that use them: `import prism_stats.pipeline` then takes ~0.3 s
# instead of ~5 s (the model layer loads PyMC), and a fully reused pipeline never loads them.

#: Marker written beside a synthetic release made by :func:`ensure_synthetic`.
SYNTH_MARKER = ".prism-synth.json"
#: Packages whose versions decide whether a cached fit is still valid.
SAMPLING_PACKAGES: tuple[str, ...] = ("pymc", "pytensor", "nutpie", "numpy")


def release_hash(folder: str | Path) -> str:
    """The data hash of a release folder without parsing it.

    Equal to ``load_prism(folder).data_hash``: the SHA-256 over the (decompressed)
    content hashes of the release files present (``metadata.jsonl`` included when there).

    Raises
    ------
    prism_stats.data.PrismDataNotFound
        When the folder or a required file is missing (the message says how to get them).
    """
    from ..data import PrismDataNotFound, find_release_files, how_to_obtain, schema

    found, _ = find_release_files(folder)
    required = ("survey", "conversations", "utterances")
    missing = [schema.FILE_BY_ROLE[r].filename for r in required if r not in found]
    if missing:
        raise PrismDataNotFound(how_to_obtain(missing, folder))
    return sha256_json({schema.FILE_BY_ROLE[r].filename: content_sha256(p) for r, p in found.items()})


def ensure_synthetic(folder: str | Path, participants: int = 1500, seed: int = 20240422) -> Path:
    """A synthetic PRISM release in *folder*, generated only when not already there.

    The release (with ``truth/``) is written by :func:`prism_stats.synth.synthesize`;
    a marker records its size, seed, package version and data hash, and a later call
    with the same settings whose files still hash the same returns at once.

    Returns
    -------
    Path
        The release folder.
    """
    from ..synth import synthesize

    folder = Path(folder)
    settings = {"participants": int(participants), "seed": int(seed), "prism_stats": __version__}
    marker = folder / SYNTH_MARKER
    if marker.is_file() and _marker_matches(marker, folder, settings):
        return folder
    synthesize(folder, participants, seed)
    write_json_atomic(marker, {"settings": settings, "data_hash": release_hash(folder)})
    return folder


def _marker_matches(marker: Path, folder: Path, settings: dict[str, Any]) -> bool:
    """Whether *folder* still holds the release the marker describes (else regenerate)."""
    from ..data import PrismDataError

    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        return recorded.get("settings") == settings and recorded.get("data_hash") == release_hash(folder)
    except (OSError, ValueError, AttributeError, PrismDataError):  # unreadable or files missing
        return False


def fit_key(data_hash: str, spec: Any, sampling: dict[str, Any]) -> str:
    """The cache key of a fit: data, model, effective sampler settings and versions."""
    versions = {}
    for name in SAMPLING_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return sha256_json({"data_hash": data_hash, "model_hash": spec.model_hash(),
                        "sampling": sampling, "prism_stats": __version__, "versions": versions})


def cached_fit(
    data: Any,
    spec: Any = "ratings",
    *,
    cache_dir: str | Path,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    progress: bool = True,
) -> Any:
    """Fit a spec, or reopen an earlier identical fit from *cache_dir*.

    The run folder is ``cache_dir/<spec name>-<key>``, where the key hashes the data
    hash, the model (:meth:`ModelSpec.model_hash`), the effective sampler settings and
    the versions of prism-stats and the sampling stack; a complete folder with that key
    is reopened with :meth:`Run.load` instead of refitting.

    Returns
    -------
    prism_stats.model.Run
    """
    from ..model import Run, fit, load_spec
    from ..model.fit import META_FILE, RunError

    spec = load_spec(spec)
    sampling = dict(spec.sampling)
    overrides = {"chains": chains, "draws": draws, "tune": tune, "seed": seed, "sampler": sampler}
    sampling.update({k: v for k, v in overrides.items() if v is not None})
    key = fit_key(data.data_hash, spec, sampling)
    folder = Path(cache_dir) / f"{spec.name}-{key[:16]}"
    if (folder / META_FILE).is_file():
        try:
            run = Run.load(folder)
            if run.meta.get("data", {}).get("data_hash") == data.data_hash:
                return run
        except (RunError, OSError, ValueError, KeyError):
            pass  # incomplete or unreadable: refit below
    return fit(data, spec, chains=sampling.get("chains"), draws=sampling.get("draws"),
               tune=sampling.get("tune"), seed=sampling.get("seed"), sampler=sampling.get("sampler"),
               progress=progress, out=folder)
