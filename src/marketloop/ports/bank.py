"""The bank data port: customers, accounts, products, holdings, transactions, payroll, RMs, branches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import polars as pl

from marketloop.core.bank import TableSpec


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    """What merging a frame into a table did, by key."""

    inserted: int
    updated: int
    unchanged: int


class BankStore(Protocol):
    """Tables of `marketloop.core.bank.BANK_TABLES`, keyed as their specs say."""

    def merge(self, table: TableSpec, rows: pl.DataFrame) -> MergeResult:
        """Insert rows with new keys, replace rows whose key exists and whose values differ, keep the rest.

        Atomic: all of it or nothing. Idempotent: merging the same rows twice
        changes nothing the second time. `rows` must have unique keys and only
        columns of the spec (missing ones are NULL / left as they were on update).
        """
        ...

    def append(self, table: TableSpec, rows: pl.DataFrame) -> int:
        """Bulk-insert rows known to be new (the simulator's fast path); returns the count."""
        ...

    def count(self, table: TableSpec) -> int:
        """Rows in the table."""
        ...

    def fetch(self, table: TableSpec, keys: pl.DataFrame) -> pl.DataFrame:
        """Rows whose key is among `keys` (a frame of the key columns)."""
        ...
