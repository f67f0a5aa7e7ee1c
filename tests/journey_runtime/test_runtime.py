"""The journey runtime end to end on SQLite with a frozen clock and the in-memory channels."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from marketloop.core.errors import MarketloopError
from marketloop.journeys.graph import JourneyGraphError

from .conftest import World, wealth_journey

HOURS = timedelta(hours=1)


def publish(world: World, document: dict[str, Any]) -> None:
    world.definitions.save(document)
    world.definitions.publish(document["id"], by="tester")


def test_browse_push_then_sms_when_not_opened(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="稳盈90天")
    world.runner.drain()
    assert [t.body for t in world.channels.push.sent] == ["您关注的稳盈90天今日可购买"]
    assert world.channels.push.sent[0].address == "token-C1"
    assert world.channels.sms.sent == []
    world.clock.advance(timedelta(days=2) - HOURS)
    world.runner.drain()
    assert world.channels.sms.sent == []  # not yet two days
    world.clock.advance(2 * HOURS)
    world.runner.drain()
    assert [t.address for t in world.channels.sms.sent] == ["1380000C1"]
    counts = world.definitions.counts("wealth_browse")
    assert counts["push"]["sent"] == 1
    assert counts["sms"]["sent"] == 1
    assert counts["done"]["exited"] == 1
    assert counts["opened"]["entered"] == 0


def test_opened_push_exits_without_sms(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="稳盈90天")
    world.runner.drain()
    assert world.definitions.counts("wealth_browse")["wait_open"]["waiting"] == 1
    world.clock.advance(HOURS)
    world.event("touch_opened", "C1", campaign="wealth_browse")
    world.runner.drain()
    world.clock.advance(timedelta(days=3))
    world.runner.drain()
    assert world.channels.sms.sent == []
    counts = world.definitions.counts("wealth_browse")
    assert counts["opened"]["exited"] == 1
    assert counts["wait_open"]["waiting"] == 0


def test_no_consent_is_suppressed_and_falls_to_sms_path(world: World) -> None:
    publish(world, wealth_journey())  # no consent granted: marketing touches are suppressed
    world.fire("f1", "C2", product="稳盈90天")
    world.runner.drain()
    assert world.channels.push.sent == []
    assert world.channels.sms.sent == []
    counts = world.definitions.counts("wealth_browse")
    assert counts["push"]["suppressed"] == 1
    assert counts["sms"]["suppressed"] == 1
    assert counts["done"]["exited"] == 1


def test_each_fire_enters_once_across_a_restart(world: World) -> None:
    publish(world, wealth_journey(re_entry="always"))
    for customer in ("C1", "C2", "C3"):
        world.channels.grant(customer)
        world.fire(f"f-{customer}", customer, product="稳盈90天")
    world.runner.runtime.admit()
    again = world.restart()
    again.runner.drain()
    again.restart().runner.drain()
    assert sorted(t.address for t in world.channels.push.sent) == ["token-C1", "token-C2", "token-C3"]
    assert again.definitions.counts("wealth_browse")["entry"]["entered"] == 3


def test_waits_survive_a_restart(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="稳盈90天")
    world.runner.drain()
    world.clock.advance(timedelta(days=5))  # the process was down past the due time
    world.restart().runner.drain()
    assert len(world.channels.sms.sent) == 1
    world.restart().runner.drain()
    assert len(world.channels.sms.sent) == 1


def test_re_entry_rules(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")
    world.runner.drain()
    world.clock.advance(timedelta(days=3))
    world.runner.drain()
    world.fire("f2", "C1", product="B")  # never: a second fire does not let the customer in again
    world.runner.drain()
    assert world.definitions.counts("wealth_browse")["entry"]["entered"] == 1
    publish(world, wealth_journey("again", re_entry="after_exit", re_entry_after="P1D"))
    world.fire("f3", "C1", product="C")
    world.runner.drain()
    world.clock.advance(timedelta(days=3))
    world.runner.drain()  # the SMS is sent and the run exits now
    world.fire("f4", "C1", product="D")  # within a day of the exit: not again
    world.runner.drain()
    assert world.definitions.counts("again")["entry"]["entered"] == 1
    world.clock.advance(timedelta(days=1))
    world.fire("f5", "C1", product="E")
    world.runner.drain()
    assert world.definitions.counts("again")["entry"]["entered"] == 2


def split_journey() -> dict[str, Any]:
    send = {"channel": "push", "template": "您好"}
    return {
        "id": "split_test",
        "name": "分流",
        "steps": [
            {
                "id": "entry",
                "type": "entry",
                "settings": {"source": "trigger", "trigger_id": "browse_wealth"},
                "next": {"next": "ab"},
            },
            {
                "id": "ab",
                "type": "split",
                "settings": {"variants": [{"name": "a"}, {"name": "b"}], "holdout_percent": 20},
                "next": {"a": "send_a", "b": "exit", "holdout": "exit"},
            },
            {
                "id": "send_a",
                "type": "send",
                "settings": send,
                "next": dict.fromkeys(("sent", "suppressed", "failed"), "exit"),
            },
            {"id": "exit", "type": "exit"},
        ],
    }


def test_split_is_deterministic_and_keeps_a_holdout(world: World) -> None:
    publish(world, split_journey())
    customers = [f"C{n}" for n in range(400)]
    for customer in customers:
        world.fire(f"f-{customer}", customer)
    world.runner.drain()
    counts = world.definitions.counts("split_test")["ab"]
    assert counts["entered"] == 400
    groups = Counter(_assignments(world).values())
    assert set(groups) == {"a", "b", "holdout"}
    assert 40 <= groups["holdout"] <= 120  # 20 % of 400
    assert 100 <= groups["a"] <= 220
    first = _assignments(world)
    world.definitions.save(split_journey() | {"name": "分流 v2"}, replace=True)
    world.definitions.publish("split_test")
    for customer in customers:
        world.fire(f"g-{customer}", customer)  # re_entry never: nobody enters twice
    world.runner.drain()
    assert _assignments(world) == first


def _assignments(world: World) -> dict[str, str]:
    import sqlalchemy as sa

    from marketloop.adapters.sql.journeys import journey_step_log

    log = journey_step_log.c
    query = sa.select(log.customer, log.detail).where(log.journey_id == "split_test", log.kind == "assigned")
    with world.engine.connect() as connection:
        return {customer: detail for customer, detail in connection.execute(query)}


def test_pause_holds_and_resume_continues(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")
    world.runner.drain()
    world.definitions.pause("wealth_browse")
    world.clock.advance(timedelta(days=3))
    world.fire("f2", "C2", product="B")
    world.runner.drain()
    assert world.channels.sms.sent == []
    assert world.definitions.counts("wealth_browse")["entry"]["entered"] == 1
    with pytest.raises(MarketloopError):
        world.definitions.pause("wealth_browse")
    world.definitions.resume("wealth_browse")
    world.runner.drain()
    assert [t.address for t in world.channels.sms.sent] == ["1380000C1"]
    assert world.definitions.counts("wealth_browse")["entry"]["entered"] == 2


def test_running_instances_stay_on_their_version(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.channels.grant("C2")
    world.fire("f1", "C1", product="A")
    world.runner.drain()
    changed = wealth_journey()
    changed["steps"][3]["settings"]["template"] = "第二版：{product}"
    world.definitions.save(changed, replace=True)
    assert world.definitions.publish("wealth_browse").version == 2
    world.fire("f2", "C2", product="B")
    world.runner.drain()
    world.clock.advance(timedelta(days=3))
    world.runner.drain()
    texts = {t.address: t.body for t in world.channels.sms.sent}
    assert set(texts) == {"1380000C1", "1380000C2"}
    assert "您关注的A今日可购买" in texts["1380000C1"]
    assert "第二版：B" in texts["1380000C2"]


def test_publish_refuses_an_invalid_graph(world: World) -> None:
    broken = wealth_journey()
    broken["steps"][1]["next"] = {"sent": "nowhere"}
    with pytest.raises(JourneyGraphError) as caught:
        world.definitions.save(broken)
    pointers = {e.pointer for e in caught.value.errors}
    assert "/steps/1/next/sent" in pointers


def test_a_missing_variable_fails_the_touch_not_the_journey(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1")  # no product property
    world.runner.drain()
    counts = world.definitions.counts("wealth_browse")
    assert counts["push"]["failed"] == 1
    assert counts["sms"]["failed"] == 1
    assert world.channels.push.sent == []


def branch_journey() -> dict[str, Any]:
    send = {"channel": "push", "template": "您好"}
    outcomes = dict.fromkeys(("sent", "suppressed", "failed"), "exit")
    return {
        "id": "branching",
        "name": "分支",
        "steps": [
            {
                "id": "entry",
                "type": "entry",
                "settings": {"source": "trigger", "trigger_id": "browse_wealth"},
                "next": {"next": "by"},
            },
            {
                "id": "by",
                "type": "branch",
                "settings": {
                    "conditions": [
                        {"name": "big", "on": "event", "where": [{"property": "amount", "op": "gte", "value": 50000}]},
                        {
                            "name": "wechat",
                            "on": "tags",
                            "where": [{"property": "tags", "op": "contains", "value": "wechat_habit"}],
                        },
                        {
                            "name": "rich",
                            "on": "profile",
                            "where": [{"property": "aum", "op": "gte", "value": 1000000}],
                        },
                    ]
                },
                "next": {"big": "send_big", "wechat": "exit", "rich": "exit", "else": "exit"},
            },
            {"id": "send_big", "type": "send", "settings": send, "next": outcomes},
            {"id": "exit", "type": "exit"},
        ],
    }


def test_branch_on_event_tags_and_profile(world: World) -> None:
    world.channels.facts |= {
        "C2": {"tags": {"wechat_habit": "是"}, "profile": {}},
        "C3": {"profile": {"aum": 2_000_000}},
    }
    publish(world, branch_journey())
    world.fire("f1", "C1", amount=80000)
    world.fire("f2", "C2", amount=10)
    world.fire("f3", "C3")
    world.fire("f4", "C4")
    world.runner.drain()
    counts = world.definitions.counts("branching")
    assert counts["send_big"]["entered"] == 1
    assert set(_details(world, "exit")) == {"by.wechat", "by.rich", "by.else", "send_big.suppressed"}


def _details(world: World, step: str) -> list[str]:
    import sqlalchemy as sa

    from marketloop.adapters.sql.journeys import journey_step_log

    log = journey_step_log.c
    query = sa.select(log.detail).where(log.step == step, log.kind == "entered")
    with world.engine.connect() as connection:
        return [detail for (detail,) in connection.execute(query)]


def test_a_crash_after_the_send_does_not_send_twice(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")
    world.runner.runtime.admit()  # the walk queues the push in the outbox with the new instance
    assert world.channels.push.sent == []
    store = world.runner.runtime.store
    real_settle = store.settle

    def crash(*args: object) -> None:
        raise RuntimeError("the process died before the commit")

    monkeypatch.setattr(store, "settle", crash)
    with pytest.raises(RuntimeError):
        world.runner.dispatch_once()
    assert len(world.channels.push.sent) == 1  # the provider got it; the outbox did not record it
    monkeypatch.setattr(store, "settle", real_settle)
    world.restart().runner.drain()
    assert len(world.channels.push.sent) == 1
    assert world.definitions.counts("wealth_browse")["push"]["sent"] == 1


def test_a_send_cut_before_the_ledger_recorded_it_is_taken_up_when_the_claim_lapses(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")
    world.runner.runtime.admit()
    ledger = world.channels.ledger

    def crash(*args: object) -> None:
        raise RuntimeError("the process died after the provider answered")

    monkeypatch.setattr(ledger, "complete_many", crash)
    with pytest.raises(RuntimeError):
        world.runner.dispatch_once()
    monkeypatch.undo()
    restarted = world.restart()
    restarted.runner.drain()  # the key is still claimed (PENDING): the row waits until the claim lapses
    store, lapses = restarted.runner.runtime.store, world.clock.now() + timedelta(minutes=10)
    assert store.queued(lapses - timedelta(seconds=1), 10) == []
    assert [row.step for row in store.queued(lapses, 10)] == ["push"]
    world.clock.advance(timedelta(minutes=10, seconds=1))
    restarted.runner.drain()
    assert world.channels.push.calls == 2  # sent again with the same key: the provider answers the first id
    assert len(world.channels.push.sent) == 1
    assert world.definitions.counts("wealth_browse")["push"]["sent"] == 1


def test_two_fires_of_one_customer_in_one_batch_enter_once(world: World) -> None:
    publish(world, wealth_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")
    world.fire("f2", "C1", product="B")
    world.fire("f3", "C2", product="C")
    assert world.runner.runtime.admit() == 3  # every fire consumed
    assert world.runner.runtime.admit() == 0
    world.runner.drain()
    assert world.definitions.counts("wealth_browse")["entry"]["entered"] == 2


def with_goal(journey_id: str = "wealth_browse") -> dict[str, Any]:
    document = wealth_journey(journey_id)
    goal = {
        "event": {"event": "buy_fund", "where": [{"property": "amount", "op": "gte", "value": 1000}]},
        "within": "P7D",
    }
    document["steps"].append({"id": "bought", "type": "goal", "settings": goal})
    return document


def test_a_goal_converts_and_ends_the_run(world: World) -> None:
    publish(world, with_goal())
    world.channels.grant("C1")
    world.channels.grant("C2")
    world.fire("f1", "C1", product="A")
    world.fire("f2", "C2", product="A")
    world.runner.drain()
    world.clock.advance(HOURS)
    world.event("buy_fund", "C1", amount=50000)
    world.event("buy_fund", "C2", amount=10)  # below the goal's condition
    world.runner.drain()
    world.clock.advance(timedelta(days=3))
    world.runner.drain()
    counts = world.definitions.counts("wealth_browse")
    assert counts["bought"]["converted"] == 1
    assert [t.address for t in world.channels.sms.sent] == ["1380000C2"]


def test_a_conversion_during_a_pause_is_kept(world: World) -> None:
    publish(world, with_goal())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")
    world.runner.drain()
    world.definitions.pause("wealth_browse")
    world.clock.advance(HOURS)
    world.event("buy_fund", "C1", amount=50000)
    world.runner.drain()
    world.definitions.resume("wealth_browse")
    world.clock.advance(timedelta(days=3))
    world.runner.drain()
    assert world.definitions.counts("wealth_browse")["bought"]["converted"] == 1
    assert world.channels.sms.sent == []


def test_wait_until_a_local_time_of_day(world: World) -> None:
    journey = wealth_journey("morning")
    journey["steps"][0]["next"] = {"next": "nine"}
    journey["steps"].append(
        {
            "id": "nine",
            "type": "wait",
            "settings": {"until": "09:00:00", "timezone": "Asia/Shanghai"},
            "next": {"next": "push"},
        }
    )
    publish(world, journey)
    world.channels.grant("C1")
    world.fire("f1", "C1", product="A")  # 10:00 in Shanghai: the next 09:00 is tomorrow
    world.runner.drain()
    assert world.channels.push.sent == []
    world.clock.advance(timedelta(hours=22, minutes=59))
    world.runner.drain()
    assert world.channels.push.sent == []
    world.clock.advance(timedelta(minutes=1))  # 09:00 Shanghai = 01:00 UTC
    world.restart().runner.drain()
    assert len(world.channels.push.sent) == 1
