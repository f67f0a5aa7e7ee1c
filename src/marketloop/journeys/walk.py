"""Walking one journey instance through its steps until it must wait, or ends.

`walk` takes an instance at its current step and runs steps as far as it
can now: a wait stores its due time on the instance (durable: the runner picks
it up when due, after any restart), a branch reads the entry's event and the
customer's facts, a split asks the experiments' `variant_for` (the same
customer always lands in the same group), a send queues the touch in the
outbox under a key that names it (`<journey>:v<version>:<run>:<step>:<customer>`)
and the instance waits (`sending`) until the dispatcher settles it; walked
again with the settled outcome, the send moves on (`sent`), or to the next
wave of its fallback, or out by `suppressed` / `failed`. A goal or an exit
ends the run. Everything that happened is returned as step-log rows and
outbox rows for the caller to commit together with the instance (a
transactional outbox: a walk repeated after a crash queues nothing twice).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.experiments.assignment import variant_for
from marketloop.journeys.actions import UPDATE, MissingValueError, rm_task_message, tag_update
from marketloop.journeys.channels.sending import BEST, MAX_KEY, Message, SendOutcome, SendRequest, SendStatus
from marketloop.journeys.graph import JourneyGraph, Step, settings_of
from marketloop.journeys.outbox import reached
from marketloop.journeys.policy.rules import Cap, Period
from marketloop.journeys.step_types import (
    BranchSettings,
    JourneyPolicy,
    RmTaskSettings,
    SendSettings,
    SplitSettings,
    UpdateSettings,
    WaitSettings,
    WebhookSettings,
)
from marketloop.journeys.steps import Observed, lookup, matches
from marketloop.journeys.triggers import EventMatch
from marketloop.ports.experiments import VariantPlan
from marketloop.ports.journeys import Instance, LogRow, OutboxRow

# customer -> {"profile": {field: value}, "tags": {tag: value}} (see `journeys.facts`)
Facts = Callable[[str], Mapping[str, Any]]

_KINDS = {kind.value: kind for kind in ChannelKind}
_SPACE = re.compile(r"\s")
HOLDOUT = "holdout"
MAX_STEPS = 100  # a walk is bounded; loops go through waits, so this is never reached by a valid graph


@dataclass(kw_only=True)
class Walk:
    """The instance as the walk found it, where the walk left it (`step`, `status`, `due_at`), and what
    happened on the way (step log, outbox rows)."""

    instance: Instance
    data: dict[str, Any]
    step: str
    status: str
    due_at: datetime | None
    updated_at: datetime
    log: list[LogRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    personal: bool = False  # the walk read the customer (facts, a split, a hashed key): not a template

    def note(self, step: str, kind: str, at: datetime, detail: str = "") -> None:
        i = self.instance
        self.log.append(
            LogRow(
                journey_id=i.journey_id,
                version=i.version,
                customer=i.customer,
                run=i.run,
                step=step,
                kind=kind,
                at=at,
                detail=detail,
            )
        )

    def move(self, step: str, status: str, due_at: datetime | None, now: datetime) -> None:
        self.step, self.status, self.due_at, self.updated_at = step, status, due_at, now

    def finish(self) -> Instance:
        i = self.instance
        return Instance(
            journey_id=i.journey_id,
            customer=i.customer,
            run=i.run,
            version=i.version,
            step=self.step,
            status=self.status,
            due_at=self.due_at,
            entered_at=i.entered_at,
            updated_at=self.updated_at,
            data=msgspec.json.encode(self.data),
            cause=i.cause,
        )


@dataclass(frozen=True, kw_only=True)
class _Graph:
    """What a walk reads of a graph, worked out once per graph: steps by id, their typed settings, the caps."""

    graph: JourneyGraph
    steps: dict[str, Step]
    settings: dict[str, Any]
    caps: tuple[Cap, ...]


@dataclass(frozen=True, kw_only=True)
class _Move:
    outcome: str


@dataclass(frozen=True, kw_only=True)
class _Stay:
    until: datetime


@dataclass(frozen=True, kw_only=True)
class _End:
    kind: str  # exited or converted
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class _Sending:
    key: str


_Result = _Move | _Stay | _End | _Sending


class Walker:
    """Runs steps; `facts` reads a customer's profile and tags (see the module docstring)."""

    def __init__(self, facts: Facts | None = None) -> None:
        self._facts = facts
        self._graphs: dict[int, _Graph] = {}

    def _graph(self, graph: JourneyGraph) -> _Graph:
        found = self._graphs.get(id(graph))
        if found is None or found.graph is not graph:
            steps = {step.id: step for step in graph.steps}
            settings = {step.id: settings_of(step) for step in graph.steps}
            found = _Graph(graph=graph, steps=steps, settings=settings, caps=journey_caps(graph.policy))
            self._graphs[id(graph)] = found
        return found

    def walk(
        self, graph: JourneyGraph, instance: Instance, now: datetime, settled: Mapping[str, SendOutcome] | None = None
    ) -> Walk:
        """Walk on from the instance's step; `settled`: outcomes of its queued touches, by outbox key."""
        known = self._graph(graph)
        walk = Walk(
            instance=instance,
            data=msgspec.json.decode(instance.data),
            step=instance.step,
            status=instance.status,
            due_at=instance.due_at,
            updated_at=instance.updated_at,
        )
        for _ in range(MAX_STEPS):
            step = known.steps[walk.step]
            result = self._run(known, step, walk, now, settled or {})
            if isinstance(result, _Stay):
                walk.move(step.id, "waiting", result.until, now)
                return walk
            if isinstance(result, _Sending):
                walk.data["sending"] = result.key
                walk.move(step.id, "sending", None, now)
                return walk
            if isinstance(result, _End):
                walk.note(step.id, result.kind, now, result.detail)
                walk.move(step.id, "done", None, now)
                return walk
            target = step.next[result.outcome]
            walk.move(target, "active", now, now)
            walk.note(target, "entered", now, f"{step.id}.{result.outcome}")
        return walk  # left active and due: the next round goes on

    def _run(self, known: _Graph, step: Step, walk: Walk, now: datetime, settled: Mapping[str, SendOutcome]) -> _Result:
        settings = known.settings[step.id]
        if step.type == "entry":
            return _Move(outcome="next")
        if step.type == "wait":
            return _wait(step, settings, walk, now)
        if step.type == "branch":
            return _Move(outcome=self._branch(settings, walk))
        if step.type == "split":
            return _Move(outcome=_split(known.graph, step, settings, walk, now))
        if step.type in _TOUCH_OUTCOMES:
            return _deliver(known, step, settings, walk, now, settled)
        if step.type == "update":
            return _update(step, settings, walk, now, settled)
        if step.type == "goal":
            return _End(kind="converted", detail="reached")
        return _End(kind="exited", detail=str(step.settings.get("reason", "")))

    def _branch(self, settings: BranchSettings, walk: Walk) -> str:
        context = walk.data.get("context", {})
        facts: Mapping[str, Any] = {}
        if any(c.on != "event" for c in settings.conditions):
            walk.personal = True
            if self._facts is not None:
                facts = self._facts(walk.instance.customer)
        for condition in settings.conditions:
            if condition.on == "event":
                values = dict(context.get("properties") or {}) | dict(context.get("payload") or {})
            elif condition.on == "tags":
                tags = dict(facts.get("tags") or {})
                values = {"tags": sorted(tags)} | tags
            else:
                values = dict(facts.get("profile") or {})
            if holds(condition.where, values):
                return condition.name
        return "else"


