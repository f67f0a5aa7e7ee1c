"""The passes (fold, normalise, merge, push windows) and the evaluator's edge semantics, one at a time."""

from __future__ import annotations

from datetime import date, timedelta

from marketloop.segments import bound as b
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import CompiledSegment, CustomerFacts, EventFact, evaluate
from marketloop.segments.parse import parse_definition
from marketloop.segments.passes import fold, merge, normalise, plan
from marketloop.segments.printers import printer_for
from marketloop.segments.resolve import resolve
from marketloop.testing.segments import AS_OF


def bind(source: str) -> b.Bound:
    return resolve(parse_definition(source), DEFAULT_CATALOG)


def test_relative_dates_fold_against_as_of_only() -> None:
    folded = fold(bind("open_date >= today-30d and last_seen_at >= now-2h and last_seen_at < today"), AS_OF)
    assert isinstance(folded, b.AllOf)
    values = [part.value for part in folded.parts if isinstance(part, b.FieldCompare)]
    midnight = AS_OF.replace(hour=0)
    assert values == [date(2026, 10, 25), AS_OF - timedelta(hours=2), midnight]
    later = AS_OF + timedelta(days=1)
    sql = printer_for("duckdb", DEFAULT_CATALOG).members
    assert sql(plan(bind("open_date >= -30d"), AS_OF)) == sql(plan(bind("open_date >= today-30d"), AS_OF))
    assert sql(plan(bind("open_date >= -30d"), AS_OF)) != sql(plan(bind("open_date >= -30d"), later))


def test_normalise_flattens_and_drops_double_negation() -> None:
    found = normalise(bind('(city = "上海" and (age > 1 and aum > 2)) and not not gender = "F"'))
    assert isinstance(found, b.AllOf)
    assert len(found.parts) == 4
    assert not any(isinstance(part, b.Negation) for part in found.parts)
    assert normalise(b.AnyOf(parts=(b.Constant(value=True), bind("age > 1")))) == b.Constant(value=True)


def test_profile_tests_side_by_side_become_one_scan() -> None:
    merged = merge(normalise(bind('age > 30 and city = "上海" and aum >= 1000 and vip_tier = "gold"')), "customers")
    assert isinstance(merged, b.AllOf)
    scans = [part for part in merged.parts if isinstance(part, b.AttrScan)]
    assert len(scans) == 1
    assert scans[0].relation == "customer_profile"
    assert isinstance(scans[0].condition, b.AllOf)
    assert len(scans[0].condition.parts) == 3


def test_a_formula_true_on_a_missing_row_is_scanned_negated() -> None:
    merged = merge(normalise(bind("age is null")), "customers")
    assert isinstance(merged, b.Negation)
    assert isinstance(merged.part, b.AttrScan)
    assert merged.part.condition == b.Negation(part=normalise(bind("age is null")))


def test_event_counts_share_one_scan_with_the_union_window_pushed_down() -> None:
    planned = plan(bind("did login within 7d and did view_wealth at least 2 times within 30d"), AS_OF)
    assert isinstance(planned, b.AggregateScan)
    assert not planned.any_of
    assert planned.window is not None
    assert planned.window.folded() == (AS_OF - timedelta(days=30), AS_OF)
    either = plan(bind("did login within 7d or did view_wealth within 7d"), AS_OF)
    assert isinstance(either, b.AggregateScan)
    assert either.any_of
    sql = printer_for("duckdb", DEFAULT_CATALOG).members(either)
    assert "GROUP BY" not in sql  # any one row of either makes a member: a plain filter


def customer(*events: tuple[str, int]) -> CustomerFacts:
    """Events as (name, minutes before AS_OF)."""
    return CustomerFacts(
        cust_no="C1", events=[EventFact(event=n, timestamp=AS_OF - timedelta(minutes=m)) for n, m in events]
    )


def test_windows_are_open_at_the_start_and_closed_at_as_of() -> None:
    within_hour = bind("did login within 1h")
    assert evaluate(within_hour, customer(("login", 0)), AS_OF)
    assert not evaluate(within_hour, customer(("login", 60)), AS_OF)
    assert not evaluate(within_hour, customer(("login", -1)), AS_OF)


def test_sequences_are_strictly_ordered_and_fit_within() -> None:
    sequence = bind("did a then b then c within 10m in last 1d")
    assert evaluate(sequence, customer(("a", 30), ("b", 25), ("c", 20)), AS_OF)
    assert not evaluate(sequence, customer(("a", 30), ("b", 30), ("c", 25)), AS_OF)  # a tie is not "then"
    assert not evaluate(sequence, customer(("a", 30), ("b", 25), ("c", 19)), AS_OF)  # 11 minutes
    assert evaluate(sequence, customer(("a", 40), ("a", 30), ("b", 28), ("b", 24), ("c", 21)), AS_OF)


def test_an_absence_is_known_only_once_within_has_passed() -> None:
    absence = bind("did view then not buy within 10m in last 1d")
    assert evaluate(absence, customer(("view", 30), ("buy", 25), ("view", 15)), AS_OF)
    assert not evaluate(absence, customer(("view", 30), ("buy", 25)), AS_OF)
    assert not evaluate(absence, customer(("view", 9)), AS_OF)  # too recent to know
    assert evaluate(absence, customer(("view", 10)), AS_OF)


def test_compiled_segments_say_what_they_need() -> None:
    compiled = CompiledSegment(bind("did a then not b within 1h in last 3d and tag rfm and holds or age > 3"))
    assert compiled.lookback == timedelta(days=3)
    assert compiled.needs == {"events", "tags", "holdings", "attributes"}
