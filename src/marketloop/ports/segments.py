"""Segment ports: versioned definitions in the operational store, and the warehouse that counts and keeps members.

The segment engine prints SQL in the warehouse's dialect; the warehouse
runs it, keeps snapshots of members and writes exports. Definitions are
stored as their JSON form (a plain document), so this port knows nothing of
the engine's syntax tree.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from marketloop.core.bank import LogicalType
from marketloop.core.scope import Scope

ExportFormat = Literal["csv", "parquet"]


@dataclass(frozen=True, kw_only=True)
class SegmentVersion:
    """One saved version of a segment (客群) definition."""

    segment_id: str
    version: int  # 1, 2, …: every save of the same segment adds one
    name: str
    description: str
    definition: dict[str, Any]  # the JSON form
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One materialisation: which version was evaluated at which `as_of`, when, and how many members."""

    segment_id: str
    version: int
    snapshot_at: datetime
    as_of: datetime
    customers: int


class SegmentRepository(Protocol):
    """Durable store of segment definitions (every version kept) and of the snapshots taken."""

    def add(self, segment: SegmentVersion) -> None:
        """Store a new version. Raises `MarketloopError` (conflict) when (segment_id, version) exists,
        so of two concurrent saves based on the same version one wins."""
        ...

    def latest(self, segment_id: str) -> SegmentVersion | None:
        """The newest version of `segment_id`, or None when there is no such segment."""
        ...

    def get(self, segment_id: str, version: int) -> SegmentVersion | None:
        """That version, or None."""
        ...

    def list(self) -> list[SegmentVersion]:
        """The newest version of every segment, by segment id."""
        ...

    def add_snapshot(self, snapshot: Snapshot) -> None:
        """Record a materialisation (its members are in the warehouse)."""
        ...

    def snapshots(self, segment_id: str) -> builtins.list[Snapshot]:
        """The materialisations of `segment_id`, newest first."""
        ...


class SegmentWarehouse(Protocol):
    """The analytics store seen by the segment engine: runs membership SQL, keeps member snapshots."""

    @property
    def dialect(self) -> str:
        """Which printer writes this store's SQL: duckdb, clickhouse or postgres."""
        ...

    def count(self, sql: str) -> int:
        """Run a count query (one row, one integer column) and return the integer."""
        ...

    def members(self, sql: str, *, limit: int) -> list[str]:
        """Run a membership query (one `cust_no` column); at most `limit` cust_nos, in cust_no order."""
        ...

    def columns(self, relation: str) -> dict[str, LogicalType] | None:
        """The columns of `relation` with their logical types, or None when it does not exist."""
        ...

    def materialise(self, segment_id: str, snapshot_at: datetime, members_sql: str) -> int:
        """Store the members of `members_sql` as the snapshot (segment_id, snapshot_at); returns how many.

        Atomic: a reader sees the whole snapshot or none of it. Writing the
        same (segment_id, snapshot_at) again replaces it.
        """
        ...

    def export(self, segment_id: str, snapshot_at: datetime, path: Path, fmt: ExportFormat) -> int:
        """Write the snapshot's cust_nos, in order, to `path` as CSV (with a header) or Parquet; returns rows."""
        ...

    def members_of(self, segment_id: str, snapshot_at: datetime, *, scope: Scope) -> builtins.list[str]:
        """The snapshot's cust_nos in order, only those inside `scope` (by each customer's branch and current RM)."""
        ...
