"""The tracking plan: each violation kind, the three source modes, plan documents and their errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from marketloop.collect.tracking_plan import TrackingPlanService, decode_plan_text, mark
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import Event
from marketloop.core.tracking import EventSpec, PropertySpec, TrackingPlan, check
from marketloop.core.tracking_document import parse_plan, plan_document
from marketloop.ports.state import Source, TrackingMode

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

PLAN = TrackingPlan(
    version=1,
    events=(
        EventSpec(
            name="fund_buy",
            properties=(
                PropertySpec(name="fund_code", type="string", required=True),
                PropertySpec(name="amount", type="number", required=True, promote=True),
                PropertySpec(name="channel", type="string", allowed=("app", "h5")),
                PropertySpec(name="units", type="integer"),
                PropertySpec(name="first_time", type="boolean"),
                PropertySpec(name="confirmed_at", type="datetime"),
                PropertySpec(name="basket", type="array"),
                PropertySpec(name="extra", type="object"),
            ),
        ),
        EventSpec(
            name="login",
            properties=(PropertySpec(name="method", type="string"),),
            allow_unplanned_properties=False,
        ),
        EventSpec(name="$identify", properties=(PropertySpec(name="risk_level", type="integer", allowed=(1, 2, 3)),)),
        EventSpec(name="$page", properties=(PropertySpec(name="url", type="string", required=True),)),
    ),
)


def event(name: str | None = "fund_buy", *, type_: str = "track", **fields: Any) -> Event:
    return Event(
        message_id=fields.pop("message_id", "m-1"),
        type=type_,
        source_id="s-1",
        received_at=NOW,
        timestamp=NOW,
        event=name,
        **fields,
    )


def good_buy(**overrides: Any) -> dict[str, Any]:
    return {"fund_code": "000001", "amount": 1000.5, "channel": "app"} | overrides


# -- check: one test per violation kind ---------------------------------------------


def test_a_complying_event_has_no_violations() -> None:
    props = good_buy(units=3, first_time=True, confirmed_at="2026-11-24T08:00:00Z", basket=[1], extra={"a": 1})
    assert check(PLAN, event(properties=props)) == []


def test_an_event_without_a_spec_is_unplanned() -> None:
    assert check(PLAN, event("fund_sell")) == ["unplanned_event: fund_sell"]


def test_unplanned_events_pass_when_the_plan_allows_them_or_there_is_no_plan() -> None:
    open_plan = TrackingPlan(version=2, events=PLAN.events, allow_unplanned_events=True)
    assert check(open_plan, event("fund_sell")) == []
    assert check(TrackingPlan(), event("anything", properties={"x": 1})) == []


def test_missing_and_null_required_properties_are_reported() -> None:
    assert check(PLAN, event(properties={"amount": 1})) == ["missing_required: fund_code"]
    assert check(PLAN, event(properties={"fund_code": None, "amount": 1})) == ["missing_required: fund_code"]


@pytest.mark.parametrize(
    ("prop", "value", "message"),
    [
        ("amount", "1000", "wrong_type: amount expected number got string"),
        ("amount", True, "wrong_type: amount expected number got boolean"),
        ("fund_code", 1, "wrong_type: fund_code expected string got integer"),
        ("units", 1.5, "wrong_type: units expected integer got number"),
        ("units", False, "wrong_type: units expected integer got boolean"),
        ("first_time", 1, "wrong_type: first_time expected boolean got integer"),
        ("confirmed_at", "yesterday", "wrong_type: confirmed_at expected datetime got string that is not ISO 8601"),
        ("confirmed_at", 1_700_000_000, "wrong_type: confirmed_at expected datetime got integer"),
        ("basket", {"a": 1}, "wrong_type: basket expected array got object"),
        ("extra", [1], "wrong_type: extra expected object got array"),
    ],
)
def test_wrong_types_are_reported_with_the_planned_and_the_actual_type(prop: str, value: Any, message: str) -> None:
    assert check(PLAN, event(properties=good_buy(**{prop: value}))) == [message]


def test_an_integer_is_a_number() -> None:
    assert check(PLAN, event(properties=good_buy(amount=1000))) == []


def test_values_outside_the_allowed_list_are_reported() -> None:
    assert check(PLAN, event(properties=good_buy(channel="x"))) == ["not_allowed: channel='x' not in ['app', 'h5']"]


def test_unplanned_properties_are_reported_only_for_closed_specs() -> None:
    assert check(PLAN, event(properties=good_buy(coupon="C1"))) == []
    assert check(PLAN, event("login", properties={"method": "sms", "otp": "1"})) == ["unplanned_property: otp"]


def test_every_violation_of_an_event_is_reported() -> None:
    found = check(PLAN, event(properties={"amount": "x", "channel": "x"}))
    assert found == [
        "missing_required: fund_code",
        "wrong_type: amount expected number got string",
        "not_allowed: channel='x' not in ['app', 'h5']",
    ]


def test_identify_traits_are_checked_against_the_identify_spec_for_set_only() -> None:
    assert check(PLAN, event(None, type_="identify", traits={"risk_level": 9})) == [
        "not_allowed: risk_level=9 not in [1, 2, 3]"
    ]
    assert check(PLAN, event(None, type_="identify", profile_op="set_once", traits={"risk_level": "x"})) == [
        "wrong_type: risk_level expected integer got string"
    ]
    # increment / append / unset carry counters, lists or names, not trait values
    assert check(PLAN, event(None, type_="identify", profile_op="increment", traits={"risk_level": "x"})) == []


def test_pages_are_checked_against_the_page_spec_and_alias_is_not_checked() -> None:
    assert check(PLAN, event("home", type_="page", properties={})) == ["missing_required: url"]
    assert check(PLAN, event(None, type_="alias", previous_id="a", user_id="b")) == []
    assert check(TrackingPlan(version=1, events=PLAN.events[:1]), event(None, type_="identify", traits={})) == []


def test_check_is_fast_enough_for_the_hot_path() -> None:
    events = [event(properties=good_buy(units=3)) for _ in range(20_000)]
    compiled = PLAN.compiled.check
    start = time.perf_counter()
    for item in events:
        compiled(item)
    per_event = (time.perf_counter() - start) / len(events)
    assert per_event < 20e-6  # about 1 µs on a laptop; generous for slow CI machines


# -- the three modes -----------------------------------------------------------------


def batch() -> list[Event]:
    return [
        event(properties=good_buy(), message_id="good"),
        event(properties=good_buy(amount="1"), message_id="bad"),
        event("fund_sell", message_id="unplanned"),
    ]


def test_allow_mode_leaves_events_untouched() -> None:
    events = batch()
    mark(PLAN, TrackingMode.ALLOW, events)
    assert all(e.violations == [] and not e.quarantined for e in events)


def test_warn_mode_records_violations_and_keeps_events() -> None:
    events = batch()
    mark(PLAN, TrackingMode.WARN, events)
    assert [e.violations for e in events] == [
        [],
        ["wrong_type: amount expected number got string"],
        ["unplanned_event: fund_sell"],
    ]
    assert not any(e.quarantined for e in events)


def test_block_mode_quarantines_only_events_with_violations() -> None:
    events = batch()
    mark(PLAN, TrackingMode.BLOCK, events)
    assert [e.quarantined for e in events] == [False, True, True]
    assert events[1].violations == ["wrong_type: amount expected number got string"]


class _Clock:
    def __init__(self) -> None:
        self.seconds = 100.0

    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return self.seconds


class _Plans:
    def __init__(self) -> None:
        self.stored: list[TrackingPlan] = []

    def current_version(self) -> int:
        return self.stored[-1].version if self.stored else 0

    def current(self) -> TrackingPlan | None:
        return self.stored[-1] if self.stored else None

    def add(self, plan: TrackingPlan, created_at: datetime) -> None:
        self.stored.append(plan)


def _service(plans: _Plans, clock: _Clock) -> TrackingPlanService:
    # Neither the warehouse nor the sources are touched by `apply` or by plans with no promoted property.
    return TrackingPlanService(plans, None, None, clock)  # type: ignore[arg-type]


def _source(mode: TrackingMode) -> Source:
    return Source(id="s-1", name="app", key_hash="h", enabled=True, tracking_mode=mode, project=None, created_at=NOW)


def test_the_service_picks_up_a_plan_stored_elsewhere_within_the_reload_interval() -> None:
    plans, clock = _Plans(), _Clock()
    service = _service(plans, clock)
    first = [event("fund_sell")]
    service.apply(_source(TrackingMode.BLOCK), first)
    assert not first[0].quarantined  # no plan yet: nothing is checked

    plans.stored.append(TrackingPlan(version=1, events=PLAN.events))  # e.g. by the CLI, in another process
    clock.seconds += 1
    second = [event("fund_sell")]
    service.apply(_source(TrackingMode.BLOCK), second)
    assert not second[0].quarantined  # cached for up to 2 s

    clock.seconds += 1.5
    third = [event("fund_sell")]
    service.apply(_source(TrackingMode.BLOCK), third)
    assert third[0].quarantined


def test_replacing_the_plan_bumps_the_version_and_refuses_a_stale_copy() -> None:
    plans, clock = _Plans(), _Clock()
    service = _service(plans, clock)
    assert service.replace("events: {login: {}}").plan.version == 1
    assert service.replace(b'{"version": 1, "events": {"login": null}}').plan.version == 2
    with pytest.raises(MarketloopError) as raised:
        service.replace("version: 1\nevents: {}")
    assert raised.value.kind is ErrorKind.CONFLICT
    assert service.current().version == 2


# -- plan documents ----------------------------------------------------------------

DOCUMENT = """
events:
  fund_buy:
    description: 基金申购
    properties:
      fund_code: {type: string, required: true}
      amount: {type: number, required: true, promote: true}
      channel: {type: string, allowed: [app, h5]}
      note: string
  login:
    allow_unplanned_properties: false
  $identify:
    properties:
      risk_level: {type: integer, allowed: [1, 2, 3]}
