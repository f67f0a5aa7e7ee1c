"""The journey fault test: SIGKILL `marketloop serve` while customers flow through a journey, then count the sends.

A real server on a temp data directory sends through `HttpGateways` (a push
and an SMS gateway on a local port). The journey is API entry → push → wait →
SMS → exit, purpose `service` (a maturity reminder: no marketing consent,
quiet hours or caps stand between the customer and the touch, so every
customer must get exactly both touches). The customers are let in through
`POST /v1/journeys/{id}/entries` in several requests; a request cut by a kill
is sent again after the restart with the same key, as a client would.

The server is killed with SIGKILL `kills` times at random moments (seeded)
while touches reach the gateways, restarted on the same data directory each
time, then left to finish and stopped with SIGTERM. `compare` then reads the
outbox and the delivery ledger from the stopped server's store and checks
them, and what the gateways received, against the expected touches: one
outbox row and one ledger row per (customer, send step), settled as sent,
and every touch delivered by the gateway once. Requests the gateway received
twice for one key (a crash after the provider accepted and before the ledger
recorded: sent again once the claim went stale) are counted as `resent`; a
real gateway de-duplicates them by the key, as the fake does.

    result = run_faults(tmp_path, FaultPlan(customers=2_000, kills=2))
    assert result.lost == 0 and result.duplicated == 0
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from marketloop.app.container import Container
from marketloop.app.settings import load_settings
from marketloop.testing.access import grant
from marketloop.testing.http_gateways import HttpGateways
from marketloop.testing.server import ServerProcess

JOURNEY = "fault_reminder"
SEND_STEPS = ("push", "sms")
REQUEST_DEADLINE = 120.0  # seconds a client keeps retrying one request across kills and restarts


@dataclass(frozen=True, kw_only=True)
class FaultPlan:
    customers: int = 100_000
    kills: int = 4
    entry_requests: int = 10  # the customers are let in through this many API requests
    wait_seconds: float = 3.0  # the journey's wait between the push and the SMS
    claim_stale_seconds: float = 2.0  # `[channels] claim_stale_seconds`: when a dead worker's claim lapses
    seed: int = 20261124
    finish_timeout: float = 600.0  # seconds the last server may take to finish every customer


@dataclass(frozen=True, kw_only=True)
class FaultResult:
    """What the run found; `lost` and `duplicated` must be 0 (the other numbers explain them)."""

    customers: int
    kills: int
    expected_sends: int
    outbox_rows: int
    ledger_rows: int
    provider_received_raw: int
    provider_distinct_keys: int
    resent: int  # requests the provider received again for a key it had (absorbed by its de-duplication)
    lost: int  # expected touches missing from the outbox, the ledger or the provider, or not settled as sent
    duplicated: int  # (customer, step) pairs with more than one outbox row, ledger row or distinct provider key
    unexpected: int  # rows or provider keys for touches no customer should get
    seconds: float
    kill_codes: list[int] = field(default_factory=list)
    stop_code: int = 0
    problems: list[str] = field(default_factory=list)  # a few examples of each kind of fault, for the message

    def line(self) -> dict[str, Any]:
        """The summary printed as one JSON line (without the examples and exit codes)."""
        found = asdict(self)
        for detail in ("kill_codes", "stop_code", "problems"):
            found.pop(detail)
        return found


def journey(wait_seconds: float) -> dict[str, Any]:
    """API entry → push → wait → SMS → exit; a touch not sent ends the run at `not_sent`."""
    not_sent = {"suppressed": "not_sent", "failed": "not_sent"}
    return {
        "id": JOURNEY,
        "name": "到期提醒（故障测试）",
        "steps": [
            {"id": "entry", "type": "entry", "settings": {"source": "api"}, "next": {"next": "push"}},
            {
                "id": "push",
                "type": "send",
                "settings": {"channel": "push", "template": "您的定期存款下周到期", "purpose": "service"},
                "next": {"sent": "pause", **not_sent},
            },
            {"id": "pause", "type": "wait", "settings": {"duration": f"PT{wait_seconds}S"}, "next": {"next": "sms"}},
            {
                "id": "sms",
                "type": "send",
                "settings": {"channel": "sms", "template": "您的定期存款下周到期，详询客户经理", "purpose": "service"},
                "next": {"sent": "done", **not_sent},
            },
            {"id": "done", "type": "exit", "settings": {"reason": "reminded"}},
            {"id": "not_sent", "type": "exit", "settings": {"reason": "not sent"}},
        ],
    }


def customer_numbers(count: int) -> list[str]:
    return [f"F{number:07d}" for number in range(count)]


def expected_keys(customers: list[str]) -> dict[str, tuple[str, str]]:
    """Each expected touch's idempotency key (`<journey>:v1:<run>:<step>:<customer>`) → (customer, step)."""
    return {f"{JOURNEY}:v1:1:{step}:{c}": (c, step) for c in customers for step in SEND_STEPS}


