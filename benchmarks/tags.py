"""Tag refresh speed: 100 rule tags through the engine against the same tags written by hand in DuckDB SQL.

What it does:

1. opens a marketloop data directory (the real wiring: `Container.open`) and
   fills it, vectorised with numpy and polars, with N customers, their
   profile rows, 3N transactions over 90 days and 10N behaviour events;
2. defines 100 rule tags — ten kinds (profile thresholds, age bands, city,
   large outflows, transaction counts and totals, recent events, event
   counts, a three-value AUM band, a two-field test) at ten parameters each —
   in the segment language, and refreshes them all with `TagService.refresh`
   (compile → set-based staging → diff → changed values and history written
   → statistics), the way `marketloop tags refresh` does;
3. computes the same 100 tags with hand-written DuckDB SQL into a table, in
   the same run, and checks that every tag's values agree;
4. refreshes again with nothing changed (the incremental no-op).

Prints one JSON line: refresh_s (engine, first full refresh), raw_s (hand
SQL), their ratio, noop_s, and whether the values agree. Target: refresh_s ≤
60 at 1M customers / 10M events. `--customers` scales it (events = 10 ×).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from marketloop.adapters.duckdb_tags import DuckDBTagWarehouse
from marketloop.adapters.sql.tags import SqlTagRepository
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.ports.tags import TagCategory
from marketloop.tags.definitions import TagDraft
from marketloop.tags.service import TagService
from marketloop.testing.clock import FrozenClock

AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
CITIES = ["上海", "杭州", "北京", "深圳", "广州", "成都", "南京", "武汉", "西安", "重庆"]
EVENTS = ["login", "fund_page_view", "wealth_product_view", "transfer_out", "purchase", "app_launch", "$pageview",
          "yield_calculator_used", "product_detail_view", "mini_program_visit"]  # fmt: skip
CATEGORIES = ["consumption", "transfer", "salary", "investment", "repayment"]
TS = f"TIMESTAMPTZ '{AS_OF.isoformat(sep=' ')}'"


def window(days: int, column: str) -> str:
    return f"{column} > {TS} - INTERVAL {days * 86400} SECOND AND {column} <= {TS}"


def tag_specs() -> Iterator[tuple[str, dict[str, object], str]]:
    """(name, definition, hand-written SQL returning cust_no and value) of each of the 100 tags."""
    for i in range(10):
        aum = 10_000 * 2**i
        yield (
            f"aum_over_{i}",
            {"when": f"aum >= {aum}"},
            f"SELECT cust_no, 'true' FROM customer_profile WHERE aum >= {aum}",
        )
        age = 18 + 6 * i
        yield (f"age_{i}", {"when": f"age between {age} and {age + 5}"},
               f"SELECT cust_no, 'true' FROM customer_profile WHERE age BETWEEN {age} AND {age + 5}")  # fmt: skip
        city = CITIES[i]
        yield f"city_{i}", {"when": f'city = "{city}"'}, f"SELECT cust_no, 'true' FROM customers WHERE city = '{city}'"
        amount = 1_000 * (i + 1)
        yield (f"outflow_{i}", {"when": f'transacted(direction = "out", min_amount = {amount}, within = 30d)'},
               f"SELECT DISTINCT cust_no, 'true' FROM transactions WHERE {window(30, 'ts')} "
               f"AND direction = 'out' AND amount >= {amount}")  # fmt: skip
        count = i + 1
        yield (f"txn_count_{i}", {"when": f"transacted(at_least = {count}, within = 90d)"},
               f"SELECT cust_no, 'true' FROM transactions WHERE {window(90, 'ts')} "
               f"GROUP BY cust_no HAVING count(*) >= {count}")  # fmt: skip
        days = 3 * (i + 1)
        yield (f"recent_{i}", {"when": f'did "{EVENTS[i]}" within {days}d'},
               f"SELECT DISTINCT user_id, 'true' FROM events WHERE {window(days, 'timestamp')} "
               f"AND event = '{EVENTS[i]}'")  # fmt: skip
        yield (f"frequent_{i}", {"when": f'did "{EVENTS[i]}" at least 3 times within 30d'},
               f"SELECT user_id, 'true' FROM events WHERE {window(30, 'timestamp')} AND event = '{EVENTS[i]}' "
               "GROUP BY user_id HAVING count(*) >= 3")  # fmt: skip
        low, high = 5_000 * (i + 1), 50_000 * (i + 1)
        band = {"cases": [{"when": f"aum >= {high}", "value": "high"}, {"when": f"aum >= {low}", "value": "mid"}],
                "else": "low"}  # fmt: skip
        yield (f"band_{i}", band,
               f"SELECT c.cust_no, CASE WHEN p.aum >= {high} THEN 'high' WHEN p.aum >= {low} THEN 'mid' ELSE 'low' END "
               "FROM customers c LEFT JOIN customer_profile p ON p.cust_no = c.cust_no")  # fmt: skip
        logins = i + 1
        yield (f"active_rich_{i}", {"when": f"logins_30d >= {logins} and aum >= 50000"},
               "SELECT cust_no, 'true' FROM customer_profile "
               f"WHERE logins_30d >= {logins} AND aum >= 50000")  # fmt: skip
        spend = 2_000 * (i + 1)
        yield (f"spender_{i}", {"when": f'transacted(category = "consumption", sum_at_least = {spend}, within = 30d)'},
               f"SELECT cust_no, 'true' FROM transactions WHERE {window(30, 'ts')} AND category = 'consumption' "
               f"GROUP BY cust_no HAVING sum(amount) >= {spend}")  # fmt: skip


def cust_nos(numbers: np.ndarray) -> pl.Series:
    digits = pl.Series("n", numbers).cast(pl.String).str.zfill(7)
    return pl.select(pl.concat_str([pl.lit("C"), digits])).to_series().alias("cust_no")


def stamps(rng: np.random.Generator, n: int) -> pl.Series:
    seconds = np.sort(rng.integers(0, 90 * 86400, n))
    start = int((AS_OF - timedelta(days=90)).timestamp() * 1_000_000)
    return (pl.Series(seconds).cast(pl.Int64) * 1_000_000 + start).cast(pl.Datetime("us", "UTC"))


def frames(rng: np.random.Generator, n: int, events: int) -> dict[str, pl.DataFrame]:
    ids = cust_nos(np.arange(n))
    customers = pl.DataFrame({"cust_no": ids, "city": rng.choice(CITIES, n), "branch_id": "B01",
                              "open_date": pl.Series([AS_OF.date()] * n)})  # fmt: skip
    profile = pl.DataFrame({"cust_no": ids, "age": rng.integers(18, 80, n), "logins_30d": rng.poisson(3, n),
                            "aum": np.round(rng.lognormal(10, 1.5, n), 2)})  # fmt: skip
    t = 3 * n
    transactions = pl.DataFrame({
        "txn_id": pl.int_range(0, t, eager=True).cast(pl.String), "cust_no": cust_nos(rng.integers(0, n, t)),
        "ts": stamps(rng, t), "amount": np.round(rng.lognormal(7, 1.2, t), 2),
        "direction": rng.choice(["in", "out"], t), "category": rng.choice(CATEGORIES, t),
    })  # fmt: skip
    stamped = stamps(rng, events)
    behaviour = pl.DataFrame({
        "message_id": pl.int_range(0, events, eager=True).cast(pl.String), "type": "track",
        "event": rng.choice(EVENTS, events), "user_id": cust_nos(rng.integers(0, n, events)), "timestamp": stamped,
        "received_at": stamped, "source": "bench", "properties": "{}",
        "load_seq": pl.int_range(1, events + 1, eager=True),
    })  # fmt: skip
    return {"customers": customers, "customer_profile": profile, "transactions": transactions, "events": behaviour}


def load(container: Container, customers: int, events: int) -> None:
    con = container.warehouse.cursor()
    con.execute("CREATE TABLE customer_profile (cust_no VARCHAR, age BIGINT, aum DECIMAL(18, 2), logins_30d BIGINT)")
    for table, frame in frames(np.random.default_rng(20261124), customers, events).items():
        con.register("frame", frame)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")
        con.unregister("frame")
    con.execute("CHECKPOINT")


def hand_written(container: Container, specs: list[tuple[str, dict[str, object], str]]) -> float:
    con = container.warehouse.cursor()
    con.execute("CREATE TABLE raw_tags (cust_no VARCHAR, tag VARCHAR, value VARCHAR)")
    started = time.perf_counter()
    for name, _, sql in specs:
        con.execute(f"INSERT INTO raw_tags SELECT q.cust_no, '{name}', q.value FROM ({sql}) AS q(cust_no, value)")
    return time.perf_counter() - started


def agree(container: Container) -> bool:
    row = (
        container.warehouse.cursor()
        .execute(
            "SELECT count(*) FROM ((SELECT cust_no, tag, value FROM raw_tags EXCEPT "
            "SELECT cust_no, tag, value FROM customer_tags) UNION ALL (SELECT cust_no, tag, value FROM customer_tags "
            "EXCEPT SELECT cust_no, tag, value FROM raw_tags))"
        )
        .fetchone()
    )
    return row is not None and row[0] == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    events = 10 * args.customers
    specs = list(tag_specs())
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-tags-") as folder:
        container = Container.open(Settings(data_dir=Path(folder) / "data"))
        try:
            started = time.perf_counter()
            load(container, args.customers, events)
            load_s = time.perf_counter() - started
            # Exactly the 100 benchmark tags (no starter library), over the container's real stores.
            warehouse = DuckDBTagWarehouse(container.warehouse.cursor, container.warehouse.write_lock)
            tags = TagService(SqlTagRepository(container.engine), warehouse, FrozenClock(AS_OF), starter=[])
            for name, definition, _ in specs:
                tags.create(TagDraft(name=name, title=name, category=TagCategory.VALUE, definition=definition))
            started = time.perf_counter()
            report = tags.refresh(as_of=AS_OF)
            refresh_s = time.perf_counter() - started
            started = time.perf_counter()
            noop = tags.refresh(as_of=AS_OF)
            noop_s = time.perf_counter() - started
            raw_s = hand_written(container, specs)
            same = agree(container)
        finally:
            container.close()
    result = {
        "benchmark": "tags.refresh",
        "customers": args.customers,
        "events": events,
        "transactions": 3 * args.customers,
        "tags": len(report.stats),
        "values": sum(s.customers for s in report.stats),
        "values_agree": same,
        "refresh_s": round(refresh_s, 2),
        "raw_s": round(raw_s, 2),
        "ratio": round(refresh_s / raw_s, 2),
        "noop_s": round(noop_s, 2),
        "noop_refreshed": len(noop.run.refreshed),
        "target_refresh_s": 60,
        "load_s": round(load_s, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
