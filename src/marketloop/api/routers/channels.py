"""The channel API (触达渠道): configured channels, test sends, provider receipts, the in-app inbox the app
fetches, RM tasks, and the contact policy's explanation of a decision.

Permissions: listing channels and explaining a decision `journeys:read`; test
sends and provider callbacks `journeys:write` (a gateway posts receipts with
a service account's API token); the inbox, a customer's contact history and
RM tasks `customers:read`, inside the caller's data scope (another branch's
customer is 404; an RM sees only their own tasks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import ScopedCustNo, access_of, require
from marketloop.api.deps import container
from marketloop.app.channels import Channels
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.channels.receipts import AppliedReceipt, ReceiptReport, receipt_event
from marketloop.journeys.channels.sending import SendOutcome
from marketloop.journeys.policy.service import Content, PolicyQuery
from marketloop.ports.channels import ChannelError, DeliveryStatus
from marketloop.ports.inbox import InboxMessage, RmTask, TaskStatus


def channels_of(request: Request) -> Channels:
    return container(request).channels


Wired = Annotated[Channels, Depends(channels_of)]
router = APIRouter(prefix="/v1", tags=["channels"])


class ChannelInfo(msgspec.Struct):
    name: str
    kind: str
    description: str
    rate_per_second: float
    settings: dict[str, object]


class TestSend(BaseModel):
    to: str = Field(min_length=1, max_length=200, description="A staff address: phone, token, openid, e-mail, URL …")
    text: str = Field(min_length=1, max_length=2000)
    title: str = Field(default="", max_length=200)


class CheckRequest(BaseModel):
    customer: str = Field(min_length=1, max_length=100)
    channel: ChannelKind
    purpose: Purpose = Purpose.MARKETING
    campaign: str = Field(default="", max_length=200)
    priority: int = Field(default=0, ge=-1000, le=1000)
    timezone: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, max_length=4000, description="The final text, for content compliance.")
    product_type: str | None = None
    product_risk: str | None = None
    customer_tolerance: str | None = None


class CloseTask(BaseModel):
    outcome: str = Field(min_length=1, max_length=500)


def _in_scope(request: Request, user: Principal, customer: str, relationship_manager: str | None) -> None:
    """404, as for an unknown one, when the customer (or an RM's task) is outside the caller's data scope."""
    if user.scope.everything:
        return
    mine = user.scope.rm_id is None or relationship_manager in (None, user.scope.rm_id)
    if not mine or not access_of(request).customer_in_scope(user.scope, customer):
        raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="customer.not-found", title="No such customer")


async def _publish(request: Request, receipts: Sequence[AppliedReceipt]) -> None:
    """Receipts become events (touch_delivered, touch_opened, …) so journeys' waits and branches react to them."""
    collect = container(request).collect
    await collect.append_internal([receipt_event(r, collect.now()) for r in receipts])


def _json(value: object) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


@router.get("/channels", summary="Configured channels (secrets masked)", dependencies=[require("journeys:read")])
def list_channels(channels: Wired) -> Response:
    return _json(
        [
            ChannelInfo(
                name=c.name,
                kind=c.kind.value,
                description=c.description,
                rate_per_second=c.rate_per_second,
                settings=dict(c.settings),
            )
            for c in channels.registry
        ]
    )


@router.post(
    "/channels/{name}/test",
    summary="A test send to a staff address (测试发送); content compliance applies",
    response_model=SendOutcome,
    dependencies=[require("journeys:write")],
)
def send_test(name: str, body: TestSend, channels: Wired) -> Response:
    return _json(channels.sends.test_send(name, body.to, body.text, title=body.title))


@router.post(
    "/channels/{name}/receipts",
    summary="A provider's status callback (回执): delivered, opened, clicked, failed, unsubscribed",
    response_model=ReceiptReport,
    dependencies=[require("journeys:write")],
)
async def receipts(name: str, request: Request, channels: Wired) -> Response:
    payload = await request.body()
    try:
        report = await run_in_threadpool(channels.receipts.apply_callback, name, payload)
    except ChannelError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="channels.bad-receipt",
            title="Not a receipt of this channel",
            detail=str(error),
        ) from error
    await _publish(request, report.receipts)
    counts = ("received", "applied", "unknown", "stale", "unsubscribed")
    return _json({name: getattr(report, name) for name in counts})


