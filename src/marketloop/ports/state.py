"""Operational state ports: sources (write keys), the tracking plan, and what collection needs to know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from marketloop.core.tracking import TrackingPlan


class TrackingMode(StrEnum):
    """What a source does with events that break the tracking plan."""

    ALLOW = "allow"  # accept; no checks stored
    WARN = "warn"  # accept and store the violations
    BLOCK = "block"  # quarantine the event and store the violations


@dataclass(frozen=True, kw_only=True)
class Source:
    """A place events come from (an app, an H5 site, a back-end system), with its write key's hash."""

    id: str
    name: str
    key_hash: str
    enabled: bool
    tracking_mode: TrackingMode
    project: str | None
    created_at: datetime


class SourceRepository(Protocol):
    """Durable store of sources. Names and key hashes are unique."""

    def add(self, source: Source) -> None:
        """Store a new source. Raises `MarketloopError` (conflict) when the name is taken."""
        ...

    def get(self, name_or_id: str) -> Source | None:
        """The source with this name or id, or None."""
        ...

    def by_key_hash(self, key_hash: str) -> Source | None:
        """The source whose write key hashes to `key_hash`, or None."""
        ...

    def by_project(self, project: str) -> Source | None:
        """The source that receives a Sensors Analytics SDK `project`, or None."""
        ...

    def list(self) -> list[Source]:
        """All sources, oldest first."""
        ...

    def update(self, source: Source) -> None:
        """Replace the stored source with the same id."""
        ...


class TrackingPlanRepository(Protocol):
    """Durable, versioned store of the tracking plan. Every change adds a version; old ones are kept."""

    def current_version(self) -> int:
        """The newest stored version, or 0 when no plan was ever stored. Cheap: polled every few seconds."""
        ...

    def current(self) -> TrackingPlan | None:
        """The newest stored plan, or None when there is none."""
        ...

    def add(self, plan: TrackingPlan, created_at: datetime) -> None:
        """Store `plan` as version `plan.version`.

        Raises `MarketloopError` (conflict) when that version already exists,
        so of two concurrent changes based on the same version one wins.
        """
        ...
