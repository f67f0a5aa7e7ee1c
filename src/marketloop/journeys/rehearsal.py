"""Journey dry run (试运行): test customers through a journey graph, in memory, with nothing sent.

Each test customer enters with a context (as a trigger fire gives one: the
event's `properties`, an API trigger's `payload`), facts for branches, and the
events they will do. Time runs on as needed: a wait ends when it is due, an
event wait ends with `event` when the customer does a listed event that
matches, else with `timeout`. A send is answered `sent` without reaching
anyone, unless the customer is listed as `suppressed` for that channel. The
answer is each customer's path: the step log the real runtime would write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import orjson

from marketloop.journeys.actions import UPDATE
from marketloop.journeys.channels.sending import SendOutcome, SendRequest, SendStatus
from marketloop.journeys.graph import JourneyGraph, settings_of
from marketloop.journeys.runtime import conversion_detail, entry_of
from marketloop.journeys.step_types import GoalSettings
from marketloop.journeys.steps import Observed, matches
from marketloop.journeys.walk import Walker, awaited
from marketloop.ports.journeys import Instance, OutboxRow

MAX_ROUNDS = 50


class RehearsalCustomer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    customer: str
    context: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    events: list[dict[str, Any]] = []  # {"event": name, "properties": {...}}
    suppressed: list[str] = []  # channels the contact policy would refuse


@dataclass(kw_only=True)
class CustomerPath:
    customer: str
    steps: list[dict[str, str]] = field(default_factory=list)
    ended: str = ""


def rehearse(graph: JourneyGraph, customers: list[RehearsalCustomer], start: datetime) -> list[CustomerPath]:
    """Each test customer's path through `graph` (see the module docstring)."""
    return [_one(graph, customer, start) for customer in customers]


def _one(graph: JourneyGraph, test: RehearsalCustomer, start: datetime) -> CustomerPath:
    def send(request: SendRequest) -> SendOutcome:
        status = SendStatus.SUPPRESSED if request.channel in test.suppressed else SendStatus.SENT
        return SendOutcome(idempotency_key=request.idempotency_key, status=status, channel=request.channel)

    def facts(_: str) -> Mapping[str, Any]:
        return test.facts

    walker = Walker(facts)
    entry_id, _ = entry_of(graph)
    instance = Instance(
        journey_id=graph.id,
        customer=test.customer,
        run=1,
        version=0,
        step=entry_id,
        status="active",
        due_at=start,
        entered_at=start,
        updated_at=start,
        data=orjson.dumps({"context": test.context}),
    )
    path = CustomerPath(customer=test.customer, steps=[{"step": entry_id, "kind": "entered", "detail": ""}])
    now = start
    settled: dict[str, SendOutcome] = {}
    for _ in range(MAX_ROUNDS):
        result = walker.walk(graph, instance, now, settled)
        path.steps += [{"step": r.step, "kind": r.kind, "detail": r.detail} for r in result.log]
        instance = result.finish()
        if instance.status == "sending":  # the touch or update it queued is answered at once
            settled |= {row.key: _answer(row, send) for row in result.outbox}
            continue
        if instance.status != "done" and instance.due_at is not None:
            instance, now = _woken(graph, instance, test, path)
        if instance.status == "done" or instance.due_at is None:
            path.ended = path.steps[-1]["kind"]
            return path
    path.ended = "still running"
    return path


def _answer(row: OutboxRow, send: Callable[[SendRequest], SendOutcome]) -> SendOutcome:
    if row.channel == UPDATE:
        return SendOutcome(idempotency_key=row.key, status=SendStatus.SENT, channel=UPDATE)
    return send(msgspec.json.decode(row.request, type=SendRequest))


def _ended(graph: JourneyGraph, instance: Instance, observed: Observed) -> tuple[str, str, str] | None:
    """(step, kind, detail) when `observed` reaches a goal or matches an exit rule, as the runtime decides."""
    for step in graph.steps:
        if step.type == "goal":
            goal: GoalSettings = settings_of(step)
            if matches(goal.event, observed):
                return step.id, "converted", conversion_detail(goal, observed)
    for number, rule in enumerate(graph.policy.exit_on):
        if matches(rule, observed):
            return instance.step, "exited", f"exit_on/{number}: {rule.event}"
    return None


def _woken(
    graph: JourneyGraph, instance: Instance, test: RehearsalCustomer, path: CustomerPath
) -> tuple[Instance, datetime]:
    """The instance after its wait: woken by a listed event, or at its due time."""
    assert instance.due_at is not None
    data = msgspec.json.decode(instance.data)
    match = awaited(data)
    for number, given in enumerate(test.events):
        observed = Observed(
            message_id=f"{test.customer}-{number}",
            name=str(given.get("event", "")),
            type="track",
            timestamp=instance.due_at,
            properties=given.get("properties") or {},
        )
        ended = _ended(graph, instance, observed)
        if ended is not None:
            step, kind, detail = ended
            path.steps.append({"step": step, "kind": kind, "detail": detail})
            return Instance(**(instance.__dict__ | {"status": "done", "due_at": None})), instance.updated_at
        if match is not None and matches(match, observed):
            target = next(s for s in graph.steps if s.id == instance.step).next["event"]
            data.pop("wait", None)
            path.steps.append({"step": target, "kind": "entered", "detail": f"{instance.step}.event"})
            moved = Instance(**(instance.__dict__ | {"step": target, "status": "active", "data": orjson.dumps(data)}))
            return moved, instance.updated_at
    return instance, instance.due_at
