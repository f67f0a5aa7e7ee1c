"""DuckDB warehouse: the embedded analytics store.

Loads hand DuckDB newline-delimited JSON and let its reader parse it, so the
per-event work happens in DuckDB's C++ (no GIL), not in Python. Each load is
one transaction: rows, violations, quarantine and the consumer offset commit
together. Dedupe on `message_id` covers the same batch and the last
`dedupe_window_rows` loaded rows (a row counter, `load_seq`, lets DuckDB skip
older row groups). Rows carry the OneID the loader attributed (`one_id`, and
in `id_type` / `id_value` the identifier that decided it), joined to the
staged rows on their record number.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from marketloop.adapters import duckdb_findings as findings
from marketloop.ports.warehouse import (
    Attribution,
    LoadResult,
    QuarantinedEvent,
    StoredViolation,
    ViolationCount,
    ViolationFilter,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    message_id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    event VARCHAR,
    anonymous_id VARCHAR,
    user_id VARCHAR,
    previous_id VARCHAR,
    group_id VARCHAR,
    timestamp TIMESTAMPTZ NOT NULL,
    original_timestamp TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    profile_op VARCHAR,
    properties JSON,
    traits JSON,
    context JSON,
    load_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tracking_violations (
    message_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    event VARCHAR,
    received_at TIMESTAMPTZ NOT NULL,
    violation VARCHAR NOT NULL,
    quarantined BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    message_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    event VARCHAR,
    received_at TIMESTAMPTZ NOT NULL,
    record JSON NOT NULL,
    released_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer VARCHAR NOT NULL,
    partition INTEGER NOT NULL,
    "offset" BIGINT NOT NULL,
    PRIMARY KEY (consumer, partition)
);
ALTER TABLE events ADD COLUMN IF NOT EXISTS one_id VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS id_type VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS id_value VARCHAR;
CREATE TABLE IF NOT EXISTS promoted_properties (
    column_name VARCHAR PRIMARY KEY,
    property VARCHAR NOT NULL,
    duckdb_type VARCHAR NOT NULL
);
"""

