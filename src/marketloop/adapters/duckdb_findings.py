"""Reading tracking-plan findings out of DuckDB: stored violations and the quarantine.

`DuckDBWarehouse` delegates its read and release methods here. Times are read
as epoch microseconds, so no time-zone package is needed to turn DuckDB's
TIMESTAMPTZ into Python datetimes. Quarantined records are stored by DuckDB's
`to_json` (space-separated times, nulls for absent fields); `event_from_record`
turns them back into the `Event` that was collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import msgspec
import orjson

from marketloop.core.events import Event
from marketloop.ports.warehouse import QuarantinedEvent, StoredViolation, ViolationCount, ViolationFilter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_FIELDS = ("received_at", "timestamp", "original_timestamp", "sent_at")
_EVENT_FIELDS = frozenset(Event.__struct_fields__)


def _moment(epoch_us: int | None) -> datetime | None:
    return None if epoch_us is None else _EPOCH + timedelta(microseconds=int(epoch_us))


def _at(epoch_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(epoch_us))


def _where(where: ViolationFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (("source = ?", where.source), ("event = ?", where.event), ("received_at >= ?", where.since)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def violations(cursor: duckdb.DuckDBPyConnection, where: ViolationFilter, limit: int) -> list[StoredViolation]:
    condition, params = _where(where)
    rows = cursor.execute(
        "SELECT message_id, source, type, event, epoch_us(received_at), violation, quarantined "
        f"FROM tracking_violations{condition} ORDER BY received_at DESC, message_id, violation LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [
        StoredViolation(
            message_id=row[0],
            source=row[1],
            type=row[2],
            event=row[3],
            received_at=_at(row[4]),
            violation=row[5],
            quarantined=bool(row[6]),
        )
        for row in rows
    ]


def violation_summary(cursor: duckdb.DuckDBPyConnection, where: ViolationFilter) -> list[ViolationCount]:
    condition, params = _where(where)
    rows = cursor.execute(
        "SELECT type, event, violation, count(*) AS n, count(DISTINCT message_id), epoch_us(max(received_at)) "
        f"FROM tracking_violations{condition} GROUP BY type, event, violation "
        "ORDER BY n DESC, type, event NULLS FIRST, violation",
        params,
    ).fetchall()
    return [
        ViolationCount(
            type=row[0], event=row[1], violation=row[2], count=row[3], messages=row[4], last_seen=_at(row[5])
        )
        for row in rows
    ]


def quarantined(
    cursor: duckdb.DuckDBPyConnection,
    *,
    source: str | None,
    include_released: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[QuarantinedEvent]:
    clauses = [] if include_released else ["released_at IS NULL"]
    params: list[Any] = []
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    if after is not None:
        clauses.append("(received_at > ? OR (received_at = ? AND message_id > ?))")
        params += [after[0], after[0], after[1]]
    condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = cursor.execute(
        "SELECT message_id, source, event, epoch_us(received_at), epoch_us(released_at), record "
        f"FROM quarantine{condition} ORDER BY received_at, message_id LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [_quarantined(row) for row in rows]


def _quarantined(row: tuple[Any, ...]) -> QuarantinedEvent:
    record = event_from_record(row[5])
    return QuarantinedEvent(
        message_id=row[0],
        source=row[1],
        event=row[2],
        received_at=_at(row[3]),
        released_at=_moment(row[4]),
        violations=list(record.violations),
        record=record,
    )


def event_from_record(text: str | bytes) -> Event:
    """The `Event` of a quarantine `record` (DuckDB `to_json` of the loaded row)."""
    stored: dict[str, Any] = orjson.loads(text)
    fields = {key: value for key, value in stored.items() if value is not None and key in _EVENT_FIELDS}
    for key in _TIME_FIELDS:
        if isinstance(fields.get(key), str):
            fields[key] = datetime.fromisoformat(fields[key])
    return msgspec.convert(fields, Event)


def release(connection: duckdb.DuckDBPyConnection, message_ids: Sequence[str], released_at: datetime) -> int:
    row = connection.execute(
        "UPDATE quarantine SET released_at = ? WHERE released_at IS NULL "
        "AND message_id IN (SELECT unnest(?::VARCHAR[]))",
        [released_at, list(message_ids)],
    ).fetchone()
    return int(row[0]) if row else 0
