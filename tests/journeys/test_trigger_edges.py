"""The trigger API and CLI: create, list, dry-run, fire; problem+json and exit codes for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli

ABSENCE = {
    "kind": "event",
    "id": "no-purchase",
    "name": "看了不买",
    "posture": "proactive",
    "after": [{"event": "detail_view"}],
    "expect": [{"event": "purchase"}],
    "within": "PT10M",
}
EVENTS = [
    {"event": "detail_view", "user_id": "C1", "timestamp": "2026-01-05T09:00:00Z"},
    {"event": "detail_view", "user_id": "C2", "timestamp": "2026-01-05T09:01:00Z"},
    {"event": "purchase", "user_id": "C2", "timestamp": "2026-01-05T09:05:00Z"},
]


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    # No lifespan: the test drives the processor itself instead of its thread.
    return TestClient(create_app(container), base_url="https://testserver")


def test_create_list_dry_run_and_fire_over_http(client: TestClient, container: Container) -> None:
    writer = grant(container.access, "marketer")
    created = client.post("/v1/triggers", json=ABSENCE, headers=writer)
    assert created.status_code == 201, created.text
    assert created.json()["trigger_id"] == "no-purchase"
    again = client.post("/v1/triggers", json=ABSENCE, headers=writer)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    listed = client.get("/v1/triggers", headers=writer).json()
    assert [(t["trigger_id"], t["kind"], t["definition"]["name"]) for t in listed] == [
        ("no-purchase", "event", "看了不买")
    ]

    tried = client.post("/v1/triggers/test", json={"trigger_id": "no-purchase", "events": EVENTS}, headers=writer)
    assert tried.status_code == 200, tried.text
    assert [(f["customer"], f["reason"], f["at"]) for f in tried.json()["fires"]] == [
        ("C1", "absence", "2026-01-05T09:10:00Z")
    ]

    api = {"kind": "api", "id": "rm-referral", "required": ["product"]}
    assert client.post("/v1/triggers", json=api, headers=writer).status_code == 201
    call = {"customer": "C9", "payload": {"product": "WM1"}, "idempotency_key": "k-1"}
    fired = client.post("/v1/triggers/rm-referral/fire", json=call, headers=writer)
    assert fired.status_code == 202, fired.text
    status = client.get("/v1/triggers/status", headers=writer).json()
    assert [p["lag"] for p in status["keying"]] == [1], "collected, not keyed by OneID yet"
    container.processor.drain()
    status = client.get("/v1/triggers/status", headers=writer).json()
    assert status["keying"] == [{"partition": 0, "committed": 0, "end": 0, "lag": 0}]
    assert status["partitions"] == [{"partition": 0, "committed": 0, "end": 0, "lag": 0}]
    assert status["failures"] == 0
    fires = client.get("/v1/triggers/rm-referral/fires", headers=writer).json()
    assert [(f["reason"], f["context"]["payload"]) for f in fires] == [("api", {"product": "WM1"})]

    assert client.post("/v1/triggers/no-purchase/disable", headers=writer).json()["enabled"] is False
    recorded = [(e.action, e.target) for e in reversed(container.audit.entries(action="trigger."))]
    assert recorded == [
        ("trigger.create", "trigger:no-purchase"),
        ("trigger.create", "trigger:rm-referral"),
        ("trigger.fire", "trigger:rm-referral"),
        ("trigger.disable", "trigger:no-purchase"),
    ]


def test_bad_input_is_a_problem(client: TestClient, container: Container) -> None:
    writer = grant(container.access, "marketer")
    bad = client.post("/v1/triggers", json={"kind": "event", "id": "x", "expect": [], "within": 5}, headers=writer)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["type"].endswith("/triggers.invalid")
    assert bad.json()["errors"][0]["pointer"] == "/expect"

    events = [{"event": "x", "timestamp": "yesterday"}]
    tried = client.post("/v1/triggers/test", json={"trigger": ABSENCE, "events": events}, headers=writer)
    assert tried.status_code == 400
    assert tried.json()["errors"][0]["pointer"] == "/events/0/timestamp"

    neither = client.post("/v1/triggers/test", json={"events": []}, headers=writer)
    assert neither.status_code == 400
    assert client.get("/v1/triggers/nope", headers=writer).status_code == 404
    client.post("/v1/triggers", json=ABSENCE, headers=writer)
    not_api = client.post("/v1/triggers/no-purchase/fire", json={"customer": "C1"}, headers=writer)
    assert not_api.status_code == 400
    api = {"kind": "api", "id": "needs-product", "required": ["product"]}
    client.post("/v1/triggers", json=api, headers=writer)
    missing = client.post("/v1/triggers/needs-product/fire", json={"customer": "C1"}, headers=writer)
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["pointer"] == "/payload/product"


def test_reading_and_writing_need_their_permissions(client: TestClient, container: Container) -> None:
    assert client.get("/v1/triggers").status_code == 401
    analyst = grant(container.access, "analyst")
    assert client.get("/v1/triggers", headers=analyst).status_code == 200
    assert client.post("/v1/triggers", json=ABSENCE, headers=analyst).status_code == 403


def test_cli_create_list_test_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    definition = tmp_path / "absence.json"
    definition.write_bytes(orjson.dumps(ABSENCE))
    events = tmp_path / "events.json"
    events.write_bytes(orjson.dumps(EVENTS))

    code, out, err = run_cli(monkeypatch, capsys, "triggers", "create", "--file", str(definition), "--data-dir", data)
    assert code == 0, err
    assert "no-purchase" in out
    code, _, err = run_cli(monkeypatch, capsys, "triggers", "create", "--file", str(definition), "--data-dir", data)
    assert code == 4, "a taken id is a conflict"
    assert "exists" in err

    code, out, _ = run_cli(monkeypatch, capsys, "triggers", "list", "--json", "--data-dir", data)
    assert [t["trigger_id"] for t in orjson.loads(out)] == ["no-purchase"]

    args = ("triggers", "test", "--id", "no-purchase", "--events", str(events), "--json", "--data-dir", data)
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert [f["customer"] for f in orjson.loads(out)["fires"]] == ["C1"]

    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "event", "id": "b", "expect": [{"event": "a"}], "threshold": "many"}')
    code, _, err = run_cli(monkeypatch, capsys, "triggers", "create", "--file", str(broken), "--data-dir", data)
    assert code == 2
    assert "/threshold" in err
    code, _, err = run_cli(
        monkeypatch, capsys, "triggers", "create", "--file", str(tmp_path / "none.json"), "--data-dir", data
    )
    assert code == 2
    assert "cannot read" in err
    code, _, _ = run_cli(monkeypatch, capsys, "triggers", "disable", "nope", "--data-dir", data)
    assert code == 3


def test_journey_step_types_and_validation_over_http(client: TestClient, container: Container) -> None:
    reader = grant(container.access, "analyst")
    types = client.get("/v1/journeys/step-types", headers=reader).json()
    assert [t["type"] for t in types] == [
        "entry",
        "wait",
        "branch",
        "split",
        "send",
        "update",
        "rm_task",
        "webhook",
        "goal",
        "exit",
    ]
    journey = {
        "id": "welcome",
        "name": "代发客户欢迎",
        "steps": [
            {"id": "start", "type": "entry", "settings": {"source": "api"}, "next": {"next": "push"}},
            {"id": "push", "type": "send", "settings": {"channel": "push", "template": "welcome"},
             "next": {"sent": "done", "suppressed": "done", "failed": "done"}},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip
    valid = client.post("/v1/journeys/validate", json=journey, headers=reader)
    assert valid.status_code == 200, valid.text
    assert valid.json()["steps"]["push"] == ["sent", "suppressed", "failed"]
    journey["steps"][1]["next"] = {"sent": "nowhere"}  # type: ignore[index]
    invalid = client.post("/v1/journeys/validate", json=journey, headers=reader)
    assert invalid.status_code == 400
    assert invalid.headers["content-type"] == "application/problem+json"
    pointers = [e["pointer"] for e in invalid.json()["errors"]]
    assert pointers == ["/steps/1/next/sent", "/steps/1/next", "/steps/1/next"]
    assert client.get("/v1/journeys/step-types").status_code == 401
