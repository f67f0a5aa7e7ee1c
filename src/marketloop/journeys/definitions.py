"""Journey definitions (旅程定义): drafts, immutable published versions, pause and resume.

A journey is saved as a draft (validated like a published one, so the canvas
sees every fault at once); `publish` stores the draft as the next version,
which never changes again, and makes it the version new entries use. Running
instances stay on the version they entered with. Every split step of a
published journey is an experiment (`split_experiments`), registered at publish. A paused journey admits no
one and advances no one; `resume` picks up where it stopped (waits that came
due meanwhile run at once, and trigger fires recorded meanwhile enter then).
"""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.graph import JourneyGraph, JourneyGraphError, parse_journey
from marketloop.journeys.holdouts import holdout_problems
from marketloop.journeys.split_experiments import SplitExperiments
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.journeys import JourneyRecord, JourneyStore, VersionRecord

DRAFT, ACTIVE, PAUSED = "draft", "active", "paused"


@dataclass(frozen=True, kw_only=True)
class JourneyView:
    journey_id: str
    name: str
    status: str
    version: int  # the published version new entries use; 0: never published
    versions: int
    draft: dict[str, Any]
    updated_at: str


def _not_found(journey_id: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.NOT_FOUND, code="journeys.not-found", title=f"No journey {journey_id!r}", detail=journey_id
    )


def _conflict(code: str, title: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.CONFLICT, code=code, title=title)


