"""The real-time ports on SQL: triggers, trigger state, durable timers, fires and stream offsets.

Each `commit` is one transaction; fires and timers are inserted with ON
CONFLICT DO NOTHING on their ids, trigger state is upserted. Works on SQLite
(embedded) and PostgreSQL, whose dialects both spell the upsert.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from marketloop.adapters.sql.tables import metadata
from marketloop.core.events import as_utc
from marketloop.ports.realtime import (
    SCHEDULER_PARTITION,
    Commit,
    OffsetMovedError,
    StoredFire,
    StoredTimer,
    TriggerRecord,
)

triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("trigger_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

trigger_states = sa.Table(
    "trigger_states",
    metadata,
    sa.Column("trigger_id", sa.String(64), primary_key=True),
    sa.Column("customer", sa.String(200), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Index("ix_trigger_states_customer", "customer"),
)

trigger_timers = sa.Table(
    "trigger_timers",
    metadata,
    sa.Column("timer_id", sa.String(400), primary_key=True),
    sa.Column("trigger_id", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(200), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_trigger_timers_due", "partition", "due_at"),
)

trigger_fires = sa.Table(
    "trigger_fires",
    metadata,
    sa.Column("fire_id", sa.String(400), primary_key=True),
    sa.Column("trigger_id", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(200), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("context", sa.Text, nullable=False),
    sa.Index("ix_trigger_fires_trigger", "trigger_id", "recorded_at"),
)

stream_offsets = sa.Table(
    "stream_offsets",
    metadata,
    sa.Column("consumer", sa.String(40), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
)

_CHUNK = 500  # bound parameters per IN list (SQLite allows 32766; keep statements small)


def _utc(moment: datetime) -> datetime:
    """UTC, so that SQLite's text timestamps compare in time order."""
    return as_utc(moment)


class _Dialect:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def insert(self, table: sa.Table) -> Any:
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class SqlTriggerRepository(_Dialect):
    """`TriggerRepository` on the `triggers` table."""

    def save(self, record: TriggerRecord, timers: Sequence[StoredTimer] = (), *, reset_state: bool = False) -> None:
        with self._engine.begin() as connection:
            revision = connection.execute(sa.select(sa.func.coalesce(sa.func.max(triggers.c.revision), 0))).scalar()
            row = {
                "trigger_id": record.trigger_id,
                "kind": record.kind,
                "definition": record.definition.decode(),
                "enabled": record.enabled,
                "revision": int(revision or 0) + 1,
                "created_at": _utc(record.created_at),
                "updated_at": _utc(record.updated_at),
            }
            insert = self.insert(triggers).values(**row)
            changed = {key: insert.excluded[key] for key in ("kind", "definition", "enabled", "revision", "updated_at")}
            connection.execute(insert.on_conflict_do_update(index_elements=["trigger_id"], set_=changed))
            # A schedule's pending run belongs to its old definition: the new one brings its own.
            timers_of = trigger_timers.delete().where(trigger_timers.c.trigger_id == record.trigger_id)
            if reset_state:
                connection.execute(trigger_states.delete().where(trigger_states.c.trigger_id == record.trigger_id))
            else:
                timers_of = timers_of.where(trigger_timers.c.partition == SCHEDULER_PARTITION)
            connection.execute(timers_of)
            _add_timers(connection, self, timers)

    def get(self, trigger_id: str) -> TriggerRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(triggers.select().where(triggers.c.trigger_id == trigger_id)).mappings().first()
        return _record(row) if row is not None else None

    def list(self) -> list[TriggerRecord]:
        with self._engine.connect() as connection:
            rows = connection.execute(triggers.select().order_by(triggers.c.trigger_id)).mappings().all()
        return [_record(row) for row in rows]

    def revision(self) -> int:
        with self._engine.connect() as connection:
            found = connection.execute(sa.select(sa.func.coalesce(sa.func.max(triggers.c.revision), 0))).scalar()
        return int(found or 0)


