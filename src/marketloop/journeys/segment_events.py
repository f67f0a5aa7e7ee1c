"""Real-time segment membership as events: `segment_entered` / `segment_exited` appended to the event log.

The stream processor asks `SegmentEvents.observe` for every event of a
customer. The real-time segments (those named by an enabled segment trigger,
plus those listed in settings, `[stream] realtime_segments`) are answered by
`SegmentMembership` on the segments engine's evaluator; the customer's last
answer is the processor's state under the key `$segments` (committed with the
partition's offset), and each difference becomes an event:

    type track, event segment_entered | segment_exited, source $segments,
    traits.cust_no (so OneID puts it on the customer), timestamp = the cause's,
    properties: segment_id, segment_name, segment_version, cause (message id)

Exactly once: an event's `message_id` is derived from its cause (kind,
segment, the causing event's message id), and `publish` appends the batch's
events durably BEFORE the processor commits the batch. A crash in between
makes the replay append the same message ids again; the loader drops
duplicate message ids and trigger fires are keyed by their cause, so each
change counts once. After the commit nothing is appended again.

The first answer for a customer, or for a segment newly made real-time, only
records membership (no flood of `segment_entered` when going live). Events
this module appended are not evaluated again (no feedback loop).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import msgspec

from marketloop.core.errors import MarketloopError
from marketloop.core.events import Event
from marketloop.journeys.membership import SegmentMembership
from marketloop.journeys.steps import Step
from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.segments.membership import Membership as SegmentEvaluator
from marketloop.segments.membership import MembershipChange, MembershipUpdate

log = logging.getLogger(__name__)

STATE_KEY = "$segments"  # the processor-state key (trigger ids cannot start with $)
SOURCE = "$segments"  # source_id of the events appended here


class NotAppendedError(RuntimeError):
    """The batch's change events could not be appended (e.g. the log is closed): the batch must not commit."""


class _State(msgspec.Struct, kw_only=True, array_like=True):
    known: list[str]  # the segments answered last time
    members: list[str]  # those of them the customer was in


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_State)


class StateBatch(Protocol):
    """The processor batch's working state, as far as this module uses it."""

    def state(self, trigger_id: str, customer: str) -> bytes | None: ...

    def apply(self, trigger_id: str, customer: str, step: Step, partition: int) -> None: ...


class SegmentEvents:
    """Keeps real-time membership per customer and turns its changes into events on the log."""

    def __init__(
        self,
        membership: SegmentMembership,
        log: EventLog,
        clock: Clock,
        *,
        realtime: Callable[[], frozenset[str]] = lambda: frozenset(),
        name_of: Callable[[str], str] = str,
    ) -> None:
        """`realtime`: segments made real-time by configuration; `name_of`: a segment's name (its id if unknown)."""
        self._membership = membership
        self._log = log
        self._clock = clock
        self._realtime = realtime
        self._name_of = name_of
        self._names: dict[tuple[str, int], str] = {}
        self._pending: list[tuple[int, Event]] = []
        self.appended = 0  # events appended since start (for status and tests)

    def watched(self, trigger_segments: frozenset[str]) -> frozenset[str]:
        """The real-time segments: those segment triggers watch, and the configured ones."""
        return trigger_segments | self._realtime()

    def prepare(self, batch: Sequence[tuple[str, Event]], watched: frozenset[str]) -> None:
        """Before a batch: let the facts source fetch its customers at once; drop events of a failed batch."""
        self._pending.clear()
        self._membership.prepare([(c, e) for c, e in batch if e.source_id != SOURCE], watched)

    def observe(
        self, batch: StateBatch, customer: str, event: Event, watched: frozenset[str], partition: int
    ) -> frozenset[str] | None:
        """The customer's segments among `watched` just after `event` (None: not asked), recording changes."""
        if not watched or event.source_id == SOURCE:
            return None
        raw = batch.state(STATE_KEY, customer)
        before = _decoder.decode(raw) if raw is not None else None
        update = self._membership.update(customer, event, watched, None if before is None else before.members)
        if update is None:
            return frozenset()
        after = _State(known=sorted(watched), members=sorted(update.segments))
        if after != before:
            batch.apply(STATE_KEY, customer, Step(state=_encoder.encode(after)), partition)
        known = frozenset(before.known) if before is not None else frozenset()
        for change in update.changes:
            if change.segment_id in known:
                self._pending.append(self._event(change, event, update))
        return update.segments

    def _event(self, change: MembershipChange, cause: Event, update: MembershipUpdate) -> tuple[int, Event]:
        cust_no = update.cust_no
        event = Event(
            message_id=f"{change.event}:{change.segment_id}:{cause.message_id}",
            type="track",
            source_id=SOURCE,
            received_at=self._clock.now(),
            timestamp=cause.timestamp,
            event=change.event,
            traits={"cust_no": cust_no},
            properties={
                "segment_id": change.segment_id,
                "segment_name": self._name(change.segment_id, change.version),
                "segment_version": change.version,
                "cause": cause.message_id,
            },
        )
        # The partition the collection service and the API triggers give this customer's events.
        return zlib.crc32(cust_no.encode()) % self._log.partitions, event

    def _name(self, segment_id: str, version: int) -> str:
        key = (segment_id, version)
        if key not in self._names:
            self._names[key] = self._name_of(segment_id)
        return self._names[key]

    def publish(self) -> int:
        """Append the batch's events durably (call before committing the batch); returns how many."""
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        grouped: dict[int, list[bytes]] = {}
        for partition, event in pending:
            grouped.setdefault(partition, []).append(msgspec.json.encode(event))
        try:
            run_blocking(self._append(grouped))
        except Exception as error:
            raise NotAppendedError(f"{len(pending)} segment events could not be appended: {error}") from error
        self.appended += len(pending)
        return len(pending)

    async def _append(self, grouped: dict[int, list[bytes]]) -> None:
        await asyncio.gather(*(self._log.append(partition, records) for partition, records in grouped.items()))


def run_blocking(append: Coroutine[Any, Any, None]) -> None:
    """Run an append to completion from a worker thread, or from inside a running loop (a drain at stop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(append)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="segment-events") as helper:
        helper.submit(asyncio.run, append).result()


def skipping_broken(build: Callable[[Iterable[str]], SegmentEvaluator]) -> Callable[[frozenset[str]], SegmentEvaluator]:
    """`build` (e.g. `SegmentService.membership`) leaving out, loudly, segments it cannot answer.

    A segment trigger may name a segment that does not exist or no longer
    resolves (a removed tag): that segment is not real-time, and the stream
    goes on for every other one.
    """

    def build_answerable(segment_ids: frozenset[str]) -> SegmentEvaluator:
        answerable = []
        for segment_id in sorted(segment_ids):
            try:
                build([segment_id])
            except MarketloopError as error:
                log.error("segment %s cannot be answered in real time and is skipped: %s", segment_id, error)
                continue
            answerable.append(segment_id)
        return build(answerable)

    return build_answerable
