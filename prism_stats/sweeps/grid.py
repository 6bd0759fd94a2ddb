"""The grid of a specification sweep: its axes and points, read from ``models/grids/*.toml``.

A grid is a base spec plus axes of alternative choices (spec fields, ``priors.*``,
``pooling.*``, ``parameterisation.*`` and the census harmonisation); :func:`load_grid`
reads and checks it (every error names the file and the axis) and expands the points
(:class:`GridPoint`), each resolved to a spec by :func:`resolve_point`.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import sha256_json
from ..census import HARMONISATIONS

# The model, poststrat, welfare, data and synth layers are imported inside the task
# functions: importing prism_stats.sweeps must not load PyMC, because a Dask worker
# first sets its own compile directory (see prism_stats.sweeps.execution).

#: Spec fields that can be grid axes (besides priors.*, pooling.*, parameterisation.*).
SPEC_AXES: tuple[str, ...] = ("family", "turns", "subset", "country", "demographics",
                              "llm_interactions", "conversation_type")
#: Dict-valued spec fields whose keys can be axes as ``<field>.<key>``.
SPEC_DICT_AXES: tuple[str, ...] = ("priors", "pooling", "parameterisation")
#: Axes that change the post-stratification, not the fit.
POSTSTRAT_AXES: tuple[str, ...] = ("harmonisation",)
DEFAULT_SEED = 20240422


class GridError(ValueError):
    """A grid file is malformed; the message names the file and the key or point."""


# --- the grid -----------------------------------------------------------------------------

@dataclass(frozen=True)
class GridPoint:
    """One specification of the multiverse.

    Attributes
    ----------
    id : str
        12-hex-digit hash of everything that determines its results.
    choices : dict
        Axis -> value (every axis of the grid; base values where a point leaves one out).
    spec : ModelSpec
        The resolved spec.
    harmonisation : str
    fit_key : str
        Hash of the fit it needs (points differing only in harmonisation share it).
    """

    id: str
    choices: dict[str, Any]
    spec: Any
    harmonisation: str
    fit_key: str


@dataclass
class Grid:
    """A parsed grid file (see module docstring)."""

    name: str
    base: Any
    axes: dict[str, list[Any]]
    explicit: list[dict[str, Any]]
    seed: int = DEFAULT_SEED
    data_folder: str | None = None
    synthetic: int | None = None
    synthetic_seed: int = DEFAULT_SEED
    sampling: dict[str, Any] = field(default_factory=dict)
    countries: tuple[str, ...] = ("uk", "us")
    groups: tuple[str, ...] | None = None
    welfare: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"
    description: str = ""

    @property
    def axis_names(self) -> list[str]:
        """Every axis used by the product or the explicit points, in first-seen order."""
        names = list(self.axes)
        for p in self.explicit:
            names += [k for k in p if k not in names]
        return names

    def sampler_settings(self) -> dict[str, Any]:
        """The base spec's sampling table updated with the grid's."""
        return {**self.base.sampling, **self.sampling}

    def points(self, data_id: str) -> list[GridPoint]:
        """Resolve every point (product of the axes, then explicit points; duplicates
        removed) for data identified by *data_id*."""
        names = self.axis_names
        raw: list[dict[str, Any]] = []
        if self.axes:
            keys = list(self.axes)
            raw += [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.axes.values())]
        raw += [dict(p) for p in self.explicit]
        if not raw:
            raw = [{}]
        sampling = self.sampler_settings()
        out: dict[str, GridPoint] = {}
        for i, choice in enumerate(raw):
            spec, harmonisation = resolve_point(self.base, choice, where=f"{self.source}: point {i + 1} {choice}")
            full = {a: choice.get(a, base_value(self.base, a)) for a in names}
            fit_key = sha256_json({"model": _model_dict(spec), "sampling": sampling, "data": data_id,
                                   "seed": self.seed})[:12]
            pid = sha256_json({"fit": fit_key, "harmonisation": harmonisation,
                               "countries": list(self.countries), "groups": self.groups,
                               "welfare": self.welfare})[:12]
            if pid not in out:
                out[pid] = GridPoint(pid, full, spec, harmonisation, fit_key)
        return list(out.values())


def _model_dict(spec: Any) -> dict[str, Any]:
    d = spec.to_dict()
    for k in ("name", "description", "sampling"):
        d.pop(k, None)
    return d


def base_value(spec: Any, axis: str) -> Any:
    """The base spec's value of *axis* (``"default"`` for the harmonisation)."""
    if axis == "harmonisation":
        return "default"
    if "." in axis:
        head, key = axis.split(".", 1)
        return {"priors": spec.prior, "pooling": spec.pool, "parameterisation": spec.param}[head](key)
    value = getattr(spec, axis)
    return list(value) if isinstance(value, tuple) else value


