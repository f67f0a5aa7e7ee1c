"""The tracking-plan admin API: the plan, its violations, the quarantine and replay.

These are administration routes: reading needs `tracking:read`; replacing
the plan and replaying the quarantine need `tracking:write`.

Routes are thin: parse, call one `TrackingPlanService` method, encode the
result with msgspec (the quarantine carries full `Event` records).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from marketloop.api.auth import require
from marketloop.api.deps import Collect, container
from marketloop.collect.tracking_plan import MAX_LIMIT, ReplayResult, TrackingPlanService
from marketloop.ports.warehouse import StoredViolation, ViolationCount


def tracking_service(request: Request) -> TrackingPlanService:
    return container(request).tracking


Tracking = Annotated[TrackingPlanService, Depends(tracking_service)]
SourceParam = Annotated[str | None, Query(description="Only this source (name or id).")]
EventParam = Annotated[str | None, Query(description="Only this event name.")]
SinceParam = Annotated[datetime | None, Query(description="Only events received at or after this time.")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many rows.")]

router = APIRouter(prefix="/v1", tags=["tracking plan"])

_PLAN_BODY = {
    "requestBody": {
        "required": True,
        "description": "The plan document as JSON or YAML; `version`, when given, must be the current one.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def _json(value: object) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


@router.get("/tracking-plan", summary="The current tracking plan (埋点方案)", dependencies=[require("tracking:read")])
def get_plan(tracking: Tracking) -> dict[str, Any]:
    return tracking.document()


@router.put(
    "/tracking-plan",
    summary="Replace the tracking plan (stored as the next version)",
    openapi_extra=_PLAN_BODY,
    dependencies=[require("tracking:write")],
)
async def put_plan(request: Request, tracking: Tracking) -> dict[str, Any]:
    body = await request.body()
    change = await run_in_threadpool(tracking.replace, body)
    return change.document


@router.get(
    "/tracking/violations",
    summary="Stored violations, newest first",
    response_model=list[StoredViolation],
    dependencies=[require("tracking:read")],
)
def list_violations(
    tracking: Tracking,
    source: SourceParam = None,
    event: EventParam = None,
    since: SinceParam = None,
    limit: LimitParam = 100,
) -> Response:
    return _json(tracking.violations(source=source, event=event, since=since, limit=limit))


@router.get(
    "/tracking/violations/summary",
    summary="Violations counted by event and violation",
    response_model=list[ViolationCount],
    dependencies=[require("tracking:read")],
)
def summarise_violations(
    tracking: Tracking, source: SourceParam = None, event: EventParam = None, since: SinceParam = None
) -> Response:
    return _json(tracking.violation_summary(source=source, event=event, since=since))


@router.get(
    "/tracking/quarantine",
    summary="Quarantined events, oldest first, with their records",
    dependencies=[require("tracking:read")],
)
def list_quarantine(
    tracking: Tracking,
    source: SourceParam = None,
    include_released: Annotated[bool, Query(description="Include events already replayed.")] = False,
    limit: LimitParam = 100,
) -> Response:
    return _json(tracking.quarantine(source=source, include_released=include_released, limit=limit))


@router.post(
    "/tracking/quarantine/replay",
    summary="Re-check quarantined events against the current plan; collect those that pass",
    response_model=ReplayResult,
    dependencies=[require("tracking:write")],
)
async def replay_quarantine(tracking: Tracking, collect: Collect, source: SourceParam = None) -> Response:
    return _json(await tracking.replay(collect, source=source))
