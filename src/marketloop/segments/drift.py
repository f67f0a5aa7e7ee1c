"""How a fixed segment's members moved: stage counts per date, transition matrices and drift alerts.

Pure functions over the counts the warehouse returns. Shares are of all
frozen members (so `_left` grows as members leave the bank); a transition
rate is the share of the members in the from-stage that were in the
to-stage on the second date (rows sum to 1).

Drift alerts compare each snapshot date with the one before it:
- `stage-share`: a stage's share moved by more than `share_threshold`
  percentage points;
- `shrink`: the members still meeting the frozen segment's definition fell
  by more than `shrink_threshold` percent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from marketloop.ports.segment_monitoring import LEFT, UNSTAGED, StageCount, TransitionCount

SPECIAL_STAGES = (UNSTAGED, LEFT)


@dataclass(frozen=True, kw_only=True)
class StageSnapshot:
    """The stage counts of one snapshot date."""

    on: date
    as_of: datetime
    members: int  # frozen members recorded (all of them)
    in_segment: int  # still meeting the frozen segment's definition
    counts: dict[str, int]  # stage → members; every stage of the scheme, zeros included
    shares: dict[str, float]  # stage → share of `members`, 0..1


@dataclass(frozen=True, kw_only=True)
class Transition:
    from_stage: str
    to_stage: str
    customers: int
    rate: float  # customers / members in from_stage on the first date


@dataclass(frozen=True, kw_only=True)
class TransitionMatrix:
    start: date
    end: date
    stages: list[str]  # rows and columns, in scheme order then `_none`, `_left`
    from_totals: dict[str, int]
    to_totals: dict[str, int]
    cells: list[Transition]  # every (from, to) pair with at least one customer

    def count(self, from_stage: str, to_stage: str) -> int:
        return next((c.customers for c in self.cells if (c.from_stage, c.to_stage) == (from_stage, to_stage)), 0)


@dataclass(frozen=True, kw_only=True)
class DriftAlert:
    kind: Literal["stage-share", "shrink"]
    on: date
    previous: date
    stage: str | None  # for stage-share
    before: float  # share in percent, or members still in the segment
    after: float
    change: float  # percentage points (stage-share) or percent (shrink, negative = fell)
    threshold: float
    message: str


def ordered_stages(scheme_stages: Sequence[str], seen: Iterable[str]) -> list[str]:
    """The scheme's stages in order, then other values seen (sorted), then `_none` and `_left`."""
    known = set(scheme_stages) | set(SPECIAL_STAGES)
    extra = sorted({s for s in seen if s not in known})
    return [*scheme_stages, *extra, *SPECIAL_STAGES]


def snapshots(counts: Sequence[StageCount], stages: Sequence[str]) -> list[StageSnapshot]:
    """One `StageSnapshot` per date, oldest first, with every stage in `stages` (zeros included)."""
    by_date: dict[date, list[StageCount]] = {}
    for row in counts:
        by_date.setdefault(row.on, []).append(row)
    found = []
    for on in sorted(by_date):
        rows = by_date[on]
        members = sum(r.customers for r in rows)
        per_stage = {stage: 0 for stage in stages} | {r.stage: r.customers for r in rows}
        found.append(
            StageSnapshot(
                on=on,
                as_of=max(r.as_of for r in rows),
                members=members,
                in_segment=sum(r.in_segment for r in rows),
                counts=per_stage,
                shares={stage: (n / members if members else 0.0) for stage, n in per_stage.items()},
            )
        )
    return found


def transition_matrix(
    start: date, end: date, rows: Sequence[TransitionCount], stages: Sequence[str]
) -> TransitionMatrix:
    from_totals = {stage: 0 for stage in stages}
    to_totals = {stage: 0 for stage in stages}
    for row in rows:
        from_totals[row.from_stage] = from_totals.get(row.from_stage, 0) + row.customers
        to_totals[row.to_stage] = to_totals.get(row.to_stage, 0) + row.customers
    order = {stage: i for i, stage in enumerate(stages)}
    cells = [
        Transition(
            from_stage=row.from_stage,
            to_stage=row.to_stage,
            customers=row.customers,
            rate=row.customers / from_totals[row.from_stage],
        )
        for row in sorted(rows, key=lambda r: (order.get(r.from_stage, len(order)), order.get(r.to_stage, len(order))))
    ]
    return TransitionMatrix(
        start=start, end=end, stages=list(stages), from_totals=from_totals, to_totals=to_totals, cells=cells
    )


def drift_alerts(
    history: Sequence[StageSnapshot], *, share_threshold: float, shrink_threshold: float
) -> list[DriftAlert]:
    """Alerts of every snapshot date against the one before it, oldest first."""
    alerts: list[DriftAlert] = []
    for before, after in itertools.pairwise(history):
        alerts += _share_alerts(before, after, share_threshold)
        shrink = _shrink_alert(before, after, shrink_threshold)
        if shrink is not None:
            alerts.append(shrink)
    return alerts


def _share_alerts(before: StageSnapshot, after: StageSnapshot, threshold: float) -> list[DriftAlert]:
    alerts = []
    for stage in after.shares.keys() | before.shares.keys():
        was, now = before.shares.get(stage, 0.0) * 100, after.shares.get(stage, 0.0) * 100
        change = now - was
        if abs(change) > threshold:
            alerts.append(
                DriftAlert(
                    kind="stage-share",
                    on=after.on,
                    previous=before.on,
                    stage=stage,
                    before=round(was, 4),
                    after=round(now, 4),
                    change=round(change, 4),
                    threshold=threshold,
                    message=f"阶段 {stage} 占比 {was:.1f}% → {now:.1f}% ({change:+.1f} 个百分点)",
                )
            )
    return sorted(alerts, key=lambda a: (-abs(a.change), a.stage or ""))


def _shrink_alert(before: StageSnapshot, after: StageSnapshot, threshold: float) -> DriftAlert | None:
    if before.in_segment == 0:
        return None
    change = (after.in_segment - before.in_segment) / before.in_segment * 100
    if -change <= threshold:
        return None
    return DriftAlert(
        kind="shrink",
        on=after.on,
        previous=before.on,
        stage=None,
        before=before.in_segment,
        after=after.in_segment,
        change=round(change, 4),
        threshold=threshold,
        message=f"仍满足客群条件的成员 {before.in_segment} → {after.in_segment} ({change:+.1f}%)",
    )
