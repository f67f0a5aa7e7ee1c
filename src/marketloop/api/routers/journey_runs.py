"""The journey (旅程) API for running journeys: drafts, publish, pause / resume, per-step counts, dry run.

Reading needs `journeys:read`; saving a draft `journeys:write`; publishing,
pausing and resuming (what changes what customers receive) `journeys:publish`; publishing also
spends an approved maker-checker request (`journey.publish` on `journey:{id}`).
A bad graph is a 400 problem whose `errors[]` point into the journey document;
an unknown journey a 404; pausing a journey that is not active a 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.rehearsal import RehearsalCustomer, rehearse


def journey_definitions(request: Request) -> JourneyDefinitions:
    found: JourneyDefinitions = container(request).journeys
    return found


Journeys = Annotated[JourneyDefinitions, Depends(journey_definitions)]
Reader = Annotated[Principal, require("journeys:read")]
Writer = Annotated[Principal, require("journeys:write")]
Publisher = Annotated[Principal, require("journeys:publish")]
Graph = Annotated[dict[str, Any], Body(description="A journey graph: {id, name, steps: [{id, type, settings, next}]}.")]

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


class DryRunRequest(BaseModel):
    customers: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Test customers: {customer, context?, facts?, events?: [{event, properties}], "
        "suppressed?: [channel]}.",
    )
    version: int | None = Field(default=None, ge=1, description="A published version [default: the draft].")


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


@router.get("", summary="Every journey with its status and published version")
def list_journeys(journeys: Journeys, _: Reader) -> Response:
    return _json(journeys.list())


@router.post("", summary="Create a journey draft (validated like a published one)", status_code=201)
def create_journey(graph: Graph, journeys: Journeys, _: Writer) -> Response:
    return _json(journeys.save(graph), status=201)


@router.get("/{journey_id}", summary="One journey: status, published version, draft")
def get_journey(journey_id: str, journeys: Journeys, _: Reader) -> Response:
    return _json(journeys.get(journey_id))


@router.put("/{journey_id}", summary="Replace a journey's draft (published versions never change)")
def replace_journey(journey_id: str, graph: Graph, journeys: Journeys, _: Writer) -> Response:
    return _json(journeys.save(graph | {"id": journey_id}, replace=True))


@router.post(
    "/{journey_id}/publish",
    summary="Publish the draft as the next version; new entries use it",
    description="Needs an approved `journey.publish` request for `journey:{journey_id}` (maker-checker), "
    "passed as `approval`; each approval publishes once.",
)
def publish_journey(
    journey_id: str,
    journeys: Journeys,
    user: Publisher,
    request: Request,
    approval: Annotated[str | None, Query(description="An approved journey.publish request of yours")] = None,
) -> Response:
    journeys.graph_to_try(journey_id)  # an unknown journey (404) or an invalid draft (400) spends no approval
    container(request).access.approvals.use(
        approval, action="journey.publish", target=f"journey:{journey_id}", user=user
    )
    return _json(journeys.publish(journey_id, by=user.username))


@router.post("/{journey_id}/pause", summary="Pause: no one enters or moves on until resumed")
def pause_journey(journey_id: str, journeys: Journeys, _: Publisher) -> Response:
    return _json(journeys.pause(journey_id))


@router.post("/{journey_id}/resume", summary="Resume a paused journey")
def resume_journey(journey_id: str, journeys: Journeys, _: Publisher) -> Response:
    return _json(journeys.resume(journey_id))


class EntryRequest(BaseModel):
    customers: list[str] = Field(min_length=1, max_length=100_000, description="Customer numbers (OneIDs) to let in.")
    key: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^\S+$",
        description="Names this request: sending it again lets no one in twice.",
    )
    context: dict[str, Any] = Field(
        default_factory=dict, description="The entry's context, as `payload` for templates."
    )


@router.post(
    "/{journey_id}/entries",
    summary="Let customers into an active journey whose entry is `api` (API 进入)",
    description="Each customer enters once per `key` (the re-entry rule applies); their first touches are in the "
    "outbox when this answers. Needs `journeys:publish`: it reaches customers.",
)
def enter_journey(journey_id: str, body: EntryRequest, request: Request, _: Publisher) -> Response:
    runtime = container(request).journey_runner.runtime
    entered = runtime.enter(journey_id, body.customers, key=body.key, context={"payload": body.context})
    return _json({"journey_id": journey_id, "key": body.key, "entered": entered})


@router.get("/{journey_id}/counts", summary="Per step: entered, waiting, sent, suppressed, failed, converted, exited")
def journey_counts(journey_id: str, journeys: Journeys, _: Reader) -> Response:
    return _json(journeys.counts(journey_id))


@router.get("/{journey_id}/versions", summary="The published versions, oldest first")
def journey_versions(
    journey_id: str, journeys: Journeys, _: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    journeys.get(journey_id)
    found = journeys.store.versions(journey_id)[-limit:]
    rows = [{"version": v.version, "published_at": v.published_at, "published_by": v.published_by} for v in found]
    return _json(rows)


@router.post("/{journey_id}/dry-run", summary="Walk test customers through the journey; nothing is stored or sent")
def dry_run_journey(journey_id: str, body: DryRunRequest, journeys: Journeys, request: Request, _: Reader) -> Response:
    graph = journeys.graph_to_try(journey_id, body.version)
    customers = [_customer(number, given) for number, given in enumerate(body.customers)]
    return _json(rehearse(graph, customers, container(request).clock.now()))


def _customer(number: int, given: dict[str, Any]) -> RehearsalCustomer:
    try:
        return msgspec.convert(given, RehearsalCustomer)
    except msgspec.ValidationError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="journeys.invalid-test-customer",
            title="A test customer is not valid",
            detail=str(error),
            errors=[FieldError(pointer=f"/customers/{number}", detail=str(error))],
        ) from None
