"""Survey answers -> census cells (age band x sex x ethnic group).

The census frames of :mod:`prism_stats.census` cross 6 age bands, 2 sexes and 5 ethnic
groups. A participant's cell comes from three survey answers:

* **age** -- the survey's age band is already a census band ("18-24" ... "65+");
  "Prefer not to say" gives no cell;
* **sex** -- from ``gender``: "Male" -> Male, "Female" -> Female. The ONS and ACS tables
  are tabulated by binary sex, so "Non-binary / third gender" and "Prefer not to say"
  give no cell (we do not impute a sex);
* **ethnicity** -- from ``ethnicity.categorised`` via
  :data:`prism_stats.vocab.CENSUS_ETHNICITY_FROM_CATEGORISED`, the mapping of the
  original census rebalancing: White, Black / African -> Black, Asian, Mixed, and
  Hispanic / Latino, Middle Eastern / Arab, Indigenous / First Peoples and Other ->
  Other; "Prefer not to say" gives no cell.

What each downstream use does with participants without a cell
---------------------------------------------------------------
* **MRP** (:mod:`prism_stats.poststrat`): they are *kept in the model* -- their ratings
  inform the LLM, country and conversation-type effects and their own levels
  (non-binary, "Prefer not to say") -- but the census has no such cells, so they get
  no population weight in the post-stratified estimates.
* **Raking / post-stratification** (:mod:`prism_stats.weights`): they cannot be
  weighted to census margins, so they are excluded from the weighted sample; the
  number excluded, by reason, is reported with every result (:func:`no_cell_reasons`).
* **REP flags** (the release's ``in_uk_rep`` / ``in_us_rep``): never eligible, exactly
  as in the original rebalancing (SPEC §2.2 steps 2-3).
"""

from __future__ import annotations

import pandas as pd

from prism_stats import vocab

#: Cell labels in frame order (age outermost, then sex, then ethnicity).
CELL_LABELS: tuple[str, ...] = tuple(
    f"{a}|{s}|{e}"
    for a in vocab.CENSUS_AGES
    for s in vocab.CENSUS_SEXES
    for e in vocab.CENSUS_ETHNICITIES
)

#: Reasons a participant has no census cell, in the order they are checked.
NO_CELL_REASONS: tuple[str, ...] = (
    "age: Prefer not to say",
    "gender: Non-binary / third gender",
    "gender: Prefer not to say",
    "sex: not Male/Female (gender column absent)",
    "ethnicity: Prefer not to say",
)


class HarmonisationError(ValueError):
    """A survey answer outside the vocabulary that the harmonisation knows."""


def _check_values(values: pd.Series, allowed: tuple[str, ...], field: str) -> None:
    bad = sorted(set(values.dropna().astype(str)) - set(allowed))
    if bad:
        raise HarmonisationError(
            f"{field}: values outside the vocabulary {list(allowed)}: {bad[:10]}"
        )


def census_age(age: pd.Series) -> pd.Series:
    """Survey age band -> census age band (NA for "Prefer not to say" or missing).

    Accepts the tidy bands ("18-24") and the release strings ("18-24 years old").
    """
    text = age.astype("string").map(lambda v: vocab.AGE_FROM_RELEASE.get(v, v), na_action="ignore")
    _check_values(text, vocab.AGE_BANDS, "age")
    out = text.where(text.isin(vocab.CENSUS_AGES))
    return pd.Series(
        pd.Categorical(out, categories=vocab.CENSUS_AGES, ordered=True), index=age.index, name="age"
    )


def census_sex(gender: pd.Series) -> pd.Series:
    """``gender`` -> census sex: Male / Female; NA for non-binary, "Prefer not to say"."""
    text = gender.astype("string")
    _check_values(text, vocab.GENDERS, "gender")
    out = text.where(text.isin(vocab.CENSUS_SEXES))
    return pd.Series(
        pd.Categorical(out, categories=vocab.CENSUS_SEXES, ordered=True),
        index=gender.index,
        name="sex",
    )


def census_ethnicity(categorised: pd.Series) -> pd.Series:
    """``ethnicity.categorised`` -> one of the 5 census groups (NA for "Prefer not to say")."""
    text = categorised.astype("string")
    _check_values(text, vocab.ETHNICITY_CATEGORISED, "ethnicity_categorised")
    out = text.map(vocab.CENSUS_ETHNICITY_FROM_CATEGORISED.get, na_action="ignore")
    return pd.Series(
        pd.Categorical(out, categories=vocab.CENSUS_ETHNICITIES, ordered=True),
        index=categorised.index,
        name="ethnicity",
    )


