"""Maker-checker: a maker asks, a different checker decides, the maker spends the approval once (segment export)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from marketloop.access.approvals import ApprovalService
from marketloop.adapters.sql.approvals import SqlApprovalStore
from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core import bank
from marketloop.core.errors import MarketloopError
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli
from marketloop.testing.clock import FrozenClock


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    rows = [{"cust_no": f"C{n}", "branch_id": "B1", "city": "上海", "open_date": date(2020, 1, 1)} for n in range(3)]
    opened.bank.append(bank.CUSTOMERS, pl.DataFrame(rows))
    opened.profiles.refresh()
    yield opened
    opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container), base_url="https://testserver")


@pytest.fixture
def segment_id(container: Container) -> str:
    saved = container.segments.save("上海", 'city = "上海"')
    container.segments.materialise(saved.segment_id)
    return saved.segment_id


def _ask(client: TestClient, maker: dict[str, str], segment_id: str) -> str:
    body = {"action": "segment.export", "target": f"segment:{segment_id}", "reason": "branch campaign list"}
    response = client.post("/v1/approvals", headers=maker, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["id"])


def test_export_needs_an_approval_from_someone_else_and_spends_it_once(
    client: TestClient, container: Container, segment_id: str
) -> None:
    maker = grant(container.access, "marketer", username="maker")
    checker = grant(container.access, "approver", username="checker")
    url = f"/v1/segments/{segment_id}/export"
    refused = client.get(url, headers=maker)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/approval.required")
    approval = _ask(client, maker, segment_id)
    assert client.get(url, headers=maker, params={"approval": approval}).status_code == 403  # still pending
    boss = grant(container.access, "admin", username="boss")
    own = _ask(client, boss, segment_id)
    self_decided = client.post(f"/v1/approvals/{own}/approve", headers=boss)
    assert self_decided.status_code == 403  # nobody decides their own request, not even an admin
    assert self_decided.json()["type"].endswith("/approval.own-request")
    assert client.post(f"/v1/approvals/{approval}/approve", headers=checker).json()["status"] == "approved"
    assert client.post(f"/v1/approvals/{approval}/reject", headers=boss).status_code == 409  # decided already
    exported = client.get(url, headers=maker, params={"approval": approval})
    assert exported.status_code == 200, exported.text
    assert exported.text.startswith("# marketloop_exported_by=user:maker/token:")
    again = client.get(url, headers=maker, params={"approval": approval})
    assert again.status_code == 403
    actions = [e.action for e in reversed(container.audit.entries(action="approval."))]
    assert actions == ["approval.request", "approval.request", "approval.approve", "approval.use"]
    assert container.audit.entries(action="export.write")[0].target == f"segment:{segment_id}"


def test_an_approval_works_only_for_its_maker_action_and_target(
    client: TestClient, container: Container, segment_id: str
) -> None:
    maker = grant(container.access, "marketer", username="maker")
    other = grant(container.access, "marketer", username="other")
    approval = _ask(client, maker, segment_id)
    client.post(f"/v1/approvals/{approval}/approve", headers=grant(container.access, "approver"))
    stolen = client.get(f"/v1/segments/{segment_id}/export", headers=other, params={"approval": approval})
    assert stolen.status_code == 403
    assert stolen.json()["type"].endswith("/approval.mismatch")
    other_segment = container.segments.save("另一个", 'city = "北京"').segment_id
    wrong = client.get(f"/v1/segments/{other_segment}/export", headers=maker, params={"approval": approval})
    assert wrong.status_code == 403
    assert client.get(f"/v1/segments/{segment_id}/export", headers=maker, params={"approval": approval}).is_success


def test_rejected_and_expired_requests_cannot_be_spent(
    client: TestClient, container: Container, segment_id: str
) -> None:
    maker = grant(container.access, "marketer", username="maker")
    checker = grant(container.access, "approver")
    rejected = _ask(client, maker, segment_id)
    answer = client.post(f"/v1/approvals/{rejected}/reject", headers=checker, json={"note": "too broad"})
    assert answer.json()["status"] == "rejected"
    assert answer.json()["decision_note"] == "too broad"
    url = f"/v1/segments/{segment_id}/export"
    assert client.get(url, headers=maker, params={"approval": rejected}).status_code == 403

    clock = FrozenClock()
    approvals = ApprovalService(SqlApprovalStore(container.engine), clock, container.audit)
    marketer = container.access.principal_of(container.access.users.get("maker"))
    approver = container.access.principal_of(container.access.users.create("al", roles=["approver"], password=None))
    target = f"segment:{segment_id}"
    late = approvals.request("segment.export", target, maker=marketer, reason="late")
    clock.advance(timedelta(days=3))
    with pytest.raises(MarketloopError) as expired:
        approvals.decide(late.id, checker=approver, approve=True)
    assert expired.value.code == "approval.not-pending"
    unused = approvals.request("segment.export", target, maker=marketer, reason="unused")
    approvals.decide(unused.id, checker=approver, approve=True)
    clock.advance(timedelta(days=3))
    with pytest.raises(MarketloopError) as stale:
        approvals.use(unused.id, action="segment.export", target=target, user=marketer)
    assert stale.value.code == "approval.not-approved"


def test_asking_needs_the_actions_permission_and_listing_is_per_role(
    client: TestClient, container: Container, segment_id: str
) -> None:
    analyst = grant(container.access, "analyst")
    body = {"action": "segment.export", "target": f"segment:{segment_id}", "reason": "x"}
    assert client.post("/v1/approvals", headers=analyst, json=body).status_code == 403
    unknown = client.post("/v1/approvals", headers=analyst, json=body | {"action": "rocket.launch"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["pointer"] == "/action"
    maker = grant(container.access, "marketer")
    mine = _ask(client, maker, segment_id)
    _ask(client, grant(container.access, "marketer"), segment_id)
    assert [a["id"] for a in client.get("/v1/approvals", headers=maker).json()] == [mine]
    assert len(client.get("/v1/approvals", headers=grant(container.access, "approver")).json()) == 2
    assert client.get(f"/v1/approvals/{mine}", headers=analyst).status_code == 404
    assert client.post(f"/v1/approvals/{mine}/approve", headers=analyst).status_code == 403


def test_cli_lists_approves_and_rejects_as_a_named_checker(
    client: TestClient,
    container: Container,
    segment_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    maker = grant(container.access, "marketer", username="maker")
    first, second = _ask(client, maker, segment_id), _ask(client, maker, segment_id)
    container.access.users.create("carla", roles=["approver"], password=None)
    data = str(container.settings.data_dir)

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, *args, "--data-dir", data)

    code, out, _ = cli("approvals", "list", "--status", "pending", "--json")
    assert code == 0
    assert {a["id"] for a in json.loads(out)} == {first, second}
    assert cli("approvals", "approve", first, "--as", "carla", "--note", "ok")[0] == 0
    assert cli("approvals", "reject", second, "--as", "carla")[0] == 0
    code, _, err = cli("approvals", "approve", second, "--as", "maker")
    assert code == 5
    assert "approvals:decide" in err
    code, out, _ = cli("approvals", "list", "--json")
    assert {a["id"]: a["status"] for a in json.loads(out)} == {first: "approved", second: "rejected"}
