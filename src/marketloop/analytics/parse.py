"""The JSON form of analysis specs: a checked reader that points at the offending spot.

    {"model": "funnel", "range": {"last": "30d"}, "segment": "city = \\"上海\\"",
     "steps": ["view_wealth", {"event": "buy_wealth", "where": [{"property": "amount", "op": ">", "value": 1000}]}],
     "window": "1d", "order": "strict", "group_by": {"property": "channel"}}

Event steps and segment restrictions are read by the segment language's own
reader, so their errors carry the same JSON pointers. Every problem is a
`SpecError` (400 problem+json in the API, exit code 2 in the CLI). Relative
ranges (`{"last": "30d"}`) are fixed against the `as_of` given, so a parsed
spec is absolute and its hash names its result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marketloop.analytics import spec as s
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.segments.ast import Condition, EventStep, Position
from marketloop.segments.errors import Code, DefinitionError, fail
from marketloop.segments.json_form import Reader
from marketloop.segments.parse import _step, parse_definition

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_SPAN = timedelta(days=36_600)  # a hundred years: ranges, windows, lookbacks
MAX_DEPTH = 10
MAX_PERIODS = 366
MAX_STEPS = 20


class SpecError(MarketloopError):
    """An analysis spec that cannot be read, with the JSON pointer of every offending spot."""

    def __init__(self, errors: list[FieldError]) -> None:
        first = errors[0].detail if errors else "empty spec"
        where = f"{errors[0].pointer}: " if errors and errors[0].pointer else ""
        super().__init__(
            kind=ErrorKind.INVALID,
            code="analytics.invalid-spec",
            title="The analysis spec is not valid",
            detail=where + first,
            errors=errors,
        )


def spec_error(pointer: str, message: str) -> SpecError:
    return SpecError([FieldError(pointer=pointer, detail=message)])


def from_definition_error(error: DefinitionError) -> SpecError:
    return SpecError(list(error.errors))


def parse_spec(doc: Any, *, as_of: datetime) -> s.Spec:
    """The spec a JSON document (object, or its text) describes; raises `SpecError` pointing at the bad spot."""
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc, parse_float=Decimal)
        except json.JSONDecodeError as error:
            raise spec_error("", f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    for pointer in _non_finite(doc, ""):
        raise spec_error(pointer, "NaN and infinities are not numbers a spec may use")
    try:
        reader = Reader(doc, "")
        model = reader.string("model")
        if model not in _MODELS:
            raise spec_error("/model", f"unknown model {model!r}; use one of {', '.join(_MODELS)}")
        keys, build = _MODELS[model]
        reader.only("model", "range", "segment", "timezone", *keys)
        return build(reader, _common(reader, as_of))
    except DefinitionError as error:
        raise from_definition_error(error) from None
    except OverflowError:  # a duration of a segment condition beyond what a date can hold
        raise spec_error("", f"a duration is too long (at most {MAX_SPAN.days} days)") from None


def _non_finite(item: Any, pointer: str) -> Iterator[str]:
    """The pointers of NaN / infinite numbers in a JSON document (Python's JSON reader accepts them)."""
    if isinstance(item, float | Decimal) and not (Decimal(item) if isinstance(item, float) else item).is_finite():
        yield pointer
    elif isinstance(item, Mapping):
        for key, value in item.items():
            yield from _non_finite(value, f"{pointer}/{key}")
    elif isinstance(item, list):
        for i, value in enumerate(item):
            yield from _non_finite(value, f"{pointer}/{i}")


def _common(reader: Reader, as_of: datetime) -> dict[str, Any]:
    segment = reader.obj.get("segment")
    zone = reader.obj.get("timezone", "UTC")
    if not isinstance(zone, str):
        raise spec_error("/timezone", "expected a time zone name such as Asia/Shanghai")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise spec_error("/timezone", f"unknown time zone {zone!r}; use e.g. Asia/Shanghai or UTC") from None
    return {
        "range": _range(reader, as_of),
        "segment": _segment(segment) if segment is not None else None,
        "timezone": zone,
    }


def _segment(item: Any) -> Condition:
    if not isinstance(item, str | Mapping):
        raise spec_error("/segment", "expected a segment definition: its JSON form (an object) or its text form")
    try:
        return parse_definition(item, pointer="/segment")
    except DefinitionError as error:
        if isinstance(item, str):  # text positions are within the string: say where the string is
            raise SpecError([FieldError(pointer="/segment", detail=str(p)) for p in error.problems]) from None
        raise


def _moment(item: Any, pointer: str) -> datetime:
    if isinstance(item, str):
        try:
            found = datetime.fromisoformat(item) if "T" in item or " " in item else None
            if found is None:
                found = datetime.combine(date.fromisoformat(item), datetime.min.time())
            found = found if found.tzinfo is not None else found.replace(tzinfo=UTC)
        except ValueError:
            pass
        else:
            if EARLIEST <= found <= LATEST:
                return found
            raise spec_error(pointer, f"{item!r} is out of range: use a time from {EARLIEST.year} to {LATEST.year}")
    raise spec_error(
        pointer, f"expected a date or time such as 2026-11-01 or 2026-11-01T08:00:00+08:00, found {item!r}"
    )


def _range(reader: Reader, as_of: datetime) -> s.TimeRange:
    if "range" not in reader.obj:
        raise spec_error("/range", 'missing "range": {"last": "30d"} or {"from": "2026-11-01", "to": "2026-12-01"}')
    inner = reader.child("range")
    if "last" in inner.obj:
        inner.only("last")
        span = _span(inner, "last", "/range/last")
        if span <= timedelta(0):
            raise spec_error("/range/last", "the range must be a positive duration")
        return s.TimeRange(start=as_of - span, end=as_of)
    inner.only("from", "to")
    start = _moment(inner.obj.get("from"), "/range/from")
    end = _moment(inner.obj.get("to"), "/range/to") if "to" in inner.obj else as_of
    if end <= start:
        raise spec_error(
            "/range", f"the range is empty: to ({end.isoformat()}) is not after from ({start.isoformat()})"
        )
    return s.TimeRange(start=start, end=end)


# -- pieces ---------------------------------------------------------------------------


def _event(reader: Reader, key: str) -> EventStep:
    if key not in reader.obj:
        raise spec_error(f"{reader.pointer}/{key}", f"missing {key!r}: an event name or {{'event', 'where'}}")
    return _step(reader.obj[key], f"{reader.pointer}/{key}")


def _choice(reader: Reader, key: str, allowed: tuple[str, ...], default: str) -> str:
    item = reader.obj.get(key, default)
    if item not in allowed:
        raise spec_error(f"/{key}", f"{key} is one of {', '.join(allowed)}, not {item!r}")
    return str(item)


def _bounded(reader: Reader, key: str, default: int, low: int, high: int) -> int:
    found = reader.integer(key, default)
    if not low <= found <= high:
        raise spec_error(f"/{key}", f"{key} must be between {low} and {high}, not {found}")
    return found


def _positive(reader: Reader, key: str, default: timedelta | None = None) -> timedelta:
    if key not in reader.obj and default is not None:
        return default
    span = _span(reader, key, f"/{key}")
    if span <= timedelta(0):
        raise spec_error(f"/{key}", f"{key} must be a positive duration, not {reader.obj[key]!r}")
    return span


def _span(reader: Reader, key: str, pointer: str) -> timedelta:
    try:
        span = reader.duration(key)
    except OverflowError:
        span = MAX_SPAN + timedelta(days=1)
    if span > MAX_SPAN:
        raise spec_error(pointer, f"{key} is at most {MAX_SPAN.days} days")
    return span


def _name(reader: Reader, key: str) -> str | None:
    return reader.string(key) if reader.obj.get(key) is not None else None


def _group_by(reader: Reader) -> s.GroupBy | None:
    if reader.obj.get("group_by") is None:
        return None
    inner = reader.child("group_by")
    inner.only("property", "field")
    if len(inner.obj) != 1:
        raise spec_error("/group_by", 'group_by has exactly one of "property" (of the event) or "field" (customer)')
    return s.GroupBy(property=_name(inner, "property"), field=_name(inner, "field"))


# -- models ------------------------------------------------------------------------------


def _event_analysis(reader: Reader, common: dict[str, Any]) -> s.Spec:
    measure = _choice(reader, "measure", ("count", "customers", "sum", "avg"), "count")
    prop = _name(reader, "property")
    if measure in ("sum", "avg") and prop is None:
        raise spec_error("/property", f"measure {measure} needs the numeric event property to {measure}")
    return s.EventAnalysis(
        event=_event(reader, "event"),
        measure=measure,  # type: ignore[arg-type]
        property=prop,
        interval=_choice(reader, "interval", ("hour", "day", "week", "total"), "day"),  # type: ignore[arg-type]
        group_by=_group_by(reader),
        **common,
    )


def _funnel(reader: Reader, common: dict[str, Any]) -> s.Spec:
    items = reader.array("steps")
    if not 2 <= len(items) <= MAX_STEPS:
        raise spec_error("/steps", f"a funnel has 2 to {MAX_STEPS} steps, not {len(items)}")
    return s.Funnel(
        steps=tuple(_step(item, f"/steps/{i}") for i, item in enumerate(items)),
        window=_positive(reader, "window"),
        strict=_choice(reader, "order", ("any", "strict"), "any") == "strict",
        group_by=_group_by(reader),
        **common,
    )


def _cohorts(reader: Reader) -> tuple[s.SegmentCohort, ...]:
    if reader.obj.get("cohorts") is None:
        return ()
    items = reader.array("cohorts")
    if not items:
        raise spec_error("/cohorts", "cohorts needs at least one {'name', 'segment'}")
    found = []
    for i, item in enumerate(items):
        inner = Reader(item, f"/cohorts/{i}")
        inner.only("name", "segment")
        if "segment" not in inner.obj:
            raise spec_error(f"/cohorts/{i}", "missing 'segment': the definition of the cohort's customers")
        definition = parse_definition(inner.obj["segment"], pointer=f"/cohorts/{i}/segment")
        found.append(s.SegmentCohort(name=inner.string("name"), definition=definition))
    return tuple(found)


def _retention(reader: Reader, common: dict[str, Any]) -> s.Spec:
    return s.Retention(
        start=_event(reader, "start"),
        back=_event(reader, "back"),
        unit=_choice(reader, "unit", ("day", "week"), "day"),  # type: ignore[arg-type]
        periods=_bounded(reader, "periods", 7, 1, MAX_PERIODS),
        cohorts=_cohorts(reader),
        **common,
    )


def _paths(reader: Reader, common: dict[str, Any]) -> s.Spec:
    exclude = reader.obj.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, str) and e for e in exclude):
        raise spec_error("/exclude", "expected an array of event names")
    churn = "dormant" in reader.obj
    if churn == ("anchor" in reader.obj):
        raise spec_error("", 'paths have exactly one of "anchor" (an event) or "dormant" (a churn path, e.g. "30d")')
    return s.Paths(
        anchor=None if churn else _event(reader, "anchor"),
        direction="before" if churn else _choice(reader, "direction", ("after", "before"), "after"),  # type: ignore[arg-type]
        dormant=_positive(reader, "dormant") if churn else None,
        depth=_bounded(reader, "depth", 3, 1, MAX_DEPTH),
        exclude=tuple(exclude),
        top=_bounded(reader, "top", 20, 1, 1000),
        **common,
    )


