"""The EventLog contract suite, run against every adapter of the port.

A new adapter (NATS JetStream, Kafka) adds one param and one factory here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketloop.adapters.filelog import FileLog
from marketloop.ports.eventlog import EventLog
from marketloop.testing.contracts.eventlog import *  # noqa: F403
from marketloop.testing.contracts.eventlog import LogFactory
from marketloop.testing.eventlog import MemoryEventLog


class FileLogFactory:
    """FileLogs on one temporary directory; a restart reopens the same directory."""

    restartable = True

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def open(self, *, partitions: int = 1) -> EventLog:
        return FileLog(self.directory, partitions=partitions)


class MemoryLogFactory:
    """A fresh in-memory log each time: nothing outlives a restart."""

    restartable = MemoryEventLog.RESTARTABLE

    async def open(self, *, partitions: int = 1) -> EventLog:
        return MemoryEventLog(partitions=partitions)


@pytest.fixture(params=["file", "memory"])
def log_factory(request: pytest.FixtureRequest, tmp_path: Path) -> LogFactory:
    if request.param == "file":
        return FileLogFactory(tmp_path / "log")
    return MemoryLogFactory()
