"""Engine creation and schema upgrades for the operational store."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from marketloop.adapters.sql.sqlite_lock import writer_lock_factory


def create_engine(url: str) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so the CLI and the server can share it."""
    if url.startswith("sqlite"):
        connect_args: dict[str, object] = {"timeout": 30, "check_same_thread": False}
        factory = writer_lock_factory(sa.engine.make_url(url).database)
        if factory is not None:
            connect_args["factory"] = factory  # writers queue on a lock file instead of polling (sqlite_lock)
        engine = sa.create_engine(url, connect_args=connect_args)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: object, _record: object) -> None:
            cursor = connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # 64 MB of page cache per connection (the default is 2 MB): a batch journey writes millions of
            # rows into a few indexed tables, and index pages evicted between chunks cost a read each
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("marketloop") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
