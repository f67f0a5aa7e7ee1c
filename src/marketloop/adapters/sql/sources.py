"""`SourceRepository` on SQL."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketloop.adapters.sql.tables import sources
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.state import Source, TrackingMode


class SqlSourceRepository:
    """Sources in the `sources` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, source: Source) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(sources.insert().values(**_row(source)))
        except sa.exc.IntegrityError:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="sources.exists",
                title="A source with this name or project already exists",
                detail=f"name={source.name!r} project={source.project!r}",
            ) from None

    def _one(self, condition: sa.ColumnElement[bool]) -> Source | None:
        with self._engine.connect() as connection:
            row = connection.execute(sources.select().where(condition)).mappings().first()
        return _source(row) if row is not None else None

    def get(self, name_or_id: str) -> Source | None:
        return self._one(sa.or_(sources.c.id == name_or_id, sources.c.name == name_or_id))

    def by_key_hash(self, key_hash: str) -> Source | None:
        return self._one(sources.c.key_hash == key_hash)

    def by_project(self, project: str) -> Source | None:
        return self._one(sources.c.project == project)

    def list(self) -> list[Source]:
        with self._engine.connect() as connection:
            rows = connection.execute(sources.select().order_by(sources.c.created_at)).mappings().all()
        return [_source(row) for row in rows]

    def update(self, source: Source) -> None:
        with self._engine.begin() as connection:
            connection.execute(sources.update().where(sources.c.id == source.id).values(**_row(source)))


def _row(source: Source) -> dict[str, object]:
    return {
        "id": source.id,
        "name": source.name,
        "key_hash": source.key_hash,
        "enabled": source.enabled,
        "tracking_mode": source.tracking_mode.value,
        "project": source.project,
        "created_at": source.created_at,
    }


def _source(row: sa.RowMapping) -> Source:
    created: datetime = row["created_at"]
    return Source(
        id=row["id"],
        name=row["name"],
        key_hash=row["key_hash"],
        enabled=bool(row["enabled"]),
        tracking_mode=TrackingMode(row["tracking_mode"]),
        project=row["project"],
        created_at=as_utc(created),
    )
