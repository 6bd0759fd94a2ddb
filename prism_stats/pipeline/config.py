"""Pipeline configuration: a TOML file (``run.toml``) read into :class:`PipelineConfig`.

Every section is optional; what a file leaves out takes the defaults below, and the
``prism-stats run`` flags override both. Unknown sections or keys are errors that name
the file and the key (a typo must not silently fall back to a default). Relative paths
(``data.folder``) are resolved against the folder of the config file.

Example (``configs/run.toml`` in the repository)::

    [data]
    folder = "data/prism"     # release folder (or pass --data)
    strict = true             # strict: invalid rows are an error; false: excluded, counted

    [model]
    spec = "ratings"          # a spec name in models/ or a TOML path

    [sampling]
    chains = 2
    draws = 2000
    tune = 1000
    seed = 20240422

    countries = ["uk", "us"]  # (top level) post-stratification / welfare / compare countries

Each stage's fingerprint hashes the sections it uses (:meth:`PipelineConfig.section`),
so a change to, say, ``[welfare]`` recomputes the welfare stages and the supplement
only.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import vocab

# The analysis layers (data, model, poststrat, welfare, comparators, report) are imported
# inside the functions that use them: `import prism_stats.pipeline` then takes ~0.3 s
# instead of ~5 s (the model layer loads PyMC), and a fully reused pipeline never loads them.


class ConfigError(ValueError):
    """The pipeline configuration is malformed; the message names the file and the key."""


#: Defaults of every section (also the documentation of the keys).
DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "folder": None,
        "strict": True,
    },
    "model": {
        "spec": "ratings",
    },
    "sampling": {
        # None: the spec's own [sampling] value.
        "sampler": None,
        "chains": None,
        "draws": None,
        "tune": None,
        "seed": None,
        "target_accept": None,
    },
    "diagnostics": {
        "ppc_draws": 200,
        "seed": 0,
        "loo": True,
        "crosscheck": True,  # statsmodels MixedLM beside the Bayesian LLM effects
        "strict": False,  # stop the pipeline (exit 3) when the convergence gate fails
    },
    "poststrat": {
        "harmonisation": "default",
        "seed": 0,
    },
    "welfare": {
        "method": "both",  # "model", "design" or "both"
        "replicates": 1000,
        "sizes": [10, 20, 50, 100],
        "skewed_sizes": [100],
        "pools": ["representative", "male", "white", "over45"],
        "rules": ["mean", "chosen", "veto"],
        "targets": ["all", "nonmale", "nonwhite", "under45"],
        "seed": 1,
        "imputed": False,  # design-based: chained-equations imputation first (11c)
        "draws": 200,  # model-based: posterior draws used
        # model-based: "full" (every juror rates every LLM) and/or "matched" (each juror
        # rates only the LLMs a participant of the design saw; exposure_matched/ folder)
        "exposure": ["full", "matched"],
    },
    "compare": {
        "harmonisation": "default",
        "bounds": None,  # [lo, hi] trimming bounds of the raking factors
        "se": "linearisation",
        "n_boot": 500,
        "seed": 20240101,
    },
    "supplement": {
        "dpi": 150,
        "formats": ["png", "pdf"],
        "welfare_rules": None,  # None: every rule of the welfare stage
    },
    "demo": {
        "participants": 1500,
        "seed": 20240422,
    },
}
#: Top-level scalar keys (not sections).
TOP_LEVEL: dict[str, Any] = {"countries": ["uk", "us"]}

#: Keys that do not change results (left out of fingerprints).
_UNHASHED: dict[str, tuple[str, ...]] = {"data": ("folder",)}

_CHOICES: dict[tuple[str, str], tuple[Any, ...]] = {
    ("sampling", "sampler"): ("nutpie", "pymc", None),
    ("welfare", "method"): ("model", "design", "both"),
    ("compare", "se"): ("linearisation", "bootstrap", "none"),
}


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = copy.deepcopy(value)
    return out


@dataclass
class PipelineConfig:
    """The resolved configuration of a pipeline run.

    Attributes
    ----------
    sections : dict
        ``{section: {key: value}}`` for every section of :data:`DEFAULTS`, complete.
    countries : list of str
        Post-stratification, welfare and comparison countries (``"uk"``, ``"us"``).
    source : str
        Where the configuration was read from (``"<defaults>"`` when from no file).
    """

    sections: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    countries: list[str] = field(default_factory=lambda: list(TOP_LEVEL["countries"]))
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        self.validate()

    # -- reading -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "<memory>",
                  base_dir: str | Path | None = None) -> PipelineConfig:
        """Build a configuration from the nested TOML layout; missing keys get defaults."""
        unknown = set(raw) - set(DEFAULTS) - set(TOP_LEVEL)
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) or key(s) {sorted(unknown)} "
                              f"(known: {sorted(DEFAULTS) + sorted(TOP_LEVEL)})")
        sections = {}
        for name, defaults in DEFAULTS.items():
            given = raw.get(name, {})
            if not isinstance(given, Mapping):
                raise ConfigError(f"{source}: [{name}] must be a table, got {given!r}")
            bad = set(given) - set(defaults)
            if bad:
                raise ConfigError(f"{source}: unknown key(s) in [{name}]: {sorted(bad)} "
                                  f"(known: {sorted(defaults)})")
            sections[name] = _merge(defaults, given)
        folder = sections["data"]["folder"]
        if folder is not None and base_dir is not None and not Path(folder).expanduser().is_absolute():
            sections["data"]["folder"] = str((Path(base_dir) / folder).resolve())
        spec = sections["model"]["spec"]
        if (base_dir is not None and isinstance(spec, str) and spec.endswith(".toml")
                and not Path(spec).is_absolute()):
            sections["model"]["spec"] = str((Path(base_dir) / spec).resolve())
        countries = raw.get("countries", TOP_LEVEL["countries"])
        return cls(sections=sections, countries=list(countries) if isinstance(countries, list)
                   else countries, source=source)

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read ``run.toml``; relative paths in it are relative to its folder."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc})") from None
        return cls.from_dict(raw, source=str(path), base_dir=path.parent)

    # -- checks ------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` on any invalid value (names the section and key)."""
        where = self.source

        def fail(msg: str) -> None:
            raise ConfigError(f"{where}: {msg}")

        if not isinstance(self.countries, list) or not self.countries:
            fail(f"countries must be a non-empty list of {vocab.COUNTRIES_MRP}, got {self.countries!r}")
        for c in self.countries:
            if c not in vocab.COUNTRIES_MRP:
                fail(f"countries: unknown country {c!r} (choose from {vocab.COUNTRIES_MRP})")
        if len(set(self.countries)) != len(self.countries):
            fail(f"countries must not repeat: {self.countries}")
        for (sec, key), allowed in _CHOICES.items():
            value = self.sections[sec][key]
            if value not in allowed:
                fail(f"{sec}.{key} must be one of {[a for a in allowed if a is not None]}, got {value!r}")
        s = self.sections
        for key in ("chains", "draws", "tune"):
            v = s["sampling"][key]
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                fail(f"sampling.{key} must be a positive integer, got {v!r}")
        ta = s["sampling"]["target_accept"]
        if ta is not None and not (isinstance(ta, (int, float)) and 0 < ta < 1):
            fail(f"sampling.target_accept must be in (0, 1), got {ta!r}")
        for sec, key in (("sampling", "seed"), ("diagnostics", "seed"), ("poststrat", "seed"),
                         ("welfare", "seed"), ("compare", "seed"), ("demo", "seed")):
            v = s[sec][key]
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                fail(f"{sec}.{key} must be a non-negative integer, got {v!r}")
        for sec, key in (("diagnostics", "ppc_draws"), ("welfare", "replicates"),
                         ("welfare", "draws"), ("compare", "n_boot"), ("supplement", "dpi"),
                         ("demo", "participants")):
            v = s[sec][key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                fail(f"{sec}.{key} must be a positive integer, got {v!r}")
        for sec, key in (("data", "strict"), ("diagnostics", "loo"), ("diagnostics", "crosscheck"),
                         ("diagnostics", "strict"), ("welfare", "imputed")):
            if not isinstance(s[sec][key], bool):
                fail(f"{sec}.{key} must be true or false, got {s[sec][key]!r}")
        if not isinstance(s["model"]["spec"], str) or not s["model"]["spec"]:
            fail(f"model.spec must be a spec name or a TOML path, got {s['model']['spec']!r}")
        folder = s["data"]["folder"]
        if folder is not None and not isinstance(folder, str):
            fail(f"data.folder must be a path string, got {folder!r}")
        w = s["welfare"]
        from ..welfare import EXPOSURES, POOLS, RULES, TARGETS

        for key, allowed in (("pools", POOLS), ("rules", RULES), ("targets", TARGETS),
                             ("exposure", EXPOSURES)):
            values = w[key]
            if not isinstance(values, list) or not values:
                fail(f"welfare.{key} must be a non-empty list, got {values!r}")
            bad = [v for v in values if v not in allowed]
            if bad:
                fail(f"welfare.{key}: unknown value(s) {bad} (choose from {list(allowed)})")
        for key in ("sizes", "skewed_sizes"):
            values = w[key]
            if (not isinstance(values, list) or not values
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)):
                fail(f"welfare.{key} must be a non-empty list of positive integers, got {values!r}")
        bounds = s["compare"]["bounds"]
        if bounds is not None and not (
                isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(b, (int, float)) for b in bounds) and 0 < bounds[0] < 1 < bounds[1]):
            fail(f"compare.bounds must be [lo, hi] with 0 < lo < 1 < hi, got {bounds!r}")
        fmts = s["supplement"]["formats"]
        if not isinstance(fmts, list) or not fmts or any(f not in ("png", "pdf", "svg") for f in fmts):
            fail(f"supplement.formats must be a non-empty list of png/pdf/svg, got {fmts!r}")
        wr = s["supplement"]["welfare_rules"]
        if wr is not None and (not isinstance(wr, list) or any(r not in RULES for r in wr)):
            fail(f"supplement.welfare_rules must be a list of {list(RULES)}, got {wr!r}")

    # -- views -------------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section (what a stage's fingerprint hashes)."""
        return copy.deepcopy(self.sections[name])

    def fingerprint_section(self, name: str) -> dict[str, Any]:
        """The part of a section that decides results (hashed into stage fingerprints).

        The data folder's *location* is left out: the data hash stands for its content,
        so moving a release does not invalidate finished stages.
        """
        sec = self.section(name)
        for key in _UNHASHED.get(name, ()):
            sec.pop(key, None)
        return sec

    def to_dict(self) -> dict[str, Any]:
        """The complete configuration in the TOML layout (recorded in the manifest)."""
        return {"countries": list(self.countries), **copy.deepcopy(self.sections)}

    def replace(self, countries: list[str] | None = None, **overrides: Mapping[str, Any]) -> PipelineConfig:
        """A copy with section values overridden (``None`` values are ignored).

        Example: ``cfg.replace(sampling={"draws": 200}, welfare={"replicates": 100})``.
        """
        sections = copy.deepcopy(self.sections)
        for name, values in overrides.items():
            if name not in sections:
                raise ConfigError(f"unknown section {name!r}")
            for key, value in values.items():
                if key not in sections[name]:
                    raise ConfigError(f"unknown key {name}.{key}")
                if value is not None:
                    sections[name][key] = value
        return PipelineConfig(sections=sections,
                              countries=list(countries) if countries else list(self.countries),
                              source=self.source)


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """The configuration in *path*, or the defaults when *path* is ``None``."""
    return PipelineConfig() if path is None else PipelineConfig.from_toml(path)
