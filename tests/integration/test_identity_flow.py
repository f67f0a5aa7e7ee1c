"""OneID end to end: events posted to the API get OneIDs at load time, merges show at once, unmerge moves events."""

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
from marketloop.core.identities import Identifier
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    # No lifespan, so no background loader: the tests drain it themselves.
    return TestClient(create_app(container), headers=grant(container.access, "admin"))


@pytest.fixture
def key(container: Container) -> str:
    return container.sources.create("mobile-app")[1]


def post(client: TestClient, key: str, *events: dict[str, Any]) -> None:
    response = client.post("/v1/batch", json={"batch": list(events)}, auth=(key, ""))
    assert response.status_code == 200, response.text


def one_ids(container: Container, table: str = "events") -> dict[str, str]:
    rows = container.warehouse.cursor().execute(f"SELECT message_id, one_id FROM {table}").fetchall()
    return {str(m): str(o) for m, o in rows}


def track(message_id: str, **ids: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "event": "fund_page_view", **ids}


def test_an_identify_shows_earlier_anonymous_events_under_the_customer_at_once(
    container: Container, client: TestClient, key: str
) -> None:
    identify = {"type": "identify", "messageId": "login-1", "userId": "U1", "traits": {"cust_no": "C1"}}
    post(client, key, identify, track("bought", userId="U1"))
    container.loader.drain()
    post(client, key, track("browse-1", anonymousId="anon-9"), track("browse-2", anonymousId="anon-9"))
    container.loader.drain()

    loaded = one_ids(container)
    customer = container.identity.resolve(Identifier("cust_no", "C1"))
    visitor = loaded["browse-1"]
    assert customer is not None
    assert loaded == {"login-1": customer, "bought": customer, "browse-1": visitor, "browse-2": visitor}
    assert visitor != customer

    post(client, key, {"type": "identify", "messageId": "login-2", "userId": "U1", "anonymousId": "anon-9"})
    container.loader.drain()

    assert set(one_ids(container, "events_resolved").values()) == {customer}, "the merge shows at once"
    assert one_ids(container)["browse-1"] == visitor, "a mapping, not a rewrite of the loaded rows"
    person = client.get("/v1/identities/user_id/U1").json()
    assert person["one_id"] == customer
    assert person["merged"] == [visitor]
    assert {(i["type"], i["value"]) for i in person["identifiers"]} == {
        ("cust_no", "C1"),
        ("user_id", "U1"),
        ("anonymous_id", "anon-9"),
    }


def test_unmerge_moves_the_events_of_the_split_identifiers(container: Container, client: TestClient, key: str) -> None:
    post(
        client,
        key,
        {"type": "identify", "messageId": "m1", "userId": "U1", "anonymousId": "shared", "traits": {"cust_no": "C1"}},
        track("m2", anonymousId="shared"),
        track("m3", userId="U1"),
    )
    container.loader.drain()
    customer = one_ids(container)["m1"]

    response = client.post(
        f"/v1/identities/{customer}/unmerge",
        json={"identifiers": [{"type": "anonymous_id", "value": "shared"}]},
    )
    assert response.status_code == 200, response.text
    split = response.json()
    assert split["from_one_id"] == customer
    assert split["events_reattributed"] == 1
    resolved = one_ids(container, "events_resolved")
    assert resolved == {"m1": customer, "m2": split["one_id"], "m3": customer}

    post(client, key, track("m4", userId="U1", anonymousId="shared"))  # the wrong link again: refused now
    container.loader.drain()
    assert one_ids(container, "events_resolved")["m4"] == customer
    history = client.get(f"/v1/identities/{customer}/history").json()
    assert [h["kind"] for h in history["history"]] == ["unmerge"]
    assert history["history"][0]["actor"].startswith("user:test-admin-")  # the authenticated user
    assert [c["reason"] for c in history["conflicts"]] == ["separated"]


def test_merge_api_refuses_two_customer_numbers_with_a_problem(container: Container, client: TestClient) -> None:
    def merge(*identifiers: tuple[str, str]) -> Any:
        body = {"identifiers": [{"type": t, "value": v} for t, v in identifiers]}
        return client.post("/v1/identities/merge", json=body)

    first = merge(("cust_no", "C1"), ("phone", "138 0013 8000"))
    assert first.status_code == 200, first.text
    assert merge(("cust_no", "C2")).status_code == 200
    refused = merge(("cust_no", "C2"), ("phone", "+8613800138000"))
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("identity.merge-refused")
    shown = client.get("/v1/identities/phone/13800138000").json()
    assert shown["one_id"] == first.json()["one_id"]
    phone = next(i for i in shown["identifiers"] if i["type"] == "phone")
    assert phone["protected"] is True
    assert phone["value"] != "13800138000", "only the keyed hash leaves the server"
    assert client.get("/v1/identities/phone/12345").status_code == 400
    assert client.get("/v1/identities/cust_no/C9").status_code == 404
    assert client.get("/v1/identities/loyalty/1").status_code == 400
    assert client.post("/v1/identities/merge", json={"identifiers": []}).status_code == 422


def test_oneids_survive_a_restart_and_the_view_shows_promoted_columns(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    container = Container.open(settings)
    try:
        key = container.sources.create("h5")[1]
        post(TestClient(create_app(container)), key, track("m1", anonymousId="a1", properties={"amount": 5}))
        container.loader.drain()
        before = one_ids(container)
    finally:
        container.close()
    container = Container.open(settings)
    try:
        assert container.identity.resolve(Identifier("anonymous_id", "a1")) == before["m1"]
        container.warehouse.promote("amount", "integer")
        rows = container.warehouse.cursor().execute("SELECT one_id, p_amount FROM events_resolved").fetchall()
        assert rows == [(before["m1"], 5)]
    finally:
        container.close()


def test_the_cli_shows_merges_unmerges_and_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    code, out, err = run_cli(
        monkeypatch, capsys, "identity", "merge", "cust_no:C1", "user_id:U1", "anonymous_id:a1", *where
    )
    assert code == 0, err
    code, out, _ = run_cli(monkeypatch, capsys, "identity", "show", "user_id", "U1", "--json", *where)
    person = orjson.loads(out)
    assert {i["value"] for i in person["identifiers"]} == {"C1", "U1", "a1"}

    code, _, err = run_cli(monkeypatch, capsys, "identity", "merge", "cust_no:C2", "user_id:U1", *where)
    assert code == 4, "a refused merge is a conflict"
    assert "cust_no" in err

    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "identity",
        "unmerge",
        person["one_id"],
        "anonymous_id:a1",
        "--actor",
        "ops",
        "--json",
        *where,
    )
    assert code == 0, err
    assert orjson.loads(out)["from_one_id"] == person["one_id"]
    code, out, _ = run_cli(monkeypatch, capsys, "identity", "history", person["one_id"], "--json", *where)
    traced = orjson.loads(out)
    assert [(h["kind"], h["actor"]) for h in traced["history"]] == [("unmerge", "ops")]
    assert traced["conflicts"][0]["reason"] == "unique_type"
    code, _, err = run_cli(monkeypatch, capsys, "identity", "show", "user_id", "nobody", *where)
    assert code == 3
    code, _, err = run_cli(monkeypatch, capsys, "identity", "merge", "no-colon", *where)
    assert code == 2
