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

In production the facts come from `LookupFacts` over the `CustomerLookup`
port (the DuckDB warehouse plus the events not loaded yet), fetched once per
processor batch (`prepare`); `marketloop.journeys.segment_events` turns the
answers into `segment_entered` / `segment_exited` events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import NamedTuple, Protocol, runtime_checkable

from marketloop.core.events import Event
from marketloop.ports.clock import Clock
from marketloop.ports.customer_facts import CustomerLookup, CustomerRecord
from marketloop.segments.evaluate import CustomerFacts, EventFact, HoldingFact, TransactionFact
from marketloop.segments.membership import Membership as SegmentEvaluator
from marketloop.segments.membership import MembershipUpdate


class CustomerFactsSource(Protocol):
    """What the real-time evaluator needs to know about one customer just after an event."""

    def facts(self, customer: str, event: Event, *, lookback: timedelta, needs: frozenset[str]) -> CustomerFacts | None:
        """The customer's facts including `event`: kinds in `needs`, events and transactions back `lookback`.

        `customer` is the processor's key (a OneID, else the log's partition
        key). None when the key is no customer of the bank (not in
        `customers`, the population of every segment's SQL): a member of
        nothing. Must be deterministic for the same log position: a replay
        after a crash asks again.
        """
        ...


@runtime_checkable
class BatchedFactsSource(CustomerFactsSource, Protocol):
    """A facts source that looks up a whole processor batch at once (one query per kind, not per event)."""

    def prepare(self, batch: Sequence[tuple[str, Event]], *, lookback: timedelta, needs: frozenset[str]) -> None:
        """Fetch what `facts` will be asked about the (customer key, event) pairs of one batch, in log order.

        Called once per batch before `facts` is called for its events, in the same order.
        """
        ...


class LookupFacts:
    """A `BatchedFactsSource` over the `CustomerLookup` port (production: the DuckDB warehouse)."""

    def __init__(self, lookup: CustomerLookup) -> None:
        self._lookup = lookup

    def prepare(self, batch: Sequence[tuple[str, Event]], *, lookback: timedelta, needs: frozenset[str]) -> None:
        self._lookup.prepare(batch, lookback=lookback, kinds=needs)

    def facts(self, customer: str, event: Event, *, lookback: timedelta, needs: frozenset[str]) -> CustomerFacts | None:
        record = self._lookup.record(customer, event, lookback=lookback, kinds=needs)
        return None if record is None else _facts(record)


def _facts(record: CustomerRecord) -> CustomerFacts:
    return CustomerFacts(
        cust_no=record.cust_no,
        attributes=record.attributes,
        tags=record.tags,
        holdings=[
            HoldingFact(
                product_code=h.product_code,
                balance=h.balance,
                valid_from=h.valid_from,
                valid_to=h.valid_to,
                maturity_date=h.maturity_date,
                product_type=h.product_type,
                risk_level=h.risk_level,
            )
            for h in record.holdings
        ],
        transactions=[
            TransactionFact(
                ts=t.ts,
                amount=t.amount,
                direction=t.direction,
                counterparty_type=t.counterparty_type,
                channel=t.channel,
                category=t.category,
            )
            for t in record.transactions
        ],
        events=[EventFact(event=e.event, timestamp=e.timestamp, properties=e.properties) for e in record.events],
    )


class _Built(NamedTuple):
    """The evaluator of a set of segments, and what it needs (worked out once, not per event)."""

    segment_ids: frozenset[str]
    at: float
    evaluator: SegmentEvaluator
    lookback: timedelta
    needs: frozenset[str]


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
        self._built: _Built | None = None

    def _evaluator(self, segment_ids: frozenset[str]) -> _Built:
        now = self._clock.monotonic()
        with self._lock:
            built = self._built
            if built is None or built.segment_ids != segment_ids or now - built.at >= self._refresh:
                evaluator = self._build(segment_ids)
                built = _Built(segment_ids, now, evaluator, evaluator.lookback, evaluator.needs)
                self._built = built
            return built

    def prepare(self, batch: Sequence[tuple[str, Event]], segment_ids: frozenset[str]) -> None:
        """Let a batched facts source fetch the batch's customers at once (nothing to do for others)."""
        if segment_ids and batch and isinstance(self._facts, BatchedFactsSource):
            evaluator = self._evaluator(segment_ids)
            self._facts.prepare(batch, lookback=evaluator.lookback, needs=evaluator.needs)

    def segments_of(self, customer: str, event: Event, segment_ids: frozenset[str]) -> frozenset[str]:
        evaluator = self._evaluator(segment_ids)
        facts = self._facts.facts(customer, event, lookback=evaluator.lookback, needs=evaluator.needs)
        if facts is None:
            return frozenset()
        return evaluator.evaluator.members_of(facts, event.timestamp) & segment_ids

    def update(
        self, customer: str, event: Event, segment_ids: frozenset[str], previous: Iterable[str] | None
    ) -> MembershipUpdate | None:
        """The customer's segments among `segment_ids` just after `event`, and the changes against `previous`.

        None when the key is no customer (see `CustomerFactsSource.facts`).
        """
        evaluator = self._evaluator(segment_ids)
        facts = self._facts.facts(customer, event, lookback=evaluator.lookback, needs=evaluator.needs)
        if facts is None:
            return None
        return evaluator.evaluator.update(facts, event.timestamp, previous)
