"""The identity store port: where the OneID graph is kept between runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from marketloop.core.identities import Conflict, HistoryRecord, IdentityChanges, IdentitySnapshot


class IdentityStore(Protocol):
    """Identities, OneIDs, redirects, merge / unmerge history and refused merges (conflicts).

    Values of protected identifier types arrive already hashed; a store never
    sees a plain phone or ID number.
    """

    def load(self) -> IdentitySnapshot:
        """Everything persisted, for `IdentityGraph.from_snapshot`; empty for a new store."""
        ...

    def persist(self, changes: IdentityChanges) -> int:
        """Write `changes` atomically (all or nothing); returns how many loaded events were re-attributed.

        Identities and OneIDs are upserts by identifier / OneID (an identity's
        `first_seen` and `source` are written once, when it is new); redirects
        are upserts, `removed_redirects` are deleted; history is appended;
        conflicts are kept once per `Conflict.key`. Each `Reattribution` moves
        the loaded events it names to their new OneID in the same transaction,
        when the store shares a database with the warehouse's `events`.
        """
        ...

    def history(self, one_ids: Sequence[str], *, limit: int) -> list[HistoryRecord]:
        """Merges and unmerges in which any of `one_ids` took part, oldest first, at most `limit`."""
        ...

    def conflicts(self, one_ids: Sequence[str] | None = None, *, limit: int) -> list[Conflict]:
        """Recorded conflicts, newest first, at most `limit`; only those naming one of `one_ids` when given."""
        ...
