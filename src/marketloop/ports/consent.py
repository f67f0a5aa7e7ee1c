"""The consent store port: append-only consent records, newest wins."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from marketloop.core.consent import Channel, ConsentRecord, Purpose


class ConsentStore(Protocol):
    """Durable, append-only store of consent records; records are never updated or deleted."""

    def add(self, record: ConsentRecord) -> ConsentRecord:
        """Store `record` and return it with its `id` (ids grow with every add)."""
        ...

    def latest_many(
        self, keys: Collection[tuple[str, Channel, Purpose]], at: datetime
    ) -> dict[tuple[str, Channel, Purpose], ConsentRecord]:
        """`latest` for many (customer, channel, purpose) at once; keys with no record are missing."""
        ...

    def latest(self, customer: str, channel: Channel, purpose: Purpose, at: datetime) -> ConsentRecord | None:
        """The record with the greatest (`at`, `id`) at or before `at` for this customer, channel and purpose."""
        ...

    def history(self, customer: str) -> list[ConsentRecord]:
        """Every record of the customer, oldest first by (`at`, `id`)."""
        ...
