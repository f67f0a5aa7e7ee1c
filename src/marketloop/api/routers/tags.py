"""The tag (标签) API: list, get, create versions, refresh, import values, a customer's values, coverage, strata.

Reading needs `tags:read`; creating versions, refreshing and importing
`tags:write`; retiring a tag `tags:delete`. Routes are thin: parse, call
one `TagService` method. A bad rule definition is a 400 problem whose
`errors[]` point at the spot (`/definition/cases/1/when/field`, with line
and column for the text form).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import ScopedCustNo, require
from marketloop.api.deps import container
from marketloop.ports.tags import Snapshots, TagCategory, TagKind, TagStats, TagValue, TagVersion
from marketloop.tags.definitions import TagDraft
from marketloop.tags.service import TagService


def tag_service(request: Request) -> TagService:
    found: TagService = container(request).tags
    return found


Tags = Annotated[TagService, Depends(tag_service)]
READ = [require("tags:read")]
WRITE = [require("tags:write")]

router = APIRouter(prefix="/v1/tags", tags=["tags"])


class CreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=63)
    title: str = Field(min_length=1, max_length=200)
    kind: TagKind = TagKind.RULE
    category: TagCategory
    description: str = ""
    owner: str = Field(default="marketloop", max_length=200)
    business_line: str = Field(default="retail", max_length=64)
    shared_with: list[str] = Field(default_factory=list, description="Business lines it is shared with (* = all).")
    definition: dict[str, Any] | None = Field(
        default=None, description='Rule tags: {"when": CONDITION} or {"cases": [{"when", "value"}], "else": …}.'
    )
    values: list[str] = Field(default_factory=list, description="The values of a static / model / real-time tag.")
    snapshots: Snapshots = Snapshots.NONE


class RefreshRequest(BaseModel):
    as_of: datetime | None = None
    tags: list[str] | None = Field(default=None, description="Only these tags (recomputed whatever their inputs).")
    full: bool = False


class RefreshResponse(BaseModel):
    run_id: str
    as_of: datetime
    refreshed: list[str]
    skipped: list[str]
    changed: int
    snapshots: dict[str, int]


class ImportRequest(BaseModel):
    values: dict[str, str] = Field(description='cust_no → value ("true" for a yes / no tag).')
    as_of: datetime | None = None


class ImportResponse(BaseModel):
    tag: str
    customers: int
    changed: int
    rejected: list[str]


class StrataResponse(BaseModel):
    tag: str
    snapshot_date: date | None
    counts: dict[str, int]


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


@router.get("", summary="Tags, newest version of each", response_model=list[TagVersion], dependencies=READ)
def list_tags(tags: Tags) -> Response:
    return _json(tags.list())


@router.post("", summary="Create a tag or its next version", status_code=201, response_model=TagVersion,
             dependencies=WRITE)  # fmt: skip
def create_tag(body: CreateRequest, tags: Tags) -> Response:
    draft = TagDraft(**body.model_dump(exclude={"shared_with", "values"}),
                     shared_with=tuple(body.shared_with), values=tuple(body.values))  # fmt: skip
    return _json(tags.create(draft), status=201)


@router.post("/refresh", summary="Refresh rule tags (incremental)", response_model=RefreshResponse, dependencies=WRITE)
def refresh_tags(tags: Tags, body: RefreshRequest | None = None) -> RefreshResponse:
    request = body or RefreshRequest()
    report = tags.refresh(as_of=request.as_of, only=request.tags, full=request.full)
    return RefreshResponse(
        run_id=report.run.run_id,
        as_of=report.run.as_of,
        refreshed=list(report.run.refreshed),
        skipped=list(report.run.skipped),
        changed=sum(s.changed for s in report.stats),
        snapshots=report.snapshots,
    )


@router.get("/customers/{cust_no}", summary="A customer's tag values (now, or as of a time)",
            response_model=list[TagValue], dependencies=READ)  # fmt: skip
def customer_tags(cust_no: ScopedCustNo, tags: Tags, as_of: datetime | None = None) -> Response:
    return _json(tags.values_of(cust_no, as_of=as_of))


@router.get("/{name}", summary="One tag", response_model=TagVersion, dependencies=READ)
def get_tag(name: str, tags: Tags, version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    return _json(tags.get(name, version))


@router.get("/{name}/versions", summary="Every version of a tag", response_model=list[TagVersion], dependencies=READ)
def tag_versions(name: str, tags: Tags) -> Response:
    return _json(tags.versions(name))


@router.get("/{name}/coverage", summary="Coverage and distribution per refresh, newest first",
            response_model=list[TagStats], dependencies=READ)  # fmt: skip
def tag_coverage(name: str, tags: Tags, limit: Annotated[int, Query(ge=1, le=365)] = 30) -> Response:
    return _json([msgspec.to_builtins(s) | {"coverage": s.coverage} for s in tags.coverage(name, limit=limit)])


@router.get("/{name}/strata", summary="A stratification tag's snapshot on or before a date",
            response_model=StrataResponse, dependencies=READ)  # fmt: skip
def tag_strata(name: str, tags: Tags, day: Annotated[date, Query(alias="date")]) -> StrataResponse:
    taken, counts = tags.strata(name, day)
    return StrataResponse(tag=name, snapshot_date=taken, counts=counts)


@router.put("/{name}/values", summary="Replace a static or model tag's values", response_model=ImportResponse,
            dependencies=WRITE)  # fmt: skip
def import_values(name: str, body: ImportRequest, tags: Tags) -> ImportResponse:
    result = tags.import_values(name, body.values, as_of=body.as_of)
    return ImportResponse(
        tag=name, customers=result.change.customers, changed=result.change.changed, rejected=result.rejected
    )


@router.delete(
    "/{name}",
    summary="Retire a tag (versions kept, values removed)",
    description="Needs an approved `tag.delete` request for `tag:{name}` (maker-checker), passed as `approval`.",
    response_model=TagVersion,
)
def retire_tag(
    name: str,
    tags: Tags,
    user: Annotated[Principal, require("tags:delete")],
    request: Request,
    approval: Annotated[str | None, Query(description="An approved tag.delete request of yours")] = None,
) -> Response:
    tags.get(name)  # an unknown tag is a 404 before the approval is spent
    container(request).access.approvals.use(approval, action="tag.delete", target=f"tag:{name}", user=user)
    return _json(tags.retire(name))