# per touch step type: its outcomes when the touch was sent, suppressed, failed
_TOUCH_OUTCOMES = {
    "send": ("sent", "suppressed", "failed"),
    "rm_task": ("created", "failed", "failed"),
    "webhook": ("sent", "failed", "failed"),
}
_Touching = SendSettings | RmTaskSettings | WebhookSettings


def _deliver(
    known: _Graph,
    step: Step,
    settings: _Touching,
    walk: Walk,
    now: datetime,
    settled: Mapping[str, SendOutcome],
) -> _Result:
    """A touch step: each wave (the channel, then a send's fallback) queued in turn until one is sent."""
    sent, suppressed, failed = _TOUCH_OUTCOMES[step.type]
    channels = _channels(settings)
    waves: dict[str, int] = walk.data.setdefault("waves", {})
    outcome = failed
    for index in range(waves.get(step.id, 0), len(channels)):
        waves[step.id] = index
        request = _request(known, step, settings, walk, channels[index], index, now)
        result = settled.get(request.idempotency_key)
        if result is None:
            walk.personal = walk.personal or walk.instance.customer not in request.idempotency_key
            walk.outbox.append(_queued(walk.instance, step.id, request.idempotency_key, request.channel, request, now))
            return _Sending(key=request.idempotency_key)
        walk.data.pop("sending", None)
        if reached(result):
            # sent before (a dispatch repeated after a crash between the send and its settling): sent once
            result = replace(result, status=SendStatus.SENT)
        if result.status is SendStatus.SENT:
            walk.note(step.id, "sent", now, f"{result.channel or channels[index]} {result.idempotency_key}")
            return _Move(outcome=sent)
        kind = "suppressed" if result.status is SendStatus.SUPPRESSED else "failed"
        outcome = suppressed if kind == "suppressed" else failed
        walk.note(step.id, kind, now, f"{result.channel or channels[index]} {result.code}: {result.reason}".strip())
    return _Move(outcome=outcome)


