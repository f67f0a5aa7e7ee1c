"""Custom profile attributes (自定义属性) in the warehouse: fields a journey writes onto a customer's profile.

`customer_attributes` holds each customer's current value per attribute,
`customer_attribute_history` every value with the time it held (valid_from,
valid_to), so a report can ask what a customer's field said at a moment. A
journey's `update` step with `field` writes here (through the outbox: once per
touch key, and the same value again changes nothing); the 360° profile shows
the current values. Names are lower-case identifiers; values are text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime

import duckdb

from marketloop.adapters.duckdb_changes import in_transaction, mark_changed
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.journeys import FIELD_NAME

NAME = re.compile(FIELD_NAME)
MAX_VALUE = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_attributes (
    cust_no VARCHAR NOT NULL, name VARCHAR NOT NULL, value VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cust_no, name)
);
CREATE TABLE IF NOT EXISTS customer_attribute_history (
    cust_no VARCHAR NOT NULL, name VARCHAR NOT NULL, value VARCHAR NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL, valid_to TIMESTAMPTZ
);
"""


def _invalid(code: str, title: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=f"attributes.{code}", title=title)


def _write(con: duckdb.DuckDBPyConnection, name: str, cust_no: str, value: str | None, at: datetime) -> None:
    """Close the current value's history row, replace the current value (None: none)."""
    con.execute("DELETE FROM customer_attributes WHERE cust_no = ? AND name = ?", [cust_no, name])
    con.execute(
        "UPDATE customer_attribute_history SET valid_to = ? WHERE cust_no = ? AND name = ? AND valid_to IS NULL",
        [at, cust_no, name],
    )
    if value is not None:
        con.execute("INSERT INTO customer_attributes VALUES (?, ?, ?, ?)", [cust_no, name, value, at])
        con.execute("INSERT INTO customer_attribute_history VALUES (?, ?, ?, ?, NULL)", [cust_no, name, value, at])
    mark_changed(con, "customer_attributes", "customer_attribute_history")


class DuckDBProfileAttributes:
    """Read and write custom profile attributes (the journeys' `AttributeWriter`, the profile's reader)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        with write_lock:
            self._cursor().execute(_SCHEMA)

    def set_attribute(self, name: str, cust_no: str, value: str | None, *, at: datetime) -> bool:
        """Set (None: remove) one customer's value of attribute `name`; whether it changed.

        `MarketloopError` (INVALID) for a name that is no lower-case identifier, a value over 1,000
        characters or an unknown customer."""
        if not NAME.fullmatch(name):
            raise _invalid("bad-name", f"{name!r} is no attribute name (lower-case letters, digits, _; 64 at most)")
        if value is not None and len(value) > MAX_VALUE:
            raise _invalid("too-long", f"a value of {name} is at most {MAX_VALUE} characters")
        with self._write_lock:
            con = self._cursor()
            if con.execute("SELECT 1 FROM customers WHERE cust_no = ?", [cust_no]).fetchone() is None:
                raise _invalid("unknown-customer", f"{cust_no!r} is not a customer")
            row = con.execute(
                "SELECT value FROM customer_attributes WHERE cust_no = ? AND name = ?", [cust_no, name]
            ).fetchone()
            if (row[0] if row else None) == value:
                return False
            in_transaction(con, lambda: _write(con, name, cust_no, value, at))
        return True

    def attributes_of(self, cust_no: str) -> dict[str, str]:
        """The customer's current attribute values, by name."""
        rows = (
            self._cursor()
            .execute("SELECT name, value FROM customer_attributes WHERE cust_no = ? ORDER BY name", [cust_no])
            .fetchall()
        )
        return {str(name): str(value) for name, value in rows}

    def history(self, cust_no: str, name: str) -> list[tuple[str, datetime, datetime | None]]:
        """Every value the customer's attribute held: (value, from, to), oldest first."""
        rows = (
            self._cursor()
            .execute(
                "SELECT value, valid_from AT TIME ZONE 'UTC', valid_to AT TIME ZONE 'UTC' "
                "FROM customer_attribute_history WHERE cust_no = ? AND name = ? ORDER BY valid_from",
                [cust_no, name],
            )
            .fetchall()
        )
        return [(str(value), as_utc(start), None if end is None else as_utc(end)) for value, start, end in rows]
