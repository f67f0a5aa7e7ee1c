"""Polars twins of `marketloop.core.identifiers` and `core.personal.family_name`, for a million rows at once.

The rules are the core's; these expressions only vectorise them (a property
test holds each equal to its scalar original), and say why an ID number is
refused, which the rejects file needs.
"""

from __future__ import annotations

import polars as pl

from marketloop.core.personal import COMPOUND_SURNAMES

_SEPARATORS = r"[\s\-()（）.]"
_PREFIXED_MOBILE = r"^(?:\+86|0086|86)?(1[3-9]\d{9})$"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_EMAIL = r"^([^@\s]+@[^@\s]+\.[^@\s]+)$"
_COMPOUND = sorted(COMPOUND_SURNAMES)


def phone(raw: pl.Expr) -> pl.Expr:
    """The 11-digit mainland mobile number, or null (`core.identifiers.normalise_phone`).

    One regex instead of the core's prefix loop: a mobile number starts with 1, so an optional +86 / 0086 / 86
    before exactly 11 characters is the same rule.
    """
    return raw.str.strip_chars().str.replace_all(_SEPARATORS, "").str.extract(_PREFIXED_MOBILE, 1)


def with_id_card(rows: pl.LazyFrame, raw: pl.Expr, *, value: str, problem: str, label: str) -> pl.LazyFrame:
    """`rows` with `value`, the valid ID number from `raw` or null (`core.identifiers.normalise_id_card`), and
    `problem`, why a non-null `raw` is refused (prefixed with `label`) or null.

    In stages, so that each intermediate is computed once (polars does not share repeated sub-expressions
    inside one expression).
    """
    clean, digits, born = f"{value}.__clean", f"{value}.__digits", f"{value}.__born"
    staged = rows.with_columns(raw.str.strip_chars().str.to_uppercase().alias(clean)).with_columns(
        pl.col(clean).str.slice(0, 17).str.to_integer(strict=False).alias(digits),
        pl.col(clean).str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False).alias(born),
    )
    total = pl.sum_horizontal([pl.col(digits) // 10 ** (16 - i) % 10 * w for i, w in enumerate(_ID_WEIGHTS)])
    expected = (total % 11).replace_strict(dict(enumerate(_ID_CHECK)), return_dtype=pl.String)
    shaped = pl.col(clean).str.contains(r"^[0-9]{17}[0-9X]$")
    checked = pl.col(clean).str.slice(17, 1) == expected
    plausible = pl.col(born).is_not_null() & (pl.col(born).dt.year() >= 1900)
    why = (
        pl.when(pl.col(clean).is_null())
        .then(None)
        .when(pl.col(clean).str.contains(r"^[0-9]{15}$"))
        .then(pl.lit("is a 15-digit first-generation ID number; 18 digits are required"))
        .when(~shaped)
        .then(pl.lit("is not an ID number (18 digits, the last may be X)"))
        .when(~checked)
        .then(pl.lit("has a wrong check digit (GB 11643)"))
        .when(~plausible)
        .then(pl.concat_str(pl.lit("has an impossible birth date "), pl.col(clean).str.slice(6, 8)))
    )
    return staged.with_columns(
        pl.when(shaped & checked & plausible).then(pl.col(clean)).alias(value),
        pl.concat_str(pl.lit(f"{label} "), why).alias(problem),
    ).drop(clean, digits, born)


def id_card_gender(value: pl.Expr) -> pl.Expr:
    """'M' or 'F' from the 17th digit of a valid ID number."""
    digit = value.str.slice(16, 1).cast(pl.Int64, strict=False)
    return pl.when(digit % 2 == 1).then(pl.lit("M")).when(digit % 2 == 0).then(pl.lit("F"))


def id_card_birth_date(value: pl.Expr) -> pl.Expr:
    return value.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)


def email(raw: pl.Expr) -> pl.Expr:
    """The lower-cased address, or null (`core.identifiers.normalise_email`)."""
    return raw.str.strip_chars().str.to_lowercase().str.extract(_EMAIL, 1)


def family_name(name: pl.Expr) -> pl.Expr:
    """`core.personal.family_name`: two characters for a compound surname, else one."""
    value = name.str.strip_chars()
    first_two = value.str.slice(0, 2)
    return pl.when(first_two.is_in(_COMPOUND)).then(first_two).otherwise(value.str.slice(0, 1))
