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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.journeys.channels.content import decorate_sms
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
from marketloop.journeys.channels.touches import SmsDress, build_touch, policy_query
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.channels import (
    ChannelError,
    Claim,
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
        costs_fen: Mapping[ChannelKind, int] | None = None,
    ) -> None:
        self.channels = channels
        self._ledger = ledger
        self._policy = policy
        self._clock = clock
        self._limiter = limiter or RateLimiter(clock, {})
        self._retry = retry
        self._sms = sms
        self._audit = audit
        self._costs = dict(costs_fen or {})

    def send(self, request: SendRequest) -> SendOutcome:
        """Decide and deliver one touch; see the module docstring."""
        check_request(request)
        known = self._ledger.get(request.idempotency_key.strip())
        if known is not None and not _claimable(known, self._clock.now()):
            return self._known(known)
        configured = self._resolve(request, known)
        touch = build_touch(request, configured.kind, self._sms)
        decision = self._decision(request, configured, touch)
        return self._early(configured, touch, decision) or self._deliver(configured, touch, decision)

    def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        """Many touches with one transaction each for the decisions, the claims and the results (the batch
        path of the journey engine). A touch with a ledger row or an earlier decision (a retry, a deferred
        touch now due) takes the one-by-one path. Outcomes in the order of `requests`."""
        for request in requests:
            check_request(request)
        keys = [r.idempotency_key.strip() for r in requests]
        if len(set(keys)) != len(keys):
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="send.duplicate-keys", title="The same idempotency key twice in a batch"
            )
        known = self._ledger.get_many(keys)
        decided = self._policy.decisions_for([(r.customer, k) for r, k in zip(requests, keys, strict=True)])
        outcomes: dict[int, SendOutcome] = {}
        fresh: list[tuple[int, SendRequest, ConfiguredChannel, Touch]] = []
        for index, request in enumerate(requests):
            if keys[index] in known or (request.customer.strip(), keys[index]) in decided:
                outcomes[index] = self.send(request)
                continue
            configured = self._resolve(request)
            fresh.append((index, request, configured, build_touch(request, configured.kind, self._sms)))
        decisions = self._policy.check_many(
            [policy_query(request, touch, self._costs.get(touch.channel, 0)) for _, request, _, touch in fresh]
        )
        due = []
        for (index, _, configured, touch), decision in zip(fresh, decisions, strict=True):
            early = self._early(configured, touch, decision)
            if early is not None:
                outcomes[index] = early
            else:
                due.append((index, configured, touch, decision))
        outcomes |= self._deliver_many(due)
        return [outcomes[i] for i in range(len(requests))]

    def _early(self, configured: ConfiguredChannel, touch: Touch, decision: ContactRecord) -> SendOutcome | None:
        """The outcome when the touch is not to be sent now (suppressed, deferred, no address, throttled)."""
        now = self._clock.now()
        if decision.outcome is Outcome.SUPPRESS or not decision.active:
            return _outcome(touch, configured.name, SendStatus.SUPPRESSED, decision)
        if decision.effective_at > now:
            return _outcome(touch, configured.name, SendStatus.DEFERRED, decision, retry_at=decision.effective_at)
        if not touch.address:
            reason = f"no {configured.kind} address for the customer"
            return self._give_up(touch, configured.name, decision, "no-address", reason)
        wait = self._limiter.acquire(configured.name)
        if wait > 0:
            return _outcome(
                touch, configured.name, SendStatus.THROTTLED, decision, retry_at=_after(now, wait), code="rate-limit"
            )
        return None

    def _deliver_many(self, due: list[tuple[int, ConfiguredChannel, Touch, ContactRecord]]) -> dict[int, SendOutcome]:
        claims = [
            Claim(key=t.idempotency_key, channel=c.name, kind=c.kind, customer=t.customer, campaign=t.campaign)
            for _, c, t, _ in due
        ]
        claimed_rows = self._ledger.claim_many(claims, self._clock.now())
        outcomes: dict[int, SendOutcome] = {}
        results = []
        for (index, configured, touch, decision), claimed in zip(due, claimed_rows, strict=True):
            if claimed is None:
                outcomes[index] = _outcome(touch, configured.name, SendStatus.DUPLICATE, decision)
                continue
            try:
                result = configured.channel.send(_attempt(touch, claimed))
            except ChannelError as error:
                outcomes[index] = self._failed(touch, decision, claimed, error)
                continue
            results.append(result)
            outcomes[index] = _sent(touch, configured.name, decision, result.provider_message_id, claimed.attempts)
        self._ledger.complete_many(results, self._clock.now())
        return outcomes

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
        outcome = self._early(configured, touch, decision) or self._deliver(configured, touch, decision)
        if self._audit is not None:
            details = {"channel": channel, "status": outcome.status.value, "key": key}
            self._audit.record("channel.test_send", f"channel:{channel}", details=details)
        return outcome

    def _resolve(self, request: SendRequest, known: Delivery | None = None) -> ConfiguredChannel:
        """The channel to use; for "best", the one chosen the first time this key was sent or decided."""
        if request.channel != BEST:
            return self.channels.get(request.channel)
        if known is not None:
            return self.channels.get(known.channel)
        candidates = [(name, self.channels.get(name).kind) for name in request.candidates]
        earlier = self._policy.decision_for(request.customer, request.idempotency_key.strip())
        chosen = [(name, kind) for name, kind in candidates if earlier is not None and kind is earlier.channel]
        return self.channels.get(chosen[0][0] if chosen else best_channel(self._engagement(request), candidates))

    def _engagement(self, request: SendRequest) -> Mapping[ChannelKind, tuple[int, int]]:
        return self._ledger.engagement(request.customer.strip())

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

    def _decision(self, request: SendRequest, configured: ConfiguredChannel, touch: Touch) -> ContactRecord:
        query = policy_query(request, touch, self._costs.get(touch.channel, 0))
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
        now = self._clock.now()
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
            result = configured.channel.send(_attempt(touch, claimed))
        except ChannelError as error:
            return self._failed(touch, decision, claimed, error)
        self._ledger.complete(touch.idempotency_key, result, self._clock.now())
        return _sent(touch, configured.name, decision, result.provider_message_id, claimed.attempts)

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


def _attempt(touch: Touch, claimed: Delivery) -> Touch:
    """The touch as this attempt sends it: from the second attempt on, the provider may already have it."""
    if claimed.attempts <= 1:
        return touch
    return replace(touch, attempt=claimed.attempts, first_attempted_at=claimed.created_at)


def _claimable(known: Delivery, now: datetime) -> bool:
    """A retry that is due, or a pending claim (the ledger decides whether its worker died and it may be taken)."""
    if known.status is DeliveryStatus.RETRYING:
        return known.retry_at is None or known.retry_at <= now
    return known.status is DeliveryStatus.PENDING


def _after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def _sent(touch: Touch, channel: str, decision: ContactRecord, provider_id: str, attempts: int) -> SendOutcome:
    return _outcome(
        touch, channel, SendStatus.SENT, decision, provider_message_id=provider_id, attempts=attempts, code="sent"
    )


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
