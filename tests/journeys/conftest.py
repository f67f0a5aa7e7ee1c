"""Fixtures of the real-time engine tests: a SQLite operational store in a temp dir, a frozen clock, events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.core.events import Event
from marketloop.journeys.service import TriggerService
from marketloop.ports.eventlog import EventLog
from marketloop.testing.clock import FrozenClock

T0 = datetime.fromisoformat("2026-01-05T09:00:00+00:00")


def event(name: str, at: datetime, user: str = "C1", message_id: str | None = None, **properties: Any) -> Event:
    return Event(
        message_id=message_id or f"{user}-{name}-{at.isoformat()}",
        type="track",
        source_id="src",
        received_at=at,
        timestamp=at,
        event=name,
        user_id=user,
        properties=properties,
    )


def identify(at: datetime, user: str = "C1", message_id: str | None = None, **traits: Any) -> Event:
    return Event(
        message_id=message_id or f"{user}-identify-{at.isoformat()}",
        type="identify",
        source_id="src",
        received_at=at,
        timestamp=at,
        user_id=user,
        traits=traits,
    )


def append(log: EventLog, *events: Event, partition: int = 0) -> None:
    asyncio.run(log.append(partition, [msgspec.json.encode(e) for e in events]))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def repository(engine: sa.Engine) -> SqlTriggerRepository:
    return SqlTriggerRepository(engine)


@pytest.fixture
def store(engine: sa.Engine) -> SqlStreamStore:
    return SqlStreamStore(engine)


@pytest.fixture
def triggers(repository: SqlTriggerRepository, store: SqlStreamStore, clock: FrozenClock) -> TriggerService:
    return TriggerService(repository, clock, store=store)
