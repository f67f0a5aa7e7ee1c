"""Segment triggers on the segments engine's real-time evaluator, through `SegmentMembership`."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import sqlalchemy as sa

from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.core.events import Event
from marketloop.journeys.membership import SegmentMembership
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.service import TriggerService
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import CompiledSegment, CustomerFacts, EventFact
from marketloop.segments.membership import Membership, MembershipSegment
from marketloop.segments.parse import parse_definition
from marketloop.segments.resolve import resolve
from marketloop.testing.clock import FrozenClock
from marketloop.testing.eventlog import MemoryEventLog

from .conftest import T0, append, event, minutes

DEFINITIONS = {"seg_fund_fans": "did fund_page_view at least 3 times within 1d"}


class _Facts:
    """Every event the processor showed it, per customer (a facts source for the test)."""

    def __init__(self) -> None:
        self.events: dict[str, list[EventFact]] = defaultdict(list)
        self.asked: list[tuple[timedelta, frozenset[str]]] = []

    def facts(self, customer: str, event: Event, *, lookback: timedelta, needs: frozenset[str]) -> CustomerFacts:
        self.asked.append((lookback, needs))
        known = self.events[customer]
        if not known or known[-1].timestamp != event.timestamp:
            known.append(EventFact(event=event.event, timestamp=event.timestamp, properties=event.properties))
        return CustomerFacts(cust_no=customer, events=tuple(known))


def _build(segment_ids: frozenset[str]) -> Membership:
    return Membership(
        [
            MembershipSegment(
                segment_id=i,
                version=1,
                compiled=CompiledSegment(resolve(parse_definition(DEFINITIONS[i]), DEFAULT_CATALOG)),
            )
            for i in sorted(segment_ids)
        ]
    )


def test_entered_and_exited_fire_from_the_evaluator(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save({"kind": "segment", "id": "fans-in", "segment_id": "seg_fund_fans"})
    triggers.save({"kind": "segment", "id": "fans-out", "segment_id": "seg_fund_fans", "transition": "exited"})
    facts = _Facts()
    log = MemoryEventLog()
    views = [event("fund_page_view", T0 + minutes(n)) for n in range(4)]
    append(log, *views, event("login", T0 + timedelta(days=2)))
    membership = SegmentMembership(_build, facts, clock)
    StreamProcessor(log, SqlStreamStore(engine), SqlTriggerRepository(engine), clock, membership=membership).drain()
    fires = sorted((f.trigger_id, f.fired_at) for f in SqlStreamStore(engine).fires())
    assert fires == [("fans-in", T0 + minutes(2)), ("fans-out", T0 + timedelta(days=2))]
    assert facts.asked[0] == (timedelta(days=1), frozenset({"events"}))
