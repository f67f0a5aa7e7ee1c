"""The processor's `Membership` on the segments engine's real-time evaluator (`marketloop.segments.membership`).

`SegmentMembership.segments_of` asks a `CustomerFactsSource` for what the
evaluator needs to know of the customer (profile row, tags, holdings,
transactions, recent events, as far back as the watched segments' `lookback`,
of the kinds in `needs`), then answers every watched segment at the event's
time with the same meaning as the warehouse SQL. Entered / exited are derived
by the segment triggers from their committed state, not here.

The evaluator for a set of segment ids is built once (by `build`, normally
`SegmentService.membership`) and rebuilt when the watched set changes or
after `refresh_seconds`, so a newly saved segment version is picked up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from marketloop.core.events import Event
from marketloop.ports.clock import Clock
from marketloop.segments.evaluate import CustomerFacts
from marketloop.segments.membership import Membership as SegmentEvaluator


class CustomerFactsSource(Protocol):
    """What the real-time evaluator needs to know about one customer just after an event."""

    def facts(self, customer: str, event: Event, *, lookback: timedelta, needs: frozenset[str]) -> CustomerFacts:
        """The customer's facts including `event`: kinds in `needs`, events and transactions back `lookback`.

        `customer` is the processor's key (a OneID, else the log's partition
        key). Must be deterministic for the same log position: a replay after
        a crash asks again.
        """
        ...


class SegmentMembership:
    """`marketloop.journeys.processor.Membership` over `SegmentService.membership` and a facts source."""

    def __init__(
        self,
        build: Callable[[frozenset[str]], SegmentEvaluator],
        facts: CustomerFactsSource,
        clock: Clock,
        *,
        refresh_seconds: float = 60.0,
    ) -> None:
        self._build = build
        self._facts = facts
        self._clock = clock
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._built: tuple[frozenset[str], float, SegmentEvaluator] | None = None

    def _evaluator(self, segment_ids: frozenset[str]) -> SegmentEvaluator:
        now = self._clock.monotonic()
        with self._lock:
            built = self._built
            if built is None or built[0] != segment_ids or now - built[1] >= self._refresh:
                built = (segment_ids, now, self._build(segment_ids))
                self._built = built
            return built[2]

    def segments_of(self, customer: str, event: Event, segment_ids: frozenset[str]) -> frozenset[str]:
        evaluator = self._evaluator(segment_ids)
        facts = self._facts.facts(customer, event, lookback=evaluator.lookback, needs=evaluator.needs)
        return evaluator.members_of(facts, event.timestamp) & segment_ids
