"""Consent over HTTP: consent:read / consent:write, the recording user as actor, the caller's data scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core import bank
from marketloop.testing.access import grant


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    rows = [
        {"cust_no": "C1", "branch_id": "B1", "rm_id": "RM1", "open_date": date(2020, 1, 1)},
        {"cust_no": "C2", "branch_id": "B2", "rm_id": "RM2", "open_date": date(2020, 1, 1)},
    ]
    opened.bank.append(bank.CUSTOMERS, pl.DataFrame(rows))
    yield opened
    opened.close()


def test_record_then_read_consent_with_the_user_as_actor(container: Container) -> None:
    client = TestClient(create_app(container), base_url="https://testserver")
    marketer = grant(container.access, "marketer", username="mona")
    body = {"channel": "sms", "purpose": "marketing", "status": "withdrawn", "source": "sms_reply"}
    recorded = client.post("/v1/customers/C1/consent", headers=marketer, json=body)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["actor"].startswith("user:mona/token:")
    shown = client.get("/v1/customers/C1/consent", headers=marketer, params={"history": "true"}).json()
    decision = {(d["channel"], d["purpose"]): d["allowed"] for d in shown["decisions"]}
    assert decision[("sms", "marketing")] is False
    assert decision[("sms", "service")] is True
    assert [r["status"] for r in shown["history"]] == ["withdrawn"]
    assert container.audit.entries(action="consent.withdraw")[0].actor.startswith("user:mona/")


def test_consent_needs_its_permissions_and_the_scope(container: Container) -> None:
    client = TestClient(create_app(container), base_url="https://testserver")
    body = {"channel": "sms", "purpose": "marketing", "status": "granted", "source": "counter"}
    analyst = grant(container.access, "analyst")
    assert client.get("/v1/customers/C1/consent", headers=analyst).status_code == 200
    assert client.post("/v1/customers/C1/consent", headers=analyst, json=body).status_code == 403
    rm = grant(container.access, "relationship_manager", rm_id="RM1")
    assert client.post("/v1/customers/C1/consent", headers=rm, json=body).status_code == 201
    assert client.post("/v1/customers/C2/consent", headers=rm, json=body).status_code == 404
    assert client.get("/v1/customers/C2/consent", headers=rm).status_code == 404
    bad = client.post("/v1/customers/C1/consent", headers=rm, json=body | {"channel": "pigeon"})
    assert bad.status_code == 422
