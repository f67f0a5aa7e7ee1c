"""Journeys (旅程) on the operational store alone, for the CLI: usable while `marketloop serve` runs.

The server's journey runner reads the journeys table every round, so a
journey published, paused or resumed here takes effect there at once.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketloop.access.service import AccessService
from marketloop.adapters.clock import SystemClock
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.app.container import access_service, journey_definitions
from marketloop.app.settings import Settings
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.security.audit import AuditLog


def open_journeys(settings: Settings) -> tuple[JourneyDefinitions, AccessService, sa.Engine]:
    """The journey definitions and the access service (approvals) over the operational store; dispose the
    engine when done."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.state_url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    clock = SystemClock()
    audit = AuditLog(SqlAuditStore(engine), clock)
    return (
        journey_definitions(engine, clock, audit),
        access_service(settings, engine, clock, audit),
        engine,
    )
