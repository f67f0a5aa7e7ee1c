"""Real-time membership: which saved segments one customer is in now, and which they entered or exited.

The contract the M4 stream processor relies on:

- `Membership` holds saved segments, each resolved once (`CompiledSegment`).
  Build it with `SegmentService.membership()`; rebuild it when a segment is
  saved (a new version) — it never reads the stores itself.
- `update(customer, as_of, previous)` is pure and thread-safe: it answers
  every segment for `customer` (a `CustomerFacts`: profile row, tags,
  holdings, transactions and the recent events) at `as_of`, with exactly the
  meaning of the warehouse SQL (a property test holds them equal).
- `previous` is the set of segment ids the caller last knew the customer to
  be in (kept in the processor's per-customer state), or None when nothing
  is known yet. With None nothing is entered or exited: the first answer
  only sets the state, so a restart or a new customer does not flood
  `segment_entered` events. Ids in `previous` that this `Membership` does
  not hold are ignored (neither kept nor reported exited).
- The facts must reach back `lookback` before `as_of` and hold the kinds in
  `needs`; events after `as_of` are ignored.
- Windows expire without any event ("did login within 30d"): the caller
  also calls `update` when time passes (a timer per customer or a periodic
  sweep); that is when time-driven exits are found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from marketloop.segments.evaluate import CompiledSegment, CustomerFacts

SEGMENT_ENTERED = "segment_entered"
SEGMENT_EXITED = "segment_exited"


@dataclass(frozen=True, kw_only=True)
class MembershipSegment:
    segment_id: str
    version: int
    compiled: CompiledSegment


@dataclass(frozen=True, kw_only=True)
class MembershipChange:
    """One entry or exit, ready to become a `segment_entered` / `segment_exited` event."""

    cust_no: str
    segment_id: str
    version: int
    event: str  # SEGMENT_ENTERED or SEGMENT_EXITED
    at: datetime

    def properties(self) -> dict[str, str | int]:
        """The event's properties."""
        return {"segment_id": self.segment_id, "segment_version": self.version}


@dataclass(frozen=True, kw_only=True)
class MembershipUpdate:
    cust_no: str
    as_of: datetime
    segments: frozenset[str]  # the new state: every held segment the customer is in
    entered: tuple[str, ...]  # sorted
    exited: tuple[str, ...]  # sorted
    changes: tuple[MembershipChange, ...]  # entries then exits, each sorted by segment id


class Membership:
    """Answers a set of saved segments for one customer at a time."""

    def __init__(self, segments: Sequence[MembershipSegment]) -> None:
        ids = [s.segment_id for s in segments]
        if len(set(ids)) != len(ids):
            raise ValueError("each segment may be held once")
        self._segments = {s.segment_id: s for s in sorted(segments, key=lambda s: s.segment_id)}

    @property
    def segment_ids(self) -> frozenset[str]:
        return frozenset(self._segments)

    @property
    def lookback(self) -> timedelta:
        """How far back the customer's events and transactions must reach for exact answers."""
        return max((s.compiled.lookback for s in self._segments.values()), default=timedelta(0))

    @property
    def needs(self) -> frozenset[str]:
        """Which kinds of `CustomerFacts` any held segment reads."""
        return frozenset().union(*(s.compiled.needs for s in self._segments.values()))

    def members_of(self, customer: CustomerFacts, as_of: datetime) -> frozenset[str]:
        """The held segments `customer` is in at `as_of`."""
        return frozenset(i for i, s in self._segments.items() if s.compiled.matches(customer, as_of))

    def update(self, customer: CustomerFacts, as_of: datetime, previous: Iterable[str] | None) -> MembershipUpdate:
        """The customer's segments at `as_of` and what changed against `previous` (see the module contract)."""
        now = self.members_of(customer, as_of)
        if previous is None:
            entered: tuple[str, ...] = ()
            exited: tuple[str, ...] = ()
        else:
            before = frozenset(previous) & self.segment_ids
            entered, exited = tuple(sorted(now - before)), tuple(sorted(before - now))
        changes = tuple(
            MembershipChange(
                cust_no=customer.cust_no,
                segment_id=segment_id,
                version=self._segments[segment_id].version,
                event=event,
                at=as_of,
            )
            for event, ids in ((SEGMENT_ENTERED, entered), (SEGMENT_EXITED, exited))
            for segment_id in ids
        )
        return MembershipUpdate(
            cust_no=customer.cust_no, as_of=as_of, segments=now, entered=entered, exited=exited, changes=changes
        )
