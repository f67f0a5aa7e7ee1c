"""The /v1/tags routes: permissions, problem+json pointing at the spot, versions, values, coverage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import approved, grant


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings.model_validate({"data_dir": tmp_path, "security": {"key_file": tmp_path / "k"}}))
    con = opened.warehouse.cursor()
    con.execute("INSERT INTO customers (cust_no, branch_id, open_date, city) VALUES "
                "('C1', 'B1', DATE '2020-01-01', '上海'), ('C2', 'B1', DATE '2021-01-01', '北京')")  # fmt: skip
    yield opened
    opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    container.access.roles.create("tag_reader", ["tags:read"])
    container.access.roles.create("tag_writer", ["tags:read", "tags:write"])
    return TestClient(create_app(container), base_url="https://testserver")


def test_reading_and_writing_need_their_permissions(client: TestClient, container: Container) -> None:
    assert client.get("/v1/tags").status_code == 401
    reader = grant(container.access, "tag_reader")
    assert client.get("/v1/tags", headers=reader).status_code == 200
    body = {"name": "x_list", "title": "名单", "kind": "static", "category": "value"}
    denied = client.post("/v1/tags", json=body, headers=reader)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    assert client.delete("/v1/tags/x_list", headers=grant(container.access, "tag_writer")).status_code == 403


def test_retiring_a_tag_needs_an_approved_request(client: TestClient, container: Container) -> None:
    admin = grant(container.access, "admin")
    body = {"name": "x_list", "title": "名单", "kind": "static", "category": "value"}
    assert client.post("/v1/tags", json=body, headers=admin).status_code in (200, 201)
    unapproved = client.delete("/v1/tags/x_list", headers=admin)
    assert unapproved.status_code == 403
    assert "approved request" in unapproved.json()["title"] + unapproved.json().get("detail", "")
    approval = approved(container.access, admin, "tag.delete", "tag:x_list")
    retired = client.delete(f"/v1/tags/x_list?approval={approval}", headers=admin)
    assert retired.status_code == 200
    assert retired.json()["retired"]
    assert client.delete(f"/v1/tags/x_list?approval={approval}", headers=admin).status_code == 403, "used once"


def test_a_bad_definition_is_a_problem_pointing_at_the_spot(client: TestClient, container: Container) -> None:
    writer = grant(container.access, "tag_writer")
    body = {
        "name": "bad_rule",
        "title": "坏",
        "category": "assets",
        "definition": {"cases": [{"when": "aum > 1", "value": "a"}, {"when": {"field": "aumm", "op": ">", "value": 1},
                                                                       "value": "b"}]},
    }  # fmt: skip
    answer = client.post("/v1/tags", json=body, headers=writer)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["errors"][0]["pointer"] == "/definition/cases/1/when/field"
    assert "aumm" in problem["errors"][0]["detail"]
    text = client.post("/v1/tags", json=body | {"definition": {"when": "city = 上海"}}, headers=writer).json()
    assert text["errors"][0]["pointer"] == "/definition/when"
    assert (text["errors"][0]["line"], text["errors"][0]["column"]) == (1, 8)


def test_versions_values_and_coverage(client: TestClient, container: Container) -> None:
    writer = grant(container.access, "tag_writer")
    body = {"name": "shanghai", "title": "上海客户", "category": "natural", "definition": {"when": 'city = "上海"'}}
    assert client.post("/v1/tags", json=body, headers=writer).status_code == 201
    second = client.post("/v1/tags", json=body | {"shared_with": ["credit_card"]}, headers=writer).json()
    assert second["version"] == 2
    assert second["lineage"]["relations"] == ["customers"]
    assert [v["version"] for v in client.get("/v1/tags/shanghai/versions", headers=writer).json()] == [1, 2]
    assert len(client.get("/v1/tags", headers=writer).json()) > 100  # the starter library came with the first use
    missing = client.post("/v1/tags/refresh", json={"full": True}, headers=writer)
    assert missing.status_code == 409  # the starter tags read the profile, which is not built yet
    refreshed = client.post("/v1/tags/refresh", json={"tags": ["shanghai"]}, headers=writer).json()
    assert refreshed["refreshed"] == ["shanghai"]
    values = client.get("/v1/tags/customers/C1", headers=writer).json()
    assert [(v["tag"], v["value"]) for v in values] == [("shanghai", "true")]
    coverage = client.get("/v1/tags/shanghai/coverage", headers=writer).json()
    assert (coverage[0]["customers"], coverage[0]["population"], coverage[0]["coverage"]) == (1, 2, 0.5)
    assert client.get("/v1/tags/nothing", headers=writer).status_code == 404

    static = {"name": "call_list", "title": "外呼", "kind": "static", "category": "value"}
    assert client.post("/v1/tags", json=static, headers=writer).status_code == 201
    imported = client.put("/v1/tags/call_list/values", json={"values": {"C2": "true", "C9": "true"}}, headers=writer)
    assert imported.json() == {"tag": "call_list", "customers": 1, "changed": 1, "rejected": ["C9"]}