class JourneyDefinitions:
    """Saving, publishing, pausing and reading journeys; `graph` reads a published version (cached: immutable)."""

    def __init__(
        self,
        store: JourneyStore,
        clock: Clock,
        *,
        audit: AuditRecorder | None = None,
        splits: SplitExperiments | None = None,
    ) -> None:
        self.store = store
        self._clock = clock
        self._audit = audit
        self._splits = splits
        self._graphs: dict[tuple[str, int], JourneyGraph] = {}
        self._versions: dict[tuple[str, int], VersionRecord] = {}
        self._lock = threading.Lock()

    def save(self, document: bytes | str | dict[str, Any], *, replace: bool = False) -> JourneyView:
        """Create the journey's draft (or replace it with `replace`); a bad graph is a `JourneyGraphError`."""
        graph = parse_journey(document)
        existing = self.store.get(graph.id)
        if existing is not None and not replace:
            raise _conflict("journeys.exists", f"A journey {graph.id!r} exists; replace its draft instead")
        if existing is None and replace:
            raise _not_found(graph.id)
        now = self._clock.now()
        record = JourneyRecord(
            journey_id=graph.id,
            name=graph.name,
            status=existing.status if existing else DRAFT,
            draft=msgspec.json.encode(graph),
            version=existing.version if existing else 0,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        self.store.save(record)
        self._record("journey.save", graph.id, version=record.version)
        return self.get(graph.id)

    def publish(self, journey_id: str, *, by: str = "") -> JourneyView:
        """The draft becomes the next immutable version (validated again) and the journey is active.

        Refused (`journeys.holdout-exits-early`) when a split's holdout can exit before the goal's window is
        over (`holdouts.holdout_problems`): its report would overstate the lift.

        Its split steps become (or update) experiments; publishing again repeats that, so it is idempotent.
        """
        record = self._record_of(journey_id)
        graph = parse_journey(record.draft)  # validated again: the rules may have changed since it was saved
        problems = holdout_problems(graph)
        if problems:
            raise JourneyGraphError(
                kind=ErrorKind.INVALID,
                code="journeys.holdout-exits-early",
                title="A holdout leaves the journey before its conversions are counted",
                detail="; ".join(f"{p.pointer}: {p.detail}" for p in problems[:5]),
                errors=problems,
            )
        version = self.store.publish(journey_id, record.draft, self._clock.now(), by)
        if self._splits is not None:
            self._splits.register(self.store, journey_id)
        self._record("journey.publish", journey_id, version=version)
        return self.get(journey_id)

    def pause(self, journey_id: str) -> JourneyView:
        return self._set_status(journey_id, PAUSED, from_status=ACTIVE)

    def resume(self, journey_id: str) -> JourneyView:
        return self._set_status(journey_id, ACTIVE, from_status=PAUSED)

    def _set_status(self, journey_id: str, status: str, *, from_status: str) -> JourneyView:
        record = self._record_of(journey_id)
        if record.status != from_status:
            raise _conflict(
                "journeys.wrong-status", f"Journey {journey_id!r} is {record.status}, not {from_status}: cannot do that"
            )
        self.store.save(JourneyRecord(**(record.__dict__ | {"status": status, "updated_at": self._clock.now()})))
        self._record(f"journey.{'pause' if status == PAUSED else 'resume'}", journey_id)
        return self.get(journey_id)

    def get(self, journey_id: str) -> JourneyView:
        record = self._record_of(journey_id)
        return JourneyView(
            journey_id=record.journey_id,
            name=record.name,
            status=record.status,
            version=record.version,
            versions=len(self.store.versions(journey_id)),
            draft=msgspec.json.decode(record.draft),
            updated_at=record.updated_at.isoformat(),
        )

    def list(self) -> builtins.list[JourneyView]:
        return [self.get(record.journey_id) for record in self.store.list()]

    def active(self) -> builtins.list[JourneyRecord]:
        """Journeys that admit and advance customers now."""
        return [record for record in self.store.list() if record.status == ACTIVE and record.version > 0]

    def graph(self, journey_id: str, version: int) -> JourneyGraph:
        """The published graph of `version`."""
        key = (journey_id, version)
        with self._lock:
            found = self._graphs.get(key)
        if found is not None:
            return found
        graph = parse_journey(self.graph_record(journey_id, version).definition)
        with self._lock:
            self._graphs[key] = graph
        return graph

    def first_published(self, journey_id: str) -> datetime:
        """When version 1 was published: fires before it do not enter (cached: versions never change)."""
        return self.graph_record(journey_id, 1).published_at

    def graph_record(self, journey_id: str, version: int) -> VersionRecord:
        key = (journey_id, version)
        with self._lock:
            found = self._versions.get(key)
        if found is None:
            found = self.store.version(journey_id, version)
            if found is None:
                raise _not_found(f"{journey_id} v{version}")
            with self._lock:
                self._versions[key] = found
        return found

    def graph_to_try(self, journey_id: str, version: int | None = None) -> JourneyGraph:
        """A version's graph, or the draft's when `version` is None (what a dry run walks)."""
        if version is not None:
            return self.graph(journey_id, version)
        return parse_journey(self._record_of(journey_id).draft)

    def counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        """Per step: entered, waiting, sent, suppressed, failed, assigned, converted, exited (0 when none)."""
        record = self._record_of(journey_id)
        found = self.store.counts(journey_id)
        steps = (
            parse_journey(record.draft).steps if record.version == 0 else self.graph(journey_id, record.version).steps
        )
        kinds = ("entered", "waiting", "sent", "suppressed", "failed", "converted", "exited")
        for version, runs in self.store.entries(journey_id).items():
            entry = next(s.id for s in self.graph(journey_id, version).steps if s.type == "entry")
            found.setdefault(entry, {})
            found[entry]["entered"] = found[entry].get("entered", 0) + runs
        for step in steps:
            found.setdefault(step.id, {})
        return {step: {kind: counts.get(kind, 0) for kind in kinds} | counts for step, counts in found.items()}

    def _record_of(self, journey_id: str) -> JourneyRecord:
        record = self.store.get(journey_id)
        if record is None:
            raise _not_found(journey_id)
        return record

    def _record(self, action: str, journey_id: str, **details: object) -> None:
        if self._audit is not None:
            self._audit.record(action, f"journey:{journey_id}", details=details)
