"""Real-time membership: one customer's segments now, and what they entered and exited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.segments.evaluate import CustomerFacts, EventFact
from marketloop.segments.membership import SEGMENT_ENTERED, SEGMENT_EXITED
from marketloop.testing.segments import AS_OF, SmallBank


def test_entered_and_exited_against_the_previous_state(stack: Any) -> None:
    stack.load(SmallBank())
    active = stack.segments.save("活跃", "did login within 1d")
    rich = stack.segments.save("高资产", "aum >= 100000")
    membership = stack.segments.membership()
    assert membership.segment_ids == {active.segment_id, rich.segment_id}
    assert membership.lookback == timedelta(days=1)
    assert membership.needs == {"events", "attributes"}

    customer = CustomerFacts(cust_no="C1", attributes={"aum": Decimal(150_000)})
    first = membership.update(customer, AS_OF, previous=None)
    assert first.segments == {rich.segment_id}
    assert (first.entered, first.exited, first.changes) == ((), (), ())  # nothing known before: no events

    logged_in = CustomerFacts(
        cust_no="C1",
        attributes={"aum": Decimal(90_000)},
        events=[EventFact(event="login", timestamp=AS_OF - timedelta(minutes=1))],
    )
    second = membership.update(logged_in, AS_OF, previous=first.segments)
    assert (second.entered, second.exited) == ((active.segment_id,), (rich.segment_id,))
    assert [(c.event, c.segment_id, c.version, c.at) for c in second.changes] == [
        (SEGMENT_ENTERED, active.segment_id, 1, AS_OF),
        (SEGMENT_EXITED, rich.segment_id, 1, AS_OF),
    ]
    assert second.changes[0].properties() == {"segment_id": active.segment_id, "segment_version": 1}

    later = AS_OF + timedelta(days=1)  # the login window expires without any event
    third = membership.update(logged_in, later, previous=second.segments | {"seg_deleted"})
    assert (third.segments, third.entered, third.exited) == (frozenset(), (), (active.segment_id,))


def test_membership_of_chosen_segments_and_unknown_ones(stack: Any) -> None:
    stack.load(SmallBank())
    rich = stack.segments.save("高资产", "aum >= 100000")
    stack.segments.save("高资产 v2", "aum >= 200000", segment_id=rich.segment_id)
    membership = stack.segments.membership([rich.segment_id])
    update = membership.update(CustomerFacts(cust_no="C1", attributes={"aum": 150_000}), AS_OF, previous=())
    assert update.segments == frozenset()  # the newest version answers
    with pytest.raises(MarketloopError) as raised:
        stack.segments.membership(["seg_nope"])
    assert raised.value.kind == ErrorKind.NOT_FOUND
