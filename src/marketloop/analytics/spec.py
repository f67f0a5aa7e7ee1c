"""Analysis query specs (分析模型) as frozen data: what an analyst asks, never how it is computed.

Every spec reads the customer behaviour events in a half-open time range
`[start, end)` and may be restricted to the customers of a segment written
in the segment definition language (`segments.ast.Condition`, resolved,
planned and printed by the segment engine). Event steps and their property
filters are the segment language's own `EventStep` / `PropertyFilter`, so a
filter means the same thing in a segment and in an analysis.

`parse.parse_spec` builds these from the JSON form; `compile` turns them
into one SQL query per dialect through the segment printers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from marketloop.segments.ast import Condition, EventStep

Interval = Literal["hour", "day", "week", "total"]
Measure = Literal["count", "customers", "sum", "avg"]


@dataclass(frozen=True, kw_only=True)
class TimeRange:
    """Events with `start <= timestamp < end` (absolute, timezone-aware)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class GroupBy:
    """Split results by an event property (of the analysed event) or by a customer field of the catalog."""

    property: str | None = None
    field: str | None = None


@dataclass(frozen=True, kw_only=True)
class Common:
    """What every spec has: the time range, an optional segment restriction and the time zone of buckets."""

    range: TimeRange
    segment: Condition | None = None
    timezone: str = "UTC"


@dataclass(frozen=True, kw_only=True)
class EventAnalysis(Common):
    """Count events, unique customers, or sum / average a numeric property, per time bucket and group."""

    event: EventStep
    measure: Measure = "count"
    property: str | None = None  # for sum / avg
    interval: Interval = "day"
    group_by: GroupBy | None = None


@dataclass(frozen=True, kw_only=True)
class Funnel(Common):
    """Ordered steps, each within `window` of the first; `strict`: each step is the customer's very next event.

    A customer reaches step k when some chain of step events, started in the
    range, reaches it (the earliest next matching event is taken at each
    step, which finds a chain whenever one exists).
    """

    steps: tuple[EventStep, ...]
    window: timedelta
    strict: bool = False
    group_by: GroupBy | None = None


@dataclass(frozen=True, kw_only=True)
class SegmentCohort:
    name: str
    definition: Condition


@dataclass(frozen=True, kw_only=True)
class Retention(Common):
    """Of the customers who did `start` (first time in the range), how many did `back` N days / weeks later.

    Cohorts are by the day / week of that first `start`, or (when `cohorts`
    are given) one cohort per segment. Period N counts customers with a
    `back` event on local calendar day (week) N after their first `start`.
    """

    start: EventStep
    back: EventStep
    unit: Literal["day", "week"] = "day"
    periods: int = 7
    cohorts: tuple[SegmentCohort, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Paths(Common):
    """The `depth` events after (or before) each customer's first `anchor` in the range, as Sankey links.

    With `dormant` instead of an anchor it is a churn path: the last events of
    customers whose last event in the range is at least `dormant` before its end.
    """

    anchor: EventStep | None = None
    direction: Literal["after", "before"] = "after"
    dormant: timedelta | None = None
    depth: int = 3
    exclude: tuple[str, ...] = ()
    top: int = 20  # links kept per step, most customers first


AttributionModel = Literal["first", "last", "linear", "position", "time_decay"]
ATTRIBUTION_MODELS: tuple[AttributionModel, ...] = ("first", "last", "linear", "position", "time_decay")


@dataclass(frozen=True, kw_only=True)
class Attribution(Common):
    """Credit each conversion in the range to the touches of its customer in the `lookback` before it.

    Touches are grouped by `channel` (a property of the touch event, e.g.
    campaign or channel). Every model is computed: first, last, linear,
    position-based (40 % first, 40 % last, 20 % spread over the middle) and
    time-decay (weight halves every `half_life` before the conversion).
    """

    conversion: EventStep
    touch: EventStep
    channel: str
    lookback: timedelta
    half_life: timedelta = timedelta(days=7)
    value_property: str | None = None


@dataclass(frozen=True, kw_only=True)
class Frequency(Common):
    """How many customers did `event` on k distinct days (stickiness) or k times (frequency)."""

    event: EventStep
    measure: Literal["days", "events"] = "days"


@dataclass(frozen=True, kw_only=True)
class Distribution(Common):
    """A property's distribution over the matching events: bins of a number, or the top values of a text."""

    event: EventStep
    property: str
    bins: tuple[Decimal, ...] = ()  # ascending edges; empty = top values as text
    top: int = 20


Spec = EventAnalysis | Funnel | Retention | Paths | Attribution | Frequency | Distribution
