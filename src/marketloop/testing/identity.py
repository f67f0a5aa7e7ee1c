"""An in-memory `IdentityStore`, for tests of anything that keeps an identity graph."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from marketloop.core.identities import (
    Conflict,
    HistoryRecord,
    IdentityChanges,
    IdentitySnapshot,
    MergeRecord,
    UnmergeRecord,
)


class MemoryIdentityStore:
    """The `IdentityStore` port in dicts; `persist` is atomic because it cannot fail half-way."""

    def __init__(self) -> None:
        self.identities: dict[str, str] = {}  # identifier key -> OneID
        self.first_seen: dict[str, tuple[datetime, str]] = {}
        self.origins: dict[str, tuple[datetime, str]] = {}
        self.redirects: dict[str, str] = {}
        self.records: list[HistoryRecord] = []
        self.conflict_log: dict[str, Conflict] = {}
        self.persisted = 0  # how many non-empty change sets were written

    def load(self) -> IdentitySnapshot:
        keys = sorted(self.identities)
        separations = [(r.from_one_id, r.to_one_id) for r in self.records if isinstance(r, UnmergeRecord)]
        return IdentitySnapshot(
            identity_keys=keys,
            identity_one_ids=[self.identities[k] for k in keys],
            origins=[(o, *self.origins[o]) for o in sorted(self.origins)],
            redirects=sorted(self.redirects.items()),
            separations=separations,
            conflict_keys=sorted(self.conflict_log),
        )

    def persist(self, changes: IdentityChanges) -> int:
        for row in changes.identities:
            key = row.identifier.key
            self.identities[key] = row.one_id
            if key not in self.first_seen and row.first_seen is not None:
                self.first_seen[key] = (row.first_seen, row.source or "")
        for issued in changes.one_ids:
            self.origins[issued.one_id] = (issued.origin.created_at, issued.origin.creator.key)
        for redirect in changes.redirects:
            self.redirects[redirect.from_one_id] = redirect.to_one_id
        for one_id in changes.removed_redirects:
            self.redirects.pop(one_id, None)
        self.records.extend(changes.history)
        for conflict in changes.conflicts:
            self.conflict_log.setdefault(conflict.key, conflict)
        self.persisted += bool(changes)
        return 0

    def history(self, one_ids: Sequence[str], *, limit: int) -> list[HistoryRecord]:
        wanted = set(one_ids)
        found = [r for r in self.records if wanted & set(_one_ids_of(r))]
        return sorted(found, key=lambda r: r.at)[:limit]

    def conflicts(self, one_ids: Sequence[str] | None = None, *, limit: int) -> list[Conflict]:
        found = [c for c in self.conflict_log.values() if one_ids is None or set(one_ids) & set(c.one_ids)]
        return sorted(found, key=lambda c: c.at, reverse=True)[:limit]


def _one_ids_of(record: HistoryRecord) -> tuple[str, str]:
    if isinstance(record, MergeRecord):
        return record.survivor, record.absorbed
    return record.from_one_id, record.to_one_id
