"""The collection service: authenticate, apply the tracking plan, make events durable.

Every wire format ends here with an `Inbound`. The service answers only after
the accepted events are durable in the event log, so an acknowledged event is
never lost; the loader and the stream processor take it from there.

When the tracking plan cannot mark anything (the source's mode is allow, or no
plan has event specs yet) and the decoder kept its messages in wire form, the
records are written straight from them, without an `Event` per message.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import msgspec

from marketloop.collect.sources import SourceService
from marketloop.collect.wire import Inbound
from marketloop.core.errors import FieldError
from marketloop.core.events import Event
from marketloop.core.tracking import TrackingPlan
from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.ports.state import Source, TrackingMode
from marketloop.security.ratelimit import RateLimiter


class PlanCheck(Protocol):
    """Applies a source's tracking plan to events in place (violations, quarantine)."""

    def apply(self, source: Source, events: list[Event]) -> None:
        """Set `violations` and `quarantined` on each event as the source's mode requires."""
        ...

    def current(self) -> TrackingPlan:
        """The plan in force (cached; cheap enough to ask on every request)."""
        ...


@dataclass(kw_only=True)
class Collected:
    """What happened to one request: how many events were accepted, quarantined and rejected."""

    accepted: int
    quarantined: int
    rejected: list[FieldError] = field(default_factory=list)


_encoder = msgspec.json.Encoder()


class CollectService:
    def __init__(
        self,
        log: EventLog,
        sources: SourceService,
        plan: PlanCheck,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._log = log
        self._sources = sources
        self._plan = plan
        self._clock = clock
        self._limiter = limiter

    def now(self) -> datetime:
        """The receive time to stamp on a request's events."""
        return self._clock.now()

    def authenticate(self, write_key: str | None, project: str | None = None) -> Source:
        return self._sources.authenticate(write_key, project)

    async def collect(self, source: Source, inbound: Inbound) -> Collected:
        """Make the accepted events of `inbound` durable; returns once they are.

        Raises rate-limited (429) when the source's write key has used up its requests for now.
        """
        if self._limiter is not None:
            self._limiter.check(source.id, "write key")
        deferred = inbound.deferred
        if deferred is not None and not self._plan_marks(source):
            if deferred:
                await self._append_records(deferred.records(source.id), deferred.partition_keys)
            return Collected(accepted=len(deferred), quarantined=0, rejected=inbound.rejected)
        events = inbound.events
        for event in events:
            event.source_id = source.id
        self._plan.apply(source, events)
        if events:
            await self._append(events)
        quarantined = sum(1 for event in events if event.quarantined)
        return Collected(accepted=len(events) - quarantined, quarantined=quarantined, rejected=inbound.rejected)

    async def append_internal(self, events: list[Event]) -> None:
        """Make events the platform produces itself (channel receipts) durable, like collected ones.

        No write key and no tracking plan: the producer is marketloop, and it names its own `source_id`.
        """
        if events:
            await self._append(events)

    def _plan_marks(self, source: Source) -> bool:
        """Whether the plan may mark events of `source`: allow marks nothing, nor does a plan without specs."""
        return source.tracking_mode is not TrackingMode.ALLOW and bool(self._plan.current().events)

    async def _append(self, events: list[Event]) -> None:
        encode = _encoder.encode
        await self._append_records(
            [encode(event) for event in events],
            lambda: [event.user_id or event.anonymous_id or event.message_id for event in events],
        )

    async def _append_records(self, records: list[bytes], partition_keys: Callable[[], list[str]]) -> None:
        """Append one request's records; with several partitions, each to the partition of its key."""
        partitions = self._log.partitions
        if partitions == 1:
            await self._log.append(0, records)
            return
        groups: dict[int, list[bytes]] = {}
        for key, record in zip(partition_keys(), records, strict=True):
            groups.setdefault(zlib.crc32(key.encode()) % partitions, []).append(record)
        for partition, group in groups.items():
            await self._log.append(partition, group)
