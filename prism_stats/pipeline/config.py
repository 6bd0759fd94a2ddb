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
    draws = 3000
    tune = 1000
    seed = 20240422

    [run]
    allow_unconverged = false # true: go on after a failed convergence gate (results marked)

    countries = ["uk", "us"]  # (top level) post-stratification / welfare / compare countries

Each stage's fingerprint hashes the sections it uses (:meth:`PipelineConfig.section`),
so a change to, say, ``[welfare]`` recomputes the welfare stages and the supplement
only.
"""

from __future__ import annotations

import copy
import tomllib
import warnings
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
    "run": {
        # false: stop before MRP and welfare (exit 3) when the convergence gate fails;
        # true: go on, and mark every downstream result as from an unconverged fit.
        "allow_unconverged": False,
    },
    "diagnostics": {
        "ppc_draws": 200,
        "seed": 0,
        "loo": True,
        "crosscheck": True,  # statsmodels MixedLM beside the Bayesian LLM effects
        # Deprecated (ignored): the pipeline now stops on a failed gate unless
        # [run] allow_unconverged = true. Kept so that older files still load.
        "strict": None,
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
        "replicates": 500,  # bootstrap replicates (se = "bootstrap"); formerly n_boot
        "seed": 20240101,
    },
    "rankings": {  # preference diversity (prism_stats.rankings; stages rankings, stated, rankings_model)
        "enabled": True,
        "by": ["gender", "age", "ethnicity", "religion", "region", "conversation_type", "rep"],
        "min_group_size": 20,  # smaller groups are reported as too small, not ranked
        "replicates": 1000,  # participant-bootstrap replicates per group
        "seed": 0,
        "choice_model": True,  # fit the hierarchical choice model (rankings_model stage)
        "stated_model": True,  # fit the stated-vs-revealed model (stated stage)
        "chains": 2,  # sampling of the choice and stated-vs-revealed models
        "draws": 500,
        "tune": 500,
    },
    "supplement": {
        "dpi": 150,
        "formats": ["png", "pdf"],
        "welfare_rules": None,  # None: every rule of the welfare stage
        "recovery_benchmark": None,  # path of benchmarks/recovery.py --csv: adds its table and figure
    },
    "demo": {
        "participants": 1500,
        "seed": 20240422,
    },
    "topics": {
        "enabled": False,  # the dialogue-diversity stage (prism_stats.topics)
        "embeddings": "tfidf",  # or "sentence-transformers" (the [topics] extra)
        "sentence_model": None,  # name or local folder (default all-mpnet-base-v2)
        "assignments": None,  # CSV conversation -> topic: skip discovery
        "topic_labels": None,  # CSV of the known topics the assignments must use
        "seed": 42,
        "correction": "holm",  # "holm", "bh", "bonferroni" or "none"
        "alpha": 0.01,
        "model": True,  # the hierarchical model
        "chains": 2,
        "draws": 300,
        "tune": 300,
        "neighbourhoods": True,
    },
}
#: Renamed keys: (section, old) -> new; the old name is still read, with a warning.
RENAMED: dict[tuple[str, str], str] = {("compare", "n_boot"): "replicates"}
#: Top-level scalar keys (not sections).
TOP_LEVEL: dict[str, Any] = {"countries": ["uk", "us"]}

#: Keys that do not change results (left out of fingerprints).
_UNHASHED: dict[str, tuple[str, ...]] = {"data": ("folder",), "diagnostics": ("strict",)}

_CHOICES: dict[tuple[str, str], tuple[Any, ...]] = {
    ("sampling", "sampler"): ("nutpie", "pymc", None),
    ("welfare", "method"): ("model", "design", "both"),
    ("compare", "se"): ("linearisation", "bootstrap", "none"),
    ("topics", "embeddings"): ("tfidf", "sentence-transformers"),
    ("topics", "correction"): ("holm", "bh", "bonferroni", "none"),
}


def _country(value: Any) -> Any:
    """The code of an accepted country spelling; anything else unchanged (validate names it)."""
    try:
        return vocab.mrp_country(value) if isinstance(value, str) else value
    except ValueError:
        return value


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
            given = _renamed(name, given, source)
            bad = set(given) - set(defaults)
            if bad:
                raise ConfigError(f"{source}: unknown key(s) in [{name}]: {sorted(bad)} "
                                  f"(known: {sorted(defaults)})")
            sections[name] = _merge(defaults, given)
        folder = sections["data"]["folder"]
        if folder is not None and base_dir is not None and not Path(folder).expanduser().is_absolute():
            sections["data"]["folder"] = str((Path(base_dir) / folder).resolve())
        for key in ("assignments", "topic_labels"):
            path = sections["topics"][key]
            if isinstance(path, str) and base_dir is not None and not Path(path).is_absolute():
                sections["topics"][key] = str((Path(base_dir) / path).resolve())
        spec = sections["model"]["spec"]
        if (base_dir is not None and isinstance(spec, str) and spec.endswith(".toml")
                and not Path(spec).is_absolute()):
            sections["model"]["spec"] = str((Path(base_dir) / spec).resolve())
        countries = raw.get("countries", TOP_LEVEL["countries"])
        if isinstance(countries, list):  # "UK", "GBR" and "uk" alike
            countries = [_country(c) for c in countries]
        return cls(sections=sections, countries=countries, source=source)

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
                         ("welfare", "seed"), ("compare", "seed"), ("demo", "seed"),
                         ("topics", "seed")):
            v = s[sec][key]
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                fail(f"{sec}.{key} must be a non-negative integer, got {v!r}")
        for sec, key in (("diagnostics", "ppc_draws"), ("welfare", "replicates"),
                         ("welfare", "draws"), ("compare", "replicates"), ("supplement", "dpi"),
                         ("demo", "participants"), ("topics", "chains"), ("topics", "draws"),
                         ("topics", "tune")):
            v = s[sec][key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                fail(f"{sec}.{key} must be a positive integer, got {v!r}")
        r = s["rankings"]
        for key in ("min_group_size", "chains", "draws", "tune"):
            if not isinstance(r[key], int) or isinstance(r[key], bool) or r[key] < 1:
                fail(f"rankings.{key} must be a positive integer, got {r[key]!r}")
        for key in ("replicates", "seed"):
            if not isinstance(r[key], int) or isinstance(r[key], bool) or r[key] < 0:
                fail(f"rankings.{key} must be a non-negative integer, got {r[key]!r}")
        if not isinstance(r["by"], list) or not all(isinstance(b, str) and b for b in r["by"]):
            fail(f"rankings.by must be a list of grouping names, got {r['by']!r}")
        if s["diagnostics"]["strict"] is not None and not isinstance(s["diagnostics"]["strict"], bool):
            fail(f"diagnostics.strict must be true or false, got {s['diagnostics']['strict']!r}")
        for sec, key in (("data", "strict"), ("diagnostics", "loo"), ("diagnostics", "crosscheck"),
                         ("run", "allow_unconverged"), ("welfare", "imputed"), ("rankings", "enabled"),
                         ("rankings", "choice_model"), ("rankings", "stated_model"),
                         ("topics", "enabled"), ("topics", "model"), ("topics", "neighbourhoods")):
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
        if not (isinstance(s["topics"]["alpha"], float) and 0 < s["topics"]["alpha"] < 1):
            fail(f"topics.alpha must be a number in (0, 1), got {s['topics']['alpha']!r}")
        fmts = s["supplement"]["formats"]
        if not isinstance(fmts, list) or not fmts or any(f not in ("png", "pdf", "svg") for f in fmts):
            fail(f"supplement.formats must be a non-empty list of png/pdf/svg, got {fmts!r}")
        wr = s["supplement"]["welfare_rules"]
        if wr is not None and (not isinstance(wr, list) or any(r not in RULES for r in wr)):
            fail(f"supplement.welfare_rules must be a list of {list(RULES)}, got {wr!r}")
        rb = s["supplement"]["recovery_benchmark"]
        if rb is not None and not (isinstance(rb, str) and rb.strip()):
            fail(f"supplement.recovery_benchmark must be the path of a CSV file, got {rb!r}")

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


def _renamed(section: str, given: Mapping[str, Any], source: str) -> dict[str, Any]:
    """*given* with renamed keys under their new names (the old ones warn)."""
    out = dict(given)
    for (sec, old), new in RENAMED.items():
        if sec == section and old in out:
            if new in out:
                raise ConfigError(f"{source}: [{section}] has both {old!r} (renamed) and {new!r}")
            warnings.warn(f"{source}: [{section}] {old} is now called {new}", DeprecationWarning, stacklevel=3)
            out[new] = out.pop(old)
    return out


def config_dirs() -> list[Path]:
    """Folders searched for configurations by name: ``./configs``, the checkout's
    ``configs/`` and the copy packaged inside wheels (``prism_stats/_configs``)."""
    pkg = Path(__file__).resolve().parents[1]
    return [Path.cwd() / "configs", pkg.parent / "configs", pkg / "_configs"]


def find_config(name: str | Path) -> Path:
    """A configuration file: *name* itself when it is a file, else ``<name>.toml`` in
    :func:`config_dirs` (``"run"`` finds the documented defaults, ``configs/run.toml``)."""
    path = Path(name).expanduser()
    if path.is_file() or path.suffix or len(path.parts) > 1:
        return path  # a path: from_toml says clearly when it does not exist
    for d in config_dirs():
        candidate = d / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no configuration named {str(name)!r} (searched "
                      f"{', '.join(str(d) for d in config_dirs())}); give a TOML path")


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """The configuration in *path* (a TOML path, or a name such as ``"run"`` found by
    :func:`find_config`), or the defaults when *path* is ``None``."""
    return PipelineConfig() if path is None else PipelineConfig.from_toml(find_config(path))
