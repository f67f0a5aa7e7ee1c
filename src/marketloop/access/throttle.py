"""Login throttling (登录限制): after N failed logins for a user or from an address, refuse for a while.

Failures are counted per username and per client address in a sliding
window; reaching the limit locks that key for the lockout time, even for
the right password (so guessing cannot continue). A success clears the
user's count. In-process state: with several API processes each counts its
own (the scale-out column keeps it in Redis, not built yet).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.clock import Clock

MAX_KEYS = 100_000


@dataclass(frozen=True, kw_only=True)
class ThrottleRules:
    max_failures_per_user: int = 5
    max_failures_per_client: int = 20
    window_seconds: float = 900.0
    lockout_seconds: float = 900.0


class LoginThrottle:
    """Counts failures per key ("user:alice", "client:10.0.0.1"); see the module docstring."""

    def __init__(self, clock: Clock, rules: ThrottleRules = ThrottleRules()) -> None:
        self._clock = clock
        self._rules = rules
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def check(self, username: str, client: str) -> None:
        """Raise `MarketloopError` (forbidden, code access.locked-out) while either key is locked."""
        now = self._clock.monotonic()
        for key in (f"user:{username}", f"client:{client}"):
            until = self._locked_until.get(key)
            if until is not None and now < until:
                raise MarketloopError(
                    kind=ErrorKind.FORBIDDEN,
                    code="access.locked-out",
                    title="Too many failed logins; try again later",
                    detail=f"locked for {int(until - now) + 1} more seconds",
                )

    def failed(self, username: str, client: str) -> bool:
        """Count a failure; True when it locked the user or the client."""
        rules = self._rules
        user = self._count(f"user:{username}", rules.max_failures_per_user)
        address = self._count(f"client:{client}", rules.max_failures_per_client)
        return user or address

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"user:{username}", None)

    def _count(self, key: str, limit: int) -> bool:
        now = self._clock.monotonic()
        if len(self._failures) > MAX_KEYS:
            self._failures.clear()
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while times and now - times[0] > self._rules.window_seconds:
            times.popleft()
        if len(times) < limit:
            return False
        if len(self._locked_until) > MAX_KEYS:  # many names tried: forget the lockouts that ended
            self._locked_until = {k: until for k, until in self._locked_until.items() if until > now}
        self._locked_until[key] = now + self._rules.lockout_seconds
        times.clear()
        return True
