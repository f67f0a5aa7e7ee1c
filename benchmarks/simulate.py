"""How fast `marketloop simulate` fills a data directory, against a raw DuckDB baseline in the same run.

1. simulate: 1M customers, 30 days (about 10M events) into a fresh data directory, as the CLI
   does (bank tables through `BankStore.append`, events through the event log and the loader);
2. baseline: write the same number of rows into the same tables of a fresh DuckDB file with
   `INSERT INTO … SELECT … FROM range(n)` (synthetic values of the same column types; event
   rows with JSON text of the simulated events' average length).

CPU seconds are reported per process, because on a shared machine the wall clock mostly
measures the neighbours. The loader is the container's, as `marketloop simulate` runs it:
every event is attributed to its OneID while it is loaded.

Prints one JSON line. `--quick` is a small smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from marketloop.adapters.duckdb_bank import table_ddl
from marketloop.adapters.duckdb_warehouse import SCHEMA
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.cli.simulate import DEFAULT_WORKERS
from marketloop.collect.loader import Loader
from marketloop.core.bank import BANK_TABLES, LogicalType
from marketloop.simulate import run

VALUES = {
    LogicalType.TEXT: "'v' || i::VARCHAR",
    LogicalType.INTEGER: "i",
    LogicalType.DECIMAL: "(i % 1000000) / 100",
    LogicalType.DOUBLE: "i * 0.5",
    LogicalType.BOOLEAN: "i % 2 = 0",
    LogicalType.DATE: "DATE '2000-01-01' + (i % 9000)::INTEGER",
    LogicalType.TIMESTAMP: "make_timestamptz(1700000000000000 + i * 1000)",
}


class TimedLoader:
    """The loader, with the CPU seconds its drains take (DuckDB's threads included)."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.cpu_seconds = 0.0

    def drain(self) -> int:
        started = time.process_time()
        try:
            return self.loader.drain()
        finally:
            self.cpu_seconds += time.process_time() - started


def simulate(directory: Path, plan: run.Plan, workers: int) -> tuple[run.Summary, float, float]:
    container = Container.open(Settings(data_dir=directory))
    try:
        loader = TimedLoader(container.loader)  # the CLI's loader: OneID attributes every event
        target = run.Target(
            bank=container.bank,
            log=container.log,
            loader=loader,
            sources=container.sources,
            cipher=container.cipher,
            data_dir=directory,
        )
        started = time.perf_counter()
        summary = asyncio.run(run.simulate(target, plan, workers=workers))
        return summary, time.perf_counter() - started, loader.cpu_seconds
    finally:
        container.log.close_sync()
        container.warehouse.close()
        container.engine.dispose()


def record_length(directory: Path) -> float:
    con = duckdb.connect(str(directory / "warehouse" / "events.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT avg(length(properties) + length(context) + length(coalesce(traits, ''))) FROM events")
        found = row.fetchone()
        return float(found[0]) if found and found[0] is not None else 100.0
    finally:
        con.close()


def baseline(directory: Path, rows: dict[str, int], events: int, json_length: float) -> float:
    """Seconds to INSERT … SELECT FROM range() the same rows into the same DuckDB tables."""
    con = duckdb.connect(str(directory / "baseline.duckdb"), config={"threads": 1})
    try:
        con.execute(SCHEMA)
        for spec in BANK_TABLES:
            con.execute(table_ddl(spec))
        started = time.perf_counter()
        for spec in BANK_TABLES:
            columns = ", ".join(VALUES[c.type] for c in spec.columns)
            con.execute(f"INSERT INTO {spec.name} SELECT {columns} FROM range({rows.get(spec.name, 0)}) t(i)")
        blob = "'{\"k\":\"' || repeat('x', " + str(max(int(json_length / 2) - 8, 1)) + ") || '\"}'"
        con.execute(
            "INSERT INTO events (message_id, type, event, anonymous_id, user_id, timestamp, received_at, source, "
            f"properties, context, load_seq) SELECT 'm' || i::VARCHAR, 'track', 'app_launch', 'a' || (i % 1000000), "
            f"'u' || (i % 700000), make_timestamptz(1700000000000000 + i * 1000), "
            f"make_timestamptz(1700000000000000 + i * 1000), 's', {blob}, {blob}, i FROM range({events}) t(i)"
        )
        con.execute("CHECKPOINT")
        return time.perf_counter() - started
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="as `marketloop simulate` [cores, ≤ 4]")
    parser.add_argument("--quick", action="store_true", help="10,000 customers")
    args = parser.parse_args()
    customers = 10_000 if args.quick else args.customers
    plan = run.Plan(customers=customers, days=args.days, seed=args.seed, end=date(2025, 6, 30))
    scratch = Path(tempfile.mkdtemp(prefix="marketloop-bench-simulate-"))
    load_before = os.getloadavg()[0]
    cpu_before = os.times()
    try:
        summary, seconds, load_cpu = simulate(scratch / "data", plan, args.workers)
        cpu_after = os.times()
        raw = baseline(scratch, summary.rows, summary.events, record_length(scratch / "data"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    bank_rows = sum(summary.rows.values())
    result = {
        "benchmark": "simulate",
        "customers": customers,
        "days": args.days,
        "workers": args.workers,
        "events": summary.events,
        "bank_rows": bank_rows,
        "rows": summary.rows,
        "seconds": round(seconds, 1),
        "load_seconds": summary.load_seconds,
        "events_per_s": round(summary.events / seconds),
        "rows_per_s": round((bank_rows + summary.events) / seconds),
        "baseline_seconds": round(raw, 1),
        "ratio_to_baseline": round(seconds / raw, 1),
        "cpu_seconds": {
            "main_process": round(cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system, 1),
            "of_which_loading": round(load_cpu, 1),
            "worker_processes": round(
                cpu_after.children_user
                + cpu_after.children_system
                - cpu_before.children_user
                - cpu_before.children_system,
                1,
            ),
        },
        "target_seconds": 300,
        "meets_target": seconds <= 300,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "cores": os.cpu_count(),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
