"""`AnalyticsService`: what the API and CLI call — run an analysis, show its SQL, drill down to customers.

One spec flows through one pipeline: parse (JSON, relative range fixed
against `as_of`) → compile through the segment printers of the warehouse's
dialect (segment restrictions resolved by the segment service, so saved
segments and the real profile columns are known) → run → shape. Results are
cached under the hash of the compiled SQL (which the spec and the saved
segments it reads determine) and the warehouse's data version, which moves
with every write an analysis may read (events loaded or erased, core-banking
imports, profile and tag refreshes, OneID links), so such a write
invalidates every entry. Entries also expire after `cache_seconds`, a bound
on the memory of results nobody asks for again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from marketloop.analytics.parse import SpecError, parse_spec, spec_error
from marketloop.analytics.results import shape
from marketloop.analytics.spec import Spec
from marketloop.analytics.sql import Query, compile_spec
from marketloop.core.errors import FieldError
from marketloop.core.events import as_utc
from marketloop.core.scope import EVERYTHING, Scope
from marketloop.ports.analytics import AnalyticsWarehouse
from marketloop.ports.clock import Clock
from marketloop.profiles.search import CustomerHit, SearchQuery
from marketloop.profiles.service import ProfileService, TimelinePage
from marketloop.segments.ast import Condition
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.passes import plan
from marketloop.segments.printers import SqlPrinter, printer_for
from marketloop.segments.service import SegmentService

MAX_PAGE = 200
MAX_OFFSET = 100_000


@dataclass(frozen=True, kw_only=True)
class AnalysisResult:
    """A result, with what it was computed from: the definition hash, the data version and whether it was cached."""

    result: dict[str, Any]
    definition_hash: str
    data_version: str
    cached: bool
    ms: float
    as_of: datetime
    range_start: datetime
    range_end: datetime


@dataclass(frozen=True, kw_only=True)
class CustomerPage:
    """The customers behind one result cell, by cust_no, personal fields masked."""

    total: int
    limit: int
    offset: int
    items: list[CustomerHit]


class AnalyticsService:
    """Runs analyses against the warehouse, caches results, lists the customers behind a number."""

    def __init__(
        self,
        warehouse: AnalyticsWarehouse,
        segments: SegmentService,
        profiles: ProfileService,
        clock: Clock,
        *,
        cache_size: int = 256,
        cache_seconds: float = 600.0,
    ) -> None:
        self._warehouse = warehouse
        self._segments = segments
        self._profiles = profiles
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()

    # -- the pipeline ----------------------------------------------------------------

    def parse(self, doc: Any, *, as_of: datetime | None = None) -> Spec:
        """The spec of a JSON document; raises `SpecError` pointing at the bad spot."""
        return parse_spec(doc, as_of=self._as_of(as_of))

    def compile(self, spec: Spec, scope: Scope = EVERYTHING) -> Query:
        """The warehouse query of `spec` over the customers of `scope`; bad segments or filters are a `SpecError`."""
        catalog = self._segments.catalog()
        printer = printer_for(self._warehouse.dialect, catalog)
        within = None if scope.everything else _scope_sql(printer, catalog.relations.customers, scope)

        def members(definition: Condition, as_of: datetime) -> str:
            bound = self._segments.bind(definition)
            return printer.members(plan(bound, as_of, population=catalog.relations.customers))

        return compile_spec(spec, self._warehouse.dialect, catalog, members, within=within)

    def sql(self, doc: Any, *, as_of: datetime | None = None, scope: Scope = EVERYTHING) -> str:
        """The SQL an analysis runs (for review and the console's "show SQL")."""
        return self.compile(self.parse(doc, as_of=as_of), scope).sql()

    def query(self, doc: Any, *, as_of: datetime | None = None, scope: Scope = EVERYTHING) -> AnalysisResult:
        """Run the analysis a JSON spec describes over the customers of `scope` (cached while the data is unchanged)."""
        moment = self._as_of(as_of)
        spec = self.parse(doc, as_of=moment)
        sql = self.compile(spec, scope).sql()
        digest = hashlib.sha256(sql.encode()).hexdigest()
        version = self._warehouse.data_version()
        started = self._clock.monotonic()
        found = self._cached((digest, version))
        cached = found is not None
        if found is None:
            found = shape(spec, self._warehouse.rows(sql))
            self._remember((digest, version), found)
        return AnalysisResult(
            result=found,
            definition_hash=digest,
            data_version=version,
            cached=cached,
            ms=round((self._clock.monotonic() - started) * 1000, 1),
            as_of=moment,
            range_start=spec.range.start,
            range_end=spec.range.end,
        )

    def _as_of(self, as_of: datetime | None) -> datetime:
        return as_utc(as_of) if as_of is not None else self._clock.now()

    def _cached(self, key: tuple[str, str]) -> dict[str, Any] | None:
        with self._lock:
            found = self._cache.get(key)
            if found is None or self._clock.monotonic() - found[0] > self._cache_seconds:
                return None
            self._cache.move_to_end(key)
            return found[1]

    def _remember(self, key: tuple[str, str], result: dict[str, Any]) -> None:
        with self._lock:
            self._cache[key] = (self._clock.monotonic(), result)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    # -- drill-down ----------------------------------------------------------------------

    def customers(
        self,
        doc: Any,
        cell: Mapping[str, Any],
        *,
        as_of: datetime | None = None,
        dropped: bool = False,
        limit: int = 50,
        offset: int = 0,
        scope: Scope = EVERYTHING,
    ) -> CustomerPage:
        """The customers one result cell counts (its `cell` as the result gave it), masked, by cust_no.

        `dropped` (funnels only): the customers of that step who did not reach the next one.
        """
        if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
            raise spec_error("/limit", f"limit must be 1 to {MAX_PAGE} and offset 0 to {MAX_OFFSET}")
        query = self.compile(self.parse(doc, as_of=as_of), scope)
        where = self._cell_where(query, cell, dropped)
        total_rows = self._warehouse.rows(query.count_customers(where))
        total = int(total_rows[0]["customers"]) if total_rows else 0
        listed = self._warehouse.rows(query.customers(where, limit=limit, offset=offset))
        items = [self._hit(str(row["cust_no"]), scope) for row in listed]
        return CustomerPage(total=total, limit=limit, offset=offset, items=items)

    def drill(self, doc: Any, cell: Mapping[str, Any], **options: Any) -> CustomerPage:
        """`customers` for a request body `{"spec", "cell", …}`: pointers into the spec start with `/spec`."""
        try:
            return self.customers(doc, cell, **options)
        except SpecError as error:
            raise SpecError([_under_spec(e) for e in error.errors]) from None

    def timeline(self, cust_no: str, *, limit: int = 20, offset: int = 0, scope: Scope = EVERYTHING) -> TimelinePage:
        """One customer's timeline (the last step of a drill-down); NOT_FOUND outside `scope`."""
        return self._profiles.timeline(cust_no, limit=limit, offset=offset, scope=scope)

    def _cell_where(self, query: Query, cell: Mapping[str, Any], dropped: bool) -> str:
        """The test of `facts` rows of one cell; a path link's cell adds `next`, the event one step on."""
        link = set(query.cells) == {"step", "name"} and "next" in cell
        if set(cell) - ({"next"} if link else set()) != set(query.cells):
            expected = ", ".join(sorted(query.cells))
            raise spec_error("/cell", f"this analysis's cells are named by {expected}; got {', '.join(sorted(cell))}")
        tests = [self._test(name, kind, cell[name]) for name, kind in query.cells.items()]
        if dropped and set(query.cells) != {"grp", "step"}:
            raise spec_error("/dropped", "dropped applies to funnel steps only")
        if dropped or link:
            following = dict(cell) | {"step": self._step(cell) + 1} | ({"name": cell["next"]} if link else {})
            inner = " AND ".join(self._test(name, kind, following[name]) for name, kind in query.cells.items())
            tests.append(f"cust_no {'NOT IN' if dropped else 'IN'} (SELECT cust_no FROM facts WHERE {inner})")
        return " AND ".join(tests)

    def _step(self, cell: Mapping[str, Any]) -> int:
        self._test("step", "int", cell["step"])  # a whole number, or a SpecError
        return int(cell["step"])

    def _test(self, name: str, kind: str, value: Any) -> str:
        if value is None:
            return f"{name} IS NULL"
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise spec_error(f"/cell/{name}", f"expected a whole number, found {value!r}")
            return f"{name} = {value}"
        if not isinstance(value, str):
            raise spec_error(f"/cell/{name}", f"expected a string, found {value!r}")
        return f"{name} = {printer_for(self._warehouse.dialect, DEFAULT_CATALOG).string(value)}"

    def _hit(self, cust_no: str, scope: Scope) -> CustomerHit:
        """The masked search hit of `cust_no`; a customer not yet in the profile shows its number alone."""
        found = self._profiles.search(SearchQuery(cust_no=cust_no, limit=1), scope=scope).items
        if found:
            return found[0]
        return CustomerHit(
            cust_no=cust_no,
            name=None,
            phone=None,
            city=None,
            vip_level=None,
            vip_tier=None,
            risk_tolerance=None,
            branch_id=None,
            rm_id=None,
            aum=0.0,
        )


def _scope_sql(printer: SqlPrinter, customers: str, scope: Scope) -> str:
    """The cust_nos of `scope`: customers of its branches and / or of its RM."""
    tests = []
    if scope.branch_ids is not None:
        branches = ", ".join(printer.string(b) for b in sorted(scope.branch_ids)) or "NULL"
        tests.append(f"branch_id IN ({branches})")
    if scope.rm_id is not None:
        tests.append(f"rm_id = {printer.string(scope.rm_id)}")
    return f"SELECT cust_no FROM {printer.ident(customers)} WHERE {' AND '.join(tests)}"


def _under_spec(error: FieldError) -> FieldError:
    if error.pointer.startswith(_REQUEST_KEYS):
        return error
    return replace(error, pointer="/spec" + error.pointer)


_REQUEST_KEYS = ("/cell", "/dropped", "/limit", "/offset")

__all__ = ["AnalysisResult", "AnalyticsService", "CustomerPage", "SpecError"]
