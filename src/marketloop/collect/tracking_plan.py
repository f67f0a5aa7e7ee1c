"""The tracking plan service: apply the plan on the hot path, manage it, report and replay what it caught.

- `apply` is the collection service's `PlanCheck`: per source mode, allow does
  nothing, warn records violations on the event, block also quarantines it.
  The plan is compiled once and cached; the stored version is polled at most
  every `reload_seconds`, so a plan changed by another process (the CLI, another
  API replica) takes effect within that time.
- `replace` validates a YAML or JSON document, gives it the next version,
  promotes `promote: true` properties to typed warehouse columns, then stores it.
- `violations`, `violation_summary`, `quarantine` read what the loader stored.
- `replay` re-checks unreleased quarantined events against the current plan
  and re-collects those that now pass, with their original `message_id` (the
  loader drops duplicates, so a replay interrupted half-way can be rerun), then
  marks them released. Events that still fail stay quarantined: nothing is
  dropped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
import yaml

from marketloop.collect.service import Collected
from marketloop.collect.sources import SourceService
from marketloop.collect.wire import Inbound
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import Event, as_utc
from marketloop.core.tracking import TrackingPlan
from marketloop.core.tracking_document import parse_plan, plan_document
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.state import Source, TrackingMode, TrackingPlanRepository
from marketloop.ports.warehouse import (
    QuarantinedEvent,
    StoredViolation,
    ViolationCount,
    ViolationFilter,
    Warehouse,
)

MAX_PLAN_BYTES = 1 << 20
MAX_LIMIT = 10_000
REPLAY_PAGE = 1_000


class Collector(Protocol):
    """Where replayed events are collected again (the `CollectService`)."""

    async def collect(self, source: Source, inbound: Inbound) -> Collected:
        """Make `inbound`'s events durable in the event log, applying the plan; returns once they are."""
        ...


@dataclass(frozen=True, kw_only=True)
class PlanChange:
    """A stored plan version and the warehouse column of each promoted property."""

    plan: TrackingPlan
    promoted: dict[str, str]

    @property
    def document(self) -> dict[str, Any]:
        return plan_document(self.plan)


@dataclass(kw_only=True)
class ReplayResult:
    """What a replay did. `still_failing` counts, per violation, the events it keeps in quarantine."""

    plan_version: int
    checked: int = 0
    released: int = 0
    still_quarantined: int = 0
    still_failing: dict[str, int] = field(default_factory=dict)


def mark(plan: TrackingPlan, mode: TrackingMode, events: Iterable[Event]) -> None:
    """Set `violations` (warn, block) and `quarantined` (block) on the events that break `plan`."""
    if mode is TrackingMode.ALLOW:
        return
    check = plan.compiled.check
    block = mode is TrackingMode.BLOCK
    for event in events:
        found = check(event)
        if found:
            event.violations = found
            event.quarantined = block


