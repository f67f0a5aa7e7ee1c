"""Migration 0014 creates the channel tables on SQLite and PostgreSQL: on a fresh database, and on one where the
channel wiring had already created them at start-up (before the migration existed), keeping their rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from marketloop.adapters.sql.channel_tables import channel_deliveries, channel_metadata, ensure_channel_tables
from marketloop.adapters.sql.engine import create_engine, upgrade

CHANNEL_REVISION = "0014"
BEFORE = "0013"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _alembic(engine: sa.Engine, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("marketloop") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _schema(engine: sa.Engine) -> dict[str, tuple[set[str], set[tuple[str, ...]]]]:
    """The channel tables present, each with the names of its indexes and the columns of its unique constraints
    (PostgreSQL also lists a unique constraint's index as an index: those are left out of the names)."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names())
    return {
        table.name: (
            {i["name"] for i in inspector.get_indexes(table.name) if i["name"] and "duplicates_constraint" not in i},
            {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)},
        )
        for table in channel_metadata.sorted_tables
        if table.name in present
    }


EXPECTED = {
    table.name: (
        {i.name for i in table.indexes if i.name},
        {tuple(c.name for c in u.columns) for u in table.constraints if isinstance(u, sa.UniqueConstraint)}
        | {(c.name,) for c in table.columns if c.unique},
    )
    for table in channel_metadata.sorted_tables
}


def _row(key: str) -> dict[str, object]:
    now = "2026-01-05T02:00:00.000000+00:00"
    return {
        "idempotency_key": key,
        "channel": "wechat",
        "kind": "wechat",
        "customer": "C1",
        "campaign": "c",
        "status": "accepted",
        "attempts": 1,
        "provider_message_id": "200228001",
        "error": "",
        "parts": 1,
        "created_at": now,
        "updated_at": now,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
        yield made
        made.dispose()
        return
    name = f"ml_migration_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    made = create_engine(POSTGRES + name)
    try:
        yield made
    finally:
        made.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def test_a_fresh_database_gets_every_channel_table_and_index(engine: sa.Engine) -> None:
    upgrade(engine)
    assert _schema(engine) == EXPECTED
    with engine.begin() as connection:
        connection.execute(channel_deliveries.insert().values(**_row("k1")))
        assert connection.execute(sa.select(sa.func.count()).select_from(channel_deliveries)).scalar_one() == 1
    _alembic(engine, "downgrade", BEFORE)
    assert _schema(engine) == {}
    _alembic(engine, "upgrade", CHANNEL_REVISION)
    assert _schema(engine)["rm_tasks"][0] == {"ix_rm_tasks_rm"}, "0014 keeps the shape it had (0016 adds to it)"
    upgrade(engine)
    assert _schema(engine) == EXPECTED


def test_tables_created_at_start_up_before_the_migration_upgrade_cleanly_and_keep_their_rows(
    engine: sa.Engine,
) -> None:
    _alembic(engine, "upgrade", BEFORE)
    ensure_channel_tables(engine)  # what the channel wiring did at every start before migration 0014
    with engine.begin() as connection:
        connection.execute(channel_deliveries.insert().values(**_row("kept")))
        # a store where a crash or an older build left one index out
        connection.execute(sa.text("DROP INDEX ix_channel_deliveries_status"))
    upgrade(engine)
    assert _schema(engine) == EXPECTED
    with engine.connect() as connection:
        keys = connection.execute(sa.select(channel_deliveries.c.idempotency_key)).scalars().all()
    assert keys == ["kept"]
    upgrade(engine)  # at head: nothing to do
    assert _schema(engine) == EXPECTED