def _census_columns(participants: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The (age, sex, ethnicity) census columns of a participants table.

    Uses the tidy ``sex`` / ``ethnicity`` columns when present (the ``PrismData``
    contract), else derives them from ``gender`` / ``ethnicity_categorised``.
    """
    if "age" not in participants:
        raise HarmonisationError("participants: no 'age' column")
    age = census_age(participants["age"])
    if "sex" in participants:
        sex_text = participants["sex"].astype("string")
        _check_values(sex_text, vocab.CENSUS_SEXES, "sex")
        sex = pd.Series(
            pd.Categorical(sex_text, categories=vocab.CENSUS_SEXES, ordered=True),
            index=participants.index,
        )
    elif "gender" in participants:
        sex = census_sex(participants["gender"])
    else:
        raise HarmonisationError("participants: neither 'sex' nor 'gender' column")
    if "ethnicity" in participants:
        eth_text = participants["ethnicity"].astype("string")
        _check_values(eth_text, vocab.ETHNICITY_GROUPS, "ethnicity")
        eth = pd.Series(
            pd.Categorical(
                eth_text.where(eth_text != vocab.PREFER_NOT),
                categories=vocab.CENSUS_ETHNICITIES,
                ordered=True,
            ),
            index=participants.index,
        )
    elif "ethnicity_categorised" in participants:
        eth = census_ethnicity(participants["ethnicity_categorised"])
    else:
        raise HarmonisationError(
            "participants: neither 'ethnicity' nor 'ethnicity_categorised' column"
        )
    return age, sex, eth


def cell_of(participants: pd.DataFrame) -> pd.Series:
    """Census cell of each participant (``"18-24|Male|White"``), NA when there is none.

    Parameters
    ----------
    participants
        Tidy participants (``PrismData.participants``) or any frame with ``age`` and
        either ``sex``/``ethnicity`` (tidy) or ``gender``/``ethnicity_categorised``.

    Returns
    -------
    pandas.Series
        Categorical over :data:`CELL_LABELS` (frame order), indexed like
        *participants*; NA for "Prefer not to say" on age, gender or ethnicity and for
        non-binary participants.
    """
    age, sex, eth = _census_columns(participants)
    label = age.astype("string") + "|" + sex.astype("string") + "|" + eth.astype("string")
    return pd.Series(
        pd.Categorical(label, categories=CELL_LABELS, ordered=True),
        index=participants.index,
        name="cell",
    )


def no_cell_reasons(participants: pd.DataFrame) -> pd.Series:
    """Why each participant has no census cell (NA where they have one).

    The first applicable reason of :data:`NO_CELL_REASONS` is given. With
    ``value_counts()`` this is the exclusion count that raking reports.
    """
    age, sex, eth = _census_columns(participants)
    reason = pd.Series(pd.NA, index=participants.index, dtype="string", name="no_cell_reason")
    no_sex = sex.isna().to_numpy()
    if "gender" in participants:
        gender = participants["gender"].astype("string")
        nonbinary = (gender == "Non-binary / third gender").fillna(False).to_numpy()
        sex_checks = [(no_sex & nonbinary, NO_CELL_REASONS[1]), (no_sex, NO_CELL_REASONS[2])]
    else:
        sex_checks = [(no_sex, NO_CELL_REASONS[3])]
    checks = [(age.isna().to_numpy(), NO_CELL_REASONS[0]), *sex_checks]
    checks.append((eth.isna().to_numpy(), NO_CELL_REASONS[4]))
    for mask, text in checks:
        reason = reason.mask(reason.isna().to_numpy() & mask, text)
    return reason


def harmonise_participants(participants: pd.DataFrame) -> pd.DataFrame:
    """The census columns, the cell and the no-cell reason of each participant.

    Returns a DataFrame indexed like *participants* with columns ``census_age``,
    ``census_sex``, ``census_ethnicity`` (categoricals of the census vocabularies),
    ``cell`` and ``no_cell_reason``.
    """
    age, sex, eth = _census_columns(participants)
    return pd.DataFrame(
        {
            "census_age": age,
            "census_sex": sex,
            "census_ethnicity": eth,
            "cell": cell_of(participants),
            "no_cell_reason": no_cell_reasons(participants),
        },
        index=participants.index,
    )