RECORD_COLUMNS = {
    "message_id": "VARCHAR",
    "type": "VARCHAR",
    "source_id": "VARCHAR",
    "received_at": "TIMESTAMPTZ",
    "timestamp": "TIMESTAMPTZ",
    "event": "VARCHAR",
    "anonymous_id": "VARCHAR",
    "user_id": "VARCHAR",
    "previous_id": "VARCHAR",
    "group_id": "VARCHAR",
    "original_timestamp": "TIMESTAMPTZ",
    "sent_at": "TIMESTAMPTZ",
    "profile_op": "VARCHAR",
    "properties": "JSON",
    "traits": "JSON",
    "context": "JSON",
    "violations": "VARCHAR[]",
    "quarantined": "BOOLEAN",
}
_COLUMNS_SQL = "{" + ", ".join(f"{name}: '{kind}'" for name, kind in RECORD_COLUMNS.items()) + "}"
_EVENT_SELECT = """
    message_id, type, event, anonymous_id, user_id, previous_id, group_id, timestamp,
    original_timestamp, sent_at, received_at, source_id AS source, profile_op,
    coalesce(properties, '{}') AS properties, coalesce(traits, '{}') AS traits,
    coalesce(context, '{}') AS context
"""
PROMOTABLE_TYPES = frozenset({"VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMPTZ", "DATE"})
# Tracking-plan property types and the column type each is promoted to.
PLAN_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "datetime": "TIMESTAMPTZ",
}
_COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class DuckDBWarehouse:
    """The `Warehouse` port on a DuckDB file."""

    def __init__(self, path: Path, *, dedupe_window_rows: int = 1_000_000, threads: int = 1) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._staging_dir = path.parent / "staging"
        self._staging_dir.mkdir(exist_ok=True)
        self._con = duckdb.connect(str(path), config={"threads": threads})
        self._con.execute(SCHEMA)
        self._window = dedupe_window_rows
        self._write_lock = threading.Lock()
        row = self._con.execute("SELECT coalesce(max(load_seq), 0) FROM events").fetchone()
        self._seq = int(row[0]) if row else 0
        self._promoted = self._read_promoted()

    @property
    def write_lock(self) -> threading.Lock:
        """Held by every writer of this database in this process (events, bank tables, identities)."""
        return self._write_lock

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for one thread's queries (DuckDB connections are not shared across threads)."""
        return self._con.cursor()

    def _read_promoted(self) -> dict[str, tuple[str, str]]:
        rows = self._con.execute("SELECT column_name, property, duckdb_type FROM promoted_properties").fetchall()
        return {str(column): (str(prop), str(kind)) for column, prop, kind in rows}

    def _promoted_select(self) -> str:
        parts = [
            f"TRY_CAST(json_extract_string(properties, {_json_path(prop)}) AS {kind}) AS {column}"
            for column, (prop, kind) in self._promoted.items()
        ]
        return "".join(", " + part for part in parts)

    def promote(self, prop: str, kind: str) -> str:
        """Give property `prop` a typed column `p_<prop>` on `events`, backfilled; returns the column name.

        `kind` is a tracking-plan type (string, integer, number, boolean,
        datetime) or a DuckDB type of `PROMOTABLE_TYPES`. Promoting again with
        the same type does nothing; with another type, the column is rebuilt
        from the stored JSON properties (no data is lost: the JSON is kept).
        """
        native = PLAN_TYPES.get(kind, kind.upper())
        if native not in PROMOTABLE_TYPES:
            raise ValueError(f"cannot promote to {kind}; use one of {sorted(PLAN_TYPES)}")
        column = "p_" + re.sub(r"[^a-z0-9_]", "_", prop.lower().lstrip("$"))
        if not _COLUMN_NAME.match(column):
            raise ValueError(f"property {prop!r} cannot be a column name")
        with self._write_lock:
            existing = self._promoted.get(column)
            if existing == (prop, native):
                return column
            if existing is not None and existing[0] != prop:
                raise ValueError(f"property {prop!r} would need column {column}, which holds {existing[0]!r}")
            self._add_column(column, prop, native, replace=existing is not None)
            self._promoted[column] = (prop, native)
        return column

    def _add_column(self, column: str, prop: str, kind: str, *, replace: bool) -> None:
        con = self._con
        con.execute("BEGIN")
        try:
            if replace:
                con.execute(f"ALTER TABLE events DROP COLUMN IF EXISTS {column}")
            con.execute(f"ALTER TABLE events ADD COLUMN IF NOT EXISTS {column} {kind}")
            con.execute(
                f"UPDATE events SET {column} = TRY_CAST(json_extract_string(properties, ?) AS {kind})",
                [_path_value(prop)],
            )
            con.execute("INSERT OR REPLACE INTO promoted_properties VALUES (?, ?, ?)", [column, prop, kind])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def load(
        self,
        consumer: str,
        partition: int,
        last_offset: int,
        records: Sequence[bytes],
        *,
        attribution: Attribution | None = None,
    ) -> LoadResult:
        staging = self._staging_dir / f"{consumer}-{partition}.ndjson"
        staging.write_bytes(b"\n".join(records))
        attributed = _attribution_frame(attribution, len(records))
        with self._write_lock:
            con = self._con
            con.register("attribution", attributed)
            con.execute("BEGIN")
            try:
                result = self._load_staged(con, staging, len(records))
                con.execute(
                    "INSERT OR REPLACE INTO consumer_offsets VALUES (?, ?, ?)", [consumer, partition, last_offset]
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("attribution")
            self._seq += len(records)
        return result

    def _load_staged(self, con: duckdb.DuckDBPyConnection, staging: Path, count: int) -> LoadResult:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE staging AS SELECT row_number() OVER () AS rn, * "
            f"FROM read_json(?, format='newline_delimited', columns={_COLUMNS_SQL})",
            [str(staging)],
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE fresh AS SELECT * FROM staging "
            "QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY rn) = 1"
        )
        # Drop client retries of rows an earlier load kept (a quarantined event is
        # quarantined once) before anything is inserted, so that the violations of a
        # dropped duplicate are not stored a second time either.
        con.execute(
            "DELETE FROM fresh WHERE NOT coalesce(quarantined, false) "
            "AND message_id IN (SELECT message_id FROM events WHERE load_seq > ?)",
            [self._seq - self._window],
        )
        con.execute(
            "DELETE FROM fresh WHERE coalesce(quarantined, false) AND message_id IN (SELECT message_id FROM quarantine)"
        )
        inserted = _count(
            con.execute(
                f"INSERT INTO events BY NAME SELECT {_EVENT_SELECT}, ? + rn AS load_seq, "
                f"a.one_id, a.id_type, a.id_value{self._promoted_select()} "
                "FROM fresh LEFT JOIN attribution a USING (rn) WHERE NOT coalesce(quarantined, false)",
                [self._seq],
            )
        )
        quarantined = _count(
            con.execute(
                "INSERT INTO quarantine SELECT message_id, source_id, event, received_at, to_json(q), NULL "
                "FROM (SELECT * EXCLUDE (rn) FROM fresh WHERE coalesce(quarantined, false)) q"
            )
        )
        violations = _count(
            con.execute(
                "INSERT INTO tracking_violations SELECT message_id, source_id, type, event, received_at, "
                "unnest(violations), coalesce(quarantined, false) FROM fresh WHERE len(violations) > 0"
            )
        )
        duplicates = count - inserted - quarantined
        return LoadResult(inserted=inserted, duplicates=duplicates, quarantined=quarantined, violations=violations)

    def committed_offset(self, consumer: str, partition: int) -> int:
        row = (
            self.cursor()
            .execute(
                'SELECT "offset" FROM consumer_offsets WHERE consumer = ? AND partition = ?', [consumer, partition]
            )
            .fetchone()
        )
        return int(row[0]) if row else -1

    def count_events(self, event: str | None = None) -> int:
        if event is None:
            row = self.cursor().execute("SELECT count(*) FROM events").fetchone()
        else:
            row = self.cursor().execute("SELECT count(*) FROM events WHERE event = ?", [event]).fetchone()
        return int(row[0]) if row else 0

    # -- tracking-plan findings (SQL in duckdb_findings) ----------------------

    def violations(self, where: ViolationFilter, *, limit: int) -> list[StoredViolation]:
        return findings.violations(self.cursor(), where, limit)

    def violation_summary(self, where: ViolationFilter) -> list[ViolationCount]:
        return findings.violation_summary(self.cursor(), where)

    def quarantined(
        self,
        *,
        source: str | None = None,
        include_released: bool = False,
        after: tuple[datetime, str] | None = None,
        limit: int,
    ) -> list[QuarantinedEvent]:
        return findings.quarantined(
            self.cursor(), source=source, include_released=include_released, after=after, limit=limit
        )

    def release(self, message_ids: Sequence[str], released_at: datetime) -> int:
        if not message_ids:
            return 0
        with self._write_lock:
            return findings.release(self._con, message_ids, released_at)

    def close(self) -> None:
        with self._write_lock:
            self._con.execute("CHECKPOINT")
            self._con.close()


def _attribution_frame(attribution: Attribution | None, count: int) -> pl.DataFrame:
    """The attribution as a frame joined to the staged rows on `rn` (1-based record order)."""
    text = pl.String
    if attribution is None:
        return pl.DataFrame(schema={"rn": pl.Int64, "one_id": text, "id_type": text, "id_value": text})
    sizes = {len(attribution.one_ids), len(attribution.id_types), len(attribution.id_values)}
    if sizes != {count}:
        raise ValueError(f"the attribution has {sorted(sizes)} entries for {count} records")
    return pl.DataFrame(
        {
            "rn": pl.int_range(1, count + 1, eager=True),
            "one_id": pl.Series(attribution.one_ids, dtype=text),
            "id_type": pl.Series(attribution.id_types, dtype=text),
            "id_value": pl.Series(attribution.id_values, dtype=text),
        }
    )


def _count(relation: duckdb.DuckDBPyConnection) -> int:
    row = relation.fetchone()
    return int(row[0]) if row else 0


def _path_value(prop: str) -> str:
    return '$."' + prop.replace('"', '\\"') + '"'


def _json_path(prop: str) -> str:
    return "'" + _path_value(prop).replace("'", "''") + "'"
