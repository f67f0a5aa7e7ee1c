"""The customer API and CLI: profile by any identifier, search, refresh, 404 problem and exit code 3."""

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

from .conftest import AS_OF, EVENTS, fill_bank

TOPICS = ["natural", "assets", "liabilities", "risk", "transactions", "behaviour", "value"]
AROUND = ["identities", "tags", "scores", "consent", "timeline"]


def _data_dir(path: Path) -> Path:
    """A data directory holding the small bank and its events, not yet refreshed."""
    container = Container.open(Settings(data_dir=path))
    try:
        fill_bank(container.bank, container.cipher)
        container.warehouse.load(container.warehouse.stage("test", 0, EVENTS), len(EVENTS) - 1)
    finally:
        container.close()
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return _data_dir(tmp_path / "data")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API over a refreshed bank, shared by the HTTP tests (which only read)."""
    container = Container.open(Settings(data_dir=_data_dir(tmp_path_factory.mktemp("api") / "data")))
    container.profiles.refresh(AS_OF)
    try:
        yield TestClient(create_app(container), headers=grant(container.access, "admin"))  # no lifespan: no loader
    finally:
        container.close()


def test_profile_by_phone_over_http(client: TestClient) -> None:
    response = client.get("/v1/customers/phone:13800001234/profile", params={"timeline_limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert list(body)[:2] == ["cust_no", "as_of"]
    assert set(TOPICS + AROUND) <= set(body)
    assert body["cust_no"] == "C001"
    assert body["natural"]["name"] == "张*"
    assert body["natural"]["phone"] == "138****1234"
    assert body["liabilities"]["mortgage_balance"] == 795_000
    assert (len(body["timeline"]["items"]), body["timeline"]["has_more"]) == (2, True)


def test_unknown_customer_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v1/customers/C999/profile")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/customer.not-found")


def test_invalid_phone_is_a_400_problem(client: TestClient) -> None:
    response = client.get("/v1/customers/phone:123/profile")
    assert response.status_code == 400
    assert response.json()["type"].endswith("/customer.invalid-phone")


def test_timeline_over_http(client: TestClient) -> None:
    response = client.get("/v1/customers/C001/timeline", params={"limit": 1, "offset": 1})
    assert [i["message_id"] for i in response.json()["items"]] == ["E3"]


def test_search_over_http(client: TestClient) -> None:
    response = client.get("/v1/customers", params={"city": "上海", "name_prefix": "张", "limit": 1})
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (2, 1, 0)
    assert body["items"] == [
        {
            "cust_no": "C001", "name": "张*", "phone": "138****1234", "city": "上海", "vip_level": "gold",
            "vip_tier": "gold", "risk_tolerance": "C3", "branch_id": "B01", "rm_id": "R01", "aum": 210000.0,
        }
    ]  # fmt: skip


def test_search_validation_over_http(client: TestClient) -> None:
    response = client.get("/v1/customers", params={"risk_tolerance": "C7"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/risk_tolerance"
    assert client.get("/v1/customers", params={"limit": 0}).status_code == 422


def test_cli_refresh_show_and_search(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ("--data-dir", str(data_dir))
    code, out, _ = run_cli(
        monkeypatch, capsys, "customers", "refresh", "--as-of", "2026-03-31T12:00:00", "--json", *where
    )
    assert code == 0
    assert orjson.loads(out)["customers"] == 4

    code, out, _ = run_cli(monkeypatch, capsys, "customers", "show", "13800001234", "--json", *where)
    assert code == 0
    shown = orjson.loads(out)
    assert set(TOPICS + AROUND) <= set(shown)
    assert shown["assets"]["aum"] == 210_000
    assert shown["natural"]["name"] == "张*"

    code, out, _ = run_cli(monkeypatch, capsys, "customers", "search", "--name", "欧阳", "--json", *where)
    assert code == 0
    assert [hit["cust_no"] for hit in orjson.loads(out)["items"]] == ["C003"]


def test_cli_show_as_tables(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "customers", "refresh", "--data-dir", str(data_dir))
    assert code == 0
    assert "Refreshed 4 customer profiles" in out
    code, out, _ = run_cli(monkeypatch, capsys, "customers", "show", "C001", "--data-dir", str(data_dir))
    assert code == 0
    for topic in TOPICS:
        assert topic in out
    code, out, _ = run_cli(monkeypatch, capsys, "customers", "search", "--city", "北京", "--data-dir", str(data_dir))
    assert code == 0
    assert "2 customers match" in out


def test_cli_unknown_customer_exits_3(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "customers", "show", "C999", "--json", "--data-dir", str(data_dir))
    assert code == 3
    assert out == ""
    assert "No such customer" in err
    assert "C999" in err


def test_cli_bad_as_of(data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        monkeypatch, capsys, "customers", "refresh", "--as-of", "yesterday", "--data-dir", str(data_dir)
    )
    assert code == 2
    assert "--as-of" in err
