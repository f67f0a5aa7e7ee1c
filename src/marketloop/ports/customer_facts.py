"""The port real-time segment membership reads customers through: one processor batch at a time.

`CustomerLookup.prepare` fetches, for every (customer key, event) of a batch,
what the watched segments read — the customer row with its profile, tags,
holdings, transactions and recent events — in a few queries, never one per
event; `record` then answers per event from memory. The stream processor's
`SegmentMembership` turns a `CustomerRecord` into the segment evaluator's
facts (`marketloop.journeys.membership.LookupFacts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from marketloop.core.events import Event

# What a lookup may be asked for (the segment evaluator's `needs`); attributes always come.
KINDS = frozenset({"attributes", "tags", "holdings", "transactions", "events"})


@dataclass(frozen=True, kw_only=True)
class RecentEvent:
    message_id: str
    event: str | None  # the `event` column: track name, page / screen name, else None
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class HoldingRow:
    product_code: str
    balance: Decimal
    valid_from: date
    valid_to: date | None = None
    maturity_date: date | None = None
    product_type: str | None = None
    risk_level: str | None = None


@dataclass(frozen=True, kw_only=True)
class TransactionRow:
    ts: datetime
    amount: Decimal
    direction: str
    counterparty_type: str | None = None
    channel: str | None = None
    category: str | None = None


@dataclass(frozen=True, kw_only=True)
class CustomerRecord:
    """One customer just after an event: `customers` + `customer_profile` columns, tags, and history."""

    cust_no: str
    attributes: Mapping[str, Any]
    tags: Mapping[str, frozenset[str | None]] = field(default_factory=dict)
    holdings: Sequence[HoldingRow] = ()
    transactions: Sequence[TransactionRow] = ()
    events: Sequence[RecentEvent] = ()


class CustomerLookup(Protocol):
    """Customers as the warehouse (and the not yet loaded tail of the log) knows them."""

    def prepare(self, batch: Sequence[tuple[str, Event]], *, lookback: timedelta, kinds: frozenset[str]) -> None:
        """Fetch what `record` will be asked about the (customer key, event) pairs of one batch, in log order.

        `kinds` (of `KINDS`) says which facts to fetch; events and
        transactions reach back `lookback` before the batch's earliest event.
        """
        ...

    def record(
        self, customer: str, event: Event, *, lookback: timedelta, kinds: frozenset[str]
    ) -> CustomerRecord | None:
        """The customer just after `event` (which is included), or None when the key is no customer.

        `customer` is the stream processor's key (a OneID, else the log's
        partition key). Called in log order after `prepare`; events of the
        batch before this one are included, later ones are not.
        """
        ...
