"""The trigger (触发器) API: create from JSON, list, read, enable / disable, dry-run, fire an API trigger.

Reading and dry runs need `journeys:read`; creating, changing and firing
need `journeys:write`. A bad definition is a 400 problem whose `errors[]`
point at the offending field of the request body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.journeys.service import TriggerService, parse_test_events
from marketloop.journeys.triggers import invalid_trigger
from marketloop.ports.realtime import StoredFire


def trigger_service(request: Request) -> TriggerService:
    found: TriggerService = container(request).triggers
    return found


Triggers = Annotated[TriggerService, Depends(trigger_service)]
Reader = Annotated[Principal, require("journeys:read")]
Writer = Annotated[Principal, require("journeys:write")]
Definition = Annotated[dict[str, Any], Body(description="The trigger's JSON form (see docs/realtime.md).")]

router = APIRouter(prefix="/v1/triggers", tags=["triggers"])


class DryRunRequest(BaseModel):
    trigger: dict[str, Any] | None = Field(default=None, description="A definition to try (or give `trigger_id`).")
    trigger_id: str | None = Field(default=None, description="Try a stored trigger.")
    events: list[dict[str, Any]] = Field(description="Events in the `Event` form; only `timestamp` is required.")
    until: datetime | None = Field(default=None, description="Fire timers due by then [default: every pending one].")
    start: datetime | None = Field(default=None, description="A schedule's start [default: the first event].")


class FireRequest(BaseModel):
    customer: str = Field(min_length=1, max_length=200, description="The customer's user id.")
    payload: dict[str, Any] = {}
    idempotency_key: str | None = Field(default=None, max_length=200, description="A retry with it fires once.")


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


def _fire(fire: StoredFire) -> dict[str, Any]:
    return {
        "fire_id": fire.fire_id,
        "trigger_id": fire.trigger_id,
        "customer": fire.customer,
        "reason": fire.reason,
        "fired_at": fire.fired_at,
        "recorded_at": fire.recorded_at,
        "cause": orjson.loads(fire.cause),
        "context": orjson.loads(fire.context),
    }


@router.get("", summary="Every trigger")
def list_triggers(triggers: Triggers, _: Reader) -> Response:
    return _json(triggers.list())


@router.post("", summary="Create a trigger from its JSON form", status_code=201)
def create_trigger(definition: Definition, triggers: Triggers, _: Writer) -> Response:
    return _json(triggers.save(definition), status=201)


@router.get("/status", summary="The stream processor: lag per partition, failures, the next timer due")
def processor_status(request: Request, _: Reader) -> Response:
    return _json(container(request).processor.status())


@router.post("/test", summary="Dry-run a trigger against a list of events (nothing is stored)")
def dry_run_trigger(body: DryRunRequest, triggers: Triggers, _: Reader) -> Response:
    events = parse_test_events(body.events)
    given: Any = body.trigger if body.trigger is not None else triggers.trigger(_stored_id(body))
    result = triggers.test(given, events, until=body.until, start=body.start)
    return _json({"fires": result.fires, "pending_timers": result.pending})


def _stored_id(body: DryRunRequest) -> str:
    if body.trigger_id is None:
        raise invalid_trigger("give `trigger` (a definition) or `trigger_id` (a stored trigger)", "/trigger")
    return body.trigger_id


@router.get("/{trigger_id}", summary="One trigger")
def get_trigger(trigger_id: str, triggers: Triggers, _: Reader) -> Response:
    return _json(triggers.get(trigger_id))


@router.put("/{trigger_id}", summary="Replace a trigger's definition")
def replace_trigger(trigger_id: str, definition: Definition, triggers: Triggers, _: Writer) -> Response:
    return _json(triggers.save(definition | {"id": trigger_id}, replace=True))


@router.post("/{trigger_id}/enable", summary="Enable a trigger")
def enable_trigger(trigger_id: str, triggers: Triggers, _: Writer) -> Response:
    return _json(triggers.set_enabled(trigger_id, True))


@router.post("/{trigger_id}/disable", summary="Disable a trigger (its open episodes and timers are dropped)")
def disable_trigger(trigger_id: str, triggers: Triggers, _: Writer) -> Response:
    return _json(triggers.set_enabled(trigger_id, False))


@router.post("/{trigger_id}/fire", summary="Fire an API trigger for a customer", status_code=202)
async def fire_trigger(trigger_id: str, body: FireRequest, triggers: Triggers, _: Writer) -> Response:
    message_id = await triggers.fire(trigger_id, body.customer, body.payload, body.idempotency_key)
    return _json({"accepted": True, "message_id": message_id}, status=202)


@router.get("/{trigger_id}/fires", summary="The trigger's newest fires (the processor's outbox rows)")
def trigger_fires(
    trigger_id: str, triggers: Triggers, _: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    return _json([_fire(f) for f in triggers.fires(trigger_id, limit=limit)])
