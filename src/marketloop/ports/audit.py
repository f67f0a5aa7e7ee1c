"""The audit log's ports: the store of the hash chain, and what an engine needs to record a change."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from marketloop.core.audit import AuditDraft, AuditEntry, AuditHead


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Which entries to list; every field narrows (None = any)."""

    since: str | None = None  # canonical time; entries at or after it
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." ("source." = every source action)
    limit: int = 100


class AuditStore(Protocol):
    """Append-only store of audit entries and the chain's head."""

    def append(self, draft: AuditDraft) -> AuditEntry:
        """Give `draft` the next `seq`, link it to the head's hash, store it and move the head, atomically.

        Safe under concurrency from threads and processes: two appends never
        get the same `seq` nor link to the same predecessor (the head row is
        locked for the transaction). Never updates or deletes an entry.
        """
        ...

    def head(self) -> AuditHead:
        """The last `seq` given out and its hash; seq 0 and GENESIS for an empty log."""
        ...

    def scan(self, *, after_seq: int = 0, limit: int = 10_000) -> list[AuditEntry]:
        """Up to `limit` stored entries with `seq > after_seq`, in `seq` order (gaps are not filled)."""
        ...

    def hashes(self) -> Iterator[str]:
        """The stored hash of every entry, in no particular order."""
        ...

    def search(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries matching `query`, newest first, at most `query.limit`."""
        ...


class AuditRecorder(Protocol):
    """What an engine calls to put a change on record (implemented by `marketloop.security.audit.AuditLog`)."""

    def record(
        self,
        action: str,
        target: str,
        *,
        details: Mapping[str, object] | None = None,
        actor: str | None = None,
    ) -> AuditEntry:
        """Record that `actor` (default: the current actor of the request or command) did `action` to `target`.

        `action` is dotted lower-case (`source.create`); `target` names what
        was changed (`source:demo-app`); `details` is a small JSON-able
        mapping (never personal data in clear). Returns once it is durable.
        """
        ...
