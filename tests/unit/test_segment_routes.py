"""The Segment routes, served as plain ASGI: answers, errors, durability, the tracking plan, OpenAPI."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from fastapi import FastAPI

from marketloop.adapters.filelog import FileLog
from marketloop.api import problem
from marketloop.api.routers import segment
from marketloop.collect.service import CollectService
from marketloop.collect.sources import SourceService
from marketloop.core.events import Event
from marketloop.core.tracking import EventSpec, PropertySpec, TrackingPlan
from marketloop.ports.state import Source, TrackingMode
from marketloop.testing.clock import FrozenClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Sources:
    """An in-memory `SourceRepository`."""

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}

    def add(self, source: Source) -> None:
        self.sources[source.id] = source

    def get(self, name_or_id: str) -> Source | None:
        return next((s for s in self.sources.values() if name_or_id in (s.id, s.name)), None)

    def by_key_hash(self, key_hash: str) -> Source | None:
        return next((s for s in self.sources.values() if s.key_hash == key_hash), None)

    def by_project(self, project: str) -> Source | None:
        return next((s for s in self.sources.values() if s.project == project), None)

    def list(self) -> list[Source]:
        return list(self.sources.values())

    def update(self, source: Source) -> None:
        self.sources[source.id] = source


@dataclass
class _Plan:
    """A `PlanCheck` that marks every event named `bad`."""

    plan: TrackingPlan
    applied: int = 0

    def apply(self, source: Source, events: list[Event]) -> None:
        self.applied += 1
        if source.tracking_mode is TrackingMode.ALLOW:
            return
        for event in events:
            if event.event == "bad":
                event.violations = ["unplanned_event: bad"]
                event.quarantined = source.tracking_mode is TrackingMode.BLOCK

    def current(self) -> TrackingPlan:
        return self.plan


@dataclass
class _World:
    client: httpx.AsyncClient
    log: FileLog
    plan: _Plan
    key: str

    def records(self) -> list[dict[str, object]]:
        return [orjson.loads(r.value) for r in self.log.read(0, after=-1, max_records=10_000)]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[FileLog]:
    log = FileLog(tmp_path / "log")
    yield log
    log.close_sync()


@pytest.fixture
async def world(log: FileLog) -> AsyncIterator[_World]:
    clock = FrozenClock()
    repository = _Sources()
    sources = SourceService(repository, clock)
    _, key = sources.create("app")
    plan = _Plan(TrackingPlan())
    app = FastAPI()
    problem.install(app)
    app.include_router(segment.router)
    app.state.container = SimpleNamespace(collect=CollectService(log, sources, plan, clock))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", auth=(key, "")) as client:
        yield _World(client, log, plan, key)


TRACK = {"type": "track", "userId": "C0001", "event": "fund_page_view", "properties": {"fund_code": "000001"}}


async def test_batch_is_durable_before_the_200(world: _World) -> None:
    answer = await world.client.post("/v1/batch", json={"batch": [TRACK, {**TRACK, "event": "login"}]})
    assert answer.status_code == 200
    assert answer.json() == {"success": True}
    assert answer.headers["content-type"] == "application/json"
    assert [r["event"] for r in world.records()] == ["fund_page_view", "login"]
    assert world.records()[0]["properties"] == {"fund_code": "000001"}
    assert world.plan.applied == 0  # no plan specs: nothing to mark, no Event built


async def test_single_endpoints_take_the_type_from_the_path(world: _World) -> None:
    answer = await world.client.post("/v1/identify", json={"userId": "C0001", "traits": {"tier": "gold"}})
    assert answer.status_code == 200
    (record,) = world.records()
    assert record["type"] == "identify"
    assert record["profile_op"] == "set"
    assert record["traits"] == {"tier": "gold"}


async def test_bad_events_are_reported_by_index_and_good_ones_kept(world: _World) -> None:
    answer = await world.client.post("/v1/batch", json={"batch": [TRACK, {"type": "track", "userId": "u"}]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"pointer": "/batch/1/event", "detail": "A track message needs an event name.", "index": 1}
    ]
    assert len(world.records()) == 1


async def test_nothing_valid_is_a_400_problem(world: _World) -> None:
    answer = await world.client.post("/v1/batch", json={"batch": [{"type": "track", "userId": "u"}]})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem_body = answer.json()
    assert problem_body["type"].endswith("collect.invalid-batch")
    assert problem_body["instance"] == "/v1/batch"
    assert problem_body["errors"][0]["index"] == 0


async def test_single_invalid_event_is_a_400(world: _World) -> None:
    answer = await world.client.post("/v1/track", json={"userId": "u"})
    assert answer.status_code == 400
    assert answer.json()["type"].endswith("collect.invalid-event")


async def test_write_key_in_the_body_when_no_header(world: _World) -> None:
    client = httpx.AsyncClient(transport=world.client._transport, base_url="http://test")
    answer = await client.post("/v1/batch", json={"writeKey": world.key, "batch": [TRACK]})
    assert answer.status_code == 200
    unknown = await client.post("/v1/batch", json={"writeKey": "nope", "batch": [TRACK]})
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == 'Basic realm="marketloop"'
    assert unknown.json()["instance"] == "/v1/batch"


async def test_gzip_and_limits(world: _World) -> None:
    body = gzip.compress(orjson.dumps({"batch": [TRACK]}))
    answer = await world.client.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 200
    too_big = await world.client.post("/v1/batch", content=b" " * (500 * 1024 + 1))
    assert too_big.status_code == 413
    brotli = await world.client.post("/v1/batch", content=b"{}", headers={"Content-Encoding": "br"})
    assert brotli.status_code == 400


async def test_other_methods_are_405(world: _World) -> None:
    answer = await world.client.get("/v1/batch")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_plan_with_specs_marks_events(world: _World, log: FileLog) -> None:
    world.plan.plan = TrackingPlan(
        version=1, events=(EventSpec(name="login", properties=(PropertySpec(name="x", type="string"),)),)
    )
    answer = await world.client.post("/v1/batch", json={"batch": [TRACK, {**TRACK, "event": "bad"}]})
    assert answer.status_code == 200
    assert world.plan.applied == 1
    assert [r.get("violations") for r in world.records()] == [None, ["unplanned_event: bad"]]


async def test_block_mode_quarantines(world: _World) -> None:
    collect = world.client._transport.app.state.container.collect  # type: ignore[attr-defined]
    repository = collect._sources._repository
    (source,) = repository.list()
    repository.update(replace(source, tracking_mode=TrackingMode.BLOCK))
    collect._sources._cache.clear()
    world.plan.plan = TrackingPlan(version=1, events=(EventSpec(name="login"),))
    answer = await world.client.post("/v1/batch", json={"batch": [TRACK, {**TRACK, "event": "bad"}]})
    assert answer.json() == {"success": True, "accepted": 1, "quarantined": 1, "rejected": []}


def test_collection_routes_are_in_the_openapi_schema() -> None:
    app = FastAPI()
    app.include_router(segment.router)
    paths = app.openapi()["paths"]
    for name in ("track", "identify", "page", "screen", "alias", "group", "batch"):
        operation = paths[f"/v1/{name}"]["post"]
        assert operation["tags"] == ["collect"]
        assert "requestBody" in operation
    batch_schema = paths["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch_schema["properties"]["batch"]["items"]["properties"]["userId"]
