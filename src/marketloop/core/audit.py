"""The audit log's entries and its hash chain: what an entry is, how it is hashed, how a chain is checked.

Each entry's `hash` is SHA-256 over a canonical encoding of the entry (its
`seq`, time, actor, action, target and details as canonical JSON text)
together with the previous entry's hash, so changing, removing or moving
any stored entry breaks the chain at that spot. The chain's head (the last
`seq` and hash) is kept apart from the entries, so cutting entries off the
end is noticed too.

Pure: no I/O, no clock. Times come in as arguments; the store and the
service live in `marketloop.ports.audit` and `marketloop.security.audit`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

GENESIS = "0" * 64  # the `prev_hash` of the first entry


def canonical_time(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds, e.g. 2026-01-05T09:00:00.000000+00:00: the form that is hashed and stored."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_details(details: Mapping[str, object] | None) -> str:
    """Details as JSON text with sorted keys; values that JSON cannot hold are written as their `str`."""
    return orjson.dumps(
        dict(details or {}), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
    ).decode()


@dataclass(frozen=True, kw_only=True)
class AuditDraft:
    """An entry before the store gives it a place in the chain: `details` is already canonical JSON text."""

    at: str  # canonical_time(...)
    actor: str
    action: str
    target: str
    details: str  # canonical_details(...)


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One stored entry of the chain."""

    seq: int
    at: str
    actor: str
    action: str
    target: str
    details: str
    prev_hash: str
    hash: str

    @property
    def details_dict(self) -> dict[str, Any]:
        value = orjson.loads(self.details)
        return value if isinstance(value, dict) else {"value": value}

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)


@dataclass(frozen=True, kw_only=True)
class AuditHead:
    """Where the chain ends: the last `seq` given out and its hash (seq 0 and GENESIS when empty)."""

    seq: int
    hash: str


def entry_hash(*, seq: int, at: str, actor: str, action: str, target: str, details: str, prev_hash: str) -> str:
    """SHA-256 (hex) of the entry's fields and `prev_hash`, encoded as one JSON array (unambiguous)."""
    encoded = orjson.dumps([seq, at, actor, action, target, details, prev_hash])
    return hashlib.sha256(encoded).hexdigest()


def seal(draft: AuditDraft, *, seq: int, prev_hash: str) -> AuditEntry:
    """The entry `draft` becomes at position `seq` after an entry whose hash is `prev_hash`."""
    fields = {
        "seq": seq,
        "at": draft.at,
        "actor": draft.actor,
        "action": draft.action,
        "target": draft.target,
        "details": draft.details,
        "prev_hash": prev_hash,
    }
    return AuditEntry(**fields, hash=entry_hash(**fields))  # type: ignore[arg-type]


def recomputed_hash(entry: AuditEntry) -> str:
    return entry_hash(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )


class BreakKind(StrEnum):
    """How the chain was broken."""

    EDITED = "edited"  # an entry's content or hash was changed
    DELETED = "deleted"  # entries are missing: a gap in `seq`, or cut off the end
    REORDERED = "reordered"  # an entry links to an entry that is not its predecessor
    INSERTED = "inserted"  # entries past the head: written around the audit log


@dataclass(frozen=True, kw_only=True)
class ChainBreak:
    """The first place the chain does not hold, and what most likely happened there."""

    seq: int
    kind: BreakKind
    detail: str


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """The result of checking the whole chain: ok, or the first break."""

    checked: int
    last_seq: int
    head_seq: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


class ChainChecker:
    """Checks entries fed in `seq` order; stops at the first break.

    `known_hashes` holds the stored hash of every entry in the log (read in
    a first pass), so an entry that links to an entry other than its
    predecessor can be told apart (reordered) from one whose link was edited.
    """

    def __init__(self, known_hashes: frozenset[str] = frozenset()) -> None:
        self._known = known_hashes
        self._expected = 1
        self._prev_hash = GENESIS
        self.checked = 0
        self.first_break: ChainBreak | None = None

    def feed(self, entry: AuditEntry) -> bool:
        """Check one entry; False once the chain is broken (further entries are not needed)."""
        if self.first_break is not None:
            return False
        self.checked += 1
        self.first_break = self._classify(entry)
        self._expected, self._prev_hash = entry.seq + 1, entry.hash
        return self.first_break is None

    def _classify(self, entry: AuditEntry) -> ChainBreak | None:
        linked = entry.prev_hash == self._prev_hash
        moved = not linked and entry.prev_hash in self._known
        if entry.seq != self._expected:
            if moved:
                return _break(entry.seq, BreakKind.REORDERED, "links to an entry that is not its predecessor")
            missing = f"{self._expected}" + (f"..{entry.seq - 1}" if entry.seq - 1 > self._expected else "")
            return _break(self._expected, BreakKind.DELETED, f"entries {missing} are missing")
        if moved:
            return _break(entry.seq, BreakKind.REORDERED, "links to an entry that is not its predecessor")
        self_consistent = recomputed_hash(entry) == entry.hash
        if not linked and self_consistent and entry.seq > 1:
            detail = f"seq {entry.seq - 1} was rewritten: seq {entry.seq} links to a hash no entry has"
            return _break(entry.seq - 1, BreakKind.EDITED, detail)
        if not linked or not self_consistent:
            return _break(entry.seq, BreakKind.EDITED, "content does not match its hash")
        return None

    def finish(self, head: AuditHead) -> VerifyReport:
        """The report, after every entry was fed; compares the last entry with the stored head."""
        last_seq = self._expected - 1
        if self.first_break is None:
            self.first_break = self._check_head(head, last_seq)
        return VerifyReport(checked=self.checked, last_seq=last_seq, head_seq=head.seq, first_break=self.first_break)

    def _check_head(self, head: AuditHead, last_seq: int) -> ChainBreak | None:
        if head.seq < 0:
            return _break(max(last_seq, 1), BreakKind.EDITED, "the chain's head is missing")
        if head.seq > last_seq:
            missing = f"{last_seq + 1}" + (f"..{head.seq}" if head.seq > last_seq + 1 else "")
            return _break(last_seq + 1, BreakKind.DELETED, f"entries {missing} were cut off the end")
        if head.seq < last_seq:
            return _break(head.seq + 1, BreakKind.INSERTED, f"entries after seq {head.seq} were not written by the log")
        if head.hash != self._prev_hash:
            return _break(last_seq, BreakKind.EDITED, "the last entry does not match the chain's head")
        return None


def _break(seq: int, kind: BreakKind, detail: str) -> ChainBreak:
    return ChainBreak(seq=seq, kind=kind, detail=detail)
