"""Tag ports: versioned tag definitions in the operational store, tag values and their history in the warehouse.

A tag (标签) definition is kept as a plain document (the segment language's
JSON form inside), so these ports know nothing of the engine's syntax tree.
The warehouse keeps one current value per customer and tag
(`customer_tags`), every change of value (`customer_tag_history`, so that
"the value as of date D" is answerable for point-in-time training) and the
daily snapshots of stratification tags (`tag_snapshots`).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from marketloop.core.bank import LogicalType


class TagKind(StrEnum):
    STATIC = "static"  # 导入标签: an uploaded list of customers (and values)
    RULE = "rule"  # 规则标签: a definition in the segment language, refreshed in the warehouse
    REALTIME = "realtime"  # 实时标签: kept by the stream processor as events arrive (M4)
    MODEL = "model"  # 模型标签: written by scoring (M6)


class TagCategory(StrEnum):
    """The seven topics of the customer profile."""

    NATURAL = "natural"  # 自然属性
    ASSETS = "assets"  # 资产
    LIABILITIES = "liabilities"  # 负债
    RISK = "risk"  # 风险
    TRANSACTIONS = "transactions"  # 交易
    BEHAVIOUR = "behaviour"  # 行为
    VALUE = "value"  # 价值


class Snapshots(StrEnum):
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"  # on Mondays (and on the first refresh of a tag)


@dataclass(frozen=True, kw_only=True)
class Lineage:
    """What a rule tag reads: warehouse relations, event names and other tags."""

    relations: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    time_dependent: bool = False  # relative dates or windows: the answer moves with the as_of date


@dataclass(frozen=True, kw_only=True)
class TagVersion:
    """One saved version of a tag definition."""

    name: str  # the tag's stable id, e.g. `payroll_customer`
    version: int  # 1, 2, …
    kind: TagKind
    category: TagCategory
    title: str  # what marketers call it (Chinese first), e.g. 代发客户
    description: str
    owner: str
    business_line: str  # e.g. retail, credit_card, wealth
    shared_with: tuple[str, ...]  # other business lines that may use it ("*": all)
    definition: dict[str, Any] | None  # rule tags: {"when": …} or {"cases": [{"when", "value"}], "else"}
    values: tuple[str, ...]  # the values a value tag takes, in order; () for a yes / no tag
    snapshots: Snapshots
    lineage: Lineage
    created_at: datetime
    retired: bool = False


@dataclass(frozen=True, kw_only=True)
class TagStats:
    """Coverage and distribution of one tag after one refresh."""

    tag: str
    version: int
    as_of: datetime
    population: int  # customers in the population
    customers: int  # customers with a value
    changed: int  # values that changed in this refresh (added, altered or removed)
    distribution: dict[str, int]  # value → customers (the 50 most frequent)
    inputs: dict[str, str] = field(default_factory=dict)  # relation → data version read
    seconds: float = 0.0

    @property
    def coverage(self) -> float:
        return self.customers / self.population if self.population else 0.0


@dataclass(frozen=True, kw_only=True)
class TagRun:
    """One refresh run."""

    run_id: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime
    full: bool
    refreshed: tuple[str, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TagValue:
    """A customer's value of a tag, and since when it holds."""

    tag: str
    value: str
    since: datetime | None


@dataclass(frozen=True, kw_only=True)
class TagQuery:
    """A tag's membership SQL: one row per customer with a value, columns `cust_no` and `value` (text)."""

    tag: str
    sql: str


@dataclass(frozen=True, kw_only=True)
class Change:
    """What writing one tag's values changed."""

    tag: str
    population: int
    customers: int
    changed: int
    distribution: dict[str, int]


