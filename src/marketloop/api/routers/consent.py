"""A customer's marketing consent (营销同意, PIPL) over HTTP: read with `consent:read`, record with `consent:write`.

`GET /v1/customers/{cust_no}/consent` answers the decision for every channel
and purpose now (newest record at or before now, else the configured
default) and, with `history=true`, every record. `POST` appends a grant or a
withdrawal; records are never changed. Both honour the caller's data scope
(`ScopedCustNo`): a customer outside it is a 404. The recording user is the
record's actor and is in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from marketloop.access.principal import Principal
from marketloop.api.auth import ScopedCustNo, require
from marketloop.api.deps import container
from marketloop.core.consent import Channel, ConsentRecord, ConsentStatus, Purpose
from marketloop.policy.consent import ConsentService

router = APIRouter(prefix="/v1/customers", tags=["consent"])


class ConsentIn(BaseModel):
    channel: Channel
    purpose: Purpose
    status: ConsentStatus
    source: str = Field(min_length=1, max_length=100, description="app_settings, counter, sms_reply, call_centre, …")
    at: datetime | None = Field(default=None, description="When the customer gave it [default: now]")


class RecordOut(BaseModel):
    id: int | None
    channel: Channel
    purpose: Purpose
    status: ConsentStatus
    source: str
    at: datetime
    recorded_at: datetime | None
    actor: str


class DecisionOut(BaseModel):
    channel: Channel
    purpose: Purpose
    allowed: bool
    reason: str


class ConsentOut(BaseModel):
    customer: str
    decisions: list[DecisionOut]
    history: list[RecordOut] | None = None


def _consent(request: Request) -> ConsentService:
    return container(request).channels.consent


def _record(record: ConsentRecord) -> RecordOut:
    return RecordOut(
        id=record.id,
        channel=record.channel,
        purpose=record.purpose,
        status=record.status,
        source=record.source,
        at=record.at,
        recorded_at=record.recorded_at,
        actor=record.actor,
    )


@router.get("/{cust_no}/consent", summary="A customer's consent per channel and purpose (now), and its history")
def get_consent(
    cust_no: ScopedCustNo,
    request: Request,
    _user: Annotated[Principal, require("consent:read")],
    history: Annotated[bool, Query(description="Also list every record, oldest first")] = False,
) -> ConsentOut:
    consent = _consent(request)
    decisions = [
        DecisionOut(channel=c.channel, purpose=c.purpose, allowed=c.decision.allowed, reason=c.decision.reason)
        for c in consent.show(cust_no)
    ]
    records = [_record(r) for r in consent.history(cust_no)] if history else None
    return ConsentOut(customer=cust_no, decisions=decisions, history=records)


@router.post(
    "/{cust_no}/consent", summary="Record a grant or withdrawal of consent (never overwritten)", status_code=201
)
def record_consent(
    cust_no: ScopedCustNo, body: ConsentIn, request: Request, user: Annotated[Principal, require("consent:write")]
) -> RecordOut:
    stored = _consent(request).record(
        cust_no, body.channel, body.purpose, body.status, source=body.source, at=body.at, actor=user.actor
    )
    return _record(stored)
