"""Ports for protecting personal data at rest: encrypted columns (key rotation), erasure and event retention."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True, order=True)
class EncryptedColumn:
    """A column holding `FieldCipher` ciphertexts; the column name is the encryption context."""

    table: str
    column: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True, kw_only=True)
class ErasureCounts:
    """What erasing one customer changed."""

    customer_rows: int  # customer rows whose personal columns were cleared
    identities: int  # OneID identifiers deleted
    events: int  # events whose personal keys were scrubbed


@dataclass(frozen=True, kw_only=True)
class PurgeCounts:
    """What a retention purge deleted (counts of events are kept per day first)."""

    events: int
    days: int  # (day, event) aggregate rows added or increased
    violations: int
    quarantined: int


Scrub = Callable[[dict[str, Any]], dict[str, Any]]


class PersonalDataStore(Protocol):
    """Where encrypted personal columns and personal event data live (the analytics store)."""

    def encrypted_columns(self) -> list[EncryptedColumn]:
        """Every column whose name ends in `_enc`, in every table."""
        ...

    def key_usage(self, column: EncryptedColumn) -> dict[str, int]:
        """How many non-null values of `column` use each key id (the second dot-part of a ciphertext)."""
        ...

    def stale_ciphertexts(self, column: EncryptedColumn, *, current_prefix: str, after: str, limit: int) -> list[str]:
        """Up to `limit` distinct values of `column` greater than `after` that do not start with
        `current_prefix`, in ascending order (keyset paging: a value that cannot be rotated is passed over)."""
        ...

    def replace_ciphertexts(self, column: EncryptedColumn, pairs: list[tuple[str, str]]) -> int:
        """Set each value equal to `old` to `new`, for every (old, new) pair, in one transaction.

        A value changed meanwhile by someone else (no longer `old`) is left alone.
        Returns the number of rows changed.
        """
        ...

    def erase_customer(self, cust_no: str, scrub: Scrub) -> ErasureCounts:
        """In one transaction: clear the customer's `*_enc`, `*_hash` and `name_prefix` columns, delete
        their OneID identifiers except the customer number, and replace the properties, traits and
        context of their events with `scrub(...)` of each (and drop identifier values other than the
        customer number). Rows are kept, so counts and other anonymous aggregates stay right.
        Idempotent: erasing again changes nothing more."""
        ...

    def purge_events(self, before: datetime) -> PurgeCounts:
        """In one transaction: add the counts of events with `timestamp < before` per day, type, event and
        source to `event_daily_counts`, then delete those events, and tracking violations and released
        quarantined events received before `before`."""
        ...