def check_axis(axis: str, where: str) -> None:
    """Raise :class:`GridError` unless *axis* is a known axis."""
    from ..model.spec import DEFAULT_PARAMETERISATION, DEFAULT_POOLING, DEFAULT_PRIORS

    if axis in SPEC_AXES or axis in POSTSTRAT_AXES:
        return
    head, _, key = axis.partition(".")
    known = {"priors": DEFAULT_PRIORS, "pooling": DEFAULT_POOLING,
             "parameterisation": DEFAULT_PARAMETERISATION}.get(head)
    if known is None or key not in known:
        raise GridError(
            f"{where}: unknown axis {axis!r}; axes are {list(SPEC_AXES + POSTSTRAT_AXES)} or "
            f"priors.<key>, pooling.<key>, parameterisation.<key> with keys of the spec tables"
        )


def resolve_point(base: Any, choice: Mapping[str, Any], where: str) -> tuple[Any, str]:
    """Apply a point's choices to the base spec: ``(spec, harmonisation)``."""
    from ..model.spec import SpecError

    changes: dict[str, Any] = {}
    harmonisation = "default"
    for axis, value in choice.items():
        check_axis(axis, where)
        if axis == "harmonisation":
            if value not in HARMONISATIONS:
                raise GridError(f"{where}: harmonisation must be one of {HARMONISATIONS}, got {value!r}")
            harmonisation = value
        elif "." in axis:
            head, key = axis.split(".", 1)
            changes.setdefault(head, {})[key] = value
        else:
            changes[axis] = value
    try:
        spec = base.replace(**changes) if changes else base
    except SpecError as exc:
        raise GridError(f"{where}: {exc}") from None
    return spec, harmonisation


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid file.

    Raises
    ------
    GridError
        With the file name and the offending key or point.
    """
    from ..model.spec import SpecError, load_spec

    path = Path(path)
    if not path.exists():
        raise GridError(f"grid file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GridError(f"{path}: not valid TOML: {exc}") from None
    known = {"name", "description", "base", "seed", "data", "sampling", "poststrat", "welfare", "axes", "points"}
    unknown = set(raw) - known
    if unknown:
        raise GridError(f"{path}: unknown top-level key(s) {sorted(unknown)} (known: {sorted(known)})")
    base_ref = raw.get("base", "ratings")
    candidate = (path.parent / base_ref) if str(base_ref).endswith(".toml") else None
    try:
        base = load_spec(candidate if candidate is not None and candidate.exists() else base_ref)
    except SpecError as exc:
        raise GridError(f"{path}: base: {exc}") from None

    def table(name: str, keys: set[str]) -> dict[str, Any]:
        t = raw.get(name, {})
        if not isinstance(t, dict):
            raise GridError(f"{path}: [{name}] must be a table")
        bad = set(t) - keys
        if bad:
            raise GridError(f"{path}: unknown key(s) in [{name}]: {sorted(bad)} (known: {sorted(keys)})")
        return t

    data = table("data", {"folder", "synthetic", "synthetic_seed"})
    if "folder" in data and "synthetic" in data:
        raise GridError(f"{path}: [data] has both 'folder' and 'synthetic'; choose one")
    sampling = table("sampling", {"sampler", "chains", "draws", "tune", "target_accept"})
    post = table("poststrat", {"countries", "groups"})
    welfare = table("welfare", {"enabled", "sizes", "skewed_sizes", "pools", "targets", "rules",
                                "replicates", "draws"})
    axes = table("axes", set(raw.get("axes", {})))
    for axis, values in axes.items():
        check_axis(axis, f"{path}: [axes]")
        if not isinstance(values, list) or not values:
            raise GridError(f"{path}: [axes] {axis!r} must be a non-empty list of choices")
    points = raw.get("points", [])
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise GridError(f"{path}: [[points]] must be an array of tables")
    for i, p in enumerate(points):
        for axis in p:
            check_axis(axis, f"{path}: point {i + 1}")
    countries = tuple(post.get("countries", ("uk", "us")))
    bad_c = [c for c in countries if c not in ("uk", "us")]
    if bad_c:
        raise GridError(f"{path}: [poststrat] countries must be 'uk'/'us', got {bad_c}")
    folder = data.get("folder")
    if folder is not None and not Path(folder).is_absolute():
        folder = str((path.parent / folder).resolve())
    grid = Grid(
        name=str(raw.get("name", path.stem)), description=str(raw.get("description", "")),
        base=base, axes={k: list(v) for k, v in axes.items()}, explicit=[dict(p) for p in points],
        seed=int(raw.get("seed", DEFAULT_SEED)), data_folder=folder,
        synthetic=int(data["synthetic"]) if "synthetic" in data else None,
        synthetic_seed=int(data.get("synthetic_seed", DEFAULT_SEED)),
        sampling=dict(sampling), countries=countries,
        groups=tuple(post["groups"]) if "groups" in post else None,
        welfare=dict(welfare), source=str(path),
    )
    grid.points("validation")  # resolve every point now: errors surface before any fit
    return grid
