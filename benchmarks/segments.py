"""Segment count speed: the engine against the same question written by hand in DuckDB SQL, in one run.

What it does:

1. opens a marketloop data directory (the real wiring: `Container.open`) and
   fills it, vectorised with numpy and polars, with 1,000,000 customers, their
   profile rows (age, AUM), an RFM tag for a third of them and 10,000,000
   behaviour events over 90 days, sent by the app's login ids (not the customer
   numbers) and attributed to OneIDs, with each customer's cust_no in OneID's
   `identities` (as `marketloop serve` loads them);
2. counts a five-condition segment — two customer attributes, a profile
   figure, a tag and a behaviour window — with `SegmentService.count`
   (parse → resolve → passes → DuckDB printer → DuckDB), the way the CLI and
   the API count;
3. runs the equivalent SQL a DuckDB user would write by hand on the same
   connection settings, alternating with the engine, and checks both counts agree.

Prints one JSON line: best-of-N milliseconds of each, their ratio (target ≤ 2).
`--customers` / `--events` scale it down for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from marketloop.app.container import Container
from marketloop.app.settings import Settings

AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
CITIES = ["上海", "杭州", "北京", "深圳", "广州", "成都", "南京", "武汉"]
EVENTS = ["login", "fund_page_view", "wealth_page_view", "transfer", "view_wealth", "buy_wealth", "app_start"]
EVENT_WEIGHTS = [0.30, 0.12, 0.10, 0.15, 0.13, 0.02, 0.18]

DEFINITION = """
city in ("上海", "杭州") and age >= 30 and aum >= 50000
and tag rfm = "champion"
and did fund_page_view at least 2 times within 30d
"""

HAND_WRITTEN = """
SELECT count(*)
FROM customers c
JOIN customer_profile p ON p.cust_no = c.cust_no
WHERE c.city IN ('上海', '杭州') AND p.age >= 30 AND p.aum >= 50000
  AND c.cust_no IN (SELECT cust_no FROM customer_tags WHERE tag = 'rfm' AND value = 'champion')
  AND c.cust_no IN (
    -- an event's customer: the cust_no of its (merged) OneID, else its user_id
    SELECT coalesce(i.id_value, e.user_id) FROM events e
    LEFT JOIN identity_redirects r ON r.from_one_id = e.one_id
    LEFT JOIN identities i ON i.id_type = 'cust_no' AND i.one_id = coalesce(r.to_one_id, e.one_id)
    WHERE e.event = 'fund_page_view'
      AND e.timestamp > TIMESTAMPTZ '2026-10-25 08:00:00+00:00'
      AND e.timestamp <= TIMESTAMPTZ '2026-11-24 08:00:00+00:00'
    GROUP BY 1 HAVING count(*) >= 2
  )
"""


def cust_nos(numbers: np.ndarray) -> pl.Series:
    digits = pl.Series("n", numbers).cast(pl.String).str.zfill(7)
    return pl.select(pl.concat_str([pl.lit("C"), digits])).to_series().alias("cust_no")


def customers_frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cust_no": cust_nos(np.arange(n)),
            "gender": rng.choice(["M", "F"], n),
            "city": rng.choice(CITIES, n),
            "risk_tolerance": rng.choice(["C1", "C2", "C3", "C4", "C5"], n),
            "branch_id": rng.choice(["B01", "B02", "B03"], n),
            "status": rng.choice(["active", "dormant"], n, p=[0.9, 0.1]),
        }
    ).with_columns(open_date=pl.lit(AS_OF.date()) - pl.duration(days=pl.Series(rng.integers(0, 3650, n))))


def profile_frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cust_no": cust_nos(np.arange(n)),
            "age": rng.integers(18, 80, n),
            "aum": np.round(rng.lognormal(10, 1.5, n), 2),
            "vip_tier": rng.choice(["standard", "gold", "diamond"], n, p=[0.7, 0.25, 0.05]),
        }
    )


def tags_frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    tagged = np.flatnonzero(rng.random(n) < 0.33)
    return pl.DataFrame(
        {
            "cust_no": cust_nos(tagged),
            "tag": "rfm",
            "value": rng.choice(["champion", "loyal", "at_risk", "hibernating"], tagged.size),
        }
    ).with_columns(as_of=pl.lit(AS_OF))


def numbered(prefix: str, numbers: np.ndarray) -> pl.Series:
    return cust_nos(numbers).str.replace("^C", prefix)


def identities_frame(customers: int) -> pl.DataFrame:
    """Each customer's cust_no in OneID, as a customers import links it."""
    everyone = np.arange(customers)
    return pl.DataFrame(
        {
            "id_type": "cust_no",
            "id_value": cust_nos(everyone),
            "one_id": numbered("O", everyone),
            "first_seen": pl.Series([AS_OF - timedelta(days=400)] * customers),
            "source": "import:customers",
        }
    )


