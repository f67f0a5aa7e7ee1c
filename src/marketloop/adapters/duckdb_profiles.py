"""`ProfileStore` on DuckDB: the materialised `customer_profile` and `customer_timeline`, their reads and search.

Each refresh builds a new generation of both tables (`customer_profile_a` /
`_b`, likewise the timeline) beside the live one, in its own transaction so
the event loader is not blocked, then points the views `customer_profile` and
`customer_timeline` at it in one short commit: readers never see a half-built
profile. The profile is sorted by cust_no (primary key) with an index on
`phone_hash` and carries each row packed into one column for lookups (see
`duckdb_profile_rows`); the timeline keeps each customer's latest
`timeline_depth` events sorted by customer, and events loaded after the
refresh (`load_seq` above its watermark) are read live.

This process's reads go to the live generation's tables directly (it knows
which one it is); other readers (segments, SQL users) use the views.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb

from marketloop.adapters import duckdb_profile_rows as rows
from marketloop.adapters import duckdb_profile_sql as q
from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.adapters.duckdb_changes import mark_changed
from marketloop.ports.profiles import (
    ProfileFilter,
    ProfileRow,
    ProfileRules,
    RefreshProgress,
    RefreshResult,
    RefreshState,
    TimelineEvent,
)

STATE_DDL = """
CREATE TABLE IF NOT EXISTS profile_refreshes (
    refreshed_at TIMESTAMPTZ NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    generation VARCHAR NOT NULL,
    customers BIGINT NOT NULL,
    timeline_events BIGINT NOT NULL,
    event_watermark BIGINT NOT NULL,
    seconds DOUBLE NOT NULL
)
"""
# The steps of a refresh, each one SQL statement filled in by `_build`.
BUILD_STEPS: tuple[tuple[str, str], ...] = (
    ("link events to customers", "CREATE OR REPLACE TEMP TABLE profile_events AS {events}"),
    ("clear the previous generation", "DROP TABLE IF EXISTS {profile}; DROP TABLE IF EXISTS {timeline}"),
    (
        "compute the profiles",
        "CREATE TABLE {profile} AS SELECT *, {doc} AS profile_doc FROM ({select}) ORDER BY cust_no",
    ),
    ("index customer numbers", "ALTER TABLE {profile} ADD PRIMARY KEY (cust_no)"),
    ("index phone hashes", "CREATE INDEX {profile}_phone ON {profile} (phone_hash)"),
    (
        "keep the latest events",
        "CREATE TABLE {timeline} AS SELECT cust_no, ts, message_id, type, event, platform, source, properties "
        "FROM profile_events QUALIFY row_number() OVER (PARTITION BY cust_no ORDER BY ts DESC, message_id DESC) "
        "<= {depth} ORDER BY cust_no, ts DESC, message_id DESC",
    ),
)
TIMELINE_COLUMNS = "epoch_us(ts) AS ts, message_id, type, event, platform, source, properties"
LAST_REFRESH = (
    "SELECT generation, epoch_us(as_of), epoch_us(refreshed_at), customers, event_watermark "
    "FROM profile_refreshes ORDER BY refreshed_at DESC LIMIT 1"
)


@dataclass(frozen=True, kw_only=True)
class Live:
    """The generation readers use, the last event it includes, and how its rows are packed."""

    generation: str
    watermark: int
    packing: rows.RowPacking

    @property
    def profile(self) -> str:
        return f"customer_profile_{self.generation}"

    @property
    def timeline(self) -> str:
        return f"customer_timeline_{self.generation}"


class DuckDBProfileStore:
    """The `ProfileStore` port on the warehouse's DuckDB database (one cursor per call)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        self._refresh_lock = threading.Lock()
        self._live: Live | None = None  # None until a refresh is found or done
        self._one_id = False  # the OneID tables exist (once they do, they stay)
        cursor().execute(STATE_DDL)
        cursor().execute(CHANGES_SCHEMA)

    # -- refresh -----------------------------------------------------------------

    def refresh(self, as_of: datetime, rules: ProfileRules, progress: RefreshProgress | None = None) -> RefreshResult:
        started = time.monotonic()
        report = progress or _silent
        steps = len(BUILD_STEPS) + 1
        with self._refresh_lock:
            con = self._cursor()
            last = con.execute(LAST_REFRESH).fetchone()
            generation = "b" if last is not None and last[0] == "a" else "a"
            watermark, customers, timeline_events = self._build(con, generation, as_of, rules, report)
            seconds = time.monotonic() - started
            report("publish", steps - 1, steps)
            with self._write_lock:
                _transaction(
                    con,
                    f"CREATE OR REPLACE VIEW customer_profile AS SELECT * EXCLUDE (profile_doc) "
                    f"FROM customer_profile_{generation}",
                    f"CREATE OR REPLACE VIEW customer_timeline AS SELECT * FROM customer_timeline_{generation}",
                    (
                        "INSERT INTO profile_refreshes VALUES (now(), ?, ?, ?, ?, ?, ?)",
                        [as_of, generation, customers, timeline_events, watermark, seconds],
                    ),
                    lambda: mark_changed(con, "customer_profile", "customer_timeline"),
                )
            self._live = _live(con, generation, watermark)
            report("done", steps, steps)
        return RefreshResult(
            as_of=as_of,
            customers=customers,
            timeline_events=timeline_events,
            event_watermark=watermark,
            seconds=seconds,
        )

    def _build(
        self, con: duckdb.DuckDBPyConnection, gen: str, as_of: datetime, rules: ProfileRules, report: RefreshProgress
    ) -> tuple[int, int, int]:
        """Build generation `gen` of both tables from one snapshot; returns (watermark, customers, timeline rows)."""
        profile, timeline = f"customer_profile_{gen}", f"customer_timeline_{gen}"
        con.execute("BEGIN")
        try:
            watermark = _scalar(con, "SELECT coalesce(max(load_seq), 0) FROM events")
            one_id = self._has_one_id(con)
            fill = {"profile": profile, "timeline": timeline, "depth": int(rules.timeline_depth)}
            fill["events"] = q.owned_events_sql(rules, watermark, one_id=one_id)
            fill["select"] = q.profile_select_sql(rules, as_of, "profile_events", one_id=one_id)
            for done, (step, template) in enumerate(BUILD_STEPS):
                report(step, done, len(BUILD_STEPS) + 1)
                if "{doc}" in template:
                    fill["doc"] = rows.RowPacking.of(con, f"({fill['select']})").expression()
                con.execute(template.format(**fill))
            customers = _scalar(con, f"SELECT count(*) FROM {profile}")
            timeline_events = _scalar(con, f"SELECT count(*) FROM {timeline}")
            con.execute("DROP TABLE profile_events")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return watermark, customers, timeline_events

    def state(self) -> RefreshState | None:
        row = self._cursor().execute(LAST_REFRESH).fetchone()
        if row is None:
            return None
        return RefreshState(
            as_of=rows.moment(row[1]) or rows.EPOCH,
            refreshed_at=rows.moment(row[2]) or rows.EPOCH,
            customers=int(row[3]),
            event_watermark=int(row[4]),
        )

    def _current(self, con: duckdb.DuckDBPyConnection) -> Live | None:
        """The live generation, read once from the last refresh (this process is the database's only user)."""
        if self._live is None:
            row = con.execute(LAST_REFRESH).fetchone()
            self._live = _live(con, str(row[0]), int(row[4])) if row else None
        return self._live

    def _has_one_id(self, con: duckdb.DuckDBPyConnection) -> bool:
        if not self._one_id:
            self._one_id = _has_one_id(con)
        return self._one_id

    # -- point reads -------------------------------------------------------------

    def profile(self, cust_no: str) -> dict[str, Any] | None:
        con = self._cursor()
        live = self._current(con)
        if live is None:
            return None
        found = con.execute(f"SELECT profile_doc FROM {live.profile} WHERE cust_no = ?", [cust_no]).fetchone()
        if found is None:
            return None
        unpacked = live.packing.unpack(str(found[0]))
        if unpacked is not None:
            return unpacked
        typed = f"{live.packing.typed_select(live.profile)} WHERE cust_no = ?"
        return live.packing.typed_row(con.execute(typed, [cust_no]))

    def compute(self, cust_no: str, as_of: datetime, rules: ProfileRules) -> dict[str, Any] | None:
        con = self._cursor()
        watermark = _scalar(con, "SELECT coalesce(max(load_seq), 0) FROM events")
        one_id = self._has_one_id(con)
        events = f"({q.owned_events_sql(rules, watermark, one_id=one_id, only=cust_no)})"
        select = f"({q.profile_select_sql(rules, as_of, events, one_id=one_id, only=cust_no)})"
        packing = rows.RowPacking.of(con, select)
        return packing.typed_row(con.execute(packing.typed_select(select)))

    def customer_by_phone_hash(self, phone_hash: str) -> str | None:
        con = self._cursor()
        live = self._current(con)
        if live is not None:
            found = _first(con, f"SELECT min(cust_no) FROM {live.profile} WHERE phone_hash = ?", phone_hash)
            if found is not None:
                return found
        # Customers added since the last refresh: a scan of the customers table.
        return _first(con, "SELECT min(cust_no) FROM customers WHERE phone_hash = ?", phone_hash)

    def customer_exists(self, cust_no: str) -> bool:
        return _first(self._cursor(), "SELECT cust_no FROM customers WHERE cust_no = ?", cust_no) is not None

    def customer_by_event_identifier(self, kind: str, value: str) -> str | None:
        if kind == "user_id":
            return value if self.customer_exists(value) else None
        if kind == "anonymous_id":
            sql = (
                "SELECT min(e.user_id) FROM events e JOIN customers c ON c.cust_no = e.user_id "
                "WHERE e.anonymous_id = ? AND e.user_id IS NOT NULL"
            )
            return _first(self._cursor(), sql, value)
        return None

    # -- search ------------------------------------------------------------------

    def search(self, where: ProfileFilter, *, limit: int, offset: int) -> tuple[list[ProfileRow], int]:
        con = self._cursor()
        live = self._current(con)
        if live is None:
            return [], 0
        within = None
        if where.phone_hash is not None:
            # The phone index first, then the sorted cust_no: DuckDB drops the index lookup once
            # ORDER BY … LIMIT pushes a filter of its own into the scan.
            found = con.execute(f"SELECT cust_no FROM {live.profile} WHERE phone_hash = ?", [where.phone_hash])
            within = [str(r[0]) for r in found.fetchall()]
            if not within:
                return [], 0
            where = replace(where, phone_hash=None)
        condition, params = rows.conditions(where, within=within)
        total = _scalar(con, f"SELECT count(*) FROM {live.profile} WHERE {condition}", params)
        if total == 0 or offset >= total:
            return [], total
        page = con.execute(
            f"SELECT {rows.ROW_COLUMNS} FROM {live.profile} WHERE {condition} "
            f"ORDER BY cust_no LIMIT {int(limit)} OFFSET {int(offset)}",  # literals: a top-N, not a full sort
            params,
        )
        return [rows.profile_row(r) for r in page.fetchall()], total

    # -- timeline ----------------------------------------------------------------

    def timeline(self, cust_no: str, rules: ProfileRules, *, limit: int, offset: int) -> list[TimelineEvent]:
        con = self._cursor()
        live = self._current(con)
        one_id = self._has_one_id(con)
        params: dict[str, Any] = {}
        if live is not None and offset + limit <= rules.timeline_depth:
            sql = _recent_timeline_sql(live, one_id=one_id)
            params |= {"cust_no": cust_no, "watermark": live.watermark}
        else:  # deeper than the materialised timeline, or before the first refresh: read the events
            watermark = _scalar(con, "SELECT coalesce(max(load_seq), 0) FROM events")
            owned = q.owned_events_sql(rules, watermark, one_id=one_id, only=cust_no)
            sql = f"SELECT {TIMELINE_COLUMNS}, NULL AS names FROM ({owned})"
        # LIMIT and OFFSET as literals: with parameters DuckDB plans a full sort instead of a top-N.
        page = con.execute(f"{sql} ORDER BY ts DESC, message_id DESC LIMIT {int(limit)} OFFSET {int(offset)}", params)
        return [rows.timeline_event(r, rules) for r in page.fetchall()]

    def columns(self) -> Sequence[str]:
        live = self._current(self._cursor())
        return [name for name, _ in live.packing.columns] if live is not None else []


