"""/v1/experiments over HTTP: create, list, get, record from files, results, compare, report; problem+json errors."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant
from marketloop.testing.experiments import simulate_campaign

PLAN = {
    "experiment_id": "exp_first_loan",
    "name": "首贷旅程",
    "control": "holdout",
    "variants": {"holdout": 1, "push": 1},
    "goal": "loan_drawdown",
    "kind": "holdout",
}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container), base_url="https://testserver")


def test_create_results_report_over_http(client: TestClient, container: Container) -> None:
    marketer = grant(container.access, "marketer")
    created = client.post("/v1/experiments", json=PLAN, headers=marketer)
    assert created.status_code == 201, created.text
    assert created.json()["variants"] == [{"name": "holdout", "share": 1.0}, {"name": "push", "share": 1.0}]
    campaign = simulate_campaign(9, 2000, shares={"holdout": 0.5, "push": 0.5}, goal="loan_drawdown")
    service = container.experiments
    service.assign("exp_first_loan", campaign.assignments)
    service.record_touches("exp_first_loan", campaign.touches)
    service.record_conversions(campaign.conversions)

    analyst = grant(container.access, "analyst")
    assert [e["experiment_id"] for e in client.get("/v1/experiments", headers=analyst).json()] == ["exp_first_loan"]
    assert client.get("/v1/experiments/exp_first_loan", headers=analyst).json()["name"] == "首贷旅程"
    results = client.get("/v1/experiments/exp_first_loan/results", headers=analyst)
    assert results.status_code == 200, results.text
    rate = results.json()["analysis"]["metrics"][0]
    assert rate["kind"] == "binary"
    assert rate["variants"][1]["ci_low"] <= campaign.true_rate_lift <= rate["variants"][1]["ci_high"]
    page = client.get("/v1/experiments/exp_first_loan/report", headers=analyst)
    assert page.headers["content-type"].startswith("text/html")
    assert "实验复盘：首贷旅程" in page.text
    workbook = client.get("/v1/experiments/exp_first_loan/report?format=xlsx", headers=analyst)
    assert load_workbook(BytesIO(workbook.content)).sheetnames[0] == "摘要"
    compared = client.get("/v1/experiments/compare?ids=exp_first_loan", headers=analyst)
    assert compared.status_code == 200
    assert compared.json()[0]["period"] == "全部"


def test_errors_are_problems(client: TestClient, container: Container) -> None:
    marketer = grant(container.access, "marketer")
    missing = client.get("/v1/experiments/exp_none/results", headers=marketer)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("experiments.not-found")
    bad = client.post("/v1/experiments", json=PLAN | {"control": "nobody"}, headers=marketer)
    assert bad.status_code == 400
    assert "control" in bad.json()["detail"]
    assert client.post("/v1/experiments", json=PLAN, headers=marketer).status_code == 201
    assert client.post("/v1/experiments", json=PLAN, headers=marketer).status_code == 409
    empty = client.get("/v1/experiments/exp_first_loan/results", headers=marketer)
    assert empty.status_code == 400
    assert empty.json()["type"].endswith("experiments.no-assignments")
    invalid = client.post("/v1/experiments", json={"name": "x"}, headers=marketer)
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"


def test_permissions(client: TestClient, container: Container) -> None:
    assert client.get("/v1/experiments").status_code == 401
    auditor = grant(container.access, "auditor")
    assert client.post("/v1/experiments", json=PLAN, headers=auditor).status_code == 403


def test_records_over_http(client: TestClient, container: Container) -> None:
    marketer = grant(container.access, "marketer")
    assert client.post("/v1/experiments", json=PLAN, headers=marketer).status_code == 201
    rows = [
        {"cust_no": f"C{i}", "variant": "holdout" if i % 2 else "push", "assigned_at": "2026-03-01T08:00:00+08:00"}
        for i in range(6)
    ]
    added = client.post("/v1/experiments/exp_first_loan/assignments", json={"rows": rows}, headers=marketer)
    assert added.json() == {"added": 6}
    again = client.post("/v1/experiments/exp_first_loan/assignments", json={"rows": rows}, headers=marketer)
    assert again.json() == {"added": 0}
    touch = {"touch_id": "t0", "cust_no": "C0", "channel": "push", "touched_at": "2026-03-01T00:05:00Z"}
    touches = [touch | {"stage": "sent"}, touch | {"stage": "opened"}]
    assert client.post("/v1/experiments/exp_first_loan/touches", json={"rows": touches}, headers=marketer).json() == {
        "added": 2
    }
    conversion = {
        "conversion_id": "v1",
        "cust_no": "C0",
        "goal": "loan_drawdown",
        "converted_at": "2026-03-02T00:00:00Z",
    }
    converted = client.post(
        "/v1/experiments/conversions", json={"rows": [conversion | {"revenue": 80}]}, headers=marketer
    )
    assert converted.json() == {"added": 1}
    results = client.get("/v1/experiments/exp_first_loan/results", headers=marketer).json()
    push = next(row for row in results["funnel"] if row["variant"] == "push")
    assert (push["targeted"], push["sent"], push["opened"], push["converted"], push["revenue"]) == (3, 1, 1, 1, 80.0)
    bad_stage = client.post(
        "/v1/experiments/exp_first_loan/touches", json={"rows": [touch | {"stage": "read"}]}, headers=marketer
    )
    assert bad_stage.status_code == 422
    assert bad_stage.headers["content-type"] == "application/problem+json"
    unknown = client.post(
        "/v1/experiments/exp_first_loan/assignments",
        json={"rows": [rows[0] | {"variant": "sms"}]},
        headers=marketer,
    )
    assert unknown.status_code == 400
    assert "variant is not one of" in unknown.json()["detail"]
    missing = client.post("/v1/experiments/exp_none/assignments", json={"rows": rows}, headers=marketer)
    assert missing.status_code == 404