@router.get(
    "/inbox/{cust_no}",
    summary="The customer's in-app messages (站内信), newest first",
    response_model=list[InboxMessage],
    dependencies=[require("customers:read")],
)
def inbox(
    cust_no: ScopedCustNo,
    channels: Wired,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    return _json(channels.inbox.messages(cust_no, unread_only=unread, limit=limit))


@router.post(
    "/inbox/{cust_no}/{message_id}/read",
    summary="Mark a message read (its opened receipt)",
    response_model=InboxMessage,
    dependencies=[require("customers:read")],
)
async def read_message(cust_no: ScopedCustNo, message_id: str, request: Request, channels: Wired) -> Response:
    opened = await run_in_threadpool(channels.inbox.read, cust_no, message_id)
    await _publish(request, opened.receipts)
    return _json(opened.message)


@router.get(
    "/customers/{cust_no}/contacts",
    summary="The customer's contact history: every policy decision with its reason",
    dependencies=[require("customers:read")],
)
def contact_history(
    cust_no: ScopedCustNo, channels: Wired, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    return _json(channels.policy.history(cust_no, limit=limit))


@router.get("/rm-tasks", summary="RM tasks (客户经理任务); an RM sees their own", response_model=list[RmTask])
def rm_tasks(
    request: Request,
    channels: Wired,
    user: Annotated[Principal, require("customers:read")],
    relationship_manager: Annotated[str | None, Query(max_length=100)] = None,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    manager = user.scope.rm_id or relationship_manager
    tasks = channels.rm_tasks.tasks(relationship_manager=manager, status=status, limit=limit)
    if not user.scope.everything:
        access = access_of(request)
        tasks = [t for t in tasks if access.customer_in_scope(user.scope, t.customer)]
    return _json(tasks)


@router.post("/rm-tasks/{task_id}/close", summary="Close an RM task with its outcome", response_model=RmTask)
async def close_rm_task(
    task_id: str,
    body: CloseTask,
    request: Request,
    channels: Wired,
    user: Annotated[Principal, require("customers:read")],
) -> Response:
    task = await run_in_threadpool(channels.rm_tasks.task, task_id)
    await run_in_threadpool(_in_scope, request, user, task.customer, task.relationship_manager)
    closed = await run_in_threadpool(channels.rm_tasks.close, task_id, body.outcome)
    await _publish(request, closed.receipts)
    return _json(closed.task)


@router.post("/policy/check", summary="Explain the contact policy's decision now (nothing is recorded)")
def check_policy(
    body: CheckRequest, request: Request, channels: Wired, user: Annotated[Principal, require("journeys:read")]
) -> Response:
    _in_scope(request, user, body.customer.strip(), None)
    content = None
    if body.text is not None:
        content = Content(
            text=body.text,
            product_type=body.product_type,
            product_risk=body.product_risk,
            customer_tolerance=body.customer_tolerance,
        )
    query = PolicyQuery(
        customer=body.customer,
        channel=body.channel,
        purpose=body.purpose,
        campaign=body.campaign,
        priority=body.priority,
        timezone=body.timezone,
        content=content,
    )
    explanation = channels.policy.explain(query)
    return _json({"decision": explanation.decision, "checks": explanation.checks})


@router.get(
    "/policy/summary",
    summary="A campaign's (journey's) decisions by reason: allowed, quiet-hours, cap, consent, lists, …",
    dependencies=[require("journeys:read")],
)
def policy_summary(channels: Wired, campaign: Annotated[str, Query(min_length=1, max_length=200)]) -> Response:
    return _json({"campaign": campaign, "decisions": dict(channels.policy.summary(campaign))})


@router.get(
    "/channels/deliveries",
    summary="The delivery ledger, newest first; status=dead is the dead-letter list (死信)",
    dependencies=[require("journeys:read")],
)
def deliveries(
    channels: Wired,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    return _json(channels.ledger.list(status=status, limit=limit))
