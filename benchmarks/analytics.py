"""Analysis speed: a 3-step funnel and a 7-day retention through the engine, against hand-written DuckDB SQL.

What it does:

1. opens a marketloop data directory (`Container.open`) and fills it, vectorised
   with numpy and polars, with N customers and 10·N behaviour events over 90 days;
2. runs a 3-step funnel (view_wealth → use_yield_calculator → buy_wealth within
   7 days, last 30 days) and a 7-day retention (first login → login on day 0…7,
   daily cohorts of the last 30 days) through `AnalyticsService.query` (parse →
   compile through the segment printers → DuckDB → shape; the result cache is
   off), the way the CLI and the API run them;
3. runs SQL a DuckDB user would write by hand for the same questions on the same
   connection, alternating with the engine, and checks both give the same counts.

The engine also computes the median time to convert and the per-customer facts a
drill-down needs; the hand-written funnel counts only. Prints one JSON line with
best-of-N milliseconds of each and their ratios (target ≤ 2). `--customers` scales it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from marketloop.adapters.duckdb_analytics import DuckDBAnalyticsWarehouse
from marketloop.analytics.service import AnalyticsService
from marketloop.app.container import Container
from marketloop.app.settings import Settings

AS_OF = datetime(2026, 11, 24, tzinfo=UTC)
START = AS_OF - timedelta(days=30)
EVENTS = ["login", "fund_page_view", "view_wealth", "use_yield_calculator", "buy_wealth", "transfer", "app_start"]
EVENT_WEIGHTS = [0.30, 0.15, 0.15, 0.08, 0.04, 0.13, 0.15]
RANGE = {"from": START.isoformat(), "to": AS_OF.isoformat()}
FUNNEL = {
    "model": "funnel",
    "range": RANGE,
    "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"],
    "window": "7d",
}
RETENTION = {"model": "retention", "range": RANGE, "start": "login", "back": "login", "periods": 7}

_SPAN = f"TIMESTAMPTZ '{START.isoformat(sep=' ')}'", f"TIMESTAMPTZ '{AS_OF.isoformat(sep=' ')}'"
HAND_FUNNEL = f"""
WITH e AS (
  SELECT user_id, "timestamp" AS ts, event FROM events
  WHERE "timestamp" >= {_SPAN[0]} AND "timestamp" < {_SPAN[1]} + INTERVAL 7 DAY
    AND event IN ('view_wealth', 'use_yield_calculator', 'buy_wealth')
),
c1 AS (SELECT user_id, ts AS t0 FROM e WHERE event = 'view_wealth' AND ts < {_SPAN[1]}),
c2 AS (
  SELECT c1.user_id, c1.t0, min(e.ts) AS t2 FROM c1 JOIN e ON e.user_id = c1.user_id
  WHERE e.event = 'use_yield_calculator' AND e.ts > c1.t0 AND e.ts <= c1.t0 + INTERVAL 7 DAY
  GROUP BY c1.user_id, c1.t0
),
c3 AS (
  SELECT c2.user_id FROM c2 JOIN e ON e.user_id = c2.user_id
  WHERE e.event = 'buy_wealth' AND e.ts > c2.t2 AND e.ts <= c2.t0 + INTERVAL 7 DAY
)
SELECT (SELECT count(DISTINCT user_id) FROM c1), (SELECT count(DISTINCT user_id) FROM c2),
       (SELECT count(DISTINCT user_id) FROM c3)
