"""The journey API and the runner wired in the container: a real event through the stream processor to a touch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.events import Event
from marketloop.testing.access import approved, grant

from .conftest import wealth_journey


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    # No lifespan, so no background threads: the tests drain the processor and the runner themselves.
    return TestClient(create_app(container), headers=grant(container.access, "admin"))


def _publish(container: Container, client: TestClient, journey_id: str = "wealth_browse") -> Any:
    maker = {"Authorization": str(client.headers["Authorization"])}
    approval = approved(container.access, maker, "journey.publish", f"journey:{journey_id}")
    answer = client.post(f"/v1/journeys/{journey_id}/publish", params={"approval": approval})
    assert answer.status_code == 200, answer.text
    return answer


def test_create_publish_pause_resume_counts(container: Container, client: TestClient) -> None:
    created = client.post("/v1/journeys", json=wealth_journey())
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft"
    assert client.post("/v1/journeys", json=wealth_journey()).status_code == 409
    unapproved = client.post("/v1/journeys/wealth_browse/publish")
    assert unapproved.status_code == 403
    published = _publish(container, client)
    assert published.json()["version"] == 1
    assert published.json()["status"] == "active"
    assert client.post("/v1/journeys/wealth_browse/pause").json()["status"] == "paused"
    conflict = client.post("/v1/journeys/wealth_browse/pause")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    assert client.post("/v1/journeys/wealth_browse/resume").json()["status"] == "active"
    counts = client.get("/v1/journeys/wealth_browse/counts").json()
    assert counts["push"] == dict.fromkeys(
        ("entered", "waiting", "sent", "suppressed", "failed", "converted", "exited"), 0
    )
    assert [j["journey_id"] for j in client.get("/v1/journeys").json()] == ["wealth_browse"]
    assert client.get("/v1/journeys/step-types").status_code == 200  # still the step types, not a journey
    assert client.get("/v1/journeys/nope").status_code == 404


def test_invalid_graph_is_a_problem_with_pointers(client: TestClient) -> None:
    broken = wealth_journey()
    broken["steps"][1]["next"] = {"sent": "nowhere"}
    answer = client.post("/v1/journeys", json=broken)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "/steps/1/next/sent" in {e["pointer"] for e in answer.json()["errors"]}


def test_dry_run_walks_test_customers(client: TestClient) -> None:
    client.post("/v1/journeys", json=wealth_journey())
    body = {
        "customers": [
            {"customer": "T1", "context": {"properties": {"product": "稳盈"}}},
            {
                "customer": "T2",
                "context": {"properties": {"product": "稳盈"}},
                "events": [{"event": "touch_opened", "properties": {"campaign": "wealth_browse"}}],
            },
            {"customer": "T3", "context": {"properties": {"product": "稳盈"}}, "suppressed": ["push"]},
        ]
    }
    paths = client.post("/v1/journeys/wealth_browse/dry-run", json=body).json()
    steps = {p["customer"]: [(s["step"], s["kind"]) for s in p["steps"]] for p in paths}
    assert ("sms", "sent") in steps["T1"]
    assert steps["T2"][-1] == ("opened", "exited")
    assert ("push", "suppressed") in steps["T3"]
    assert ("sms", "sent") in steps["T3"]
    bad = client.post("/v1/journeys/wealth_browse/dry-run", json={"customers": [{"who": 1}]})
    assert bad.status_code == 400


def test_a_processed_event_enters_the_journey_once(container: Container, client: TestClient) -> None:
    trigger = {"id": "browse_wealth", "kind": "event", "expect": [{"event": "view_product"}]}
    assert client.post("/v1/triggers", json=trigger).status_code == 201
    journey = wealth_journey()
    journey["steps"][1]["settings"]["channel"] = "inapp"
    assert client.post("/v1/journeys", json=journey).status_code == 201
    _publish(container, client)
    now = datetime.now(UTC)
    event = Event(
        message_id="m1",
        type="track",
        source_id="src",
        received_at=now,
        timestamp=now,
        event="view_product",
        user_id="C1",
        properties={"product": "稳盈"},
    )
    asyncio.run(container.log.append(0, [msgspec.json.encode(event)]))
    container.processor.drain()
    container.journey_runner.drain()
    container.journey_runner.drain()
    counts: dict[str, Any] = client.get("/v1/journeys/wealth_browse/counts").json()
    assert counts["entry"]["entered"] == 1
    assert sum(counts["push"][k] for k in ("sent", "suppressed", "failed")) == 1


def test_an_api_entry_lets_customers_in_once_per_key(container: Container, client: TestClient) -> None:
    journey = wealth_journey("api_offer")
    journey["steps"][0]["settings"] = {"source": "api"}
    assert client.post("/v1/journeys", json=journey).status_code == 201
    body = {"customers": ["C1", "C2"], "key": "campaign-2026-01", "context": {"product": "稳盈90天"}}
    assert client.post("/v1/journeys/api_offer/entries", json=body).status_code == 409  # not published yet
    _publish(container, client, "api_offer")
    first = client.post("/v1/journeys/api_offer/entries", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["entered"] == 2
    assert client.post("/v1/journeys/api_offer/entries", json=body).json()["entered"] == 0
    bad = client.post("/v1/journeys/api_offer/entries", json={"customers": [], "key": "has space"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/journeys/api_offer/counts").json()["entry"]["entered"] == 2
    client.post("/v1/journeys", json=wealth_journey())
    _publish(container, client)
    refused = client.post("/v1/journeys/wealth_browse/entries", json=body | {"key": "k2"})
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("journeys.not-api-entry")
