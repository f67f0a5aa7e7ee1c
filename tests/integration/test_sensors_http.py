"""The Sensors Analytics endpoints through the real app: token or project picks the source; events land."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container, str]]:
    container = Container.open(Settings(data_dir=tmp_path))
    _, key = container.sources.create("bank-app", project="retail")
    with TestClient(create_app(container)) as client:
        yield client, container, key


def _event(n: int, kind: str = "track") -> dict[str, Any]:
    return {
        "type": kind,
        "event": "fund_page_view",
        "distinct_id": f"device-{n}",
        "time": 1_764_000_000_000 + n,
        "_track_id": n,
        "properties": {"$os": "Android", "fund_code": "000001"},
        "lib": {"$lib": "Android"},
    }


def _form(events: list[dict[str, Any]], *, zipped: bool) -> str:
    payload = orjson.dumps(events)
    if zipped:
        payload = gzip.compress(payload)
    fields = {"data_list": base64.b64encode(payload).decode(), "gzip": "1" if zipped else "0"}
    return urlencode(fields)


def test_post_data_list_with_token_and_gzip(served: tuple[TestClient, Container, str]) -> None:
    client, container, key = served
    body = _form([_event(1), _event(2), _event(3, "profile_set")], zipped=True)
    answer = client.post(
        f"/sa?token={key}", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 200, answer.text
    container.loader.drain()
    assert container.warehouse.count_events() == 3
    assert container.warehouse.count_events("fund_page_view") == 2


def test_project_name_selects_the_source_and_beacon_answers_a_gif(served: tuple[TestClient, Container, str]) -> None:
    client, container, _ = served
    data = base64.b64encode(orjson.dumps(_event(7))).decode()
    answer = client.get("/sa.gif", params={"project": "retail", "data": data})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    container.loader.drain()
    assert container.warehouse.count_events() == 1


def test_unknown_token_and_unknown_project_are_401(served: tuple[TestClient, Container, str]) -> None:
    client, _, _ = served
    data = base64.b64encode(orjson.dumps(_event(1))).decode()
    for params in ({"token": "nope", "data": data}, {"project": "nope", "data": data}, {"data": data}):
        answer = client.get("/sa.gif", params=params)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"


def test_bad_base64_is_a_problem(served: tuple[TestClient, Container, str]) -> None:
    client, _, key = served
    answer = client.post(
        f"/sa?token={key}", content="data=%%%not-base64", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 400
    assert answer.json()["title"]
