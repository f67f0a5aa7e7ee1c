"""The Segment HTTP tracking API: `/v1/track`, `/identify`, `/page`, `/screen`, `/alias`, `/group`, `/batch`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from marketloop.api.body import basic_username, read_body
from marketloop.api.collected import collected_response
from marketloop.api.deps import Collect
from marketloop.collect.segment_spec import decode_segment

router = APIRouter(prefix="/v1", tags=["collect"])


async def _collect(request: Request, endpoint: str, collect: Collect) -> Response:
    header_key = basic_username(request)
    source = collect.authenticate(header_key) if header_key else None
    body = await read_body(request)
    inbound = decode_segment(body, endpoint=endpoint, received_at=collect.now())
    if source is None:
        source = collect.authenticate(inbound.write_key)
    result = await collect.collect(source, inbound)
    return collected_response(result, request.url.path)


@router.post("/track", summary="Segment track")
async def track(request: Request, collect: Collect) -> Response:
    return await _collect(request, "track", collect)


@router.post("/identify", summary="Segment identify")
async def identify(request: Request, collect: Collect) -> Response:
    return await _collect(request, "identify", collect)


@router.post("/page", summary="Segment page")
async def page(request: Request, collect: Collect) -> Response:
    return await _collect(request, "page", collect)


@router.post("/screen", summary="Segment screen")
async def screen(request: Request, collect: Collect) -> Response:
    return await _collect(request, "screen", collect)


@router.post("/alias", summary="Segment alias")
async def alias(request: Request, collect: Collect) -> Response:
    return await _collect(request, "alias", collect)


@router.post("/group", summary="Segment group")
async def group(request: Request, collect: Collect) -> Response:
    return await _collect(request, "group", collect)


@router.post("/batch", summary="Segment batch (up to 500 KB)")
async def batch(request: Request, collect: Collect) -> Response:
    return await _collect(request, "batch", collect)
