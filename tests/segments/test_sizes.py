"""Segment size monitoring: each materialisation's count, the history, and drop / spike alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.segment_monitoring import SizeRule
from marketloop.ports.segments import Snapshot
from marketloop.segments.sizes import size_alerts
from marketloop.testing.segments import AS_OF, SmallBank


def small_bank() -> SmallBank:
    bank = SmallBank()
    for i, aum in enumerate([200_000, 150_000, 50_000, 20_000, 5_000, 1_000, 900_000, 0], start=1):
        bank.customers.append({"cust_no": f"C{i}", "status": "active", "branch_id": "B01"})
        bank.profiles.append({"cust_no": f"C{i}", "aum": aum})
    return bank


def test_history_and_alerts_over_materialisations(stack: Any) -> None:
    stack.load(small_bank())
    saved = stack.segments.save("有资产", "aum >= 10000")
    counts = []
    for day, change in enumerate(
        [
            None,
            "DELETE FROM customers WHERE cust_no IN ('C1', 'C2')",  # 5 → 3: -40%
            "UPDATE customer_profile SET aum = 20000",  # 3 → 6: +100% against 3, +50% against median(5, 3)
        ]
    ):
        if change:
            stack.con.execute(change)
        counts.append(stack.segments.materialise(saved.segment_id, as_of=AS_OF + timedelta(days=day)).customers)
        stack.clock.advance(timedelta(days=1))
    assert counts == [5, 3, 6]
    history = stack.sizes.history(saved.segment_id)
    assert [p.customers for p in history.points] == [5, 3, 6]
    assert (history.rule, history.alerts) == (None, [])

    stack.sizes.set_rule(saved.segment_id, drop_pct=30, spike_pct=50)
    alerts = stack.sizes.history(saved.segment_id).alerts
    assert [(a.kind, a.customers, a.change_pct) for a in alerts] == [("drop", 3, -40.0), ("spike", 6, 100.0)]
    assert [a.kind for a in stack.sizes.check(saved.segment_id)] == ["spike"]
    assert [p.customers for p in stack.sizes.history(saved.segment_id, limit=1).points] == [6]
    assert [a.kind for a in stack.sizes.history(saved.segment_id, limit=1).alerts] == ["spike"]

    stack.sizes.set_rule(saved.segment_id, drop_pct=30, spike_pct=50, baseline=2)  # replaces the rule
    assert [a.kind for a in stack.sizes.history(saved.segment_id).alerts] == ["drop"]  # +50% is not above 50%


def test_bad_rules_are_clear_errors(stack: Any) -> None:
    stack.load(small_bank())
    saved = stack.segments.save("有资产", "aum >= 10000")
    for arguments, pointer in [
        ({}, "/drop_pct"),
        ({"drop_pct": 0}, "/drop_pct"),
        ({"drop_pct": 101}, "/drop_pct"),
        ({"spike_pct": -1}, "/spike_pct"),
        ({"drop_pct": 10, "baseline": 0}, "/baseline"),
    ]:
        with pytest.raises(MarketloopError) as raised:
            stack.sizes.set_rule(saved.segment_id, **arguments)
        assert (raised.value.kind, raised.value.errors[0].pointer) == (ErrorKind.INVALID, pointer)
    with pytest.raises(MarketloopError) as raised:
        stack.sizes.set_rule("seg_nope", drop_pct=10)
    assert raised.value.kind == ErrorKind.NOT_FOUND


def _point(day: int, customers: int, version: int = 1) -> Snapshot:
    moment = datetime(2026, 11, day, tzinfo=UTC)
    return Snapshot(segment_id="s", version=version, snapshot_at=moment, as_of=moment, customers=customers)


def test_size_alerts_from_zero_and_on_a_new_version() -> None:
    rule = SizeRule(segment_id="s", drop_pct=50, spike_pct=10)
    alerts = size_alerts([_point(1, 0), _point(2, 4), _point(3, 4), _point(4, 1, version=2)], rule)
    assert [(a.kind, a.change_pct, a.version_changed) for a in alerts] == [
        ("spike", None, False),  # from nothing
        ("drop", -75.0, True),
    ]
    assert "定义已更新" in alerts[1].message
