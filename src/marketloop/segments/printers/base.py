"""Syntax: a planned tree printed as SQL. The shape is shared; each dialect overrides its spelling.

Membership SQL is `SELECT c.cust_no FROM customers AS c WHERE …`: field
tests of the population are tested on `c`, every other condition is
`c.cust_no IN (subquery)`. A negation is printed `NOT coalesce(x, false)`,
so NULLs read as false exactly as `evaluate` reads them. Which relation,
column and time column to use comes from the catalog; nothing here decides
what a condition means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marketloop.segments import bound as b
from marketloop.segments.catalog import Catalog
from marketloop.segments.passes.fold import maturity_end
from marketloop.segments.printers.events import EventScans
from marketloop.segments.printers.spelling import SQL_OPS

PAD = "  "


class SqlPrinter(EventScans):
    """Prints planned trees (`passes.plan`) as one dialect's SQL."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self._printers: dict[type[b.Bound], Callable[[Any, int], str]] = {
            b.AllOf: lambda n, d: self._junction(n.parts, "AND", d),
            b.AnyOf: lambda n, d: self._junction(n.parts, "OR", d),
            b.Negation: lambda n, d: f"NOT coalesce({self.condition(n.part, d)}, false)",
            b.Constant: lambda n, _: "true" if n.value else "false",
            b.AttrScan: lambda n, d: self._in(self._attr_lines(n), d),
            b.TagIn: lambda n, d: self._in(self._tag_lines(n), d),
            b.HoldingTest: lambda n, d: self._in(self._holding_lines(n), d),
            b.AggregateScan: lambda n, d: self._in(self.aggregate_lines(n), d),
            b.EventSequence: lambda n, d: self._in(self.sequence_lines(n), d),
            b.EventAbsence: lambda n, d: self._in(self.absence_lines(n), d),
        }

    def members(self, node: b.Bound) -> str:
        """One row per member: `cust_no`."""
        return f"SELECT c.cust_no\nFROM {self._population()} AS c\nWHERE {self.condition(node, 0)}"

    def count(self, node: b.Bound) -> str:
        """One row, one column `customers`: how many members."""
        return f"SELECT count(*) AS customers\nFROM {self._population()} AS c\nWHERE {self.condition(node, 0)}"

    def condition(self, node: b.Bound, depth: int) -> str:
        printer = self._printers.get(type(node))
        return self.field_test(node, "c.") if printer is None else printer(node, depth)

    def _population(self) -> str:
        return self.ident(self.catalog.relations.customers)

    def _junction(self, parts: tuple[b.Bound, ...], word: str, depth: int) -> str:
        joined = f"\n{PAD * (depth + 1)}{word} ".join(self.condition(p, depth + 1) for p in parts)
        return f"({joined})" if depth else joined

    def _in(self, lines: list[str], depth: int) -> str:
        inner = "".join(f"\n{PAD * (depth + 2)}{line}" for line in lines)
        return f"c.cust_no IN ({inner}\n{PAD * (depth + 1)})"

    # -- field tests -----------------------------------------------------------------

    def field_test(self, node: b.Bound, prefix: str) -> str:
        if isinstance(node, b.AllOf | b.AnyOf):
            word = " AND " if isinstance(node, b.AllOf) else " OR "
            return "(" + word.join(self.field_test(p, prefix) for p in node.parts) + ")"
        if isinstance(node, b.Negation):
            return f"NOT coalesce({self.field_test(node.part, prefix)}, false)"
        if isinstance(node, b.Constant):
            return self.boolean(node.value)
        return self._field_leaf(node, prefix)

    def _field_leaf(self, node: b.Bound, prefix: str) -> str:
        if isinstance(node, b.FieldCompare):
            column = prefix + self.ident(node.field.column)
            return f"{column} {SQL_OPS[node.op]} {self.literal(node.field, node.value)}"
        if isinstance(node, b.FieldIn):
            values = ", ".join(self.literal(node.field, v) for v in node.values)
            return f"{prefix}{self.ident(node.field.column)} IN ({values})"
        if isinstance(node, b.FieldBetween):
            low, high = self.literal(node.field, node.low), self.literal(node.field, node.high)
            return f"{prefix}{self.ident(node.field.column)} BETWEEN {low} AND {high}"
        if isinstance(node, b.FieldIsNull):
            return f"{prefix}{self.ident(node.field.column)} IS NULL"
        raise TypeError(f"cannot print {type(node).__name__}")

    def _attr_lines(self, node: b.AttrScan) -> list[str]:
        return [f"SELECT cust_no FROM {self.ident(node.relation)}", f"WHERE {self.field_test(node.condition, '')}"]

    def _tag_lines(self, node: b.TagIn) -> list[str]:
        where = f"{self.ident('tag')} = {self.string(node.tag)}"
        if node.values:
            where += f" AND {self.ident('value')} IN ({', '.join(self.string(v) for v in node.values)})"
        return [f"SELECT cust_no FROM {self.ident(self.catalog.relations.tags)}", f"WHERE {where}"]

    # -- holdings --------------------------------------------------------------------

    def _holding_lines(self, node: b.HoldingTest) -> list[str]:
        relations = self.catalog.relations
        if node.on is None:
            raise ValueError("fold the definition against as_of first")
        day = self.date(node.on)
        source = f"SELECT h.cust_no FROM {self.ident(relations.holdings)} AS h"
        if node.needs_products:
            source += f" JOIN {self.ident(relations.products)} AS p ON p.product_code = h.product_code"
        where = [f"h.valid_from <= {day}", f"(h.valid_to IS NULL OR h.valid_to >= {day})", "h.balance > 0"]
        lines = [source, "WHERE " + " AND ".join(where + self._holding_filters(node))]
        having = [f"sum(h.balance) >= {self.number(node.min_balance)}"] if node.min_balance is not None else []
        having += [f"sum(h.balance) <= {self.number(node.max_balance)}"] if node.max_balance is not None else []
        if having:
            lines += ["GROUP BY h.cust_no", "HAVING " + " AND ".join(having)]
        return lines

    def _holding_filters(self, node: b.HoldingTest) -> list[str]:
        columns = [("p.product_type", node.product_type), ("h.product_code", node.product_code)]
        columns.append(("p.risk_level", node.risk_level))
        found = [f"{column} = {self.string(value)}" for column, value in columns if value is not None]
        if node.maturing_days is not None and node.on is not None:
            last = self.date(maturity_end(node.on, node.maturing_days))
            found.append(f"h.maturity_date BETWEEN {self.date(node.on)} AND {last}")
        return found
