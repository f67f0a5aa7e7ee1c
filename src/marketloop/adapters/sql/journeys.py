"""The journey runtime's store on SQL: journeys, versions, instances, consumed fires, the step log and the outbox.

`apply` is one transaction; the consumed fire is inserted with ON CONFLICT DO
NOTHING and a zero row count aborts it (the fire was consumed before).
Works on SQLite (embedded) and PostgreSQL.
"""

from __future__ import annotations

import builtins
import functools
import operator
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketloop.adapters.sql.realtime import _Dialect, stored_fire, stream_offsets, trigger_fires
from marketloop.adapters.sql.tables import metadata
from marketloop.core.events import as_utc
from marketloop.ports.journeys import (
    UPDATE_CHANNEL,
    FireAlreadyConsumedError,
    Instance,
    JourneyChange,
    JourneyRecord,
    OutboxRow,
    VersionRecord,
)
from marketloop.ports.realtime import OffsetMovedError, StoredFire

journeys = sa.Table(
    "journeys",
    metadata,
    sa.Column("journey_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("draft", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

journey_versions = sa.Table(
    "journey_versions",
    metadata,
    sa.Column("journey_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(200), nullable=False),
)

journey_instances = sa.Table(
    "journey_instances",
    metadata,
    sa.Column("journey_id", sa.String(64), primary_key=True),
    sa.Column("customer", sa.String(200), primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("cause", sa.String(400), nullable=False, server_default=""),
    # open instances only have a due time (done and sending: NULL), so "due" is an ordered range scan
    sa.Index(
        "ix_journey_instances_due_at",
        "due_at",
        "journey_id",
        "customer",
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    ),
    sa.Index("ix_journey_instances_customer", "customer", "status"),
)

journey_outbox = sa.Table(
    "journey_outbox",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("journey_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("customer", sa.String(200), nullable=False),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_journey_outbox_queued", "status", "not_before"),
)

journey_consumed_fires = sa.Table(
    "journey_consumed_fires",
    metadata,
    sa.Column("journey_id", sa.String(64), primary_key=True),
    sa.Column("fire_id", sa.String(400), primary_key=True),
    sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
)

journey_step_log = sa.Table(
    "journey_step_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("journey_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("customer", sa.String(200), nullable=False),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_journey_step_log_journey", "journey_id", "step", "kind"),
)

_OPEN = ("active", "waiting", "sending")


def _journey(row: sa.RowMapping) -> JourneyRecord:
    return JourneyRecord(
        journey_id=row["journey_id"],
        name=row["name"],
        status=row["status"],
        draft=row["draft"].encode(),
        version=int(row["version"]),
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


def _version(row: sa.RowMapping) -> VersionRecord:
    return VersionRecord(
        journey_id=row["journey_id"],
        version=int(row["version"]),
        definition=row["definition"].encode(),
        published_at=as_utc(row["published_at"]),
        published_by=row["published_by"],
    )


def _instance(row: sa.RowMapping) -> Instance:
    return Instance(
        journey_id=row["journey_id"],
        customer=row["customer"],
        run=int(row["run"]),
        version=int(row["version"]),
        step=row["step"],
        status=row["status"],
        due_at=None if row["due_at"] is None else as_utc(row["due_at"]),
        entered_at=as_utc(row["entered_at"]),
        updated_at=as_utc(row["updated_at"]),
        data=row["data"].encode(),
        cause=row["cause"],
    )


def _outbox(row: sa.RowMapping) -> OutboxRow:
    return OutboxRow(
        key=row["key"],
        journey_id=row["journey_id"],
        version=int(row["version"]),
        customer=row["customer"],
        run=int(row["run"]),
        step=row["step"],
        channel=row["channel"],
        request=row["request"].encode(),
        created_at=as_utc(row["created_at"]),
        status=row["status"],
        not_before=as_utc(row["not_before"]),
        attempts=int(row["attempts"]),
        outcome=None if row["outcome"] is None else row["outcome"].encode(),
    )


def _not_indexed(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """The column in an expression no index covers: with `journey_id IN (...)` usable on the primary key, SQLite
    would read every instance of the journeys and sort them; this way it walks the due index in order."""
    return column + ""


def _row_getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A row dict as the positional tuple of `names` (in C: `itemgetter`)."""
    getter = operator.itemgetter(*names)
    if len(names) == 1:
        return lambda row: (getter(row),)
    return getter


def _outbox_row(row: OutboxRow, time: Callable[[datetime], Any]) -> dict[str, Any]:
    at = time(row.created_at)
    return {
        "key": row.key,
        "journey_id": row.journey_id,
        "version": row.version,
        "customer": row.customer,
        "run": row.run,
        "step": row.step,
        "channel": row.channel,
        "request": row.request.decode(),
        "status": row.status,
        "not_before": time(row.not_before) if row.not_before is not None else at,
        "attempts": row.attempts,
        "outcome": None if row.outcome is None else row.outcome.decode(),
        "created_at": at,
        "updated_at": at,
    }


def _instance_row(instance: Instance, time: Callable[[datetime], Any]) -> dict[str, Any]:
    return {
        "journey_id": instance.journey_id,
        "customer": instance.customer,
        "run": instance.run,
        "version": instance.version,
        "step": instance.step,
        "status": instance.status,
        "due_at": None if instance.due_at is None else time(instance.due_at),
        "entered_at": time(instance.entered_at),
        "updated_at": time(instance.updated_at),
        "data": instance.data.decode(),
        "cause": instance.cause,
    }


class SqlJourneyStore(_Dialect):
    """`JourneyStore` on the journey tables of migrations 0012 and 0015 (the outbox)."""

    def save(self, record: JourneyRecord) -> None:
        row = {
            "journey_id": record.journey_id,
            "name": record.name,
            "status": record.status,
            "draft": record.draft.decode(),
            "version": record.version,
            "created_at": as_utc(record.created_at),
            "updated_at": as_utc(record.updated_at),
        }
        insert = self.insert(journeys).values(**row)
        changed = {key: insert.excluded[key] for key in ("name", "status", "draft", "version", "updated_at")}
        with self._engine.begin() as connection:
            connection.execute(insert.on_conflict_do_update(index_elements=["journey_id"], set_=changed))

    def get(self, journey_id: str) -> JourneyRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(journeys.select().where(journeys.c.journey_id == journey_id)).mappings().first()
        return None if row is None else _journey(row)

    def list(self) -> builtins.list[JourneyRecord]:
        with self._engine.connect() as connection:
            rows = connection.execute(journeys.select().order_by(journeys.c.journey_id)).mappings().all()
        return [_journey(row) for row in rows]

    def publish(self, journey_id: str, definition: bytes, at: datetime, by: str) -> int:
        table = journey_versions.c
        with self._engine.begin() as connection:
            latest = connection.execute(
                sa.select(sa.func.coalesce(sa.func.max(table.version), 0)).where(table.journey_id == journey_id)
            ).scalar()
            version = int(latest or 0) + 1
            connection.execute(
                journey_versions.insert().values(
                    journey_id=journey_id,
                    version=version,
                    definition=definition.decode(),
                    published_at=as_utc(at),
                    published_by=by,
                )
            )
            connection.execute(
                journeys.update()
                .where(journeys.c.journey_id == journey_id)
                .values(version=version, status="active", updated_at=as_utc(at))
            )
        return version

    def version(self, journey_id: str, version: int) -> VersionRecord | None:
        table = journey_versions.c
        query = journey_versions.select().where(table.journey_id == journey_id, table.version == version)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _version(row)

    def versions(self, journey_id: str) -> builtins.list[VersionRecord]:
        table = journey_versions.c
        query = journey_versions.select().where(table.journey_id == journey_id).order_by(table.version)
        with self._engine.connect() as connection:
            return [_version(row) for row in connection.execute(query).mappings()]

    def unconsumed_fires(
        self, journey_id: str, trigger_id: str, since: datetime, limit: int
    ) -> builtins.list[StoredFire]:
        consumed = journey_consumed_fires.c
        taken = sa.select(consumed.fire_id).where(
            consumed.journey_id == journey_id, consumed.fire_id == trigger_fires.c.fire_id
        )
        query = (
            trigger_fires.select()
            .where(
                trigger_fires.c.trigger_id == trigger_id,
                trigger_fires.c.recorded_at >= as_utc(since),
                ~sa.exists(taken),
            )
            .order_by(trigger_fires.c.recorded_at, trigger_fires.c.fire_id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [stored_fire(row) for row in connection.execute(query).mappings()]

    def latest_instances(self, journey_id: str, customers: Collection[str]) -> dict[str, Instance]:
        table = journey_instances.c
        ordered, found = sorted(customers), dict[str, Instance]()
        with self._engine.connect() as connection:
            for start in range(0, len(ordered), 500):
                query = (
                    journey_instances.select()
                    .where(table.journey_id == journey_id, table.customer.in_(ordered[start : start + 500]))
                    .order_by(table.customer, table.run)
                )
                found |= {row["customer"]: _instance(row) for row in connection.execute(query).mappings()}
        return found

    def due(self, journey_ids: Collection[str], until: datetime, limit: int) -> builtins.list[Instance]:
        table = journey_instances.c
        query = (
            journey_instances.select()
            .where(table.due_at.is_not(None), table.due_at <= as_utc(until), table.status.in_(_OPEN))
            .where(_not_indexed(table.journey_id).in_(sorted(journey_ids)))
            .order_by(table.due_at, table.journey_id, table.customer)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [_instance(row) for row in connection.execute(query).mappings()]

    def next_due(self, journey_ids: Collection[str]) -> datetime | None:
        table = journey_instances.c
        query = sa.select(sa.func.min(table.due_at)).where(
            table.due_at.is_not(None), table.status.in_(_OPEN), _not_indexed(table.journey_id).in_(sorted(journey_ids))
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).scalar()
        return None if found is None else as_utc(found)

    def open_instances(self, customers: Collection[str]) -> builtins.list[Instance]:
        table = journey_instances.c
        found: builtins.list[Instance] = []
        ordered = sorted(customers)
        with self._engine.connect() as connection:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                query = journey_instances.select().where(table.customer.in_(chunk), table.status.in_(_OPEN))
                found += [_instance(row) for row in connection.execute(query).mappings()]
        return found

    def running_versions(self) -> builtins.list[tuple[str, int]]:
        table = journey_instances.c
        current = sa.select(journeys.c.journey_id, journeys.c.version).where(journeys.c.version > 0)
        open_runs = sa.select(table.journey_id, table.version).where(table.status.in_(_OPEN)).distinct()
        with self._engine.connect() as connection:
            found = {(j, int(v)) for j, v in connection.execute(current)}
            found |= {(j, int(v)) for j, v in connection.execute(open_runs)}
        return sorted(found)

    def apply(self, change: JourneyChange) -> None:
        with self._engine.begin() as connection:
            self._consume_all(connection, change.fire_journey, change.fires)
            if change.offset is not None:
                _move_offset(connection, *change.offset)
            time = self._time
            if change.instances:
                self._bulk(connection, "instances", [_instance_row(i, time) for i in change.instances])
            if change.outbox:
                self._bulk(connection, "outbox", [_outbox_row(row, time) for row in change.outbox])
            if change.log:
                self._bulk(
                    connection,
                    "log",
                    [
                        {
                            "journey_id": r.journey_id,
                            "version": r.version,
                            "customer": r.customer,
                            "run": r.run,
                            "step": r.step,
                            "kind": r.kind,
                            "detail": r.detail,
                            "at": time(r.at),
                        }
                        for r in change.log
                    ],
                )

    def _bulk(self, connection: sa.Connection, what: str, rows: builtins.list[dict[str, Any]]) -> int:
        """Many rows through the driver's executemany: a batch entry writes millions, and SQLAlchemy's
        per-row parameter processing would be most of its time. Times come converted (`_time`). Returns the
        rows written (both drivers sum them over an executemany)."""
        sql, getter = self._statements[what]
        return connection.exec_driver_sql(sql, rows if getter is None else [getter(row) for row in rows]).rowcount

    @functools.cached_property
    def _statements(self) -> dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]] | None]]:
        insert = self.insert(journey_instances)
        kept = ("version", "step", "status", "due_at", "updated_at", "data")
        statements = {
            "instances": insert.on_conflict_do_update(
                index_elements=["journey_id", "customer", "run"], set_={k: insert.excluded[k] for k in kept}
            ),
            "outbox": self.insert(journey_outbox).on_conflict_do_nothing(index_elements=["key"]),
            "consumed": self.insert(journey_consumed_fires).on_conflict_do_nothing(),
            "log": journey_step_log.insert().values(
                {c.name: sa.bindparam(c.name) for c in journey_step_log.c if c.name != "id"}
            ),
        }
        found: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]] | None]] = {}
        for what, statement in statements.items():
            compiled = statement.compile(dialect=self._engine.dialect)
            names = tuple(compiled.positiontup or ())
            found[what] = (str(compiled), _row_getter(names) if compiled.positional else None)
        return found

    @functools.cached_property
    def _time(self) -> Callable[[datetime], Any]:
        """A time as the driver takes it: SQLite stores SQLAlchemy's text form, PostgreSQL the datetime."""
        if self._engine.dialect.name == "sqlite":
            # a batch writes the same few times millions of times: convert each once
            return functools.lru_cache(maxsize=4096)(lambda at: as_utc(at).strftime("%Y-%m-%d %H:%M:%S.%f"))
        return as_utc

    def is_consumed(self, journey_id: str, fire_id: str) -> bool:
        table = journey_consumed_fires.c
        query = sa.select(table.fire_id).where(table.journey_id == journey_id, table.fire_id == fire_id)
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def entries(self, journey_id: str) -> dict[int, int]:
        table = journey_instances.c
        query = sa.select(table.version, sa.func.count()).where(table.journey_id == journey_id).group_by(table.version)
        with self._engine.connect() as connection:
            return {int(version): int(count) for version, count in connection.execute(query)}

    def latest_runs(self, journey_id: str) -> dict[str, Instance]:
        table = journey_instances.c
        query = journey_instances.select().where(table.journey_id == journey_id).order_by(table.customer, table.run)
        with self._engine.connect() as connection:
            return {row["customer"]: _instance(row) for row in connection.execute(query).mappings()}

    def queued(self, until: datetime, limit: int, *, channels: str = "all") -> builtins.list[OutboxRow]:
        table = journey_outbox.c
        updates = table.channel == UPDATE_CHANNEL
        kinds = {"all": sa.true(), "touches": ~updates, "updates": updates}
        query = (
            journey_outbox.select()
            .where(table.status == "queued", table.not_before <= as_utc(until), kinds[channels])
            .order_by(table.not_before)  # no tie-break: with one, SQLite sorts a whole batch entry's rows each time
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [_outbox(row) for row in connection.execute(query).mappings()]

    def settle(
        self, done: Collection[tuple[OutboxRow, bytes]], later: Collection[tuple[str, datetime]], at: datetime
    ) -> None:
        box, runs = journey_outbox.c, journey_instances.c
        moment = as_utc(at)
        with self._engine.begin() as connection:
            if done:
                connection.execute(
                    journey_outbox.update()
                    .where(box.key == sa.bindparam("b_key"), box.status == "queued")
                    .values(status="done", outcome=sa.bindparam("b_outcome"), updated_at=moment),
                    [{"b_key": row.key, "b_outcome": outcome.decode()} for row, outcome in done],
                )
                connection.execute(
                    journey_instances.update()
                    .where(
                        runs.journey_id == sa.bindparam("b_journey"),
                        runs.customer == sa.bindparam("b_customer"),
                        runs.run == sa.bindparam("b_run"),
                        runs.status == "sending",
                    )
                    .values(status="active", due_at=moment, updated_at=moment),
                    [{"b_journey": r.journey_id, "b_customer": r.customer, "b_run": r.run} for r, _ in done],
                )
            if later:
                connection.execute(
                    journey_outbox.update()
                    .where(box.key == sa.bindparam("b_key"), box.status == "queued")
                    .values(not_before=sa.bindparam("b_when"), attempts=box.attempts + 1, updated_at=moment),
                    [{"b_key": key, "b_when": as_utc(when)} for key, when in later],
                )

    def outcomes(self, keys: Collection[str]) -> dict[str, bytes]:
        table = journey_outbox.c
        ordered, found = sorted(keys), dict[str, bytes]()
        with self._engine.connect() as connection:
            for start in range(0, len(ordered), 500):
                # by key alone: with `status = 'done'` in the query SQLite walked the status index through
                # every settled row (a third of the runner's time at 1,000 touches/s, growing with the outbox)
                query = sa.select(table.key, table.status, table.outcome).where(
                    table.key.in_(ordered[start : start + 500])
                )
                found |= {
                    key: outcome.encode()
                    for key, status, outcome in connection.execute(query)
                    if status == "done" and outcome is not None
                }
        return found

    def _consume_all(self, connection: sa.Connection, journey_id: str, fires: builtins.list[StoredFire]) -> None:
        """Every fire's consumed row in one statement; any of them there already refuses the whole change."""
        if not fires:
            return
        time = self._time
        rows = [{"journey_id": journey_id, "fire_id": f.fire_id, "consumed_at": time(f.recorded_at)} for f in fires]
        if self._bulk(connection, "consumed", rows) != len(fires):
            named = fires[0].fire_id if len(fires) == 1 else f"one of {len(fires)} fires"
            raise FireAlreadyConsumedError(f"journey {journey_id} consumed {named} before")

    def counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        log, table = journey_step_log.c, journey_instances.c
        found: dict[str, dict[str, int]] = {}
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(log.step, log.kind, sa.func.count())
                .where(log.journey_id == journey_id)
                .group_by(log.step, log.kind)
            )
            for step, kind, count in rows:
                found.setdefault(step, {})[kind] = int(count)
            waiting = connection.execute(
                sa.select(table.step, table.status, sa.func.count())
                .where(table.journey_id == journey_id, table.status.in_(("waiting", "sending")))
                .group_by(table.step, table.status)
            )
            for step, status, count in waiting:
                found.setdefault(step, {})[status] = int(count)
        return found


def _move_offset(connection: sa.Connection, consumer: str, partition: int, after: int, offset: int) -> None:
    table = stream_offsets.c
    moved = connection.execute(
        stream_offsets.update()
        .where(table.consumer == consumer, table.partition == partition, table.offset == after)
        .values(offset=offset)
    )
    if moved.rowcount == 1:
        return
    exists = connection.execute(
        sa.select(table.offset).where(table.consumer == consumer, table.partition == partition)
    ).first()
    if exists is not None or after != -1:
        raise OffsetMovedError(f"{consumer} partition {partition}: committed offset is not {after}")
    connection.execute(stream_offsets.insert().values(consumer=consumer, partition=partition, offset=offset))