def _record(row: sa.RowMapping) -> TriggerRecord:
    return TriggerRecord(
        trigger_id=row["trigger_id"],
        kind=row["kind"],
        definition=row["definition"].encode(),
        enabled=bool(row["enabled"]),
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


def _add_timers(connection: sa.Connection, dialect: _Dialect, timers: Sequence[StoredTimer]) -> None:
    if not timers:
        return
    rows = [
        {
            "timer_id": t.timer_id,
            "trigger_id": t.trigger_id,
            "customer": t.customer,
            "partition": t.partition,
            "due_at": _utc(t.due_at),
            "payload": t.payload.decode(),
        }
        for t in timers
    ]
    connection.execute(dialect.insert(trigger_timers).on_conflict_do_nothing(), rows)


class SqlStreamStore(_Dialect):
    """`StreamStore` on `stream_offsets`, `trigger_states`, `trigger_timers` and `trigger_fires`."""

    def committed_offset(self, consumer: str, partition: int) -> int:
        query = sa.select(stream_offsets.c.offset).where(
            stream_offsets.c.consumer == consumer, stream_offsets.c.partition == partition
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).scalar()
        return -1 if found is None else int(found)

    def states(self, customers: Collection[str]) -> dict[tuple[str, str], bytes]:
        found: dict[tuple[str, str], bytes] = {}
        table = trigger_states.c
        with self._engine.connect() as connection:
            for chunk in _chunks(sorted(customers)):
                query = sa.select(table.trigger_id, table.customer, table.state).where(table.customer.in_(chunk))
                for trigger_id, customer, state in connection.execute(query):
                    found[(trigger_id, customer)] = state.encode()
        return found

    def positions(self, consumer: str) -> dict[int, int]:
        table = stream_offsets.c
        query = sa.select(table.partition, table.offset).where(table.consumer == consumer)
        with self._engine.connect() as connection:
            return {int(partition): int(offset) for partition, offset in connection.execute(query)}

    def save_positions(self, positions: dict[str, dict[int, int]]) -> None:
        rows = [
            {"consumer": consumer, "partition": partition, "offset": offset}
            for consumer, offsets in positions.items()
            for partition, offset in offsets.items()
        ]
        if not rows:
            return
        insert = self.insert(stream_offsets)
        upsert = insert.on_conflict_do_update(
            index_elements=["consumer", "partition"], set_={"offset": insert.excluded.offset}
        )
        with self._engine.begin() as connection:
            connection.execute(upsert, rows)

    def commit(self, commit: Commit) -> None:
        with self._engine.begin() as connection:
            if commit.partition is not None:
                self._move_offset(connection, commit)
            self._write_states(connection, commit.states)
            if commit.cancelled:
                for chunk in _chunks(commit.cancelled):
                    connection.execute(trigger_timers.delete().where(trigger_timers.c.timer_id.in_(chunk)))
            _add_timers(connection, self, commit.timers)
            if commit.fires:
                connection.execute(
                    self.insert(trigger_fires).on_conflict_do_nothing(), [_fire_row(f) for f in commit.fires]
                )

    def _move_offset(self, connection: sa.Connection, commit: Commit) -> None:
        table = stream_offsets.c
        moved = connection.execute(
            stream_offsets.update()
            .where(table.consumer == commit.consumer, table.partition == commit.partition, table.offset == commit.after)
            .values(offset=commit.offset)
        )
        if moved.rowcount == 1:
            return
        exists = connection.execute(
            sa.select(table.offset).where(table.consumer == commit.consumer, table.partition == commit.partition)
        ).first()
        if exists is not None or commit.after != -1:
            raise OffsetMovedError(
                f"{commit.consumer} partition {commit.partition}: committed offset is not {commit.after}"
            )
        connection.execute(
            stream_offsets.insert().values(consumer=commit.consumer, partition=commit.partition, offset=commit.offset)
        )

    def _write_states(self, connection: sa.Connection, states: dict[tuple[str, str], bytes | None]) -> None:
        kept = [{"trigger_id": t, "customer": c, "state": s.decode()} for (t, c), s in states.items() if s is not None]
        gone = [{"t": t, "c": c} for (t, c), s in states.items() if s is None]
        if kept:
            insert = self.insert(trigger_states)
            upsert = insert.on_conflict_do_update(
                index_elements=["trigger_id", "customer"], set_={"state": insert.excluded.state}
            )
            connection.execute(upsert, kept)
        if gone:
            table = trigger_states.c
            delete = trigger_states.delete().where(
                table.trigger_id == sa.bindparam("t"), table.customer == sa.bindparam("c")
            )
            connection.execute(delete, gone)

    def due_timers(self, until: datetime, partitions: Collection[int], limit: int) -> list[StoredTimer]:
        table = trigger_timers.c
        query = (
            trigger_timers.select()
            .where(table.partition.in_(list(partitions)), table.due_at <= _utc(until))
            .order_by(table.due_at, table.timer_id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_timer(row) for row in rows]

    def next_due(self, partitions: Collection[int]) -> datetime | None:
        query = sa.select(sa.func.min(trigger_timers.c.due_at)).where(trigger_timers.c.partition.in_(list(partitions)))
        with self._engine.connect() as connection:
            found = connection.execute(query).scalar()
        return None if found is None else as_utc(found)

    def fires(self, trigger_id: str | None = None, *, limit: int = 100) -> builtins.list[StoredFire]:
        query = (
            trigger_fires.select().order_by(trigger_fires.c.recorded_at.desc(), trigger_fires.c.fire_id).limit(limit)
        )
        if trigger_id is not None:
            query = query.where(trigger_fires.c.trigger_id == trigger_id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [stored_fire(row) for row in rows]


def _timer(row: sa.RowMapping) -> StoredTimer:
    return StoredTimer(
        timer_id=row["timer_id"],
        trigger_id=row["trigger_id"],
        customer=row["customer"],
        partition=int(row["partition"]),
        due_at=as_utc(row["due_at"]),
        payload=row["payload"].encode(),
    )


def _fire_row(fire: StoredFire) -> dict[str, Any]:
    return {
        "fire_id": fire.fire_id,
        "trigger_id": fire.trigger_id,
        "customer": fire.customer,
        "partition": fire.partition,
        "fired_at": _utc(fire.fired_at),
        "recorded_at": _utc(fire.recorded_at),
        "reason": fire.reason,
        "cause": fire.cause.decode(),
        "context": fire.context.decode(),
    }


def stored_fire(row: sa.RowMapping) -> StoredFire:
    """A `trigger_fires` row as the port gives it (also read by the journey store)."""
    return StoredFire(
        fire_id=row["fire_id"],
        trigger_id=row["trigger_id"],
        customer=row["customer"],
        partition=int(row["partition"]),
        fired_at=as_utc(row["fired_at"]),
        recorded_at=as_utc(row["recorded_at"]),
        reason=row["reason"],
        cause=row["cause"].encode(),
        context=row["context"].encode(),
    )
