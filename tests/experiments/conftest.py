"""An experiment service over a real SQLite operational store (migrated) and an in-memory DuckDB warehouse."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from marketloop.adapters.duckdb_experiments import DuckDBExperimentWarehouse
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.experiments import SqlExperimentRepository
from marketloop.experiments.service import ExperimentService
from marketloop.testing.clock import FrozenClock

COSTS = {"push": 0.01, "sms": 0.05}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def service(tmp_path: Path, clock: FrozenClock) -> Iterator[ExperimentService]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    con = duckdb.connect()
    warehouse = DuckDBExperimentWarehouse(lambda: con, threading.Lock())
    yield ExperimentService(SqlExperimentRepository(engine), warehouse, clock, channel_costs=COSTS)
    con.close()
    engine.dispose()
