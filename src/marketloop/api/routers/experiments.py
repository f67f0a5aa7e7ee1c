"""The experiment API (实验): register, list, read, results, strategy comparison and the review report (复盘).

Thin: parse, authorise (`experiments:read` / `experiments:write`), call one
`ExperimentService` method, render. Bad input is a problem+json: 400 for an
invalid plan or data, 404 for an unknown experiment, 409 for a taken id.
Reading the results counts as a look at the experiment (the peeking check).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
import polars as pl
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.experiments.output import experiment_document, period_document, results_document
from marketloop.experiments.report import render_html
from marketloop.experiments.service import ExperimentService, ExperimentSpec
from marketloop.experiments.workbook import workbook_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def experiment_service(request: Request) -> ExperimentService:
    return container(request).experiments


Experiments = Annotated[ExperimentService, Depends(experiment_service)]
router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


class ExperimentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    control: str = Field(min_length=1, max_length=64, description="The control / holdout variant.")
    variants: dict[str, float] = Field(description="Variant → planned share (weights), the control included.")
    goal: str = Field(min_length=1, max_length=64, description="Conversion goal counted.")
    window_days: int = Field(default=30, ge=1, le=3650)
    campaign: str = Field(default="", max_length=200)
    kind: Literal["ab", "holdout", "journey-split"] = "ab"
    description: str = ""
    journey_id: str | None = Field(default=None, max_length=64)
    planned_n: int | None = Field(default=None, ge=2)
    mde_rel: float | None = Field(default=None, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, ge=0.5, lt=1)
    experiment_id: str | None = Field(default=None, max_length=64)


MAX_ROWS = 100_000


class Assignment(BaseModel):
    cust_no: str = Field(min_length=1, max_length=64)
    variant: str = Field(min_length=1, max_length=64)
    assigned_at: datetime


class Touch(BaseModel):
    touch_id: str = Field(min_length=1, max_length=128)
    cust_no: str = Field(min_length=1, max_length=64)
    channel: str = Field(min_length=1, max_length=32)
    stage: Literal["suppressed", "sent", "delivered", "opened", "clicked", "failed"]
    touched_at: datetime


class Conversion(BaseModel):
    conversion_id: str = Field(min_length=1, max_length=128)
    cust_no: str = Field(min_length=1, max_length=64)
    goal: str = Field(min_length=1, max_length=64)
    converted_at: datetime
    revenue: float = 0.0
    aum: float = 0.0
    benefit_cost: float = Field(default=0.0, ge=0)


class Assignments(BaseModel):
    rows: list[Assignment] = Field(min_length=1, max_length=MAX_ROWS)


class Touches(BaseModel):
    rows: list[Touch] = Field(min_length=1, max_length=MAX_ROWS)


class Conversions(BaseModel):
    rows: list[Conversion] = Field(min_length=1, max_length=MAX_ROWS)


def _frame(rows: list[Assignment] | list[Touch] | list[Conversion]) -> pl.DataFrame:
    return pl.DataFrame([row.model_dump() for row in rows])


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


@router.post("", summary="Register an experiment", status_code=201, dependencies=[require("experiments:write")])
def create_experiment(body: ExperimentCreate, experiments: Experiments) -> Response:
    created = experiments.create(ExperimentSpec(**body.model_dump()))
    return _json(experiment_document(created), status=201)


@router.get("", summary="Experiments, newest first", dependencies=[require("experiments:read")])
def list_experiments(experiments: Experiments) -> Response:
    return _json([experiment_document(e) for e in experiments.list()])


@router.get("/compare", summary="Strategy comparison by period", dependencies=[require("experiments:read")])
def compare_experiments(experiments: Experiments, ids: Annotated[list[str], Query(min_length=1)]) -> Response:
    return _json([period_document(row) for row in experiments.compare(ids)])


@router.post(
    "/conversions",
    summary="Record conversions (any goal; not tied to one experiment); repeats are ignored",
    dependencies=[require("experiments:write")],
)
def record_conversions(body: Conversions, experiments: Experiments) -> Response:
    return _json({"added": experiments.record_conversions(_frame(body.rows))})


@router.post(
    "/{experiment_id}/assignments",
    summary="Record assignments to variants; a customer's first assignment wins",
    dependencies=[require("experiments:write")],
)
def record_assignments(experiment_id: str, body: Assignments, experiments: Experiments) -> Response:
    return _json({"added": experiments.assign(experiment_id, _frame(body.rows))})


@router.post(
    "/{experiment_id}/touches",
    summary="Record touch stages (sent, delivered, opened, ...); a repeated (touch, stage) is ignored",
    dependencies=[require("experiments:write")],
)
def record_touches(experiment_id: str, body: Touches, experiments: Experiments) -> Response:
    return _json({"added": experiments.record_touches(experiment_id, _frame(body.rows))})


@router.get("/{experiment_id}", summary="One experiment", dependencies=[require("experiments:read")])
def get_experiment(experiment_id: str, experiments: Experiments) -> Response:
    return _json(experiment_document(experiments.get(experiment_id)))


@router.get(
    "/{experiment_id}/results",
    summary="Lift, intervals, p-values, design checks, funnel, ROI and periods (a look)",
    dependencies=[require("experiments:read")],
)
def experiment_results(experiment_id: str, experiments: Experiments, cuped: bool = False) -> Response:
    return _json(results_document(experiments.results(experiment_id, cuped=cuped)))


@router.get(
    "/{experiment_id}/report",
    summary="The review report (复盘): a self-contained HTML page, or the xlsx workbook",
    dependencies=[require("experiments:read")],
)
def experiment_report(
    experiment_id: str,
    experiments: Experiments,
    format: Annotated[Literal["html", "xlsx"], Query()] = "html",
    cuped: bool = False,
    compare: Annotated[list[str] | None, Query(description="Other experiments for the strategy comparison.")] = None,
) -> Response:
    found = experiments.results(experiment_id, cuped=cuped)
    rows = experiments.compare([experiment_id, *compare]) if compare else []
    if format == "xlsx":
        headers = {"Content-Disposition": f'attachment; filename="{experiment_id}.xlsx"'}
        return Response(workbook_bytes(found, rows), media_type=XLSX, headers=headers)
    return Response(render_html(found, rows), media_type="text/html; charset=utf-8")
