"""The identity graph in DuckDB: the `IdentityStore` port, in the warehouse's database.

Owns the tables `identities`, `identity_one_ids`, `identity_redirects`,
`identity_history` and `identity_conflicts`, and the view `events_resolved`:
`events` with each event's load-time `one_id` replaced by the OneID it was
merged into, so queries see a merge at once without rewriting history; and
`customer_events`: those events with the `cust_no` of their OneID.
Values of protected identifier types are keyed hashes (`customers.phone_hash`
equals the phone's `id_value`, so the two join).

It shares the warehouse's connection and write lock, so a persisted unmerge
re-attributes the moved events in the same transaction as the graph change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.adapters.duckdb_changes import mark_changed
from marketloop.core.identities import (
    Conflict,
    ConflictReason,
    HistoryRecord,
    Identifier,
    IdentityChanges,
    IdentityRow,
    IdentitySnapshot,
    MergeRecord,
    Reattribution,
    UnmergeRecord,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS identities (
    id_type VARCHAR NOT NULL,
    id_value VARCHAR NOT NULL,
    one_id VARCHAR NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    PRIMARY KEY (id_type, id_value)
);
CREATE TABLE IF NOT EXISTS identity_one_ids (
    one_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    creator_type VARCHAR NOT NULL,
    creator_value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_redirects (
    from_one_id VARCHAR PRIMARY KEY,
    to_one_id VARCHAR NOT NULL,
    redirected_at TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS identity_history_seq;
CREATE TABLE IF NOT EXISTS identity_history (
    seq BIGINT NOT NULL DEFAULT nextval('identity_history_seq'),
    happened_at TIMESTAMPTZ NOT NULL,
    kind VARCHAR NOT NULL,             -- merge | unmerge
    one_id VARCHAR NOT NULL,           -- merge: the survivor; unmerge: the OneID split
    other_one_id VARCHAR NOT NULL,     -- merge: the OneID merged away; unmerge: where the identifiers went
    identifiers STRUCT(id_type VARCHAR, id_value VARCHAR)[] NOT NULL,
    reason VARCHAR,
    source VARCHAR,
    actor VARCHAR,
    revived BOOLEAN
);
CREATE TABLE IF NOT EXISTS identity_conflicts (
    key VARCHAR PRIMARY KEY,
    refused_at TIMESTAMPTZ NOT NULL,
    reason VARCHAR NOT NULL,
    id_type VARCHAR NOT NULL,
    "values" VARCHAR[] NOT NULL,
    one_ids VARCHAR[] NOT NULL,
    identifiers STRUCT(id_type VARCHAR, id_value VARCHAR)[] NOT NULL,
    source VARCHAR NOT NULL,
    detail VARCHAR NOT NULL
);
CREATE OR REPLACE VIEW events_resolved AS
    SELECT e.* REPLACE (coalesce(r.to_one_id, e.one_id) AS one_id)
    FROM events e LEFT JOIN identity_redirects r ON r.from_one_id = e.one_id;
"""

# Events with the customer (cust_no) they belong to: the customer whose cust_no identity holds the
# event's (merged) OneID, else the event's user_id (events loaded before OneID, or apps whose login id
# is the customer number). What segments, tags and analytics mean by "a customer's events".
CUSTOMER_EVENTS_VIEW = """
CREATE OR REPLACE VIEW customer_events AS
SELECT coalesce(co.cust_no, e.user_id) AS cust_no, e.*
FROM events_resolved AS e
LEFT JOIN (
    SELECT i.id_value AS cust_no, coalesce(r.to_one_id, i.one_id) AS one_id
    FROM identities AS i LEFT JOIN identity_redirects AS r ON r.from_one_id = i.one_id
    WHERE i.id_type = 'cust_no'
) AS co ON co.one_id = e.one_id
"""

