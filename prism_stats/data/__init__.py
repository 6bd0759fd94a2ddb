"""Read, validate, tidy and summarise the PRISM release.

Entry points
------------
- :func:`load_prism` - read a release folder (or the Hugging Face Hub copy), validate
  it (strict: raise on the first error; lenient: exclude and count) and return
  :class:`PrismData` (tidy ``participants``, ``conversations``, ``ratings`` and
  ``choice_sets`` tables, ``exclusions``, ``source`` and ``data_hash``).
- :func:`validate_release` - the full :class:`ValidationReport` of a folder.
- :func:`describe` - the original study's descriptive table as a :class:`Summary`;
  :func:`compare_to_published` checks it against :data:`PUBLISHED_COUNTS`.

Example
-------
>>> from prism_stats.data import load_prism, describe, compare_to_published
>>> data = load_prism("path/to/prism")                        # doctest: +SKIP
>>> print(describe(data))                                     # doctest: +SKIP
>>> compare_to_published(describe(data))["match"].all()       # doctest: +SKIP
True
"""

from __future__ import annotations

from .io import (
    PrismDataError,
    PrismDataNotFound,
    download_from_hub,
    find_release_files,
    how_to_obtain,
)
from .issues import ExclusionReport, PrismValidationError, ValidationIssue, ValidationReport
from .summary import PUBLISHED_COUNTS, PUBLISHED_SOURCES, Summary, compare_to_published, describe
from .tidy import CHOICE_SLOTS, PrismData, load_prism
from .validate import validate_release

__all__ = [
    "CHOICE_SLOTS",
    "PUBLISHED_COUNTS",
    "PUBLISHED_SOURCES",
    "ExclusionReport",
    "PrismData",
    "PrismDataError",
    "PrismDataNotFound",
    "PrismValidationError",
    "Summary",
    "ValidationIssue",
    "ValidationReport",
    "compare_to_published",
    "describe",
    "download_from_hub",
    "find_release_files",
    "how_to_obtain",
    "load_prism",
    "validate_release",
]
