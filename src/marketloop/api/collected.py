"""The answer to a collection request, the same for every wire format."""

from __future__ import annotations

import orjson
from starlette.responses import Response
from starlette.types import Message, Send

from marketloop.api.problem import field_errors, problem_response
from marketloop.collect.service import Collected

_OK = orjson.dumps({"success": True})
_OK_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", str(len(_OK)).encode()), (b"content-type", b"application/json")],
}
_OK_BODY: Message = {"type": "http.response.body", "body": _OK}


async def send_ok(send: Send) -> None:
    """The plain 200 of `collected_response`, sent on raw ASGI without building a `Response`."""
    await send(_OK_START)
    await send(_OK_BODY)


def collected_response(result: Collected, path: str) -> Response:
    """200 when anything was kept; 400 problem+json, every message by index, when nothing was."""
    if result.rejected and not (result.accepted or result.quarantined):
        return problem_response(
            400,
            "collect.invalid-batch",
            "No event in the request is valid",
            f"{len(result.rejected)} events rejected; see errors by index.",
            instance=path,
            errors=result.rejected,
        )
    if not result.rejected and not result.quarantined:
        return Response(_OK, media_type="application/json")
    body = {
        "success": True,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "rejected": field_errors(result.rejected),
    }
    return Response(orjson.dumps(body), media_type="application/json")
