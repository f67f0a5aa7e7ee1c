"""The segment (客群) API: count a definition, save versions, list, materialise, export.

Counting and reading need `segments:read`, saving and materialising
`segments:write`, exporting the member list `segments:export`. Routes are
thin: parse the body, call one `SegmentService` method. A bad definition is a 400 problem whose
`errors[]` point at each spot: a JSON pointer into the request body for the
JSON form, a line and column for the text form.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from marketloop.access.principal import Principal
from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.ports.segments import SegmentVersion, Snapshot
from marketloop.segments.ast import Condition
from marketloop.segments.parse import parse_definition
from marketloop.segments.service import SegmentService


def segment_service(request: Request) -> SegmentService:
    return container(request).segments


Segments = Annotated[SegmentService, Depends(segment_service)]
Definition = Annotated[
    dict[str, Any] | str,
    Field(description="The definition: its JSON form (an object) or its text form (a string)."),
]

router = APIRouter(prefix="/v1/segments", tags=["segments"])


class CountRequest(BaseModel):
    definition: Definition
    as_of: datetime | None = Field(default=None, description="Evaluate as of this time [default: now].")


class CountResponse(BaseModel):
    count: int
    ms: float
    as_of: datetime


class SaveRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    definition: Definition
    description: str = ""
    segment_id: str | None = Field(default=None, description="Save as the next version of this segment.")


class MaterialiseRequest(BaseModel):
    as_of: datetime | None = None


def _definition(body: CountRequest | SaveRequest) -> Condition:
    return parse_definition(body.definition, pointer="/definition")


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


@router.post(
    "/count",
    summary="Count the customers a definition selects",
    response_model=CountResponse,
    dependencies=[require("segments:read")],
)
def count_segment(body: CountRequest, segments: Segments) -> CountResponse:
    found = segments.count(_definition(body), as_of=body.as_of)
    return CountResponse(count=found.count, ms=found.ms, as_of=found.as_of)


@router.post(
    "",
    summary="Save a segment (a new one, or the next version)",
    status_code=201,
    response_model=SegmentVersion,
    dependencies=[require("segments:write")],
)
def save_segment(body: SaveRequest, segments: Segments) -> Response:
    saved = segments.save(body.name, _definition(body), segment_id=body.segment_id, description=body.description)
    return _json(saved, status=201)


@router.get(
    "",
    summary="Saved segments, newest version of each",
    response_model=list[SegmentVersion],
    dependencies=[require("segments:read")],
)
def list_segments(segments: Segments) -> Response:
    return _json(segments.list())


@router.get(
    "/{segment_id}", summary="One saved segment", response_model=SegmentVersion, dependencies=[require("segments:read")]
)
def get_segment(segment_id: str, segments: Segments, version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    return _json(segments.get(segment_id, version))


@router.post(
    "/{segment_id}/materialise",
    summary="Snapshot the members now (固化客群)",
    response_model=Snapshot,
    dependencies=[require("segments:write")],
)
def materialise_segment(segment_id: str, segments: Segments, body: MaterialiseRequest | None = None) -> Response:
    return _json(segments.materialise(segment_id, as_of=body.as_of if body else None))


@router.get(
    "/{segment_id}/export",
    summary="The newest snapshot's cust_nos as CSV or Parquet, within your data scope, watermarked",
    description="Needs an approved `segment.export` request for `segment:{segment_id}` (maker-checker), "
    "passed as `approval`; each approval exports once.",
)
def export_segment(
    segment_id: str,
    segments: Segments,
    user: Annotated[Principal, require("segments:export")],
    request: Request,
    format: Annotated[Literal["csv", "parquet"], Query()] = "csv",
    approval: Annotated[str | None, Query(description="An approved segment.export request of yours")] = None,
) -> FileResponse:
    target = f"segment:{segment_id}"
    segments.get(segment_id)  # an unknown segment is a 404 before the approval is spent
    container(request).access.approvals.use(approval, action="segment.export", target=target, user=user)
    folder = Path(tempfile.mkdtemp(prefix="marketloop-export-"))
    path = folder / f"{segment_id}.{format}"
    try:
        segments.export(segment_id, path, format, audit=container(request).audit, user=user.actor, scope=user.scope)
    except BaseException:
        _remove(folder)
        raise
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return FileResponse(path, media_type=media, filename=path.name, background=BackgroundTask(_remove, folder))


def _remove(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
