"""Segment size monitoring: the count of every materialisation, and alerts when it drops or spikes.

Every `SegmentService.materialise` records its count with the snapshot;
`history` reads them in `as_of` order. A `SizeRule` says when a count is
alarming: it fell (`drop_pct`) or rose (`spike_pct`) by more than a percent
against the median of the previous `baseline` counts. Alerts are computed
from the history each time, so a changed rule applies to the past too and
nothing is stored twice. An alert notes when the segment's version changed,
since a new definition may explain the jump.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.ports.segment_monitoring import SegmentMonitorRepository, SizeRule
from marketloop.ports.segments import Snapshot
from marketloop.segments.service import SegmentService

MAX_BASELINE = 90


@dataclass(frozen=True, kw_only=True)
class SizeAlert:
    segment_id: str
    kind: Literal["drop", "spike"]
    as_of: datetime
    snapshot_at: datetime
    customers: int
    baseline: float  # median of the previous counts
    change_pct: float | None  # None when the baseline is 0
    threshold_pct: float
    version_changed: bool
    message: str


@dataclass(frozen=True, kw_only=True)
class SizeHistory:
    segment_id: str
    points: list[Snapshot]  # oldest first (by as_of, then snapshot_at)
    rule: SizeRule | None
    alerts: list[SizeAlert]


def size_alerts(points: list[Snapshot], rule: SizeRule) -> list[SizeAlert]:
    """The alerts of every point against the median of up to `rule.baseline` points before it, oldest first."""
    alerts = []
    for i in range(1, len(points)):
        previous = points[max(0, i - rule.baseline) : i]
        alert = _alert(points[i], previous, rule)
        if alert is not None:
            alerts.append(alert)
    return alerts


def _alert(point: Snapshot, previous: list[Snapshot], rule: SizeRule) -> SizeAlert | None:
    baseline = float(statistics.median(p.customers for p in previous))
    change = (point.customers - baseline) / baseline * 100 if baseline else None
    kind: Literal["drop", "spike"]
    if rule.drop_pct is not None and change is not None and -change > rule.drop_pct:
        kind, threshold = "drop", rule.drop_pct
    elif rule.spike_pct is not None and point.customers > baseline and (change is None or change > rule.spike_pct):
        kind, threshold = "spike", rule.spike_pct
    else:
        return None
    shown = f"{change:+.1f}%" if change is not None else "从 0 起"
    return SizeAlert(
        segment_id=point.segment_id,
        kind=kind,
        as_of=point.as_of,
        snapshot_at=point.snapshot_at,
        customers=point.customers,
        baseline=baseline,
        change_pct=round(change, 4) if change is not None else None,
        threshold_pct=threshold,
        version_changed=point.version != previous[-1].version,
        message=f"客群人数 {baseline:g} → {point.customers} ({shown})"
        + ("，定义已更新" if point.version != previous[-1].version else ""),
    )


def _invalid(title: str, pointer: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="segments.invalid-size-rule",
        title=title,
        errors=[FieldError(pointer=pointer, detail=title)],
    )


class SegmentSizes:
    """Size history and size alert rules of saved segments."""

    def __init__(self, segments: SegmentService, repository: SegmentMonitorRepository) -> None:
        self._segments = segments
        self._repository = repository

    def set_rule(
        self, segment_id: str, *, drop_pct: float | None = None, spike_pct: float | None = None, baseline: int = 1
    ) -> SizeRule:
        """Create or replace the rule; at least one threshold, each above 0."""
        self._segments.get(segment_id)
        if drop_pct is None and spike_pct is None:
            raise _invalid("give drop_pct, spike_pct or both", "/drop_pct")
        if drop_pct is not None and not 0 < drop_pct <= 100:
            raise _invalid("drop_pct must be above 0 and at most 100", "/drop_pct")
        if spike_pct is not None and spike_pct <= 0:
            raise _invalid("spike_pct must be above 0", "/spike_pct")
        if not 1 <= baseline <= MAX_BASELINE:
            raise _invalid(f"baseline must be 1 to {MAX_BASELINE} materialisations", "/baseline")
        rule = SizeRule(segment_id=segment_id, drop_pct=drop_pct, spike_pct=spike_pct, baseline=baseline)
        self._repository.set_size_rule(rule)
        return rule

    def history(self, segment_id: str, *, limit: int | None = None) -> SizeHistory:
        """The counts of the last `limit` materialisations (all by default) and their alerts."""
        if limit is not None and limit < 1:
            raise _invalid("limit must be at least 1", "/limit")
        points = sorted(self._segments.snapshots(segment_id), key=lambda s: (s.as_of, s.snapshot_at))
        rule = self._repository.size_rule(segment_id)
        alerts = size_alerts(points, rule) if rule is not None else []
        if limit is not None:
            points = points[-limit:]
            kept = {p.snapshot_at for p in points}
            alerts = [a for a in alerts if a.snapshot_at in kept]
        return SizeHistory(segment_id=segment_id, points=points, rule=rule, alerts=alerts)

    def check(self, segment_id: str) -> list[SizeAlert]:
        """The alerts of the newest materialisation (what a scheduler calls after materialising)."""
        found = self.history(segment_id)
        newest = found.points[-1] if found.points else None
        return [a for a in found.alerts if newest is not None and a.snapshot_at == newest.snapshot_at]
