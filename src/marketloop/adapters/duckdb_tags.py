"""`TagWarehouse` on DuckDB: tag values, their history and stratification snapshots, computed set-based.

Tables (created when absent; `customer_tags` is shared with the segment
engine, which reads `tag` and `value`):

    customer_tags(cust_no, tag, value, as_of, since)            current value per customer and tag
    customer_tag_history(cust_no, tag, value, valid_from, valid_to)   every value, SCD-2: in force from
                                                                 valid_from until valid_to (exclusive; NULL = still)
    tag_snapshots(tag, snapshot_date, cust_no, value)             daily / weekly copies of stratification tags

A refresh stages every tag's rows in one temporary table (a few large
INSERT … SELECT … UNION ALL statements), diffs it against the current values
with one full outer join, and writes only the difference, in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

import duckdb
import polars as pl

from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.adapters.duckdb_changes import in_transaction, mark_changed
from marketloop.adapters.duckdb_segments import SCHEMA as SEGMENT_SCHEMA
from marketloop.adapters.duckdb_segments import logical_type
from marketloop.core.bank import LogicalType
from marketloop.core.events import as_utc
from marketloop.ports.tags import Change, TagQuery, TagValue

SCHEMA = """
ALTER TABLE customer_tags ADD COLUMN IF NOT EXISTS since TIMESTAMPTZ;
CREATE TABLE IF NOT EXISTS customer_tag_history (
    cust_no VARCHAR NOT NULL,
    tag VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS tag_snapshots (
    tag VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL,
    cust_no VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);
"""

# `customer_events` (events with the cust_no OneID gives them) is the identity store's view.
CUSTOMER_EVENTS = "customer_events"
# What the view's contents depend on: its version is theirs.
_VIEW_INPUTS = {CUSTOMER_EVENTS: ("events", "identities", "identity_redirects")}

QUERIES_PER_STATEMENT = 12  # tags staged by one INSERT … UNION ALL
DISTRIBUTION_LIMIT = 50


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _set_one(con: duckdb.DuckDBPyConnection, tag: str, cust_no: str, value: str | None, at: datetime) -> None:
    """Close the current value's history row, replace the current value (None: none)."""
    con.execute("DELETE FROM customer_tags WHERE tag = ? AND cust_no = ?", [tag, cust_no])
    con.execute(
        "UPDATE customer_tag_history SET valid_to = ? WHERE tag = ? AND cust_no = ? AND valid_to IS NULL",
        [at, tag, cust_no],
    )
    if value is not None:
        con.execute("INSERT INTO customer_tags VALUES (?, ?, ?, ?, ?)", [cust_no, tag, value, at, at])
        con.execute("INSERT INTO customer_tag_history VALUES (?, ?, ?, ?, NULL)", [cust_no, tag, value, at])
    mark_changed(con, "customer_tags", "customer_tag_history")


class DuckDBTagWarehouse:
    """The tag engine's warehouse on the DuckDB database of the events, bank tables and profile."""

    dialect = "duckdb"

    def __init__(
        self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock, population: str = "customers"
    ) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        self._population = population
        self._named: tuple[int, list[str]] | None = None  # (rows of customer_tags, tags with values)
        with write_lock:
            con = cursor()
            con.execute(SEGMENT_SCHEMA)
            con.execute(SCHEMA)
            con.execute(CHANGES_SCHEMA)

    def columns(self, relation: str) -> dict[str, LogicalType] | None:
        try:
            found = self._cursor().table(relation)
        except duckdb.CatalogException:
            return None
        typed = {str(name): logical_type(str(kind)) for name, kind in zip(found.columns, found.types, strict=True)}
        return {name: kind for name, kind in typed.items() if kind is not None}

    def versions(self, relations: Sequence[str]) -> dict[str, str]:
        con = self._cursor()
        return {relation: self._version(con, relation) for relation in relations}

    def _version(self, con: duckdb.DuckDBPyConnection, relation: str) -> str:
        if relation in _VIEW_INPUTS:
            return "|".join(self._version(con, part) for part in _VIEW_INPUTS[relation])
        try:
            names = con.table(relation).columns
        except duckdb.CatalogException:
            return "absent"
        table = '"' + relation.replace('"', '""') + '"'
        if "load_seq" in names:  # append-only: count and last load sequence say it all
            row = con.execute(f"SELECT count(*), coalesce(max(load_seq), 0) FROM {table}").fetchone()
        else:
            row = con.execute(f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM {table} AS t").fetchone()
        return f"{row[0]}:{row[1]}" if row else "absent"

    def tag_versions(self, tags: Sequence[str]) -> dict[str, str]:
        if not tags:
            return {}
        con = self._cursor()
        marks = ", ".join("?" for _ in tags)
        rows = con.execute(
            "SELECT tag, count(*), bit_xor(hash(cust_no, value)) FROM customer_tags "
            f"WHERE tag IN ({marks}) GROUP BY tag",
            list(tags),
        ).fetchall()
        found = {str(t): f"{n}:{h}" for t, n, h in rows}
        return {tag: found.get(tag, "0:0") for tag in tags}

    def tags_with_values(self) -> list[str]:
        con = self._cursor()
        row = con.execute(
            "SELECT estimated_size FROM duckdb_tables() WHERE table_name = 'customer_tags' AND schema_name = 'main'"
        ).fetchone()
        size = int(row[0]) if row else 0
        if self._named is None or self._named[0] != size:
            names = [str(r[0]) for r in con.execute("SELECT DISTINCT tag FROM customer_tags ORDER BY tag").fetchall()]
            self._named = (size, names)
        return list(self._named[1])

    def unknown_customers(self, cust_nos: Sequence[str]) -> list[str]:
        if not cust_nos:
            return []
        con = self._cursor()
        ids = pl.DataFrame(
            {"pos": range(len(cust_nos)), "cust_no": list(cust_nos)}, schema={"pos": pl.Int64, "cust_no": pl.String}
        )
        con.register("tag_import_ids", ids)
        try:
            rows = con.execute(
                f"SELECT i.cust_no FROM tag_import_ids AS i ANTI JOIN {self._population} AS c "
                "ON c.cust_no = i.cust_no ORDER BY i.pos"
            ).fetchall()
        finally:
            con.unregister("tag_import_ids")
        return [str(r[0]) for r in rows]

    # -- writing values ---------------------------------------------------------------

    def apply(self, queries: Sequence[TagQuery], as_of: datetime) -> list[Change]:
        if not queries:
            return []
        tags = [q.tag for q in queries]
        with self._write_lock:
            con = self._cursor()
            self._stage(con, tags)
            for start in range(0, len(queries), QUERIES_PER_STATEMENT):
                batch = queries[start : start + QUERIES_PER_STATEMENT]
                union = "\nUNION ALL\n".join(
                    f"SELECT CAST(cust_no AS VARCHAR), {_quote(q.tag)}, CAST(value AS VARCHAR) FROM ({q.sql}) AS q"
                    for q in batch
                )
                con.execute(f"INSERT INTO tag_staging {union}")
            return self._commit(con, tags, as_of)

    def replace(self, tag: str, values: Mapping[str, str], as_of: datetime) -> Change:
        with self._write_lock:
            con = self._cursor()
            self._stage(con, [tag])
            if values:
                rows = pl.DataFrame(
                    {"cust_no": list(values), "tag": [tag] * len(values), "value": list(values.values())},
                    schema={"cust_no": pl.String, "tag": pl.String, "value": pl.String},
                )
                con.register("tag_import_rows", rows)
                try:
                    con.execute("INSERT INTO tag_staging SELECT cust_no, tag, value FROM tag_import_rows")
                finally:
                    con.unregister("tag_import_rows")
            (change,) = self._commit(con, [tag], as_of)
        return change

    def _stage(self, con: duckdb.DuckDBPyConnection, tags: Sequence[str]) -> None:
        con.execute("CREATE OR REPLACE TEMP TABLE tag_staging (cust_no VARCHAR, tag VARCHAR, value VARCHAR)")
        con.execute("CREATE OR REPLACE TEMP TABLE tag_list (tag VARCHAR)")
        con.executemany("INSERT INTO tag_list VALUES (?)", [(t,) for t in tags])

    def _commit(self, con: duckdb.DuckDBPyConnection, tags: Sequence[str], as_of: datetime) -> list[Change]:
        con.execute("BEGIN")
        try:
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE tag_diff AS
                SELECT coalesce(n.cust_no, o.cust_no) AS cust_no, coalesce(n.tag, o.tag) AS tag,
                       o.value AS old, n.value AS new
                FROM (SELECT * FROM tag_staging WHERE value IS NOT NULL) AS n
                FULL OUTER JOIN (
                    SELECT cust_no, tag, value FROM customer_tags WHERE tag IN (SELECT tag FROM tag_list)
                ) AS o ON n.cust_no = o.cust_no AND n.tag = o.tag
                WHERE n.value IS DISTINCT FROM o.value
                """
            )
            self._write_diff(con, as_of)
            changes = self._changes(con, tags)
            if any(change.changed for change in changes):
                mark_changed(con, "customer_tags", "customer_tag_history")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return changes

    def _write_diff(self, con: duckdb.DuckDBPyConnection, as_of: datetime) -> None:
        con.execute("DELETE FROM customer_tags AS t USING tag_diff AS d WHERE t.cust_no = d.cust_no AND t.tag = d.tag")
        con.execute(
            "INSERT INTO customer_tags (cust_no, tag, value, as_of, since) "
            "SELECT cust_no, tag, new, $1, $1 FROM tag_diff WHERE new IS NOT NULL",
            [as_of],
        )
        con.execute(
            "UPDATE customer_tag_history AS h SET valid_to = $1 FROM tag_diff AS d "
            "WHERE h.cust_no = d.cust_no AND h.tag = d.tag AND h.valid_to IS NULL AND d.old IS NOT NULL",
            [as_of],
        )
        con.execute(
            "INSERT INTO customer_tag_history SELECT cust_no, tag, new, $1, NULL FROM tag_diff WHERE new IS NOT NULL",
            [as_of],
        )

    def _changes(self, con: duckdb.DuckDBPyConnection, tags: Sequence[str]) -> list[Change]:
        row = con.execute(f"SELECT count(*) FROM {self._population}").fetchone()
        population = int(row[0]) if row else 0
        changed = dict(con.execute("SELECT tag, count(*) FROM tag_diff GROUP BY tag").fetchall())
        counts = con.execute(
            "SELECT tag, value, count(*) AS n FROM tag_staging WHERE value IS NOT NULL "
            "GROUP BY ALL ORDER BY tag, n DESC, value"
        ).fetchall()
        distributions: dict[str, dict[str, int]] = {t: {} for t in tags}
        for tag, value, n in counts:
            if len(distributions[tag]) < DISTRIBUTION_LIMIT:
                distributions[tag][str(value)] = int(n)
        covered = dict(
            con.execute(
                "SELECT tag, count(DISTINCT cust_no) FROM tag_staging WHERE value IS NOT NULL GROUP BY tag"
            ).fetchall()
        )
        return [
            Change(
                tag=tag,
                population=population,
                customers=int(covered.get(tag, 0)),
                changed=int(changed.get(tag, 0)),
                distribution=distributions[tag],
            )
            for tag in tags
        ]

    def set_value(self, tag: str, cust_no: str, value: str | None, at: datetime) -> bool:
        with self._write_lock:
            con = self._cursor()
            row = con.execute(
                "SELECT value FROM customer_tags WHERE tag = ? AND cust_no = ?", [tag, cust_no]
            ).fetchone()
            old = row[0] if row else None
            if old == value:
                return False
            in_transaction(con, lambda: _set_one(con, tag, cust_no, value, at))
        return True

    def remove(self, tag: str, at: datetime) -> int:
        return self.replace(tag, {}, at).changed

    # -- reading values ---------------------------------------------------------------------

    def values_of(self, cust_no: str) -> list[TagValue]:
        rows = (
            self._cursor()
            .execute(
                "SELECT tag, value, since AT TIME ZONE 'UTC' FROM customer_tags WHERE cust_no = ? ORDER BY tag, value",
                [cust_no],
            )
            .fetchall()
        )
        return [TagValue(tag=t, value=v, since=as_utc(s) if s is not None else None) for t, v, s in rows]

    def values_as_of(self, cust_no: str, at: datetime) -> list[TagValue]:
        rows = (
            self._cursor()
            .execute(
                "SELECT tag, value, valid_from AT TIME ZONE 'UTC' FROM customer_tag_history WHERE cust_no = ? "
                "AND valid_from <= ? "
                "AND (valid_to IS NULL OR valid_to > ?) ORDER BY tag, value",
                [cust_no, at, at],
            )
            .fetchall()
        )
        return [TagValue(tag=t, value=v, since=as_utc(s)) for t, v, s in rows]

    def tag_as_of(self, tag: str, at: datetime) -> dict[str, str]:
        rows = (
            self._cursor()
            .execute(
                "SELECT cust_no, value FROM customer_tag_history WHERE tag = ? AND valid_from <= ? "
                "AND (valid_to IS NULL OR valid_to > ?)",
                [tag, at, at],
            )
            .fetchall()
        )
        return {str(c): str(v) for c, v in rows}

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self, tag: str, day: date) -> int:
        with self._write_lock:
            con = self._cursor()
            con.execute("BEGIN")
            try:
                con.execute("DELETE FROM tag_snapshots WHERE tag = ? AND snapshot_date = ?", [tag, day])
                con.execute(
                    "INSERT INTO tag_snapshots SELECT tag, ?, cust_no, value FROM customer_tags WHERE tag = ?",
                    [day, tag],
                )
                row = con.execute(
                    "SELECT count(*) FROM tag_snapshots WHERE tag = ? AND snapshot_date = ?", [tag, day]
                ).fetchone()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(row[0]) if row else 0

    def snapshot_as_of(self, tag: str, day: date) -> tuple[date | None, dict[str, int]]:
        con = self._cursor()
        row = con.execute(
            "SELECT max(snapshot_date) FROM tag_snapshots WHERE tag = ? AND snapshot_date <= ?", [tag, day]
        ).fetchone()
        if row is None or row[0] is None:
            return None, {}
        found: date = row[0]
        counts = con.execute(
            "SELECT value, count(*) AS n FROM tag_snapshots WHERE tag = ? AND snapshot_date = ? "
            "GROUP BY value ORDER BY n DESC, value",
            [tag, found],
        ).fetchall()
        return found, {str(v): int(n) for v, n in counts}
