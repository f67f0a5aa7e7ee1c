"""Per-channel rate limits (token buckets on the monotonic clock).

A provider allows so many messages a second (an SMS gateway's TPS, WeChat's
and WeCom's API limits); a send that finds the bucket empty is not refused but
told when to try again. Buckets live in the process: with several dispatch
workers each gets its share of the configured rate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from marketloop.ports.clock import Clock


@dataclass(kw_only=True)
class _Bucket:
    rate: float  # tokens per second
    burst: float
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by channel name; a channel without a rate is not limited."""

    def __init__(self, clock: Clock, rates: dict[str, tuple[float, int]]) -> None:
        """`rates`: channel name → (messages per second, burst)."""
        self._clock = clock
        self._lock = threading.Lock()
        now = clock.monotonic()
        self._buckets = {
            name: _Bucket(rate=rate, burst=float(max(burst, 1)), tokens=float(max(burst, 1)), at=now)
            for name, (rate, burst) in rates.items()
            if rate > 0
        }

    def acquire(self, channel: str) -> float:
        """Take one token: 0.0 when taken, else the seconds until one is free (nothing taken)."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            return 0.0
        with self._lock:
            now = self._clock.monotonic()
            bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.at) * bucket.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / bucket.rate
