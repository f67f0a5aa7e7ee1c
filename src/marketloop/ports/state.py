"""Operational state ports: sources (write keys) and what collection needs to know about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


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
