"""Cleaning source rows into a bank table's typed columns, with the reasons a row cannot be loaded.

Owns the per-column rules of a mapping, in this order: trim, null values,
`map:`, cast to the spec's type (a value that does not parse is a reason
naming the column and the value), `default:` for empty values, personal
fields (phone, ID number and email normalised and validated, the family
name split off, gender and birth date derived from the ID number where the
file has none), allowed values, required columns. All of it is polars
expressions over a lazy frame: a chunk is cleaned in one vectorised pass.
"""

from __future__ import annotations

import polars as pl

from marketloop.core.personal import EMAIL, ID_CARD, NAME, PHONE, PersonalField
from marketloop.profiles import normalise
from marketloop.profiles.casting import cast, expected
from marketloop.profiles.mapping import ColumnMapping, ImportMapping
from marketloop.profiles.reading import LINE

REASON = "_reason"
_PERSONAL_PROBLEMS = {
    PHONE.source: "is not a mainland mobile number",
    EMAIL.source: "is not an email address",
}


def _raw(target: str) -> str:
    return f"__raw.{target}"


def _why(target: str, rule: str) -> str:
    return f"__why.{rule}.{target}"


def output_columns(mapping: ImportMapping) -> list[str]:
    """What `clean` returns besides `_line` and `_reason`: table columns and the personal values in clear."""
    names = [c.target for c in mapping.columns]
    names += [c for c in mapping.derived_from_id_card if c not in names]
    if mapping.column(NAME.source) is not None and NAME.family_name is not None:
        names.append(NAME.family_name)
    return names


def clean(rows: pl.DataFrame, mapping: ImportMapping) -> pl.DataFrame:
    """`_line`, the output columns typed as the spec says, and `_reason` (null for a row that can be loaded)."""
    raw = rows.lazy().select(pl.col(LINE), *(_prepared(c, rows.schema, mapping) for c in mapping.columns))
    raw_schema = raw.collect_schema()
    plain = [c for c in mapping.columns if c.personal is not ID_CARD]
    typed = _with_id_card(
        raw.with_columns(_typed(c, raw_schema[_raw(c.target)], mapping.timezone) for c in plain), mapping
    )
    typed = typed.with_columns(_cast_reason(c, raw_schema[_raw(c.target)]) for c in plain)
    filled = typed.with_columns(_filled(c, mapping) for c in mapping.columns).with_columns(_derived(mapping))
    checked = filled.with_columns(
        *(_allowed_reason(c) for c in mapping.columns if c.allowed),
        *(_required_reason(c) for c in mapping.columns if c.required),
    )
    reasons = [name for name in checked.collect_schema() if name.startswith("__why.")]
    joined = pl.concat_str(reasons, separator="; ", ignore_nulls=True) if reasons else pl.lit(None, pl.String)
    with_reason = checked.with_columns(pl.when(joined != "").then(joined).alias(REASON))
    return with_reason.select(LINE, *output_columns(mapping), REASON).collect()


def _prepared(column: ColumnMapping, schema: pl.Schema, mapping: ImportMapping) -> pl.Expr:
    """The source value after trim, null values and `map:` (text), or the typed Parquet value as it is."""
    if column.source is None:
        return pl.lit(None, dtype=pl.String).alias(_raw(column.target))
    value = pl.col(column.source)
    if schema[column.source] != pl.String:
        if not column.values:
            return value.alias(_raw(column.target))
        value = value.cast(pl.String)
    if column.trim:
        value = value.str.strip_chars()
    empty = (value == "") | value.is_in(list(mapping.null_values)) if mapping.null_values else value == ""
    value = pl.when(empty).then(None).otherwise(value)
    if column.values:
        value = value.replace(dict(column.values))
    return value.alias(_raw(column.target))


def _typed(column: ColumnMapping, source: pl.DataType, timezone: str) -> pl.Expr:
    raw = pl.col(_raw(column.target))
    if column.personal is not None:
        text = raw if source == pl.String else raw.cast(pl.String)
        return _personal_value(column.personal, text).alias(column.target)
    return cast(raw, source, column.type, column.format, timezone).alias(column.target)


def _with_id_card(rows: pl.LazyFrame, mapping: ImportMapping) -> pl.LazyFrame:
    column = mapping.column(ID_CARD.source)
    if column is None:
        return rows
    raw = pl.col(_raw(column.target)).cast(pl.String)
    return normalise.with_id_card(
        rows, raw, value=column.target, problem=_why(column.target, "cast"), label=column.label
    )


def _personal_value(field: PersonalField, text: pl.Expr) -> pl.Expr:
    if field is PHONE:
        return normalise.phone(text)
    if field is EMAIL:
        return normalise.email(text)
    return text.str.strip_chars()


def _cast_reason(column: ColumnMapping, source: pl.DataType) -> pl.Expr:
    raw = pl.col(_raw(column.target))
    shown = raw if source == pl.String else raw.cast(pl.String)
    if column.personal is not None:
        text = pl.lit(f"{column.label} {_PERSONAL_PROBLEMS.get(column.target, 'is not valid')}")
    else:
        text = pl.concat_str(
            pl.lit(f"{column.label}: '"), shown, pl.lit(f"' is not {expected(column.type, column.format)}")
        )
    failed = raw.is_not_null() & pl.col(column.target).is_null()
    return pl.when(failed).then(text).alias(_why(column.target, "cast"))


def _default(column: ColumnMapping, mapping: ImportMapping) -> pl.Expr:
    return cast(pl.lit(str(column.default)), pl.String(), column.type, column.format, mapping.timezone)


def _filled(column: ColumnMapping, mapping: ImportMapping) -> pl.Expr:
    value = pl.col(column.target)
    if column.default is not None and column.personal is None:
        value = pl.when(pl.col(_raw(column.target)).is_null()).then(_default(column, mapping)).otherwise(value)
    return value.alias(column.target)


def _derived(mapping: ImportMapping) -> list[pl.Expr]:
    """Gender and birth date from the ID number where the file has none; the family name from the name."""
    id_card = pl.col(ID_CARD.source)
    derivations = {"gender": normalise.id_card_gender(id_card), "birth_date": normalise.id_card_birth_date(id_card)}
    exprs = []
    for name in mapping.derived_from_id_card:
        exprs.append(
            pl.coalesce(pl.col(name), derivations[name]).alias(name)
            if mapping.column(name)
            else derivations[name].alias(name)
        )
    if mapping.column(NAME.source) is not None and NAME.family_name is not None:
        exprs.append(normalise.family_name(pl.col(NAME.source)).alias(NAME.family_name))
    return exprs


def _allowed_reason(column: ColumnMapping) -> pl.Expr:
    value = pl.col(column.target)
    message = pl.concat_str(pl.lit(f"{column.label}: '"), value, pl.lit(f"' is not one of {', '.join(column.allowed)}"))
    return (
        pl.when(value.is_not_null() & ~value.is_in(list(column.allowed)))
        .then(message)
        .alias(_why(column.target, "allowed"))
    )


def _required_reason(column: ColumnMapping) -> pl.Expr:
    missing = pl.col(column.target).is_null() & pl.col(_raw(column.target)).is_null()
    return pl.when(missing).then(pl.lit(f"{column.label} is missing")).alias(_why(column.target, "required"))