"""


def test_a_yaml_document_parses_into_a_plan_and_back() -> None:
    parsed = parse_plan(decode_plan_text(DOCUMENT))
    assert parsed.based_on_version is None
    plan = parsed.plan
    assert [e.name for e in plan.events] == ["fund_buy", "login", "$identify"]
    buy = plan.events[0]
    assert buy.description == "基金申购"
    assert buy.properties[1] == PropertySpec(name="amount", type="number", required=True, promote=True)
    assert buy.properties[3] == PropertySpec(name="note", type="string")
    assert plan.promoted() == {"amount": "number"}
    assert parse_plan(plan_document(plan)).plan == plan


def errors_of(document: object) -> list[tuple[str, str]]:
    with pytest.raises(MarketloopError) as raised:
        parse_plan(document)
    assert raised.value.kind is ErrorKind.INVALID
    assert raised.value.code == "tracking.invalid-plan"
    return [(e.pointer, e.detail) for e in raised.value.errors]


def test_every_problem_is_reported_with_its_path() -> None:
    document = {
        "version": -1,
        "evnts": {},
        "events": {
            "fund_buy": {
                "properties": {
                    "amount": {"type": "decimal"},
                    "fund_code": {"type": "string", "requird": True},
                    "channel": {"type": "string", "allowed": ["app", 3]},
                    "basket": {"type": "array", "allowed": [1], "promote": True},
                    "first": {"type": "boolean", "required": "yes"},
                },
            },
            "login": ["not", "a", "mapping"],
            "a/b": {"properties": {"x": {"type": "integer", "promote": True}}},
            "c": {"properties": {"x": {"type": "string", "promote": True}}},
        },
    }
    pointers = [pointer for pointer, _ in errors_of(document)]
    assert pointers == [
        "/evnts",
        "/version",
        "/events/fund_buy/properties/amount/type",
        "/events/fund_buy/properties/fund_code/requird",
        "/events/fund_buy/properties/channel/allowed/1",
        "/events/fund_buy/properties/basket/promote",
        "/events/fund_buy/properties/basket/allowed",
        "/events/fund_buy/properties/first/required",
        "/events/login",
        "/events/c/properties/x/type",
    ]


def test_conflicting_promotions_name_the_first_one() -> None:
    document = {
        "events": {
            "a": {"properties": {"x": {"type": "integer", "promote": True}}},
            "b": {"properties": {"x": {"type": "string", "promote": True}}},
        }
    }
    assert errors_of(document) == [
        ("/events/b/properties/x/type", "promoted as integer at /events/a/properties/x/type; use one type")
    ]


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ([1, 2], ""),
        ({"events": ["fund_buy"]}, "/events"),
        ({"events": {"": {}}}, "/events/"),
        ({"events": {"e": {"properties": {"p": {"type": "string", "allowed": []}}}}}, "/events/e/properties/p/allowed"),
        ({"events": {"e": {"properties": {"p": 5}}}}, "/events/e/properties/p"),
        ({"allow_unplanned_events": "no"}, "/allow_unplanned_events"),
    ],
)
def test_malformed_documents_are_refused(document: object, pointer: str) -> None:
    assert errors_of(document)[0][0] == pointer


def test_unreadable_text_reports_the_line() -> None:
    with pytest.raises(MarketloopError) as raised:
        decode_plan_text("events:\n  fund_buy: {properties: [\n")
    assert raised.value.code == "tracking.unreadable-plan"
    assert "line" in raised.value.detail
    with pytest.raises(MarketloopError) as raised:
        decode_plan_text(b'{"events": ')
    assert "invalid JSON" in raised.value.detail
