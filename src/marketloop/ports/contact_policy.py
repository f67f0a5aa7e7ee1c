"""Ports of the contact policy (触达策略): the contact history that caps count, and suppression lists.

Every policy decision (allow, defer, suppress) is a `ContactRecord`. Allowed
and deferred records that are still `active` count against frequency caps,
across every campaign and journey. A record is made inactive when the touch
could not be delivered, or when a higher-priority campaign took its place
before its deferred time came.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from marketloop.core.consent import Channel, Purpose


class Outcome(StrEnum):
    ALLOW = "allow"  # send now
    DEFER = "defer"  # send at `effective_at` (quiet hours, rate limit); the slot is reserved
    SUPPRESS = "suppress"  # do not send; `reason` says why


@dataclass(frozen=True, kw_only=True)
class ContactRecord:
    """One decision about one touch, as stored; `id` is None until stored."""

    customer: str
    channel: Channel
    purpose: Purpose
    campaign: str
    priority: int
    outcome: Outcome
    code: str  # stable reason code: allowed, quiet-hours, cap, consent, list, suitability, compliance, preempted …
    reason: str  # readable, with the numbers (e.g. "marketing cap 2 per day reached (2 touches on 2026-01-05)")
    decided_at: datetime
    effective_at: datetime  # when the touch happens (decided_at, or the deferral time)
    idempotency_key: str = ""
    active: bool = True  # counts against caps (allow / defer only)
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class HistoryUpdate:
    """What a decision writes: the new record, and records it takes the place of (preempted)."""

    record: ContactRecord
    revoke: tuple[int, ...] = ()
    revoke_reason: str = ""


class ContactHistory(Protocol):
    """Durable contact history per customer; decisions about one customer are serialised."""

    def decide(
        self, customer: str, since: datetime, decide: Callable[[Sequence[ContactRecord]], HistoryUpdate]
    ) -> ContactRecord:
        """Atomically: read the customer's records with `effective_at >= since`, call `decide` with them
        (oldest first), store its record, deactivate the records it revokes, and return the stored record.

        No other decision about the same customer runs between the read and the
        write, in any thread or process, so caps hold under any interleaving.
        """
        ...

    def decide_many(
        self, items: Sequence[tuple[str, datetime, Callable[[Sequence[ContactRecord]], HistoryUpdate]]]
    ) -> list[ContactRecord]:
        """`decide` for each (customer, since, decide) in order, in one transaction: a later item about
        the same customer sees the records of the earlier ones. Results in the same order."""
        ...

    def deactivate(self, record_id: int, reason: str) -> None:
        """Stop counting a record against caps (the touch was not delivered); keeps the row."""
        ...

    def get(self, record_id: int) -> ContactRecord | None: ...

    def find_many(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], ContactRecord]:
        """`find` for many (customer, idempotency key) pairs at once; pairs with no decision are missing."""
        ...

    def find(self, customer: str, idempotency_key: str) -> ContactRecord | None:
        """The newest record of the customer made for the touch `idempotency_key`, or None."""
        ...

    def history(self, customer: str, *, limit: int = 100) -> list[ContactRecord]:
        """The customer's records, newest first."""
        ...

    def summary(self, campaign: str, since: datetime | None = None) -> Mapping[str, int]:
        """Counts of the campaign's decisions by code (allowed, quiet-hours, cap, …)."""
        ...


@dataclass(frozen=True, kw_only=True)
class ListEntry:
    """A customer on a suppression list (do-not-disturb 免打扰, global holdout 全局对照组, …)."""

    list_name: str
    customer: str
    reason: str
    added_at: datetime
    until: datetime | None = None  # None: until removed


class SuppressionLists(Protocol):
    """Named lists of customers who must not get (some) touches."""

    def add(self, entry: ListEntry) -> None:
        """Put the customer on the list (replaces an earlier entry of the same list and customer)."""
        ...

    def remove(self, list_name: str, customer: str) -> bool:
        """Take the customer off the list; False when they were not on it."""
        ...

    def memberships_many(self, customers: Collection[str], at: datetime) -> dict[str, list[ListEntry]]:
        """`memberships` for many customers at once (those on no list are missing)."""
        ...

    def memberships(self, customer: str, at: datetime) -> Sequence[ListEntry]:
        """The lists the customer is on at `at`."""
        ...

    def entries(self, list_name: str, *, limit: int = 1000) -> list[ListEntry]: ...


class Budgets(Protocol):
    """Campaign (journey) budgets in fen (分): what the allowed touches may cost in all."""

    def reserve(self, campaign: str, amount: int, limit: int) -> bool:
        """Atomically add `amount` to the campaign's spend if the total stays within `limit`; False otherwise.

        Safe across threads and processes: two reservations never both take the last of a budget.
        """
        ...

    def release(self, campaign: str, amount: int) -> None:
        """Give back `amount` (a reserved touch that was suppressed)."""
        ...

    def spent(self, campaign: str) -> int:
        """What the campaign has reserved so far, in fen."""
        ...
