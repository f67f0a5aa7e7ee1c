"""`PersonalDataStore` on the DuckDB analytics file: encrypted columns, erasure, event retention.

Every write holds the warehouse's write lock and runs in one transaction.
Tables that another part has not created yet (OneID's `identities`) are
skipped, not created here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb
import orjson
import polars as pl

from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.adapters.duckdb_changes import in_transaction, mark_changed
from marketloop.ports.personal_data import EncryptedColumn, ErasureCounts, PurgeCounts, Scrub

CUSTOMER_NUMBER = "cust_no"
DAILY_COUNTS = """
CREATE TABLE IF NOT EXISTS event_daily_counts (
    day DATE NOT NULL,
    type VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (day, type, event, source)
)
"""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBPersonalData:
    """Personal data in the warehouse's DuckDB database (bank tables, OneID identities, events)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        cursor().execute(CHANGES_SCHEMA)

    # -- encrypted columns -----------------------------------------------------

    def encrypted_columns(self) -> list[EncryptedColumn]:
        rows = (
            self._cursor()
            .execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
                "AND c.column_name LIKE '%\\_enc' ESCAPE '\\' "
                "ORDER BY 1, 2"
            )
            .fetchall()
        )
        return [EncryptedColumn(table=str(t), column=str(c)) for t, c in rows]

    def key_usage(self, column: EncryptedColumn) -> dict[str, int]:
        col, table = _quoted(column.column), _quoted(column.table)
        rows = (
            self._cursor()
            .execute(
                f"SELECT split_part({col}, '.', 2) AS key_id, count(*) FROM {table} WHERE {col} IS NOT NULL GROUP BY 1"
            )
            .fetchall()
        )
        return {str(key_id): int(count) for key_id, count in rows}

    def stale_ciphertexts(self, column: EncryptedColumn, *, current_prefix: str, after: str, limit: int) -> list[str]:
        col, table = _quoted(column.column), _quoted(column.table)
        rows = (
            self._cursor()
            .execute(
                f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL AND NOT starts_with({col}, ?) "
                f"AND {col} > ? ORDER BY 1 LIMIT ?",
                [current_prefix, after, limit],
            )
            .fetchall()
        )
        return [str(value) for (value,) in rows]

    def replace_ciphertexts(self, column: EncryptedColumn, pairs: list[tuple[str, str]]) -> int:
        if not pairs:
            return 0
        staged = pl.DataFrame({"old": [p[0] for p in pairs], "new": [p[1] for p in pairs]}, schema=_PAIRS)
        col, table = _quoted(column.column), _quoted(column.table)
        with self._write_lock:
            con = self._cursor()
            con.register("rotation_pairs", staged)
            try:
                return in_transaction(
                    con,
                    lambda: _count(
                        con.execute(
                            f"UPDATE {table} SET {col} = p.new FROM rotation_pairs p WHERE {table}.{col} = p.old"
                        )
                    ),
                )
            finally:
                con.unregister("rotation_pairs")

    # -- erasure ---------------------------------------------------------------

    def erase_customer(self, cust_no: str, scrub: Scrub) -> ErasureCounts:
        with self._write_lock:
            con = self._cursor()
            return in_transaction(con, lambda: _erase(con, cust_no, scrub))

    # -- retention -------------------------------------------------------------

    def purge_events(self, before: datetime) -> PurgeCounts:
        with self._write_lock:
            con = self._cursor()
            con.execute(DAILY_COUNTS)
            return in_transaction(con, lambda: _purge(con, before))


_PAIRS = {"old": pl.String, "new": pl.String}
_EVENT_DOCUMENTS = ("properties", "traits", "context")


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.fetchone()
    return int(row[0]) if row else 0


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
    return {str(name) for (name,) in rows}


def _erase(con: duckdb.DuckDBPyConnection, cust_no: str, scrub: Scrub) -> ErasureCounts:
    tables = _tables(con)
    rows = _clear_customer(con, cust_no) if "customers" in tables else 0
    if "customer_attributes" in tables:  # custom profile fields may hold anything a journey copied from an event
        rows += _count(con.execute("DELETE FROM customer_attributes WHERE cust_no = ?", [cust_no]))
        rows += _count(con.execute("DELETE FROM customer_attribute_history WHERE cust_no = ?", [cust_no]))
    one_ids = _one_ids(con, cust_no) if "identities" in tables else []
    identities = _delete_identities(con, one_ids) if one_ids else 0
    events = _scrub_events(con, cust_no, one_ids, scrub) if "events" in tables else 0
    mark_changed(con, "customers", "identities", "customer_attributes")  # the customer's rows, whose the events are
    return ErasureCounts(customer_rows=rows, identities=identities, events=events)