class TagRepository(Protocol):
    """Durable store of tag definitions (every version kept) and of refresh runs and their statistics."""

    def add(self, tag: TagVersion) -> None:
        """Store a new version. Raises `MarketloopError` (conflict) when (name, version) exists."""
        ...

    def latest(self, name: str) -> TagVersion | None:
        """The newest version of `name`, or None."""
        ...

    def get(self, name: str, version: int) -> TagVersion | None: ...

    def versions(self, name: str) -> list[TagVersion]:
        """Every version of `name`, oldest first."""
        ...

    def list(self) -> list[TagVersion]:
        """The newest version of every tag, by name."""
        ...

    def names(self) -> builtins.list[str]:
        """The names of the tags whose newest version is not retired, sorted."""
        ...

    def add_run(self, run: TagRun, stats: Sequence[TagStats]) -> None:
        """Record a refresh run and the statistics of each tag it refreshed, in one transaction."""
        ...

    def last_stats(self) -> dict[str, TagStats]:
        """The statistics of the last refresh of each tag, by tag name."""
        ...

    def stats(self, name: str, *, limit: int) -> builtins.list[TagStats]:
        """The statistics of the last `limit` refreshes of `name`, newest first."""
        ...


class TagWarehouse(Protocol):
    """The analytics store seen by the tag engine: computes, keeps and answers tag values."""

    @property
    def dialect(self) -> str:
        """Which printer writes this store's SQL: duckdb, clickhouse or postgres."""
        ...

    def columns(self, relation: str) -> dict[str, LogicalType] | None:
        """The columns of `relation` with their logical types, or None when it does not exist."""
        ...

    def versions(self, relations: Sequence[str]) -> dict[str, str]:
        """A data version of each relation: equal strings mean equal contents (absent relation: "absent").

        Cheap for append-only logs (row count and last load sequence), a
        content hash for the others.
        """
        ...

    def tag_versions(self, tags: Sequence[str]) -> dict[str, str]:
        """A version of each tag's current values (a hash of its rows): equal strings mean equal values."""
        ...

    def tags_with_values(self) -> list[str]:
        """The names of the tags some customer has a value of, sorted (cheap: cached by the table's size)."""
        ...

    def unknown_customers(self, cust_nos: Sequence[str]) -> list[str]:
        """Those of `cust_nos` that are not in the population (the customers table), in the order given."""
        ...

    def apply(self, queries: Sequence[TagQuery], as_of: datetime) -> list[Change]:
        """Compute each query and make it the tag's values, set-based; returns what changed, per tag.

        Only changed values are written: a customer whose value is unchanged
        keeps its row and its `since`; a changed or new value gets
        `since = as_of` and a history row; a vanished one closes its history
        row at `as_of`. Atomic: readers see all tags' new values or none.
        """
        ...

    def replace(self, tag: str, values: Mapping[str, str], as_of: datetime) -> Change:
        """Make `values` (cust_no → value) the tag's values (static imports, model scores); changes only."""
        ...

    def set_value(self, tag: str, cust_no: str, value: str | None, at: datetime) -> bool:
        """Set (None: remove) one customer's value (real-time tags); returns whether it changed."""
        ...

    def values_of(self, cust_no: str) -> list[TagValue]:
        """The customer's current tag values, by tag."""
        ...

    def values_as_of(self, cust_no: str, at: datetime) -> builtins.list[TagValue]:
        """The customer's tag values in force at `at`, from the history."""
        ...

    def tag_as_of(self, tag: str, at: datetime) -> dict[str, str]:
        """Every customer's value of `tag` in force at `at` (cust_no → value), from the history."""
        ...

    def snapshot(self, tag: str, day: date) -> int:
        """Copy the tag's current values as its snapshot of `day` (replacing one of that day); returns rows."""
        ...

    def snapshot_as_of(self, tag: str, day: date) -> tuple[date | None, dict[str, int]]:
        """The newest snapshot of `tag` on or before `day`: its date and value → customers (None, {} if none)."""
        ...

    def remove(self, tag: str, at: datetime) -> int:
        """Remove every value of `tag` (closing its history at `at`); returns how many were removed."""
        ...


class TagValues(Protocol):
    """The customer's current tag values, for the 360° profile."""

    def values_of(self, cust_no: str) -> list[TagValue]: ...
