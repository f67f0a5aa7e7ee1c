"""Data scope by the branch tree: an RM cannot read another branch's customer by any route.

Bank: head office HQ; branch SH with sub-branch SH-PD; branch BJ.
C1 (SH-PD, RM1), C2 (BJ, RM2), C3 (SH, RM3). Each customer has a OneID with
a user_id U1..U3.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.api.auth import declarations
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core import bank
from marketloop.testing.access import grant

CUSTOMERS = {"C1": ("SH-PD", "RM1", "上海"), "C2": ("BJ", "RM2", "北京"), "C3": ("SH", "RM3", "上海")}
# Path parameters of routes that name a customer, and how to fill them for a customer.
CUSTOMER_PARAMETERS = {"identifier", "one_id", "id_type", "value", "cust_no"}


def _fill(container: Container) -> None:
    store = container.bank
    store.append(
        bank.BRANCHES,
        pl.DataFrame(
            {
                "branch_id": ["HQ", "SH", "SH-PD", "BJ"],
                "name": ["总行", "上海分行", "浦东支行", "北京分行"],
                "parent_id": [None, "HQ", "SH", "HQ"],
                "level": [0, 1, 2, 1],
            }
        ),
    )
    rows = [
        {"cust_no": c, "branch_id": b, "rm_id": r, "city": city, "open_date": date(2020, 1, 1)}
        for c, (b, r, city) in CUSTOMERS.items()
    ]
    store.append(bank.CUSTOMERS, pl.DataFrame(rows))
    container.profiles.refresh()
    for n, cust_no in enumerate(CUSTOMERS, start=1):
        identifiers = [
            container.identity.identifier("cust_no", cust_no),
            container.identity.identifier("user_id", f"U{n}"),
        ]
        container.identity.merge(identifiers, reason="test", source="test")


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path_factory.mktemp("scope") / "data"))
    _fill(opened)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def app(container: Container) -> FastAPI:
    return create_app(container)


def _client(app: FastAPI, headers: dict[str, str]) -> TestClient:
    return TestClient(app, base_url="https://testserver", headers=headers)


def _one_id(container: Container, cust_no: str) -> str:
    return container.identity.show(container.identity.identifier("cust_no", cust_no)).one_id


def _urls_for(app: FastAPI, container: Container, cust_no: str) -> list[str]:
    """Every GET URL of the app that names one customer, filled in for `cust_no` (in each way it can be named)."""
    number = cust_no[1:]
    ways = [
        {
            "identifier": cust_no,
            "cust_no": cust_no,
            "one_id": _one_id(container, cust_no),
            "id_type": "cust_no",
            "value": cust_no,
        },
        {"identifier": f"user_id:U{number}", "id_type": "user_id", "value": f"U{number}"},
    ]
    urls = []
    for row in declarations(app):
        names = set(re.findall(r"\{(\w+)\}", row.path))
        if row.method != "GET" or not names or not names <= CUSTOMER_PARAMETERS:
            continue
        for way in ways:
            if names <= way.keys():
                urls.append(re.sub(r"\{(\w+)\}", lambda m, way=way: way[m.group(1)], row.path))
    return sorted(set(urls))


def test_an_rm_cannot_read_another_branchs_customer_by_any_route(app: FastAPI, container: Container) -> None:
    rm = _client(app, grant(container.access, "relationship_manager", branch_code="SH-PD", rm_id="RM1"))
    own, others = _urls_for(app, container, "C1"), _urls_for(app, container, "C2") + _urls_for(app, container, "C3")
    own_answers = {url: rm.get(url).status_code for url in own}
    # The RM reads their own customer wherever their role allows (profile, timeline, identity, tags, …) ...
    assert sum(code == 200 for code in own_answers.values()) >= 5, own_answers
    assert set(own_answers.values()) <= {200, 403}, own_answers
    # ... and another branch's customer nowhere: 404 as if unknown, or 403 where the role has no permission.
    for url in others:
        response = rm.get(url)
        assert response.status_code in {403, 404}, f"{url}: {response.status_code} {response.text[:200]}"
        assert response.headers["content-type"] == "application/problem+json"


def test_search_returns_only_customers_in_scope(app: FastAPI, container: Container) -> None:
    def found(headers: dict[str, str], **params: str) -> list[str]:
        response = _client(app, headers).get("/v1/customers", params=params)
        assert response.status_code == 200, response.text
        return [hit["cust_no"] for hit in response.json()["items"]]

    head_office = grant(container.access, "analyst", branch_code="HQ")
    shanghai = grant(container.access, "branch_manager", branch_code="SH")
    rm1 = grant(container.access, "relationship_manager", branch_code="SH-PD", rm_id="RM1")
    assert found(head_office) == ["C1", "C2", "C3"]
    assert found(grant(container.access, "analyst")) == ["C1", "C2", "C3"]
    assert found(shanghai) == ["C1", "C3"]
    assert found(rm1) == ["C1"]
    assert found(rm1, cust_no="C2") == []
    assert found(rm1, branch_id="BJ") == []


def test_a_branch_manager_sees_the_subtree_not_siblings(app: FastAPI, container: Container) -> None:
    shanghai = _client(app, grant(container.access, "branch_manager", branch_code="SH"))
    assert shanghai.get("/v1/customers/C1/profile").status_code == 200  # a sub-branch's customer
    assert shanghai.get("/v1/customers/C3/profile").status_code == 200
    assert shanghai.get("/v1/customers/C2/profile").status_code == 404


def test_segment_export_holds_only_customers_in_scope(container: Container, tmp_path: Path) -> None:
    saved = container.segments.save("沪京", 'city in ("上海", "北京")')
    container.segments.materialise(saved.segment_id)
    scope = container.access.principal_of(
        container.access.users.create("rm-export", roles=["relationship_manager"], password=None, rm_id="RM1")
    ).scope
    result = container.segments.export(
        saved.segment_id, tmp_path / "m.csv", "csv", audit=container.audit, user="user:rm-export", scope=scope
    )
    assert result.rows == 1
    assert pl.read_csv(result.path, comment_prefix="#")["cust_no"].to_list() == ["C1"]
    everyone = container.segments.export(saved.segment_id, tmp_path / "all.csv", "csv", audit=container.audit)
    assert everyone.rows == 3
