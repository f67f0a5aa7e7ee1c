"""`SegmentMonitorRepository` on SQL: fixed segments (固化客群), size alert rules and lookalike reports."""

from __future__ import annotations

import builtins
from typing import Any

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.segment_monitoring import FixedSegment, LookalikeRecord, SizeRule

segment_fixed = sa.Table(
    "segment_fixed",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("segment_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("stages", sa.Text, nullable=True),
    sa.Column("share_threshold", sa.Float, nullable=False),
    sa.Column("shrink_threshold", sa.Float, nullable=False),
)

segment_size_rules = sa.Table(
    "segment_size_rules",
    metadata,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("drop_pct", sa.Float, nullable=True),
    sa.Column("spike_pct", sa.Float, nullable=True),
    sa.Column("baseline", sa.Integer, nullable=False),
)

segment_lookalikes = sa.Table(
    "segment_lookalikes",
    metadata,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("seed_id", sa.String(64), nullable=False),
    sa.Column("seed_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.Text, nullable=False),
)


class SqlSegmentMonitorRepository:
    """Fixed segments in `segment_fixed`, rules in `segment_size_rules`, reports in `segment_lookalikes`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add_fixed(self, fixed: FixedSegment) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(segment_fixed.insert().values(**_fixed_row(fixed)))
        except sa.exc.IntegrityError:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="segments.fixed-exists",
                title=f"A fixed segment called {fixed.name!r} exists already",
                detail="choose another name",
            ) from None

    def fixed(self, name: str) -> FixedSegment | None:
        with self._engine.connect() as connection:
            row = connection.execute(segment_fixed.select().where(segment_fixed.c.name == name)).mappings().first()
        return _fixed(row) if row is not None else None

    def list_fixed(self, segment_id: str | None = None) -> builtins.list[FixedSegment]:
        query = segment_fixed.select().order_by(segment_fixed.c.name)
        if segment_id is not None:
            query = query.where(segment_fixed.c.segment_id == segment_id)
        with self._engine.connect() as connection:
            return [_fixed(row) for row in connection.execute(query).mappings().all()]

    def update_fixed(self, fixed: FixedSegment) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                segment_fixed.update().where(segment_fixed.c.name == fixed.name).values(**_fixed_row(fixed))
            )

    def size_rule(self, segment_id: str) -> SizeRule | None:
        table = segment_size_rules
        with self._engine.connect() as connection:
            row = connection.execute(table.select().where(table.c.segment_id == segment_id)).mappings().first()
        if row is None:
            return None
        return SizeRule(
            segment_id=row["segment_id"], drop_pct=row["drop_pct"], spike_pct=row["spike_pct"], baseline=row["baseline"]
        )

    def set_size_rule(self, rule: SizeRule) -> None:
        table = segment_size_rules
        values = {"drop_pct": rule.drop_pct, "spike_pct": rule.spike_pct, "baseline": rule.baseline}
        with self._engine.begin() as connection:
            changed = connection.execute(table.update().where(table.c.segment_id == rule.segment_id).values(**values))
            if changed.rowcount == 0:
                connection.execute(table.insert().values(segment_id=rule.segment_id, **values))

    def add_lookalike(self, record: LookalikeRecord) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                segment_lookalikes.insert().values(
                    segment_id=record.segment_id,
                    seed_id=record.seed_id,
                    seed_version=record.seed_version,
                    created_at=record.created_at,
                    report=orjson.dumps(record.report).decode(),
                )
            )

    def lookalike(self, segment_id: str) -> LookalikeRecord | None:
        table = segment_lookalikes
        with self._engine.connect() as connection:
            row = connection.execute(table.select().where(table.c.segment_id == segment_id)).mappings().first()
        if row is None:
            return None
        return LookalikeRecord(
            segment_id=row["segment_id"],
            seed_id=row["seed_id"],
            seed_version=int(row["seed_version"]),
            created_at=as_utc(row["created_at"]),
            report=orjson.loads(row["report"]),
        )


def _fixed_row(fixed: FixedSegment) -> dict[str, Any]:
    return {
        "name": fixed.name,
        "segment_id": fixed.segment_id,
        "version": fixed.version,
        "frozen_at": fixed.frozen_at,
        "as_of": fixed.as_of,
        "members": fixed.members,
        "stages": orjson.dumps(fixed.stages).decode() if fixed.stages is not None else None,
        "share_threshold": fixed.share_threshold,
        "shrink_threshold": fixed.shrink_threshold,
    }


def _fixed(row: sa.RowMapping) -> FixedSegment:
    return FixedSegment(
        name=row["name"],
        segment_id=row["segment_id"],
        version=int(row["version"]),
        frozen_at=as_utc(row["frozen_at"]),
        as_of=as_utc(row["as_of"]),
        members=int(row["members"]),
        stages=orjson.loads(row["stages"]) if row["stages"] is not None else None,
        share_threshold=float(row["share_threshold"]),
        shrink_threshold=float(row["shrink_threshold"]),
    )
