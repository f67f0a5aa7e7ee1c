"""Analytics ports: the warehouse that runs analysis SQL, and where metric alerts are delivered (webhook, e-mail)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol


class AnalyticsWarehouse(Protocol):
    """The analytics store seen by the analysis engine: runs read-only SQL in its dialect."""

    @property
    def dialect(self) -> str:
        """Which spelling the analysis SQL must use: duckdb or clickhouse."""
        ...

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """Run a read-only query; its rows as column → value, in the query's order.

        Raises `MarketloopError` (conflict, `analytics.missing-relation`) when the
        query reads a table that does not exist yet (e.g. the profile before its
        first refresh).
        """
        ...

    def data_version(self) -> str:
        """Changes whenever data an analysis reads changes; equal versions mean equal data.

        That is: events loaded or erased, core-banking tables imported, the
        profile or the tags refreshed, OneID links written.

        Results are cached under it, so it must never repeat for different data.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class AlertMessage:
    """What an alert says, as posted to a webhook (JSON) or written in an e-mail."""

    rule: str
    metric: str
    day: date
    value: float
    reason: str  # e.g. "above threshold 100" or "robust z-score 4.2 against the last 28 days"
    kind: str  # threshold | anomaly
    baseline: float | None
    checked_at: datetime


@dataclass(frozen=True, kw_only=True)
class AlertDelivery:
    ok: bool
    status: int | None  # the HTTP status or the SMTP reply code, when an answer came
    error: str | None
    to: str = ""  # where it went: the webhook's URL, or the e-mail recipients


class AlertSink(Protocol):
    """Where alerts go: a webhook (HTTP POST of the message as JSON)."""

    def deliver(self, url: str, message: AlertMessage) -> AlertDelivery:
        """Post `message` to `url`; never raises for a delivery failure, reports it in the result.

        A 2xx answer is success. Retries only what is retryable (connection
        errors, 5xx, 429), a bounded number of times with backoff.
        """
        ...


class AlertMailer(Protocol):
    """Where e-mailed alerts go: the SMTP server the e-mail channel uses."""

    def mail(self, recipients: Sequence[str], message: AlertMessage) -> AlertDelivery:
        """Send `message` as one e-mail to every address of `recipients`; never raises for a delivery failure.

        Success means the server accepted every recipient; refused ones are
        named in `error`. Retries only what is retryable (lost connections,
        timeouts, 4xx replies), a bounded number of times with backoff.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class SavedAnalysis:
    analysis_id: str
    name: str
    spec: dict[str, Any]  # the JSON form, as written (relative ranges stay relative)
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class StoredRule:
    rule_id: str
    name: str
    rule: dict[str, Any]  # the JSON form of an alert rule
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class RuleCheck:
    """One rule checked on one day: the value, whether it alerted and whether the webhook took it."""

    rule_id: str
    day: date
    value: float
    alerted: bool
    reason: str
    delivered: bool | None  # None when nothing was sent
    error: str | None
    checked_at: datetime


class AnalyticsRepository(Protocol):
    """Durable store of saved analyses, alert rules and the daily checks of the rules."""

    def save_analysis(self, analysis: SavedAnalysis) -> None:
        """Store a new saved analysis; raises `MarketloopError` (conflict) when its id exists."""
        ...

    def analyses(self) -> list[SavedAnalysis]:
        """Every saved analysis, by name then id."""
        ...

    def analysis(self, analysis_id: str) -> SavedAnalysis | None:
        """That analysis, or None."""
        ...

    def replace_analysis(self, analysis: SavedAnalysis) -> bool:
        """Replace the name and spec of the analysis with its id (`created_at` is kept); False when there is none."""
        ...

    def delete_analysis(self, analysis_id: str) -> bool:
        """Forget that analysis; False when there is none."""
        ...

    def add_rule(self, rule: StoredRule) -> None:
        """Store a new alert rule; raises `MarketloopError` (conflict) when its id exists."""
        ...

    def rules(self) -> list[StoredRule]:
        """Every alert rule, by name then id."""
        ...

    def replace_rule(self, rule: StoredRule) -> bool:
        """Replace the name, rule and `enabled` of the rule with its id (`created_at` and its checks are kept).

        False when there is none.
        """
        ...

    def delete_rule(self, rule_id: str) -> bool:
        """Forget that rule and its checks, atomically; False when there is none."""
        ...

    def record_check(self, check: RuleCheck) -> bool:
        """Record the check of a rule on a day; False (and nothing changes) when that day was checked already."""
        ...

    def checks(self, rule_id: str, *, limit: int) -> list[RuleCheck]:
        """The latest checks of a rule, newest day first."""
        ...
