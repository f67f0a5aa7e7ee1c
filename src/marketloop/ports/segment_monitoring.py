"""Segment monitoring ports: fixed segments (固化客群), size rules and lookalike reports.

Definitions live in the operational store (`SegmentMonitorRepository`); the
frozen member lists, the stage of every member on every snapshot date and the
feature rows a lookalike model trains on live in the warehouse
(`MonitoringWarehouse`). As with segments, the engine prints the SQL and the
warehouse runs it; stage schemes and lookalike reports are stored as plain
JSON documents, so this port knows nothing of the engine's syntax tree.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import polars as pl

from marketloop.core.bank import LogicalType

LEFT = "_left"  # the stage of a frozen member who left the bank or is no longer known
UNSTAGED = "_none"  # the stage of a member in the bank who is in no stage (no definition matched, or NULL)


@dataclass(frozen=True, kw_only=True)
class FixedSegment:
    """A segment frozen at a moment: its member list is kept and followed over time."""

    name: str  # unique; how marketers refer to it
    segment_id: str
    version: int  # the version of the segment that was frozen
    frozen_at: datetime
    as_of: datetime  # the moment the definition was evaluated
    members: int
    stages: dict[str, Any] | None = None  # the stage scheme's JSON form, fixed by the first monitoring run
    share_threshold: float = 5.0  # drift alert: a stage's share moves more than this many percentage points
    shrink_threshold: float = 10.0  # drift alert: members still in the segment fall by more than this percent


@dataclass(frozen=True, kw_only=True)
class StageCount:
    """How many frozen members were in one stage on one snapshot date."""

    on: date
    as_of: datetime
    stage: str
    customers: int
    in_segment: int  # of them, how many still met the frozen segment's definition


@dataclass(frozen=True, kw_only=True)
class TransitionCount:
    """How many frozen members were in `from_stage` on the first date and in `to_stage` on the second."""

    from_stage: str
    to_stage: str
    customers: int


@dataclass(frozen=True, kw_only=True)
class SizeRule:
    """Alert when a materialisation's count drops or spikes against the median of the previous `baseline`."""

    segment_id: str
    drop_pct: float | None = None  # alert when the count falls by more than this percent
    spike_pct: float | None = None  # alert when the count rises by more than this percent
    baseline: int = 1  # how many previous materialisations the median is taken over


@dataclass(frozen=True, kw_only=True)
class LookalikeRecord:
    """A saved lookalike expansion: which segment it made, from which seed, and the model's report."""

    segment_id: str  # the new (static) segment
    seed_id: str
    seed_version: int
    created_at: datetime
    report: dict[str, Any]  # AUC, feature importances, sizes, parameters (`LookalikeReport` as JSON)


class SegmentMonitorRepository(Protocol):
    """Durable store of fixed segments, size rules and lookalike reports (the operational store)."""

    def add_fixed(self, fixed: FixedSegment) -> None:
        """Store a new fixed segment. Raises `MarketloopError` (conflict) when the name is taken."""
        ...

    def fixed(self, name: str) -> FixedSegment | None:
        """The fixed segment called `name`, or None."""
        ...

    def list_fixed(self, segment_id: str | None = None) -> builtins.list[FixedSegment]:
        """Every fixed segment (or those frozen from `segment_id`), by name."""
        ...

    def update_fixed(self, fixed: FixedSegment) -> None:
        """Replace the stage scheme and thresholds of an existing fixed segment (matched by name)."""
        ...

    def size_rule(self, segment_id: str) -> SizeRule | None:
        """The size alert rule of `segment_id`, or None when it has none."""
        ...

    def set_size_rule(self, rule: SizeRule) -> None:
        """Create or replace the size alert rule of `rule.segment_id`."""
        ...

    def add_lookalike(self, record: LookalikeRecord) -> None:
        """Store the report of a lookalike expansion (one per resulting segment)."""
        ...

    def lookalike(self, segment_id: str) -> LookalikeRecord | None:
        """The report of the expansion that made `segment_id`, or None."""
        ...


class MonitoringWarehouse(Protocol):
    """The analytics store's side of monitoring: frozen members, their stages per date, feature rows."""

    @property
    def dialect(self) -> str:
        """Which printer writes this store's SQL: duckdb, clickhouse or postgres."""
        ...

    def columns(self, relation: str) -> dict[str, LogicalType] | None:
        """The columns of `relation` with their logical types, or None when it does not exist."""
        ...

    def freeze(self, name: str, members_sql: str) -> int:
        """Store the cust_nos of `members_sql` as the members of fixed segment `name`; returns how many.

        Atomic; freezing the same name again replaces its members and drops its stage snapshots.
        """
        ...

    def record_stages(self, name: str, on: date, as_of: datetime, stage_sql: str, in_segment_sql: str) -> int:
        """Record every frozen member's stage on `on`; returns how many members were recorded.

        `stage_sql` selects (cust_no, stage), at most one row per customer; a
        member without a row is recorded as `LEFT`. `in_segment_sql` selects
        the cust_nos that still meet the segment. Atomic; recording the same
        (name, on) again replaces it.
        """
        ...

    def stage_counts(self, name: str) -> builtins.list[StageCount]:
        """Members per stage per snapshot date, by date then stage."""
        ...

    def transitions(self, name: str, start: date, end: date) -> builtins.list[TransitionCount]:
        """Members per (stage on `start`, stage on `end`); only members recorded on both dates."""
        ...

    def drop_fixed(self, name: str) -> None:
        """Forget the members and stage snapshots of `name` (used when freezing fails half way)."""
        ...

    def table(self, sql: str) -> pl.DataFrame:
        """Run `sql` and return all its rows as a data frame (feature rows for lookalike training)."""
        ...
