"""Public fakes for channels and contact policy: an in-memory channel that records sends and can be told to
fail, deliver or open; in-memory delivery ledger, contact history, suppression lists and consent store.

Use them in tests (and later the journey engine's tests) instead of mocks::

    channel = InMemoryChannel("push", ChannelKind.PUSH)
    channel.fail_next(retryable=True)          # the next send raises a retryable ChannelError
    outcome = sends.send(request)              # → RETRYING
    channel.receipt(key, DeliveryStatus.OPENED)  # a Receipt to feed ReceiptService.apply
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import orjson

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentRecord, Purpose
from marketloop.ports.channels import (
    ENGAGED,
    STATUS_RANK,
    ChannelError,
    Claim,
    Delivery,
    DeliveryStatus,
    Receipt,
    SendResult,
    Touch,
)
from marketloop.ports.contact_policy import ContactRecord, HistoryUpdate, ListEntry


@dataclass(frozen=True, kw_only=True)
class _Failure:
    retryable: bool
    message: str


class InMemoryChannel:
    """A `Channel` that keeps what it was sent. A key already sent returns its first result (sends once)."""

    def __init__(self, name: str, kind: ChannelKind) -> None:
        self._name = name
        self.kind = kind
        self.sent: list[Touch] = []
        self.calls = 0
        self._results: dict[str, SendResult] = {}
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def fail_next(self, *, retryable: bool = True, times: int = 1, message: str = "provider unavailable") -> None:
        """The next `times` sends raise `ChannelError` (retryable or permanent)."""
        self._failures += [_Failure(retryable=retryable, message=message)] * times

    def send(self, touch: Touch) -> SendResult:
        with self._lock:
            self.calls += 1
            if self._failures:
                failure = self._failures.pop(0)
                raise ChannelError(channel=self._name, message=failure.message, retryable=failure.retryable)
            if touch.idempotency_key in self._results:
                return self._results[touch.idempotency_key]
            result = SendResult(
                idempotency_key=touch.idempotency_key, provider_message_id=f"{self._name}-{next(self._ids)}"
            )
            self._results[touch.idempotency_key] = result
            self.sent.append(touch)
            return result

    def provider_id(self, key: str) -> str:
        return self._results[key].provider_message_id

    def receipt(self, key: str, status: DeliveryStatus, at: datetime | None = None) -> Receipt:
        """The receipt the provider would send for the touch `key` (delivered, opened, clicked, failed …)."""
        return Receipt(provider_message_id=self.provider_id(key), status=status, at=at)

    def callback(self, key: str, status: DeliveryStatus) -> bytes:
        """The callback body `parse_receipts` reads: `[{"id": <provider id>, "status": <status>}]`."""
        return orjson.dumps([{"id": self.provider_id(key), "status": status.value}])

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        try:
            events = orjson.loads(payload)
            return [Receipt(provider_message_id=str(e["id"]), status=DeliveryStatus(e["status"])) for e in events]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ChannelError(channel=self._name, message="expected [{id, status}]", retryable=False) from error


class InMemoryDeliveryLedger:
    """The `DeliveryLedger` port in a dict."""

    def __init__(self, *, stale_after: timedelta = timedelta(minutes=10)) -> None:
        self._rows: dict[str, Delivery] = {}
        self._lock = threading.Lock()
        self._stale_after = stale_after

    def claim(
        self, *, key: str, channel: str, kind: ChannelKind, customer: str, campaign: str, at: datetime
    ) -> Delivery | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                row = Delivery(
                    idempotency_key=key,
                    channel=channel,
                    kind=kind,
                    customer=customer,
                    campaign=campaign,
                    status=DeliveryStatus.PENDING,
                    attempts=1,
                    created_at=at,
                    updated_at=at,
                )
            elif row.status is DeliveryStatus.RETRYING or (
                row.status is DeliveryStatus.PENDING and row.updated_at < at - self._stale_after
            ):
                row = replace(row, status=DeliveryStatus.PENDING, attempts=row.attempts + 1, updated_at=at)
            else:
                return None
            self._rows[key] = row
            return row

    def claim_many(self, claims: Sequence[Claim], at: datetime) -> list[Delivery | None]:
        return [
            self.claim(key=c.key, channel=c.channel, kind=c.kind, customer=c.customer, campaign=c.campaign, at=at)
            for c in claims
        ]

    def complete_many(self, results: Sequence[SendResult], at: datetime) -> None:
        for result in results:
            self.complete(result.idempotency_key, result, at)

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Delivery]:
        return {key: self._read(self._rows[key]) for key in keys if key in self._rows}

    def _read(self, row: Delivery) -> Delivery:
        """A PENDING row's `retry_at` is when its claim lapses, as the SQL ledger answers."""
        if row.status is not DeliveryStatus.PENDING:
            return row
        return replace(row, retry_at=row.updated_at + self._stale_after)

    def _set(self, key: str, **changes: object) -> None:
        with self._lock:
            self._rows[key] = replace(self._rows[key], **changes)  # type: ignore[arg-type]

    def complete(self, key: str, result: SendResult, at: datetime) -> None:
        self._set(key, status=result.status, provider_message_id=result.provider_message_id, parts=result.parts,
                  error="", updated_at=at)  # fmt: skip

    def fail(self, key: str, error: str, status: DeliveryStatus, at: datetime, retry_at: datetime | None) -> None:
        self._set(key, status=status, error=error, updated_at=at, retry_at=retry_at)

    def get(self, key: str) -> Delivery | None:
        row = self._rows.get(key)
        return self._read(row) if row is not None else None

    def by_provider_id(self, channel: str, provider_message_id: str) -> Delivery | None:
        return next(
            (r for r in self._rows.values() if r.channel == channel and r.provider_message_id == provider_message_id),
            None,
        )

    def advance(self, key: str, status: DeliveryStatus, at: datetime) -> bool:
        with self._lock:
            row = self._rows.get(key)
            if row is None or STATUS_RANK[row.status] >= STATUS_RANK[status]:
                return False
            self._rows[key] = replace(row, status=status, updated_at=at)
            return True

    def engagement(self, customer: str) -> Mapping[ChannelKind, tuple[int, int]]:
        out: dict[ChannelKind, tuple[int, int]] = {}
        for row in self._rows.values():
            sent = STATUS_RANK[row.status] >= STATUS_RANK[DeliveryStatus.ACCEPTED]
            if row.customer != customer or not sent or row.status in (DeliveryStatus.FAILED, DeliveryStatus.DEAD):
                continue
            total, engaged = out.get(row.kind, (0, 0))
            out[row.kind] = (total + 1, engaged + (row.status in ENGAGED))
        return out

    def list(self, *, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        rows = [self._read(r) for r in self._rows.values() if status is None or r.status is status]
        return sorted(rows, key=lambda r: r.updated_at, reverse=True)[:limit]


class InMemoryContactHistory:
    """The `ContactHistory` port in a list, decisions serialised by one lock."""

    def __init__(self) -> None:
        self.records: list[ContactRecord] = []
        self._lock = threading.Lock()

    def decide(
        self, customer: str, since: datetime, decide: Callable[[Sequence[ContactRecord]], HistoryUpdate]
    ) -> ContactRecord:
        with self._lock:
            past = sorted(
                (r for r in self.records if r.customer == customer and r.effective_at >= since),
                key=lambda r: (r.effective_at, r.id or 0),
            )
            update = decide(past)
            record = replace(update.record, id=len(self.records) + 1)
            self.records.append(record)
            for record_id in update.revoke:
                old = self.records[record_id - 1]
                self.records[record_id - 1] = replace(old, active=False, reason=f"{old.reason}; {update.revoke_reason}")
            return record

    def decide_many(
        self, items: Sequence[tuple[str, datetime, Callable[[Sequence[ContactRecord]], HistoryUpdate]]]
    ) -> list[ContactRecord]:
        return [self.decide(customer, since, decide) for customer, since, decide in items]

    def deactivate(self, record_id: int, reason: str) -> None:
        with self._lock:
            old = self.records[record_id - 1]
            self.records[record_id - 1] = replace(old, active=False, reason=f"{old.reason}; {reason}")

    def get(self, record_id: int) -> ContactRecord | None:
        return self.records[record_id - 1] if 0 < record_id <= len(self.records) else None

    def find_many(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], ContactRecord]:
        wanted = set(pairs)
        return {(r.customer, r.idempotency_key): r for r in self.records if (r.customer, r.idempotency_key) in wanted}

    def find(self, customer: str, idempotency_key: str) -> ContactRecord | None:
        found = [r for r in self.records if r.customer == customer and r.idempotency_key == idempotency_key]
        return found[-1] if found else None

    def history(self, customer: str, *, limit: int = 100) -> list[ContactRecord]:
        return [r for r in reversed(self.records) if r.customer == customer][:limit]

    def summary(self, campaign: str, since: datetime | None = None) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            if r.campaign == campaign and (since is None or r.decided_at >= since):
                counts[r.code] = counts.get(r.code, 0) + 1
        return counts


