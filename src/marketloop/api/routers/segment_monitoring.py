"""Segment monitoring API: fixed segments (固化客群), size history and rules, lookalike expansion.

Reading needs `segments:read`; freezing, monitoring, setting a rule and
expanding (which saves a segment) need `segments:write`. Member lists never
leave through these routes: the lookalike segment is exported like any
other (`GET /v1/segments/{id}/export`, `segments:export`). This router is
included before the segments router, so `/v1/segments/fixed/{name}` is
never read as a segment id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.ports.segment_monitoring import FixedSegment, LookalikeRecord, SizeRule
from marketloop.segments.drift import TransitionMatrix
from marketloop.segments.fixed import FixedReport, FixedSegmentService, MonitorResult
from marketloop.segments.lookalike import LookalikeReport, LookalikeService
from marketloop.segments.sizes import SegmentSizes, SizeHistory


def fixed_service(request: Request) -> FixedSegmentService:
    return container(request).fixed_segments


def size_service(request: Request) -> SegmentSizes:
    return container(request).segment_sizes


def lookalike_service(request: Request) -> LookalikeService:
    return container(request).lookalikes


Fixed = Annotated[FixedSegmentService, Depends(fixed_service)]
Sizes = Annotated[SegmentSizes, Depends(size_service)]
Lookalikes = Annotated[LookalikeService, Depends(lookalike_service)]
READ = [require("segments:read")]
WRITE = [require("segments:write")]

router = APIRouter(prefix="/v1/segments", tags=["segment monitoring"])


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


class FreezeRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/]+$", description="The fixed segment's name.")
    as_of: datetime | None = Field(default=None, description="Evaluate the segment as of this time [default: now].")
    share_threshold: float = Field(default=5.0, description="Alert when a stage's share moves more (points).")
    shrink_threshold: float = Field(default=10.0, description="Alert when members still in the segment fall more (%).")


class MonitorRequest(BaseModel):
    stages: dict[str, Any] | None = Field(
        default=None,
        description='{"segments": [{"name", "definition"}, …]}, {"column": NAME} or {"tag": NAME}; '
        "required on the first run, fixed afterwards.",
    )
    as_of: datetime | None = None
    share_threshold: float | None = None
    shrink_threshold: float | None = None


class SizeRuleRequest(BaseModel):
    drop_pct: float | None = None
    spike_pct: float | None = None
    baseline: int = 1


class LookalikeRequest(BaseModel):
    size: int | None = Field(default=None, description="How many customers to take, best first.")
    min_score: float | None = Field(default=None, description="Take only customers scoring at least this (0..1).")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    as_of: datetime | None = None
    keep_defining_fields: bool = Field(default=False, description="Also learn from the fields the seed tests.")
    exclude: list[str] = Field(default=[], description="Features not to learn from (e.g. one restating the seed).")
    random_state: int = 0


class LookalikeResponse(BaseModel):
    segment_id: str
    name: str
    version: int
    report: LookalikeReport


@router.post(
    "/{segment_id}/freeze",
    summary="Freeze a segment's members now as a fixed segment (固化客群)",
    status_code=201,
    response_model=FixedSegment,
    dependencies=WRITE,
)
def freeze_segment(segment_id: str, body: FreezeRequest, fixed: Fixed) -> Response:
    frozen = fixed.freeze(
        body.name,
        segment_id,
        as_of=body.as_of,
        share_threshold=body.share_threshold,
        shrink_threshold=body.shrink_threshold,
    )
    return _json(frozen, status=201)


@router.get(
    "/{segment_id}/fixed",
    summary="The fixed segments frozen from a segment",
    response_model=list[FixedSegment],
    dependencies=READ,
)
def fixed_of_segment(segment_id: str, fixed: Fixed) -> Response:
    return _json(fixed.list(segment_id))


@router.get(
    "/fixed/{name}",
    summary="A fixed segment: stage counts per snapshot date and drift alerts",
    response_model=FixedReport,
    dependencies=READ,
)
def fixed_report(name: str, fixed: Fixed) -> Response:
    return _json(fixed.report(name))


@router.post(
    "/fixed/{name}/monitor",
    summary="Record every member's stage on a date (the first run fixes the stages)",
    response_model=MonitorResult,
    dependencies=WRITE,
)
def monitor_fixed(name: str, body: MonitorRequest, fixed: Fixed) -> Response:
    result = fixed.monitor(
        name,
        stages=body.stages,
        as_of=body.as_of,
        share_threshold=body.share_threshold,
        shrink_threshold=body.shrink_threshold,
    )
    return _json(result)


@router.get(
    "/fixed/{name}/transitions",
    summary="From-stage × to-stage counts and rates between two snapshot dates",
    response_model=TransitionMatrix,
    dependencies=READ,
)
def fixed_transitions(
    name: str,
    fixed: Fixed,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
) -> Response:
    return _json(fixed.transitions(name, start, end))


@router.get(
    "/{segment_id}/sizes",
    summary="The count of every materialisation, and drop / spike alerts",
    response_model=SizeHistory,
    dependencies=READ,
)
def size_history(segment_id: str, sizes: Sizes, limit: Annotated[int | None, Query(ge=1)] = None) -> Response:
    return _json(sizes.history(segment_id, limit=limit))


@router.put("/{segment_id}/size-rule", summary="Set the size alert rule", response_model=SizeRule, dependencies=WRITE)
def set_size_rule(segment_id: str, body: SizeRuleRequest, sizes: Sizes) -> Response:
    rule = sizes.set_rule(segment_id, drop_pct=body.drop_pct, spike_pct=body.spike_pct, baseline=body.baseline)
    return _json(rule)


@router.post(
    "/{segment_id}/lookalike",
    summary="Expand a seed segment into a new segment of the most similar customers (相似客群)",
    status_code=201,
    response_model=LookalikeResponse,
    dependencies=WRITE,
)
def expand_lookalike(segment_id: str, body: LookalikeRequest, lookalikes: Lookalikes) -> Response:
    result = lookalikes.expand(
        segment_id,
        size=body.size,
        min_score=body.min_score,
        name=body.name,
        as_of=body.as_of,
        keep_defining_fields=body.keep_defining_fields,
        exclude=body.exclude,
        random_state=body.random_state,
    )
    saved = result.segment
    answer = {"segment_id": saved.segment_id, "name": saved.name, "version": saved.version, "report": result.report}
    return _json(answer, status=201)


@router.get(
    "/{segment_id}/lookalike",
    summary="The report of the lookalike expansion that made a segment",
    response_model=LookalikeRecord,
    dependencies=READ,
)
def lookalike_report(segment_id: str, lookalikes: Lookalikes) -> Response:
    return _json(lookalikes.report(segment_id))
