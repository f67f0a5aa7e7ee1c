"""The channel port (触达渠道): send one touch (触达) to one customer, and read the provider's receipts.

A `Touch` is fully rendered before it reaches a channel: the address (phone,
push token, openid, WeCom external user id, e-mail, customer number for the
in-app inbox and RM tasks, URL for a webhook), the text and the template
variables. Policy, consent and compliance have been decided before; a channel
only delivers.

Idempotency: every touch carries an `idempotency_key`. Adapters hand it to the
provider where the protocol has a field for it (the SMS gateway's `msgId`,
the push gateway's `requestId`, WeChat's `client_msg_id`, the e-mail
`Message-ID`, the webhook's `Idempotency-Key` header, the unique key of the
inbox and RM-task rows), and the send service claims it in the
`DeliveryLedger` before calling `send`, so a retried send never reaches the
customer twice. A provider with no such field (WeCom) is asked instead, on a
touch's later attempts (`Touch.attempt` > 1), whether it already has the touch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose


class DeliveryStatus(StrEnum):
    """Where a touch is, as far as the provider told us; later states never go back to earlier ones."""

    PENDING = "pending"  # claimed in the ledger, not yet accepted by the provider
    ACCEPTED = "accepted"  # the provider took it (HTTP 200 / SMTP 250 / row stored)
    DELIVERED = "delivered"  # the device or mailbox has it (回执: 已送达)
    OPENED = "opened"  # read / opened (已读)
    CLICKED = "clicked"  # the link was followed
    FAILED = "failed"  # the provider or the operator gave up (空号, 停机, user blocked, bounce)
    UNSUBSCRIBED = "unsubscribed"  # the customer replied R / TD or pressed unsubscribe
    RETRYING = "retrying"  # a retryable error; the caller sends again with the same key after `retry_at`
    DEAD = "dead"  # retried too often: on the dead-letter list


# Progress order for receipts: a late "delivered" never overwrites "opened".
STATUS_RANK: Mapping[DeliveryStatus, int] = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.RETRYING: 1,
    DeliveryStatus.ACCEPTED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.OPENED: 4,
    DeliveryStatus.CLICKED: 5,
    DeliveryStatus.UNSUBSCRIBED: 6,
    DeliveryStatus.DEAD: 6,
}
ENGAGED = frozenset({DeliveryStatus.OPENED, DeliveryStatus.CLICKED})


@dataclass(frozen=True, kw_only=True)
class Touch:
    """One message to one customer on one channel, ready to deliver."""

    idempotency_key: str
    customer: str  # customer number or OneID
    channel: ChannelKind
    purpose: Purpose
    address: str  # where the channel delivers (phone, token, openid, e-mail, customer, URL)
    body: str  # the final text as the customer sees it (an SMS with its signature 【…】 and opt-out)
    title: str = ""
    template_id: str = ""  # the provider's pre-approved template (SMS, WeChat), when the channel uses one
    variables: Mapping[str, str] = field(default_factory=dict)
    link: str = ""  # where a click goes (push, WeChat, in-app, e-mail)
    campaign: str = ""
    journey: str = ""
    sender: str = ""  # WeCom: the RM's user id; RM task: the RM to assign; e-mail: overrides the From address
    due_at: datetime | None = None  # RM task: when it is due (the workbench sorts by it)
    urgency: str = ""  # RM task: low / normal / high / urgent ("": normal)
    # Which attempt at this key the send is: 1 the first; more after a retryable error or when a claim whose
    # worker died mid-send is taken over, when the provider may already have the touch (accepted, answer lost).
    attempt: int = 1
    first_attempted_at: datetime | None = None  # when the key was first claimed; set from the second attempt on


@dataclass(frozen=True, kw_only=True)
class SendResult:
    """What a channel answers to an accepted touch."""

    idempotency_key: str
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.ACCEPTED
    parts: int = 1  # SMS: how many 70/67-character segments the operator bills


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """A delivery status callback (回执) from a provider, in our terms."""

    provider_message_id: str
    status: DeliveryStatus
    at: datetime | None = None
    detail: str = ""


@dataclass(kw_only=True)
class ChannelError(Exception):
    """A send that did not go through; `retryable` when trying again later may work (timeout, 5xx, 429)."""

    channel: str
    message: str
    retryable: bool
    provider_code: str = ""

    def __str__(self) -> str:
        kind = "retryable" if self.retryable else "permanent"
        code = f" [{self.provider_code}]" if self.provider_code else ""
        return f"{self.channel}: {self.message}{code} ({kind})"


class Channel(Protocol):
    """One configured delivery channel (SMS gateway, push gateway, WeCom, WeChat, SMTP, inbox, RM task, webhook)."""

    @property
    def name(self) -> str:
        """The configured name, e.g. "sms"; unique per installation."""
        ...

    @property
    def kind(self) -> ChannelKind:
        """Which kind of channel this is, for consent, caps and quiet hours."""
        ...

    def send(self, touch: Touch) -> SendResult:
        """Deliver `touch` once to the provider and return its message id.

        Passes `touch.idempotency_key` to the provider where the protocol allows.
        Where it does not, and `touch.attempt` > 1, first looks up whether the
        provider already has the touch (since `touch.first_attempted_at`) and then
        answers that message's id without sending again.
        Raises `ChannelError` (retryable for timeouts, connection errors, 5xx and
        throttling; permanent for a rejected request or address). Never retries itself.
        """
        ...

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        """The receipts in a provider's callback body; `ChannelError` (permanent) when it is not one."""
        ...


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """A row of the delivery ledger: one idempotency key, what became of it."""

    idempotency_key: str
    channel: str
    kind: ChannelKind
    customer: str
    campaign: str
    status: DeliveryStatus
    attempts: int
    provider_message_id: str = ""
    error: str = ""
    parts: int = 0
    created_at: datetime
    updated_at: datetime
    # RETRYING: when to send again. PENDING: when the claim lapses (its worker is presumed dead) and the key may
    # be claimed again; until then a caller finding the key pending comes back at this time.
    retry_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Claim:
    key: str
    channel: str
    kind: ChannelKind
    customer: str
    campaign: str