def _attribution(reader: Reader, common: dict[str, Any]) -> s.Spec:
    return s.Attribution(
        conversion=_event(reader, "conversion"),
        touch=_event(reader, "touch") if "touch" in reader.obj else EventStep(event="touch_delivered"),
        channel=reader.string("channel"),
        lookback=_positive(reader, "lookback"),
        half_life=_positive(reader, "half_life", timedelta(days=7)),
        value_property=_name(reader, "value_property"),
        **common,
    )


def _frequency(reader: Reader, common: dict[str, Any]) -> s.Spec:
    measure = _choice(reader, "measure", ("days", "events"), "days")
    return s.Frequency(event=_event(reader, "event"), measure=measure, **common)  # type: ignore[arg-type]


def _distribution(reader: Reader, common: dict[str, Any]) -> s.Spec:
    edges: list[Decimal] = []
    for i, item in enumerate(reader.obj.get("bins") or []):
        found = Reader.scalar(item, Position(pointer=f"/bins/{i}"))
        if isinstance(found, bool | str):
            raise fail(Code.WRONG_TYPE, f"a bin edge is a number, not {item!r}", Position(pointer=f"/bins/{i}"))
        edges.append(Decimal(found))
    if any(b >= a for a, b in zip(edges[1:], edges, strict=False)):
        raise spec_error("/bins", "bin edges must be strictly ascending")
    return s.Distribution(
        event=_event(reader, "event"),
        property=reader.string("property"),
        bins=tuple(edges),
        top=_bounded(reader, "top", 20, 1, 1000),
        **common,
    )


_MODELS: dict[str, tuple[tuple[str, ...], Callable[[Reader, dict[str, Any]], s.Spec]]] = {
    "events": (("event", "measure", "property", "interval", "group_by"), _event_analysis),
    "funnel": (("steps", "window", "order", "group_by"), _funnel),
    "retention": (("start", "back", "unit", "periods", "cohorts"), _retention),
    "paths": (("anchor", "direction", "dormant", "depth", "exclude", "top"), _paths),
    "attribution": (("conversion", "touch", "channel", "lookback", "half_life", "value_property"), _attribution),
    "frequency": (("event", "measure"), _frequency),
    "distribution": (("event", "property", "bins", "top"), _distribution),
}
MODELS = tuple(_MODELS)
