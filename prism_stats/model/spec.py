"""Model specifications: configuration as data.

A specification is a TOML file in the top-level ``models/`` folder (the CLI, the notebooks
and the sweeps share them). :func:`load_spec` reads one by name or path and validates it
into a :class:`ModelSpec`; :meth:`ModelSpec.replace` derives variants (sweeps, SBC).

Example (``models/ratings.toml``)::

    name = "ratings"
    [data]
    turns = "opening"        # "opening" or "all"
    subset = "all"           # "all" or "balanced"
    [likelihood]
    family = "gaussian"      # "gaussian" or "censored" (at 1 and 100)
    [effects]
    country = "reside_country"
    demographics = ["age", "gender", "ethnicity"]
    llm_interactions = ["age", "gender", "ethnicity"]
    [priors]
    ...
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import sha256_json

#: Demographic factors a spec may use, and the tidy ``participants`` column behind each.
DEMOGRAPHIC_COLUMNS: dict[str, str] = {
    "age": "age",
    "gender": "gender",
    "ethnicity": "ethnicity",
    "education": "education",
    "religion": "religion_simplified",
    "english": "english",
}
#: Demographic factors the census frames carry (usable for post-stratification cells).
CENSUS_FACTORS: tuple[str, ...] = ("age", "gender", "ethnicity")
#: Country-level grouping variables a spec may use (tidy ``participants`` columns).
COUNTRY_COLUMNS: tuple[str, ...] = ("reside_country", "special_region")
#: LLM x residence effects: "none"; "uk_us_rest" (the two post-stratification countries and
#: the rest of the world); "country" (every residence country, partially pooled); "region" /
#: "subregion" (countries within UN M49 regions / subregions, both levels pooled).
LLM_RESIDENCE: tuple[str, ...] = ("none", "uk_us_rest", "country", "region", "subregion")

FAMILIES: tuple[str, ...] = ("gaussian", "censored")
#: "mixed" (country, demographic, interaction): levels holding >= 5% of the ratings centred,
#: the rest non-centred; "marginalized" (participants, Gaussian family): integrated out exactly.
PARAMETERISATIONS: tuple[str, ...] = ("centered", "noncentered", "marginalized", "mixed")

DEFAULT_PRIORS: dict[str, float] = {
    # Weakly informative on the 1-100 rating scale (checked by a prior predictive plot).
    "intercept_mu": 60.0,
    "intercept_sigma": 20.0,
    "sigma": 30.0,  # HalfNormal scale of the residual sd
    "sigma_participant": 20.0,
    "sigma_llm": 10.0,
    "sigma_country": 8.0,
    "sigma_ctype": 8.0,
    "sigma_demographic": 8.0,
    "sigma_interaction": 4.0,
    "turn_effect": 10.0,
    # LLM x residence (region and country within region), LLM x conversation type
    "sigma_llm_region": 3.0,
    "sigma_llm_country": 3.0,
    "sigma_llm_ctype": 3.0,
    # rater x LLM taste (sd of a rater's lasting deviation for one LLM), and the sd of the
    # log of the raters' own noise scales (heteroscedastic raters)
    "sigma_rater_llm": 10.0,
    "rater_scale_sd": 0.5,
}
DEFAULT_PARAMETERISATION: dict[str, str] = {
    # Centred where the data pin each level down (LLMs: ~1,400 opening ratings each;
    # conversation types), non-centred where information is at the participant level and
    # thin per level (participants, countries, demographic levels, LLM x level cells).
    # Gaussian family: participant effects integrated out of the likelihood in closed form
    # (exact; 1,500 fewer sampled dimensions) and redrawn from their conditional posterior
    # afterwards. The censored family has no closed form and uses "noncentered" instead.
    "participant": "marginalized",
    "llm": "centered",
    "country": "noncentered",
    "conversation_type": "centered",
    "demographic": "noncentered",
    "interaction": "noncentered",
    "llm_ctype": "centered",
    # LLM x {GBR, USA, rest}: the scale is learnt from 2 x 21 deviations; non-centred stays
    # well mixed when the true deviations are small (a centred funnel otherwise)
    "llm_residence": "noncentered",
}
#: Pooling per effect family: "partial" (a hierarchical scale sigma_x is estimated) or
#: "fixed" (zero-sum effect with the prior scale itself, no hyperparameter). Factors with
#: a handful of levels (demographic main effects, 3 conversation types) cannot inform a
#: scale, and a hierarchical one only adds a funnel; those with many levels are pooled.
DEFAULT_POOLING: dict[str, str] = {
    "llm": "partial",
    "country": "partial",
    "conversation_type": "fixed",
    "demographic": "fixed",
    "interaction": "partial",
    "llm_country": "partial",
    "llm_ctype": "partial",
}
#: "per_llm" (interactions only): each LLM row gets its own multiplier of the scale, so
#: a few strongly polarising LLMs are not shrunk towards the many homogeneous ones;
#: "per_country" (llm_country only): likewise one multiplier per country.
POOLINGS: tuple[str, ...] = ("partial", "fixed", "per_llm", "per_country")

DEFAULT_SAMPLING: dict[str, Any] = {
    "sampler": "nutpie",
    "chains": 2,
    # 2,000 draws: at 1,000 the max R-hat over ~400 scalars (2 chains) and the bulk-ESS of
    # sigma_country sit at the 1.01 / 400 gate (see benchmarks/RESULTS.md)
    "draws": 2000,
    "tune": 1000,
    "seed": 20240422,
    # 0.9: on the PRISM-size data 0.8 left a few divergences in some seeds
    "target_accept": 0.9,
    # nutpie's mass-matrix adaptation: "diag", or "low_rank" for correlated posteriors
    "adaptation": "diag",
}


class SpecError(ValueError):
    """A model specification is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class ModelSpec:
    """A validated rating-model specification.

    Attributes
    ----------
    name : str
        Spec name (the TOML file stem).
    description : str
        Free text.
    turns : {"opening", "all"}
        Which ratings enter the model. With ``"all"``, a ``turn_effect`` separates later
        turns from the opening one; predictions are always for the opening turn.
    subset : {"all", "balanced"}
        All conversations, or the balanced subset only.
    family : {"gaussian", "censored"}
        Gaussian on the 1-100 scale (fast baseline) or Gaussian censored at 1 and 100.
    country : str
        Participant column of the country-level group effect.
    demographics : tuple of str
        Demographic main effects (keys of :data:`DEMOGRAPHIC_COLUMNS`).
    llm_interactions : tuple of str
        Demographic factors with LLM-specific (varying) effects.
    conversation_type : bool
        Whether a conversation-type effect is included.
    llm_residence : {"none", "uk_us_rest", "country", "region", "subregion"}
        LLM x residence effects: raters of different countries may rank the LLMs
        differently. ``"uk_us_rest"``: one LLM x {UK, US, rest of the world} matrix
        (``llm_residence``), every level data-rich; ``"country"``: LLM x every residence
        country (``llm_country``), partially pooled (``pooling.llm_country``: one scale,
        or ``"per_country"`` multipliers so that a country whose raters differ a lot,
        learnt from its own data, is not shrunk toward the many that differ little);
        ``"region"`` / ``"subregion"``: as ``"country"`` plus an LLM x UN M49 region
        level (``llm_region``), so small countries borrow from their region. The UK and
        US cells of MRP get their own country's preferences in every variant.
    unpooled_countries : tuple of str
        Levels of the country effect (codes of the ``country`` column, e.g. ``"GBR"``,
        ``"USA"``) that get their own prior, ``Normal(0, priors.sigma_country)``, instead
        of the pooled scale: the post-stratification countries hold hundreds of raters
        each, and pooling them with dozens of small countries shrinks their level toward
        the rest of the world (biasing every MRP estimate by the same amount). Levels the
        data do not have are ignored. Empty (the default): every level pooled.
    llm_ctype : bool
        LLM x conversation-type effects.
    rater_llm : bool
        Rater x LLM taste: each rater's lasting deviation for each LLM they rate,
        ``Normal(0, sigma_rater_llm)``, integrated out of the likelihood exactly like the
        participant effects (Gaussian family, marginalized participants). Without it, a
        rater's repeated ratings of one LLM count as independent evidence.
    rater_scale : bool
        Heteroscedastic raters: rater p's noise sd is ``sigma * exp(rater_scale_sd * z_p)``.
    pooling : dict
        ``"partial"``/``"fixed"`` per effect family (see :data:`DEFAULT_POOLING`).
    priors : dict
        Prior scales (see :data:`DEFAULT_PRIORS`).
    parameterisation : dict
        ``"centered"``/``"noncentered"`` per effect family.
    sampling : dict
        Default sampler settings (overridable at fit time).
    source : str
        Where the spec was read from.
    """

    name: str
    description: str = ""
    turns: str = "opening"
    subset: str = "all"
    family: str = "gaussian"
    country: str = "reside_country"
    demographics: tuple[str, ...] = ("age", "gender", "ethnicity")
    llm_interactions: tuple[str, ...] = ("age", "gender", "ethnicity")
    conversation_type: bool = True
    llm_residence: str = "none"
    unpooled_countries: tuple[str, ...] = ()
    llm_ctype: bool = False
    rater_llm: bool = False
    rater_scale: bool = False
    pooling: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_POOLING))
    priors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    parameterisation: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PARAMETERISATION)
    )
    sampling: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SAMPLING))
    source: str = "<memory>"

    def __post_init__(self) -> None:
        where = self.source

        def fail(msg: str) -> None:
            raise SpecError(f"{where}: {msg}")

        if self.turns not in ("opening", "all"):
            fail(f"data.turns must be 'opening' or 'all', got {self.turns!r}")
        if self.subset not in ("all", "balanced"):
            fail(f"data.subset must be 'all' or 'balanced', got {self.subset!r}")
        if self.family not in FAMILIES:
            fail(f"likelihood.family must be one of {FAMILIES}, got {self.family!r}")
        if self.country not in COUNTRY_COLUMNS:
            fail(f"effects.country must be one of {COUNTRY_COLUMNS}, got {self.country!r}")
        for key in self.demographics:
            if key not in DEMOGRAPHIC_COLUMNS:
                fail(f"effects.demographics: unknown factor {key!r} ({sorted(DEMOGRAPHIC_COLUMNS)})")
        for key in self.llm_interactions:
            if key not in self.demographics:
                fail(f"effects.llm_interactions: {key!r} must also be in effects.demographics")
        for key, value in self.pooling.items():
            if key not in DEFAULT_POOLING:
                fail(f"effects.pooling: unknown key {key!r} (known: {sorted(DEFAULT_POOLING)})")
            if value not in POOLINGS:
                fail(f"effects.pooling.{key} must be one of {POOLINGS}, got {value!r}")
            if value == "per_llm" and key != "interaction":
                fail(f"effects.pooling.{key}: only the LLM x demographic interactions can be 'per_llm'")
            if value == "per_country" and key != "llm_country":
                fail(f"effects.pooling.{key}: only llm_country can be 'per_country'")
            if value == "per_country" and self.llm_residence == "uk_us_rest":
                fail("effects.pooling.llm_country = 'per_country' needs llm_residence = 'country', "
                     "'region' or 'subregion'")
        for key in self.priors:
            if key not in DEFAULT_PRIORS:
                fail(f"priors: unknown key {key!r} (known: {sorted(DEFAULT_PRIORS)})")
        for key, value in self.priors.items():
            if key != "intercept_mu" and not value > 0:
                fail(f"priors.{key} must be positive, got {value!r}")
        for key, value in self.parameterisation.items():
            if key not in DEFAULT_PARAMETERISATION:
                fail(f"parameterisation: unknown key {key!r}")
            if value not in PARAMETERISATIONS:
                fail(f"parameterisation.{key} must be one of {PARAMETERISATIONS}, got {value!r}")
            if value == "marginalized" and key != "participant":
                fail(f"parameterisation.{key}: only participant effects can be 'marginalized'")
            if value == "mixed" and key not in ("country", "demographic", "interaction"):
                fail(f"parameterisation.{key}: only country, demographic and interaction effects "
                     "can be 'mixed'")
        if any(not isinstance(c, str) or not c for c in self.unpooled_countries):
            fail(f"effects.unpooled_countries must be a list of level names, got {list(self.unpooled_countries)!r}")
        if self.unpooled_countries and self.pool("country") == "fixed":
            fail("effects.unpooled_countries needs pooling.country = 'partial' (with a fixed scale "
                 "no level is pooled)")
        if self.llm_residence not in LLM_RESIDENCE:
            fail(f"effects.llm_residence must be one of {LLM_RESIDENCE}, got {self.llm_residence!r}")
        if self.llm_residence in ("region", "subregion") and self.country != "reside_country":
            fail("effects.llm_residence: countries can be nested in regions only when "
                 "effects.country = 'reside_country'")
        if (self.rater_llm or self.rater_scale) and (
                self.family != "gaussian" or self.param("participant") != "marginalized"):
            fail("effects.rater_llm / rater_scale need the gaussian family with marginalized "
                 "participants (parameterisation.participant = 'marginalized')")
        if self.sampling.get("sampler", "nutpie") not in ("nutpie", "pymc"):
            fail(f"sampling.sampler must be 'nutpie' or 'pymc', got {self.sampling['sampler']!r}")

    # -- derived views ----------------------------------------------------------------
    def prior(self, key: str) -> float:
        """Prior scale *key*, falling back to the package default."""
        return float(self.priors.get(key, DEFAULT_PRIORS[key]))

    def pool(self, key: str) -> str:
        """Pooling of effect family *key*: ``"partial"`` or ``"fixed"``."""
        return self.pooling.get(key, DEFAULT_POOLING[key])

    def param(self, key: str) -> str:
        """Parameterisation of effect family *key* (as the model will use it)."""
        value = self.parameterisation.get(key, DEFAULT_PARAMETERISATION[key])
        if value == "marginalized" and self.family != "gaussian":
            return "noncentered"  # no closed-form marginal for the censored family
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready nested dict (the file layout)."""
        return {
            "name": self.name,
            "description": self.description,
            "data": {"turns": self.turns, "subset": self.subset},
            "likelihood": {"family": self.family},
            "effects": {
                "country": self.country,
                "demographics": list(self.demographics),
                "llm_interactions": list(self.llm_interactions),
                "conversation_type": self.conversation_type,
                "llm_residence": self.llm_residence,
                # only when set: the model hash of a spec without it is unchanged
                **({"unpooled_countries": list(self.unpooled_countries)} if self.unpooled_countries else {}),
                "llm_ctype": self.llm_ctype,
                "rater_llm": self.rater_llm,
                "rater_scale": self.rater_scale,
                "pooling": {**DEFAULT_POOLING, **self.pooling},
            },
            "priors": {**DEFAULT_PRIORS, **self.priors},
            "parameterisation": {**DEFAULT_PARAMETERISATION, **self.parameterisation},
            "sampling": {**DEFAULT_SAMPLING, **self.sampling},
        }

    def model_hash(self) -> str:
        """SHA-256 of everything that changes the model (not the sampler settings)."""
        d = self.to_dict()
        d.pop("sampling")
        d.pop("description")
        return sha256_json(d)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with *changes* applied (dict-valued fields are merged, not replaced)."""
        current = {
            "name": self.name,
            "description": self.description,
            "turns": self.turns,
            "subset": self.subset,
            "family": self.family,
            "country": self.country,
            "demographics": self.demographics,
            "llm_interactions": self.llm_interactions,
            "conversation_type": self.conversation_type,
            "llm_residence": self.llm_residence,
            "unpooled_countries": self.unpooled_countries,
            "llm_ctype": self.llm_ctype,
            "rater_llm": self.rater_llm,
            "rater_scale": self.rater_scale,
            "pooling": dict(self.pooling),
            "priors": dict(self.priors),
            "parameterisation": dict(self.parameterisation),
            "sampling": dict(self.sampling),
            "source": self.source,
        }
        for key, value in changes.items():
            if key not in current:
                raise SpecError(f"{self.source}: cannot replace unknown field {key!r}")
            if isinstance(current[key], dict) and isinstance(value, dict):
                current[key] = {**current[key], **value}
            elif key in ("demographics", "llm_interactions", "unpooled_countries"):
                current[key] = tuple(value)
            else:
                current[key] = value
        return ModelSpec(**current)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<memory>") -> ModelSpec:
        """Build a spec from the nested file layout (see :meth:`to_dict`)."""
        d = copy.deepcopy(d)
        known = {"name", "description", "data", "likelihood", "effects", "priors",
                 "parameterisation", "sampling"}
        unknown = set(d) - known
        if unknown:
            raise SpecError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
        if "name" not in d:
            raise SpecError(f"{source}: missing 'name'")

        def section(name: str, keys: set[str]) -> dict[str, Any]:
            sec = d.get(name, {})
            if not isinstance(sec, dict):
                raise SpecError(f"{source}: [{name}] must be a table")
            bad = set(sec) - keys
            if bad:
                raise SpecError(f"{source}: unknown key(s) in [{name}]: {sorted(bad)}")
            return sec

        data = section("data", {"turns", "subset"})
        lik = section("likelihood", {"family"})
        eff = section("effects", {"country", "demographics", "llm_interactions",
                                  "conversation_type", "llm_residence", "unpooled_countries",
                                  "llm_ctype", "rater_llm", "rater_scale", "pooling"})
        if isinstance(eff.get("unpooled_countries"), str):  # tuple("GBR") would be three levels
            raise SpecError(f"{source}: effects.unpooled_countries must be a list, "
                            f"e.g. [{eff['unpooled_countries']!r}]")
        return cls(
            name=str(d["name"]),
            description=str(d.get("description", "")),
            turns=data.get("turns", "opening"),
            subset=data.get("subset", "all"),
            family=lik.get("family", "gaussian"),
            country=eff.get("country", "reside_country"),
            demographics=tuple(eff.get("demographics", ("age", "gender", "ethnicity"))),
            llm_interactions=tuple(eff.get("llm_interactions", ("age", "gender", "ethnicity"))),
            conversation_type=bool(eff.get("conversation_type", True)),
            llm_residence=str(eff.get("llm_residence", "none")),
            unpooled_countries=tuple(eff.get("unpooled_countries", ())),
            llm_ctype=bool(eff.get("llm_ctype", False)),
            rater_llm=bool(eff.get("rater_llm", False)),
            rater_scale=bool(eff.get("rater_scale", False)),
            pooling=dict(eff.get("pooling", {})),
            priors={k: float(v) for k, v in d.get("priors", {}).items()},
            parameterisation=dict(d.get("parameterisation", {})),
            sampling={**DEFAULT_SAMPLING, **d.get("sampling", {})},
            source=source,
        )


def spec_dirs() -> list[Path]:
    """Folders searched for specs by name: ``./models``, the checkout's ``models/``, and the
    copy packaged inside wheels (``prism_stats/_specs``)."""
    pkg = Path(__file__).resolve().parents[1]
    return [Path.cwd() / "models", pkg.parent / "models", pkg / "_specs"]


def available_specs() -> list[str]:
    """Names of the specs found in :func:`spec_dirs`."""
    names: set[str] = set()
    for d in spec_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def load_spec(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """Read a model specification by name (``"ratings"``) or by path.

    Raises
    ------
    SpecError
        When the spec cannot be found or is malformed (the message says which file and key).
    """
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.exists():
        for d in spec_dirs():
            candidate = d / f"{name_or_path}.toml"
            if candidate.exists():
                path = candidate
                break
        else:
            raise SpecError(
                f"no model spec named {str(name_or_path)!r}; available: "
                f"{', '.join(available_specs()) or 'none'} (searched {', '.join(map(str, spec_dirs()))})"
            )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return ModelSpec.from_dict(raw, source=str(path))