def _clear_customer(con: duckdb.DuckDBPyConnection, cust_no: str) -> int:
    columns = [
        str(name)
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = 'customers' ORDER BY ordinal_position"
        ).fetchall()
    ]
    personal = [c for c in columns if c.endswith(("_enc", "_hash")) or c == "name_prefix"]
    if not personal:
        return 0
    cleared = ", ".join(f"{_quoted(c)} = NULL" for c in personal)
    present = " OR ".join(f"{_quoted(c)} IS NOT NULL" for c in personal)
    return _count(con.execute(f"UPDATE customers SET {cleared} WHERE cust_no = ? AND ({present})", [cust_no]))


def _one_ids(con: duckdb.DuckDBPyConnection, cust_no: str) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT one_id FROM identities WHERE id_type = ? AND id_value = ?", [CUSTOMER_NUMBER, cust_no]
    ).fetchall()
    found = [str(one_id) for (one_id,) in rows]
    if found and "identity_redirects" in _tables(con):
        merged = con.execute(
            "SELECT from_one_id FROM identity_redirects WHERE list_contains(?, to_one_id)", [found]
        ).fetchall()
        found += [str(one_id) for (one_id,) in merged]
    return found


def _delete_identities(con: duckdb.DuckDBPyConnection, one_ids: list[str]) -> int:
    return _count(
        con.execute(
            "DELETE FROM identities WHERE list_contains(?, one_id) AND id_type <> ?", [one_ids, CUSTOMER_NUMBER]
        )
    )


def _scrub_events(con: duckdb.DuckDBPyConnection, cust_no: str, one_ids: list[str], scrub: Scrub) -> int:
    has_one_id = "one_id" in _event_columns(con)
    where = "user_id = ?" + (" OR list_contains(?, one_id)" if has_one_id and one_ids else "")
    params: list[Any] = [cust_no] + ([one_ids] if has_one_id and one_ids else [])
    identified = has_one_id and "id_value" in _event_columns(con)
    extra = ", id_type, id_value" if identified else ""
    rows = con.execute(
        f"SELECT load_seq, message_id, properties, traits, context{extra} FROM events WHERE {where}", params
    ).fetchall()
    changed = [_scrubbed(row, scrub, identified=identified) for row in rows]
    staged = [c for c in changed if c is not None]
    if not staged:
        return 0
    frame = pl.DataFrame(staged, schema=_STAGED_EVENTS, orient="row")
    con.register("scrubbed_events", frame)
    try:
        id_value = ", id_value = s.id_value" if identified else ""
        con.execute(
            "UPDATE events SET properties = s.properties::JSON, traits = s.traits::JSON, context = s.context::JSON"
            f"{id_value} FROM scrubbed_events s WHERE events.load_seq = s.load_seq AND events.message_id = s.message_id"
        )
    finally:
        con.unregister("scrubbed_events")
    return len(staged)


_STAGED_EVENTS = {
    "load_seq": pl.Int64,
    "message_id": pl.String,
    "properties": pl.String,
    "traits": pl.String,
    "context": pl.String,
    "id_value": pl.String,
}


def _event_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = 'events'"
    ).fetchall()
    return {str(name) for (name,) in rows}


def _scrubbed(row: tuple[Any, ...], scrub: Scrub, *, identified: bool) -> tuple[Any, ...] | None:
    """The row's new (load_seq, message_id, properties, traits, context, id_value), or None when nothing changes."""
    load_seq, message_id, *documents = row[:5]
    texts = [_scrub_text(text, scrub) for text in documents]
    id_type, id_value = (row[5], row[6]) if identified else (None, None)
    new_id_value = id_value if id_type in (None, CUSTOMER_NUMBER) else None
    if all(new == old for new, old in zip(texts, documents, strict=True)) and new_id_value == id_value:
        return None
    return (load_seq, message_id, *texts, new_id_value)


def _scrub_text(text: str | None, scrub: Scrub) -> str | None:
    if text is None:
        return None
    document = orjson.loads(text)
    if not isinstance(document, dict):
        return text
    cleaned = scrub(document)
    return text if cleaned == document else orjson.dumps(cleaned).decode()


def _purge(con: duckdb.DuckDBPyConnection, before: datetime) -> PurgeCounts:
    days = _count(
        con.execute(
            "INSERT INTO event_daily_counts "
            "SELECT CAST(timezone('UTC', timestamp) AS DATE), type, coalesce(event, ''), source, count(*) "
            "FROM events WHERE timestamp < ? GROUP BY ALL "
            "ON CONFLICT (day, type, event, source) DO UPDATE SET events = event_daily_counts.events + EXCLUDED.events",
            [before],
        )
    )
    events = _count(con.execute("DELETE FROM events WHERE timestamp < ?", [before]))
    violations = _count(con.execute("DELETE FROM tracking_violations WHERE received_at < ?", [before]))
    quarantined = _count(
        con.execute("DELETE FROM quarantine WHERE released_at IS NOT NULL AND received_at < ?", [before])
    )
    return PurgeCounts(events=events, days=days, violations=violations, quarantined=quarantined)
