"""The shape every analysis query shares: named steps (CTEs), a `facts` step, and the final aggregation.

`facts` holds one row per (customer, result cell): the cell's coordinates
as columns beside `cust_no`. The result aggregates it; a drill-down selects
the distinct `cust_no`s of one cell from it. So a cell's customer list is
always exactly the customers its number counts.

Event rows keep the catalog's column names (`catalog.events`), so the segment
printer's event matches and JSON access read them unchanged; segment
restrictions are the segment printer's membership SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from marketloop.analytics.dialects import Dialect
from marketloop.analytics.spec import Common, GroupBy
from marketloop.segments import bound as b
from marketloop.segments.ast import Condition, DidEvent, EventStep
from marketloop.segments.catalog import Catalog
from marketloop.segments.passes import plan
from marketloop.segments.resolve import resolve

CellKind = Literal["text", "int"]
# The membership SQL (one `cust_no` column) of a segment definition evaluated at a moment.
MembersSql = Callable[[Condition, datetime], str]
MESSAGE_ID = "message_id"  # the events' unique id, used to order events of the same instant


@dataclass(frozen=True, kw_only=True)
class Query:
    """One analysis as SQL: `steps` (name, body) in order, then the final `select`, reading `facts`."""

    steps: tuple[tuple[str, str], ...]
    select: str
    cells: Mapping[str, CellKind]  # the columns of `facts` that name a result cell
    suffix: str = ""  # dialect settings, after everything

    def sql(self) -> str:
        return self._with(self.select)

    def _with(self, body: str) -> str:
        steps = ",\n".join(f"{name} AS (\n  {text}\n)" for name, text in self.steps)
        return f"WITH {steps}\n{body}{self.suffix}"

    def customers(self, where: str, *, limit: int, offset: int) -> str:
        """The customers of one cell (`where` tests `facts`' columns), by cust_no, one page."""
        body = f"SELECT DISTINCT cust_no FROM facts WHERE {where}\nORDER BY cust_no LIMIT {limit} OFFSET {offset}"
        return self._with(body)

    def count_customers(self, where: str) -> str:
        return self._with(f"SELECT count(DISTINCT cust_no) AS customers FROM facts WHERE {where}")


class Builder:
    """Helpers over one dialect and catalog that every model's compiler uses."""

    def __init__(
        self, dialect: Dialect, catalog: Catalog, members: MembersSql | None = None, *, within: str | None = None
    ) -> None:
        self.within = within  # SQL of the cust_nos the caller may see (data scope); None: everyone
        self.d = dialect
        self.p = dialect.printer
        self.catalog = catalog
        self.members_sql: MembersSql = members or self._own_members
        events = catalog.events
        self.customer, self.time = self.p.ident(events.customer), self.p.ident(events.time)
        self.name, self.props = self.p.ident(events.name), self.p.ident(events.properties)
        self.relation, self.mid = self.p.ident(events.relation), self.p.ident(MESSAGE_ID)

    def _own_members(self, definition: Condition, as_of: datetime) -> str:
        bound = resolve(definition, self.catalog)
        return self.p.members(plan(bound, as_of, population=self.catalog.relations.customers))

    def match(self, step: EventStep) -> str:
        """The SQL test of one event step (name and property filters), as segments print it."""
        probe = DidEvent(event=step.event, where=step.where, within=timedelta(days=1), pos=step.pos)
        found = resolve(probe, self.catalog)
        assert isinstance(found, b.EventCount)
        return self.p.event_match(found.match)

    def events(self, spec: Common, *, start: datetime, end: datetime, names: tuple[str, ...] = ()) -> str:
        """The events of the spec's customers (segment restriction applied) with `start <= time < end`."""
        where = [
            f"{self.time} >= {self.p.timestamp(start)}",
            f"{self.time} < {self.p.timestamp(end)}",
            f"{self.customer} IS NOT NULL",
        ]
        if names:
            where.append(f"{self.name} IN ({', '.join(self.p.string(n) for n in sorted(set(names)))})")
        if self.within is not None:
            where.append(f"{self.customer} IN ({self.within})")
        if spec.segment is not None:
            inner = self.members_sql(spec.segment, spec.range.end).replace("\n", "\n    ")
            where.append(f"{self.customer} IN (\n    {inner}\n  )")
        columns = ", ".join((self.customer, self.time, self.name, self.props, self.mid))
        return f"SELECT {columns}\n  FROM {self.relation}\n  WHERE " + "\n    AND ".join(where)

    def numbered(self, source: str) -> str:
        """`source`'s rows with `rn`: each customer's events numbered 1, 2, … in time order."""
        order = f"PARTITION BY {self.customer} ORDER BY {self.time}, {self.mid}"
        return f"SELECT *, row_number() OVER ({order}) AS rn FROM {source}"

    def group_value(self, group: GroupBy | None, alias: str = "") -> str:
        """The text a row is grouped by: an event property, or (joined by `group_join`) a customer field."""
        if group is None:
            return "'all'"
        if group.property is not None:
            return self.p.json_text(alias + self.props, group.property)
        return self.d.text("g.value")

    def group_join(self, group: GroupBy | None, customer: str) -> str:
        """The join bringing a customer field as `g.value` (nothing for an event property or no grouping)."""
        if group is None or group.field is None:
            return ""
        field = self.catalog.field(group.field)
        assert field is not None, "checked by the compiler"
        column = self.p.ident(field.column)
        source = f"SELECT cust_no, {column} AS value FROM {self.p.ident(field.relation)}"
        return f"\n  LEFT JOIN ({source}) AS g ON g.cust_no = {customer}"

    def literal(self, value: str | int | None, kind: CellKind) -> str:
        if value is None:
            return "NULL"
        return str(int(value)) if kind == "int" else self.p.string(str(value))
