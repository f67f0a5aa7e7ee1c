"""Analytics ports: the warehouse that runs analysis SQL, and where metric alerts are delivered."""

from __future__ import annotations

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
        """Run a read-only query; its rows as column → value, in the query's order."""
        ...

    def data_version(self) -> str:
        """Changes whenever loaded events change (a load, an erasure); equal versions mean equal data.

        Results are cached under it, so it must never repeat for different data.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class AlertMessage:
    """What an alert says, as posted to a webhook (JSON)."""

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
    status: int | None  # the HTTP status, when an answer came
    error: str | None


class AlertSink(Protocol):
    """Where alerts go: a webhook (HTTP POST of the message as JSON)."""

    def deliver(self, url: str, message: AlertMessage) -> AlertDelivery:
        """Post `message` to `url`; never raises for a delivery failure, reports it in the result.

        A 2xx answer is success. Retries only what is retryable (connection
        errors, 5xx, 429), a bounded number of times with backoff.
        """
        ...
