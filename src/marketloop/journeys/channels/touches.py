"""From a `SendRequest` to what is checked and sent: the rendered `Touch` and the contact-policy question."""

from __future__ import annotations

from dataclasses import dataclass

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.journeys.channels.content import decorate_sms, render
from marketloop.journeys.channels.sending import SendRequest
from marketloop.journeys.policy.rules import Budget
from marketloop.journeys.policy.service import Content, PolicyQuery
from marketloop.ports.channels import Touch


@dataclass(frozen=True, kw_only=True)
class SmsDress:
    """What every SMS carries: the registered signature and, for marketing, the opt-out."""

    signature: str = ""
    opt_out: str = "拒收请回复R"


def build_touch(request: SendRequest, kind: ChannelKind, sms: SmsDress) -> Touch:
    """The touch as the customer gets it (`MarketloopError` when a content variable has no value)."""
    message = request.message
    body = render(message.text, message.variables, pointer="/message/text")
    title = render(message.title, message.variables, pointer="/message/title")
    if kind is ChannelKind.SMS:
        marketing = request.purpose is Purpose.MARKETING
        body = decorate_sms(body, signature=sms.signature, opt_out=sms.opt_out, marketing=marketing)
    customer = request.customer.strip()
    address = request.addresses.get(kind, "")
    if not address and kind in (ChannelKind.INAPP, ChannelKind.RM):
        address = customer
    return Touch(
        idempotency_key=request.idempotency_key.strip(),
        customer=customer,
        channel=kind,
        purpose=request.purpose,
        address=address,
        body=body,
        title=title,
        template_id=message.template_id,
        variables=dict(message.variables),
        link=message.link,
        campaign=request.campaign,
        journey=request.journey,
        sender=request.sender,
        due_at=request.due_at,
        urgency=request.urgency,
    )


def policy_query(request: SendRequest, touch: Touch, cost_fen: int = 0) -> PolicyQuery:
    """What the contact policy is asked about `touch`: the final text goes to content compliance; with a
    budget, the touch costs `cost_fen`."""
    budget = None if request.budget_fen is None else Budget(limit_fen=request.budget_fen, cost_fen=cost_fen)
    return PolicyQuery(
        budget=budget,
        customer=touch.customer,
        channel=touch.channel,
        purpose=request.purpose,
        campaign=request.campaign,
        priority=request.priority,
        timezone=request.timezone,
        idempotency_key=touch.idempotency_key,
        caps=request.caps,
        content=Content(
            text=touch.body,
            product_type=request.message.product_type,
            product_risk=request.message.product_risk,
            customer_tolerance=request.customer_tolerance,
        ),
    )
