"""Fixed segments (固化客群): freeze a segment's members, then follow how they move between stages.

`freeze` keeps the members a saved segment selects at a moment, under a
name. Each `monitor` run records, for one snapshot date, every frozen
member's stage (see `stages`) and whether they still meet the segment; the
first run fixes the stage scheme, so every date is comparable. `report`
gives the stage counts per date and the drift alerts; `transitions` the
matrix between two dates. Members live in the warehouse, the definitions in
the operational store.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.clock import Clock
from marketloop.ports.segment_monitoring import FixedSegment, MonitoringWarehouse, SegmentMonitorRepository
from marketloop.segments.ast import Condition
from marketloop.segments.drift import (
    DriftAlert,
    StageSnapshot,
    TransitionMatrix,
    drift_alerts,
    ordered_stages,
    snapshots,
    transition_matrix,
)
from marketloop.segments.parse import from_json
from marketloop.segments.service import SegmentService
from marketloop.segments.stages import StageQuery, StageScheme, parse_scheme, stage_sql


@dataclass(frozen=True, kw_only=True)
class FixedReport:
    """A fixed segment with its stage counts per snapshot date (oldest first) and every drift alert."""

    fixed: FixedSegment
    stages: list[str]
    snapshots: list[StageSnapshot]
    alerts: list[DriftAlert]


@dataclass(frozen=True, kw_only=True)
class MonitorResult:
    """One monitoring run: the snapshot it recorded and the alerts against the date before it."""

    fixed: FixedSegment
    snapshot: StageSnapshot
    alerts: list[DriftAlert]


def _invalid(code: str, title: str, detail: str = "", pointer: str = "") -> MarketloopError:
    errors = [FieldError(pointer=pointer, detail=detail or title)] if pointer else []
    return MarketloopError(kind=ErrorKind.INVALID, code=code, title=title, detail=detail, errors=errors)


def _threshold(value: float | None, pointer: str) -> float | None:
    if value is not None and not 0 < value <= 100:
        raise _invalid(
            "segments.invalid-threshold", f"{pointer.strip('/')} must be above 0 and at most 100", pointer=pointer
        )
    return value


class FixedSegmentService:
    """Freeze segments and monitor their members' stages over time."""

    def __init__(
        self,
        segments: SegmentService,
        repository: SegmentMonitorRepository,
        warehouse: MonitoringWarehouse,
        clock: Clock,
    ) -> None:
        self._segments = segments
        self._repository = repository
        self._warehouse = warehouse
        self._clock = clock

    def freeze(
        self,
        name: str,
        segment_id: str,
        *,
        as_of: datetime | None = None,
        share_threshold: float = 5.0,
        shrink_threshold: float = 10.0,
    ) -> FixedSegment:
        """Keep the members `segment_id` (newest version) selects at `as_of` as fixed segment `name`."""
        name = name.strip()
        if not 1 <= len(name) <= 200 or "/" in name:
            title = "A fixed segment's name is 1 to 200 characters, without /"
            raise _invalid("segments.invalid-name", title, pointer="/name")
        _threshold(share_threshold, "/share_threshold")
        _threshold(shrink_threshold, "/shrink_threshold")
        if self._repository.fixed(name) is not None:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="segments.fixed-exists",
                title=f"A fixed segment called {name!r} exists already",
                detail="choose another name",
            )
        saved = self._segments.get(segment_id)
        moment = as_utc(as_of) if as_of is not None else self._clock.now()
        members = self._warehouse.freeze(name, self._segments.members_sql(from_json(saved.definition), as_of=moment))
        fixed = FixedSegment(
            name=name,
            segment_id=segment_id,
            version=saved.version,
            frozen_at=self._clock.now(),
            as_of=moment,
            members=members,
            share_threshold=share_threshold,
            shrink_threshold=shrink_threshold,
        )
        self._repository.add_fixed(fixed)
        return fixed

    def get(self, name: str) -> FixedSegment:
        found = self._repository.fixed(name)
        if found is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND, code="segments.fixed-not-found", title=f"No fixed segment {name!r}"
            )
        return found

    def list(self, segment_id: str | None = None) -> builtins.list[FixedSegment]:
        return self._repository.list_fixed(segment_id)

    def monitor(
        self,
        name: str,
        *,
        stages: Any = None,
        as_of: datetime | None = None,
        share_threshold: float | None = None,
        shrink_threshold: float | None = None,
    ) -> MonitorResult:
        """Record every member's stage on `as_of`'s date (UTC); `stages` (JSON form) is needed the first time."""
        fixed = self.get(name)
        scheme = self._scheme(fixed, stages)
        fixed = replace(
            fixed,
            stages=scheme.to_json(),
            share_threshold=_threshold(share_threshold, "/share_threshold") or fixed.share_threshold,
            shrink_threshold=_threshold(shrink_threshold, "/shrink_threshold") or fixed.shrink_threshold,
        )
        moment = as_utc(as_of) if as_of is not None else self._clock.now()
        frozen = self._segments.get(fixed.segment_id, fixed.version)
        self._warehouse.record_stages(
            name,
            moment.date(),
            moment,
            stage_sql(scheme, self._stage_query(moment)),
            self._segments.members_sql(from_json(frozen.definition), as_of=moment),
        )
        self._repository.update_fixed(fixed)
        report = self._report(fixed, scheme)
        taken = next(s for s in report.snapshots if s.on == moment.date())
        return MonitorResult(fixed=fixed, snapshot=taken, alerts=[a for a in report.alerts if a.on == taken.on])

    def _scheme(self, fixed: FixedSegment, stages: Any) -> StageScheme:
        if stages is None:
            if fixed.stages is None:
                raise _invalid(
                    "segments.stages-required",
                    f"{fixed.name} has no stages yet",
                    "give the stages on the first monitoring run",
                    pointer="/stages",
                )
            return parse_scheme(fixed.stages)
        scheme = parse_scheme(stages)
        if fixed.stages is not None and scheme.to_json() != fixed.stages:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="segments.stages-fixed",
                title=f"{fixed.name} is monitored with other stages",
                detail="the first monitoring run fixes the stages so that dates compare; freeze again to change them",
            )
        return scheme

    def _stage_query(self, as_of: datetime) -> StageQuery:
        def members(definition: Condition) -> str:
            return self._segments.members_sql(definition, as_of=as_of)

        return StageQuery(
            dialect=self._warehouse.dialect,
            catalog=self._segments.catalog(),
            members_sql=members,
            columns=self._warehouse.columns,
        )

    def report(self, name: str) -> FixedReport:
        fixed = self.get(name)
        return self._report(fixed, parse_scheme(fixed.stages) if fixed.stages is not None else StageScheme())

    def _report(self, fixed: FixedSegment, scheme: StageScheme) -> FixedReport:
        counts = self._warehouse.stage_counts(fixed.name)
        stages = ordered_stages(scheme.names(), (c.stage for c in counts))
        history = snapshots(counts, stages)
        alerts = drift_alerts(history, share_threshold=fixed.share_threshold, shrink_threshold=fixed.shrink_threshold)
        return FixedReport(fixed=fixed, stages=stages, snapshots=history, alerts=alerts)

    def transitions(self, name: str, start: date, end: date) -> TransitionMatrix:
        """From-stage × to-stage counts and rates of the members between two snapshot dates."""
        report = self.report(name)
        taken = [s.on for s in report.snapshots]
        for day, pointer in ((start, "/from"), (end, "/to")):
            if day not in taken:
                known = ", ".join(d.isoformat() for d in taken) or "none yet; run monitor first"
                raise MarketloopError(
                    kind=ErrorKind.NOT_FOUND,
                    code="segments.no-stage-snapshot",
                    title=f"{name} has no snapshot on {day.isoformat()}",
                    detail=f"snapshot dates: {known}",
                    errors=[FieldError(pointer=pointer, detail=f"no snapshot on {day.isoformat()}")],
                )
        return transition_matrix(start, end, self._warehouse.transitions(name, start, end), report.stages)
