"""`SegmentService`: what the API and CLI call — count, show SQL, save versions, materialise, export.

One definition flows through one pipeline: parse (JSON or text) → resolve
against the catalog (grown by the warehouse's real profile columns) →
passes against `as_of` → the warehouse dialect's printer. `as_of` comes
from the caller or the clock port, never from inside the engine.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.core.scope import EVERYTHING, Scope
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.segments import ExportFormat, SegmentRepository, SegmentVersion, SegmentWarehouse, Snapshot
from marketloop.security.audit import current_actor
from marketloop.security.exports import ExportFormat as WatermarkFormat
from marketloop.security.exports import export_frame
from marketloop.segments import bound as b
from marketloop.segments.ast import Condition
from marketloop.segments.catalog import DEFAULT_CATALOG, Catalog
from marketloop.segments.evaluate import CompiledSegment
from marketloop.segments.membership import Membership, MembershipSegment
from marketloop.segments.parse import from_json, parse_definition, to_json
from marketloop.segments.passes import plan
from marketloop.segments.passes.walk import leaves
from marketloop.segments.printers import printer_for
from marketloop.segments.resolve import resolve

Source = str | bytes | Mapping[str, Any] | Condition
Form = Literal["members", "count"]


@dataclass(frozen=True, kw_only=True)
class SegmentCount:
    count: int
    ms: float  # time the warehouse took
    as_of: datetime


@dataclass(frozen=True, kw_only=True)
class CompiledQuery:
    dialect: str
    as_of: datetime
    sql: str


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    path: Path
    rows: int
    snapshot: Snapshot


def _new_id() -> str:
    return "seg_" + secrets.token_hex(6)


class SegmentService:
    """Segments (客群): definitions in the operational store, membership in the warehouse."""

    def __init__(
        self,
        repository: SegmentRepository,
        warehouse: SegmentWarehouse,
        clock: Clock,
        *,
        catalog: Catalog = DEFAULT_CATALOG,
        new_id: Callable[[], str] = _new_id,
        tags: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        """`tags`: the names of the defined tags (the tag engine's); when given, other tag names are errors."""
        self._repository = repository
        self._warehouse = warehouse
        self._clock = clock
        self._catalog = catalog
        self._new_id = new_id
        self._tags = tags

    # -- the pipeline ------------------------------------------------------------

    def catalog(self) -> Catalog:
        """The catalog with the columns the built customer profile really has, and the defined tags."""
        profile = self._catalog.relations.profile
        grown = self._catalog.with_columns(profile, self._warehouse.columns(profile) or {})
        return grown.with_tags(self._tags()) if self._tags is not None else grown

    def _lookup(self, segment_id: str) -> Condition | None:
        found = self._repository.latest(segment_id)
        return from_json(found.definition) if found is not None else None

    def bind(self, definition: Condition, *, segment_id: str | None = None) -> b.Bound:
        """Resolve `definition`; raises `DefinitionError` listing every problem with its position."""
        return resolve(definition, self.catalog(), self._lookup, segment_id=segment_id)

    def sql(self, source: Source, *, as_of: datetime | None = None, form: Form = "members") -> CompiledQuery:
        """The warehouse SQL of a definition (for review, and for the console's "show SQL")."""
        moment = self._as_of(as_of)
        text = self._print(self.bind(parse_definition(source)), moment, form)
        return CompiledQuery(dialect=self._warehouse.dialect, as_of=moment, sql=text)

    def members_sql(self, source: Source, *, as_of: datetime) -> str:
        """The membership SQL (one `cust_no` column) at `as_of`, after checking that what it reads exists."""
        return self._query(self.bind(parse_definition(source)), as_utc(as_of), "members")

    def _as_of(self, as_of: datetime | None) -> datetime:
        return as_utc(as_of) if as_of is not None else self._clock.now()

    def _query(self, bound: b.Bound, as_of: datetime, form: Form) -> str:
        self._check_relations(bound)
        return self._print(bound, as_of, form)

    def _print(self, bound: b.Bound, as_of: datetime, form: Form) -> str:
        planned = plan(bound, as_of, population=self._catalog.relations.customers)
        printer = printer_for(self._warehouse.dialect, self._catalog)
        return printer.count(planned) if form == "count" else printer.members(planned)

    def _check_relations(self, bound: b.Bound) -> None:
        for relation in sorted(_relations(bound, self._catalog)):
            if self._warehouse.columns(relation) is None:
                raise MarketloopError(
                    kind=ErrorKind.CONFLICT,
                    code="segments.missing-relation",
                    title=f"The segment reads {relation}, which does not exist yet",
                    detail="build the customer profile first" if relation == self._catalog.relations.profile else "",
                )

    # -- counting ------------------------------------------------------------------

    def count(self, source: Source, *, as_of: datetime | None = None) -> SegmentCount:
        """How many customers the definition selects at `as_of` (default: now), exactly."""
        moment = self._as_of(as_of)
        query = self._query(self.bind(parse_definition(source)), moment, "count")
        started = self._clock.monotonic()
        found = self._warehouse.count(query)
        return SegmentCount(count=found, ms=round((self._clock.monotonic() - started) * 1000, 1), as_of=moment)

    def preview(self, source: Source, *, as_of: datetime | None = None, limit: int = 20) -> list[str]:
        """The first `limit` members, by cust_no."""
        query = self._query(self.bind(parse_definition(source)), self._as_of(as_of), "members")
        return self._warehouse.members(query, limit=limit)

    # -- saved segments --------------------------------------------------------------

    def save(
        self, name: str, source: Source, *, segment_id: str | None = None, description: str = ""
    ) -> SegmentVersion:
        """Save a definition as a new segment, or as the next version of `segment_id`."""
        definition = parse_definition(source)
        previous = self._repository.latest(segment_id) if segment_id is not None else None
        if segment_id is not None and previous is None:
            raise _not_found(segment_id)
        chosen = segment_id or self._new_id()
        self.bind(definition, segment_id=chosen)
        version = SegmentVersion(
            segment_id=chosen,
            version=previous.version + 1 if previous else 1,
            name=name,
            description=description,
            definition=to_json(definition),
            created_at=self._clock.now(),
        )
        self._repository.add(version)
        return version

    def list(self) -> list[SegmentVersion]:
        return self._repository.list()

    def get(self, segment_id: str, version: int | None = None) -> SegmentVersion:
        found = self._repository.latest(segment_id) if version is None else self._repository.get(segment_id, version)
        if found is None:
            raise _not_found(segment_id if version is None else f"{segment_id} version {version}")
        return found

    def compiled(self, segment_id: str) -> CompiledSegment:
        """The saved segment ready to be answered per customer and event (real-time membership)."""
        return CompiledSegment(self.bind(from_json(self.get(segment_id).definition), segment_id=segment_id))

    def membership(self, segment_ids: Iterable[str] | None = None) -> Membership:
        """The newest versions of `segment_ids` (default: every saved segment) for real-time membership."""
        chosen = [self.get(i) for i in segment_ids] if segment_ids is not None else self.list()
        return Membership(
            [
                MembershipSegment(
                    segment_id=saved.segment_id,
                    version=saved.version,
                    compiled=CompiledSegment(self.bind(from_json(saved.definition), segment_id=saved.segment_id)),
                )
                for saved in chosen
            ]
        )

    def materialise(self, segment_id: str, *, as_of: datetime | None = None) -> Snapshot:
        """Store the members of the newest version at `as_of` as a snapshot (固化客群)."""
        saved = self.get(segment_id)
        moment = self._as_of(as_of)
        bound = self.bind(from_json(saved.definition), segment_id=segment_id)
        snapshot_at = self._clock.now()
        found = self._warehouse.materialise(segment_id, snapshot_at, self._query(bound, moment, "members"))
        snapshot = Snapshot(
            segment_id=segment_id, version=saved.version, snapshot_at=snapshot_at, as_of=moment, customers=found
        )
        self._repository.add_snapshot(snapshot)
        return snapshot

    def members(self, segment_id: str) -> builtins.list[str]:
        """The segment's members now, kept as a snapshot (what a batch journey let in stays on record)."""
        snapshot = self.materialise(segment_id)
        return self._warehouse.members_of(segment_id, snapshot.snapshot_at, scope=EVERYTHING)

    def snapshots(self, segment_id: str) -> builtins.list[Snapshot]:
        self.get(segment_id)
        return self._repository.snapshots(segment_id)

    def export(
        self,
        segment_id: str,
        path: Path,
        fmt: ExportFormat,
        *,
        audit: AuditRecorder,
        user: str | None = None,
        scope: Scope = EVERYTHING,
    ) -> ExportResult:
        """Write the newest snapshot's cust_nos inside `scope` to `path` (materialising one when there is none).

        The file is watermarked with `user` (default: the current actor) and the time, and the
        export is recorded in the audit log (`export.write`, target `segment:<id>`).
        """
        taken = self.snapshots(segment_id)
        snapshot = taken[0] if taken else self.materialise(segment_id)
        members = self._warehouse.members_of(segment_id, snapshot.snapshot_at, scope=scope)
        frame = pl.DataFrame({"cust_no": members}, schema={"cust_no": pl.String})
        export_frame(
            frame,
            path,
            WatermarkFormat(fmt),
            user=user or current_actor(),
            at=self._clock.now(),
            audit=audit,
            target=f"segment:{segment_id}",
        )
        return ExportResult(path=path, rows=len(members), snapshot=snapshot)


def _not_found(what: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.NOT_FOUND, code="segments.not-found", title=f"No segment {what}")


def _relations(bound: b.Bound, catalog: Catalog) -> set[str]:
    relations = catalog.relations
    kinds: dict[type[b.Bound], tuple[str, ...]] = {
        b.TagIn: (relations.tags,),
        b.HoldingTest: (relations.holdings, relations.products),
        b.TxnTest: (relations.transactions,),
        b.EventCount: (catalog.events.relation,),
        b.EventSequence: (catalog.events.relation,),
        b.EventAbsence: (catalog.events.relation,),
    }
    found = {relations.customers}
    for leaf in leaves(bound):
        field = getattr(leaf, "field", None)
        found.update((field.relation,) if field is not None else kinds.get(type(leaf), ()))
    return found
