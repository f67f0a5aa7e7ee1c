"""The journey (旅程) API so far: the step types the canvas draws, and validation of a journey graph.

Publishing, versions and running journeys come with the journey runtime.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import require
from marketloop.journeys.graph import describe_step_types, outcomes_of, parse_journey

Reader = Annotated[Principal, require("journeys:read")]
Graph = Annotated[dict[str, Any], Body(description="A journey graph: {id, name, steps: [{id, type, settings, next}]}.")]

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


@router.get("/step-types", summary="Every step type with its settings schema and outcomes")
def step_types(_: Reader) -> Response:
    return Response(msgspec.json.encode(describe_step_types()), media_type="application/json")


@router.post("/validate", summary="Validate a journey graph; a 400 problem lists every fault with its pointer")
def validate_journey(graph: Graph, _: Reader) -> Response:
    journey = parse_journey(graph)
    body = {"valid": True, "steps": {step.id: outcomes_of(step) for step in journey.steps}}
    return Response(msgspec.json.encode(body), media_type="application/json")
