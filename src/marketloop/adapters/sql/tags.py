"""`TagRepository` on SQL: every version of every tag definition, refresh runs and per-tag statistics."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.tags import Lineage, Snapshots, TagCategory, TagKind, TagRun, TagStats, TagVersion

tag_versions = sa.Table(
    "tag_versions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("business_line", sa.String(64), nullable=False),
    sa.Column("shared_with", sa.Text, nullable=False),
    sa.Column("definition", sa.Text, nullable=True),
    sa.Column("tag_values", sa.Text, nullable=False),
    sa.Column("snapshots", sa.String(16), nullable=False),
    sa.Column("lineage", sa.Text, nullable=False),
    sa.Column("retired", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

tag_runs = sa.Table(
    "tag_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("full", sa.Boolean, nullable=False),
    sa.Column("refreshed", sa.Text, nullable=False),
    sa.Column("skipped", sa.Text, nullable=False),
)

tag_stats = sa.Table(
    "tag_stats",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("population", sa.Integer, nullable=False),
    sa.Column("customers", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("distribution", sa.Text, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


class SqlTagRepository:
    """Tag versions in `tag_versions`; runs in `tag_runs`; statistics in `tag_stats`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, tag: TagVersion) -> None:
        row = {
            "name": tag.name,
            "version": tag.version,
            "kind": tag.kind.value,
            "category": tag.category.value,
            "title": tag.title,
            "description": tag.description,
            "owner": tag.owner,
            "business_line": tag.business_line,
            "shared_with": _dumps(list(tag.shared_with)),
            "definition": _dumps(tag.definition) if tag.definition is not None else None,
            "tag_values": _dumps(list(tag.values)),
            "snapshots": tag.snapshots.value,
            "lineage": _dumps(_lineage_json(tag.lineage)),
            "retired": tag.retired,
            "created_at": tag.created_at,
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(tag_versions.insert().values(**row))
        except sa.exc.IntegrityError:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="tags.version-exists",
                title="The tag was changed meanwhile",
                detail=f"{tag.name} version {tag.version} already exists; reload it and save again",
            ) from None

    def latest(self, name: str) -> TagVersion | None:
        query = tag_versions.select().where(tag_versions.c.name == name).order_by(tag_versions.c.version.desc())
        return self._one(query.limit(1))

    def get(self, name: str, version: int) -> TagVersion | None:
        return self._one(tag_versions.select().where(tag_versions.c.name == name, tag_versions.c.version == version))

    def versions(self, name: str) -> list[TagVersion]:
        query = tag_versions.select().where(tag_versions.c.name == name).order_by(tag_versions.c.version)
        with self._engine.connect() as connection:
            return [_version(row) for row in connection.execute(query).mappings().all()]

    def _one(self, query: sa.Select[Any]) -> TagVersion | None:
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _version(row) if row is not None else None

    def list(self) -> list[TagVersion]:
        newest = (
            sa.select(tag_versions.c.name, sa.func.max(tag_versions.c.version).label("version"))
            .group_by(tag_versions.c.name)
            .subquery()
        )
        query = (
            tag_versions.select()
            .join(newest, sa.and_(newest.c.name == tag_versions.c.name, newest.c.version == tag_versions.c.version))
            .order_by(tag_versions.c.name)
        )
        with self._engine.connect() as connection:
            return [_version(row) for row in connection.execute(query).mappings().all()]

    def names(self) -> builtins.list[str]:
        newest = (
            sa.select(tag_versions.c.name, sa.func.max(tag_versions.c.version).label("version"))
            .group_by(tag_versions.c.name)
            .subquery()
        )
        query = (
            sa.select(tag_versions.c.name)
            .join(newest, sa.and_(newest.c.name == tag_versions.c.name, newest.c.version == tag_versions.c.version))
            .where(tag_versions.c.retired.is_(False))
            .order_by(tag_versions.c.name)
        )
        with self._engine.connect() as connection:
            return [str(row[0]) for row in connection.execute(query).all()]

    def add_run(self, run: TagRun, stats: Sequence[TagStats]) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                tag_runs.insert().values(
                    run_id=run.run_id,
                    as_of=run.as_of,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    full=run.full,
                    refreshed=_dumps(list(run.refreshed)),
                    skipped=_dumps(list(run.skipped)),
                )
            )
            if stats:
                connection.execute(tag_stats.insert(), [_stats_row(run.run_id, s) for s in stats])

    def last_stats(self) -> dict[str, TagStats]:
        newest = (
            sa.select(tag_stats.c.tag, sa.func.max(tag_runs.c.finished_at).label("finished_at"))
            .join(tag_runs, tag_runs.c.run_id == tag_stats.c.run_id)
            .group_by(tag_stats.c.tag)
            .subquery()
        )
        query = (
            sa.select(tag_stats)
            .join(tag_runs, tag_runs.c.run_id == tag_stats.c.run_id)
            .join(newest, sa.and_(newest.c.tag == tag_stats.c.tag, newest.c.finished_at == tag_runs.c.finished_at))
        )
        with self._engine.connect() as connection:
            found = [_stats(row) for row in connection.execute(query).mappings().all()]
        return {s.tag: s for s in found}

    def stats(self, name: str, *, limit: int) -> builtins.list[TagStats]:
        query = (
            sa.select(tag_stats)
            .join(tag_runs, tag_runs.c.run_id == tag_stats.c.run_id)
            .where(tag_stats.c.tag == name)
            .order_by(tag_runs.c.finished_at.desc())
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [_stats(row) for row in connection.execute(query).mappings().all()]


def _lineage_json(lineage: Lineage) -> dict[str, Any]:
    return {
        "relations": list(lineage.relations),
        "events": list(lineage.events),
        "tags": list(lineage.tags),
        "time_dependent": lineage.time_dependent,
    }


def _version(row: sa.RowMapping) -> TagVersion:
    lineage = orjson.loads(row["lineage"])
    return TagVersion(
        name=row["name"],
        version=int(row["version"]),
        kind=TagKind(row["kind"]),
        category=TagCategory(row["category"]),
        title=row["title"],
        description=row["description"],
        owner=row["owner"],
        business_line=row["business_line"],
        shared_with=tuple(orjson.loads(row["shared_with"])),
        definition=orjson.loads(row["definition"]) if row["definition"] is not None else None,
        values=tuple(orjson.loads(row["tag_values"])),
        snapshots=Snapshots(row["snapshots"]),
        lineage=Lineage(
            relations=tuple(lineage["relations"]),
            events=tuple(lineage["events"]),
            tags=tuple(lineage["tags"]),
            time_dependent=bool(lineage["time_dependent"]),
        ),
        retired=bool(row["retired"]),
        created_at=as_utc(row["created_at"]),
    )


def _stats_row(run_id: str, stats: TagStats) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "tag": stats.tag,
        "version": stats.version,
        "as_of": stats.as_of,
        "population": stats.population,
        "customers": stats.customers,
        "changed": stats.changed,
        "distribution": _dumps(stats.distribution),
        "inputs": _dumps(stats.inputs),
        "seconds": stats.seconds,
    }


def _stats(row: sa.RowMapping) -> TagStats:
    return TagStats(
        tag=row["tag"],
        version=int(row["version"]),
        as_of=as_utc(row["as_of"]),
        population=int(row["population"]),
        customers=int(row["customers"]),
        changed=int(row["changed"]),
        distribution=orjson.loads(row["distribution"]),
        inputs=orjson.loads(row["inputs"]),
        seconds=float(row["seconds"]),
    )
