"""Check and shape assignments, touches and conversions (from a journey or a file) into the warehouse schemas.

A file's timestamps may be text (ISO 8601; without an offset they are UTC)
or typed; ids may be numbers. A row that breaks a rule refuses the whole
batch with the first offending row numbers, so nothing is half-imported.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from marketloop.experiments.analyze import invalid
from marketloop.ports.experiments import (
    ASSIGNMENT_SCHEMA,
    CONVERSION_SCHEMA,
    TOUCH_SCHEMA,
    TOUCH_STAGES,
    Experiment,
)

_TIME = pl.Datetime("us", "UTC")


def assignments_frame(experiment: Experiment, rows: pl.DataFrame) -> pl.DataFrame:
    """Rows (cust_no, variant, assigned_at) of this experiment; every variant must be one it planned."""
    shaped = _shape("assignments", rows.with_columns(experiment_id=pl.lit(experiment.experiment_id)), ASSIGNMENT_SCHEMA)
    planned = [v.name for v in experiment.variants]
    _refuse(
        shaped,
        ~pl.col("variant").is_in(planned),
        "assignments",
        f"variant is not one of the experiment's variants ({', '.join(planned)})",
    )
    return shaped


def touches_frame(experiment_id: str, rows: pl.DataFrame) -> pl.DataFrame:
    """Rows (touch_id, cust_no, channel, stage, touched_at) of this experiment; stages from TOUCH_STAGES."""
    shaped = _shape("touches", rows.with_columns(experiment_id=pl.lit(experiment_id)), TOUCH_SCHEMA)
    _refuse(shaped, ~pl.col("stage").is_in(TOUCH_STAGES), "touches", f"stage is not one of {', '.join(TOUCH_STAGES)}")
    return shaped


def conversions_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows (conversion_id, cust_no, goal, converted_at[, revenue, aum, benefit_cost]); missing money is 0."""
    filled = rows.with_columns(
        [pl.lit(0.0).alias(name) for name in ("revenue", "aum", "benefit_cost") if name not in rows.columns]
    )
    shaped = _shape("conversions", filled, CONVERSION_SCHEMA)
    _refuse(shaped, pl.col("benefit_cost") < 0, "conversions", "benefit_cost is negative")
    return shaped


def _shape(what: str, rows: pl.DataFrame, schema: dict[str, type[pl.DataType] | pl.DataType]) -> pl.DataFrame:
    missing = [name for name in schema if name not in rows.columns]
    if missing:
        raise invalid(
            "column-missing",
            f"The {what} are missing a column",
            f"no column {', '.join(missing)}; the {what} need {', '.join(n for n in schema if n != 'experiment_id')}",
        )
    columns = [_cast(rows, name, kind, what) for name, kind in schema.items()]
    shaped = rows.select(columns)
    for name in schema:
        _refuse(shaped, pl.col(name).is_null(), what, f"{name} is empty or not valid")
    return shaped


def _cast(rows: pl.DataFrame, name: str, kind: type[pl.DataType] | pl.DataType, what: str) -> pl.Expr:
    column = pl.col(name)
    if kind == _TIME:
        if rows.schema[name] == pl.String:
            return column.str.to_datetime(time_zone="UTC", strict=False, time_unit="us").alias(name)
        if not isinstance(rows.schema[name], pl.Datetime | pl.Date):
            raise invalid(
                "not-a-time", f"The {what} have a column that is not a time", f"{name} is {rows.schema[name]}"
            )
        given = rows.schema[name]
        if isinstance(given, pl.Datetime) and given.time_zone is not None:
            return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias(name)
        return column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(name)
    if kind == pl.Float64 and not (rows.schema[name].is_numeric() or rows.schema[name] == pl.Null):
        raise invalid("metric-not-numeric", f"The {what} have a column that is not numeric", f"{name} holds text")
    return column.cast(kind, strict=False).alias(name)


def _refuse(rows: pl.DataFrame, bad: pl.Expr, what: str, reason: str) -> None:
    found = rows.with_row_index("row", offset=1).filter(bad)["row"]
    if found.len():
        first: Iterable[int] = found.head(5).to_list()
        raise invalid(
            "bad-rows",
            f"Some {what} are not valid",
            f"{found.len()} rows: {reason} (first rows: {', '.join(str(r) for r in first)})",
        )
