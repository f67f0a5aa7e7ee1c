"""Rate limits (限流): a token bucket per key (an API token, a write key).

Each key refills at `rate` per second up to `burst`; a request takes one.
`take` is a dict lookup and a little arithmetic, so it can sit on the
collection hot path. State is per process (the scale-out column would keep
it in Redis; not built). `rate` 0 turns the limiter off.
"""

from __future__ import annotations

from collections.abc import Callable

from marketloop.core.errors import ErrorKind, MarketloopError

MAX_KEYS = 100_000


class RateLimiter:
    """Token buckets by key; see the module docstring."""

    __slots__ = ("_buckets", "_burst", "_monotonic", "_rate")

    def __init__(self, rate: float, burst: float, monotonic: Callable[[], float]) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("a rate limit needs rate >= 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._monotonic = monotonic
        self._buckets: dict[str, list[float]] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, key: str) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds until the next token."""
        if self._rate <= 0:
            return 0.0
        now = self._monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._buckets.clear()  # forgetting full buckets only errs on the generous side
            self._buckets[key] = [self._burst - 1.0, now]
            return 0.0
        tokens = bucket[0] + (now - bucket[1]) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self._rate

    def check(self, key: str, what: str) -> None:
        """Raise `MarketloopError` (rate-limited, 429 with Retry-After) when `key` has no token left."""
        wait = self.take(key)
        if wait > 0.0:
            raise MarketloopError(
                kind=ErrorKind.RATE_LIMITED,
                code="rate-limited",
                title="Too many requests",
                detail=f"the rate limit of this {what} is reached; retry after {wait:.2f} s",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
