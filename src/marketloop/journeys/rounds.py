"""A background thread that runs rounds of work: the stream processor's and the journey runner's loop.

After a round that handled something, the next starts at once; after an idle
round, after `poll_seconds` or as soon as `wake` is called (`pace_seconds` keeps a
busy loop from starting rounds more often than that, so each takes more work in
fewer transactions); after a failure (logged, nothing half-done was
committed by the caller's contract), after a pause that doubles up to 30 s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


class Rounds:
    """Runs `round` (returns how much it handled) in a daemon thread named `name` until `stop`."""

    def __init__(self, name: str, round: Callable[[], int], *, poll_seconds: float, pace_seconds: float = 0.0) -> None:
        self._name = name
        self._round = round
        self._poll = poll_seconds
        self._pace = pace_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name.replace(" ", "-"), daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = self._poll
        while not self._stop.is_set():
            try:
                handled = self._round()
            except Exception:
                # Nothing half-done was committed: the same work is tried again after the pause.
                log.exception("the %s failed; retrying in %.2f s", self._name, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = self._poll
            if handled and self._pace:  # gather work into fewer, larger transactions
                self._stop.wait(self._pace)
            if handled == 0:
                self._wake.wait(self._poll)
                self._wake.clear()

    def wake(self) -> None:
        """Start the next round now if the thread is idle (new work was committed for it)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread after its current round (the caller drains what is left)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
