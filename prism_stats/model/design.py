"""From tidy tables to a model design collapsed onto sufficient statistics.

Every predictor of the rating model is categorical, so ratings that share a participant,
an LLM, a conversation type and a turn group (opening vs later) share their linear
predictor. The Gaussian likelihood of such an *observation cell* depends on its ratings
only through the count ``n``, the mean and the within-cell sum of squares::

    sum_i log N(y_i | eta, sigma) = log N(ybar | eta, sigma / sqrt(n))
                                    - (n - 1) log sigma - SS / (2 sigma^2) + const

so PRISM's ~30k opening ratings become ~20k cells (68k ratings become ~25k cells when all
turns are used) without any approximation. The censored family keeps, per cell, the
interior ratings' statistics plus the counts piled at 1 and at 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import vocab
from .spec import DEMOGRAPHIC_COLUMNS, ModelSpec

LOW, HIGH = 1, 100  # slider bounds (censoring points of the censored family)


class DesignError(ValueError):
    """The tidy tables cannot be turned into a design for this spec."""


@dataclass
class Design:
    """Sufficient-statistics design of a rating model.

    Attributes
    ----------
    coords : dict
        Labels of every named dimension: ``participant``, ``llm``, ``country``,
        ``conversation_type`` and each demographic factor (``age``, ``gender``, ...).
    cells : pandas.DataFrame
        One row per observation cell (dimension ``obs_cell``): integer codes
        ``participant``, ``llm``, ``conversation_type``, ``later`` (0 opening, 1 later turn),
        ``pair`` (the participant x LLM pair) and the statistics ``n``, ``mean``, ``ss`` (all ratings) and ``n_low``, ``n_high``,
        ``n_int``, ``mean_int``, ``ss_int`` (for the censored family).
    participant_levels : pandas.DataFrame
        One row per participant: integer codes of ``country`` and every demographic factor.
    n_ratings : int
        Ratings in the design.
    filtered : dict
        Ratings left out by the spec's data filters, by reason (reported, never silent).
    data_hash : str
        Hash of the source data, when known.
    """

    coords: dict[str, list[str]]
    cells: pd.DataFrame
    participant_levels: pd.DataFrame
    n_ratings: int
    filtered: dict[str, int] = field(default_factory=dict)
    data_hash: str = ""

    @property
    def n_cells(self) -> int:
        """Number of observation cells."""
        return len(self.cells)

    @property
    def factors(self) -> list[str]:
        """Demographic factors in the design (in spec order)."""
        return [c for c in self.participant_levels.columns if c not in ("country", "region", "residence")]

    def level_weights(self, factor: str) -> np.ndarray:
        """Share of the design's ratings at each level of a participant-level *factor*."""
        codes = self.cell_codes(factor)
        w = np.bincount(codes, weights=self.cells["n"].to_numpy(), minlength=len(self.coords[factor]))
        return w / w.sum()

    def cell_codes(self, factor: str) -> np.ndarray:
        """Code of *factor* for every observation cell (via its participant)."""
        if factor in self.cells.columns:
            return self.cells[factor].to_numpy()
        return self.participant_levels[factor].to_numpy()[self.cells["participant"].to_numpy()]

    # -- persistence as an xarray Dataset (stored in the run's constant_data) ----------
    def to_dataset(self) -> xr.Dataset:
        """The design as a Dataset with dims ``obs_cell`` and ``participant``."""
        data_vars: dict[str, Any] = {
            f"cell_{c}": ("obs_cell", self.cells[c].to_numpy()) for c in self.cells.columns
        }
        for c in self.participant_levels.columns:
            data_vars[f"participant_{c}"] = ("participant", self.participant_levels[c].to_numpy())
        coords = {k: v for k, v in self.coords.items()}
        ds = xr.Dataset(data_vars, coords={**coords, "obs_cell": np.arange(self.n_cells)})
        ds.attrs.update(
            n_ratings=self.n_ratings,
            data_hash=self.data_hash,
            coord_names=list(self.coords),
            factors=self.factors,
            **{f"filtered_{k}": v for k, v in self.filtered.items()},
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Design:
        """Inverse of :meth:`to_dataset`."""
        coord_names = list(np.atleast_1d(ds.attrs["coord_names"]))
        coords = {k: [str(x) for x in ds[k].values] for k in coord_names}
        cells = pd.DataFrame(
            {k[len("cell_"):]: ds[k].values for k in ds.data_vars if k.startswith("cell_")}
        )
        plev = pd.DataFrame(
            {
                k[len("participant_"):]: ds[k].values
                for k in ds.data_vars
                if k.startswith("participant_")
            }
        )
        filtered = {
            k[len("filtered_"):]: int(v) for k, v in ds.attrs.items() if k.startswith("filtered_")
        }
        return cls(
            coords=coords,
            cells=cells,
            participant_levels=plev,
            n_ratings=int(ds.attrs["n_ratings"]),
            filtered=filtered,
            data_hash=str(ds.attrs.get("data_hash", "")),
        )


def _tables(data: Any) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Accept a ``PrismData`` (or anything with ``participants``/``ratings``) or a tuple."""
    if isinstance(data, tuple):
        participants, ratings = data[:2]
        return participants, ratings, ""
    return data.participants, data.ratings, str(getattr(data, "data_hash", ""))


def _levels(values: pd.Series, vocabulary: tuple[str, ...] | None, what: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes over the *observed* levels, kept in vocabulary order."""
    if values.isna().any():
        raise DesignError(
            f"{int(values.isna().sum())} participant(s) have no value for {what!r}; the tidy "
            "tables should carry 'Prefer not to say' as its own level"
        )
    as_str = values.astype(str)
    observed = set(as_str.unique())
    if vocabulary is not None:
        unknown = observed - set(vocabulary)
        if unknown:
            raise DesignError(f"unknown {what} level(s): {sorted(unknown)}")
        levels = [v for v in vocabulary if v in observed]
    else:
        levels = sorted(observed)
    code_of = {v: i for i, v in enumerate(levels)}
    return as_str.map(code_of).to_numpy(dtype=np.int64), levels


_VOCABULARIES: Mapping[str, tuple[str, ...]] = {
    "age": vocab.AGE_BANDS,
    "gender": vocab.GENDERS,
    "ethnicity": vocab.ETHNICITY_GROUPS,
    "education": vocab.EDUCATION,
    "religion": vocab.RELIGION_SIMPLIFIED,
    "english": vocab.ENGLISH,
    "reside_country": vocab.COUNTRY_CODES,
    "special_region": vocab.SPECIAL_REGIONS,
}


#: The level of the countries other than the post-stratification ones under "uk_us_rest".
REST_OF_WORLD = "rest"
#: Country level of each post-stratification country, per country variable of a spec.
MRP_COUNTRY_LEVELS: dict[str, dict[str, str]] = {
    "reside_country": {"uk": "GBR", "us": "USA"},
    "special_region": {"uk": "UK", "us": "US"},
}

_NESTING_VOCABULARIES: Mapping[str, tuple[str, ...]] = {
    "region": vocab.REGIONS,
    "subregion": vocab.SUBREGIONS,
}


def country_regions(countries: list[str], nesting: str) -> dict[int, str]:
    """Region (UN M49 region or subregion) of each residence-country code position.

    "Prefer not to say" is its own region.
    """
    out = {}
    for i, iso3 in enumerate(countries):
        country = vocab.COUNTRY_BY_ISO3.get(iso3)
        if country is None:
            out[i] = vocab.PREFER_NOT
        else:
            out[i] = country.region if nesting == "region" else country.subregion
    return out


def select_ratings(ratings: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, dict[str, int]]:
    """Apply the spec's data filters; return the kept ratings and counts of the rest."""
    keep = np.ones(len(ratings), dtype=bool)
    filtered: dict[str, int] = {}
    if spec.turns == "opening":
        later = ratings["turn"].to_numpy() > 0
        filtered["later_turns"] = int((keep & later).sum())
        keep &= ~later
    if spec.subset == "balanced":
        outside = ~ratings["balanced"].to_numpy(dtype=bool)
        filtered["outside_balanced_subset"] = int((keep & outside).sum())
        keep &= ~outside
    return ratings.loc[keep], filtered


def build_design(data: Any, spec: ModelSpec, *, collapse: bool = True) -> Design:
    """Collapse tidy ratings onto observation cells for *spec*.

    Parameters
    ----------
    data : PrismData or (participants, ratings)
        Tidy tables (ARCHITECTURE.md "PrismData").
    spec : ModelSpec
        Which ratings, effects and family.
    collapse : bool
        ``False`` keeps one cell per rating (n = 1): the full, non-aggregated likelihood,
        for benchmarks that measure what the sufficient statistics buy.

    Returns
    -------
    Design
    """
    participants, ratings, data_hash = _tables(data)
    kept, filtered = select_ratings(ratings, spec)
    if kept.empty:
        raise DesignError(f"spec {spec.name!r} selects no ratings ({filtered})")

    # Participants who have at least one rating in the design, in table order.
    people = participants.set_index("participant")
    used = pd.Index(kept["participant"].astype(str).unique())
    missing = used.difference(people.index.astype(str))
    if len(missing):
        raise DesignError(f"{len(missing)} rated participant(s) absent from the participants table, "
                          f"e.g. {list(missing[:3])}")
    people = people.loc[people.index.astype(str).isin(used)]
    participant_labels = [str(p) for p in people.index]

    coords: dict[str, list[str]] = {"participant": participant_labels}
    plev: dict[str, np.ndarray] = {}
    codes, levels = _levels(people[spec.country], _VOCABULARIES.get(spec.country), spec.country)
    plev["country"], coords["country"] = codes, levels
    if spec.llm_residence == "uk_us_rest":
        mrp = {v for d in MRP_COUNTRY_LEVELS.values() for v in d.values()}
        group = [levels[c] if levels[c] in mrp else REST_OF_WORLD for c in codes]
        res_levels = [v for v in (*sorted(mrp), REST_OF_WORLD) if v in set(group)]
        plev["residence"] = np.array([res_levels.index(g) for g in group], dtype=np.int64)
        coords["residence"] = res_levels
    if spec.llm_residence in ("region", "subregion"):
        region_of = country_regions(levels, spec.llm_residence)
        region_levels = [r for r in _NESTING_VOCABULARIES[spec.llm_residence]
                         if r in set(region_of.values())]
        plev["region"] = np.array([region_levels.index(region_of[c]) for c in codes], dtype=np.int64)
        coords["region"] = region_levels
    for factor in spec.demographics:
        column = DEMOGRAPHIC_COLUMNS[factor]
        codes, levels = _levels(people[column], _VOCABULARIES.get(factor), factor)
        plev[factor], coords[factor] = codes, levels

    llm_codes, coords["llm"] = _levels(kept["llm"], vocab.LLM_SHORT_NAMES, "llm")
    ctype_codes, coords["conversation_type"] = _levels(
        kept["conversation_type"], vocab.CONVERSATION_TYPES, "conversation_type"
    )
    p_index = {p: i for i, p in enumerate(participant_labels)}
    p_codes = kept["participant"].astype(str).map(p_index).to_numpy(dtype=np.int64)
    later = (kept["turn"].to_numpy() > 0).astype(np.int64)
    score = kept["score"].to_numpy(dtype=np.float64)
    if np.any(np.isnan(score)):
        raise DesignError("missing scores in the ratings table (validate the data first)")

    n_llm, n_ct = len(coords["llm"]), len(coords["conversation_type"])
    key = ((p_codes * n_llm + llm_codes) * n_ct + ctype_codes) * 2 + later
    if collapse:
        uniq, inverse = np.unique(key, return_inverse=True)
    else:  # one cell per rating, ordered like the collapsed cells
        order = np.argsort(key, kind="stable")
        key = key[order]
        score, p_codes = score[order], p_codes[order]
        uniq, inverse = key, np.arange(len(key))
    n = np.bincount(inverse).astype(np.int64)
    total = np.bincount(inverse, weights=score)
    total_sq = np.bincount(inverse, weights=score**2)
    mean = total / n
    ss = np.maximum(total_sq - n * mean**2, 0.0)

    low, high = score <= LOW, score >= HIGH
    interior = ~(low | high)
    n_low = np.bincount(inverse, weights=low, minlength=len(uniq)).astype(np.int64)
    n_high = np.bincount(inverse, weights=high, minlength=len(uniq)).astype(np.int64)
    n_int = n - n_low - n_high
    tot_int = np.bincount(inverse, weights=np.where(interior, score, 0.0), minlength=len(uniq))
    sq_int = np.bincount(inverse, weights=np.where(interior, score**2, 0.0), minlength=len(uniq))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_int = np.where(n_int > 0, tot_int / np.maximum(n_int, 1), 0.0)
    ss_int = np.maximum(sq_int - n_int * mean_int**2, 0.0)

    rest, later_c = np.divmod(uniq, 2)
    rest, ct_c = np.divmod(rest, n_ct)
    p_c, llm_c = np.divmod(rest, n_llm)
    # participant x LLM pairs (the blocks of the rater x LLM taste term), in cell order
    _, pair_c = np.unique(p_c * n_llm + llm_c, return_inverse=True)
    cells = pd.DataFrame(
        {
            "participant": p_c,
            "llm": llm_c,
            "conversation_type": ct_c,
            "later": later_c,
            "pair": pair_c.astype(np.int64),
            "n": n,
            "mean": mean,
            "ss": ss,
            "n_low": n_low,
            "n_high": n_high,
            "n_int": n_int,
            "mean_int": mean_int,
            "ss_int": ss_int,
        }
    )
    return Design(
        coords=coords,
        cells=cells,
        participant_levels=pd.DataFrame(plev),
        n_ratings=len(kept),
        filtered=filtered,
        data_hash=data_hash,
    )