class DeliveryLedger(Protocol):
    """Durable record of every send attempt, keyed by idempotency key; the guard against sending twice."""

    def claim(
        self, *, key: str, channel: str, kind: ChannelKind, customer: str, campaign: str, at: datetime
    ) -> Delivery | None:
        """Atomically take `key` for a send attempt and return the row with `attempts` incremented.

        Returns None (and changes nothing) when the key is already ACCEPTED or
        later, FAILED, DEAD, or PENDING (another worker is sending it). Keys
        RETRYING may be claimed again, and so may a PENDING claim older than the
        ledger's stale time (its worker died mid-send; the provider's own
        idempotency field guards that case). Safe across threads and processes.
        """
        ...

    def claim_many(self, claims: Sequence[Claim], at: datetime) -> list[Delivery | None]:
        """`claim` for each of `claims` (distinct keys), in one transaction; results in the same order."""
        ...

    def complete_many(self, results: Sequence[SendResult], at: datetime) -> None:
        """`complete` for each result, in one transaction."""
        ...

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Delivery]:
        """The ledger rows of those of `keys` that have one."""
        ...

    def complete(self, key: str, result: SendResult, at: datetime) -> None:
        """Record the provider's acceptance of the claimed `key`."""
        ...

    def fail(self, key: str, error: str, status: DeliveryStatus, at: datetime, retry_at: datetime | None) -> None:
        """Record a failed attempt: RETRYING (with `retry_at`), FAILED or DEAD."""
        ...

    def get(self, key: str) -> Delivery | None:
        """The ledger row of `key`, or None."""
        ...

    def by_provider_id(self, channel: str, provider_message_id: str) -> Delivery | None:
        """The row a receipt refers to."""
        ...

    def advance(self, key: str, status: DeliveryStatus, at: datetime) -> bool:
        """Move the row to `status` when that is progress (`STATUS_RANK`); False when it was not."""
        ...

    def engagement(self, customer: str) -> Mapping[ChannelKind, tuple[int, int]]:
        """Per channel kind: (touches accepted or later, touches opened or clicked) for the customer."""
        ...

    def list(self, *, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        """Rows, newest first, optionally of one status (e.g. DEAD: the dead-letter list)."""
        ...
