#!/usr/bin/env python
"""Derive the compact census tables of ``prism_stats/census/data`` from the raw sources.

This script is run by a maintainer, once, when the sources change; the package never
needs it (nor the raw files) at runtime. It reads the reference copies of

* ONS Census 2021, England and Wales: usual residents by single year of age (0 ... 100+)
  x sex x the 19 ethnic groups (``uk.csv``; the 2011 comparison columns are ignored);
* ACS 2022 1-year detailed tables B01001B ... B01001I, "Sex by Age (<race/ethnic
  group>)", United States (``us_census_age_sex_*.xlsx``, downloaded from
  data.census.gov; reading them needs ``openpyxl``, a development-only dependency)

and writes

* ``uk.csv`` -- 60 rows, the census frame cells (age band x sex x 5 ethnic groups), adults;
* ``us_tables.csv`` -- the ACS estimates (and 90% margins of error, combined in
  quadrature over the summed age rows) for every table x sex x age band, children
  ("0-17") included, so that the harmonisations of ``prism_stats.census`` can be
  computed -- and audited -- from these numbers alone;
* ``sources.json`` -- provenance: file names, SHA-256 of each raw file, table ids,
  titles, universes and URLs as printed in the files' own headers.

Usage::

    python scripts/build_census_tables.py [--census-dir /work/shared/reference/census]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "prism_stats" / "census" / "data"
DEFAULT_CENSUS_DIR = Path("/work/shared/reference/census")

sys.path.insert(0, str(REPO))
from prism_stats import vocab

# --- UK: ONS 2021 ----------------------------------------------------------------------

#: The 19 ONS ethnic groups (as their column prefixes read) -> the 5 census groups.
#: "Other ethnic group" is Arab + Any other ethnic group.
UK_GROUPS: dict[str, str] = {
    "Asian/Asian British: Bangladeshi": "Asian",
    "Asian/Asian British: Chinese": "Asian",
    "Asian/Asian British: Indian": "Asian",
    "Asian/Asian British: Pakistani": "Asian",
    "Asian/Asian British: Other Asian": "Asian",
    "Black/African/Caribbean/Black British: African": "Black",
    "Black/African/Caribbean/Black British: Caribbean": "Black",
    "Black/African/Caribbean/Black British: Other Black": "Black",
    "Mixed or Multiple ethnic groups: White and Asian": "Mixed",
    "Mixed or Multiple ethnic groups: White and Black African": "Mixed",
    "Mixed or Multiple ethnic groups: White and Black Caribbean": "Mixed",
    "Mixed or Multiple ethnic groups: Other Mixed": "Mixed",
    "White: English/Welsh/Scottish/Northern Irish/British": "White",
    "White: Irish": "White",
    "White: Gypsy or Irish Traveller": "White",
    "White: Roma": "White",
    "White: Other White": "White",
    "Other ethnic group: Arab": "Other",
    "Other ethnic group: Any other ethnic group": "Other",
}

UK_COLUMN = re.compile(r"^(?P<group>.+), (?P<sex>Male|Female) 2021 \(number\)$")


def uk_age_band(age: str) -> str | None:
    """Single-year age label of the ONS file ("0" ... "99", "100+") -> census band."""
    years = int(age.rstrip("+"))
    if years < 18:
        return None
    for band, (lo, hi) in zip(vocab.CENSUS_AGES, _AGE_LIMITS, strict=True):
        if lo <= years <= hi:
            return band
    raise ValueError(f"age {age!r} outside every band")


_AGE_LIMITS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 200))


def build_uk(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, encoding="utf-8-sig", dtype={"Age": str})
    expected_ages = [str(a) for a in range(100)] + ["100+"]
    if raw["Age"].tolist() != expected_ages:
        raise ValueError(f"{path}: unexpected Age rows {raw['Age'].tolist()[:5]}...")
    records = []
    seen = set()
    for col in raw.columns:
        m = UK_COLUMN.match(col)
        if not m:
            continue  # Age, percentages and the 2011 columns
        group = m["group"]
        if group not in UK_GROUPS:
            raise ValueError(f"{path}: unknown ethnic group column {col!r}")
        seen.add(group)
        counts = pd.to_numeric(raw[col], errors="raise")
        bands = raw["Age"].map(uk_age_band)
        for band, n in counts.groupby(bands).sum().items():
            records.append((band, m["sex"], UK_GROUPS[group], group, int(n)))
    if seen != set(UK_GROUPS):
        raise ValueError(f"{path}: missing 2021 groups {sorted(set(UK_GROUPS) - seen)}")
    long = pd.DataFrame(records, columns=["age", "sex", "ethnicity", "ons_group", "count"])
    cells = long.groupby(["age", "sex", "ethnicity"], as_index=False)["count"].sum()
    return _order_cells(cells)


def _order_cells(cells: pd.DataFrame) -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [vocab.CENSUS_AGES, vocab.CENSUS_SEXES, vocab.CENSUS_ETHNICITIES],
        names=["age", "sex", "ethnicity"],
    )
    out = cells.set_index(["age", "sex", "ethnicity"]).reindex(index)
    if out["count"].isna().any():
        raise ValueError("census cells missing after aggregation")
    return out.reset_index().astype({"count": "int64"})


# --- US: ACS 2022 ----------------------------------------------------------------------

#: File stem suffix -> ACS table id (checked against the file's own "TABLE ID:" line).
US_FILES: dict[str, str] = {
    "whiteonly": "B01001H",
    "blackonly": "B01001B",
    "nativeonly": "B01001C",
    "asianonly": "B01001D",
    "islanderonly": "B01001E",
    "otheronly": "B01001F",
    "mixedonly": "B01001G",
    "hispaniconly": "B01001I",
}

US_AGE_ROWS: dict[str, str] = {
    "Under 5 years": "0-17",
    "5 to 9 years": "0-17",
    "10 to 14 years": "0-17",
    "15 to 17 years": "0-17",
    "18 and 19 years": "18-24",
    "20 to 24 years": "18-24",
    "25 to 29 years": "25-34",
    "30 to 34 years": "25-34",
    "35 to 44 years": "35-44",
    "45 to 54 years": "45-54",
    "55 to 64 years": "55-64",
    "65 to 74 years": "65+",
    "75 to 84 years": "65+",
    "85 years and over": "65+",
}
US_AGE_BANDS: tuple[str, ...] = ("0-17",) + vocab.CENSUS_AGES


def _number(text: object) -> int:
    s = str(text).replace(",", "").replace("±", "").strip()
    if not re.fullmatch(r"\d+", s):
        raise ValueError(f"not a count: {text!r}")
    return int(s)


def read_acs_table(path: Path) -> tuple[dict, pd.DataFrame]:
    """One ACS xlsx export -> (metadata from its Information sheet, long estimates)."""
    sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=str)
    info = sheets["Information"]
    meta: dict[str, str] = {"title": str(info.iloc[0, 0]).strip()}
    for key, value in zip(info[0], info[1], strict=True):
        if isinstance(key, str) and key.strip().endswith(":") and isinstance(value, str):
            meta[key.strip().rstrip(":").lower().replace(" ", "_")] = value.strip()
        if isinstance(key, str) and key.strip() == "WEB ADDRESS" and isinstance(value, str):
            meta["web_address"] = value.strip()
    data = sheets["Data"]
    if (
        str(data.iloc[1, 1]).strip() != "Estimate"
        or str(data.iloc[1, 2]).strip() != "Margin of Error"
    ):
        raise ValueError(f"{path}: unexpected Data sheet header")
    rows = []
    sex = None
    total = None
    sex_totals: dict[str, int] = {}
    for label, est, moe in data.iloc[2:, :3].itertuples(index=False):
        label = str(label).strip()
        if label == "Total:":
            total = _number(est)
        elif label in ("Male:", "Female:"):
            sex = label.rstrip(":")
            sex_totals[sex] = _number(est)
        elif label in US_AGE_ROWS:
            if sex is None:
                raise ValueError(f"{path}: age row before a sex row")
            rows.append((sex, US_AGE_ROWS[label], label, _number(est), _number(moe)))
        else:
            raise ValueError(f"{path}: unexpected row label {label!r}")
    long = pd.DataFrame(rows, columns=["sex", "age", "acs_row", "estimate", "moe90"])
    # The published totals must equal the sums of their rows: a check on the parsing.
    for s, n in sex_totals.items():
        if long.loc[long["sex"] == s, "estimate"].sum() != n:
            raise ValueError(f"{path}: {s} rows do not sum to the {s} total")
    if total != sum(sex_totals.values()):
        raise ValueError(f"{path}: sex totals do not sum to the total")
    meta["total"] = total
    return meta, long


def build_us(census_dir: Path) -> tuple[pd.DataFrame, dict]:
    frames = []
    metas = {}
    for stem, table_id in US_FILES.items():
        path = census_dir / f"us_census_age_sex_{stem}.xlsx"
        meta, long = read_acs_table(path)
        if meta.get("table_id") != table_id:
            raise ValueError(f"{path}: table id {meta.get('table_id')!r}, expected {table_id}")
        if meta.get("vintage") != "2022" or meta.get("dataset") != "ACSDT1Y2022":
            raise ValueError(f"{path}: not ACS 2022 1-year ({meta})")
        long["table"] = table_id
        frames.append(long)
        metas[table_id] = {
            "file": path.name,
            "sha256": _sha256(path),
            "title": meta["title"],
            "universe": meta.get("universe"),
            "dataset": meta.get("dataset"),
            "product": meta.get("product"),
            "vintage": meta.get("vintage"),
            "web_address": meta.get("web_address"),
            "total_all_ages": meta["total"],
        }
    allrows = pd.concat(frames, ignore_index=True)
    grouped = allrows.groupby(["table", "sex", "age"], sort=False).agg(
        estimate=("estimate", "sum"),
        # Census Bureau approximation for the MOE of a sum of estimates.
        moe90=("moe90", lambda m: float(np.sqrt(np.sum(np.square(m, dtype=float))))),
    )
    index = pd.MultiIndex.from_product(
        [list(US_FILES.values()), vocab.CENSUS_SEXES, US_AGE_BANDS], names=["table", "sex", "age"]
    )
    grouped = grouped.reindex(index).reset_index()
    grouped["moe90"] = grouped["moe90"].round().astype("int64")
    return grouped, metas


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--census-dir", type=Path, default=DEFAULT_CENSUS_DIR)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    uk_path = args.census_dir / "uk.csv"
    uk = build_uk(uk_path)
    us, us_meta = build_us(args.census_dir)

    header_uk = (
        "# ONS Census 2021, England and Wales: usual residents aged 18+ by age band, sex and\n"
        "# ethnic group (19 groups collapsed to 5; Other = Arab + Any other ethnic group).\n"
        f"# Derived by scripts/build_census_tables.py from {uk_path.name} "
        f"(sha256 {_sha256(uk_path)[:16]}...).\n"
    )
    header_us = (
        "# ACS 2022 1-year (ACSDT1Y2022), United States, tables B01001B-B01001I 'Sex by Age'.\n"
        "# estimate = sum of the ACS age rows in the band; moe90 = 90% margins of error of\n"
        "# those rows combined in quadrature. age 0-17 = children (kept for all-ages totals).\n"
        "# Derived by scripts/build_census_tables.py; see sources.json.\n"
    )
    (out / "uk.csv").write_text(header_uk + uk.to_csv(index=False), encoding="utf-8")
    (out / "us_tables.csv").write_text(header_us + us.to_csv(index=False), encoding="utf-8")
    sources = {
        "uk": {
            "description": "ONS Census 2021, England and Wales: ethnic group by single year of "
            "age and sex (usual residents); 2021 number columns only, the 2011 columns dropped",
            "file": uk_path.name,
            "sha256": _sha256(uk_path),
            "ethnic_groups": UK_GROUPS,
            "adults_18plus": int(uk["count"].sum()),
        },
        "us": {
            "description": "American Community Survey 2022 1-year estimates, detailed tables "
            "B01001B-B01001I (Sex by Age by race / Hispanic origin), United States",
            "tables": us_meta,
        },
    }
    (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n", encoding="utf-8")
    print(f"UK adults: {uk['count'].sum():,}")
    adults = us[us["age"] != "0-17"]
    print(f"US adults, sum over all 8 tables: {adults['estimate'].sum():,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
