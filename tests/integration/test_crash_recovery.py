"""Crash recovery: every acknowledged event is loaded exactly once, however often the server is killed.

A load generator (a few concurrent senders, batches of 50 events with
explicit messageIds) posts to a real `marketloop serve` while the test kills
it with SIGKILL at random moments and restarts it on the same data directory.
A sender whose request fails on the connection retries the same batch after
the restart, as an SDK does, so a batch whose answer was lost arrives twice.
At the end the server stops gracefully and the warehouse must hold every
acknowledged messageId exactly once, and nothing that was never sent.

The moments of the kills are random (seeded); the assertions do not depend on
where they fall.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pytest

from marketloop.adapters.filelog import FileLog
from marketloop.ports.eventlog import START
from marketloop.testing.server import ServerProcess, cli_json, create_source

pytestmark = pytest.mark.slow

SEED = 20261124
SENDERS = 4
BATCH_SIZE = 50
KILLS = 4
RETRY_DEADLINE = 60.0  # seconds a sender keeps retrying one batch before the test fails


@dataclass
class Traffic:
    key: str
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    acknowledged_batches: int = 0
    retried_batches: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


async def _post_until_acknowledged(client: httpx.AsyncClient, traffic: Traffic, body: dict[str, object]) -> None:
    deadline = time.monotonic() + RETRY_DEADLINE
    retried = False
    while True:
        try:
            response = await client.post("/v1/batch", json=body, auth=(traffic.key, ""))
        except httpx.TransportError:
            # Killed or restarting: retry the same batch, same messageIds, as an SDK would.
            if time.monotonic() > deadline:
                raise AssertionError(f"a batch was not acknowledged within {RETRY_DEADLINE} s") from None
            if not retried:
                traffic.retried_batches += 1
                retried = True
            await asyncio.sleep(0.02)
            continue
        assert response.status_code == 200, f"{response.status_code}: {response.text}"
        assert response.json() == {"success": True}
        return


async def _sender(number: int, client: httpx.AsyncClient, traffic: Traffic) -> None:
    batch_number = 0
    while not traffic.stopping.is_set():
        ids = [f"s{number}-b{batch_number}-e{n}" for n in range(BATCH_SIZE)]
        batch = [
            {"type": "track", "userId": f"C{number:04d}", "event": "crash_load", "messageId": message_id}
            for message_id in ids
        ]
        traffic.sent.update(ids)
        await _post_until_acknowledged(client, traffic, {"batch": batch})
        traffic.acknowledged.update(ids)
        traffic.acknowledged_batches += 1
        batch_number += 1


async def _wait_for_batches(traffic: Traffic, count: int) -> None:
    target = traffic.acknowledged_batches + count
    deadline = time.monotonic() + RETRY_DEADLINE
    while traffic.acknowledged_batches < target:
        assert time.monotonic() < deadline, f"no traffic: {traffic.acknowledged_batches} batches acknowledged"
        await asyncio.sleep(0.01)


async def _chaos(server: ServerProcess, traffic: Traffic, rng: random.Random) -> list[int]:
    """Kill the server KILLS times at random moments under load, restarting it each time."""
    exit_codes = []
    for _ in range(KILLS):
        await _wait_for_batches(traffic, rng.randint(3, 10))  # traffic flows again after the restart
        await asyncio.sleep(rng.uniform(0.0, 0.25))  # ... then a random moment within it
        exit_codes.append(await asyncio.to_thread(server.kill))
        await asyncio.to_thread(server.start)
    await _wait_for_batches(traffic, 10)
    traffic.stopping.set()
    return exit_codes


async def _run_load(server: ServerProcess, key: str) -> tuple[Traffic, list[int]]:
    traffic = Traffic(key=key)
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    async with httpx.AsyncClient(base_url=server.url, timeout=20.0, limits=limits) as client:
        senders = [asyncio.create_task(_sender(n, client, traffic)) for n in range(SENDERS)]
        try:
            exit_codes = await _chaos(server, traffic, random.Random(SEED))
            await asyncio.gather(*senders)
        finally:
            traffic.stopping.set()
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
    return traffic, exit_codes


def _logged(data_dir: Path) -> int:
    """How many records the event log holds (client retries included), read after the server stopped."""
    log = FileLog(data_dir / "log")
    try:
        return sum(1 for _ in log.read(0, START, 10**9))
    finally:
        log.close_sync()


def _loaded(data_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    with duckdb.connect(str(data_dir / "warehouse" / "events.duckdb"), read_only=True) as db:
        ids = [row[0] for row in db.execute("SELECT message_id FROM events").fetchall()]
        duplicates = db.execute(
            "SELECT message_id, count(*) FROM events GROUP BY message_id HAVING count(*) > 1"
        ).fetchall()
    return ids, duplicates


def test_acknowledged_events_survive_repeated_sigkill_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = create_source(data_dir, "crash-test")
    server = ServerProcess(data_dir)
    try:
        server.start()
        traffic, kill_codes = asyncio.run(_run_load(server, key))
        stop_code = server.stop()
    finally:
        server.cleanup()

    assert kill_codes == [-signal.SIGKILL] * KILLS
    assert stop_code == 0, server.output()
    ids, duplicates = _loaded(data_dir)
    loaded = set(ids)
    logged = _logged(data_dir)
    print(
        f"\ncrash test: {KILLS} kills, {len(traffic.sent)} sent, {len(traffic.acknowledged)} acknowledged, "
        f"{logged} in the log, {len(loaded)} loaded, {len(duplicates)} duplicated, "
        f"{traffic.retried_batches} batches retried"
    )
    assert duplicates == [], f"messageIds loaded more than once: {duplicates[:10]}"
    missing = traffic.acknowledged - loaded
    assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {sorted(missing)[:10]}"
    assert loaded <= traffic.sent, f"events that were never sent: {sorted(loaded - traffic.sent)[:10]}"
    assert logged >= len(loaded)
    assert cli_json(data_dir, "events", "count") == {"count": len(loaded)}
