"""`CustomerLookup` on the DuckDB warehouse: what real-time membership knows of a customer.

For one processor batch, `prepare` looks everything up at once (one query
per kind, never one per event):

- the processor's key (a OneID) -> `cust_no`: the customer whose `cust_no`
  identity holds the (merged) OneID, else the event's `user_id` — the rule of
  the `customer_events` view;
- the `customers` row joined with its `customer_profile` row (cached; the
  cache is dropped when `profile_refreshes` shows a new generation, and
  entries expire after `profile_ttl` so imported changes arrive too, and
  the least recently used go beyond `max_profiles`);
  no `customers` row: not a customer, a member of nothing;
- `customer_tags`, holdings (with their product) and transactions, when a
  watched segment reads them;
- recent events from `customer_events`, back `lookback` before the batch's
  earliest event, merged (by message id) with the events the processor has
  shown this source in the last `retain` seconds: the loader lags the log
  by up to a second, so the newest events are not in the warehouse yet.

`record` then answers per event, in log order, from memory: the customer's
events include every event of the batch up to this one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson

from marketloop.adapters.duckdb_profile_rows import moment
from marketloop.core.events import Event
from marketloop.ports.customer_facts import CustomerRecord, HoldingRow, RecentEvent, TransactionRow

_KEYS_SQL = """
WITH k AS (SELECT unnest($keys) AS one_id),
raw AS (
    SELECT one_id, one_id AS live FROM k
    UNION ALL SELECT r.from_one_id, r.to_one_id FROM identity_redirects AS r JOIN k ON r.to_one_id = k.one_id
)
SELECT raw.live, min(i.id_value) FROM identities AS i JOIN raw ON i.one_id = raw.one_id
WHERE i.id_type = 'cust_no' GROUP BY raw.live
"""
_EVENTS_SQL = """
SELECT cust_no, message_id, event, epoch_us(timestamp), CAST(properties AS VARCHAR) FROM customer_events
WHERE cust_no IN (SELECT unnest($customers)) AND timestamp > $start AND timestamp <= $end
"""
# The relations each kind reads; missing ones (a warehouse before its first import) read as empty.
_NEEDS = {
    "tags": {"customer_tags"},
    "holdings": {"holdings", "products"},
    "transactions": {"transactions"},
    "events": {"customer_events"},
}
_TAGS_SQL = "SELECT cust_no, tag, value FROM customer_tags WHERE cust_no IN (SELECT unnest($customers))"
_HOLDINGS_SQL = """
SELECT h.cust_no, h.product_code, h.balance, h.valid_from, h.valid_to, h.maturity_date, p.product_type, p.risk_level
FROM holdings AS h LEFT JOIN products AS p USING (product_code) WHERE h.cust_no IN (SELECT unnest($customers))
"""
_TRANSACTIONS_SQL = """
SELECT cust_no, epoch_us(ts), amount, direction, counterparty_type, channel, category FROM transactions
WHERE cust_no IN (SELECT unnest($customers)) AND ts > $start AND ts <= $end
"""


class DuckDBCustomerFacts:
    """Customer facts for the stream processor's real-time segments, looked up per batch."""

    def __init__(
        self,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        monotonic: Callable[[], float],
        *,
        retain_seconds: float = 120.0,
        profile_ttl: float = 300.0,
        max_profiles: int = 200_000,
    ) -> None:
        self._cursor = cursor
        self._monotonic = monotonic
        self._retain = retain_seconds
        self._ttl = profile_ttl
        self._max_profiles = max_profiles
        self._lock = threading.Lock()
        self._generation: str | None = None
        # cust_no -> (fetched at, row or None), least recently used first
        self._rows: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        # Events shown to this source recently, per customer, until the loader has surely loaded them.
        self._recent: dict[str, dict[str, RecentEvent]] = {}
        self._recent_order: deque[tuple[float, str, str]] = deque()
        self._customer_of: dict[str, str] = {}
        self._tags: dict[str, dict[str, set[str | None]]] = {}
        self._holdings: dict[str, list[HoldingRow]] = {}
        self._transactions: dict[str, list[TransactionRow]] = {}
        self._loaded: dict[str, dict[str, RecentEvent]] = {}

    # -- per batch --------------------------------------------------------------------------

    def prepare(self, batch: Sequence[tuple[str, Event]], *, lookback: timedelta, kinds: frozenset[str]) -> None:
        """One query per kind for the whole batch; a relation not built yet reads as empty (nobody has tags…)."""
        with self._lock:
            con = self._cursor()
            self._expire()
            relations = _relations(con)
            self._customer_of = self._customers(con, batch, linked="identities" in relations)
            cust_nos = sorted(set(self._customer_of.values()))
            self._refresh_rows(con, cust_nos, relations)
            start = min(e.timestamp for _, e in batch) - lookback
            end = max(e.timestamp for _, e in batch)
            wanted = {kind for kind, relation in _NEEDS.items() if kind in kinds and relation <= relations}
            self._tags = self._read_tags(con, cust_nos) if "tags" in wanted else {}
            self._holdings = self._read_holdings(con, cust_nos) if "holdings" in wanted else {}
            wants_txns = "transactions" in wanted
            self._transactions = self._read_transactions(con, cust_nos, start, end) if wants_txns else {}
            self._loaded = self._read_events(con, cust_nos, start, end) if "events" in wanted else {}

    @staticmethod
    def _customers(
        con: duckdb.DuckDBPyConnection, batch: Sequence[tuple[str, Event]], *, linked: bool
    ) -> dict[str, str]:
        """Each key's cust_no: its OneID's cust_no identity, else the event's user_id (as `customer_events`)."""
        keys = sorted({key for key, _ in batch})
        rows = con.execute(_KEYS_SQL, {"keys": keys}).fetchall() if linked else []
        found = {str(live): str(cust_no) for live, cust_no in rows}
        for key, event in batch:
            if key not in found and event.user_id:
                found[key] = event.user_id
        return found

    def _refresh_rows(self, con: duckdb.DuckDBPyConnection, cust_nos: list[str], relations: set[str]) -> None:
        generation = self._profile_generation(con) if "profile_refreshes" in relations else None
        if generation != self._generation:
            self._rows.clear()
            self._generation = generation
        now = self._monotonic()
        missing = [c for c in cust_nos if c not in self._rows or now - self._rows[c][0] > self._ttl]
        for cust_no in cust_nos:
            if cust_no in self._rows:
                self._rows.move_to_end(cust_no)
        if not missing:
            return
        rows: dict[str, dict[str, Any] | None] = dict.fromkeys(missing)
        if "customers" in relations:
            rows.update(_fetch_rows(con, missing, profile="customer_profile" in relations))
        for cust_no, row in rows.items():
            self._rows[cust_no] = (now, row)
            self._rows.move_to_end(cust_no)
        while len(self._rows) > max(self._max_profiles, len(cust_nos)):
            self._rows.popitem(last=False)

    @staticmethod
    def _profile_generation(con: duckdb.DuckDBPyConnection) -> str | None:
        found = con.execute("SELECT generation FROM profile_refreshes ORDER BY refreshed_at DESC LIMIT 1").fetchone()
        return None if found is None else str(found[0])

    def _read_tags(self, con: duckdb.DuckDBPyConnection, cust_nos: list[str]) -> dict[str, dict[str, set[str | None]]]:
        found: dict[str, dict[str, set[str | None]]] = {}
        for cust_no, tag, value in con.execute(_TAGS_SQL, {"customers": cust_nos}).fetchall():
            found.setdefault(str(cust_no), {}).setdefault(str(tag), set()).add(value)
        return found

    def _read_holdings(self, con: duckdb.DuckDBPyConnection, cust_nos: list[str]) -> dict[str, list[HoldingRow]]:
        found: dict[str, list[HoldingRow]] = {}
        for cust_no, code, balance, valid_from, valid_to, maturity, kind, risk in con.execute(
            _HOLDINGS_SQL, {"customers": cust_nos}
        ).fetchall():
            found.setdefault(str(cust_no), []).append(
                HoldingRow(
                    product_code=code,
                    balance=balance,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    maturity_date=maturity,
                    product_type=kind,
                    risk_level=risk,
                )
            )
        return found

    def _read_transactions(
        self, con: duckdb.DuckDBPyConnection, cust_nos: list[str], start: datetime, end: datetime
    ) -> dict[str, list[TransactionRow]]:
        found: dict[str, list[TransactionRow]] = {}
        window = {"customers": cust_nos, "start": start, "end": end}
        for cust_no, ts, amount, direction, counterparty, channel, category in con.execute(
            _TRANSACTIONS_SQL, window
        ).fetchall():
            at = moment(ts)
            assert at is not None
            found.setdefault(str(cust_no), []).append(
                TransactionRow(
                    ts=at,
                    amount=amount,
                    direction=direction,
                    counterparty_type=counterparty,
                    channel=channel,
                    category=category,
                )
            )
        return found

    def _read_events(
        self, con: duckdb.DuckDBPyConnection, cust_nos: list[str], start: datetime, end: datetime
    ) -> dict[str, dict[str, RecentEvent]]:
        found: dict[str, dict[str, RecentEvent]] = {}
        window = {"customers": cust_nos, "start": start, "end": end}
        for cust_no, message_id, name, ts, properties in con.execute(_EVENTS_SQL, window).fetchall():
            at = moment(ts)
            assert at is not None
            found.setdefault(str(cust_no), {})[str(message_id)] = RecentEvent(
                message_id=str(message_id),
                event=name,
                timestamp=at,
                properties=orjson.loads(properties) if properties else {},
            )
        return found

    def _expire(self) -> None:
        limit = self._monotonic() - self._retain
        order, recent = self._recent_order, self._recent
        while order and order[0][0] < limit:
            _, cust_no, message_id = order.popleft()
            events = recent.get(cust_no)
            if events is not None:
                events.pop(message_id, None)
                if not events:
                    del recent[cust_no]

    # -- per event ----------------------------------------------------------------------------

    def record(
        self, customer: str, event: Event, *, lookback: timedelta, kinds: frozenset[str]
    ) -> CustomerRecord | None:
        with self._lock:
            cust_no = self._customer_of.get(customer) or event.user_id
            if cust_no is None:
                return None
            self._remember(cust_no, event)
            row = self._rows.get(cust_no)
            if row is None or row[1] is None:
                return None
            return CustomerRecord(
                cust_no=cust_no,
                attributes=row[1],
                tags={t: frozenset(v) for t, v in self._tags.get(cust_no, {}).items()},
                holdings=self._holdings.get(cust_no, ()),
                transactions=self._transactions.get(cust_no, ()),
                events=self._events(cust_no, event.timestamp - lookback) if "events" in kinds else (),
            )

    def _remember(self, cust_no: str, event: Event) -> None:
        events = self._recent.setdefault(cust_no, {})
        if event.message_id not in events:
            events[event.message_id] = RecentEvent(
                message_id=event.message_id, event=event.event, timestamp=event.timestamp, properties=event.properties
            )
            self._recent_order.append((self._monotonic(), cust_no, event.message_id))

    def _events(self, cust_no: str, start: datetime) -> tuple[RecentEvent, ...]:
        merged = {**self._loaded.get(cust_no, {}), **self._recent.get(cust_no, {})}
        return tuple(e for e in merged.values() if e.timestamp > start)


def _row(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """customers then customer_profile columns: a profile value replaces the customer's unless it is NULL."""
    row: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        if value is not None or name not in row:
            row[name] = value
    row["cust_no"] = values[0]
    return row


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables and views of the warehouse (one catalog query)."""
    query = "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()"
    return {str(r[0]) for r in con.execute(query).fetchall()}


def _fetch_rows(con: duckdb.DuckDBPyConnection, cust_nos: list[str], *, profile: bool) -> dict[str, dict[str, Any]]:
    """customers rows joined with their customer_profile rows, by cust_no."""
    query = (
        "SELECT c.*, p.* FROM customers AS c LEFT JOIN customer_profile AS p ON p.cust_no = c.cust_no"
        if profile
        else "SELECT c.* FROM customers AS c"
    ) + " WHERE c.cust_no IN (SELECT unnest($customers))"
    result = con.execute(query, {"customers": cust_nos})
    names = [d[0] for d in result.description or ()]
    return {str(values[0]): _row(names, values) for values in result.fetchall()}
