"""Properties of the segment engine: both forms round-trip, and SQL and Python agree on random banks.

The agreement test is the issue's core property: for a random small bank and
random definitions drawn over the whole AST, the customers DuckDB selects
with the printed SQL are exactly those the Python evaluator accepts.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketloop.segments import ast as a
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import CompiledSegment, evaluate
from marketloop.segments.membership import Membership, MembershipSegment
from marketloop.segments.parse import from_json, parse_definition, to_json
from marketloop.segments.passes import plan
from marketloop.segments.printers import printer_for
from marketloop.segments.resolve import resolve
from marketloop.segments.text import parse_text, to_text
from marketloop.testing.segments import AS_OF, EVENT_NAMES, ddl, facts, inserts, random_bank, tables

FAST = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

ORDERED_OPS = st.sampled_from(list(a.Op))
EQUALITY_OPS = st.sampled_from([a.Op.EQ, a.Op.NE])
cents = st.integers(-5_000_000, 5_000_000).map(lambda n: Decimal(n) / 100)
days = st.integers(1, 40).map(lambda n: timedelta(days=n))
hours = st.integers(1, 120).map(lambda n: timedelta(hours=n))


def relative_days(low: int, high: int) -> st.SearchStrategy[a.RelativeDate]:
    return st.integers(low, high).map(lambda n: a.RelativeDate(offset=timedelta(days=-n)))


# -- leaves over the small bank's fields -------------------------------------------------

_NUMERIC = {
    "age": st.integers(15, 75),
    "city_tier": st.integers(0, 4),
    "aum": st.integers(0, 2_000_000).map(lambda n: Decimal(n) / 100),
    "aum_trend_pct": st.integers(-500, 500).map(lambda n: Decimal(n) / 10),
}
_TEXT = {
    "city": st.sampled_from(["上海", "杭州", "北京", "深圳"]),
    "risk_tolerance": st.sampled_from(["C1", "C2", "C3", "C4", "C5"]),
    "vip_tier": st.sampled_from(["standard", "gold", "diamond"]),
    "gender": st.sampled_from(["M", "F"]),
}
_TIMES = {
    "open_date": st.one_of(relative_days(0, 800), st.dates(date(2024, 1, 1), date(2026, 12, 31)).map(str)),
    "birth_date": relative_days(20 * 365, 70 * 365),
    "last_seen_at": st.integers(0, 60 * 24).map(lambda n: a.RelativeDate(anchor="now", offset=timedelta(hours=-n))),
}
_BOOLEANS = ("fraud_flag", "payroll_customer")


@st.composite
def field_test(draw: st.DrawFn) -> a.Condition:
    kind = draw(st.sampled_from(["numeric", "text", "time", "boolean", "null"]))
    if kind == "text":
        name = draw(st.sampled_from(sorted(_TEXT)))
        if draw(st.booleans()):
            return a.InSet(field=name, values=tuple(draw(st.lists(_TEXT[name], min_size=1, max_size=3))))
        return a.Compare(field=name, op=draw(EQUALITY_OPS), value=draw(_TEXT[name]))
    if kind == "boolean":
        return a.Compare(field=draw(st.sampled_from(_BOOLEANS)), op=draw(EQUALITY_OPS), value=draw(st.booleans()))
    if kind == "null":
        return a.IsNull(field=draw(st.sampled_from(["age", "aum", "city", "vip_tier", "last_seen_at", "fraud_flag"])))
    values = _NUMERIC if kind == "numeric" else _TIMES
    name = draw(st.sampled_from(sorted(values)))
    if draw(st.integers(0, 3)) == 0:
        return a.Between(field=name, low=draw(values[name]), high=draw(values[name]))
    return a.Compare(field=name, op=draw(ORDERED_OPS), value=draw(values[name]))


property_filter = st.one_of(
    st.builds(a.PropertyFilter, property=st.just("amount"), op=ORDERED_OPS, value=st.integers(0, 500)),
    st.builds(a.PropertyFilter, property=st.just("amount"), op=EQUALITY_OPS, value=st.just("12.5")),
    st.builds(
        a.PropertyFilter, property=st.just("fund_type"), op=EQUALITY_OPS, value=st.sampled_from(["equity", "bond"])
    ),
    st.builds(a.PropertyFilter, property=st.just("first_time"), op=EQUALITY_OPS, value=st.booleans()),
)
filters = st.lists(property_filter, max_size=2).map(tuple)
event_names = st.sampled_from(EVENT_NAMES)
steps = st.builds(a.EventStep, event=event_names, where=st.lists(property_filter, max_size=1).map(tuple))


@st.composite
def absence(draw: st.DrawFn) -> a.Condition:
    within = draw(hours)
    in_last = within + draw(st.one_of(hours, days))
    return a.DidNotAfter(first=draw(steps), then_not=draw(steps), within=within, in_last=in_last)


optional = st.none
behaviour = st.one_of(
    st.builds(a.DidEvent, event=event_names, where=filters, at_least=st.integers(1, 3), within=st.one_of(days, hours)),
    st.builds(
        a.DidSequence,
        steps=st.lists(steps, min_size=2, max_size=3).map(tuple),
        within=hours,
        in_last=st.one_of(optional(), days),
    ),
    absence(),
    st.builds(
        a.Transacted,
        direction=st.one_of(optional(), st.sampled_from(["in", "out"])),
        counterparty_type=st.one_of(optional(), st.sampled_from(["other_bank", "employer", "merchant"])),
        channel=st.one_of(optional(), st.sampled_from(["mobile", "counter"])),
        category=st.one_of(optional(), st.sampled_from(["salary", "transfer"])),
        min_amount=st.one_of(optional(), st.integers(0, 100_000)),
        max_amount=st.one_of(optional(), st.integers(100_000, 300_000)),
        within=days,
        at_least=st.integers(1, 3),
        sum_at_least=st.one_of(optional(), cents.map(abs)),
    ),
)
holdings = st.builds(
    a.Holds,
    product_type=st.one_of(optional(), st.sampled_from(["deposit", "wealth", "fund", "loan"])),
    product_code=st.one_of(optional(), st.sampled_from(["W01", "D01", "F01"])),
    risk_level=st.one_of(optional(), st.sampled_from(["R1", "R2", "R4"])),
    min_balance=st.one_of(optional(), st.integers(0, 50_000)),
    max_balance=st.one_of(optional(), st.integers(50_000, 200_000)),
    maturing_within=st.one_of(optional(), days),
)
tags = st.builds(
    a.HasTag,
    tag=st.sampled_from(["rfm", "lifecycle", "churn_risk"]),
    values=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True).map(tuple),
)
leaf = st.one_of(field_test(), tags, holdings, behaviour)


def combine(children: st.SearchStrategy[a.Condition]) -> st.SearchStrategy[a.Condition]:
    parts = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(st.builds(a.And, parts=parts), st.builds(a.Or, parts=parts), st.builds(a.Not, part=children))


definitions = st.recursive(leaf, combine, max_leaves=6)

# -- names the text form must quote (round trip only) --------------------------------------

odd_names = st.sampled_from(["有效客户", "and", "within", "x y", "$AppStart", 'say "hi"', "today"])
odd = st.one_of(
    st.builds(a.Compare, field=odd_names, op=EQUALITY_OPS, value=st.text(max_size=5)),
    st.builds(a.HasTag, tag=odd_names, values=st.lists(st.text(max_size=4), max_size=2).map(tuple)),
    st.builds(a.DidEvent, event=odd_names, where=st.just(()), at_least=st.integers(1, 3), within=days),
    st.builds(a.InSegment, segment_id=odd_names),
    st.builds(a.Compare, field=st.just("aum"), op=ORDERED_OPS, value=cents),
)
any_definition = st.recursive(st.one_of(leaf, odd), combine, max_leaves=8)


@FAST
@given(any_definition)
def test_the_text_form_round_trips(definition: a.Condition) -> None:
    assert parse_text(to_text(definition)) == definition


@FAST
@given(any_definition)
def test_the_json_form_round_trips_through_json_text(definition: a.Condition) -> None:
    document = to_json(definition)
    assert from_json(document) == definition
    assert parse_definition(json.dumps(document, ensure_ascii=False)) == definition


@FAST
@given(any_definition)
def test_text_and_json_forms_of_one_definition_are_equal(definition: a.Condition) -> None:
    assert parse_definition(to_text(definition)) == parse_definition(to_json(definition))


# -- the DuckDB answer is the evaluator's answer ----------------------------------------------


# Loading a bank costs far more than a query, so each example asks several definitions of one bank.
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32),
    st.integers(1, 20),
    st.lists(definitions, min_size=1, max_size=6),
    st.integers(-48, 48).map(lambda n: AS_OF + timedelta(hours=n)),
)
def test_duckdb_and_the_python_evaluator_select_the_same_customers(
    seed: int, size: int, chosen: list[a.Condition], as_of: datetime
) -> None:
    bank = random_bank(random.Random(seed), size)
    customers = facts(bank)
    con = duckdb.connect(config={"threads": 1})
    for name, columns, rows in tables(bank):
        con.execute(ddl("duckdb", name, columns))
        insert = inserts("duckdb", name, columns, rows)
        if insert:
            con.execute(insert)
    printer = printer_for("duckdb", DEFAULT_CATALOG)
    for definition in chosen:
        bound = resolve(definition, DEFAULT_CATALOG)
        selected = {row[0] for row in con.execute(printer.members(plan(bound, as_of))).fetchall()}
        expected = {cust_no for cust_no, customer in customers.items() if evaluate(bound, customer, as_of)}
        assert selected == expected, to_text(definition)
        counted = con.execute(printer.count(plan(bound, as_of))).fetchone()
        assert counted == (len(expected),)


# -- real-time membership: entries and exits are the differences of two DuckDB answers ------------


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32),
    st.integers(1, 15),
    st.lists(definitions, min_size=1, max_size=4),
    st.integers(-48, 48).map(lambda n: AS_OF + timedelta(hours=n)),
    st.integers(1, 24 * 10).map(lambda n: timedelta(hours=n)),
)
def test_membership_entries_and_exits_match_duckdb_at_two_moments(
    seed: int, size: int, chosen: list[a.Condition], as_of: datetime, elapsed: timedelta
) -> None:
    bank = random_bank(random.Random(seed), size)
    con = duckdb.connect(config={"threads": 1})
    for name, columns, rows in tables(bank):
        con.execute(ddl("duckdb", name, columns))
        insert = inserts("duckdb", name, columns, rows)
        if insert:
            con.execute(insert)
    printer = printer_for("duckdb", DEFAULT_CATALOG)
    bound = {f"s{i}": resolve(definition, DEFAULT_CATALOG) for i, definition in enumerate(chosen)}
    membership = Membership(
        [MembershipSegment(segment_id=i, version=1, compiled=CompiledSegment(b)) for i, b in bound.items()]
    )

    def in_duckdb(moment: datetime) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for segment_id, node in bound.items():
            for (cust_no,) in con.execute(printer.members(plan(node, moment))).fetchall():
                found.setdefault(cust_no, set()).add(segment_id)
        return found

    before, after = in_duckdb(as_of - elapsed), in_duckdb(as_of)
    for cust_no, customer in facts(bank).items():
        previous = membership.members_of(customer, as_of - elapsed)
        assert previous == before.get(cust_no, set())
        update = membership.update(customer, as_of, previous)
        assert update.segments == after.get(cust_no, set())
        assert set(update.entered) == update.segments - previous
        assert set(update.exited) == previous - update.segments