def _channels(settings: _Touching) -> list[str]:
    if isinstance(settings, RmTaskSettings):
        return ["rm"]
    if isinstance(settings, WebhookSettings):
        return [settings.channel]
    return [settings.channel] if settings.channel == BEST else [settings.channel, *settings.fallback]


def _request(
    known: _Graph, step: Step, settings: _Touching, walk: Walk, channel: str, index: int, now: datetime
) -> SendRequest:
    instance = walk.instance
    context = walk.data.get("context", {})
    policy = known.graph.policy
    sender, due_at, urgency = "", None, ""
    if isinstance(settings, RmTaskSettings):
        due_at = now + settings.due_in if settings.due_in is not None else None
        message = rm_task_message(settings, _variables(settings.variables, context), due_at)
        sender, urgency = settings.queue, settings.priority
    elif isinstance(settings, WebhookSettings):
        message = Message(text=settings.payload, variables=_variables(settings.variables, context))
    else:
        message = Message(text=settings.template, variables=_variables(settings.variables, context))
    return SendRequest(
        idempotency_key=touch_key(instance, step.id) + (f":f{index}" if index else ""),
        customer=instance.customer,
        channel=channel,
        message=message,
        addresses=_addresses(context),
        purpose=Purpose(settings.purpose),
        campaign=instance.journey_id,
        journey=instance.journey_id,
        priority=policy.priority,
        sender=sender,
        due_at=due_at,
        urgency=urgency,
        candidates=tuple(settings.fallback) if isinstance(settings, SendSettings) and channel == BEST else (),
        caps=known.caps,
        budget_fen=policy.budget_fen,
    )


def _update(
    step: Step, settings: UpdateSettings, walk: Walk, now: datetime, settled: Mapping[str, SendOutcome]
) -> _Result:
    """The update step: the tag update queued in the outbox, then `done` or `failed` by its settled outcome."""
    key = touch_key(walk.instance, step.id)
    try:
        update = tag_update(
            key, walk.instance.customer, walk.instance.journey_id, settings, walk.data.get("context", {})
        )
    except MissingValueError as missing:
        walk.note(step.id, "failed", now, f"{settings.target} journeys.missing-value: the entry has no {missing}")
        return _Move(outcome="failed")
    result = settled.get(key)
    if result is None:
        walk.personal = walk.personal or walk.instance.customer not in key
        walk.outbox.append(_queued(walk.instance, step.id, key, UPDATE, update, now))
        return _Sending(key=key)
    walk.data.pop("sending", None)
    if result.status is SendStatus.SENT:
        walk.note(
            step.id,
            "updated",
            now,
            f"{settings.target} removed" if update.value is None else f"{settings.target}={update.value}",
        )
        return _Move(outcome="done")
    walk.note(step.id, "failed", now, f"{settings.target} {result.code}: {result.reason}")
    return _Move(outcome="failed")


def _queued(instance: Instance, step_id: str, key: str, channel: str, request: object, now: datetime) -> OutboxRow:
    return OutboxRow(
        key=key,
        journey_id=instance.journey_id,
        version=instance.version,
        customer=instance.customer,
        run=instance.run,
        step=step_id,
        channel=channel,
        request=msgspec.json.encode(request),
        created_at=now,
        not_before=now,
    )


def journey_caps(policy: JourneyPolicy) -> tuple[Cap, ...]:
    """The journey's own frequency caps (counted per journey), on top of the bank's global ones."""
    return tuple(
        Cap(
            limit=cap.limit,
            period=Period(cap.period),
            channel=None if cap.channel is None else ChannelKind(cap.channel),
            purposes=frozenset(Purpose(p) for p in cap.purposes),
            per_campaign=True,
        )
        for cap in policy.caps
    )


