"""Each trigger kind as a state machine, run by the dry run (the same machines the processor runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketloop.core.errors import MarketloopError
from marketloop.journeys.dryrun import dry_run
from marketloop.journeys.triggers import API_EVENT, parse_trigger

from .conftest import T0, event, identify, minutes


def test_single_event_with_property_filters() -> None:
    trigger = parse_trigger(
        {
            "kind": "event",
            "id": "big-inflow",
            "expect": [{"event": "transfer_in", "where": [{"property": "amount", "op": "gte", "value": 100000}]}],
        }
    )
    events = [
        event("transfer_in", T0, amount=5000),
        event("transfer_in", T0 + minutes(1), amount=200000),
        event("transfer_in", T0 + minutes(2), amount="lots"),  # text vs number: does not hold, no error
        event("login", T0 + minutes(3), amount=900000),
    ]
    fires = dry_run(trigger, events).fires
    assert [(f.reason, f.cause, f.at) for f in fires] == [("event", (events[1].message_id,), T0 + minutes(1))]
    assert fires[0].context["properties"] == {"amount": 200000}


def test_sequence_a_then_b_within_t() -> None:
    trigger = parse_trigger(
        {"kind": "event", "id": "seq", "after": [{"event": "fund_view"}], "expect": [{"event": "calc"}], "within": 600}
    )
    events = [
        event("fund_view", T0),
        event("calc", T0 + minutes(5)),  # fires
        event("calc", T0 + minutes(6)),  # no open A any more
        event("fund_view", T0 + minutes(20)),
        event("calc", T0 + minutes(31)),  # too late
        event("fund_view", T0 + minutes(40)),
        event("fund_view", T0 + minutes(48)),  # the window restarts at the latest A
        event("calc", T0 + minutes(55)),  # 15 min after the first A, 7 after the second: fires
    ]
    fires = dry_run(trigger, events).fires
    assert [(f.reason, f.cause) for f in fires] == [
        ("sequence", (events[0].message_id, events[1].message_id)),
        ("sequence", (events[6].message_id, events[7].message_id)),
    ]


def test_multi_step_sequence_must_keep_its_order_and_window() -> None:
    trigger = parse_trigger(
        {
            "kind": "event",
            "id": "wealth-interest",
            "after": [{"event": "wealth_view"}, {"event": "yield_calc"}],
            "expect": [{"event": "detail_view"}],
            "within": "PT10M",
        }
    )
    out_of_order = [
        event("yield_calc", T0),
        event("wealth_view", T0 + minutes(1)),
        event("detail_view", T0 + minutes(2)),
    ]
    assert dry_run(trigger, out_of_order).fires == []
    in_order = [event("wealth_view", T0), event("yield_calc", T0 + minutes(1)), event("detail_view", T0 + minutes(2))]
    assert [f.cause for f in dry_run(trigger, in_order).fires] == [tuple(e.message_id for e in in_order)]


ABSENCE = {
    "kind": "event",
    "id": "no-purchase",
    "posture": "proactive",
    "after": [{"event": "detail_view"}],
    "expect": [{"event": "purchase"}],
    "within": 600,
}


def test_absence_fires_when_the_window_passes_without_b() -> None:
    trigger = parse_trigger(ABSENCE)
    result = dry_run(trigger, [event("detail_view", T0)], until=T0 + minutes(9))
    assert result.fires == []
    assert [t.due_at for t in result.pending] == [T0 + minutes(10)]
    fires = dry_run(trigger, [event("detail_view", T0)], until=T0 + minutes(10)).fires
    assert [(f.reason, f.at, f.customer) for f in fires] == [("absence", T0 + minutes(10), "C1")]


def test_absence_does_not_fire_when_b_comes_in_time() -> None:
    trigger = parse_trigger(ABSENCE)
    events = [event("detail_view", T0), event("purchase", T0 + minutes(9))]
    result = dry_run(trigger, events, until=T0 + minutes(60))
    assert result.fires == []
    assert result.pending == [], "the timer of the satisfied episode is cancelled"


def test_absence_is_per_customer_and_fires_before_a_later_event() -> None:
    trigger = parse_trigger(ABSENCE)
    events = [
        event("detail_view", T0, user="C1"),
        event("detail_view", T0 + minutes(1), user="C2"),
        event("purchase", T0 + minutes(5), user="C2"),
        event("login", T0 + minutes(30), user="C3"),
    ]
    fires = dry_run(trigger, events).fires
    assert [(f.customer, f.at) for f in fires] == [("C1", T0 + minutes(10))]


def test_threshold_n_times_within_t() -> None:
    trigger = parse_trigger(
        {"kind": "event", "id": "three-fails", "expect": [{"event": "login_failed"}], "threshold": 3, "within": 300}
    )
    events = [
        event("login_failed", T0),
        event("login_failed", T0 + minutes(2)),
        event("login_failed", T0 + minutes(6)),  # the first fell out of the window: 2 in 5 minutes
        event("login_failed", T0 + minutes(6.5)),  # 3 within 5 minutes: fires
        event("login_failed", T0 + minutes(8)),  # counting starts again
    ]
    fires = dry_run(trigger, events).fires
    assert [(f.reason, f.cause) for f in fires] == [("threshold", tuple(e.message_id for e in events[1:4]))]


def test_segment_entered_and_exited() -> None:
    def at(minute: int, segments: list[str]) -> object:
        found = event("login", T0 + minutes(minute))
        found.context = {"segments": segments}
        return found

    entered = parse_trigger({"kind": "segment", "id": "vip-in", "segment_id": "seg_vip"})
    exited = parse_trigger({"kind": "segment", "id": "vip-out", "segment_id": "seg_vip", "transition": "exited"})
    events = [at(0, []), at(1, ["seg_vip"]), at(2, ["seg_vip", "seg_x"]), at(3, []), at(4, ["seg_vip"])]
    assert [f.at for f in dry_run(entered, events).fires] == [T0 + minutes(1), T0 + minutes(4)]  # type: ignore[arg-type]
    assert [f.at for f in dry_run(exited, events).fires] == [T0 + minutes(3)]  # type: ignore[arg-type]


def test_attribute_down_30_percent_within_30_days() -> None:
    trigger = parse_trigger(
        {"kind": "attribute", "id": "aum-drop", "attribute": "aum", "percent": 30, "within": "P30D"}
    )
    day = timedelta(days=1)
    events = [
        identify(T0, aum=1_000_000),
        identify(T0 + day, aum=1_200_000),  # the reference is now the higher value
        identify(T0 + 5 * day, aum=900_000),  # -25 %: not yet
        identify(T0 + 10 * day, aum=800_000),  # -33 % from 1.2M: fires
        identify(T0 + 11 * day, aum=700_000),  # -12.5 % from the new reference
        identify(T0 + 60 * day, aum=480_000),  # 700k fell out of the window: nothing to compare with
        identify(T0 + 61 * day, aum="n/a"),  # not a number: ignored
    ]
    fires = dry_run(trigger, events).fires
    assert [(f.at, f.context["from"], f.context["to"]) for f in fires] == [(T0 + 10 * day, 1_200_000, 800_000)]


def test_attribute_from_an_event_property_by_amount() -> None:
    trigger = parse_trigger(
        {"kind": "attribute", "id": "bal", "attribute": "balance", "event": "balance_changed", "amount": 50000}
    )
    events = [event("balance_changed", T0, balance=100000), event("balance_changed", T0 + minutes(1), balance=40000)]
    assert len(dry_run(trigger, events).fires) == 1


def test_birthday_fires_every_year_at_nine_local_time() -> None:
    trigger = parse_trigger({"kind": "date", "id": "birthday", "attribute": "birthday", "yearly": True})
    result = dry_run(trigger, [identify(T0, birthday="1990-03-15")], until=datetime(2027, 12, 31, tzinfo=UTC))
    nine_shanghai = [datetime(2026, 3, 15, 1, 0, tzinfo=UTC), datetime(2027, 3, 15, 1, 0, tzinfo=UTC)]
    assert [f.at for f in result.fires] == nine_shanghai
    assert [f.reason for f in result.fires] == ["date", "date"]
    assert [t.due_at for t in result.pending] == [datetime(2028, 3, 15, 1, 0, tzinfo=UTC)]


def test_product_maturity_minus_seven_days_per_product() -> None:
    trigger = parse_trigger(
        {
            "kind": "date",
            "id": "maturity",
            "attribute": "maturity_date",
            "event": "holding_updated",
            "key_property": "product_code",
            "offset_days": -7,
            "timezone": "UTC",
        }
    )
    events = [
        event("holding_updated", T0, product_code="WM1", maturity_date="2026-02-20"),
        event("holding_updated", T0 + minutes(1), product_code="WM2", maturity_date="2026-03-01"),
        event("holding_updated", T0 + minutes(2), product_code="WM1", maturity_date="2026-04-20"),  # rolled over
        event("holding_updated", T0 + minutes(3), product_code="WM3", maturity_date="2025-01-01"),  # passed
    ]
    fires = dry_run(trigger, events).fires
    assert sorted((f.context["key"], f.at) for f in fires) == [
        ("WM1", datetime(2026, 4, 13, 9, 0, tzinfo=UTC)),
        ("WM2", datetime(2026, 2, 22, 9, 0, tzinfo=UTC)),
    ]


def test_schedule_at_and_cron() -> None:
    once = parse_trigger({"kind": "schedule", "id": "launch", "at": "2026-01-06T10:00:00+08:00", "segment_id": "s1"})
    fires = dry_run(once, [], start=T0).fires
    assert [(f.customer, f.at, f.context["segment_id"]) for f in fires] == [
        ("*", datetime(2026, 1, 6, 2, tzinfo=UTC), "s1")
    ]
    weekly = parse_trigger({"kind": "schedule", "id": "monday", "cron": "0 9 * * 1", "timezone": "Asia/Shanghai"})
    result = dry_run(weekly, [], start=T0, until=T0 + timedelta(days=15))
    assert [f.at for f in result.fires] == [datetime(2026, 1, 12, 1, tzinfo=UTC), datetime(2026, 1, 19, 1, tzinfo=UTC)]


def test_api_trigger_fires_on_its_call_event() -> None:
    trigger = parse_trigger({"kind": "api", "id": "rm-referral", "required": ["product"]})
    calls = [
        event(API_EVENT, T0, trigger_id="rm-referral", payload={"product": "WM1"}),
        event(API_EVENT, T0 + minutes(1), trigger_id="other", payload={}),
    ]
    fires = dry_run(trigger, calls).fires
    assert [(f.reason, f.context["payload"]) for f in fires] == [("api", {"product": "WM1"})]


@pytest.mark.parametrize(
    ("document", "pointer", "words"),
    [
        ({"kind": "event", "id": "x"}, "/", "expect"),
        ({"kind": "event", "id": "x", "expect": [{"event": "a"}], "threshold": 0}, "/threshold", ">= 1"),
        ({"kind": "event", "id": "x", "expect": [{"event": "a"}], "posture": "proactive"}, "/after", "absence"),
        ({"kind": "event", "id": "x", "expect": [{"event": "a"}], "within": "soon"}, "/within", "duration"),
        (
            {"kind": "event", "id": "x", "expect": [{"event": "a", "where": [{"property": "p", "op": "like"}]}]},
            "/expect/0/where/0/op",
            "like",
        ),
        ({"kind": "attribute", "id": "x", "attribute": "aum"}, "/percent", "exactly one"),
        ({"kind": "schedule", "id": "x", "cron": "every day"}, "/cron", "cron"),
        ({"kind": "date", "id": "x", "attribute": "d", "timezone": "Mars/Base"}, "/timezone", "time zone"),
        ({"kind": "teleport", "id": "x"}, "/kind", "teleport"),
        ({"kind": "api", "id": "Bad Id"}, "/id", "id"),
    ],
)
def test_bad_definitions_name_the_field(document: dict[str, object], pointer: str, words: str) -> None:
    with pytest.raises(MarketloopError) as raised:
        parse_trigger(document)
    error = raised.value
    assert error.code == "triggers.invalid"
    assert error.errors[0].pointer.startswith(pointer), error.errors
    assert words in str(error)


def test_state_from_another_definition_starts_over() -> None:
    from marketloop.journeys.machines import on_event
    from marketloop.journeys.processor import observe

    sequence = parse_trigger({"kind": "event", "id": "s", "after": [{"event": "a"}], "expect": [{"event": "b"}],
                              "within": 60})  # fmt: skip
    seen = observe(event("a", T0))
    for stale in (b'{"progress": 5, "started_at": "2026-01-05T09:00:00Z"}', b'{"progress": "x"}', b"not json"):
        step = on_event(sequence, stale, "C1", seen)
        assert step.fires == []
        assert step.state is not None
        assert b'"progress":1' in step.state
    birthday = parse_trigger({"kind": "date", "id": "d", "attribute": "birthday", "yearly": True})
    step = on_event(birthday, b'{"dates": 3}', "C1", observe(identify(T0, birthday="1990-01-10")))
    assert [t.due_at.date().isoformat() for t in step.timers] == ["2026-01-10"]
