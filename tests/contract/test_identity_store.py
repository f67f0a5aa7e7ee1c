"""The IdentityStore contract suite, run against every adapter of the port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from marketloop.adapters.duckdb_identity import DuckDBIdentityStore
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.ports.identity import IdentityStore
from marketloop.testing.contracts.identity import *  # noqa: F403
from marketloop.testing.identity import MemoryIdentityStore


@pytest.fixture(params=["duckdb", "memory"])
def identity_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdentityStore]:
    if request.param == "memory":
        yield MemoryIdentityStore()
        return
    warehouse = DuckDBWarehouse(tmp_path / "warehouse" / "events.duckdb")
    try:
        yield DuckDBIdentityStore(warehouse.cursor, warehouse.write_lock)
    finally:
        warehouse.close()
