"""`SegmentRepository` on SQL: every version of every segment definition, and the snapshots taken."""

from __future__ import annotations

import builtins
from typing import Any

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.segments import SegmentVersion, Snapshot

segment_versions = sa.Table(
    "segment_versions",
    metadata,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

segment_snapshots = sa.Table(
    "segment_snapshots",
    metadata,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("snapshot_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("customers", sa.Integer, nullable=False),
)


class SqlSegmentRepository:
    """Segment versions in `segment_versions`, snapshot records in `segment_snapshots`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, segment: SegmentVersion) -> None:
        row = {
            "segment_id": segment.segment_id,
            "version": segment.version,
            "name": segment.name,
            "description": segment.description,
            "definition": orjson.dumps(segment.definition).decode(),
            "created_at": segment.created_at,
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(segment_versions.insert().values(**row))
        except sa.exc.IntegrityError:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="segments.version-exists",
                title="The segment was changed meanwhile",
                detail=f"{segment.segment_id} version {segment.version} already exists; reload it and save again",
            ) from None

    def latest(self, segment_id: str) -> SegmentVersion | None:
        query = (
            segment_versions.select()
            .where(segment_versions.c.segment_id == segment_id)
            .order_by(segment_versions.c.version.desc())
            .limit(1)
        )
        return self._one(query)

    def get(self, segment_id: str, version: int) -> SegmentVersion | None:
        table = segment_versions.c
        return self._one(segment_versions.select().where(table.segment_id == segment_id, table.version == version))

    def _one(self, query: sa.Select[Any]) -> SegmentVersion | None:
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _version(row) if row is not None else None

    def list(self) -> list[SegmentVersion]:
        newest = (
            sa.select(segment_versions.c.segment_id, sa.func.max(segment_versions.c.version).label("version"))
            .group_by(segment_versions.c.segment_id)
            .subquery()
        )
        query = (
            segment_versions.select()
            .join(
                newest,
                sa.and_(
                    newest.c.segment_id == segment_versions.c.segment_id, newest.c.version == segment_versions.c.version
                ),
            )
            .order_by(segment_versions.c.segment_id)
        )
        with self._engine.connect() as connection:
            return [_version(row) for row in connection.execute(query).mappings().all()]

    def add_snapshot(self, snapshot: Snapshot) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                segment_snapshots.insert().values(
                    segment_id=snapshot.segment_id,
                    snapshot_at=snapshot.snapshot_at,
                    version=snapshot.version,
                    as_of=snapshot.as_of,
                    customers=snapshot.customers,
                )
            )

    def snapshots(self, segment_id: str) -> builtins.list[Snapshot]:
        query = (
            segment_snapshots.select()
            .where(segment_snapshots.c.segment_id == segment_id)
            .order_by(segment_snapshots.c.snapshot_at.desc())
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            Snapshot(
                segment_id=row["segment_id"],
                version=int(row["version"]),
                snapshot_at=as_utc(row["snapshot_at"]),
                as_of=as_utc(row["as_of"]),
                customers=int(row["customers"]),
            )
            for row in rows
        ]


def _version(row: sa.RowMapping) -> SegmentVersion:
    return SegmentVersion(
        segment_id=row["segment_id"],
        version=int(row["version"]),
        name=row["name"],
        description=row["description"],
        definition=orjson.loads(row["definition"]),
        created_at=as_utc(row["created_at"]),
    )