_EVENT_KEY = "id_type || chr(31) || id_value"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DuckDBIdentityStore:
    """`IdentityStore` on the warehouse's DuckDB database (which must already have `events`)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        with write_lock:
            con = cursor()
            con.execute(SCHEMA)
            con.execute(CUSTOMER_EVENTS_VIEW)
            con.execute(CHANGES_SCHEMA)

    def load(self) -> IdentitySnapshot:
        con = self._cursor()
        identities = con.sql("SELECT id_type || chr(31) || id_value AS key, one_id FROM identities").pl()
        origins = con.execute(
            "SELECT one_id, epoch_us(created_at), creator_type || chr(31) || creator_value FROM identity_one_ids"
        ).fetchall()
        separations = con.execute(
            "SELECT one_id, other_one_id FROM identity_history WHERE kind = 'unmerge' ORDER BY seq"
        ).fetchall()
        return IdentitySnapshot(
            identity_keys=identities["key"].to_list(),
            identity_one_ids=identities["one_id"].to_list(),
            origins=[(str(o), _moment(created), str(creator)) for o, created, creator in origins],
            redirects=[
                (str(a), str(b))
                for a, b in con.execute("SELECT from_one_id, to_one_id FROM identity_redirects").fetchall()
            ],
            separations=[(str(a), str(b)) for a, b in separations],
            conflict_keys=[str(k) for (k,) in con.execute("SELECT key FROM identity_conflicts").fetchall()],
        )

    def persist(self, changes: IdentityChanges) -> int:
        if not changes:
            return 0
        with self._write_lock:
            con = self._cursor()
            con.execute("BEGIN")
            try:
                _write_identities(con, changes.identities)
                _write_graph(con, changes)
                _write_records(con, changes)
                moved = sum(_reattribute(con, r) for r in changes.reattributions)
                mark_changed(con, "identities")  # who an event's OneID is: the customer_events view
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return moved

    def history(self, one_ids: Sequence[str], *, limit: int) -> list[HistoryRecord]:
        rows = (
            self._cursor()
            .execute(
                "SELECT epoch_us(happened_at), kind, one_id, other_one_id, identifiers, reason, source, actor, revived "
                "FROM identity_history WHERE list_contains(?, one_id) OR list_contains(?, other_one_id) "
                "ORDER BY happened_at, seq LIMIT ?",
                [list(one_ids), list(one_ids), limit],
            )
            .fetchall()
        )
        return [_history_record(row) for row in rows]

    def conflicts(self, one_ids: Sequence[str] | None = None, *, limit: int) -> list[Conflict]:
        wanted = None if one_ids is None else list(one_ids)
        sql = (
            'SELECT epoch_us(refused_at), reason, id_type, "values", one_ids, identifiers, source, detail '
            "FROM identity_conflicts WHERE ?::VARCHAR[] IS NULL OR list_has_any(one_ids, ?::VARCHAR[]) "
            "ORDER BY refused_at DESC, key LIMIT ?"
        )
        rows = self._cursor().execute(sql, [wanted, wanted, limit]).fetchall()
        return [_conflict(row) for row in rows]


def _write_identities(con: duckdb.DuckDBPyConnection, rows: Sequence[IdentityRow]) -> None:
    if not rows:
        return
    staged = pl.DataFrame(
        {
            "id_type": [r.identifier.type for r in rows],
            "id_value": [r.identifier.value for r in rows],
            "one_id": [r.one_id for r in rows],
            "first_seen": pl.Series([r.first_seen for r in rows], dtype=pl.Datetime("us", "UTC")),
            "source": pl.Series([r.source for r in rows], dtype=pl.String),
        }
    )
    con.register("identity_rows", staged)
    try:
        # first_seen / source are None for rows that exist already: the upsert keeps theirs.
        con.execute(
            "INSERT INTO identities SELECT id_type, id_value, one_id, coalesce(first_seen, now()), "
            "coalesce(source, '') FROM identity_rows "
            "ON CONFLICT (id_type, id_value) DO UPDATE SET one_id = excluded.one_id"
        )
    finally:
        con.unregister("identity_rows")


def _insert_frame(con: duckdb.DuckDBPyConnection, sql: str, frame: pl.DataFrame) -> None:
    """Run `sql` (reading the view `staged_identity_rows`) over `frame`: one set-based insert, not one per row.

    `executemany` costs a statement per row; at load time a batch creates a OneID per new
    anonymous visitor, so per-row inserts dominated the loader.
    """
    con.register("staged_identity_rows", frame)
    try:
        con.execute(sql)
    finally:
        con.unregister("staged_identity_rows")


_UTC = pl.Datetime("us", "UTC")


def _write_graph(con: duckdb.DuckDBPyConnection, changes: IdentityChanges) -> None:
    if changes.one_ids:
        rows = changes.one_ids
        frame = pl.DataFrame(
            {
                "one_id": [r.one_id for r in rows],
                "created_at": pl.Series([r.origin.created_at for r in rows], dtype=_UTC),
                "creator_type": [r.origin.creator.type for r in rows],
                "creator_value": [r.origin.creator.value for r in rows],
            }
        )
        _insert_frame(con, "INSERT OR REPLACE INTO identity_one_ids SELECT * FROM staged_identity_rows", frame)
    if changes.redirects:
        redirects = changes.redirects
        frame = pl.DataFrame(
            {
                "from_one_id": [r.from_one_id for r in redirects],
                "to_one_id": [r.to_one_id for r in redirects],
                "at": pl.Series([r.at for r in redirects], dtype=_UTC),
            }
        )
        _insert_frame(con, "INSERT OR REPLACE INTO identity_redirects SELECT * FROM staged_identity_rows", frame)
    if changes.removed_redirects:
        con.execute(
            "DELETE FROM identity_redirects WHERE list_contains(?, from_one_id)", [list(changes.removed_redirects)]
        )


_HISTORY_COLUMNS = (
    "happened_at",
    "kind",
    "one_id",
    "other_one_id",
    "identifiers",
    "reason",
    "source",
    "actor",
    "revived",
)
_HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "happened_at": _UTC,
    "kind": pl.String(),
    "one_id": pl.String(),
    "other_one_id": pl.String(),
    "identifiers": pl.List(pl.Struct({"id_type": pl.String(), "id_value": pl.String()})),
    "reason": pl.String(),
    "source": pl.String(),
    "actor": pl.String(),
    "revived": pl.Boolean(),
}


def _write_records(con: duckdb.DuckDBPyConnection, changes: IdentityChanges) -> None:
    if changes.history:
        frame = pl.DataFrame([_history_row(record) for record in changes.history], schema=_HISTORY_SCHEMA, orient="row")
        columns = ", ".join(_HISTORY_COLUMNS)
        _insert_frame(
            con, f"INSERT INTO identity_history ({columns}) SELECT {columns} FROM staged_identity_rows", frame
        )
    if changes.conflicts:
        con.executemany(
            "INSERT OR IGNORE INTO identity_conflicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_conflict_row(c) for c in changes.conflicts],
        )


def _conflict_row(c: Conflict) -> list[Any]:
    return [
        c.key,
        c.at,
        c.reason.value,
        c.id_type,
        list(c.values),
        list(c.one_ids),
        _structs(c.identifiers),
        c.source,
        c.detail,
    ]


def _reattribute(con: duckdb.DuckDBPyConnection, change: Reattribution) -> int:
    moved = [i.key for i in change.moved]
    to_new = con.execute(
        f"UPDATE events SET one_id = ? WHERE list_contains(?, one_id) AND one_id <> ? "
        f"AND list_contains(?, {_EVENT_KEY})",
        [change.to_one_id, list(change.one_ids), change.to_one_id, moved],
    ).fetchone()
    back = con.execute(
        f"UPDATE events SET one_id = ? WHERE one_id = ? AND NOT list_contains(?, {_EVENT_KEY})",
        [change.rest_one_id, change.to_one_id, moved],
    ).fetchone()
    return (int(to_new[0]) if to_new else 0) + (int(back[0]) if back else 0)


def _moment(epoch_us: int) -> datetime:
    """Times are read as epoch microseconds, so no time-zone package is needed (as in `duckdb_findings`)."""
    return _EPOCH + timedelta(microseconds=int(epoch_us))


def _structs(identifiers: Sequence[Identifier]) -> list[dict[str, str]]:
    return [{"id_type": i.type, "id_value": i.value} for i in identifiers]


def _identifiers(structs: Sequence[dict[str, str]]) -> tuple[Identifier, ...]:
    return tuple(Identifier(s["id_type"], s["id_value"]) for s in structs)


def _history_row(record: HistoryRecord) -> list[Any]:
    identifiers = _structs(record.identifiers)
    if isinstance(record, MergeRecord):
        return [
            record.at,
            "merge",
            record.survivor,
            record.absorbed,
            identifiers,
            record.reason,
            record.source,
            None,
            None,
        ]
    return [
        record.at,
        "unmerge",
        record.from_one_id,
        record.to_one_id,
        identifiers,
        None,
        None,
        record.actor,
        record.revived,
    ]


def _history_record(row: tuple[Any, ...]) -> HistoryRecord:
    epoch, kind, one_id, other, identifiers, reason, source, actor, revived = row
    at = _moment(epoch)
    if kind == "merge":
        return MergeRecord(
            at=at, survivor=one_id, absorbed=other, reason=reason, source=source, identifiers=_identifiers(identifiers)
        )
    return UnmergeRecord(
        at=at,
        from_one_id=one_id,
        to_one_id=other,
        identifiers=_identifiers(identifiers),
        actor=actor,
        revived=bool(revived),
    )


def _conflict(row: tuple[Any, ...]) -> Conflict:
    epoch, reason, id_type, values, one_ids, identifiers, source, detail = row
    at = _moment(epoch)
    return Conflict(
        at=at,
        reason=ConflictReason(reason),
        id_type=id_type,
        values=tuple(values),
        one_ids=tuple(one_ids),
        identifiers=_identifiers(identifiers),
        source=source,
        detail=detail,
    )