def decode_plan_text(text: bytes | str) -> object:
    """A plan document from JSON (when it starts with `{`) or YAML text; readable errors with line numbers."""
    if len(text) > MAX_PLAN_BYTES:
        raise unreadable(f"the document is {len(text)} bytes; the limit is {MAX_PLAN_BYTES}")
    stripped = text.lstrip()
    if stripped[:1] in ("{", b"{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise unreadable(f"invalid JSON: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise unreadable(f"invalid YAML: {error}") from None


def unreadable(detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="tracking.unreadable-plan",
        title="The tracking plan cannot be read as YAML or JSON",
        detail=detail,
    )


class TrackingPlanService:
    """The tracking plan: checks on collection, versions, findings and replay."""

    def __init__(
        self,
        repository: TrackingPlanRepository,
        warehouse: Warehouse,
        sources: SourceService,
        clock: Clock,
        *,
        reload_seconds: float = 2.0,
        audit: AuditRecorder | None = None,
    ) -> None:
        self._audit = audit
        self._repository = repository
        self._warehouse = warehouse
        self._sources = sources
        self._clock = clock
        self._reload_seconds = reload_seconds
        self._plan = TrackingPlan()
        self._checked_at = float("-inf")

    # -- hot path ------------------------------------------------------------

    def apply(self, source: Source, events: list[Event]) -> None:
        """`PlanCheck`: mark `events` as `source.tracking_mode` requires. Free in mode allow."""
        if source.tracking_mode is not TrackingMode.ALLOW:
            mark(self.current(), source.tracking_mode, events)

    def current(self) -> TrackingPlan:
        """The cached plan; the stored version is checked at most every `reload_seconds`."""
        now = self._clock.monotonic()
        if now - self._checked_at >= self._reload_seconds:
            self._checked_at = now
            if self._repository.current_version() != self._plan.version:
                self._plan = self._repository.current() or TrackingPlan()
        return self._plan

    def _reload(self) -> TrackingPlan:
        self._checked_at = float("-inf")
        return self.current()

    # -- the plan ------------------------------------------------------------

    def plan(self) -> TrackingPlan:
        """The newest stored plan (version 0 and no events when none was stored)."""
        return self._reload()

    def document(self) -> dict[str, Any]:
        """The newest stored plan as a document (what `replace` accepts back)."""
        return plan_document(self._reload())

    def replace(self, text: bytes | str) -> PlanChange:
        """Store the plan in a YAML or JSON document as the next version. See `replace_document`."""
        return self.replace_document(decode_plan_text(text))

    def replace_document(self, document: object) -> PlanChange:
        """Validate `document`, promote its `promote` properties, store it as the next version.

        A document that names a `version` must name the current one, so an
        edit based on a stale copy is refused (conflict) instead of undoing
        someone else's change. Raises `MarketloopError` (invalid) with the
        path of every problem.
        """
        parsed = parse_plan(document)
        current = self._repository.current_version()
        if parsed.based_on_version is not None and parsed.based_on_version != current:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="tracking.plan-changed",
                title="The tracking plan was changed since this copy was read",
                detail=f"the document is based on version {parsed.based_on_version}; the current one is {current}",
            )
        plan = dataclasses.replace(parsed.plan, version=current + 1)
        promoted = self._promote(plan)
        self._repository.add(plan, self._clock.now())
        self._plan, self._checked_at = plan, self._clock.monotonic()
        if self._audit is not None:
            details = {"version": plan.version, "events": len(plan.events), "promoted": promoted}
            self._audit.record("tracking_plan.set", f"tracking_plan:v{plan.version}", details=details)
        return PlanChange(plan=plan, promoted=promoted)

    def _promote(self, plan: TrackingPlan) -> dict[str, str]:
        columns: dict[str, str] = {}
        for prop, kind in plan.promoted().items():
            try:
                columns[prop] = self._warehouse.promote(prop, kind)
            except ValueError as error:
                raise MarketloopError(
                    kind=ErrorKind.INVALID,
                    code="tracking.cannot-promote",
                    title="A property marked `promote` cannot become a warehouse column",
                    detail=str(error),
                ) from None
        return columns

    # -- findings ------------------------------------------------------------

    def violations(
        self,
        *,
        source: str | None = None,
        event: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredViolation]:
        """Stored violations, newest first. `source` is a source name or id."""
        return self._warehouse.violations(self._filter(source, event, since), limit=_limit(limit))

    def violation_summary(
        self, *, source: str | None = None, event: str | None = None, since: datetime | None = None
    ) -> list[ViolationCount]:
        """Violations grouped by message type, event name and violation, most frequent first."""
        return self._warehouse.violation_summary(self._filter(source, event, since))

    def quarantine(
        self, *, source: str | None = None, include_released: bool = False, limit: int = 100
    ) -> list[QuarantinedEvent]:
        """Quarantined events, oldest first; unreleased only unless `include_released`."""
        return self._warehouse.quarantined(
            source=self._source_id(source), include_released=include_released, limit=_limit(limit)
        )

    def _filter(self, source: str | None, event: str | None, since: datetime | None) -> ViolationFilter:
        return ViolationFilter(
            source=self._source_id(source), event=event, since=as_utc(since) if since is not None else None
        )

    def _source_id(self, name_or_id: str | None) -> str | None:
        return None if name_or_id is None else self._sources.get(name_or_id).id

    # -- replay --------------------------------------------------------------

    async def replay(self, through: Collector, *, source: str | None = None) -> ReplayResult:
        """Re-collect the unreleased quarantined events that pass the current plan; see the module docstring.

        An event is checked as its source's current mode says: in block mode it
        passes with no violation; a source switched to warn or allow lets it
        through (with its violations, in warn mode).
        """
        plan = self._reload()
        result = ReplayResult(plan_version=plan.version)
        source_id = self._source_id(source)
        after: tuple[datetime, str] | None = None
        known: dict[str, Source | None] = {}
        while page := self._warehouse.quarantined(source=source_id, after=after, limit=REPLAY_PAGE):
            after = (page[-1].received_at, page[-1].message_id)
            await self._replay_page(plan, page, through, known, result)
        return result

    async def _replay_page(
        self,
        plan: TrackingPlan,
        page: list[QuarantinedEvent],
        through: Collector,
        known: dict[str, Source | None],
        result: ReplayResult,
    ) -> None:
        failing: Counter[str] = Counter(result.still_failing)
        passing: dict[str, list[Event]] = {}
        for item in page:
            event = item.record
            event.violations, event.quarantined = [], False
            source = self._known_source(event.source_id, known)
            mark(plan, source.tracking_mode if source else TrackingMode.BLOCK, [event])
            if source is None or event.quarantined:
                failing.update(event.violations or [f"unknown_source: {event.source_id}"])
                result.still_quarantined += 1
            else:
                passing.setdefault(source.id, []).append(event)
        for source_id, events in passing.items():
            await self._recollect(known[source_id], events, through, result)
        result.checked += len(page)
        result.still_failing = dict(failing.most_common())

    async def _recollect(
        self, source: Source | None, events: list[Event], through: Collector, result: ReplayResult
    ) -> None:
        assert source is not None
        await through.collect(source, Inbound(events=events))
        # Collection applies the plan again: release only what it did not quarantine again.
        released = [e.message_id for e in events if not e.quarantined]
        result.still_quarantined += len(events) - len(released)
        result.released += self._warehouse.release(released, self._clock.now())

    def _known_source(self, source_id: str, known: dict[str, Source | None]) -> Source | None:
        if source_id not in known:
            try:
                known[source_id] = self._sources.get(source_id)
            except MarketloopError as error:
                if error.kind is not ErrorKind.NOT_FOUND:
                    raise
                known[source_id] = None
        return known[source_id]


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="tracking.invalid-limit",
            title="The limit is out of range",
            detail=f"use 1 to {MAX_LIMIT}; got {limit}",
        )
    return limit
