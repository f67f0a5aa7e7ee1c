"""Event rows → the JSON records the event log carries, built column-wise with polars.

A record is exactly what `CollectService` writes for an accepted event:
`msgspec.json.encode(Event)` (defaults omitted, times as RFC 3339 UTC; the
device time `original_timestamp` is left out, as a client without one
would), so
the loader cannot tell simulated events from collected ones (a test
decodes them back into `Event`). Building the text in polars keeps the
per-event Python work at nothing: a chunk of a million events becomes one
string, split into records in C.

`message_id`s are deterministic: the seed's uuid5 namespace
(`uuid5(NAMESPACE_URL, "marketloop:simulator:<seed>")`) with the event's
number in the last 12 digits, so a re-run with the same seed produces the
same ids and the warehouse drops them as duplicates.
"""

from __future__ import annotations

import uuid

import polars as pl

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"


def message_id_prefix(seed: int) -> str:
    """The first 24 characters of every message id of a seed's simulation."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"marketloop:simulator:{seed}"))[:24]


def _time(microseconds: pl.Expr) -> pl.Expr:
    # msgspec leaves out a zero fraction; a microsecond more keeps the text in one format.
    exact = pl.when(microseconds % 1_000_000 == 0).then(microseconds + 1).otherwise(microseconds)
    return pl.from_epoch(exact, time_unit="us").dt.strftime(TIME_FORMAT)


def _text(key: str, value: pl.Expr) -> pl.Expr:
    """`,"key":"value"`, or null (then skipped) when the value is null."""
    return pl.concat_str([pl.lit(f',"{key}":"'), value, pl.lit('"')])


def _raw(key: str, value: pl.Expr) -> pl.Expr:
    """`,"key":value` for JSON text, or null when the value is null."""
    return pl.concat_str([pl.lit(f',"{key}":'), value])


def encode(events: pl.DataFrame, *, source_id: str, prefix: str, first_number: int) -> pl.Series:
    """The log record of each event row, numbered from `first_number`.

    `events` has `type`, `event`, `ts` and `received` (µs since the epoch, UTC), `anonymous_id`,
    `user_id`, and `properties`, `traits`, `context` as JSON text (null when absent).
    """
    number = (pl.int_range(pl.len(), dtype=pl.Int64) + first_number).cast(pl.String).str.zfill(12)
    identify = pl.col("type") == "identify"
    record = pl.concat_str(
        [
            pl.lit('{"message_id":"' + prefix),
            number,
            pl.lit('","type":"'),
            pl.col("type"),
            pl.lit(f'","source_id":"{source_id}","received_at":"'),
            _time(pl.col("received")),
            pl.lit('","timestamp":"'),
            _time(pl.col("ts")),
            pl.lit('"'),
            _text("event", pl.col("event")),
            _text("anonymous_id", pl.col("anonymous_id")),
            _text("user_id", pl.col("user_id")),
            pl.when(identify).then(pl.lit(',"profile_op":"set"')),
            _raw("properties", pl.col("properties")),
            _raw("traits", pl.col("traits")),
            _raw("context", pl.col("context")),
            pl.lit("}"),
        ],
        ignore_nulls=True,
    )
    return events.select(record.alias("record")).to_series()


def as_bytes(records: pl.Series) -> list[bytes]:
    """Records as UTF-8 bytes, one per event (polars makes the bytes objects)."""
    encoded: list[bytes] = records.cast(pl.Binary).to_list()
    return encoded