@dataclass
class _Feed:
    """The entry requests, sent one after the other from a thread; each retried until answered."""

    url: str
    headers: dict[str, str]
    batches: list[list[str]]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0) as client:
                for number, batch in enumerate(self.batches):
                    body = {"customers": batch, "key": f"fault-{number}", "context": _CONTEXT}
                    _post_until_answered(client, f"/v1/journeys/{JOURNEY}/entries", body)
        except (AssertionError, httpx.HTTPError) as error:  # reported by the main thread
            self.error = error
        finally:
            self.done.set()


_CONTEXT = {"addresses": {"push": "device-token-fault", "sms": "13800138000"}}


def _post_until_answered(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    deadline = time.monotonic() + REQUEST_DEADLINE
    while True:
        try:
            answer = client.post(path, json=body)
        except httpx.TransportError:  # killed or restarting: the same request again, as a client would
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} was not answered within {REQUEST_DEADLINE} s") from None
            time.sleep(0.05)
            continue
        if answer.status_code != 200:
            raise AssertionError(f"{path}: {answer.status_code} {answer.text}")
        return


def _wait_for(condition: Any, timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def _prepare(workdir: Path, gateways: HttpGateways, plan: FaultPlan) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The settings file, and a maker (admin) and a checker (approver) with API tokens."""
    data_dir = workdir / "data"
    config = workdir / "marketloop.toml"  # `ServerProcess` runs the server in the data directory's parent
    config.write_text(f"[channels]\nclaim_stale_seconds = {plan.claim_stale_seconds}\n\n{gateways.settings_toml()}")
    container = Container.open(load_settings(config, data_dir=data_dir))
    try:
        maker = grant(container.access, "admin", username="fault-maker")
        checker = grant(container.access, "approver", username="fault-checker")
    finally:
        container.close()
    return data_dir, maker, checker


def _publish(url: str, maker: dict[str, str], checker: dict[str, str], plan: FaultPlan) -> None:
    """Save the journey and publish it with an approved maker-checker request, over HTTP."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        saved = client.post("/v1/journeys", json=journey(plan.wait_seconds), headers=maker)
        assert saved.status_code == 201, saved.text
        asked = client.post(
            "/v1/approvals",
            json={"action": "journey.publish", "target": f"journey:{JOURNEY}", "reason": "fault test"},
            headers=maker,
        )
        assert asked.status_code == 201, asked.text
        approval = asked.json()["id"]
        decided = client.post(f"/v1/approvals/{approval}/approve", json={}, headers=checker)
        assert decided.status_code == 200, decided.text
        published = client.post(f"/v1/journeys/{JOURNEY}/publish", params={"approval": approval}, headers=maker)
        assert published.status_code == 200, published.text


def _finished(url: str, headers: dict[str, str]) -> int:
    """How many customers ended their run (either exit), from the journey's counts; -1 while unreachable."""
    try:
        answer = httpx.get(f"{url}/v1/journeys/{JOURNEY}/counts", headers=headers, timeout=30.0)
    except httpx.TransportError:
        return -1
    counts = answer.json()
    return sum(int(counts.get(step, {}).get("exited", 0)) for step in ("done", "not_sent"))


def _chaos(server: ServerProcess, gateways: HttpGateways, plan: FaultPlan, expected: int) -> list[int]:
    """Kill the server `kills` times, each at a random moment after a random share of the touches went out."""
    rng = random.Random(plan.seed)
    marks = sorted(rng.uniform(0.05, 0.85) * expected for _ in range(plan.kills))
    codes = []
    for mark in marks:
        _wait_for(lambda mark=mark: gateways.distinct >= mark, plan.finish_timeout, "touches to flow")
        time.sleep(rng.uniform(0.0, 0.2))
        codes.append(server.kill())
        server.start()
    return codes


def run_faults(workdir: Path, plan: FaultPlan) -> FaultResult:
    """Run the fault test in `workdir` (see the module docstring); the server is stopped when it returns."""
    started = time.monotonic()
    customers = customer_numbers(plan.customers)
    expected = expected_keys(customers)
    with HttpGateways() as gateways:
        data_dir, maker, checker = _prepare(workdir, gateways, plan)
        server = ServerProcess(data_dir)
        try:
            server.start()
            _publish(server.url, maker, checker, plan)
            size = -(-len(customers) // plan.entry_requests)
            feed = _Feed(server.url, maker, [customers[i : i + size] for i in range(0, len(customers), size)])
            feeder = threading.Thread(target=feed.run, name="fault-entries", daemon=True)
            feeder.start()
            kill_codes = _chaos(server, gateways, plan, len(expected))
            _wait_for(feed.done.is_set, REQUEST_DEADLINE, "the entry requests")
            if feed.error is not None:
                raise feed.error
            _wait_for(
                lambda: _finished(server.url, maker) >= len(customers), plan.finish_timeout, "every run to end", 0.25
            )
            stop_code = server.stop()
        finally:
            server.cleanup()
        received = list(gateways.received)
    return compare(data_dir, expected, received, kill_codes, stop_code, time.monotonic() - started)


def _rows(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    """The journey's rows of the stopped server's operational store (SQLite in the data directory)."""
    db = sqlite3.connect(f"file:{data_dir / 'state.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute(query, (JOURNEY,)).fetchall()
    finally:
        db.close()


def _pairs(keys: list[str]) -> Counter[tuple[str, str]]:
    """How many distinct keys each (customer, step) has: `<journey>:v<n>:<run>:<step>:<customer>`."""
    found: Counter[tuple[str, str]] = Counter()
    for key in keys:
        parts = key.split(":")
        found[(parts[-1], parts[-2])] += 1
    return found


def compare(
    data_dir: Path,
    expected: dict[str, tuple[str, str]],
    received: list[Any],
    kill_codes: list[int],
    stop_code: int,
    seconds: float,
) -> FaultResult:
    """Check the stopped server's outbox and ledger, and what the gateways received, against `expected`."""
    outbox = {
        key: (status, orjson.loads(outcome) if outcome else {})
        for key, status, outcome in _rows(
            data_dir, "SELECT key, status, outcome FROM journey_outbox WHERE journey_id = ?"
        )
    }
    ledger = dict(_rows(data_dir, "SELECT idempotency_key, status FROM channel_deliveries WHERE campaign = ?"))
    distinct = {accepted.key for accepted in received}
    problems: list[str] = []
    lost: set[str] = set()
    for what, missing in (
        ("missing from the outbox", set(expected) - set(outbox)),
        ("not settled as sent in the outbox", {k for k, (s, o) in outbox.items() if k in expected and not _sent(s, o)}),
        ("missing from the ledger", set(expected) - set(ledger)),
        ("not accepted in the ledger", {k for k, s in ledger.items() if k in expected and s != "accepted"}),
        ("never received by the provider", set(expected) - distinct),
    ):
        lost |= missing
        problems += [f"{len(missing)} {what}, e.g. {sorted(missing)[:3]}"] if missing else []
    twice = {
        pair
        for keys in (list(outbox), list(ledger), sorted(distinct))
        for pair, count in _pairs(keys).items()
        if count > 1
    }
    problems += [f"{len(twice)} (customer, step) pairs touched twice, e.g. {sorted(twice)[:3]}"] if twice else []
    unexpected = (set(outbox) | set(ledger) | distinct) - set(expected)
    problems += [f"{len(unexpected)} unexpected keys, e.g. {sorted(unexpected)[:3]}"] if unexpected else []
    return FaultResult(
        customers=len({customer for customer, _ in expected.values()}),
        kills=len(kill_codes),
        expected_sends=len(expected),
        outbox_rows=len(outbox),
        ledger_rows=len(ledger),
        provider_received_raw=len(received),
        provider_distinct_keys=len(distinct),
        resent=len(received) - len(distinct),
        lost=len(lost),
        duplicated=len(twice),
        unexpected=len(unexpected),
        seconds=round(seconds, 1),
        kill_codes=kill_codes,
        stop_code=stop_code,
        problems=problems,
    )


def _sent(status: str, outcome: dict[str, Any]) -> bool:
    """Settled as reaching the customer: sent now, or sent before (a DUPLICATE of a key the provider took)."""
    if status != "done":
        return False
    return outcome.get("status") == "sent" or (
        outcome.get("status") == "duplicate" and outcome.get("code") == "accepted"
    )
