"""The analysis API (分析): one query endpoint for every model, its SQL, and the drill-down to customers.

`POST /v1/analytics/query` takes the spec itself as the body; a bad spec is
a 400 problem whose `errors[]` carry the JSON pointer of each offending spot
(`/steps/1/where/0/op`, `/range`, `/segment/and/0/field`). The drill-down
takes `{"spec", "cell", "dropped", "limit", "offset"}`: `cell` is copied
from the result; pointers into the spec there start with `/spec`.
Everything needs `analytics:read`; customer lists and timelines also
`customers:read` (personal fields are always masked here). Saving, changing
and deleting saved analyses and alert rules (指标预警) also needs
`analytics:write`. Every number
counts only the customers of the caller's data scope (branch subtree, RM),
so a drill-down never lists a customer the caller may not see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.analytics.alerts import AlertService
from marketloop.analytics.library import AnalysisLibrary
from marketloop.analytics.parse import SpecError
from marketloop.analytics.service import AnalysisResult, AnalyticsService, CustomerPage
from marketloop.api.auth import ScopedCustNo, require
from marketloop.api.deps import container
from marketloop.ports.analytics import RuleCheck, SavedAnalysis, StoredRule
from marketloop.profiles.service import MAX_TIMELINE_LIMIT, MAX_TIMELINE_OFFSET, TimelinePage


def analytics_service(request: Request) -> AnalyticsService:
    return container(request).analytics


def analysis_library(request: Request) -> AnalysisLibrary:
    return container(request).analyses


def alert_service(request: Request) -> AlertService:
    return container(request).alerts


Analytics = Annotated[AnalyticsService, Depends(analytics_service)]
Library = Annotated[AnalysisLibrary, Depends(analysis_library)]
Alerts = Annotated[AlertService, Depends(alert_service)]
Rule = Annotated[dict[str, Any], Body(description="The alert rule (see docs/analytics.md).")]
WRITE = [require("analytics:write")]
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


class SaveRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="What analysts call it.")
    spec: dict[str, Any] = Field(description="The analysis spec; a relative range stays relative.")


@contextmanager
def _spec_at(pointer: str) -> Iterator[None]:
    """Pointers of a bad spec that is one member of the body start with that member's pointer."""
    try:
        yield
    except SpecError as error:
        raise SpecError([replace(e, pointer=pointer + e.pointer) for e in error.errors]) from None


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


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


@router.post("/saved", summary="Save an analysis", status_code=201, response_model=SavedAnalysis, dependencies=WRITE)
def save_analysis(body: SaveRequest, library: Library) -> Response:
    with _spec_at("/spec"):
        saved = library.save(body.name, body.spec)
    return _json(saved, status=201)


@router.put("/saved/{analysis_id}", summary="Change a saved analysis", response_model=SavedAnalysis, dependencies=WRITE)
def change_analysis(analysis_id: str, body: SaveRequest, library: Library) -> Response:
    with _spec_at("/spec"):
        changed = library.change(analysis_id, body.name, body.spec)
    return _json(changed)


@router.delete("/saved/{analysis_id}", summary="Delete a saved analysis", status_code=204, dependencies=WRITE)
def delete_analysis(analysis_id: str, library: Library) -> Response:
    library.delete(analysis_id)
    return Response(status_code=204)


@router.get("/alerts", summary="Metric alert rules (指标预警)", response_model=list[StoredRule])
def list_rules(alerts: Alerts) -> Response:
    return _json(alerts.stored())


@router.post("/alerts", summary="Keep an alert rule", status_code=201, response_model=StoredRule, dependencies=WRITE)
def add_rule(rule: Rule, alerts: Alerts) -> Response:
    return _json(alerts.add(rule), status=201)


@router.put("/alerts/{rule_id}", summary="Change an alert rule", response_model=StoredRule, dependencies=WRITE)
def change_rule(
    rule_id: str,
    rule: Rule,
    alerts: Alerts,
    enabled: Annotated[bool | None, Query(description="Pause (false) or resume (true) its daily checks.")] = None,
) -> Response:
    return _json(alerts.change(rule_id, rule, enabled=enabled))


@router.delete("/alerts/{rule_id}", summary="Delete an alert rule and its checks", status_code=204, dependencies=WRITE)
def delete_rule(rule_id: str, alerts: Alerts) -> Response:
    alerts.delete(rule_id)
    return Response(status_code=204)


@router.get(
    "/alerts/{rule_id}/checks", summary="The latest daily checks of an alert rule", response_model=list[RuleCheck]
)
def rule_checks(rule_id: str, alerts: Alerts, limit: Annotated[int, Query(ge=1, le=400)] = 30) -> Response:
    return _json(alerts.history(rule_id, limit=limit))
