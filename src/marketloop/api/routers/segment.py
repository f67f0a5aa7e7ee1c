"""The Segment HTTP tracking API: `/v1/track`, `/identify`, `/page`, `/screen`, `/alias`, `/group`, `/batch`.

These are the busiest routes, so they are served as plain ASGI (`CollectRoute`):
no dependency injection, no `Request` object, the body read straight from
`receive`. They stay FastAPI routes, so they are in the OpenAPI schema and behind
the app's middleware and problem+json error handlers, like every other route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from marketloop.api.body import RequestHeaders, basic_username_of, receive_body
from marketloop.api.collected import collected_response, send_ok
from marketloop.api.deps import collect_service_of
from marketloop.collect.segment_spec import SegmentBatch, SegmentMessage, decode_segment


async def collect_segment(scope: Scope, receive: Receive, send: Send, endpoint: str) -> None:
    """Answer one request to `/v1/{endpoint}`: 200 once its events are durable.

    Domain errors (`MarketloopError`) propagate to the app's problem+json handler.
    """
    collect = collect_service_of(scope)
    headers = RequestHeaders(scope)
    header_key = basic_username_of(headers.authorization)
    source = collect.authenticate(header_key) if header_key else None
    try:
        body = await receive_body(headers, receive)
    except ClientDisconnect:
        return  # nobody is left to answer, and nothing was collected
    inbound = decode_segment(body, endpoint=endpoint, received_at=collect.now())
    if source is None:
        source = collect.authenticate(inbound.write_key)
    result = await collect.collect(source, inbound)
    if not result.rejected and not result.quarantined:
        await send_ok(send)
        return
    await collected_response(result, URL(scope=scope).path)(scope, receive, send)


class CollectRoute(APIRoute):
    """A FastAPI route whose requests go straight to `collect_segment`.

    The endpoint function only describes the operation for the OpenAPI schema.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._segment_endpoint = path.rsplit("/", 1)[-1]

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.methods or set()
        if scope["method"] not in methods:
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(sorted(methods))})
        await collect_segment(scope, receive, send, self._segment_endpoint)


router = APIRouter(prefix="/v1", tags=["collect"], route_class=CollectRoute)

_OK_SCHEMA = {"type": "object", "properties": {"success": {"type": "boolean"}}}


def _body_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """JSON schemas of one message and of a batch of them, from the msgspec structs the decoder uses."""
    _, components = msgspec.json.schema_components([SegmentMessage, SegmentBatch])
    message = components["SegmentMessage"]
    batch = components["SegmentBatch"]
    batch["properties"]["batch"] = {"type": "array", "items": message}
    return message, batch


def _operation(body: dict[str, Any]) -> dict[str, Any]:
    """The request body and answers of a collection route, for the OpenAPI schema."""
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {"description": "Durable in the event log", "content": {"application/json": {"schema": _OK_SCHEMA}}},
            "400": {"description": "Nothing in the request is valid (problem+json, errors by index)"},
            "401": {"description": "The write key is missing, unknown or disabled"},
            "413": {"description": "The request or an event is too large"},
        },
    }


_MESSAGE_SCHEMA, _BATCH_SCHEMA = _body_schemas()
_ONE = _operation(_MESSAGE_SCHEMA)
_BATCH = _operation(_BATCH_SCHEMA)


def _not_called() -> Response:
    raise AssertionError("CollectRoute.handle serves this route")  # pragma: no cover


# The busiest route first: FastAPI tries the routes in order, twice per request.
@router.post("/batch", summary="Segment batch (up to 500 KB)", openapi_extra=_BATCH, response_class=Response)
async def batch() -> Response:
    return _not_called()


@router.post("/track", summary="Segment track", openapi_extra=_ONE, response_class=Response)
async def track() -> Response:
    return _not_called()


@router.post("/identify", summary="Segment identify", openapi_extra=_ONE, response_class=Response)
async def identify() -> Response:
    return _not_called()


@router.post("/page", summary="Segment page", openapi_extra=_ONE, response_class=Response)
async def page() -> Response:
    return _not_called()


@router.post("/screen", summary="Segment screen", openapi_extra=_ONE, response_class=Response)
async def screen() -> Response:
    return _not_called()


@router.post("/alias", summary="Segment alias", openapi_extra=_ONE, response_class=Response)
async def alias() -> Response:
    return _not_called()


@router.post("/group", summary="Segment group", openapi_extra=_ONE, response_class=Response)
async def group() -> Response:
    return _not_called()
