"""Update-tag, RM-task and webhook steps through the outbox; exit rules; goal values; the holdout check at publish."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.journeys import journey_step_log
from marketloop.journeys.graph import JourneyGraphError, parse_journey
from marketloop.journeys.rehearsal import RehearsalCustomer, rehearse

from .conftest import MORNING, World

ENTRY = {"id": "entry", "type": "entry", "settings": {"source": "trigger", "trigger_id": "browse_wealth"}}


def _journey(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    first = steps[0]["id"]
    return {"id": "act", "name": "高净值跟进", "steps": [ENTRY | {"next": {"next": first}}, *steps], **extra}


def actions_journey() -> dict[str, Any]:
    """entry → tag the customer → an RM task → a webhook to the call centre → exit."""
    return _journey(
        [
            {
                "id": "tag",
                "type": "update",
                "settings": {"tag": "journey_vip", "value": "$properties.level"},
                "next": {"done": "task", "failed": "task"},
            },
            {
                "id": "task",
                "type": "rm_task",
                "settings": {
                    "queue": "rm_zhang",
                    "title": "跟进 {product}",
                    "note": "客户浏览了{product}，请电话跟进",
                    "variables": {"product": "$properties.product"},
                    "due_in": "P1D",
                    "priority": "high",
                },
                "next": {"created": "hook", "failed": "hook"},
            },
            {
                "id": "hook",
                "type": "webhook",
                "settings": {"payload": "外呼 {product}", "variables": {"product": "$properties.product"}},
                "next": {"sent": "done", "failed": "done"},
            },
            {"id": "done", "type": "exit"},
        ]
    )


def _publish(world: World, document: dict[str, Any]) -> None:
    world.definitions.save(document)
    world.definitions.publish(document["id"], by="tester")


def _log(world: World, customer: str) -> list[tuple[str, str, str]]:
    log = journey_step_log.c
    query = sa.select(log.step, log.kind, log.detail).where(log.customer == customer).order_by(log.id)
    with world.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def test_update_rm_task_and_webhook_steps_act_once_through_the_outbox(world: World) -> None:
    _publish(world, actions_journey())
    world.channels.grant("C1")
    world.fire("f1", "C1", product="稳盈90天", level="gold")
    world.runner.drain()
    assert world.channels.tags.values["journey_vip"] == {"C1": "gold"}
    (task,) = world.channels.rm.sent
    assert (task.sender, task.title) == ("rm_zhang", "【重要】跟进 稳盈90天")
    due = MORNING + timedelta(days=1) + timedelta(hours=8)  # Asia/Shanghai
    assert task.body == f"客户浏览了稳盈90天，请电话跟进\n截止 due {due:%Y-%m-%d %H:%M}"
    assert (task.due_at, task.urgency) == (MORNING + timedelta(days=1), "high"), "as columns the workbench sorts by"
    (hook,) = world.channels.webhook.sent
    assert (hook.body, dict(hook.variables), hook.journey) == ("外呼 稳盈90天", {"product": "稳盈90天"}, "act")
    steps = [(step, kind) for step, kind, _ in _log(world, "C1")]
    assert steps == [
        ("tag", "entered"),
        ("tag", "updated"),
        ("task", "entered"),
        ("task", "sent"),
        ("hook", "entered"),
        ("hook", "sent"),
        ("done", "entered"),
        ("done", "exited"),
    ]
    assert _log(world, "C1")[1][2] == "journey_vip=gold"
    assert _log(world, "C1")[4][2].startswith("task.created")
    counts = world.definitions.counts("act")
    assert (counts["tag"]["updated"], counts["task"]["sent"], counts["hook"]["sent"]) == (1, 1, 1)

    again = world.restart()  # a new process replays nothing: every effect happened once
    again.fire("f1", "C1", product="稳盈90天", level="gold")
    again.runner.drain()
    assert world.channels.tags.writes == 1
    assert (len(world.channels.rm.sent), len(world.channels.webhook.sent)) == (1, 1)


def test_a_failed_update_and_a_missing_value_go_out_by_failed(world: World) -> None:
    document = actions_journey()
    document["steps"][1]["settings"] = {"tag": "no_such_tag", "remove": True}
    _publish(world, document)
    world.channels.grant("C1")
    world.fire("f1", "C1", product="稳盈90天")
    world.runner.drain()
    assert ("tag", "failed", "no_such_tag tags.not-found: No tag 'no_such_tag'") in _log(world, "C1")
    assert len(world.channels.rm.sent) == 1  # the journey went on by `failed`

    document["id"] = "act2"
    document["steps"][1]["settings"] = {"tag": "journey_vip", "value": "$properties.level"}
    _publish(world, document)
    world.fire("f2", "C2", product="稳盈90天")  # no level in the entry's context
    world.runner.drain()
    assert ("tag", "failed", "journey_vip journeys.missing-value: the entry has no $properties.level") in _log(
        world, "C2"
    )
    assert "journey_vip" not in world.channels.tags.values


def test_an_update_sets_a_profile_field_once(world: World) -> None:
    document = actions_journey()
    document["steps"][1]["settings"] = {"field": "preferred_product", "value": "$properties.product"}
    _publish(world, document)
    world.channels.grant("C1")
    world.fire("f1", "C1", product="稳盈90天")
    world.runner.drain()
    assert world.channels.fields.values == {"C1": {"preferred_product": "稳盈90天"}}
    assert world.channels.tags.values == {}
    assert [(kind, detail) for step, kind, detail in _log(world, "C1") if step == "tag"][1] == (
        "updated",
        "preferred_product=稳盈90天",
    )
    world.restart().runner.drain()  # nothing is done twice
    assert world.channels.fields.values == {"C1": {"preferred_product": "稳盈90天"}}


def test_a_batch_entry_copies_update_rows_for_every_customer(world: World) -> None:
    document = actions_journey()
    document["steps"][0] = ENTRY | {
        "settings": {"source": "api"},
        "next": {"next": "tag"},
    }
    document["steps"][1]["settings"] = {"tag": "follow_up", "value": "yes"}
    _publish(world, document)
    assert (
        world.runner.runtime.enter("act", ["C1", "C2", "C3"], key="k1", context={"properties": {"product": "稳盈"}})
        == 3
    )
    world.runner.drain()
    assert world.channels.tags.values["follow_up"] == {"C1": "yes", "C2": "yes", "C3": "yes"}
    assert sorted(t.customer for t in world.channels.rm.sent) == ["C1", "C2", "C3"]


def exit_rule_journey() -> dict[str, Any]:
    return _journey(
        [
            {"id": "wait", "type": "wait", "settings": {"duration": "P2D"}, "next": {"next": "sms"}},
            {
                "id": "sms",
                "type": "send",
                "settings": {"channel": "sms", "template": "您好"},
                "next": {"sent": "done", "suppressed": "done", "failed": "done"},
            },
            {"id": "done", "type": "exit"},
            {
                "id": "bought",
                "type": "goal",
                "settings": {"event": {"event": "buy_fund"}, "value_property": "amount"},
            },
        ],
        policy={"exit_on": [{"event": "complaint", "where": [{"property": "topic", "value": "marketing"}]}]},
    )


def test_an_exit_rule_ends_the_run_without_a_conversion(world: World) -> None:
    _publish(world, exit_rule_journey())
    assert {"complaint", "buy_fund"} <= world.runner.events.listened()  # type: ignore[union-attr]
    world.channels.grant("C1")
    world.channels.grant("C2")
    world.fire("f1", "C1")
    world.fire("f2", "C2")
    world.runner.drain()
    world.clock.advance(timedelta(hours=1))
    world.event("complaint", "C1", topic="service")  # not the rule's: stays
    world.event("complaint", "C2", topic="marketing")
    world.runner.drain()
    assert _log(world, "C2")[-1] == ("wait", "exited", "exit_on/0: complaint")
    world.clock.advance(timedelta(days=2))
    world.runner.drain()
    assert [t.customer for t in world.channels.sms.sent] == ["C1"]
    counts = world.definitions.counts("act")
    assert (counts["wait"]["exited"], counts["bought"]["converted"]) == (1, 0)


def test_a_goal_records_the_value_of_its_conversion(world: World) -> None:
    _publish(world, exit_rule_journey())
    world.fire("f1", "C1")
    world.fire("f2", "C2")
    world.runner.drain()
    world.event("buy_fund", "C1", amount=5000)
    world.event("buy_fund", "C2", amount="lots")  # not a number: a conversion without a value
    world.runner.drain()
    (c1,) = [row for row in _log(world, "C1") if row[1] == "converted"]
    assert c1[0] == "bought"
    assert c1[2].endswith(" value=5000.0")
    (c2,) = [row for row in _log(world, "C2") if row[1] == "converted"]
    assert " value=" not in c2[2]


def _problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(JourneyGraphError) as caught:
        parse_journey(document)
    return [(p.pointer, p.detail) for p in caught.value.errors]


def test_bad_settings_of_the_new_steps_point_at_the_field() -> None:
    def with_settings(step: int, **settings: Any) -> dict[str, Any]:
        document = actions_journey()
        document["steps"][step]["settings"] |= settings
        return document

    assert ("/steps/1/settings/value", "an update sets a value (or removes the tag with remove: true)") in _problems(
        with_settings(1, value=" ")
    )
    assert _problems(with_settings(1, tags="x"))[0][0] == "/steps/1/settings"
    both = ("/steps/1/settings", "an update sets exactly one of tag (a static tag) and field (a profile field)")
    assert both in _problems(with_settings(1, field="preferred_product"))
    assert _problems(with_settings(1, tag="", field="Bad-Name"))[0][0] == "/steps/1/settings/field"
    assert ("/steps/2/settings/due_in", "an RM task is due a positive time after it is created") in _problems(
        with_settings(2, due_in="-PT1H")
    )
    assert _problems(with_settings(2, priority="asap"))[0][0] == "/steps/2/settings/priority"
    assert ("/steps/2/settings/timezone", "unknown time zone 'Mars/Base'") in _problems(
        with_settings(2, timezone="Mars/Base")
    )
    assert ("/steps/3/settings/payload", "a webhook names its payload template") in _problems(
        with_settings(3, payload="")
    )
    assert _problems(with_settings(3, channel="Bad Name"))[0][0] == "/steps/3/settings/channel"
    document = actions_journey()
    document["steps"][3]["next"] = {"sent": "done", "suppressed": "done"}
    assert ("/steps/3/next", "outcome 'failed' leads nowhere") in _problems(document)
    bad_rule = exit_rule_journey() | {"policy": {"exit_on": [{"where": []}]}}
    assert _problems(bad_rule)[0][0] == "/policy/exit_on/0"


def split_journey(holdout: dict[str, Any]) -> dict[str, Any]:
    """A split with a holdout; the variant waits 7 days before it exits; the goal counts 7 days."""
    return _journey(
        [
            {
                "id": "ab",
                "type": "split",
                "settings": {"variants": [{"name": "push"}], "holdout_percent": 20},
                "next": {"push": "push", "holdout": holdout["id"]},
            },
            {
                "id": "push",
                "type": "send",
                "settings": {"channel": "push", "template": "您好"},
                "next": {"sent": "week", "suppressed": "week", "failed": "week"},
            },
            {"id": "week", "type": "wait", "settings": {"duration": "P7D"}, "next": {"next": "done"}},
            holdout,
            {"id": "done", "type": "exit"},
            {"id": "bought", "type": "goal", "settings": {"event": {"event": "buy_fund"}, "within": "P7D"}},
        ]
    )


def test_a_holdout_that_exits_before_the_goal_window_is_refused_at_publish(world: World) -> None:
    early = split_journey({"id": "short", "type": "wait", "settings": {"duration": "P1D"}, "next": {"next": "done"}})
    world.definitions.save(early)  # a draft may be saved: the canvas shows the problem at publish
    with pytest.raises(JourneyGraphError) as refused:
        world.definitions.publish("act")
    assert refused.value.code == "journeys.holdout-exits-early"
    ((pointer, detail),) = [(p.pointer, p.detail) for p in refused.value.errors]
    assert pointer == "/steps/5"  # the exit the holdout reaches too soon
    assert "holdout of split 'ab' reaches exit 'done' after 1 day" in detail
    assert "wait 7 days on the holdout path" in detail

    long_enough = split_journey(
        {"id": "short", "type": "wait", "settings": {"duration": "P7D"}, "next": {"next": "done"}}
    )
    world.definitions.save(long_enough, replace=True)
    assert world.definitions.publish("act").version == 1


def test_the_dry_run_walks_the_new_steps_exit_rules_and_goals() -> None:
    graph = parse_journey(actions_journey())
    (path,) = rehearse(
        graph, [RehearsalCustomer(customer="T1", context={"properties": {"product": "稳盈", "level": "gold"}})], MORNING
    )
    kinds = [(s["step"], s["kind"]) for s in path.steps if s["kind"] != "entered"]
    assert kinds == [("tag", "updated"), ("task", "sent"), ("hook", "sent"), ("done", "exited")]
    (suppressed,) = rehearse(graph, [RehearsalCustomer(customer="T2", suppressed=["rm", "webhook"])], MORNING)
    assert [s["step"] for s in suppressed.steps if s["kind"] == "suppressed"] == ["task", "hook"]

    rules = parse_journey(exit_rule_journey())
    complaint = {"event": "complaint", "properties": {"topic": "marketing"}}
    buy = {"event": "buy_fund", "properties": {"amount": 300}}
    exited, converted, waited = rehearse(
        rules,
        [
            RehearsalCustomer(customer="T1", events=[complaint]),
            RehearsalCustomer(customer="T2", events=[buy]),
            RehearsalCustomer(customer="T3"),
        ],
        MORNING,
    )
    assert (exited.ended, exited.steps[-1]["detail"]) == ("exited", "exit_on/0: complaint")
    assert (converted.ended, converted.steps[-1]["detail"]) == ("converted", "T2-0 value=300.0")
    assert [s["step"] for s in waited.steps][-2:] == ["done", "done"]
