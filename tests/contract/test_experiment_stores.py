"""The experiment port contracts, run against every adapter: DuckDB and SQL, and the in-memory fakes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from marketloop.adapters.duckdb_experiments import DuckDBExperimentWarehouse
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.experiments import SqlExperimentRepository
from marketloop.ports.experiments import ExperimentRepository, ExperimentWarehouse
from marketloop.testing.contracts.experiments import *  # noqa: F403
from marketloop.testing.experiment_stores import MemoryExperimentRepository, MemoryExperimentWarehouse


@pytest.fixture(params=["duckdb", "memory"])
def experiment_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperimentWarehouse]:
    if request.param == "memory":
        yield MemoryExperimentWarehouse()
        return
    con = duckdb.connect(str(tmp_path / "events.duckdb"))
    try:
        yield DuckDBExperimentWarehouse(lambda: con, threading.Lock())
    finally:
        con.close()


@pytest.fixture(params=["sqlite", "memory"])
def experiment_repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperimentRepository]:
    if request.param == "memory":
        yield MemoryExperimentRepository()
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    try:
        yield SqlExperimentRepository(engine)
    finally:
        engine.dispose()
