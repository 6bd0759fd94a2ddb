"""The works the package cites: the short citations of captions and the reference list.

Captions cite by :attr:`Reference.short` ("Kirk et al. 2024"); the index pages end with
the full references and the bundle carries them as BibTeX (``references.bib``), so a
table or figure copied into a paper keeps its sources.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """A cited work: a key, the short form used in captions, the full entry and BibTeX."""

    key: str
    short: str
    text: str
    bibtex: str


REFERENCES: dict[str, Reference] = {
    "kirk2024": Reference(
        "kirk2024", "Kirk et al. 2024",
        "Kirk, H. R., Whitefield, A., Röttger, P., Bean, A., Margatina, K., Ciro, J., Mosquera, R., "
        "Bartolo, M., Williams, A., He, H., Vidgen, B. and Hale, S. A. (2024). The PRISM alignment "
        "dataset: what participatory, representative and individualised human feedback reveals "
        "about the subjective and multicultural alignment of large language models. Advances in "
        "Neural Information Processing Systems 37 (Datasets and Benchmarks Track). arXiv:2404.16019.",
        "@inproceedings{kirk2024,\n  author = {Kirk, Hannah Rose and Whitefield, Alexander and "
        "R{\\\"o}ttger, Paul and Bean, Andrew and Margatina, Katerina and Ciro, Juan and Mosquera, "
        "Rafael and Bartolo, Max and Williams, Adina and He, He and Vidgen, Bertie and Hale, Scott A.},\n"
        "  title = {The {PRISM} Alignment Dataset: What Participatory, Representative and "
        "Individualised Human Feedback Reveals About the Subjective and Multicultural Alignment of "
        "Large Language Models},\n  booktitle = {Advances in Neural Information Processing Systems 37 "
        "(Datasets and Benchmarks Track)},\n  year = {2024},\n  eprint = {2404.16019},\n"
        "  archivePrefix = {arXiv}\n}"),
    "prism_data": Reference(
        "prism_data", "PRISM data, doi:10.57967/hf/2113",
        "Kirk, H. R. et al. (2024). The PRISM alignment dataset (HannahRoseKirk/prism-alignment) "
        "[data set]. Hugging Face. https://doi.org/10.57967/hf/2113.",
        "@misc{prism_data,\n  author = {Kirk, Hannah Rose and others},\n  title = {The {PRISM} "
        "Alignment Dataset},\n  year = {2024},\n  publisher = {Hugging Face},\n"
        "  doi = {10.57967/hf/2113},\n  url = {https://doi.org/10.57967/hf/2113}\n}"),
    "ons2021": Reference(
        "ons2021", "ONS Census 2021",
        "Office for National Statistics (2023). Census 2021, England and Wales: ethnic group by "
        "single year of age and sex, usual residents. https://www.ons.gov.uk/census.",
        "@misc{ons2021,\n  author = {{Office for National Statistics}},\n  title = {Census 2021, "
        "England and Wales: ethnic group by single year of age and sex (usual residents)},\n"
        "  year = {2023},\n  url = {https://www.ons.gov.uk/census}\n}"),
    "acs2022": Reference(
        "acs2022", "ACS 2022 1-year",
        "U.S. Census Bureau (2023). American Community Survey 2022 1-year estimates, detailed "
        "tables B01001B-B01001I: sex by age by race and Hispanic origin, United States. "
        "https://data.census.gov.",
        "@misc{acs2022,\n  author = {{U.S. Census Bureau}},\n  title = {American Community Survey "
        "2022 1-Year Estimates, Detailed Tables B01001B--B01001I: Sex by Age (by Race and Hispanic "
        "Origin)},\n  year = {2023},\n  url = {https://data.census.gov}\n}"),
}

#: The census source of each post-stratification country.
CENSUS_SOURCE: dict[str, str] = {"uk": "ons2021", "us": "acs2022"}


def cite(*keys: str) -> str:
    """``"(Kirk et al. 2024; ONS Census 2021)"`` for the given reference keys."""
    return "(" + "; ".join(REFERENCES[k].short for k in keys) + ")"


def census_citation(countries: list[str] | tuple[str, ...] | str) -> str:
    """The census sources of *countries*: ``"ONS Census 2021 (UK), ACS 2022 1-year (US)"``."""
    countries = [countries] if isinstance(countries, str) else list(countries)
    return ", ".join(f"{REFERENCES[CENSUS_SOURCE[c]].short} ({c.upper()})" for c in countries
                     if c in CENSUS_SOURCE)


def bibtex(keys: list[str] | None = None) -> str:
    """The BibTeX entries of *keys* (default: every reference)."""
    return "\n\n".join(REFERENCES[k].bibtex for k in (keys or list(REFERENCES))) + "\n"
