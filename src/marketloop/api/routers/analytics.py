"""The analysis API (分析): one query endpoint for every model, its SQL, and the drill-down to customers.

`POST /v1/analytics/query` takes the spec itself as the body; a bad spec is
a 400 problem whose `errors[]` carry the JSON pointer of each offending spot
(`/steps/1/where/0/op`, `/range`, `/segment/and/0/field`). The drill-down
takes `{"spec", "cell", "dropped", "limit", "offset"}`: `cell` is copied
from the result; pointers into the spec there start with `/spec`.
Everything needs `analytics:read`; customer lists and timelines also
`customers:read` (personal fields are always masked here). Every number
counts only the customers of the caller's data scope (branch subtree, RM),
so a drill-down never lists a customer the caller may not see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.analytics.library import AnalysisLibrary
from marketloop.analytics.service import AnalysisResult, AnalyticsService, CustomerPage
from marketloop.api.auth import ScopedCustNo, require
from marketloop.api.deps import container
from marketloop.ports.analytics import SavedAnalysis
from marketloop.profiles.service import MAX_TIMELINE_LIMIT, MAX_TIMELINE_OFFSET, TimelinePage


def analytics_service(request: Request) -> AnalyticsService:
    return container(request).analytics


def analysis_library(request: Request) -> AnalysisLibrary:
    return container(request).analyses


Analytics = Annotated[AnalyticsService, Depends(analytics_service)]
Library = Annotated[AnalysisLibrary, Depends(analysis_library)]
Spec = Annotated[dict[str, Any], Body(description="The analysis spec (see docs/analytics.md).")]
Reader = Annotated[Principal, require("analytics:read")]
CustomerReader = Annotated[Principal, require("customers:read")]
AsOf = Annotated[datetime | None, Query(description="Relative ranges end here [default: now].")]

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], dependencies=[require("analytics:read")])


class DrillRequest(BaseModel):
    spec: dict[str, Any]
    cell: dict[str, Any] = Field(description="The `cell` of the number, as the result gave it.")
    dropped: bool = Field(default=False, description="Funnels: who reached this step but not the next.")
    as_of: datetime | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=100_000)


class SqlResponse(BaseModel):
    sql: str


def _json(value: object) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


@router.post("/query", summary="Run an analysis (events, funnel, retention, paths, …)", response_model=AnalysisResult)
def run_query(spec: Spec, analytics: Analytics, user: Reader, as_of: AsOf = None) -> Response:
    return _json(analytics.query(spec, as_of=as_of, scope=user.scope))


@router.post("/sql", summary="The warehouse SQL of an analysis", response_model=SqlResponse)
def show_sql(spec: Spec, analytics: Analytics, user: Reader, as_of: AsOf = None) -> SqlResponse:
    return SqlResponse(sql=analytics.sql(spec, as_of=as_of, scope=user.scope))


@router.post(
    "/customers",
    summary="The customers behind one number of a result (masked)",
    response_model=CustomerPage,
)
def drill_down(body: DrillRequest, analytics: Analytics, user: CustomerReader) -> Response:
    page = analytics.drill(
        body.spec,
        body.cell,
        as_of=body.as_of,
        dropped=body.dropped,
        limit=body.limit,
        offset=body.offset,
        scope=user.scope,
    )
    return _json(page)


@router.get(
    "/customers/{cust_no}/timeline",
    summary="One customer's timeline, from a drill-down",
    response_model=TimelinePage,
)
def timeline(
    cust_no: ScopedCustNo,
    analytics: Analytics,
    user: CustomerReader,
    limit: Annotated[int, Query(ge=0, le=MAX_TIMELINE_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_TIMELINE_OFFSET)] = 0,
) -> Response:
    return _json(analytics.timeline(cust_no, limit=limit, offset=offset, scope=user.scope))


@router.get("/saved", summary="Saved analyses", response_model=list[SavedAnalysis])
def list_saved(library: Library) -> Response:
    return _json(library.list())


@router.post("/saved/{analysis_id}/query", summary="Run a saved analysis", response_model=AnalysisResult)
def run_saved(analysis_id: str, library: Library, user: Reader, as_of: AsOf = None) -> Response:
    return _json(library.run(analysis_id, as_of=as_of, scope=user.scope))
