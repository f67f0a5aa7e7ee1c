"""The outbox dispatcher (发送队列): queued touches to the channels, settled back to their journeys.

A walk queues a touch (an outbox row) in the same transaction as the
instance that decided it. `dispatch_once` takes due rows, sends them through
the send service in one batch (contact policy, compliance, rate limits, the
idempotent delivery ledger), and settles them in one transaction: a final
outcome (sent, suppressed, failed, dead) is stored on the row and the waiting
instance is due again; a touch to be tried later (quiet hours, a rate limit, a
retryable provider error, a claim another worker holds) stays queued until its
`retry_at`. A crash between sending and settling sends the same keys again:
the ledger answers "sent before" and nothing reaches the customer twice.

Bad input in one touch (a template variable the context lacks) fails that
touch with its reason; the others in the batch are sent.

Rows of the outbox channel `actions.UPDATE` are tag updates, not touches:
they are performed through the `TagWriter` (idempotent: the same value again
changes nothing) and settled the same way, `sent` when done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import msgspec

from marketloop.core.errors import MarketloopError
from marketloop.journeys.actions import UPDATE, perform_update
from marketloop.journeys.channels.sending import SendOutcome, SendRequest, SendStatus
from marketloop.ports.channels import DeliveryStatus
from marketloop.ports.clock import Clock
from marketloop.ports.journeys import AttributeWriter, JourneyStore, OutboxRow, TagWriter

log = logging.getLogger(__name__)

RETRY_LATER = timedelta(minutes=1)
_LATER = frozenset({SendStatus.DEFERRED, SendStatus.THROTTLED, SendStatus.RETRYING, SendStatus.DUPLICATE})
_REACHED = frozenset(
    s.value
    for s in (
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.OPENED,
        DeliveryStatus.CLICKED,
        DeliveryStatus.UNSUBSCRIBED,
    )
)
_request = msgspec.json.Decoder(SendRequest)

SendMany = Callable[[Sequence[SendRequest]], list[SendOutcome]]
SendOne = Callable[[SendRequest], SendOutcome]


def reached(outcome: SendOutcome) -> bool:
    """A DUPLICATE answer for a key the provider took: the touch was sent before."""
    return outcome.status is SendStatus.DUPLICATE and outcome.code in _REACHED


def settles(outcome: SendOutcome) -> bool:
    """Whether the outcome is final for the journey (else the row is sent again at `retry_at`)."""
    return outcome.status not in _LATER or reached(outcome)


class OutboxDispatcher:
    """Sends queued outbox rows in batches and settles them (see the module docstring)."""

    def __init__(
        self,
        store: JourneyStore,
        send_many: SendMany,
        send_one: SendOne,
        clock: Clock,
        *,
        batch: int = 500,
        tags: TagWriter | None = None,
        attributes: AttributeWriter | None = None,
        channels: str = "all",
    ) -> None:
        self.channels = channels  # all, touches (a dispatcher process) or updates (the server, beside one)
        self._store = store
        self._send_many = send_many
        self._send_one = send_one
        self._clock = clock
        self._batch = batch
        self._tags = tags
        self._attributes = attributes

    def dispatch_once(self) -> int:
        """Send one batch of due rows; returns how many rows it took."""
        now = self._clock.now()
        rows = self._store.queued(now, self._batch, channels=self.channels)
        if not rows:
            return 0
        outcomes = self._perform(rows, now)
        done: list[tuple[OutboxRow, bytes]] = []
        later: list[tuple[str, datetime]] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if settles(outcome):
                done.append((row, msgspec.json.encode(replace(outcome, decision=None))))
            else:
                later.append((row.key, outcome.retry_at or now + RETRY_LATER))
        self._store.settle(done, later, self._clock.now())
        return len(rows)

    def _perform(self, rows: list[OutboxRow], now: datetime) -> list[SendOutcome]:
        """Each row's outcome, in order: touches sent in one batch, tag and field updates performed one by one."""
        touches = [row for row in rows if row.channel != UPDATE]
        sent = iter(self._send([_request.decode(row.request) for row in touches]) if touches else [])
        return [
            next(sent) if row.channel != UPDATE else perform_update(self._tags, row.request, now, self._attributes)
            for row in rows
        ]

    def only(self, channels: str) -> OutboxDispatcher:
        """The same dispatcher for part of the outbox ("touches" or "updates")."""
        return OutboxDispatcher(
            self._store,
            self._send_many,
            self._send_one,
            self._clock,
            batch=self._batch,
            tags=self._tags,
            attributes=self._attributes,
            channels=channels,
        )

    def _send(self, requests: list[SendRequest]) -> list[SendOutcome]:
        try:
            return self._send_many(requests)
        except MarketloopError:
            return [self._send_alone(request) for request in requests]  # find the bad one; send the rest

    def _send_alone(self, request: SendRequest) -> SendOutcome:
        try:
            return self._send_one(request)
        except MarketloopError as error:  # bad input (a missing variable): this touch fails, the journey goes on
            log.warning("touch %s refused: %s", request.idempotency_key, error.title)
            return SendOutcome(
                idempotency_key=request.idempotency_key,
                status=SendStatus.FAILED,
                channel=request.channel,
                code=error.code,
                reason=error.title,
            )
