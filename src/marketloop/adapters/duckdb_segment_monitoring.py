"""`MonitoringWarehouse` on DuckDB: frozen members of fixed segments (固化客群) and their stage on each date.

Creates `segment_fixed_members` (name, cust_no) and `segment_fixed_stages`
(name, snapshot_date, as_of, cust_no, stage, in_segment) when absent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import duckdb
import polars as pl

from marketloop.adapters.duckdb_segments import logical_type
from marketloop.core.bank import LogicalType
from marketloop.core.events import as_utc
from marketloop.ports.segment_monitoring import LEFT, StageCount, TransitionCount

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SCHEMA = """
CREATE TABLE IF NOT EXISTS segment_fixed_members (
    name VARCHAR NOT NULL,
    cust_no VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_fixed_stages (
    name VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    cust_no VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    in_segment BOOLEAN NOT NULL
);
"""


class DuckDBMonitoringWarehouse:
    """Fixed-segment members and stage snapshots in the DuckDB database of the events and bank tables."""

    dialect = "duckdb"

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        with write_lock:
            cursor().execute(SCHEMA)

    def columns(self, relation: str) -> dict[str, LogicalType] | None:
        try:
            found = self._cursor().table(relation)
        except duckdb.CatalogException:
            return None
        typed = {str(name): logical_type(str(kind)) for name, kind in zip(found.columns, found.types, strict=True)}
        return {name: kind for name, kind in typed.items() if kind is not None}

    def _atomically(self, statements: list[tuple[str, list[object]]]) -> duckdb.DuckDBPyConnection:
        with self._write_lock:
            con = self._cursor()
            con.execute("BEGIN")
            try:
                for sql, parameters in statements:
                    con.execute(sql, parameters)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return con

    def freeze(self, name: str, members_sql: str) -> int:
        con = self._atomically(
            [
                ("DELETE FROM segment_fixed_stages WHERE name = ?", [name]),
                ("DELETE FROM segment_fixed_members WHERE name = ?", [name]),
                (
                    f"INSERT INTO segment_fixed_members SELECT DISTINCT ?, cust_no FROM ({members_sql}) "
                    "ORDER BY cust_no",
                    [name],
                ),
            ]
        )
        return self._count(con, "SELECT count(*) FROM segment_fixed_members WHERE name = ?", [name])

    def record_stages(self, name: str, on: date, as_of: datetime, stage_sql: str, in_segment_sql: str) -> int:
        insert = f"""
            INSERT INTO segment_fixed_stages
            SELECT ?, ?, ?, m.cust_no, coalesce(s.stage, ?), i.cust_no IS NOT NULL
            FROM segment_fixed_members m
            LEFT JOIN ({stage_sql}) s ON s.cust_no = m.cust_no
            LEFT JOIN (SELECT DISTINCT cust_no FROM ({in_segment_sql})) i ON i.cust_no = m.cust_no
            WHERE m.name = ?
            ORDER BY m.cust_no
        """
        con = self._atomically(
            [
                ("DELETE FROM segment_fixed_stages WHERE name = ? AND snapshot_date = ?", [name, on]),
                (insert, [name, on, as_utc(as_of), LEFT, name]),
            ]
        )
        return self._count(
            con, "SELECT count(*) FROM segment_fixed_stages WHERE name = ? AND snapshot_date = ?", [name, on]
        )

    def stage_counts(self, name: str) -> list[StageCount]:
        rows = (
            self._cursor()
            .execute(
                """
                SELECT snapshot_date, epoch_us(max(as_of)), stage, count(*), count(*) FILTER (WHERE in_segment)
                FROM segment_fixed_stages WHERE name = ?
                GROUP BY snapshot_date, stage ORDER BY snapshot_date, stage
                """,
                [name],
            )
            .fetchall()
        )
        return [
            StageCount(
                on=row[0],
                as_of=_EPOCH + timedelta(microseconds=int(row[1])),
                stage=str(row[2]),
                customers=int(row[3]),
                in_segment=int(row[4]),
            )
            for row in rows
        ]

    def transitions(self, name: str, start: date, end: date) -> list[TransitionCount]:
        rows = (
            self._cursor()
            .execute(
                """
                SELECT a.stage, b.stage, count(*)
                FROM segment_fixed_stages a
                JOIN segment_fixed_stages b ON b.name = a.name AND b.cust_no = a.cust_no AND b.snapshot_date = ?
                WHERE a.name = ? AND a.snapshot_date = ?
                GROUP BY a.stage, b.stage ORDER BY a.stage, b.stage
                """,
                [end, name, start],
            )
            .fetchall()
        )
        return [TransitionCount(from_stage=str(r[0]), to_stage=str(r[1]), customers=int(r[2])) for r in rows]

    def drop_fixed(self, name: str) -> None:
        self._atomically(
            [
                ("DELETE FROM segment_fixed_stages WHERE name = ?", [name]),
                ("DELETE FROM segment_fixed_members WHERE name = ?", [name]),
            ]
        )

    def table(self, sql: str) -> pl.DataFrame:
        found: pl.DataFrame = self._cursor().sql(sql).pl()
        return found

    @staticmethod
    def _count(con: duckdb.DuckDBPyConnection, sql: str, parameters: list[object]) -> int:
        row = con.execute(sql, parameters).fetchone()
        return int(row[0]) if row else 0