def holds(where: list[Any], values: Mapping[str, Any]) -> bool:
    """Every property filter holds on `values` (the triggers' operators)."""
    observed = Observed(message_id="", name="*", type="track", timestamp=datetime.min, properties=values)
    return matches(EventMatch(event="*", where=where), observed)


def touch_key(instance: Instance, step_id: str) -> str:
    key = f"{instance.journey_id}:v{instance.version}:{instance.run}:{step_id}:{instance.customer}"
    if len(key) + 4 <= MAX_KEY and _SPACE.search(key) is None:
        return key
    digest = hashlib.sha256(instance.customer.encode()).hexdigest()[:32]
    return f"{instance.journey_id}:v{instance.version}:{instance.run}:{step_id}:h{digest}"


def _variables(variables: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, str]:
    """`$a.b` reads the entry's context (`properties.product`, `payload.name`); anything else is literal."""
    found: dict[str, str] = {}
    for name, source in variables.items():
        if source.startswith("$"):
            value = lookup(context, source[1:])
            if value is not None:  # a missing one is reported by the send service by name
                found[name] = str(value)
        else:
            found[name] = source
    return found


def _addresses(context: Mapping[str, Any]) -> dict[ChannelKind, str]:
    given = lookup(context, "payload.addresses") or lookup(context, "properties.addresses") or {}
    return {_KINDS[k]: str(v) for k, v in given.items() if k in _KINDS} if isinstance(given, Mapping) else {}


def _wait(step: Step, settings: WaitSettings, walk: Walk, now: datetime) -> _Result:
    waiting = walk.data.get("wait")
    if not isinstance(waiting, dict) or waiting.get("step") != step.id:
        waiting = {"step": step.id, "until": _wait_until(settings, now).isoformat()}
        if settings.event is not None:
            waiting["event"] = msgspec.to_builtins(settings.event)
        walk.data["wait"] = waiting
    until = datetime.fromisoformat(waiting["until"])
    if now < until:
        return _Stay(until=until)
    walk.data.pop("wait", None)
    return _Move(outcome="timeout" if settings.event is not None else "next")


def _wait_until(settings: WaitSettings, now: datetime) -> datetime:
    if settings.duration is not None:
        return now + settings.duration
    if settings.timeout is not None:
        return now + settings.timeout
    assert settings.until is not None  # graph validation: exactly one mode
    local = now.astimezone(ZoneInfo(settings.timezone))
    target = local.replace(hour=settings.until.hour, minute=settings.until.minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return target.astimezone(now.tzinfo)


def _split(graph: JourneyGraph, step: Step, settings: SplitSettings, walk: Walk, now: datetime) -> str:
    chosen: dict[str, str] = walk.data.setdefault("variants", {})
    if step.id in chosen:
        return chosen[step.id]
    walk.personal = True
    name = variant_for(split_experiment(graph.id, step.id, settings.seed), split_plan(settings), walk.instance.customer)
    chosen[step.id] = name
    walk.note(step.id, "assigned", now, name)
    return name


def split_plan(settings: SplitSettings) -> list[VariantPlan]:
    """The variants and shares (in %) a split assigns by: the weights share what the holdout leaves, then the
    holdout. The experiment registered for the split (`journeys.split_experiments`) uses the same plan."""
    total = sum(v.weight for v in settings.variants)
    share = (100.0 - settings.holdout_percent) / total
    plans = [VariantPlan(name=v.name, share=v.weight * share) for v in settings.variants]
    if settings.holdout_percent > 0:
        plans.append(VariantPlan(name=HOLDOUT, share=settings.holdout_percent))
    return plans


def split_experiment(journey_id: str, step_id: str, seed: str) -> str:
    """The experiment id a split assigns under: the same for every version, so a customer keeps their group."""
    return f"journey:{journey_id}:{step_id}" + (f":{seed}" if seed else "")


def awaited(instance_data: Mapping[str, Any]) -> EventMatch | None:
    """The event a waiting instance waits for, if any."""
    waiting = instance_data.get("wait")
    if isinstance(waiting, Mapping) and "event" in waiting:
        return msgspec.convert(waiting["event"], EventMatch)
    return None
