"""How profile rows come out of DuckDB: the packed row document, time values, search conditions.

DuckDB reads a row column by column, and each column costs a vector decode
(~70 µs); a 360° lookup needs all ~85 columns. So each refresh also packs a
customer's whole row into one text column, `profile_doc`: every value as
text in column order, separated by U+001F, NULL as U+001E, list items
separated by U+001D, numbers as integers (money in cents, dates as epoch
days, times as epoch microseconds) so that packing casts no floats or time
zones. A lookup reads that one column and unpacks it with the column types
recorded at refresh. A value holding a separator would shift the fields, so
a document with the wrong number of fields is not trusted: the typed
columns are read instead.

Times cross as epoch microseconds, so no time-zone package is needed to
turn TIMESTAMPTZ into Python datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import orjson

from marketloop.ports.profiles import ProfileFilter, ProfileRow, ProfileRules, TimelineEvent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
FIELD, NULL, ITEM = "\x1f", "\x1e", "\x1d"
DOC = "profile_doc"
TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
_DECIMAL = re.compile(r"^DECIMAL\(\d+,\s*(\d+)\)$")


def moment(epoch_us: int | None) -> datetime | None:
    return None if epoch_us is None else EPOCH + timedelta(microseconds=int(epoch_us))


def _as_text(kind: str, column: str) -> str:
    """SQL turning `column` of DuckDB type `kind` into its packed text."""
    decimal = _DECIMAL.match(kind)
    if decimal:
        return f"CAST(CAST({column} * {10 ** int(decimal.group(1))} AS BIGINT) AS VARCHAR)"
    packed = {
        "VARCHAR": column,
        "VARCHAR[]": f"array_to_string({column}, chr(29))",
        "DATE": f"CAST(date_diff('day', DATE '1970-01-01', {column}) AS VARCHAR)",
        TIMESTAMPTZ: f"CAST(epoch_us({column}) AS VARCHAR)",
        "BOOLEAN": f"CAST(CAST({column} AS INTEGER) AS VARCHAR)",
    }
    return packed.get(kind, f"CAST({column} AS VARCHAR)")


def _reader(kind: str) -> Callable[[str], Any]:
    """The Python value of one packed text of DuckDB type `kind`."""
    decimal = _DECIMAL.match(kind)
    if decimal:
        scale = 10 ** int(decimal.group(1))
        return lambda text: int(text) / scale
    readers: dict[str, Callable[[str], Any]] = {
        "VARCHAR": str,
        "VARCHAR[]": lambda text: text.split(ITEM) if text else [],
        "DATE": lambda text: date.fromordinal(EPOCH_ORDINAL + int(text)),
        TIMESTAMPTZ: lambda text: EPOCH + timedelta(microseconds=int(text)),
        "BOOLEAN": lambda text: text == "1",
        "DOUBLE": float,
        "FLOAT": float,
    }
    return readers.get(kind, int)


@dataclass(frozen=True)
class RowPacking:
    """The columns of a profile table and their types, in order: packs rows at refresh, unpacks at lookup."""

    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection, relation: str) -> RowPacking:
        """The packing of `relation` (a table name or a parenthesised query), minus any packed document."""
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        return cls(tuple((str(name), str(kind)) for name, kind, *_ in described if name != DOC))

    def expression(self) -> str:
        parts = (f"coalesce({_as_text(kind, name)}, chr(30))" for name, kind in self.columns)
        return f"concat_ws(chr(31), {', '.join(parts)})"

    def unpack(self, doc: str) -> dict[str, Any] | None:
        """The row packed in `doc`, or None when it does not have one field per column."""
        fields = doc.split(FIELD)
        if len(fields) != len(self.columns):
            return None
        return {
            name: None if text == NULL else _reader(kind)(text)
            for (name, kind), text in zip(self.columns, fields, strict=True)
        }

    def typed_select(self, relation: str) -> str:
        """A SELECT of the typed columns with times as epoch microseconds (the fallback read)."""
        parts = (f"epoch_us({n}) AS {n}" if kind == TIMESTAMPTZ else n for n, kind in self.columns)
        return f"SELECT {', '.join(parts)} FROM {relation}"

    def typed_row(self, relation: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
        """The next row of a `typed_select`, with times as datetimes."""
        row = relation.fetchone()
        if row is None:
            return None
        found = dict(zip((n for n, _ in self.columns), row, strict=True))
        for name, kind in self.columns:
            if kind == TIMESTAMPTZ:
                found[name] = moment(found[name])
        return found


def platform_of(names: list[str | None], rules: ProfileRules) -> str | None:
    """The platform rule `duckdb_profile_sql.platform_case` applies in SQL, for a few events in Python.

    `names` are the event's `PLATFORM_NAMES`; the first present one, lower-cased,
    belongs to the first platform one of whose markers it contains.
    """
    raw = next((n for n in names if n is not None), "").lower()
    return next((r.platform for r in rules.platforms if any(m in raw for m in r.markers)), None)


def timeline_event(r: tuple[Any, ...], rules: ProfileRules) -> TimelineEvent:
    """A row of (epoch_us ts, message_id, type, event, platform, source, properties JSON, platform names or NULL)."""
    return TimelineEvent(
        timestamp=moment(r[0]) or EPOCH,
        message_id=r[1],
        type=r[2],
        event=r[3],
        platform=platform_of(r[7], rules) if r[7] is not None else r[4],
        source=r[5],
        properties=orjson.loads(r[6]) if r[6] else {},
    )


ROW_COLUMNS = (
    "cust_no, name_enc, phone_enc, name_prefix, city, vip_level, vip_tier, risk_tolerance, branch_id, rm_id, aum"
)


def profile_row(r: tuple[Any, ...]) -> ProfileRow:
    """A row of `ROW_COLUMNS` as a search hit."""
    return ProfileRow(
        cust_no=r[0],
        name_enc=r[1],
        phone_enc=r[2],
        name_prefix=r[3],
        city=r[4],
        vip_level=r[5],
        vip_tier=r[6],
        risk_tolerance=r[7],
        branch_id=r[8],
        rm_id=r[9],
        aum=float(r[10] or 0),
    )


def _within(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join('?' for _ in values)})"


def conditions(where: ProfileFilter, *, within: Sequence[str] | None = None) -> tuple[str, list[Any]]:
    """The WHERE clause of a search on the profile table, and its parameters; `within` limits the cust_nos."""
    parts: list[str] = [_within("cust_no", within)] if within is not None else []
    params: list[Any] = list(within or ())
    equal = {
        "cust_no": where.cust_no,
        "phone_hash": where.phone_hash,
        "city": where.city,
        "coalesce(vip_level, vip_tier)": where.vip_level,  # the bank's level, else the AUM tier
        "risk_tolerance": where.risk_tolerance,
        "branch_id": where.branch_id,
        "rm_id": where.rm_id,
    }
    for column, value in equal.items():
        if value is not None:
            parts.append(f"{column} = ?")
            params.append(value)
    names = _name_condition(where)
    if names is not None:
        parts.append(names[0])
        params.extend(names[1])
    for op, bound in ((">=", where.min_aum), ("<=", where.max_aum)):
        if bound is not None:
            parts.append(f"aum {op} ?")
            params.append(bound)
    if where.scope_branch_ids is not None:
        parts.append(_within("branch_id", where.scope_branch_ids) if where.scope_branch_ids else "false")
        params.extend(where.scope_branch_ids)
    if where.scope_rm_id is not None:
        parts.append("rm_id = ?")
        params.append(where.scope_rm_id)
    return " AND ".join(parts) or "true", params


def _name_condition(where: ProfileFilter) -> tuple[str, list[Any]] | None:
    options: list[str] = []
    params: list[Any] = []
    if where.family_names:
        options.append(_within("name_prefix", where.family_names))
        params.extend(where.family_names)
    if where.family_name_prefix is not None:
        options.append("starts_with(name_prefix, ?)")
        params.append(where.family_name_prefix)
    if where.named_cust_nos:
        options.append(_within("cust_no", where.named_cust_nos))
        params.extend(where.named_cust_nos)
    return ("(" + " OR ".join(options) + ")", params) if options else None
