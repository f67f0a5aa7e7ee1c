"""The customer-profile store port: the materialised 360° view, its search and each customer's timeline.

The store computes `customer_profile` (one row per customer, every topic's
figures as typed columns) in bulk from the bank tables and the events, and
answers the point reads and searches of the profile service. What the figures
mean (windows, which events count as a login, what is a mortgage, the VIP
thresholds) is decided by the engine and handed over as `ProfileRules`; the
store only says it in its own SQL dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class PlatformRule:
    """Events whose client library / platform name contains one of `markers` count as `platform`."""

    platform: str  # app, h5, mini_program, wechat, branch …
    markers: tuple[str, ...]  # lower-case substrings


@dataclass(frozen=True, kw_only=True)
class ProfileRules:
    """The decisions behind the profile's figures, as data (see `marketloop.profiles.topics.DEFAULT_RULES`)."""

    short_window_days: int  # "30 days": transactions, logins, page views
    long_window_days: int  # "90 days": transactions, channel mix
    trend_days: int  # AUM now against AUM this many days ago
    maturity_windows_days: tuple[int, ...]  # wealth / deposit maturities within each
    risk_assessment_valid_days: int  # a questionnaire older than this is expired
    asset_types: tuple[str, ...]  # product types that count towards AUM
    channels: tuple[str, ...]  # transaction channels of the channel mix
    login_events: tuple[str, ...]  # lower-case event names that are a login
    view_markers: Mapping[str, tuple[str, ...]]  # e.g. {"wealth": ("wealth", "理财")}: page views by subject
    mortgage_markers: tuple[str, ...]  # lower-case substrings of a loan product's code or name
    contribution_rates: Mapping[str, float]  # annual margin per product type, for the contribution proxy
    vip_thresholds: tuple[tuple[int, str], ...]  # (minimum AUM, tier), highest first
    platforms: tuple[PlatformRule, ...]
    timeline_depth: int  # events per customer kept in the materialised timeline


RefreshProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True)
class RefreshResult:
    """What one refresh computed."""

    as_of: datetime
    customers: int
    timeline_events: int
    event_watermark: int  # the last event `load_seq` the refresh saw; later events are the live tail
    seconds: float


@dataclass(frozen=True, kw_only=True)
class RefreshState:
    """The last completed refresh."""

    as_of: datetime
    refreshed_at: datetime
    customers: int
    event_watermark: int


@dataclass(frozen=True, kw_only=True)
class ProfileFilter:
    """Which profiles a search returns: every given field must match (AND); None means any."""

    cust_no: str | None = None
    phone_hash: str | None = None
    # Name: the clear family name (`name_prefix`) is one of `family_names` or starts with
    # `family_name_prefix`, or the cust_no is one of `named_cust_nos` (names checked by decrypting).
    family_names: tuple[str, ...] = ()
    family_name_prefix: str | None = None
    named_cust_nos: tuple[str, ...] = ()
    city: str | None = None
    vip_level: str | None = None
    risk_tolerance: str | None = None
    branch_id: str | None = None
    rm_id: str | None = None
    min_aum: float | None = None
    max_aum: float | None = None
    # The caller's data scope (see core/scope.py): only these branches / only this RM's customers.
    scope_branch_ids: tuple[str, ...] | None = None
    scope_rm_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProfileRow:
    """One search hit: what a result list shows, personal fields still encrypted."""

    cust_no: str
    name_enc: str | None
    phone_enc: str | None
    name_prefix: str | None
    city: str | None
    vip_level: str | None
    vip_tier: str | None
    risk_tolerance: str | None
    branch_id: str | None
    rm_id: str | None
    aum: float


@dataclass(frozen=True, kw_only=True)
class TimelineEvent:
    """One event of a customer's timeline."""

    timestamp: datetime
    message_id: str
    type: str
    event: str | None
    platform: str | None
    source: str
    properties: dict[str, Any] = field(default_factory=dict)


class ProfileStore(Protocol):
    """The materialised `customer_profile`, its timeline, and the reads the profile service needs."""

    def refresh(self, as_of: datetime, rules: ProfileRules, progress: RefreshProgress | None = None) -> RefreshResult:
        """Recompute every customer's profile as of `as_of` from the bank tables and events.

        Calls `progress(step, done, steps)` as each of its steps starts (and once at the end).

        Idempotent (the same inputs and `as_of` give the same table) and
        atomic: readers see the previous profile until the new one replaces it
        in one commit. Balances are those valid on `as_of`'s date.
        """
        ...

    def state(self) -> RefreshState | None:
        """The last completed refresh, or None before the first."""
        ...

    def profile(self, cust_no: str) -> dict[str, Any] | None:
        """The profile row of `cust_no` (column → value), or None when it has none."""
        ...

    def compute(self, cust_no: str, as_of: datetime, rules: ProfileRules) -> dict[str, Any] | None:
        """The row `refresh` would compute for one customer, without storing it; None when not a customer.

        For customers added since the last refresh; far slower than `profile`.
        """
        ...

    def customer_by_phone_hash(self, phone_hash: str) -> str | None:
        """The cust_no whose `phone_hash` is this, or None (the oldest cust_no if several share it)."""
        ...

    def customer_exists(self, cust_no: str) -> bool:
        """Whether the bank's customers table holds `cust_no`."""
        ...

    def customer_by_event_identifier(self, kind: str, value: str) -> str | None:
        """The customer an event identifier (`user_id`, `anonymous_id`) was seen with, or None."""
        ...

    def search(self, where: ProfileFilter, *, limit: int, offset: int) -> tuple[list[ProfileRow], int]:
        """Matching profiles ordered by cust_no, the page `offset`..`offset + limit`, and the total count."""
        ...

    def timeline(self, cust_no: str, rules: ProfileRules, *, limit: int, offset: int) -> list[TimelineEvent]:
        """The customer's events, newest first (ties by message_id), `limit` from `offset`.

        Includes events loaded after the last refresh. Pages within
        `rules.timeline_depth` are served from the materialised timeline;
        deeper pages read the events table and are slower.
        """
        ...

    def columns(self) -> Sequence[str]:
        """Names of the `customer_profile` columns, in table order (empty before the first refresh)."""
        ...
