"""How a dialect spells literals, identifiers, intervals, filtered aggregates and JSON access.

The defaults are standard SQL as DuckDB and PostgreSQL write it; each
dialect's printer overrides what it spells differently.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from marketloop.segments import bound as b
from marketloop.segments.ast import Op
from marketloop.segments.catalog import Catalog, Field

_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
_RESERVED = frozenset({"timestamp", "event", "type", "value", "tag", "user", "order", "group", "offset", "date"})
SQL_OPS = {Op.EQ: "=", Op.NE: "<>", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}


class Spelling:
    """The dialect-specific spelling; `catalog` names the relations and columns."""

    dialect: ClassVar[str] = "sql"
    except_distinct: ClassVar[str] = "EXCEPT"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def ident(self, name: str) -> str:
        return name if _PLAIN.match(name) and name not in _RESERVED else '"' + name.replace('"', '""') + '"'

    def string(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def date(self, day: date) -> str:
        return f"DATE '{day.isoformat()}'"

    def timestamp(self, moment: datetime) -> str:
        return f"TIMESTAMPTZ '{moment.isoformat(sep=' ')}'"

    def number(self, value: int | Decimal) -> str:
        return str(value) if isinstance(value, int) else format(value, "f")

    def boolean(self, value: bool) -> str:
        return "true" if value else "false"

    def interval(self, span: timedelta) -> str:
        return f"INTERVAL {int(span.total_seconds())} SECOND"

    def count_if(self, condition: str) -> str:
        return f"count(*) FILTER (WHERE {condition})"

    def sum_if(self, expression: str, condition: str) -> str:
        return f"sum({expression}) FILTER (WHERE {condition})"

    def json_text(self, column: str, prop: str) -> str:
        """The property as text (strings as they are, other JSON values as their JSON text); NULL when absent."""
        raise NotImplementedError

    def json_number(self, column: str, prop: str) -> str:
        """The property as a double when it is a number or a numeric string; else NULL."""
        raise NotImplementedError

    def literal(self, field: Field, value: b.Value) -> str:
        if isinstance(value, bool):
            return self.boolean(value)
        if isinstance(value, datetime):
            return self.timestamp(value)
        if isinstance(value, date):
            return self.date(value)
        if isinstance(value, int | Decimal):
            return self.number(value)
        if isinstance(value, str):
            return self.string(value)
        raise TypeError(f"{field.name}: fold relative dates before printing ({value!r})")

    def time_range(self, column: str, start: datetime, end: datetime) -> str:
        """`column` in (`start`, `end`]."""
        return f"{column} > {self.timestamp(start)} AND {column} <= {self.timestamp(end)}"
