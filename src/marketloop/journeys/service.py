"""The trigger service: create, list, enable, dry-run and (API triggers) fire triggers.

Definitions go to the `TriggerRepository`; the running stream processor
picks a change up at its next batch. An API trigger call is appended to the
event log as a `$api_trigger` event, so it is as durable and exactly-once as
any event: the caller's idempotency key becomes its `message_id`.
"""

from __future__ import annotations

import builtins
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.events import Event, as_utc
from marketloop.journeys.dates import schedule_timer
from marketloop.journeys.dryrun import DryRun, dry_run
from marketloop.journeys.triggers import (
    API_EVENT,
    ApiTrigger,
    ScheduleTrigger,
    Trigger,
    as_dict,
    encode_trigger,
    parse_trigger,
)
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.ports.realtime import (
    SCHEDULER_PARTITION,
    StoredFire,
    StoredTimer,
    StreamStore,
    TriggerRecord,
    TriggerRepository,
)

API_SOURCE = "api-trigger"


class TestEvent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An event for a dry run: the `Event` fields, with only `timestamp` required."""

    timestamp: datetime
    event: str | None = None
    type: str = "track"
    message_id: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    context: dict[str, Any] = {}


_test_events = msgspec.json.Decoder(list[TestEvent], strict=False)


@dataclass(frozen=True, kw_only=True)
class TriggerView:
    trigger_id: str
    kind: str
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _view(record: TriggerRecord) -> TriggerView:
    definition: dict[str, Any] = msgspec.json.decode(record.definition)
    return TriggerView(
        trigger_id=record.trigger_id,
        kind=record.kind,
        enabled=record.enabled,
        definition=definition,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _not_found(trigger_id: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.NOT_FOUND, code="triggers.not-found", title="No such trigger", detail=trigger_id
    )


def parse_test_events(document: bytes | str | list[Any], pointer: str = "/events") -> list[Event]:
    """Dry-run events from JSON; INVALID naming the offending event and field."""
    raw = document if isinstance(document, bytes | str) else msgspec.json.encode(document)
    try:
        given = _test_events.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        message = str(error)
        path = message.rsplit("at `$", 1)[1].rstrip("`") if "at `$" in message else ""
        spot = pointer + path.replace("[", "/").replace("]", "").replace(".", "/")
        detail = message.split(" - at ")[0]
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="triggers.invalid-events",
            title="The test events are not valid",
            detail=detail,
            errors=[FieldError(pointer=spot, detail=detail)],
        ) from None
    return [_event(number, item) for number, item in enumerate(given)]


def _event(number: int, given: TestEvent) -> Event:
    moment = as_utc(given.timestamp)
    return Event(
        message_id=given.message_id or f"test-{number}",
        type=given.type,
        source_id="dry-run",
        received_at=moment,
        timestamp=moment,
        event=given.event,
        user_id=given.user_id,
        anonymous_id=given.anonymous_id,
        properties=given.properties,
        traits=given.traits,
        context=given.context,
    )


class TriggerService:
    def __init__(
        self,
        repository: TriggerRepository,
        clock: Clock,
        *,
        events: EventLog | None = None,
        store: StreamStore | None = None,
        audit: AuditRecorder | None = None,
    ) -> None:
        self._repository = repository
        self._store = store
        self._audit = audit
        self._clock = clock
        self._log = events

    def save(self, document: bytes | str | dict[str, Any], *, replace: bool = False) -> TriggerView:
        """Store a new trigger (CONFLICT when the id is taken, unless `replace`); a schedule gets its first timer."""
        trigger = parse_trigger(document)
        existing = self._repository.get(trigger.id)
        if existing is not None and not replace:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="triggers.exists",
                title="A trigger with this id exists",
                detail=f"{trigger.id}: choose another id, or replace it (--replace / PUT)",
            )
        return self._store_trigger(trigger, existing, "trigger.replace" if existing is not None else "trigger.create")

    def _store_trigger(self, trigger: Trigger, existing: TriggerRecord | None, action: str) -> TriggerView:
        now = self._clock.now()
        record = TriggerRecord(
            trigger_id=trigger.id,
            kind=_kind(trigger),
            definition=encode_trigger(trigger),
            enabled=trigger.enabled,
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
        )
        # A disabled trigger keeps no open episodes: enabled again, it starts afresh instead of firing stale ones.
        reset = not trigger.enabled or _changed(existing, trigger)
        self._repository.save(record, self._first_timers(trigger, now), reset_state=reset)
        self._record(action, trigger.id, kind=record.kind)
        return _view(record)

    def _first_timers(self, trigger: Trigger, now: datetime) -> list[StoredTimer]:
        if not isinstance(trigger, ScheduleTrigger) or not trigger.enabled:
            return []
        first = schedule_timer(trigger, now)
        if first is None:
            return []
        return [
            StoredTimer(
                timer_id=first.timer_id,
                trigger_id=trigger.id,
                customer=first.customer,
                partition=SCHEDULER_PARTITION,
                due_at=first.due_at,
            )
        ]

    def set_enabled(self, trigger_id: str, enabled: bool) -> TriggerView:
        existing = self._repository.get(trigger_id)
        if existing is None:
            raise _not_found(trigger_id)
        trigger = parse_trigger(as_dict(parse_trigger(existing.definition)) | {"enabled": enabled})
        return self._store_trigger(trigger, existing, "trigger.enable" if enabled else "trigger.disable")

    def trigger(self, trigger_id: str) -> Trigger:
        record = self._repository.get(trigger_id)
        if record is None:
            raise _not_found(trigger_id)
        return parse_trigger(record.definition)

    def get(self, trigger_id: str) -> TriggerView:
        record = self._repository.get(trigger_id)
        if record is None:
            raise _not_found(trigger_id)
        return _view(record)

    def list(self) -> list[TriggerView]:
        return [_view(record) for record in self._repository.list()]

    def test(
        self,
        trigger: Trigger | bytes | str | dict[str, Any],
        events: Sequence[Event],
        *,
        until: datetime | None = None,
        start: datetime | None = None,
    ) -> DryRun:
        """Dry-run a trigger (a definition, or a stored one's) over `events`; nothing is stored."""
        if isinstance(trigger, bytes | str | dict):
            trigger = parse_trigger(trigger, "/trigger")
        return dry_run(trigger, events, until=until and as_utc(until), start=start and as_utc(start))

    async def fire(
        self, trigger_id: str, customer: str, payload: dict[str, Any], idempotency_key: str | None = None
    ) -> str:
        """Append an API trigger call for `customer` (a user id) to the log; returns its message id."""
        trigger = self.trigger(trigger_id)
        if not isinstance(trigger, ApiTrigger):
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="triggers.not-api",
                title="Only an API trigger can be fired by a call",
                detail=f"{trigger_id} is a {_kind(trigger)} trigger",
            )
        if not trigger.enabled:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT, code="triggers.disabled", title="The trigger is disabled", detail=trigger_id
            )
        missing = [name for name in trigger.required if name not in payload]
        if missing:
            errors = [FieldError(pointer=f"/payload/{name}", detail="required") for name in missing]
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="triggers.missing-payload",
                title="The call lacks payload properties the trigger requires",
                detail=", ".join(missing),
                errors=errors,
            )
        message_id = await self._append(trigger_id, customer, payload, idempotency_key)
        self._record("trigger.fire", trigger_id, customer=customer, message_id=message_id)
        return message_id

    def _record(self, action: str, trigger_id: str, **details: object) -> None:
        if self._audit is not None:
            self._audit.record(action, f"trigger:{trigger_id}", details=details)

    async def _append(self, trigger_id: str, customer: str, payload: dict[str, Any], key: str | None) -> str:
        if self._log is None:
            raise RuntimeError("this trigger service has no event log (opened without the server's stores)")
        now = self._clock.now()
        message_id = f"api-{key}" if key else f"api-{uuid.uuid4().hex}"
        event = Event(
            message_id=message_id,
            type="track",
            source_id=API_SOURCE,
            received_at=now,
            timestamp=now,
            event=API_EVENT,
            user_id=customer,
            properties={"trigger_id": trigger_id, "payload": payload},
        )
        # The same partition as the collection service gives this customer's events (collect/service.py).
        partition = zlib.crc32(customer.encode()) % self._log.partitions
        await self._log.append(partition, [msgspec.json.encode(event)])
        return message_id

    def fires(self, trigger_id: str | None = None, limit: int = 100) -> builtins.list[StoredFire]:
        """The newest fires (the processor's outbox rows), only `trigger_id`'s when given."""
        if self._store is None:
            raise RuntimeError("this trigger service has no stream store")
        if trigger_id is not None and self._repository.get(trigger_id) is None:
            raise _not_found(trigger_id)
        return self._store.fires(trigger_id, limit=limit)


def _changed(existing: TriggerRecord | None, trigger: Trigger) -> bool:
    """Whether the definition changed in what its state means (anything but its name and `enabled`)."""
    if existing is None:
        return False
    ignored = ("name", "enabled")
    before = {k: v for k, v in msgspec.json.decode(existing.definition).items() if k not in ignored}
    after = {k: v for k, v in as_dict(trigger).items() if k not in ignored}
    return bool(before != after)


def _kind(trigger: Trigger) -> str:
    kind: str = type(trigger).__struct_config__.tag  # type: ignore[assignment]
    return kind
