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
from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.ports.warehouse import (
    Attribution,
    KeyPath,
    LoadResult,
    QuarantinedEvent,
    Staged,
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
        self._con.execute(CHANGES_SCHEMA)
        self._loader = self._con.cursor()  # the loader's own: its staging tables are private to it
        self._staged: Staged | None = None
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

    def stage(
        self, consumer: str, partition: int, records: Sequence[bytes], *, key_paths: Sequence[KeyPath] = ()
    ) -> Staged:
        keys = ", ".join(_key_sql(path) for path in key_paths)  # ValueError before anything is written
        staging = self._staging_dir / f"{consumer}-{partition}.ndjson"
        staging.write_bytes(b"\n".join(records))
        con = self._loader
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE staging AS SELECT row_number() OVER () AS rn, * "
                f"FROM read_json(?, format='newline_delimited', columns={_COLUMNS_SQL})",
                [str(staging)],
            )
        except duckdb.Error as error:
            raise ValueError(f"a record of the batch is not an event: {error}") from error
        # Each identity group is named by its first record: the rows that agree on every key.
        groups = f"min(rn) OVER (PARTITION BY {keys})" if keys else "NULL::BIGINT"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE staged_groups AS SELECT rn, {groups} AS grp "
            "FROM staging WHERE NOT coalesce(quarantined, false)"
        )
        firsts = con.execute("SELECT DISTINCT grp - 1 FROM staged_groups WHERE grp IS NOT NULL ORDER BY 1").fetchall()
        self._staged = Staged(consumer=consumer, partition=partition, count=len(records), firsts=[f[0] for f in firsts])
        return self._staged

    def load(self, staged: Staged, last_offset: int, *, attribution: Attribution | None = None) -> LoadResult:
        if staged is not self._staged:
            raise ValueError("this batch is not the one staged last; stage it again")
        attributed = _attribution_frame(attribution, staged.firsts)
        with self._write_lock:
            con = self._loader
            con.register("attribution", attributed)
            con.execute("BEGIN")
            try:
                result = self._load_staged(con, staged.count)
                con.execute(
                    "INSERT OR REPLACE INTO consumer_offsets VALUES (?, ?, ?)",
                    [staged.consumer, staged.partition, last_offset],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("attribution")
            self._seq += staged.count
            self._staged = None
        return result

    def _load_staged(self, con: duckdb.DuckDBPyConnection, count: int) -> LoadResult:
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
                "FROM fresh LEFT JOIN staged_groups g USING (rn) LEFT JOIN attribution a ON a.grp = g.grp "
                "WHERE NOT coalesce(quarantined, false)",
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
            self._loader.close()
            self._con.execute("CHECKPOINT")
            self._con.close()


def _attribution_frame(attribution: Attribution | None, firsts: Sequence[int]) -> pl.DataFrame:
    """The attribution as a frame joined to the staged groups on `grp` (the 1-based `rn` of the first)."""
    text = pl.String
    if attribution is None:
        return pl.DataFrame(schema={"grp": pl.Int64, "one_id": text, "id_type": text, "id_value": text})
    sizes = {len(attribution.one_ids), len(attribution.id_types), len(attribution.id_values)}
    if sizes != {len(firsts)}:
        raise ValueError(f"the attribution has {sorted(sizes)} entries for {len(firsts)} identity groups")
    return pl.DataFrame(
        {
            "grp": pl.Series(firsts, dtype=pl.Int64) + 1,
            "one_id": pl.Series(attribution.one_ids, dtype=text),
            "id_type": pl.Series(attribution.id_types, dtype=text),
            "id_value": pl.Series(attribution.id_values, dtype=text),
        }
    )


def _count(relation: duckdb.DuckDBPyConnection) -> int:
    row = relation.fetchone()
    return int(row[0]) if row else 0


def _key_sql(path: KeyPath) -> str:
    """A key path as SQL over the staged columns: the column itself, or the JSON at a path inside it."""
    column, *inside = path
    if column not in RECORD_COLUMNS:
        raise ValueError(f"{column!r} is not a field of an event record")
    if not inside:
        return column
    if RECORD_COLUMNS[column] != "JSON":
        raise ValueError(f"{column!r} is not an object; {path!r} cannot look inside it")
    steps = "".join('."' + step.replace('"', '\\"') + '"' for step in inside)
    return f"json_extract({column}, '$" + steps.replace("'", "''") + "')"


def _path_value(prop: str) -> str:
    return '$."' + prop.replace('"', '\\"') + '"'


def _json_path(prop: str) -> str:
    return "'" + _path_value(prop).replace("'", "''") + "'"
