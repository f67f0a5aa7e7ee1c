"""The tracking plan end to end: block, quarantine, fix the plan, replay; promoted columns; the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.ports.state import TrackingMode
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli

PLAN: dict[str, Any] = {
    "events": {
        "fund_buy": {
            "properties": {
                "fund_code": {"type": "string", "required": True},
                "amount": {"type": "number", "required": True, "promote": True},
                "channel": {"type": "string", "allowed": ["app", "h5"]},
            }
        }
    }
}


def buy(message_id: str, **properties: Any) -> dict[str, Any]:
    props = {"fund_code": "000001", "amount": 1000.5, "channel": "app"} | properties
    return {"type": "track", "messageId": message_id, "userId": "C0001", "event": "fund_buy", "properties": props}


BATCH = [
    buy("good-1"),
    {"type": "identify", "messageId": "good-2", "userId": "C0001", "traits": {"risk_level": 3}},
    buy("bad-channel", channel="wechat"),
    {"type": "track", "messageId": "bad-unplanned", "userId": "C0001", "event": "fund_redeem"},
    buy("bad-amount", amount="1000"),
]


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    # Not entered as a context manager: no lifespan, so no background loader; tests drain it themselves.
    return TestClient(create_app(container), headers=grant(container.access, "admin"))


def put_plan(client: TestClient, plan: dict[str, Any]) -> Any:
    response = client.put("/v1/tracking-plan", content=orjson.dumps(plan), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def in_events(container: Container, message_ids: list[str]) -> dict[str, int]:
    rows = (
        container.warehouse.cursor()
        .execute("SELECT message_id, count(*) FROM events WHERE list_contains(?, message_id) GROUP BY 1", [message_ids])
        .fetchall()
    )
    return {str(message_id): int(count) for message_id, count in rows}


def test_blocked_events_are_quarantined_then_replayed_once_after_the_plan_is_fixed(
    container: Container, client: TestClient
) -> None:
    _, key = container.sources.create("mobile-app", tracking_mode=TrackingMode.BLOCK)
    assert put_plan(client, PLAN)["version"] == 1

    response = client.post("/v1/batch", json={"batch": BATCH}, auth=(key, ""))
    assert response.status_code == 200, response.text
    assert response.json() | {"rejected": []} == {"success": True, "accepted": 2, "quarantined": 3, "rejected": []}
    container.loader.drain()

    assert container.warehouse.count_events() == 2
    held = client.get("/v1/tracking/quarantine").json()
    assert {q["message_id"]: q["violations"] for q in held} == {
        "bad-channel": ["not_allowed: channel='wechat' not in ['app', 'h5']"],
        "bad-unplanned": ["unplanned_event: fund_redeem"],
        "bad-amount": ["wrong_type: amount expected number got string"],
    }
    records = {q["message_id"]: q["record"] for q in held}
    assert records["bad-channel"]["properties"]["channel"] == "wechat"
    violations = client.get("/v1/tracking/violations", params={"source": "mobile-app"}).json()
    assert len(violations) == 3
    assert all(v["quarantined"] for v in violations)
    summary = client.get("/v1/tracking/violations/summary", params={"event": "fund_buy"}).json()
    assert sorted((s["violation"], s["count"]) for s in summary) == [
        ("not_allowed: channel='wechat' not in ['app', 'h5']", 1),
        ("wrong_type: amount expected number got string", 1),
    ]

    fixed = client.get("/v1/tracking-plan").json()
    fixed["events"]["fund_buy"]["properties"]["channel"]["allowed"].append("wechat")
    fixed["events"]["fund_redeem"] = {"properties": {}}
    assert put_plan(client, fixed)["version"] == 2

    replayed = client.post("/v1/tracking/quarantine/replay").json()
    assert replayed == {
        "plan_version": 2,
        "checked": 3,
        "released": 2,
        "still_quarantined": 1,
        "still_failing": {"wrong_type: amount expected number got string": 1},
    }
    container.loader.drain()
    assert in_events(container, ["good-1", "good-2", "bad-channel", "bad-unplanned", "bad-amount"]) == {
        "good-1": 1,
        "good-2": 1,
        "bad-channel": 1,
        "bad-unplanned": 1,
    }
    assert [q["message_id"] for q in client.get("/v1/tracking/quarantine").json()] == ["bad-amount"]
    everything = client.get("/v1/tracking/quarantine", params={"include_released": "true"}).json()
    assert {q["message_id"]: q["released_at"] is not None for q in everything} == {
        "bad-channel": True,
        "bad-unplanned": True,
        "bad-amount": False,
    }

    again = client.post("/v1/tracking/quarantine/replay").json()
    assert (again["checked"], again["released"]) == (1, 0)
    container.loader.drain()
    assert container.warehouse.count_events() == 4


def test_a_promoted_property_becomes_a_typed_column_backfilled_and_filled_on_load(
    container: Container, client: TestClient
) -> None:
    _, key = container.sources.create("h5", tracking_mode=TrackingMode.WARN)
    client.post("/v1/batch", json={"batch": [buy("early", amount=12.5, units=2)]}, auth=(key, ""))
    container.loader.drain()

    plan = {"events": {"fund_buy": {"properties": {"amount": {"type": "number", "promote": True}}}}}
    plan["events"]["fund_buy"]["properties"]["units"] = {"type": "integer", "promote": True}
    put_plan(client, plan)
    client.post("/v1/batch", json={"batch": [buy("late", amount=7, units="three")]}, auth=(key, ""))
    container.loader.drain()

    cursor = container.warehouse.cursor()
    types = dict(
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'events' AND column_name IN ('p_amount', 'p_units')"
        ).fetchall()
    )
    assert types == {"p_amount": "DOUBLE", "p_units": "BIGINT"}
    rows = cursor.execute("SELECT message_id, p_amount, p_units FROM events ORDER BY message_id").fetchall()
    assert rows == [("early", 12.5, 2), ("late", 7.0, None)]
    found = client.get("/v1/tracking/violations").json()
    assert [(v["message_id"], v["violation"], v["quarantined"]) for v in found] == [
        ("late", "wrong_type: units expected integer got string", False)
    ]


def test_bad_plans_and_stale_copies_are_problems_with_paths(client: TestClient) -> None:
    bad = client.put("/v1/tracking-plan", content=b"events:\n  e:\n    properties:\n      p: {type: money}\n")
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"] == [
        {"pointer": "/events/e/properties/p/type", "detail": bad.json()["errors"][0]["detail"]}
    ]
    put_plan(client, {"events": {}})
    stale = client.put("/v1/tracking-plan", content=b'{"version": 0, "events": {}}')
    assert stale.status_code == 409
    assert stale.json()["type"].endswith("tracking.plan-changed")
    unknown = client.get("/v1/tracking/violations", params={"source": "nope"})
    assert unknown.status_code == 404


def test_the_cli_sets_shows_lists_and_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("events:\n  fund_buy:\n    properties:\n      amount: {type: number, promote: true}\n")
    code, out, _ = run_cli(monkeypatch, capsys, "tracking", "set", str(plan_file), *where)
    assert code == 0
    assert "version 1" in out
    assert "p_amount" in out

    code, out, _ = run_cli(monkeypatch, capsys, "tracking", "show", "--json", *where)
    assert orjson.loads(out)["events"]["fund_buy"]["properties"]["amount"] == {"type": "number", "promote": True}

    code, out, _ = run_cli(
        monkeypatch, capsys, "tracking", "violations", "--summary", "--since", "24h", "--json", *where
    )
    assert (code, orjson.loads(out)) == (0, [])
    code, out, _ = run_cli(monkeypatch, capsys, "tracking", "replay", "--json", *where)
    assert orjson.loads(out)["checked"] == 0

    plan_file.write_text("events:\n  fund_buy:\n    properties:\n      amount: {type: money}\n")
    code, _, err = run_cli(monkeypatch, capsys, "tracking", "set", str(plan_file), *where)
    assert code == 2
    assert "/events/fund_buy/properties/amount/type" in err
    code, _, err = run_cli(monkeypatch, capsys, "tracking", "violations", "--since", "last week", *where)
    assert code == 2
    assert "--since" in err