class InMemorySuppressionLists:
    """The `SuppressionLists` port in a dict."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], ListEntry] = {}

    def add(self, entry: ListEntry) -> None:
        self._entries[(entry.list_name, entry.customer)] = entry

    def remove(self, list_name: str, customer: str) -> bool:
        return self._entries.pop((list_name, customer), None) is not None

    def memberships_many(self, customers: Collection[str], at: datetime) -> dict[str, list[ListEntry]]:
        wanted = set(customers)
        found: dict[str, list[ListEntry]] = {}
        for customer in sorted({e.customer for e in self._entries.values()} & wanted):
            entries = list(self.memberships(customer, at))
            if entries:
                found[customer] = entries
        return found

    def memberships(self, customer: str, at: datetime) -> Sequence[ListEntry]:
        return sorted(
            (
                e
                for e in self._entries.values()
                if e.customer == customer and e.added_at <= at and (e.until is None or e.until > at)
            ),
            key=lambda e: e.list_name,
        )

    def entries(self, list_name: str, *, limit: int = 1000) -> list[ListEntry]:
        return sorted((e for e in self._entries.values() if e.list_name == list_name), key=lambda e: e.customer)[:limit]


class InMemoryConsentStore:
    """The `ConsentStore` port in a list (for `marketloop.policy.consent.ConsentService` in tests)."""

    def __init__(self) -> None:
        self._records: list[ConsentRecord] = []

    def add(self, record: ConsentRecord) -> ConsentRecord:
        stored = replace(record, id=len(self._records) + 1)
        self._records.append(stored)
        return stored

    def latest_many(
        self, keys: Collection[tuple[str, ChannelKind, Purpose]], at: datetime
    ) -> dict[tuple[str, ChannelKind, Purpose], ConsentRecord]:
        found = {key: self.latest(*key, at) for key in set(keys)}
        return {key: record for key, record in found.items() if record is not None}

    def latest(self, customer: str, channel: ChannelKind, purpose: Purpose, at: datetime) -> ConsentRecord | None:
        found = [
            r
            for r in self._records
            if r.customer == customer and r.channel == channel and r.purpose == purpose and r.at <= at
        ]
        return max(found, key=lambda r: (r.at, r.id or 0), default=None)

    def history(self, customer: str) -> list[ConsentRecord]:
        return sorted((r for r in self._records if r.customer == customer), key=lambda r: (r.at, r.id or 0))


class InMemoryBudgets:
    """The `Budgets` port in a dict."""

    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._lock = threading.Lock()

    def reserve(self, campaign: str, amount: int, limit: int) -> bool:
        with self._lock:
            total = self._spent.get(campaign, 0) + amount
            if total > limit:
                return False
            self._spent[campaign] = total
            return True

    def release(self, campaign: str, amount: int) -> None:
        with self._lock:
            self._spent[campaign] = self._spent.get(campaign, 0) - amount

    def spent(self, campaign: str) -> int:
        return self._spent.get(campaign, 0)
