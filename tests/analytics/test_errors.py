"""Bad specs are `SpecError`s that point at the offending spot with a readable message."""

from __future__ import annotations

from typing import Any

import pytest

from marketloop.analytics.parse import SpecError, parse_spec
from marketloop.analytics.sql import compile_spec
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.testing.analytics import WEEK_END

WEEK = {"from": "2026-11-02", "to": "2026-11-09"}
FUNNEL = {"model": "funnel", "range": WEEK, "steps": ["a", "b"], "window": "1d"}


def _compile(doc: Any) -> None:
    compile_spec(parse_spec(doc, as_of=WEEK_END), "duckdb", DEFAULT_CATALOG)


def _problem(doc: Any) -> tuple[str, str]:
    with pytest.raises(SpecError) as caught:
        _compile(doc)
    error = caught.value
    assert error.code == "analytics.invalid-spec"
    assert error.kind == "invalid"
    return error.errors[0].pointer, error.errors[0].detail


@pytest.mark.parametrize(
    ("doc", "pointer", "words"),
    [
        ("{not json", "", "not JSON"),
        ([1, 2], "", "expected an object"),
        ({"range": WEEK}, "", "missing 'model'"),
        ({"model": "funel", "range": WEEK}, "/model", "unknown model 'funel'"),
        ({"model": "funnel", "steps": ["a", "b"], "window": "1d"}, "/range", 'missing "range"'),
        (FUNNEL | {"steps": ["view_wealth"]}, "/steps", "2 to 20 steps, not 1"),
        (FUNNEL | {"window": "0d"}, "/window", "positive duration"),
        (FUNNEL | {"window": "soon"}, "/window", "expected a duration"),
        (FUNNEL | {"order": "loose"}, "/order", "order is one of any, strict"),
        (FUNNEL | {"range": {"from": "2026-11-09", "to": "2026-11-02"}}, "/range", "the range is empty"),
        (FUNNEL | {"range": {"from": "2026-11-09", "to": "2026-11-09"}}, "/range", "the range is empty"),
        (FUNNEL | {"range": {"last": "0d"}}, "/range/last", "positive duration"),
        (FUNNEL | {"range": {"from": "yesterday"}}, "/range/from", "expected a date or time"),
        (
            FUNNEL | {"steps": ["a", {"event": "b", "where": [{"property": "x", "op": "~", "value": 1}]}]},
            "/steps/1/where/0/op",
            "unknown operator",
        ),
        (
            FUNNEL | {"steps": ["a", {"event": "b", "where": [{"property": "x", "op": ">", "value": "big"}]}]},
            "/steps/1/where/0/value",
            "compares numbers",
        ),
        (FUNNEL | {"colour": "red"}, "/colour", "unknown key 'colour'"),
        (FUNNEL | {"group_by": {"field": "citty"}}, "/group_by/field", "did you mean city"),
        (FUNNEL | {"group_by": {"field": "city", "property": "x"}}, "/group_by", "exactly one"),
        (FUNNEL | {"segment": {"field": "agee", "op": ">", "value": 3}}, "/segment/field", "unknown field 'agee'"),
        (FUNNEL | {"segment": "age >>> 3"}, "/segment", ""),
        (FUNNEL | {"timezone": "Mars/Olympus"}, "/timezone", "unknown time zone"),
        (FUNNEL | {"range": {"from": "0001-01-01", "to": "2026-01-01"}}, "/range/from", "out of range"),
        (FUNNEL | {"range": {"last": "99999999999d"}}, "/range/last", "at most 36600 days"),
        (FUNNEL | {"window": "40000d"}, "/window", "at most 36600 days"),
        (FUNNEL | {"segment": {"did": "x", "within": "99999999999d"}}, "", "a duration is too long"),
        ('{"model": "frequency", "range": {"last": "1d"}, "event": "e", "x": [1, NaN]}', "/x/1", "NaN and infinities"),
        (
            {"model": "events", "range": WEEK, "event": "x", "measure": "sum"},
            "/property",
            "needs the numeric event property",
        ),
        ({"model": "events", "range": WEEK}, "/event", "missing 'event'"),
        (
            {"model": "retention", "range": WEEK, "start": "a", "back": "b", "periods": 0},
            "/periods",
            "between 1 and 366",
        ),
        ({"model": "retention", "range": WEEK, "start": "a", "back": "b", "cohorts": []}, "/cohorts", "at least one"),
        (
            {"model": "retention", "range": WEEK, "start": "a", "back": "b", "cohorts": [{"name": "x"}]},
            "/cohorts/0",
            "missing 'segment'",
        ),
        ({"model": "paths", "range": WEEK, "depth": 2}, "", "exactly one of"),
        ({"model": "paths", "range": WEEK, "anchor": "a", "dormant": "3d"}, "", "exactly one of"),
        ({"model": "paths", "range": WEEK, "anchor": "a", "depth": 11}, "/depth", "between 1 and 10"),
        ({"model": "attribution", "range": WEEK, "conversion": "buy", "channel": "c"}, "", "missing 'lookback'"),
        ({"model": "distribution", "range": WEEK, "event": "e", "property": "p", "bins": [5, 1]}, "/bins", "ascending"),
        (
            {"model": "distribution", "range": WEEK, "event": "e", "property": "p", "bins": ["a"]},
            "/bins/0",
            "is a number",
        ),
    ],
)
def test_bad_specs_point_at_the_spot(doc: Any, pointer: str, words: str) -> None:
    found_pointer, detail = _problem(doc)
    assert found_pointer == pointer
    assert words in detail


def test_a_spec_error_lists_every_segment_problem() -> None:
    doc = FUNNEL | {"segment": {"and": [{"field": "agee", "op": ">", "value": 3}, {"did": "x", "within": "0d"}]}}
    with pytest.raises(SpecError) as caught:
        compile_spec(parse_spec(doc, as_of=WEEK_END), "duckdb", DEFAULT_CATALOG)
    assert [e.pointer for e in caught.value.errors] == ["/segment/and/0/field", "/segment/and/1/within"]
