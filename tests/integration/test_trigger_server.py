"""Triggers in a real `marketloop serve`: killed with SIGKILL mid-stream, restarted, stopped with SIGTERM.

Events go in through the collection API; the absence trigger's timers are
pending when the server is killed. After the restart and a graceful stop the
fires must be exactly the expected ones: each once, none lost.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from marketloop.testing.server import ServerProcess, cli, create_source

pytestmark = pytest.mark.slow

ABSENCE_SECONDS = 1.0
ABSENCE = {
    "kind": "event",
    "id": "no-purchase",
    "posture": "proactive",
    "after": [{"event": "detail_view"}],
    "expect": [{"event": "purchase"}],
    "within": ABSENCE_SECONDS,
}
INFLOW = {
    "kind": "event",
    "id": "big-inflow",
    "expect": [{"event": "transfer_in", "where": [{"property": "amount", "op": "gte", "value": 50000}]}],
}


def _batch(customers: range) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for number in customers:
        user = f"C{number:03d}"
        found.append({"type": "track", "userId": user, "event": "detail_view", "messageId": f"view-{user}"})
        if number % 3 == 0:
            found.append({"type": "track", "userId": user, "event": "purchase", "messageId": f"buy-{user}"})
        amount = 80000 if number % 4 == 0 else 100
        found.append(
            {
                "type": "track",
                "userId": user,
                "event": "transfer_in",
                "messageId": f"in-{user}",
                "properties": {"amount": amount, "cust": user},
            }
        )
    return found


def _post(server: ServerProcess, key: str, customers: range) -> None:
    response = httpx.post(f"{server.url}/v1/batch", json={"batch": _batch(customers)}, auth=(key, ""), timeout=10)
    assert response.status_code == 200, response.text


def _fires(data_dir: Path, trigger_id: str) -> list[dict[str, object]]:
    done = cli(data_dir, "triggers", "fires", trigger_id, "--limit", "10000")
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_fires_survive_kill_and_restart_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = create_source(data_dir, "mobile-banking")
    for number, definition in enumerate((ABSENCE, INFLOW)):
        path = tmp_path / f"trigger-{number}.json"
        path.write_bytes(orjson.dumps(definition))
        cli(data_dir, "triggers", "create", "--file", str(path))
    server = ServerProcess(data_dir)
    try:
        server.start()
        _post(server, key, range(0, 20))
        server.kill()  # pending absence timers, maybe an unprocessed batch
        server.start()
        _post(server, key, range(20, 40))
        server.kill()
        server.start()
        time.sleep(ABSENCE_SECONDS + 0.5)  # the absences come due; the restarted server fires them
        assert server.stop() == 0
    finally:
        server.cleanup()

    absences = _fires(data_dir, "no-purchase")
    causes = sorted(str(fire["cause"][0]) for fire in absences)  # type: ignore[index]
    assert causes == sorted(f"view-C{n:03d}" for n in range(40) if n % 3 != 0)
    inflows = _fires(data_dir, "big-inflow")
    customers = sorted(fire["context"]["properties"]["cust"] for fire in inflows)  # type: ignore[index]
    assert customers == [f"C{n:03d}" for n in range(40) if n % 4 == 0]
    assert len({fire["fire_id"] for fire in absences + inflows}) == len(absences) + len(inflows)
