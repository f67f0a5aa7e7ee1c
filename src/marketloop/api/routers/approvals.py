"""Maker-checker approvals (双人复核) over HTTP.

A maker asks (`POST /v1/approvals`, needs the permission of the gated
action, e.g. `segments:export` for `segment.export`); a different user with
`approvals:decide` approves or rejects; the maker then passes the approval's
id to the gated call (e.g. `GET /v1/segments/{id}/export?approval=apr_…`),
which spends it. Makers see their own requests, checkers every request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from marketloop.access.approvals import STATUSES
from marketloop.access.principal import Principal
from marketloop.api.auth import access_of, require, signed_in
from marketloop.ports.access import Approval

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
SignedIn = Annotated[Principal, signed_in()]
Checker = Annotated[Principal, require("approvals:decide")]


class ApprovalIn(BaseModel):
    action: str = Field(max_length=100, description="e.g. segment.export, journey.publish, tag.delete")
    target: str = Field(max_length=400, description="e.g. segment:seg_ab12")
    reason: str = Field(min_length=1, max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict)


class DecisionIn(BaseModel):
    note: str = Field(default="", max_length=2000)


class ApprovalOut(BaseModel):
    id: str
    action: str
    target: str
    details: dict[str, Any]
    reason: str
    requested_by: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    expires_at: datetime
    used_at: datetime | None


def _out(approval: Approval) -> ApprovalOut:
    return ApprovalOut(**{name: getattr(approval, name) for name in ApprovalOut.model_fields})


@router.post("", summary="Ask for an approval (maker)", status_code=201)
def request_approval(body: ApprovalIn, user: SignedIn, request: Request) -> ApprovalOut:
    approvals = access_of(request).approvals
    return _out(approvals.request(body.action, body.target, maker=user, reason=body.reason, details=body.details))


@router.get("", summary="Approval requests, newest first (yours; every one with approvals:decide)")
def list_approvals(
    user: SignedIn,
    request: Request,
    status: Annotated[str | None, Query(description=f"One of {', '.join(STATUSES)}")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ApprovalOut]:
    return [_out(a) for a in access_of(request).approvals.requests(viewer=user, status=status, limit=limit)]


@router.get("/{approval_id}", summary="One approval request")
def get_approval(approval_id: str, user: SignedIn, request: Request) -> ApprovalOut:
    return _out(access_of(request).approvals.get(approval_id, viewer=user))


@router.post("/{approval_id}/approve", summary="Approve someone else's request (checker)")
def approve(approval_id: str, user: Checker, request: Request, body: DecisionIn | None = None) -> ApprovalOut:
    note = body.note if body else ""
    return _out(access_of(request).approvals.decide(approval_id, checker=user, approve=True, note=note))


@router.post("/{approval_id}/reject", summary="Reject someone else's request (checker)")
def reject(approval_id: str, user: Checker, request: Request, body: DecisionIn | None = None) -> ApprovalOut:
    note = body.note if body else ""
    return _out(access_of(request).approvals.decide(approval_id, checker=user, approve=False, note=note))
