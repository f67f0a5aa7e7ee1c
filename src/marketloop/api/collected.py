"""The answer to a collection request, the same for every wire format."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from marketloop.api.problem import field_errors, problem_response
from marketloop.collect.service import Collected

_OK = orjson.dumps({"success": True})


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
