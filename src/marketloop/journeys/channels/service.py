"""The send service (触达发送): policy → compliance → channel, exactly once per idempotency key.

`send` is the function the journey engine calls for one touch; it returns a
`SendOutcome` and never raises for what a provider does (only for bad input).
Order: resolve the channel ("best" from the learned preference), render the
text (missing variables are an error), decide with the contact policy
(suppression lists, consent, suitability and content compliance, quiet hours,
caps, priority) and record the decision, take the channel's rate limit,
claim the key in the delivery ledger, send, record the result. A retry with
the same key reuses the first decision; a deferred touch re-checks only lists,
consent and compliance when it is due. A touch that cannot be delivered stops
counting against caps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.journeys.channels.content import decorate_sms, render
from marketloop.journeys.channels.preferences import best_channel
from marketloop.journeys.channels.ratelimit import RateLimiter
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import (
    BEST,
    RetrySchedule,
    SendOutcome,
    SendRequest,
    SendStatus,
    check_request,
)
from marketloop.journeys.policy.service import ContactPolicyService, Content, PolicyQuery
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.channels import (
    ChannelError,
    Delivery,
    DeliveryLedger,
    DeliveryStatus,
    Touch,
)
from marketloop.ports.clock import Clock
from marketloop.ports.contact_policy import ContactRecord, Outcome

SENT_STATES = frozenset({DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED, DeliveryStatus.UNSUBSCRIBED})
_LEDGER_OUTCOME = {
    DeliveryStatus.FAILED: SendStatus.FAILED,
    DeliveryStatus.DEAD: SendStatus.DEAD,
    DeliveryStatus.PENDING: SendStatus.DUPLICATE,
    DeliveryStatus.RETRYING: SendStatus.RETRYING,
}


@dataclass(frozen=True, kw_only=True)
class SmsDress:
    """What every SMS carries: the registered signature and, for marketing, the opt-out."""

    signature: str = ""
    opt_out: str = "拒收请回复R"


DEFAULT_RETRY = RetrySchedule()
DEFAULT_SMS = SmsDress()


class SendService:
    """See the module docstring."""

    def __init__(
        self,
        channels: ChannelRegistry,
        ledger: DeliveryLedger,
        policy: ContactPolicyService,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
        retry: RetrySchedule = DEFAULT_RETRY,
        sms: SmsDress = DEFAULT_SMS,
        audit: AuditRecorder | None = None,
    ) -> None:
        self.channels = channels
        self._ledger = ledger
        self._policy = policy
        self._clock = clock
        self._limiter = limiter or RateLimiter(clock, {})
        self._retry = retry
        self._sms = sms
        self._audit = audit

    def send(self, request: SendRequest) -> SendOutcome:
        """Decide and deliver one touch; see the module docstring."""
        check_request(request)
        configured = self._resolve(request)
        known = self._ledger.get(request.idempotency_key)
        if known is not None and (known.status is not DeliveryStatus.RETRYING or _not_yet(known, self._clock.now())):
            return self._known(known)
        touch = self._touch(request, configured)
        decision = self._decision(request, configured, touch)
        if decision.outcome is Outcome.SUPPRESS or not decision.active:
            return _outcome(
                touch, configured.name, SendStatus.SUPPRESSED, decision, code=decision.code, reason=decision.reason
            )
        if decision.effective_at > self._clock.now():
            return _outcome(touch, configured.name, SendStatus.DEFERRED, decision, retry_at=decision.effective_at)
        return self._deliver(configured, touch, decision)

    def test_send(self, channel: str, address: str, text: str, *, title: str = "") -> SendOutcome:
        """A test message to a staff address (测试发送): content compliance applies, caps and consent do not
        (the address is not a customer's). Audited; `MarketloopError` when the content fails compliance."""
        configured = self.channels.get(channel)
        if not address.strip() or not text.strip():
            raise MarketloopError(kind=ErrorKind.INVALID, code="send.test-input", title="Give an address and a text")
        body = text.strip()
        if configured.kind is ChannelKind.SMS:
            body = decorate_sms(body, signature=self._sms.signature, opt_out=self._sms.opt_out, marketing=True)
        report = self._policy.check_text(body, configured.kind)
        if not report.passed:
            errors = [FieldError(pointer="/text", detail=f.message) for f in report.errors]
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="send.compliance", title="The text fails content compliance", errors=errors
            )
        key = f"test:{uuid.uuid4().hex}"
        touch = Touch(
            idempotency_key=key,
            customer="test",
            channel=configured.kind,
            purpose=Purpose.SERVICE,
            address=address.strip(),
            body=body,
            title=title,
            campaign="test-send",
        )
        decision = _test_decision(touch, self._clock.now())
        outcome = self._deliver(configured, touch, decision)
        if self._audit is not None:
            details = {"channel": channel, "status": outcome.status.value, "key": key}
            self._audit.record("channel.test_send", f"channel:{channel}", details=details)
        return outcome

    def _resolve(self, request: SendRequest) -> ConfiguredChannel:
        if request.channel != BEST:
            return self.channels.get(request.channel)
        candidates = [(name, self.channels.get(name).kind) for name in request.candidates]
        return self.channels.get(best_channel(self._ledger.engagement(request.customer.strip()), candidates))

    def _known(self, known: Delivery) -> SendOutcome:
        status = _LEDGER_OUTCOME.get(known.status, SendStatus.DUPLICATE)
        return SendOutcome(
            idempotency_key=known.idempotency_key,
            status=status,
            channel=known.channel,
            code=known.status.value,
            reason=known.error or f"already {known.status.value}",
            provider_message_id=known.provider_message_id,
            retry_at=known.retry_at,
            attempts=known.attempts,
        )

    def _touch(self, request: SendRequest, configured: ConfiguredChannel) -> Touch:
        message = request.message
        body = render(message.text, message.variables, pointer="/message/text")
        title = render(message.title, message.variables, pointer="/message/title")
        if configured.kind is ChannelKind.SMS:
            marketing = request.purpose is Purpose.MARKETING
            body = decorate_sms(body, signature=self._sms.signature, opt_out=self._sms.opt_out, marketing=marketing)
        customer = request.customer.strip()
        address = request.addresses.get(configured.kind, "")
        if not address and configured.kind in (ChannelKind.INAPP, ChannelKind.RM):
            address = customer
        return Touch(
            idempotency_key=request.idempotency_key.strip(),
            customer=customer,
            channel=configured.kind,
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
        )

    def _decision(self, request: SendRequest, configured: ConfiguredChannel, touch: Touch) -> ContactRecord:
        query = PolicyQuery(
            customer=touch.customer,
            channel=configured.kind,
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
        earlier = self._policy.decision_for(touch.customer, touch.idempotency_key)
        if earlier is None or earlier.channel is not configured.kind:
            return self._policy.check(query)
        if earlier.active and earlier.effective_at <= self._clock.now():
            gates = self._policy.blocking(query)  # consent and lists are checked at send time, again
            if gates.blocked_code and earlier.id is not None:
                self._policy.release(earlier.id, f"at send time: {gates.blocked_reason}")
                return replace(earlier, outcome=Outcome.SUPPRESS, code=gates.blocked_code, reason=gates.blocked_reason)
        return earlier

    def _deliver(self, configured: ConfiguredChannel, touch: Touch, decision: ContactRecord) -> SendOutcome:
        if not touch.address:
            return self._give_up(
                touch, configured.name, decision, "no-address", f"no {configured.kind} address for the customer"
            )
        wait = self._limiter.acquire(configured.name)
        now = self._clock.now()
        if wait > 0:
            return _outcome(
                touch, configured.name, SendStatus.THROTTLED, decision, retry_at=_after(now, wait), code="rate-limit"
            )
        claimed = self._ledger.claim(
            key=touch.idempotency_key,
            channel=configured.name,
            kind=configured.kind,
            customer=touch.customer,
            campaign=touch.campaign,
            at=now,
        )
        if claimed is None:
            found = self._ledger.get(touch.idempotency_key)
            return self._known(found) if found else _outcome(touch, configured.name, SendStatus.DUPLICATE, decision)
        try:
            result = configured.channel.send(touch)
        except ChannelError as error:
            return self._failed(touch, decision, claimed, error)
        self._ledger.complete(touch.idempotency_key, result, self._clock.now())
        return _outcome(
            touch,
            configured.name,
            SendStatus.SENT,
            decision,
            provider_message_id=result.provider_message_id,
            attempts=claimed.attempts,
            code="sent",
        )

    def _failed(self, touch: Touch, decision: ContactRecord, claimed: Delivery, error: ChannelError) -> SendOutcome:
        channel = claimed.channel
        now = self._clock.now()
        if error.retryable and claimed.attempts < self._retry.max_attempts:
            retry_at = now + self._retry.delay(claimed.attempts)
            self._ledger.fail(touch.idempotency_key, str(error), DeliveryStatus.RETRYING, now, retry_at)
            return _outcome(
                touch,
                channel,
                SendStatus.RETRYING,
                decision,
                retry_at=retry_at,
                reason=str(error),
                attempts=claimed.attempts,
            )
        status = DeliveryStatus.DEAD if error.retryable else DeliveryStatus.FAILED
        self._ledger.fail(touch.idempotency_key, str(error), status, now, None)
        if decision.id is not None:
            self._policy.release(decision.id, f"not delivered: {error}")
        send_status = SendStatus.DEAD if error.retryable else SendStatus.FAILED
        return _outcome(
            touch, channel, send_status, decision, reason=str(error), attempts=claimed.attempts, code=status.value
        )

    def _give_up(self, touch: Touch, channel: str, decision: ContactRecord, code: str, reason: str) -> SendOutcome:
        if decision.id is not None:
            self._policy.release(decision.id, reason)
        return _outcome(touch, channel, SendStatus.FAILED, decision, code=code, reason=reason)


def _test_decision(touch: Touch, now: datetime) -> ContactRecord:
    return ContactRecord(
        customer=touch.customer,
        channel=touch.channel,
        purpose=touch.purpose,
        campaign=touch.campaign,
        priority=0,
        outcome=Outcome.ALLOW,
        code="test-send",
        reason="test send to a staff address; caps and consent do not apply",
        decided_at=now,
        effective_at=now,
        idempotency_key=touch.idempotency_key,
    )


def _not_yet(known: Delivery, now: datetime) -> bool:
    return known.retry_at is not None and known.retry_at > now


def _after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def _outcome(
    touch: Touch,
    channel: str,
    status: SendStatus,
    decision: ContactRecord,
    *,
    code: str = "",
    reason: str = "",
    retry_at: datetime | None = None,
    provider_message_id: str = "",
    attempts: int = 0,
) -> SendOutcome:
    return SendOutcome(
        idempotency_key=touch.idempotency_key,
        status=status,
        channel=channel,
        code=code or decision.code,
        reason=reason or decision.reason,
        retry_at=retry_at,
        provider_message_id=provider_message_id,
        decision=decision,
        attempts=attempts,
    )
