"""Segment services on a real DuckDB warehouse and SQLite operational store, with a frozen clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from marketloop.adapters.duckdb_segment_monitoring import DuckDBMonitoringWarehouse
from marketloop.adapters.duckdb_segments import DuckDBSegmentWarehouse
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.segment_monitoring import SqlSegmentMonitorRepository
from marketloop.adapters.sql.segments import SqlSegmentRepository
from marketloop.segments.fixed import FixedSegmentService
from marketloop.segments.lookalike import LookalikeService
from marketloop.segments.service import SegmentService
from marketloop.segments.sizes import SegmentSizes
from marketloop.testing.clock import FrozenClock
from marketloop.testing.segments import AS_OF, SmallBank, ddl, inserts, tables


@dataclass
class Stack:
    con: duckdb.DuckDBPyConnection
    clock: FrozenClock
    segments: SegmentService
    fixed: FixedSegmentService
    sizes: SegmentSizes
    lookalikes: LookalikeService

    def load(self, bank: SmallBank) -> None:
        for name, columns, rows in tables(bank):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
            self.con.execute(ddl("duckdb", name, columns))
            insert = inserts("duckdb", name, columns, rows)
            if insert:
                self.con.execute(insert)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), config={"threads": 1})
    lock = threading.Lock()
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade(engine)
    clock = FrozenClock(AS_OF)
    segments = SegmentService(SqlSegmentRepository(engine), DuckDBSegmentWarehouse(con.cursor, lock), clock)
    monitors = SqlSegmentMonitorRepository(engine)
    monitoring = DuckDBMonitoringWarehouse(con.cursor, lock)
    try:
        yield Stack(
            con=con,
            clock=clock,
            segments=segments,
            fixed=FixedSegmentService(segments, monitors, monitoring, clock),
            sizes=SegmentSizes(segments, monitors),
            lookalikes=LookalikeService(segments, monitors, monitoring, clock),
        )
    finally:
        con.close()
        engine.dispose()
