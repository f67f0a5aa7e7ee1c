"""The audit log (审计日志): record every change, list entries, verify the hash chain.

Owns who is acting (`acting_as`, a context variable the API's authentication
and the CLI set once per request or command, so engines need not pass the
actor down), the shape of an action name, and the two-pass verification:
first every stored hash is read (to tell a moved entry from an edited one),
then the entries are checked in `seq` order against the chain's head.

Engines record through `AuditLog.record(action, target, details=...)`,
typed as `marketloop.ports.audit.AuditRecorder` so they need not import
this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from marketloop.core.audit import (
    AuditDraft,
    AuditEntry,
    ChainChecker,
    VerifyReport,
    canonical_details,
    canonical_time,
)
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.audit import AuditQuery, AuditStore
from marketloop.ports.clock import Clock

SYSTEM_ACTOR = "system"
MAX_LIMIT = 10_000
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+$")
_actor: ContextVar[str] = ContextVar("marketloop_actor", default=SYSTEM_ACTOR)


def current_actor() -> str:
    """Who is acting now: the user of the request or command, or "system"."""
    return _actor.get()


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Within the block, audit entries without an explicit actor name `actor` (e.g. "user:alice", "cli:root")."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def act_as(actor: str) -> None:
    """From now on in the current task (one HTTP request), entries without an explicit actor name `actor`.

    For the API's authentication dependency: each request runs in its own task
    with its own copy of the context, so this does not leak into other requests.
    """
    _actor.set(actor)


def _invalid(code: str, title: str, detail: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=f"audit.{code}", title=title, detail=detail)


class AuditLog:
    """Append-only, hash-chained record of changes; see the module docstring."""

    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(
        self,
        action: str,
        target: str,
        *,
        details: Mapping[str, object] | None = None,
        actor: str | None = None,
    ) -> AuditEntry:
        """Durably append "`actor` did `action` to `target`" and return the entry.

        - `action`: dotted lower-case, `<area>.<verb>`, e.g. `source.create`,
          `journey.approve`, `keys.rotate`, `customer.erase`.
        - `target`: what was changed, `<kind>:<id>`, e.g. `source:demo-app`.
        - `details`: a small JSON-able mapping; never personal data in clear.
        - `actor`: default `current_actor()` (set with `acting_as`).

        Raises `MarketloopError` (invalid) for a malformed action or an empty target.
        """
        if not _ACTION.match(action) or len(action) > 100:
            raise _invalid("invalid-action", "An audit action is dotted lower-case, like source.create", action)
        if not target.strip() or len(target) > 400:
            raise _invalid("invalid-target", "An audit target is 1 to 400 characters", repr(target[:50]))
        draft = AuditDraft(
            at=canonical_time(self._clock.now()),
            actor=(actor or current_actor())[:200],
            action=action,
            target=target,
            details=canonical_details(details),
        )
        return self._store.append(draft)

    def entries(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries newest first; `action` ending in "." matches every action under it ("source.")."""
        query = AuditQuery(
            since=canonical_time(since) if since is not None else None,
            actor=actor,
            action=action,
            limit=max(1, min(limit, MAX_LIMIT)),
        )
        return self._store.search(query)

    def verify(self, *, page: int = 5_000) -> VerifyReport:
        """Check the whole chain; the report names the first broken `seq` and whether it was edited,
        deleted or reordered (or entries were written around the log)."""
        checker = ChainChecker(frozenset(self._store.hashes()))
        head = self._store.head()
        after = 0
        while batch := self._store.scan(after_seq=after, limit=page):
            if not all(checker.feed(entry) for entry in batch):
                break
            after = batch[-1].seq
        return checker.finish(head)
