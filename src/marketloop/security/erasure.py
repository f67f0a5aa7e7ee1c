"""Erasure (删除权) and retention (存储期限) of personal data.

Owns which keys of an event's properties, traits and context are personal
(`PERSONAL_KEYS`, matched case-insensitively at any depth), the erasure of
one customer (personal columns cleared, OneID identifiers other than the
customer number deleted, events scrubbed; the rows stay, keyed by the
customer number or OneID, so anonymous aggregates keep adding up), and the
purge of raw events older than the retention window (their counts are kept
per day first). Both are put on the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.personal_data import ErasureCounts, PersonalDataStore, PurgeCounts

PERSONAL_KEYS = frozenset(
    {
        "name", "full_name", "real_name", "first_name", "last_name", "nickname",
        "phone", "mobile", "phone_number", "mobile_phone", "tel", "telephone",
        "email", "mail",
        "id_card", "idcard", "id_number", "id_no", "identity_card", "certificate_no", "passport",
        "address", "home_address", "street", "birthday", "birth_date",
        "bank_card", "card_no", "account_no",
        "ip", "$ip", "ip_address", "latitude", "longitude", "$latitude", "$longitude", "location",
    }
)  # fmt: skip


# Objects whose `name` is a product or technical name, not a person's (Segment and Sensors context).
# `device.name` is not among them: phones are often named after their owner ("张三的iPhone").
TECHNICAL_NAMES = frozenset({"os", "app", "library", "lib", "browser", "campaign", "page", "screen", "network"})


def scrub(document: dict[str, Any], keys: frozenset[str] = PERSONAL_KEYS) -> dict[str, Any]:
    """`document` without personal keys, at any depth (the document itself is not changed)."""
    return _scrub_object(document, keys, names_are_personal=True)


def _scrub_object(document: dict[str, Any], keys: frozenset[str], *, names_are_personal: bool) -> dict[str, Any]:
    return {
        k: _scrub_value(v, keys, names_are_personal=k.lower() not in TECHNICAL_NAMES)
        for k, v in document.items()
        if k.lower() not in keys or (k.lower() == "name" and not names_are_personal)
    }


def _scrub_value(value: Any, keys: frozenset[str], *, names_are_personal: bool) -> Any:
    if isinstance(value, dict):
        return _scrub_object(value, keys, names_are_personal=names_are_personal)
    if isinstance(value, list):
        return [_scrub_value(v, keys, names_are_personal=True) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class ErasureResult:
    cust_no: str
    counts: ErasureCounts
    audit_seq: int | None


@dataclass(frozen=True, kw_only=True)
class PurgeResult:
    before: datetime
    counts: PurgeCounts


class PersonalDataService:
    """Erasure of a customer's personal data and the retention purge of raw events."""

    def __init__(
        self,
        store: PersonalDataStore,
        clock: Clock,
        *,
        audit: AuditRecorder | None = None,
        personal_keys: frozenset[str] = PERSONAL_KEYS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        self._keys = frozenset(k.lower() for k in personal_keys)

    def erase(self, cust_no: str, *, reason: str) -> ErasureResult:
        """Remove the customer's personal data; idempotent (a second run finds nothing more to change)."""
        cust_no = cust_no.strip()
        if not cust_no or not reason.strip():
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="erasure.invalid",
                title="Erasure needs a customer number and a reason",
                detail="e.g. --reason 'customer request 2026-01-05, ticket 1234'",
            )
        counts = self._store.erase_customer(cust_no, lambda document: scrub(document, self._keys))
        seq = None
        if self._audit is not None:
            details = {
                "reason": reason.strip()[:500],
                "customer_rows": counts.customer_rows,
                "identities": counts.identities,
                "events": counts.events,
            }
            seq = self._audit.record("customer.erase", f"customer:{cust_no}", details=details).seq
        return ErasureResult(cust_no=cust_no, counts=counts, audit_seq=seq)

    def purge_events(self, *, older_than_days: int) -> PurgeResult:
        """Delete raw events older than `older_than_days` days (their daily counts are kept)."""
        if older_than_days < 1:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="retention.invalid-window",
                title="The retention window is at least one day",
                detail=f"got {older_than_days}",
            )
        before = self._clock.now() - timedelta(days=older_than_days)
        counts = self._store.purge_events(before)
        if self._audit is not None:
            details = {
                "older_than_days": older_than_days,
                "before": before.isoformat(),
                "events": counts.events,
                "violations": counts.violations,
                "quarantined": counts.quarantined,
            }
            self._audit.record("events.purge", "events", details=details)
        return PurgeResult(before=before, counts=counts)
