"""`analytics:write`: saving, changing and deleting saved analyses and alert rules over HTTP, and who may."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketloop.access.permissions import BUILTIN_ROLES
from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant

FUNNEL = {
    "model": "funnel",
    "range": {"from": "2026-11-02", "to": "2026-11-09"},
    "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"],
    "window": "1d",
}
RULE = {
    "name": "logins",
    "metric": {"model": "events", "event": "login"},
    "kind": "threshold",
    "above": 1,
    "webhook": "https://hooks.example/a",
}


@pytest.fixture
def container(data_dir: Path, tmp_path: Path) -> Iterator[Container]:
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    opened = Container.open(Settings(data_dir=copy))
    yield opened
    opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container), base_url="https://testserver")


def test_write_goes_to_analysts_marketers_and_admins_only() -> None:
    holders = sorted(role for role, (_, permissions) in BUILTIN_ROLES.items() if "analytics:write" in permissions)
    assert holders == ["admin", "analyst", "marketer"]


def test_an_analyst_saves_changes_and_deletes_an_analysis(container: Container, client: TestClient) -> None:
    headers = grant(container.access, "analyst")
    saved = client.post("/v1/analytics/saved", json={"name": "wealth funnel", "spec": FUNNEL}, headers=headers)
    assert saved.status_code == 201
    analysis_id = saved.json()["analysis_id"]
    shorter = {"name": "two steps", "spec": FUNNEL | {"steps": FUNNEL["steps"][:2]}}
    changed = client.put(f"/v1/analytics/saved/{analysis_id}", json=shorter, headers=headers)
    assert changed.status_code == 200
    assert changed.json()["created_at"] == saved.json()["created_at"]
    ran = client.post(f"/v1/analytics/saved/{analysis_id}/query", headers=headers).json()
    assert [s["customers"] for s in ran["result"]["groups"][0]["steps"]] == [4, 4]
    assert [a["name"] for a in client.get("/v1/analytics/saved", headers=headers).json()] == ["two steps"]
    bad = client.put(
        f"/v1/analytics/saved/{analysis_id}", json={"name": "x", "spec": FUNNEL | {"window": "0d"}}, headers=headers
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["pointer"] == "/spec/window"
    assert client.delete(f"/v1/analytics/saved/{analysis_id}", headers=headers).status_code == 204
    assert client.post(f"/v1/analytics/saved/{analysis_id}/query", headers=headers).status_code == 404
    assert client.delete(f"/v1/analytics/saved/{analysis_id}", headers=headers).status_code == 404
    missing = client.put("/v1/analytics/saved/ana_nope", json={"name": "x", "spec": FUNNEL}, headers=headers)
    assert missing.status_code == 404


def test_a_marketer_keeps_pauses_and_deletes_an_alert_rule(container: Container, client: TestClient) -> None:
    headers = grant(container.access, "marketer")
    kept = client.post("/v1/analytics/alerts", json=RULE, headers=headers)
    assert kept.status_code == 201
    rule_id = kept.json()["rule_id"]
    assert kept.json()["enabled"] is True
    paused = client.put(f"/v1/analytics/alerts/{rule_id}?enabled=false", json=RULE | {"above": 5}, headers=headers)
    assert paused.status_code == 200
    assert (paused.json()["enabled"], paused.json()["rule"]["above"]) == (False, 5)
    assert container.alerts.run() == []  # paused: not checked
    resumed = client.put(f"/v1/analytics/alerts/{rule_id}?enabled=true", json=RULE | {"above": 5}, headers=headers)
    assert resumed.json()["enabled"] is True
    assert client.get(f"/v1/analytics/alerts/{rule_id}/checks", headers=headers).json() == []
    bad = client.put(f"/v1/analytics/alerts/{rule_id}", json=RULE | {"kind": "sometimes"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["pointer"] == "/kind"
    assert client.delete(f"/v1/analytics/alerts/{rule_id}", headers=headers).status_code == 204
    assert client.get("/v1/analytics/alerts", headers=headers).json() == []
    assert client.get(f"/v1/analytics/alerts/{rule_id}/checks", headers=headers).status_code == 404
    assert client.delete(f"/v1/analytics/alerts/{rule_id}", headers=headers).status_code == 404


@pytest.mark.parametrize("role", ["approver", "branch_manager", "auditor", "relationship_manager"])
def test_roles_without_write_change_nothing(container: Container, client: TestClient, role: str) -> None:
    owner = grant(container.access, "analyst")
    analysis_id = client.post("/v1/analytics/saved", json={"name": "f", "spec": FUNNEL}, headers=owner).json()
    rule_id = client.post("/v1/analytics/alerts", json=RULE, headers=owner).json()["rule_id"]
    headers = grant(container.access, role, branch_code="B01", rm_id="RM01")
    writes = [
        client.post("/v1/analytics/saved", json={"name": "f", "spec": FUNNEL}, headers=headers),
        client.put(
            f"/v1/analytics/saved/{analysis_id['analysis_id']}", json={"name": "g", "spec": FUNNEL}, headers=headers
        ),
        client.delete(f"/v1/analytics/saved/{analysis_id['analysis_id']}", headers=headers),
        client.post("/v1/analytics/alerts", json=RULE, headers=headers),
        client.put(f"/v1/analytics/alerts/{rule_id}", json=RULE, headers=headers),
        client.delete(f"/v1/analytics/alerts/{rule_id}", headers=headers),
    ]
    assert [w.status_code for w in writes] == [403] * 6
    assert all(w.json()["type"].endswith("/auth.forbidden") for w in writes)
    reads = client.get("/v1/analytics/alerts", headers=headers).status_code
    assert reads == (200 if role in ("approver", "branch_manager") else 403)
    assert [a.name for a in container.analyses.list()] == ["f"]
    assert [r.rule_id for r in container.alerts.stored()] == [rule_id]
