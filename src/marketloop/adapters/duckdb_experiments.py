"""`ExperimentWarehouse` on DuckDB: assignments, touches and conversions next to the events and bank tables.

Creates `experiment_assignments`, `experiment_touches` and
`customer_conversions` when absent. `DuckDBEventConversions` fills
`customer_conversions` from loaded events through the OneID store's tables. Keys make every write idempotent, so a
journey (or an import) that retries after a crash does not count twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import duckdb
import polars as pl

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment_assignments (
    experiment_id VARCHAR NOT NULL,
    cust_no VARCHAR NOT NULL,
    variant VARCHAR NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (experiment_id, cust_no)
);
CREATE TABLE IF NOT EXISTS experiment_touches (
    experiment_id VARCHAR NOT NULL,
    touch_id VARCHAR NOT NULL,
    cust_no VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    touched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (touch_id, stage)
);
CREATE TABLE IF NOT EXISTS customer_conversions (
    conversion_id VARCHAR PRIMARY KEY,
    cust_no VARCHAR NOT NULL,
    goal VARCHAR NOT NULL,
    converted_at TIMESTAMPTZ NOT NULL,
    revenue DOUBLE NOT NULL,
    aum DOUBLE NOT NULL,
    benefit_cost DOUBLE NOT NULL
);
"""

_KEYS = {
    "experiment_assignments": "experiment_id, cust_no",
    "experiment_touches": "touch_id, stage",
    "customer_conversions": "conversion_id",
}

OUTCOMES = """
WITH a AS (
    SELECT cust_no, variant, assigned_at FROM experiment_assignments WHERE experiment_id = $experiment
), reached AS (
    SELECT cust_no,
           max(CASE stage WHEN 'sent' THEN 1 WHEN 'failed' THEN 1 WHEN 'delivered' THEN 2
                          WHEN 'opened' THEN 3 WHEN 'clicked' THEN 4 ELSE 0 END) AS furthest,
           bool_or(stage = 'suppressed') AS any_suppressed
    FROM experiment_touches WHERE experiment_id = $experiment GROUP BY cust_no
), c AS (
    SELECT cust_no,
           count(*) FILTER (WHERE inside) AS conversions,
           sum(revenue) FILTER (WHERE inside) AS revenue,
           sum(aum) FILTER (WHERE inside) AS aum,
           sum(benefit_cost) FILTER (WHERE inside) AS benefit_cost,
           sum(revenue) FILTER (WHERE before) AS pre_revenue,
           sum(aum) FILTER (WHERE before) AS pre_aum
    FROM (
        SELECT a.cust_no, v.revenue, v.aum, v.benefit_cost,
               v.converted_at >= a.assigned_at
               AND v.converted_at < a.assigned_at + $days * INTERVAL 1 DAY AS inside,
               v.converted_at < a.assigned_at
               AND v.converted_at >= a.assigned_at - $days * INTERVAL 1 DAY AS before
        FROM a JOIN customer_conversions v ON v.cust_no = a.cust_no AND v.goal = $goal
    )
    GROUP BY cust_no
)
SELECT a.cust_no, a.variant, a.assigned_at, strftime(a.assigned_at AT TIME ZONE 'UTC', '%Y-%m') AS period,
       (coalesce(r.any_suppressed, false) AND coalesce(r.furthest, 0) = 0)::TINYINT AS suppressed,
       (coalesce(r.furthest, 0) >= 1)::TINYINT AS sent,
       (coalesce(r.furthest, 0) >= 2)::TINYINT AS delivered,
       (coalesce(r.furthest, 0) >= 3)::TINYINT AS opened,
       (coalesce(r.furthest, 0) >= 4)::TINYINT AS clicked,
       (coalesce(c.conversions, 0) > 0)::TINYINT AS converted,
       coalesce(c.conversions, 0)::BIGINT AS conversions,
       coalesce(c.revenue, 0)::DOUBLE AS revenue,
       coalesce(c.aum, 0)::DOUBLE AS aum,
       coalesce(c.benefit_cost, 0)::DOUBLE AS benefit_cost,
       coalesce(c.pre_revenue, 0)::DOUBLE AS pre_revenue,
       coalesce(c.pre_aum, 0)::DOUBLE AS pre_aum
FROM a LEFT JOIN reached r USING (cust_no) LEFT JOIN c USING (cust_no)
ORDER BY a.cust_no
"""

