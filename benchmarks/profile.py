"""Customer 360°: refresh time, profile lookup and customer search latency at 1M customers, against raw SQL.

What it does:

1. generate a bank (benchmarks/profile_data.py: customers, about 10 holding
   rows, 20 transactions and 10 events per customer) into a fresh data
   directory through `Container` and the `BankStore` port;
2. `ProfileService.refresh()` - the bulk SQL that builds `customer_profile`
   and the timeline;
3. lookup: `ProfileService.profile(cust_no)` for 2,000 random customers (the
   whole 360° view with its first 20 timeline events, name and phone
   decrypted and masked); baseline: the same two reads in hand-written DuckDB
   SQL (the profile row, the 20 latest timeline rows) on a raw cursor;
4. search: a mix of customer-number, phone, family-name, full-name, city,
   VIP, risk, branch, RM and AUM-range searches through
   `ProfileService.search`; baseline: the same count and page in hand-written
   SQL on `customer_profile`.

Prints one JSON line. Targets: lookup p99 <= 10 ms, search p99 <= 100 ms,
refresh < 60 s, at 1M customers. `--customers` scales it down for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from marketloop.app.container import Container
from marketloop.app.settings import DuckDBSettings, Settings
from marketloop.core import bank
from marketloop.profiles.search import SearchQuery

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import profile_data as data  # noqa: E402

AS_OF = datetime(2026, 11, 1, 12, tzinfo=UTC)
CHUNK = 250_000
TARGETS = {"lookup_p99_ms": 10.0, "search_p99_ms": 100.0, "refresh_s": 60.0}


def generate(container: Container, customers: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    pools = data.Pools(container.cipher, rng)
    data.reference(container.bank)
    counts = {"holdings": 0, "transactions": 0}
    for start in range(0, customers, CHUNK):
        count = min(CHUNK, customers - start)
        container.bank.append(bank.CUSTOMERS, data.customers(start, count, container.cipher, pools, rng))
        counts["holdings"] += container.bank.append(bank.HOLDINGS, data.holdings(start, count, AS_OF.date(), rng))
        counts["transactions"] += container.bank.append(bank.TRANSACTIONS, data.transactions(start, count, AS_OF, rng))
    events = customers * 10
    with container.warehouse.write_lock:
        container.warehouse.cursor().execute(data.events_sql(customers, events, AS_OF))
    container.warehouse.cursor().execute("CHECKPOINT")
    return {"customers": customers, **counts, "events": events, "generate_s": round(time.perf_counter() - started, 1)}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def timed(calls: list[Callable[[], object]]) -> list[float]:
    samples = []
    for call in calls:
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return samples


def lookups(container: Container, customers: int, count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    numbers = [f"C{rng.randrange(customers):09d}" for _ in range(count)]
    service = container.profiles
    con = container.warehouse.cursor()

    described = con.execute("DESCRIBE customer_profile").fetchall()
    times = [str(r[0]) for r in described if r[1] == "TIMESTAMP WITH TIME ZONE"]  # no pytz: epoch microseconds
    select = f"SELECT * REPLACE ({', '.join(f'epoch_us({t}) AS {t}' for t in times)}) FROM customer_profile"

    def raw(cust_no: str) -> None:
        con.execute(f"{select} WHERE cust_no = ?", [cust_no]).fetchall()
        con.execute("SELECT epoch_us(ts), message_id, type, event, platform, source, properties FROM customer_timeline "
                    "WHERE cust_no = ? ORDER BY ts DESC, message_id DESC LIMIT 21", [cust_no]).fetchall()  # fmt: skip

    timed([lambda n=n: service.profile(n) for n in numbers[:50]])  # warm-up
    ours = percentiles(timed([lambda n=n: service.profile(n) for n in numbers]))
    baseline = percentiles(timed([lambda n=n: raw(n) for n in numbers]))
    return {**ours, "baseline": baseline, "ratio_p99": round(ours["p99_ms"] / baseline["p99_ms"], 2)}


def search_mix(container: Container, customers: int, seed: int) -> list[SearchQuery]:
    rng = random.Random(seed)
    con = container.warehouse.cursor()
    families = sorted(str(n) for (n,) in con.execute("SELECT DISTINCT name_prefix FROM customer_profile").fetchall())
    cities = [c for c, _ in data.CITIES]
    mix: list[Callable[[], SearchQuery]] = [
        lambda: SearchQuery(cust_no=f"C{rng.randrange(customers):09d}"),
        lambda: SearchQuery(phone=str(13_000_000_000 + 3 * rng.randrange(customers))),
        lambda: SearchQuery(name_prefix=rng.choice(families), city=rng.choice(cities)),
        lambda: SearchQuery(city=rng.choice(cities), vip_level=rng.choice(["gold", "diamond"])),
        lambda: SearchQuery(branch_id=f"B{rng.randrange(200):03d}", risk_tolerance=f"C{rng.randint(1, 5)}"),
        lambda: SearchQuery(rm_id=f"R{rng.randrange(2000):04d}", offset=20),
        lambda: SearchQuery(min_aum=float(rng.choice([50_000, 500_000])), max_aum=6_000_000.0, limit=50),
        lambda: SearchQuery(city=rng.choice(cities), offset=rng.choice([0, 1000, 10_000])),
        lambda: SearchQuery(name_prefix=rng.choice(families) + rng.choice(data.GIVEN),
                            branch_id=f"B{rng.randrange(200):03d}"),
    ]  # fmt: skip
    return [rng.choice(mix)() for _ in range(450)]


def raw_search(con: Any, query: SearchQuery) -> None:
    """The same search as hand-written SQL: a count and a page (family-name filter only; no decryption)."""
    where, params = ["true"], []
    for column, value in (("cust_no", query.cust_no), ("city", query.city), ("branch_id", query.branch_id),
                          ("rm_id", query.rm_id), ("risk_tolerance", query.risk_tolerance),
                          ("coalesce(vip_level, vip_tier)", query.vip_level)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.phone is not None:
        where.append("phone_hash = ?")
        params.append(query.phone)  # not hashed: the same index probe, no match
    if query.name_prefix is not None:
        where.append("starts_with(name_prefix, ?)")
        params.append(query.name_prefix[:1])
    for op, bound in ((">=", query.min_aum), ("<=", query.max_aum)):
        if bound is not None:
            where.append(f"aum {op} ?")
            params.append(bound)
    condition = " AND ".join(where)
    con.execute(f"SELECT count(*) FROM customer_profile WHERE {condition}", params).fetchall()
    con.execute(
        "SELECT cust_no, name_enc, phone_enc, city, vip_level, vip_tier, risk_tolerance, branch_id, rm_id, aum "
        f"FROM customer_profile WHERE {condition} ORDER BY cust_no LIMIT ? OFFSET ?",
        [*params, query.limit, query.offset],
    ).fetchall()


def searches(container: Container, customers: int, seed: int) -> dict[str, Any]:
    queries = search_mix(container, customers, seed)
    service, con = container.profiles, container.warehouse.cursor()
    timed([lambda q=q: service.search(q) for q in queries[:30]])  # warm-up
    ours = percentiles(timed([lambda q=q: service.search(q) for q in queries]))
    baseline = percentiles(timed([lambda q=q: raw_search(con, q) for q in queries]))
    return {**ours, "queries": len(queries), "baseline": baseline,
            "ratio_p99": round(ours["p99_ms"] / baseline["p99_ms"], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (settings: warehouse.threads)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="Keep the data directory here instead of a temporary one.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="marketloop-profile-bench-"))
    settings = Settings(data_dir=root / "data", warehouse=DuckDBSettings(threads=args.threads))
    container = Container.open(settings)
    try:
        result: dict[str, Any] = {"benchmark": "profile", "threads": args.threads}
        result |= generate(container, args.customers, args.seed)
        refreshed = container.profiles.refresh(AS_OF)
        result["refresh_s"] = round(refreshed.seconds, 1)
        result["timeline_events"] = refreshed.timeline_events
        result["lookup"] = lookups(container, args.customers, args.lookups, args.seed)
        result["search"] = searches(container, args.customers, args.seed)
        result["targets"] = TARGETS
        result["ok"] = (
            result["lookup"]["p99_ms"] <= TARGETS["lookup_p99_ms"]
            and result["search"]["p99_ms"] <= TARGETS["search_p99_ms"]
            and result["refresh_s"] <= TARGETS["refresh_s"]
        )
    finally:
        container.close()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
