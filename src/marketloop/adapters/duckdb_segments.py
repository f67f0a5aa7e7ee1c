"""`SegmentWarehouse` on DuckDB: membership SQL over the bank tables, events and profile in one file.

Creates `customer_tags` (filled by the tag engine) and `segment_snapshots`
(segment_id, snapshot_at, cust_no) when absent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from marketloop.core.bank import LogicalType
from marketloop.core.scope import Scope
from marketloop.ports.segments import ExportFormat

SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_tags (
    cust_no VARCHAR NOT NULL,
    tag VARCHAR NOT NULL,
    value VARCHAR,
    as_of TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS segment_snapshots (
    segment_id VARCHAR NOT NULL,
    snapshot_at TIMESTAMPTZ NOT NULL,
    cust_no VARCHAR NOT NULL
);
"""


def logical_type(duckdb_type: str) -> LogicalType | None:
    """The logical type of a DuckDB column type; None for types segments cannot test (lists, structs)."""
    kind = duckdb_type.upper()
    if kind.startswith("DECIMAL"):
        return LogicalType.DECIMAL
    exact = {
        "VARCHAR": LogicalType.TEXT,
        "BOOLEAN": LogicalType.BOOLEAN,
        "DATE": LogicalType.DATE,
        "DOUBLE": LogicalType.DOUBLE,
        "FLOAT": LogicalType.DOUBLE,
        "TIMESTAMP WITH TIME ZONE": LogicalType.TIMESTAMP,
        "TIMESTAMP": LogicalType.TIMESTAMP,
    }
    if kind in exact:
        return exact[kind]
    integers = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
    return LogicalType.INTEGER if kind in integers else None


# The RM in force today, as `DuckDBBranchDirectory.owner` takes it.
_CURRENT_RM = """coalesce(
    (SELECT arg_max(r.rm_id, r.valid_from) FROM rm_assignments r
     WHERE r.cust_no = c.cust_no AND r.valid_from <= current_date
       AND coalesce(r.valid_to, current_date) >= current_date),
    c.rm_id)"""


def _scope_condition(scope: Scope) -> tuple[str, list[object]]:
    """` AND …` conditions on the customer `c` keeping only customers inside `scope`, and their parameters."""
    parts: list[str] = []
    params: list[object] = []
    if scope.branch_ids is not None:
        branches = sorted(scope.branch_ids)
        parts.append(f"c.branch_id IN ({', '.join('?' for _ in branches)})" if branches else "false")
        params.extend(branches)
    if scope.rm_id is not None:
        parts.append(f"{_CURRENT_RM} = ?")
        params.append(scope.rm_id)
    return "".join(f" AND {part}" for part in parts), params


class DuckDBSegmentWarehouse:
    """The segment engine's warehouse on the DuckDB database of the events and bank tables."""

    dialect = "duckdb"

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        with write_lock:
            cursor().execute(SCHEMA)

    def count(self, sql: str) -> int:
        row = self._cursor().execute(sql).fetchone()
        return int(row[0]) if row else 0

    def members(self, sql: str, *, limit: int) -> list[str]:
        rows = self._cursor().execute(f"SELECT cust_no FROM ({sql}) ORDER BY cust_no LIMIT ?", [limit]).fetchall()
        return [str(row[0]) for row in rows]

    def columns(self, relation: str) -> dict[str, LogicalType] | None:
        try:
            found = self._cursor().table(relation)
        except duckdb.CatalogException:
            return None
        typed = {str(name): logical_type(str(kind)) for name, kind in zip(found.columns, found.types, strict=True)}
        return {name: kind for name, kind in typed.items() if kind is not None}

    def materialise(self, segment_id: str, snapshot_at: datetime, members_sql: str) -> int:
        with self._write_lock:
            con = self._cursor()
            con.execute("BEGIN")
            try:
                con.execute(
                    "DELETE FROM segment_snapshots WHERE segment_id = ? AND snapshot_at = ?", [segment_id, snapshot_at]
                )
                con.execute(
                    f"INSERT INTO segment_snapshots SELECT ?, ?, cust_no FROM ({members_sql}) ORDER BY cust_no",
                    [segment_id, snapshot_at],
                )
                row = con.execute(
                    "SELECT count(*) FROM segment_snapshots WHERE segment_id = ? AND snapshot_at = ?",
                    [segment_id, snapshot_at],
                ).fetchone()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(row[0]) if row else 0

    def members_of(self, segment_id: str, snapshot_at: datetime, *, scope: Scope) -> list[str]:
        where, params = _scope_condition(scope)
        rows = self._cursor().execute(
            "SELECT s.cust_no FROM segment_snapshots s LEFT JOIN customers c ON c.cust_no = s.cust_no "
            f"WHERE s.segment_id = ? AND s.snapshot_at = ?{where} ORDER BY s.cust_no",
            [segment_id, snapshot_at, *params],
        )
        return [str(row[0]) for row in rows.fetchall()]

    def export(self, segment_id: str, snapshot_at: datetime, path: Path, fmt: ExportFormat) -> int:
        options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet"
        target = "'" + str(path).replace("'", "''") + "'"
        con = self._cursor()
        con.execute(
            f"COPY (SELECT cust_no FROM segment_snapshots WHERE segment_id = ? AND snapshot_at = ? ORDER BY cust_no) "
            f"TO {target} ({options})",
            [segment_id, snapshot_at],
        )
        row = con.execute(
            "SELECT count(*) FROM segment_snapshots WHERE segment_id = ? AND snapshot_at = ?", [segment_id, snapshot_at]
        ).fetchone()
        return int(row[0]) if row else 0
