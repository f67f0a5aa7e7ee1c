"""What a send asks for and what it answers: `SendRequest`, `SendOutcome`, the retry schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.policy.rules import Cap
from marketloop.ports.contact_policy import ContactRecord

BEST = "best"
MAX_KEY = 160


@dataclass(frozen=True, kw_only=True)
class Message:
    """The content of a touch: `text` with `{name}` placeholders filled from `variables`."""

    text: str
    title: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    link: str = ""
    template_id: str = ""  # the provider's template (SMS gateway, WeChat)
    product_type: str | None = None  # wealth, fund, deposit … for compliance
    product_risk: str | None = None  # R1–R5 for suitability


@dataclass(frozen=True, kw_only=True)
class SendRequest:
    """One touch a journey or campaign wants to make.

    `idempotency_key` names the touch (e.g. `<journey>:<version>:<step>:<customer>`): sending
    the same key again never reaches the customer twice. `channel` is a configured channel
    name, or "best" to pick among `candidates` by the customer's learned preference.
    `addresses` gives the address per channel kind (phone for SMS, token for push, …; the
    inbox and RM tasks use the customer number when none is given).
    """

    idempotency_key: str
    customer: str
    channel: str
    message: Message
    addresses: Mapping[ChannelKind, str] = field(default_factory=dict)
    purpose: Purpose = Purpose.MARKETING
    campaign: str = ""
    journey: str = ""
    priority: int = 0
    customer_tolerance: str | None = None  # C1–C5 from the suitability questionnaire
    timezone: str | None = None
    sender: str = ""  # the RM (WeCom, RM task)
    due_at: datetime | None = None  # an RM task: when it is due
    urgency: str = ""  # an RM task: low / normal / high / urgent ("": normal)
    candidates: tuple[str, ...] = ()  # for channel "best"
    caps: tuple[Cap, ...] = ()  # the journey's own frequency caps, on top of the global ones
    budget_fen: int | None = None  # the campaign's budget in fen; each touch reserves its channel's price


class SendStatus(StrEnum):
    SENT = "sent"  # the provider accepted it
    DUPLICATE = "duplicate"  # this key was sent before: nothing sent now
    DEFERRED = "deferred"  # quiet hours: call again at `retry_at`
    THROTTLED = "throttled"  # channel rate limit: call again at `retry_at`
    RETRYING = "retrying"  # a retryable provider error: call again at `retry_at`
    SUPPRESSED = "suppressed"  # the contact policy said no (`code`, `reason`)
    FAILED = "failed"  # the provider refused for good
    DEAD = "dead"  # retried too often: on the dead-letter list


@dataclass(frozen=True, kw_only=True)
class SendOutcome:
    idempotency_key: str
    status: SendStatus
    channel: str
    code: str = ""
    reason: str = ""
    provider_message_id: str = ""
    retry_at: datetime | None = None
    decision: ContactRecord | None = None
    attempts: int = 0


@dataclass(frozen=True, kw_only=True)
class RetrySchedule:
    """Exponential backoff with a cap; after `max_attempts` attempts the key is dead."""

    max_attempts: int = 5
    first: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        grown: timedelta = self.first * (2 ** min(max(attempts - 1, 0), 30))
        return min(self.cap, grown)


def check_request(request: SendRequest) -> None:
    """Bad input is a clear error before anything is decided or sent."""
    key = request.idempotency_key.strip()
    if not key or len(key) > MAX_KEY or any(c.isspace() for c in key):
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="send.invalid-key",
            title=f"An idempotency key of 1 to {MAX_KEY} characters without spaces is needed",
            detail=repr(request.idempotency_key[:50]),
        )
    if not request.message.text.strip():
        raise MarketloopError(kind=ErrorKind.INVALID, code="send.no-content", title="The message has no text")
    if request.channel == BEST and not request.candidates:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="send.no-candidates", title='Channel "best" needs candidate channels'
        )