TOUCH_COUNTS = """
SELECT a.variant, strftime(a.assigned_at AT TIME ZONE 'UTC', '%Y-%m') AS period, t.channel,
       count(DISTINCT t.touch_id)::BIGINT AS touches
FROM experiment_touches t
JOIN experiment_assignments a ON a.experiment_id = t.experiment_id AND a.cust_no = t.cust_no
WHERE t.experiment_id = $experiment AND t.stage IN ('sent', 'delivered', 'opened', 'clicked', 'failed')
GROUP BY ALL ORDER BY ALL
"""


class DuckDBExperimentWarehouse:
    """The experiment tables in the DuckDB database of the events and bank tables."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        with write_lock:
            cursor().execute(SCHEMA)

    def add_assignments(self, rows: pl.DataFrame) -> int:
        return self._insert("experiment_assignments", rows)

    def add_touches(self, rows: pl.DataFrame) -> int:
        return self._insert("experiment_touches", rows)

    def add_conversions(self, rows: pl.DataFrame) -> int:
        return self._insert("customer_conversions", rows)

    def _insert(self, table: str, rows: pl.DataFrame) -> int:
        if rows.is_empty():
            return 0
        keys = _KEYS[table]
        columns = ", ".join(rows.columns)
        with self._write_lock:
            con = self._cursor()
            con.register("incoming_rows", rows.to_arrow())
            try:
                before = _count(con, table)
                con.execute(
                    f"INSERT OR IGNORE INTO {table} ({columns}) "
                    f"SELECT {columns} FROM incoming_rows QUALIFY row_number() OVER (PARTITION BY {keys}) = 1"
                ).fetchall()
                return _count(con, table) - before
            finally:
                con.unregister("incoming_rows")

    def assigned(self, experiment_id: str) -> dict[str, int]:
        rows = (
            self._cursor()
            .execute(
                "SELECT variant, count(*) FROM experiment_assignments WHERE experiment_id = ? GROUP BY variant",
                [experiment_id],
            )
            .fetchall()
        )
        return {str(variant): int(count) for variant, count in rows}

    def outcomes(self, experiment_id: str, *, goal: str, window_days: int) -> pl.DataFrame:
        params = {"experiment": experiment_id, "goal": goal, "days": window_days}
        found: pl.DataFrame = self._cursor().sql(OUTCOMES, params=params).pl()
        return found

    def touch_counts(self, experiment_id: str) -> pl.DataFrame:
        found: pl.DataFrame = self._cursor().sql(TOUCH_COUNTS, params={"experiment": experiment_id}).pl()
        return found


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0])


FROM_EVENTS = """
INSERT OR IGNORE INTO customer_conversions
SELECT 'event:' || e.message_id, c.cust_no, $goal, e.timestamp,
       CASE WHEN $revenue IS NULL THEN 0
            ELSE coalesce(TRY_CAST(json_extract_string(e.properties, $revenue) AS DOUBLE), 0) END,
       CASE WHEN $aum IS NULL THEN 0
            ELSE coalesce(TRY_CAST(json_extract_string(e.properties, $aum) AS DOUBLE), 0) END,
       0
FROM events_resolved e
JOIN (
    SELECT coalesce(r.to_one_id, i.one_id) AS one_id, min(i.id_value) AS cust_no
    FROM identities i LEFT JOIN identity_redirects r ON r.from_one_id = i.one_id
    WHERE i.id_type = 'cust_no'
    GROUP BY ALL
) c ON c.one_id = e.one_id
WHERE e.event = $event AND ($since IS NULL OR e.timestamp >= $since)
QUALIFY row_number() OVER (PARTITION BY e.message_id) = 1
"""


def _json_path(name: str | None) -> str | None:
    return None if name is None else '$."' + name.replace('"', '\\"') + '"'


class DuckDBEventConversions:
    """`EventConversions` over the loaded events (`events_resolved`) and the OneID store's `identities`."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        with write_lock:
            cursor().execute(SCHEMA)

    def derive(
        self,
        *,
        event: str,
        goal: str,
        revenue_property: str | None = None,
        aum_property: str | None = None,
        since: datetime | None = None,
    ) -> int:
        params = {
            "event": event,
            "goal": goal,
            "revenue": _json_path(revenue_property),
            "aum": _json_path(aum_property),
            "since": since,
        }
        with self._write_lock:
            con = self._cursor()
            before = _count(con, "customer_conversions")
            con.execute(FROM_EVENTS, params).fetchall()
            return _count(con, "customer_conversions") - before
