"""Suppression lists (免打扰名单, 全局对照组 …): who is on which list, changed on the audit record."""

from __future__ import annotations

import re
from datetime import datetime

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.contact_policy import ListEntry, SuppressionLists

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


class SuppressionListService:
    def __init__(self, lists: SuppressionLists, clock: Clock, *, audit: AuditRecorder | None = None) -> None:
        self._lists = lists
        self._clock = clock
        self._audit = audit

    def add(self, list_name: str, customer: str, *, reason: str = "", until: datetime | None = None) -> ListEntry:
        now = self._clock.now()
        if until is not None and until <= now:
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="lists.until-past", title="`until` must be in the future"
            )
        entry = ListEntry(
            list_name=_name(list_name), customer=_customer(customer), reason=reason.strip(), added_at=now, until=until
        )
        self._lists.add(entry)
        if self._audit is not None:
            details: dict[str, object] = {"list": entry.list_name, "reason": entry.reason}
            details["until"] = until.isoformat() if until else None
            self._audit.record("policy.list_add", f"customer:{entry.customer}", details=details)
        return entry

    def remove(self, list_name: str, customer: str) -> bool:
        removed = self._lists.remove(_name(list_name), _customer(customer))
        if removed and self._audit is not None:
            self._audit.record("policy.list_remove", f"customer:{customer.strip()}", details={"list": list_name})
        return removed

    def entries(self, list_name: str, *, limit: int = 1000) -> list[ListEntry]:
        return self._lists.entries(_name(list_name), limit=max(1, min(limit, 100_000)))

    def memberships(self, customer: str) -> list[ListEntry]:
        return list(self._lists.memberships(_customer(customer), self._clock.now()))


def _name(name: str) -> str:
    if not _NAME.match(name):
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="lists.invalid-name",
            title="A list name is lower-case letters, digits, - and _ (e.g. dnd, holdout)",
            detail=repr(name[:60]),
        )
    return name


def _customer(customer: str) -> str:
    value = customer.strip()
    if not value or len(value) > 100:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="lists.invalid-customer", title="A customer number of 1 to 100 characters"
        )
    return value
