"""Walking one journey instance through its steps until it must wait, or ends.

`walk` takes an instance at its current step and runs steps as far as it
can now: a wait stores its due time on the instance (durable: the runner picks
it up when due, after any restart), a branch reads the entry's event and the
customer's facts, a split asks the experiments' `variant_for` (the same
customer always lands in the same group), a send calls the send service with a
key that names the touch (`<journey>:v<version>:<run>:<step>:<customer>`), so a
walk repeated after a crash never reaches the customer twice, a goal or an
exit ends the run. Everything that happened is returned as step-log rows for
the caller to commit together with the instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.core.errors import MarketloopError
from marketloop.experiments.assignment import variant_for
from marketloop.journeys.channels.sending import BEST, MAX_KEY, Message, SendOutcome, SendRequest, SendStatus
from marketloop.journeys.graph import JourneyGraph, Step, settings_of
from marketloop.journeys.step_types import BranchSettings, SendSettings, SplitSettings, WaitSettings
from marketloop.journeys.steps import Observed, lookup, matches
from marketloop.journeys.triggers import EventMatch
from marketloop.ports.channels import DeliveryStatus
from marketloop.ports.experiments import VariantPlan
from marketloop.ports.journeys import Instance, LogRow

Sender = Callable[[SendRequest], SendOutcome]
# customer -> {"profile": {field: value}, "tags": {tag: value}} (see `journeys.facts`)
Facts = Callable[[str], Mapping[str, Any]]

MAX_STEPS = 100  # a walk is bounded; loops go through waits, so this is never reached by a valid graph
RETRY_LATER = timedelta(minutes=1)
_LATER = {SendStatus.DEFERRED, SendStatus.THROTTLED, SendStatus.RETRYING, SendStatus.DUPLICATE}
# ledger states of a touch the provider took: a DUPLICATE answer in one of them means "sent before"
_REACHED = frozenset(
    s.value
    for s in (
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.OPENED,
        DeliveryStatus.CLICKED,
        DeliveryStatus.UNSUBSCRIBED,
    )
)


@dataclass(kw_only=True)
class Walk:
    """The instance as the walk left it, and what happened on the way."""

    instance: Instance
    data: dict[str, Any]
    log: list[LogRow] = field(default_factory=list)

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

    def finish(self) -> Instance:
        return replace(self.instance, data=msgspec.json.encode(self.data))


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


_Result = _Move | _Stay | _End


class Walker:
    """Runs steps; `send` is the channels' send service, `facts` reads a customer's profile and tags."""

    def __init__(self, send: Sender, facts: Facts | None = None) -> None:
        self._send = send
        self._facts = facts

    def walk(self, graph: JourneyGraph, instance: Instance, now: datetime) -> Walk:
        walk = Walk(instance=instance, data=msgspec.json.decode(instance.data))
        by_id = {step.id: step for step in graph.steps}
        for _ in range(MAX_STEPS):
            step = by_id[walk.instance.step]
            result = self._run(graph, step, walk, now)
            if isinstance(result, _Stay):
                walk.instance = replace(walk.instance, status="waiting", due_at=result.until, updated_at=now)
                return walk
            if isinstance(result, _End):
                walk.note(step.id, result.kind, now, result.detail)
                walk.instance = replace(walk.instance, status="done", due_at=None, updated_at=now)
                return walk
            target = step.next[result.outcome]
            walk.instance = replace(walk.instance, step=target, status="active", due_at=now, updated_at=now)
            walk.note(target, "entered", now, f"{step.id}.{result.outcome}")
        return walk  # left active and due: the next round goes on

    def _run(self, graph: JourneyGraph, step: Step, walk: Walk, now: datetime) -> _Result:
        if step.type == "entry":
            return _Move(outcome="next")
        if step.type == "wait":
            return _wait(step, settings_of(step), walk, now)
        if step.type == "branch":
            return _Move(outcome=self._branch(settings_of(step), walk))
        if step.type == "split":
            return _Move(outcome=_split(graph, step, settings_of(step), walk, now))
        if step.type == "send":
            return self._deliver(step, settings_of(step), walk, now)
        if step.type == "goal":
            return _End(kind="converted", detail="reached")
        return _End(kind="exited", detail=str(step.settings.get("reason", "")))

    def _branch(self, settings: BranchSettings, walk: Walk) -> str:
        context = walk.data.get("context", {})
        facts: Mapping[str, Any] = {}
        if self._facts is not None and any(c.on != "event" for c in settings.conditions):
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

    def _deliver(self, step: Step, settings: SendSettings, walk: Walk, now: datetime) -> _Result:
        channels = [settings.channel] if settings.channel == BEST else [settings.channel, *settings.fallback]
        waves: dict[str, int] = walk.data.setdefault("waves", {})
        outcome = "failed"
        for index in range(waves.get(step.id, 0), len(channels)):
            waves[step.id] = index
            result = self._send_wave(step, settings, walk, channels[index], index)
            if result.status is SendStatus.DUPLICATE and result.code in _REACHED:
                # sent before (a walk repeated after a crash between the send and its commit): record it once
                result = replace(result, status=SendStatus.SENT)
            if result.status in _LATER:
                return _Stay(until=result.retry_at or now + RETRY_LATER)
            if result.status is SendStatus.SENT:
                walk.note(step.id, "sent", now, f"{channels[index]} {result.idempotency_key}")
                return _Move(outcome="sent")
            outcome = "suppressed" if result.status is SendStatus.SUPPRESSED else "failed"
            walk.note(step.id, outcome, now, f"{channels[index]} {result.code}: {result.reason}".strip())
        return _Move(outcome=outcome)

    def _send_wave(self, step: Step, settings: SendSettings, walk: Walk, channel: str, index: int) -> SendOutcome:
        instance = walk.instance
        key = touch_key(instance, step.id) + (f":f{index}" if index else "")
        context = walk.data.get("context", {})
        request = SendRequest(
            idempotency_key=key,
            customer=instance.customer,
            channel=channel,
            message=Message(text=settings.template, variables=_variables(settings.variables, context)),
            addresses=_addresses(context),
            purpose=Purpose(settings.purpose),
            campaign=instance.journey_id,
            journey=instance.journey_id,
            candidates=tuple(settings.fallback) if channel == BEST else (),
        )
        try:
            return self._send(request)
        except MarketloopError as error:  # bad input (a missing variable): this touch fails, the journey goes on
            return SendOutcome(
                idempotency_key=key, status=SendStatus.FAILED, channel=channel, code=error.code, reason=error.title
            )


def holds(where: list[Any], values: Mapping[str, Any]) -> bool:
    """Every property filter holds on `values` (the triggers' operators)."""
    observed = Observed(message_id="", name="*", type="track", timestamp=datetime.min, properties=values)
    return matches(EventMatch(event="*", where=where), observed)


def touch_key(instance: Instance, step_id: str) -> str:
    key = f"{instance.journey_id}:v{instance.version}:{instance.run}:{step_id}:{instance.customer}"
    if len(key) + 4 <= MAX_KEY and not any(c.isspace() for c in key):
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
    kinds = {kind.value: kind for kind in ChannelKind}
    return {kinds[k]: str(v) for k, v in given.items() if k in kinds} if isinstance(given, Mapping) else {}


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
    total = sum(v.weight for v in settings.variants)
    share = (100.0 - settings.holdout_percent) / total
    plans = [VariantPlan(name=v.name, share=v.weight * share) for v in settings.variants]
    if settings.holdout_percent > 0:
        plans.append(VariantPlan(name="holdout", share=settings.holdout_percent))
    name = variant_for(split_experiment(graph.id, step.id, settings.seed), plans, walk.instance.customer)
    chosen[step.id] = name
    walk.note(step.id, "assigned", now, name)
    return name


def split_experiment(journey_id: str, step_id: str, seed: str) -> str:
    """The experiment id a split assigns under: the same for every version, so a customer keeps their group."""
    return f"journey:{journey_id}:{step_id}" + (f":{seed}" if seed else "")


def awaited(instance_data: Mapping[str, Any]) -> EventMatch | None:
    """The event a waiting instance waits for, if any."""
    waiting = instance_data.get("wait")
    if isinstance(waiting, Mapping) and "event" in waiting:
        return msgspec.convert(waiting["event"], EventMatch)
    return None
