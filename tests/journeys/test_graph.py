"""The journey graph: self-describing step types and validation (no dangling step, loops only through a wait)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from marketloop.journeys.graph import JourneyGraphError, describe_step_types, outcomes_of, parse_journey

# Scenario 1 of the domain: wealth interest without purchase -> push; not opened in 2 days -> SMS; bought -> goal.
WEALTH: dict[str, Any] = {
    "id": "wealth_interest",
    "name": "理财兴趣未购买",
    "steps": [
        {"id": "start", "type": "entry", "settings": {"source": "trigger", "trigger_id": "no-purchase"},
         "next": {"next": "split"}},
        {"id": "split", "type": "split", "settings": {"variants": [{"name": "push_first"}], "holdout_percent": 10},
         "next": {"push_first": "push", "holdout": "done"}},
        {"id": "push", "type": "send", "settings": {"channel": "push", "template": "wealth_push_v1"},
         "next": {"sent": "wait_open", "suppressed": "done", "failed": "sms"}},
        {"id": "wait_open", "type": "wait",
         "settings": {"event": {"event": "push_opened"}, "timeout": "P2D"},
         "next": {"event": "done", "timeout": "sms"}},
        {"id": "sms", "type": "send",
         "settings": {"channel": "sms", "template": "wealth_sms_v1", "variables": {"product": "event.product"}},
         "next": {"sent": "done", "suppressed": "done", "failed": "done"}},
        {"id": "bought", "type": "goal", "settings": {"event": {"event": "purchase"}, "within": "P7D"}},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip


def _with(change: Any) -> dict[str, Any]:
    journey = copy.deepcopy(WEALTH)
    change(journey)
    return journey


def _problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(JourneyGraphError) as raised:
        parse_journey(document)
    assert raised.value.code == "journeys.invalid-graph"
    return [(e.pointer, e.detail) for e in raised.value.errors]


def test_a_valid_journey_parses_and_outcomes_follow_the_settings() -> None:
    graph = parse_journey(WEALTH)
    steps = {s.id: s for s in graph.steps}
    assert outcomes_of(steps["split"]) == ["push_first", "holdout"]
    assert outcomes_of(steps["wait_open"]) == ["event", "timeout"]
    assert outcomes_of(steps["push"]) == ["sent", "suppressed", "failed"]
    assert outcomes_of(steps["done"]) == []


def test_every_step_type_describes_its_settings_and_outcomes() -> None:
    described = {d["type"]: d for d in describe_step_types()}
    assert set(described) == {
        "entry",
        "wait",
        "branch",
        "split",
        "send",
        "update",
        "rm_task",
        "webhook",
        "goal",
        "exit",
    }
    assert [described[t]["outcomes"] for t in ("update", "rm_task", "webhook")] == [
        ["done", "failed"],
        ["created", "failed"],
        ["sent", "failed"],
    ]
    assert described["rm_task"]["title"].startswith("客户经理任务")
    send = described["send"]
    assert send["outcomes"] == ["sent", "suppressed", "failed"]
    schema = send["settings_schema"]
    assert schema["$ref"].endswith("SendSettings")
    assert set(schema["$defs"]["SendSettings"]["required"]) == {"channel", "template"}
    assert described["goal"]["listener"] is True
    assert described["exit"]["terminal"] is True


def test_a_dangling_outcome_a_missing_step_and_an_unknown_outcome() -> None:
    def change(journey: dict[str, Any]) -> None:
        journey["steps"][2]["next"] = {"sent": "wait_open", "failed": "nowhere", "opened": "done"}

    problems = _problems(_with(change))
    assert (
        "/steps/2/next/opened",
        "a send step has no outcome 'opened' (['sent', 'suppressed', 'failed'])",
    ) in problems
    assert ("/steps/2/next", "outcome 'suppressed' leads nowhere") in problems
    assert ("/steps/2/next/failed", "no step 'nowhere'") in problems


def test_an_unreachable_step_is_reported_but_a_goal_needs_no_edge() -> None:
    def change(journey: dict[str, Any]) -> None:
        journey["steps"].append({"id": "orphan", "type": "exit"})

    assert _problems(_with(change)) == [("/steps/7", "step 'orphan' cannot be reached from the entry")]


def test_a_loop_must_pass_through_a_wait() -> None:
    def without_wait(journey: dict[str, Any]) -> None:
        journey["steps"][4]["next"]["failed"] = "push"  # sms failed -> push again, push failed -> sms: no wait

    problems = _problems(_with(without_wait))
    assert len(problems) == 1
    assert problems[0][0].endswith("/next")
    assert "loop without a wait" in problems[0][1]

    def through_wait(journey: dict[str, Any]) -> None:
        journey["steps"][4]["next"]["sent"] = "wait_open"  # sms sent -> wait for the open again: fine

    parse_journey(_with(through_wait))


@pytest.mark.parametrize(
    ("change", "pointer", "words"),
    [
        (lambda j: j["steps"][1]["settings"].update(holdout_percent=100), "/steps/1/settings/holdout_percent", "< 100"),
        (lambda j: j["steps"][3]["settings"].pop("timeout"), "/steps/3/settings/timeout", "needs a timeout"),
        (lambda j: j["steps"][3]["settings"].update(duration="PT1H"), "/steps/3/settings", "exactly one"),
        (lambda j: j["steps"][2]["settings"].update(channel="pigeon"), "/steps/2/settings/channel", "pigeon"),
        (lambda j: j["steps"][2]["settings"].update(template=" "), "/steps/2/settings/template", "template"),
        (lambda j: j["steps"][0]["settings"].pop("trigger_id"), "/steps/0/settings/trigger_id", "trigger_id"),
        (lambda j: j["steps"][5].update(type="teleport"), "/steps/5/type", "teleport"),
        (lambda j: j["steps"][6].update(id="push"), "/steps/6/id", "used twice"),
        (lambda j: j["steps"][0].update(type="exit"), "/steps", "none"),
        (lambda j: j.update(steps="all"), "/steps", "array"),
    ],
)
def test_bad_settings_and_shapes_name_the_field(change: Any, pointer: str, words: str) -> None:
    problems = _problems(_with(change))
    assert any(p == pointer and words in d for p, d in problems), problems


def test_a_second_entry_and_split_outcomes_without_holdout() -> None:
    def change(journey: dict[str, Any]) -> None:
        journey["steps"].append(
            {"id": "again", "type": "entry", "settings": {"source": "api"}, "next": {"next": "done"}}
        )
        journey["steps"][1]["settings"] = {"variants": [{"name": "a", "weight": 2}, {"name": "b"}]}
        journey["steps"][1]["next"] = {"a": "push", "b": "sms"}

    assert _problems(_with(change)) == [("/steps/7/type", "a journey has exactly one entry step")]
