"""Rule tags as warehouse SQL, through the segment engine's passes and printer (one query per tag, set-based).

- A yes / no tag is the segment's membership query, each member valued "true".
- A value tag is one scan of the population with a CASE over its conditions
  in order, so a customer takes the first matching case's value; customers
  matching no case and no `else` get no row.

Every query returns `cust_no` and `value` (text), as the `TagWarehouse` expects.
"""

from __future__ import annotations

from datetime import datetime

from marketloop.ports.tags import TagQuery
from marketloop.segments.catalog import Catalog
from marketloop.segments.passes import plan
from marketloop.segments.printers import printer_for
from marketloop.segments.printers.base import SqlPrinter
from marketloop.tags.definitions import TRUE, BoundRule


def tag_query(rule: BoundRule, as_of: datetime, dialect: str, catalog: Catalog) -> TagQuery:
    """The SQL of `rule` evaluated at `as_of`, in `dialect`."""
    printer = printer_for(dialect, catalog)
    population = catalog.relations.customers
    if rule.boolean:
        ((condition, _),) = rule.cases
        members = printer.members(plan(condition, as_of, population=population))
        sql = f"SELECT cust_no, {printer.string(TRUE)} AS value FROM (\n{members}\n) AS members"
        return TagQuery(tag=rule.name, sql=sql)
    return TagQuery(tag=rule.name, sql=_cases(rule, as_of, printer, population))


def _cases(rule: BoundRule, as_of: datetime, printer: SqlPrinter, population: str) -> str:
    whens = [
        f"  WHEN {printer.condition(plan(condition, as_of, population=population), 1)} THEN {printer.string(value)}"
        for condition, value in rule.cases
    ]
    otherwise = f"  ELSE {printer.string(rule.otherwise)}\n" if rule.otherwise is not None else ""
    case = "CASE\n" + "\n".join(whens) + "\n" + otherwise + "END"
    valued = f"SELECT c.cust_no AS cust_no, {case} AS value\nFROM {printer.ident(population)} AS c"
    return f"SELECT cust_no, value FROM (\n{valued}\n) AS valued WHERE value IS NOT NULL"
