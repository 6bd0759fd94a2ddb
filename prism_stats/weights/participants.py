"""Participant weights of a country: the weighting sample of its residents, raked to the census.

:func:`weighting_sample` selects a country's residents with census cells (counting
everybody left out, by reason); :func:`participant_weights` rakes or post-stratifies
them; :func:`default_participant_weights` is the setting the pipeline uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from prism_stats import census, vocab

from .margins import DEFAULT_MARGINS, ONE_WAY_MARGINS, MarginKey, WeightingError, census_margins
from .raking import WeightingResult, poststratify, rake

# --- participants -> weights ------------------------------------------------------------------


def weighting_sample(
    participants: pd.DataFrame,
    country: str,
    *,
    residents_only: bool = True,
    require_conversations: bool = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The participants that can be weighted to a country's census, and the exclusions.

    Keeps residents of the country (``reside_country`` = GBR / USA) who took part in
    conversations (``survey_only`` False) and have a census cell; every other
    participant is counted under a reason.

    Returns
    -------
    sample
        Indexed by participant id, columns ``age``, ``sex``, ``ethnicity`` (census
        categoricals) and ``cell``.
    excluded
        Reason -> number of participants.
    """
    country = country.lower()
    if country not in vocab.COUNTRY_ISO3:
        raise WeightingError(f"unknown country {country!r}; expected {list(vocab.COUNTRY_ISO3)}")
    people = participants
    if "participant" in people:
        people = people.set_index("participant", drop=False)
    if people.index.has_duplicates:
        raise WeightingError("participants: duplicate participant ids")
    excluded: dict[str, int] = {}
    keep = np.ones(len(people), dtype=bool)
    if residents_only:
        if "reside_country" not in people:
            raise WeightingError("participants: no 'reside_country' column")
        iso = vocab.COUNTRY_ISO3[country]
        resident = (people["reside_country"].astype("string") == iso).fillna(False).to_numpy()
        excluded[f"not resident in {iso}"] = int((~resident).sum())
        keep &= resident
    if require_conversations and "survey_only" in people:
        survey_only = people["survey_only"].fillna(False).to_numpy(dtype=bool)
        excluded["survey only (no ratings)"] = int((keep & survey_only).sum())
        keep &= ~survey_only
    people = people.loc[keep]
    harm = census.harmonise_participants(people)
    for reason, n in harm["no_cell_reason"].value_counts().items():
        excluded[f"no census cell: {reason}"] = int(n)
    has_cell = harm["cell"].notna().to_numpy()
    sample = pd.DataFrame(
        {
            "age": harm["census_age"],
            "sex": harm["census_sex"],
            "ethnicity": harm["census_ethnicity"],
            "cell": harm["cell"],
        }
    ).loc[has_cell]
    sample.index.name = "participant"
    if sample.empty:
        raise WeightingError(f"{country}: no participant can be weighted ({excluded})")
    return sample, excluded


def participant_weights(
    participants: pd.DataFrame,
    country: str,
    *,
    method: Literal["rake", "poststratify"] = "rake",
    margins: Sequence[MarginKey] = DEFAULT_MARGINS,
    harmonisation: str = "default",
    bounds: tuple[float, float] | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    strict: bool = True,
    residents_only: bool = True,
    require_conversations: bool = True,
) -> WeightingResult:
    """Weights of a country's participants to its census frame.

    The sample is :func:`weighting_sample` (residents with conversations and a census
    cell; exclusions are counted in ``result.excluded``). ``method="rake"`` rakes to
    *margins* of :func:`prism_stats.census.frame`; ``method="poststratify"`` uses
    the full age x sex x ethnicity cells (every cell must be filled).
    """
    sample, excluded = weighting_sample(
        participants,
        country,
        residents_only=residents_only,
        require_conversations=require_conversations,
    )
    frame = census.frame(country, harmonisation)
    if method == "rake":
        result = rake(
            sample,
            census_margins(frame, margins),
            bounds=bounds,
            max_iter=max_iter,
            tol=tol,
            strict=strict,
        )
    elif method == "poststratify":
        result = poststratify(sample, frame)
    else:
        raise WeightingError(f"unknown method {method!r}; expected 'rake' or 'poststratify'")
    result.excluded.update(excluded)
    return result


def default_participant_weights(
    participants: pd.DataFrame, country: str, *, harmonisation: str = "default", **kwargs
) -> WeightingResult:
    """Raking weights on age, sex, ethnicity and age x sex, or the one-way margins alone.

    The age x sex margin is added only when raking with it succeeds (it can fail when
    an age x sex cell of the sample is empty, or does not converge); the result's
    ``margins`` say which was used.
    """
    try:
        return participant_weights(
            participants, country, margins=DEFAULT_MARGINS, harmonisation=harmonisation, **kwargs
        )
    except WeightingError:
        return participant_weights(
            participants, country, margins=ONE_WAY_MARGINS, harmonisation=harmonisation, **kwargs
        )