"""
HAND_RETENTION = f"""
WITH firsts AS (
  SELECT user_id, min("timestamp") AS t0 FROM events
  WHERE event = 'login' AND "timestamp" >= {_SPAN[0]} AND "timestamp" < {_SPAN[1]}
  GROUP BY user_id
),
back AS (
  SELECT DISTINCT f.user_id, CAST(timezone('UTC', f.t0) AS DATE) AS cohort,
         date_diff('day', CAST(timezone('UTC', f.t0) AS DATE), CAST(timezone('UTC', e."timestamp") AS DATE)) AS day
  FROM firsts f JOIN events e ON e.user_id = f.user_id
  WHERE e.event = 'login' AND e."timestamp" >= f.t0 AND e."timestamp" < {_SPAN[1]} + INTERVAL 8 DAY
)
SELECT (SELECT count(*) FROM firsts), (SELECT count(*) FROM back WHERE day <= 7)
"""


def cust_nos(numbers: np.ndarray) -> pl.Series:
    digits = pl.Series("n", numbers).cast(pl.String).str.zfill(7)
    return pl.select(pl.concat_str([pl.lit("C"), digits])).to_series().alias("cust_no")


def events_frame(rng: np.random.Generator, customers: int, n: int) -> pl.DataFrame:
    seconds = np.sort(rng.integers(0, 90 * 86400, n))
    start = AS_OF - timedelta(days=82)  # the last 8 days hold the retention's returns
    stamps = pl.Series(seconds).cast(pl.Int64) * 1_000_000 + int(start.timestamp() * 1_000_000)
    timestamp = stamps.cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        {
            "message_id": pl.int_range(0, n, eager=True).cast(pl.String),
            "type": "track",
            "event": rng.choice(EVENTS, n, p=EVENT_WEIGHTS),
            "user_id": cust_nos(rng.integers(0, customers, n)),
            "timestamp": timestamp,
            "received_at": timestamp,
            "source": "bench",
            "properties": "{}",
            "load_seq": pl.int_range(1, n + 1, eager=True),
        }
    )


def load(container: Container, customers: int, events: int) -> None:
    rng = np.random.default_rng(20261124)
    con = container.warehouse.cursor()
    frame = events_frame(rng, customers, events)
    con.register("frame", frame)
    con.execute("INSERT INTO events BY NAME SELECT * FROM frame")
    con.unregister("frame")
    con.execute("CHECKPOINT")


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    found = run()
    return (time.perf_counter() - started) * 1000, found


def funnel_counts(result: dict[str, Any]) -> tuple[int, ...]:
    steps = result["groups"][0]["steps"] if result["groups"] else []
    return tuple(step["customers"] for step in steps)


def retention_counts(result: dict[str, Any]) -> tuple[int, int]:
    cohorts = result["cohorts"]
    return sum(c["customers"] for c in cohorts), sum(p["customers"] for c in cohorts for p in c["retained"])


def compare(engine: Callable[[], Any], hand: Callable[[], Any], repeat: int) -> dict[str, Any]:
    timed(engine), timed(hand)  # warm-up: first reads from disk
    engine_runs, hand_runs = [], []
    for _ in range(repeat):
        engine_runs.append(timed(engine))
        hand_runs.append(timed(hand))
    engine_ms, hand_ms = min(ms for ms, _ in engine_runs), min(ms for ms, _ in hand_runs)
    return {
        "engine_ms": round(engine_ms, 1),
        "hand_sql_ms": round(hand_ms, 1),
        "ratio": round(engine_ms / hand_ms, 2),
        "agree": engine_runs[0][1] == hand_runs[0][1],
        "counts": list(engine_runs[0][1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events = args.customers * args.events_per_customer
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-analytics-") as folder:
        container = Container.open(Settings(data_dir=Path(folder) / "data"))
        try:
            started = time.perf_counter()
            load(container, args.customers, events)
            load_s = time.perf_counter() - started
            con = container.warehouse.cursor()
            warehouse = DuckDBAnalyticsWarehouse(container.warehouse.cursor)
            service = AnalyticsService(warehouse, container.segments, container.profiles, container.clock, cache_size=0)
            funnel = compare(
                lambda: funnel_counts(service.query(FUNNEL, as_of=AS_OF).result),
                lambda: tuple(con.execute(HAND_FUNNEL).fetchone() or ()),
                args.repeat,
            )
            retention = compare(
                lambda: retention_counts(service.query(RETENTION, as_of=AS_OF).result),
                lambda: tuple(con.execute(HAND_RETENTION).fetchone() or ()),
                args.repeat,
            )
        finally:
            container.close()
    result = {
        "benchmark": "analytics",
        "customers": args.customers,
        "events": events,
        "funnel_3_steps": funnel,
        "retention_7_days": retention,
        "target_ratio": 2.0,
        "load_s": round(load_s, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