def _live(con: duckdb.DuckDBPyConnection, generation: str, watermark: int) -> Live:
    packing = rows.RowPacking.of(con, f"customer_profile_{generation}")
    return Live(generation=generation, watermark=watermark, packing=packing)


def _recent_timeline_sql(live: Live, *, one_id: bool) -> str:
    """A customer's materialised latest events plus the live tail loaded since the refresh ($watermark).

    The tail scans only events above the watermark (`events` is in `load_seq`
    order, so DuckDB skips older row groups) and matches them by user_id, by
    the anonymous ids of the profile row, and with OneID by its `one_id`. Its
    platform is worked out in Python (`rows.platform_of`): the rule CASE would
    cost more to plan than the whole query costs to run.
    """
    me = f"(SELECT one_id, anonymous_ids FROM {live.profile} WHERE cust_no = $cust_no) me"
    # With OneID, an event's OneID as `events_resolved` gives it (redirected after a merge); inlined here,
    # because binding that view costs more than this whole query takes to run.
    resolved = "LEFT JOIN identity_redirects r ON r.from_one_id = e.one_id " if one_id else ""
    by_one_id = "coalesce(r.to_one_id, e.one_id) = me.one_id OR " if one_id else ""
    tail = (
        f"SELECT epoch_us(e.timestamp) AS ts, e.message_id, e.type, e.event, NULL AS platform, e.source, e.properties, "
        f"{q.PLATFORM_NAMES} AS names FROM events e {resolved}LEFT JOIN {me} ON true "
        f"WHERE e.load_seq > $watermark AND ({by_one_id}e.user_id = $cust_no "
        "OR (e.user_id IS NULL AND list_contains(me.anonymous_ids, e.anonymous_id)))"
    )
    recent = f"SELECT {TIMELINE_COLUMNS}, NULL AS names FROM {live.timeline} WHERE cust_no = $cust_no"
    return f"SELECT * FROM ({recent} UNION ALL {tail})"


def _has_one_id(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the OneID engine's `events_resolved` and `identities` are in this database."""
    found = _scalar(
        con,
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE view_name = 'events_resolved') "
        "+ (SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('identities', 'identity_redirects'))",
    )
    return found == 3


def _transaction(con: duckdb.DuckDBPyConnection, *statements: str | tuple[str, list[Any]] | Callable[[], None]) -> None:
    con.execute("BEGIN")
    try:
        for statement in statements:
            if isinstance(statement, tuple):
                con.execute(statement[0], statement[1])
            elif isinstance(statement, str):
                con.execute(statement)
            else:
                statement()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _first(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> str | None:
    row = con.execute(sql, list(params)).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0


def _silent(step: str, done: int, steps: int) -> None:
    """No progress reporting."""
