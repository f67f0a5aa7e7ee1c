"""A clock that only moves when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FrozenClock:
    """The `Clock` port, frozen at `start` until `advance` is called.

    `now()` and `monotonic()` move together, so code that measures durations
    with `monotonic()` and code that stamps times with `now()` agree.
    """

    def __init__(self, start: datetime = DEFAULT_START, *, monotonic_start: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start, e.g. datetime(..., tzinfo=UTC)")
        self._now = start.astimezone(UTC)
        self._monotonic = monotonic_start

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta) -> None:
        """Move time forward by `delta`; a monotonic clock never goes back, so negative deltas raise ValueError."""
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot go back ({delta})")
        self._now += delta
        self._monotonic += delta.total_seconds()