def events_frame(rng: np.random.Generator, customers: int, n: int) -> pl.DataFrame:
    seconds = np.sort(rng.integers(0, 90 * 86400, n))  # loaded in arrival order, as the loader would
    start = AS_OF - timedelta(days=90)
    stamps = pl.Series(seconds).cast(pl.Int64) * 1_000_000 + int(start.timestamp() * 1_000_000)
    timestamp = stamps.cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        {
            "message_id": pl.int_range(0, n, eager=True).cast(pl.String),
            "type": "track",
            "event": rng.choice(EVENTS, n, p=EVENT_WEIGHTS),
            "user_id": numbered("U", who := rng.integers(0, customers, n)),  # the app's login id
            "one_id": numbered("O", who),
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
    con.execute("CREATE TABLE customer_profile (cust_no VARCHAR, age BIGINT, aum DECIMAL(18, 2), vip_tier VARCHAR)")
    frames = {
        "customers": customers_frame(rng, customers),
        "customer_profile": profile_frame(rng, customers),
        "customer_tags": tags_frame(rng, customers),
        "events": events_frame(rng, customers, events),
        "identities": identities_frame(customers),
    }
    for table, frame in frames.items():
        con.register("frame", frame)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")
        con.unregister("frame")
    con.execute("CHECKPOINT")


def timed(run: object) -> tuple[float, int]:
    started = time.perf_counter()
    found = run()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000, int(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-segments-") as folder:
        container = Container.open(Settings(data_dir=Path(folder) / "data"))
        try:
            started = time.perf_counter()
            load(container, args.customers, args.events)
            load_s = time.perf_counter() - started
            con = container.warehouse.cursor()
            engine = lambda: container.segments.count(DEFINITION, as_of=AS_OF).count  # noqa: E731
            hand = lambda: con.execute(HAND_WRITTEN).fetchone()[0]  # type: ignore[index]  # noqa: E731
            timed(engine), timed(hand)  # warm-up: first reads from disk
            engine_runs, hand_runs = [], []
            for _ in range(args.repeat):
                engine_runs.append(timed(engine))
                hand_runs.append(timed(hand))
        finally:
            container.close()
    engine_ms = min(ms for ms, _ in engine_runs)
    hand_ms = min(ms for ms, _ in hand_runs)
    counts = {found for _, found in engine_runs + hand_runs}
    result = {
        "benchmark": "segments.count",
        "customers": args.customers,
        "events": args.events,
        "conditions": 5,
        "count": engine_runs[0][1],
        "counts_agree": len(counts) == 1,
        "engine_ms": round(engine_ms, 1),
        "engine_median_ms": round(sorted(ms for ms, _ in engine_runs)[len(engine_runs) // 2], 1),
        "hand_sql_ms": round(hand_ms, 1),
        "hand_sql_median_ms": round(sorted(ms for ms, _ in hand_runs)[len(hand_runs) // 2], 1),
        "ratio": round(engine_ms / hand_ms, 2),
        "target_ratio": 2.0,
        "load_s": round(load_s, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
