"""The journey runtime's store on SQL: journeys, versions, instances, consumed fires and the step log.

`apply` is one transaction; the consumed fire is inserted with ON CONFLICT DO
NOTHING and a zero row count aborts it (the fire was consumed before).
Works on SQLite (embedded) and PostgreSQL.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketloop.adapters.sql.realtime import _Dialect, stored_fire, stream_offsets, trigger_fires
from marketloop.adapters.sql.tables import metadata
from marketloop.core.events import as_utc
from marketloop.ports.journeys import (
    FireAlreadyConsumedError,
    Instance,
    JourneyChange,
    JourneyRecord,
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
    sa.Index("ix_journey_instances_due", "status", "due_at"),
    sa.Index("ix_journey_instances_customer", "customer", "status"),
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

_OPEN = ("active", "waiting")


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
    )


def _instance_row(instance: Instance) -> dict[str, Any]:
    return {
        "journey_id": instance.journey_id,
        "customer": instance.customer,
        "run": instance.run,
        "version": instance.version,
        "step": instance.step,
        "status": instance.status,
        "due_at": None if instance.due_at is None else as_utc(instance.due_at),
        "entered_at": as_utc(instance.entered_at),
        "updated_at": as_utc(instance.updated_at),
        "data": instance.data.decode(),
    }


class SqlJourneyStore(_Dialect):
    """`JourneyStore` on the journey tables of migration 0012."""

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

    def latest_instance(self, journey_id: str, customer: str) -> Instance | None:
        table = journey_instances.c
        query = (
            journey_instances.select()
            .where(table.journey_id == journey_id, table.customer == customer)
            .order_by(table.run.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _instance(row)

    def due(self, journey_ids: Collection[str], until: datetime, limit: int) -> builtins.list[Instance]:
        table = journey_instances.c
        query = (
            journey_instances.select()
            .where(table.status.in_(_OPEN), table.due_at <= as_utc(until), table.journey_id.in_(sorted(journey_ids)))
            .order_by(table.due_at, table.journey_id, table.customer)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [_instance(row) for row in connection.execute(query).mappings()]

    def next_due(self, journey_ids: Collection[str]) -> datetime | None:
        table = journey_instances.c
        query = sa.select(sa.func.min(table.due_at)).where(
            table.status.in_(_OPEN), table.journey_id.in_(sorted(journey_ids))
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
            for fire in change.fires:
                self._consume(connection, change.fire_journey, fire)
            if change.offset is not None:
                _move_offset(connection, *change.offset)
            for instance in change.instances:
                insert = self.insert(journey_instances).values(**_instance_row(instance))
                kept = ("version", "step", "status", "due_at", "updated_at", "data")
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=["journey_id", "customer", "run"], set_={k: insert.excluded[k] for k in kept}
                    )
                )
            if change.log:
                connection.execute(
                    journey_step_log.insert(),
                    [
                        {
                            "journey_id": r.journey_id,
                            "version": r.version,
                            "customer": r.customer,
                            "run": r.run,
                            "step": r.step,
                            "kind": r.kind,
                            "detail": r.detail,
                            "at": as_utc(r.at),
                        }
                        for r in change.log
                    ],
                )

    def _consume(self, connection: sa.Connection, journey_id: str, fire: StoredFire) -> None:
        inserted = connection.execute(
            self.insert(journey_consumed_fires)
            .values(journey_id=journey_id, fire_id=fire.fire_id, consumed_at=as_utc(fire.recorded_at))
            .on_conflict_do_nothing()
        )
        if inserted.rowcount != 1:
            raise FireAlreadyConsumedError(f"journey {journey_id} consumed fire {fire.fire_id} before")

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
                sa.select(table.step, sa.func.count())
                .where(table.journey_id == journey_id, table.status == "waiting")
                .group_by(table.step)
            )
            for step, count in waiting:
                found.setdefault(step, {})["waiting"] = int(count)
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
