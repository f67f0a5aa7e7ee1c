"""The Sensors Analytics (神策) SDK endpoints: `POST /sa` and the web beacon `GET /sa.gif`.

The source is chosen by the `token` query parameter (a write key) or, with no
token, by the `project` name a source was created with (`sources create
--project`). Answers are what the SDKs expect: 200 once the events are durable
(`/sa.gif` answers with a 1×1 GIF), problem+json otherwise.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from starlette.responses import Response

from marketloop.api.body import read_body
from marketloop.api.collected import collected_response
from marketloop.api.deps import Collect
from marketloop.collect.sensors_format import MAX_FORM_BYTES, decode_sensors_form, decode_sensors_query
from marketloop.collect.wire import Inbound

router = APIRouter(tags=["collect"])

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


async def _collect(request: Request, collect: Collect, inbound: Inbound) -> Response:
    source = collect.authenticate(inbound.write_key, inbound.project)
    result = await collect.collect(source, inbound)
    return collected_response(result, request.url.path)


@router.post("/sa", summary="Sensors Analytics SDK (form field data / data_list, base64, optional gzip)")
async def sensors_post(request: Request, collect: Collect) -> Response:
    body = await read_body(request, limit=MAX_FORM_BYTES)
    query = request.query_params
    inbound = decode_sensors_form(
        body, received_at=collect.now(), project=query.get("project"), token=query.get("token")
    )
    return await _collect(request, collect, inbound)


@router.get("/sa.gif", summary="Sensors Analytics web beacon", response_class=Response)
async def sensors_beacon(request: Request, collect: Collect) -> Response:
    inbound = decode_sensors_query(dict(request.query_params), received_at=collect.now())
    answer = await _collect(request, collect, inbound)
    if answer.status_code != 200:
        return answer
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})
