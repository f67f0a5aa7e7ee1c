"""Every analysis model on the hand-made shop, against numbers worked out by hand.

The shop (marketloop.testing.analytics.SHOP), in the week from Monday 2026-11-02 (UTC):

    C1  d0 08:00 touch B · 09:00 view_wealth(app, 100) · 09:05 calc · 09:10 buy 5000 · d1 10:00 login · d3 10:00 login
        (and a touch A on Sunday 11-01 09:00, before the week)
    C2  d0 09:00 touch B · 10:00 view(h5) · 10:30 buy 2000 · d2 11:00 view(app) · 11:10 calc · d5 11:00 login
    C3  d1 08:00 view(app) · 08:01 login · 08:02 calc · d3 09:00 buy 1000
    C4  d0 12:00 touch A · d1 11:00 touch A · 11:30 touch C · 12:00 calc · 12:05 view(app) · 12:06 calc · 12:07 buy 3000
    C5  d0 07:00 login

(calc = use_yield_calculator; cities: C1, C2 上海; C3, C4 杭州; C5 北京.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[[dict[str, Any]], dict[str, Any]]

FUNNEL = {"model": "funnel", "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"], "window": "1d"}


def _series(result: dict) -> dict[tuple[str, str], float]:
    return {(e["bucket"], e["group"]): e["value"] for e in result["series"]}


def test_event_counts_sums_and_averages_per_day(run: Run) -> None:
    counts = run({"model": "events", "event": "buy_wealth"})
    assert _series(counts) == {("2026-11-02", "all"): 2, ("2026-11-03", "all"): 1, ("2026-11-05", "all"): 1}
    sums = run({"model": "events", "event": "buy_wealth", "measure": "sum", "property": "amount"})
    assert _series(sums) == {("2026-11-02", "all"): 7000, ("2026-11-03", "all"): 3000, ("2026-11-05", "all"): 1000}
    average = run(
        {"model": "events", "event": "buy_wealth", "measure": "avg", "property": "amount", "interval": "total"}
    )
    assert _series(average) == {("total", "all"): 2750}
    customers = run({"model": "events", "event": "login", "measure": "customers", "interval": "week"})
    assert _series(customers) == {("2026-11-02", "all"): 4}  # C1, C2, C3, C5 (C1 twice)


def test_hour_buckets_and_the_time_zone_decide_the_bucket(run: Run) -> None:
    hours = run({"model": "events", "event": "login", "interval": "hour"})
    assert _series(hours) == {
        ("2026-11-02 07:00", "all"): 1,
        ("2026-11-03 08:00", "all"): 1,
        ("2026-11-03 10:00", "all"): 1,
        ("2026-11-05 10:00", "all"): 1,
        ("2026-11-07 11:00", "all"): 1,
    }
    # UTC+14: C2's buy at 10:30 UTC on the 2nd is 00:30 on the 3rd there; C4's 12:07 on the 3rd is the 4th.
    shifted = run({"model": "events", "event": "buy_wealth", "timezone": "Pacific/Kiritimati"})
    assert _series(shifted) == {(day, "all"): 1 for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05")}


def test_group_by_property_field_filters_and_segment_restriction(run: Run) -> None:
    by_channel = run(
        {"model": "events", "event": "view_wealth", "interval": "total", "group_by": {"property": "channel"}}
    )
    assert _series(by_channel) == {("total", "app"): 4, ("total", "h5"): 1}
    by_city = run({"model": "events", "event": "buy_wealth", "interval": "total", "group_by": {"field": "city"}})
    assert _series(by_city) == {("total", "上海"): 2, ("total", "杭州"): 2}
    filtered = run(
        {
            "model": "events",
            "event": {"event": "buy_wealth", "where": [{"property": "amount", "op": ">=", "value": 3000}]},
            "interval": "total",
        }
    )
    assert _series(filtered) == {("total", "all"): 2}  # 5000 and 3000
    restricted = run({"model": "events", "event": "buy_wealth", "interval": "total", "segment": 'city = "上海"'})
    assert _series(restricted) == {("total", "all"): 2}


def _steps(result: dict, group: str = "all") -> list[tuple[int, int, float | None]]:
    found = next(g for g in result["groups"] if g["group"] == group)
    return [(s["customers"], s["drop_off"], s["median_seconds_to_convert"]) for s in found["steps"]]


def test_funnel_any_order_counts_drop_off_and_median_time_to_convert(run: Run) -> None:
    result = run(FUNNEL)
    # C1 and C4 reach buy; C2 (d2 view → calc, no buy) and C3 (buy two days later) stop at calc.
    # Seconds to calc: C1 300, C2 600, C3 120, C4 60 → median 210; to buy: C1 600, C4 120 → 360.
    assert _steps(result) == [(4, 0, 0), (4, 0, 210), (2, 2, 360)]
    steps = result["groups"][0]["steps"]
    assert [s["conversion"] for s in steps] == [1.0, 1.0, 0.5]
    assert steps[2]["step_conversion"] == 0.5


def test_funnel_strict_order_needs_the_very_next_event(run: Run) -> None:
    # C2's first view is followed by a buy, its second by calc then login; C3's view by a login.
    assert _steps(run(FUNNEL | {"order": "strict"})) == [(4, 0, 0), (3, 1, 300), (2, 1, 360)]


def test_funnel_window_bounds_every_step_from_the_first(run: Run) -> None:
    # Within 3 days C3's buy (d3 09:00, 2 days after its view) counts too.
    assert [c for c, _, _ in _steps(run(FUNNEL | {"window": "3d"}))] == [4, 4, 3]
    assert [c for c, _, _ in _steps(run(FUNNEL | {"window": "5m"}))] == [4, 3, 1]  # C2: 10 min; C4 buy at +2 min


def test_funnel_group_by_first_step_property_and_customer_field(run: Run) -> None:
    by_channel = run(FUNNEL | {"group_by": {"property": "channel"}})
    assert _steps(by_channel, "app") == [(3, 0, 0), (3, 0, 120), (2, 1, 360)]  # C1, C3, C4
    assert _steps(by_channel, "h5") == [(1, 0, 0), (1, 0, 600), (0, 1, None)]  # C2 by its first view
    by_city = run(FUNNEL | {"group_by": {"field": "city"}})
    assert _steps(by_city, "上海") == [(2, 0, 0), (2, 0, 450), (1, 1, 600)]
    assert _steps(by_city, "杭州") == [(2, 0, 0), (2, 0, 90), (1, 1, 120)]


def _retained(result: dict) -> dict[str, tuple[int, list[int]]]:
    return {c["cohort"]: (c["customers"], [p["customers"] for p in c["retained"]]) for c in result["cohorts"]}


def test_retention_by_first_event_day(run: Run) -> None:
    result = run({"model": "retention", "start": "view_wealth", "back": "login", "periods": 3})
    # 11-02: C1 (login d1, d3), C2 (login d5: beyond 3 days); 11-03: C3 (login 1 minute after), C4 (none).
    assert _retained(result) == {"2026-11-02": (2, [0, 1, 0, 1]), "2026-11-03": (2, [1, 0, 0, 0])}
    assert [p["rate"] for p in result["cohorts"][0]["retained"]] == [0.0, 0.5, 0.0, 0.5]


def test_retention_by_week_and_by_segment(run: Run) -> None:
    weekly = run({"model": "retention", "start": "view_wealth", "back": "login", "unit": "week", "periods": 1})
    assert _retained(weekly) == {"2026-11-02": (4, [3, 0])}  # C1, C2 (day 5), C3 in week 0
    by_segment = run(
        {
            "model": "retention",
            "start": "view_wealth",
            "back": "login",
            "periods": 3,
            "cohorts": [
                {"name": "上海", "segment": 'city = "上海"'},
                {"name": "杭州", "segment": {"field": "city", "op": "=", "value": "杭州"}},
            ],
        }
    )
    assert _retained(by_segment) == {"上海": (2, [0, 1, 0, 1]), "杭州": (2, [1, 0, 0, 0])}


def _links(result: dict) -> dict[tuple[str, str], int]:
    return {(link["source"], link["target"]): link["customers"] for link in result["links"]}


def test_paths_after_an_event_as_sankey_nodes_and_links(run: Run) -> None:
    result = run({"model": "paths", "anchor": "view_wealth", "depth": 2})
    nodes = {n["id"]: n["customers"] for n in result["nodes"]}
    assert nodes == {
        "0:view_wealth": 4,
        "1:use_yield_calculator": 2,
        "1:buy_wealth": 1,
        "1:login": 1,
        "2:buy_wealth": 2,
        "2:use_yield_calculator": 1,
        "2:view_wealth": 1,
    }
    assert _links(result) == {
        ("0:view_wealth", "1:use_yield_calculator"): 2,
        ("0:view_wealth", "1:buy_wealth"): 1,
        ("0:view_wealth", "1:login"): 1,
        ("1:use_yield_calculator", "2:buy_wealth"): 2,
        ("1:buy_wealth", "2:view_wealth"): 1,
        ("1:login", "2:use_yield_calculator"): 1,
    }
    top = run({"model": "paths", "anchor": "view_wealth", "depth": 2, "top": 1})
    assert len(top["links"]) == 2  # the busiest link of each step


def test_paths_before_an_event(run: Run) -> None:
    result = run({"model": "paths", "anchor": "buy_wealth", "direction": "before", "depth": 1})
    # Before the first buy: C1 calc, C2 view, C3 calc, C4 calc.
    assert _links(result) == {("-1:use_yield_calculator", "0:buy_wealth"): 3, ("-1:view_wealth", "0:buy_wealth"): 1}


def test_churn_paths_are_the_last_events_of_customers_gone_quiet(run: Run) -> None:
    result = run({"model": "paths", "dormant": "3d", "depth": 2, "exclude": ["touch_delivered"]})
    # Quiet since 11-06: C1 (last d3), C3 (d3), C4 (d1), C5 (d0); C2 logged in on d5.
    nodes = {n["id"]: n["customers"] for n in result["nodes"]}
    assert nodes["0:login"] == 2
    assert nodes["0:buy_wealth"] == 2
    assert _links(result) == {
        ("-2:buy_wealth", "-1:login"): 1,
        ("-2:login", "-1:use_yield_calculator"): 1,
        ("-2:view_wealth", "-1:use_yield_calculator"): 1,
        ("-1:use_yield_calculator", "0:buy_wealth"): 2,
        ("-1:login", "0:login"): 1,
    }
    assert result["churn"] is True


def test_attribution_models_credit_touches_by_hand_computed_weights(run: Run) -> None:
    result = run(
        {
            "model": "attribution",
            "conversion": "buy_wealth",
            "touch": "touch_delivered",
            "channel": "campaign",
            "lookback": "7d",
            "half_life": "1d",
            "value_property": "amount",
        }
    )
    credit = {c["channel"]: c["credit"] for c in result["channels"]}
    # C1 (5000): A 1d 00:10 before, B 1h10m before. C2 (2000): B. C3: none. C4 (3000): A, A, C.
    assert credit["A"] | {"time_decay": 0} == {
        "first": 2,
        "last": 0,
        "linear": 1.166667,
        "position": 1.1,
        "time_decay": 0,
    }
    assert credit["B"] | {"time_decay": 0} == {"first": 1, "last": 2, "linear": 1.5, "position": 1.5, "time_decay": 0}
    assert credit["C"] | {"time_decay": 0} == {
        "first": 0,
        "last": 1,
        "linear": 0.333333,
        "position": 0.4,
        "time_decay": 0,
    }
    day = 86400
    c1_a, c1_b = 2 ** (-(day + 600) / day), 2 ** (-4200 / day)
    c4_a1, c4_a2, c4_c = 2 ** (-(day + 420) / day), 2 ** (-4020 / day), 2 ** (-2220 / day)
    decay_a = c1_a / (c1_a + c1_b) + (c4_a1 + c4_a2) / (c4_a1 + c4_a2 + c4_c)
    assert math.isclose(credit["A"]["time_decay"], decay_a, abs_tol=1e-6)
    assert math.isclose(sum(c["time_decay"] for c in credit.values()), 3, abs_tol=1e-6)
    values = {c["channel"]: c["value"] for c in result["channels"]}
    assert values["B"]["linear"] == 0.5 * 5000 + 2000
    assert values["A"]["position"] == 0.5 * 5000 + 0.6 * 3000
    assert (result["conversions"], result["unattributed"]) == (4, 1)
    assert {c["channel"]: c["conversions"] for c in result["channels"]} == {"A": 2, "B": 2, "C": 1}


def test_stickiness_and_frequency(run: Run) -> None:
    days = run({"model": "frequency", "event": "login"})
    assert [(b["k"], b["customers"]) for b in days["buckets"]] == [(1, 3), (2, 1)]  # C1 on two days
    times = run({"model": "frequency", "event": "view_wealth", "measure": "events"})
    assert [(b["k"], b["customers"]) for b in times["buckets"]] == [(1, 3), (2, 1)]  # C2 viewed twice


def test_property_distribution_in_bins_and_top_values(run: Run) -> None:
    bins = run({"model": "distribution", "event": "buy_wealth", "property": "amount", "bins": [2000, 4000]})
    assert [(b["label"], b["events"]) for b in bins["bins"]] == [("< 2000", 1), ("[2000, 4000)", 2), (">= 4000", 1)]
    values = run({"model": "distribution", "event": "view_wealth", "property": "channel"})
    assert [(v["value"], v["events"], v["customers"]) for v in values["values"]] == [("app", 4, 4), ("h5", 1, 1)]


@pytest.mark.parametrize(
    "model", ["events", "funnel", "retention", "paths", "attribution", "frequency", "distribution"]
)
def test_every_number_carries_the_cell_that_names_it(run: Run, model: str) -> None:
    docs = {
        "events": {"model": "events", "event": "login"},
        "funnel": FUNNEL,
        "retention": {"model": "retention", "start": "view_wealth", "back": "login"},
        "paths": {"model": "paths", "anchor": "view_wealth"},
        "attribution": {"model": "attribution", "conversion": "buy_wealth", "channel": "campaign", "lookback": "7d"},
        "frequency": {"model": "frequency", "event": "login"},
        "distribution": {"model": "distribution", "event": "view_wealth", "property": "channel"},
    }
    result = run(docs[model])
    assert result["model"] == model
    assert '"cell"' in str(result).replace("'", '"')


def test_segment_restriction_reads_the_profile_and_behaviour(run: Run) -> None:
    result = run(
        {
            "model": "events",
            "timezone": "Asia/Shanghai",
            "event": {"event": "buy_wealth", "where": [{"property": "amount", "op": ">=", "value": 1000}]},
            "measure": "sum",
            "property": "amount",
            "group_by": {"field": "city"},
            "segment": "age >= 30 and did login within 30d",
        }
    )
    # age >= 30 and a login: C1 (35), C3 (41), C5 (52, no buy); C2 is 28, C4 has no age.
    assert _series(result) == {("2026-11-02", "上海"): 5000, ("2026-11-05", "杭州"): 1000}
