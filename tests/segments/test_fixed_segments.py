"""Fixed segments (固化客群): freeze, stages per date, the transition matrix and drift alerts on hand-built data."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.segments.drift import StageSnapshot, drift_alerts
from marketloop.segments.errors import DefinitionError
from marketloop.testing.segments import AS_OF, SmallBank

DAY1, DAY2 = AS_OF, AS_OF + timedelta(days=7)
AUM_STAGES = {
    "segments": [
        {"name": "high", "definition": "aum >= 100000"},
        {"name": "mid", "definition": {"field": "aum", "op": ">=", "value": 10000}},
    ]
}
# cust_no: (aum, vip_tier, payroll) on day 1; C7 and C8 are not payroll customers, so not frozen.
DAY1_PROFILE = {
    "C1": (200_000, "gold", True),
    "C2": (150_000, "gold", True),
    "C3": (50_000, "standard", True),
    "C4": (20_000, "standard", True),
    "C5": (5_000, None, True),
    "C6": (1_000, None, True),
    "C7": (900_000, "gold", False),
    "C8": (0, None, False),
}


def hand_built_bank() -> SmallBank:
    bank = SmallBank()
    for cust_no, (aum, tier, payroll) in DAY1_PROFILE.items():
        opened = date(2020, 1, 1)
        bank.customers.append({"cust_no": cust_no, "status": "active", "branch_id": "B01", "open_date": opened})
        bank.profiles.append({"cust_no": cust_no, "aum": Decimal(aum), "vip_tier": tier, "payroll_customer": payroll})
    bank.tags += [
        {"cust_no": "C1", "tag": "lifecycle", "value": "mature", "as_of": DAY1},
        {"cust_no": "C2", "tag": "lifecycle", "value": "growing", "as_of": DAY1},
    ]
    return bank


def move_to_day2(con: Any) -> None:
    """C1 high→mid, C2 stays high, C3 mid→high, C4 closes (mid→left), C5 is gone (none→left), C6 none→mid."""
    con.execute("UPDATE customer_profile SET aum = 50000 WHERE cust_no = 'C1'")
    con.execute("UPDATE customer_profile SET aum = 120000 WHERE cust_no = 'C3'")
    con.execute("UPDATE customer_profile SET aum = 30000 WHERE cust_no = 'C6'")
    con.execute("UPDATE customer_profile SET payroll_customer = false WHERE cust_no IN ('C2', 'C4', 'C6')")
    con.execute("UPDATE customers SET status = 'closed' WHERE cust_no = 'C4'")
    con.execute("DELETE FROM customers WHERE cust_no = 'C5'")


@pytest.fixture
def frozen(stack: Any) -> Any:
    stack.load(hand_built_bank())
    saved = stack.segments.save("代发客户", "payroll_customer = true")
    stack.saved = saved
    return stack


def test_freeze_keeps_the_members_at_the_moment(frozen: Any) -> None:
    fixed = frozen.fixed.freeze("代发-11月", frozen.saved.segment_id, as_of=DAY1)
    assert (fixed.members, fixed.version, fixed.as_of, fixed.stages) == (6, 1, DAY1, None)
    assert [f.name for f in frozen.fixed.list(frozen.saved.segment_id)] == ["代发-11月"]
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.freeze("代发-11月", frozen.saved.segment_id)
    assert (raised.value.kind, raised.value.code) == (ErrorKind.CONFLICT, "segments.fixed-exists")
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.freeze("x", "seg_nope")
    assert raised.value.kind == ErrorKind.NOT_FOUND


def test_transition_matrix_and_alerts_between_two_dates(frozen: Any) -> None:
    frozen.fixed.freeze("代发-11月", frozen.saved.segment_id, as_of=DAY1, share_threshold=10, shrink_threshold=50)
    first = frozen.fixed.monitor("代发-11月", stages=AUM_STAGES, as_of=DAY1)
    assert first.snapshot.counts == {"high": 2, "mid": 2, "_none": 2, "_left": 0}
    assert (first.snapshot.members, first.snapshot.in_segment, first.alerts) == (6, 6, [])
    move_to_day2(frozen.con)
    second = frozen.fixed.monitor("代发-11月", as_of=DAY2)  # the stages are kept from the first run
    assert second.snapshot.counts == {"high": 2, "mid": 2, "_none": 0, "_left": 2}
    assert second.snapshot.in_segment == 2  # C1 and C3 are still payroll customers

    matrix = frozen.fixed.transitions("代发-11月", DAY1.date(), DAY2.date())
    assert matrix.stages == ["high", "mid", "_none", "_left"]
    cells = {(c.from_stage, c.to_stage): (c.customers, c.rate) for c in matrix.cells}
    assert cells == {
        ("high", "high"): (1, 0.5),
        ("high", "mid"): (1, 0.5),
        ("mid", "high"): (1, 0.5),
        ("mid", "_left"): (1, 0.5),
        ("_none", "mid"): (1, 0.5),
        ("_none", "_left"): (1, 0.5),
    }
    assert matrix.from_totals == {"high": 2, "mid": 2, "_none": 2, "_left": 0}
    assert matrix.to_totals == {"high": 2, "mid": 2, "_none": 0, "_left": 2}
    assert matrix.count("high", "_left") == 0

    kinds = {(a.kind, a.stage, round(a.change, 1)) for a in second.alerts}
    assert kinds == {("stage-share", "_none", -33.3), ("stage-share", "_left", 33.3), ("shrink", None, -66.7)}
    report = frozen.fixed.report("代发-11月")
    assert [s.on for s in report.snapshots] == [DAY1.date(), DAY2.date()]
    assert report.alerts == second.alerts


def test_monitoring_the_same_date_again_replaces_it(frozen: Any) -> None:
    frozen.fixed.freeze("f", frozen.saved.segment_id, as_of=DAY1)
    frozen.fixed.monitor("f", stages=AUM_STAGES, as_of=DAY1)
    move_to_day2(frozen.con)
    again = frozen.fixed.monitor("f", as_of=DAY1 + timedelta(hours=3))
    assert again.snapshot.counts["_left"] == 2
    assert len(frozen.fixed.report("f").snapshots) == 1


def test_stages_from_a_profile_column_and_from_a_tag(frozen: Any) -> None:
    frozen.fixed.freeze("by-tier", frozen.saved.segment_id, as_of=DAY1)
    by_tier = frozen.fixed.monitor("by-tier", stages={"column": "vip_tier"}, as_of=DAY1)
    assert by_tier.snapshot.counts == {"gold": 2, "standard": 2, "_none": 2, "_left": 0}
    frozen.fixed.freeze("by-lifecycle", frozen.saved.segment_id, as_of=DAY1)
    by_tag = frozen.fixed.monitor("by-lifecycle", stages={"tag": "lifecycle"}, as_of=DAY1)
    assert by_tag.snapshot.counts == {"growing": 1, "mature": 1, "_none": 4, "_left": 0}


def test_bad_stages_and_dates_are_clear_errors(frozen: Any) -> None:
    frozen.fixed.freeze("f", frozen.saved.segment_id, as_of=DAY1)
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("f", as_of=DAY1)
    assert raised.value.code == "segments.stages-required"
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("f", stages={"column": "vip_teir"}, as_of=DAY1)
    assert raised.value.code == "segments.invalid-stages"
    assert "did you mean vip_tier" in raised.value.title
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("f", stages={"column": "last_seen_at"}, as_of=DAY1)
    assert "timestamp column" in raised.value.title
    with pytest.raises(DefinitionError) as bad:
        frozen.fixed.monitor("f", stages={"segments": [{"name": "x", "definition": {"field": "agee"}}]}, as_of=DAY1)
    assert bad.value.errors[0].pointer.startswith("/stages/segments/0/definition")
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("f", stages={"segments": [{"name": "_left", "definition": "aum > 1"}]}, as_of=DAY1)
    assert raised.value.errors[0].pointer == "/stages/segments/0/name"
    frozen.fixed.monitor("f", stages=AUM_STAGES, as_of=DAY1)
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("f", stages={"column": "vip_tier"}, as_of=DAY2)
    assert (raised.value.kind, raised.value.code) == (ErrorKind.CONFLICT, "segments.stages-fixed")
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.transitions("f", DAY1.date(), DAY2.date())
    assert raised.value.kind == ErrorKind.NOT_FOUND
    assert DAY1.date().isoformat() in raised.value.detail
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("f", as_of=DAY2, share_threshold=0)
    assert raised.value.code == "segments.invalid-threshold"
    with pytest.raises(MarketloopError) as raised:
        frozen.fixed.monitor("nope", as_of=DAY2)
    assert raised.value.kind == ErrorKind.NOT_FOUND


def _snapshot(day: int, counts: dict[str, int], in_segment: int) -> StageSnapshot:
    members = sum(counts.values())
    return StageSnapshot(
        on=date(2026, 11, day),
        as_of=AS_OF,
        members=members,
        in_segment=in_segment,
        counts=counts,
        shares={k: v / members for k, v in counts.items()},
    )


@pytest.mark.parametrize(
    ("share_threshold", "shrink_threshold", "expected"),
    [
        (9.9, 100, {("stage-share", "a"), ("stage-share", "b")}),  # a: 50% → 40% moves 10 points
        (10.0, 100, set()),  # exactly the threshold is not more than it
        (50, 19.9, {("shrink", None)}),  # 100 → 80 still in the segment: -20%
        (50, 20.0, set()),
    ],
)
def test_drift_alert_thresholds(share_threshold: float, shrink_threshold: float, expected: set[object]) -> None:
    history = [_snapshot(1, {"a": 50, "b": 50}, 100), _snapshot(2, {"a": 40, "b": 60}, 80)]
    alerts = drift_alerts(history, share_threshold=share_threshold, shrink_threshold=shrink_threshold)
    assert {(a.kind, a.stage) for a in alerts} == expected
