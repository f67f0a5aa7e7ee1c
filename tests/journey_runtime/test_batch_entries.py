"""Batch entries (segment at publish, scheduled batches, the API), the outbox, and per-journey caps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.journeys import journey_instances, journey_outbox
from marketloop.core.errors import MarketloopError
from marketloop.journeys.graph import JourneyGraphError

from .conftest import World

MEMBERS = [f"C{n}" for n in range(1, 6)]


def offer(journey_id: str = "offer", *, policy: dict[str, Any] | None = None, **entry: Any) -> dict[str, Any]:
    """entry -> push (with the customer's name when the context has it) -> exit."""
    document: dict[str, Any] = {
        "id": journey_id,
        "name": "月度理财推荐",
        "steps": [
            {"id": "entry", "type": "entry", "settings": entry, "next": {"next": "push"}},
            {
                "id": "push",
                "type": "send",
                "settings": {"channel": "push", "template": "本月理财精选 {month}", "variables": {"month": "11月"}},
                "next": {"sent": "done", "suppressed": "done", "failed": "done"},
            },
            {"id": "done", "type": "exit"},
        ],
    }
    if policy is not None:
        document["policy"] = policy
    return document


def publish(world: World, document: dict[str, Any]) -> None:
    world.definitions.save(document)
    world.definitions.publish(document["id"], by="tester")


def members(world: World, segment: str = "wealth_prospects") -> None:
    world.channels.segments[segment] = list(MEMBERS)
    for customer in MEMBERS:
        world.channels.grant(customer)


def runs(world: World, journey_id: str = "offer") -> list[tuple[str, int, str]]:
    table = journey_instances.c
    query = sa.select(table.customer, table.run, table.status).where(table.journey_id == journey_id)
    with world.engine.connect() as connection:
        return sorted((c, int(r), s) for c, r, s in connection.execute(query))


def test_a_segment_entry_lets_the_members_in_once(world: World) -> None:
    members(world)
    publish(world, offer(source="segment", segment_id="wealth_prospects"))
    world.runner.drain()
    counts = world.definitions.counts("offer")
    assert counts["entry"]["entered"] == 5
    # no push token in the context: each touch fails as "no address", recorded, and the journey goes on
    assert counts["push"]["failed"] == 5
    assert counts["done"]["exited"] == 5
    world.channels.segments["wealth_prospects"].append("C9")  # later members do not enter a segment entry
    world.restart().runner.drain()
    assert [c for c, _, _ in runs(world)] == MEMBERS


def test_a_scheduled_batch_lets_the_segment_in_at_each_fire(world: World) -> None:
    members(world)
    publish(world, offer(source="schedule", trigger_id="monthly", segment_id="wealth_prospects", re_entry="always"))
    world.runner.drain()
    assert runs(world) == []  # nothing before the schedule fires
    world.fire("monthly:*:2026-01-05", "*", trigger_id="monthly")
    world.runner.drain()
    assert runs(world) == [(c, 1, "done") for c in MEMBERS]
    world.clock.advance(timedelta(days=31))
    world.channels.segments["wealth_prospects"] = MEMBERS[:2]
    world.fire("monthly:*:2026-02-05", "*", trigger_id="monthly")
    world.runner.drain()
    assert [(c, r) for c, r, _ in runs(world) if r == 2] == [("C1", 2), ("C2", 2)]


def test_a_batch_resumed_after_a_crash_lets_no_one_in_twice(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    members(world)
    publish(world, offer(source="schedule", trigger_id="monthly", segment_id="wealth_prospects", re_entry="always"))
    world.fire("monthly:*:2026-01-05", "*", trigger_id="monthly")
    runtime = world.runner.runtime
    runtime._chunk = 2
    store, real_apply, calls = runtime.store, runtime.store.apply, []

    def crash_on_second(change: Any) -> None:
        calls.append(change)
        if len(calls) == 2:
            raise RuntimeError("the process died between two chunks")
        real_apply(change)

    monkeypatch.setattr(store, "apply", crash_on_second)
    with pytest.raises(RuntimeError):
        runtime.admit()
    monkeypatch.setattr(store, "apply", real_apply)
    assert [c for c, _, _ in runs(world)] == ["C1", "C2"]
    world.restart().runner.drain()
    assert runs(world) == [(c, 1, "done") for c in MEMBERS]  # one run each: the batch is their cause
    with world.engine.connect() as connection:
        queued = connection.execute(sa.select(sa.func.count()).select_from(journey_outbox)).scalar()
    assert queued == 5


def test_an_api_entry_is_idempotent_by_its_key(world: World) -> None:
    publish(world, offer(source="api"))
    runtime = world.runner.runtime
    context = {"payload": {"addresses": {"push": "token-X"}}}
    assert runtime.enter("offer", ["C1", "C2"], key="req-1", context=context) == 2
    assert runtime.enter("offer", ["C1", "C2"], key="req-1", context=context) == 0
    for customer in ("C1", "C2"):
        world.channels.grant(customer)
    world.runner.drain()
    assert [t.customer for t in world.channels.push.sent] == ["C1", "C2"]
    with pytest.raises(MarketloopError) as caught:
        runtime.enter("nope", ["C1"], key="req-2", context={})
    assert caught.value.code == "journeys.not-active"


def test_a_schedule_entry_names_its_trigger_and_segment(world: World) -> None:
    with pytest.raises(JourneyGraphError) as caught:
        world.definitions.save(offer(source="schedule", trigger_id="monthly"))
    assert caught.value.errors[0].pointer == "/steps/0/settings/segment_id"


def test_the_journeys_own_cap_suppresses_the_second_touch_of_the_day(world: World) -> None:
    policy = {"priority": 5, "caps": [{"limit": 1, "period": "day"}]}
    publish(world, offer(source="api", re_entry="always", policy=policy))
    world.channels.grant("C1")
    context = {"payload": {"addresses": {"push": "token-1"}}}
    world.runner.runtime.enter("offer", ["C1"], key="morning", context=context)
    world.runner.drain()
    world.clock.advance(timedelta(hours=2))
    world.runner.runtime.enter("offer", ["C1"], key="noon", context=context)
    world.runner.drain()
    assert len(world.channels.push.sent) == 1
    counts = world.definitions.counts("offer")
    assert (counts["push"]["sent"], counts["push"]["suppressed"]) == (1, 1)


def test_a_touch_with_a_missing_variable_fails_alone(world: World) -> None:
    document = offer(source="api")
    document["steps"][1]["settings"]["variables"] = {"month": "$payload.month"}
    publish(world, document)
    for customer in ("C1", "C2"):
        world.channels.grant(customer)
    runtime = world.runner.runtime
    runtime.enter("offer", ["C1"], key="a", context={"payload": {"addresses": {"push": "t1"}}})
    runtime.enter("offer", ["C2"], key="b", context={"payload": {"month": "12月", "addresses": {"push": "t2"}}})
    world.runner.drain()
    assert [t.body for t in world.channels.push.sent] == ["本月理财精选 12月"]
    counts = world.definitions.counts("offer")
    assert (counts["push"]["sent"], counts["push"]["failed"]) == (1, 1)
    assert counts["done"]["exited"] == 2
