"""The demo's warm-up: once the simulated events are loaded, build the 360° profiles and the tags.

`marketloop demo` serves at once while the demo bank's events load in the
background; customer search, profiles, tags and segments read the profile and
tag tables, so a thread waits for the loader to catch up, then refreshes both
(a few seconds for the 100,000-customer demo bank) and says so.
"""

from __future__ import annotations

import logging
import threading
import time

from marketloop.app.container import Container
from marketloop.cli.common import console

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


def start_warm_up(container: Container) -> threading.Thread:
    """Refresh profiles and tags in a daemon thread once the loader has no lag."""
    thread = threading.Thread(target=_warm_up, args=(container,), name="demo-warm-up", daemon=True)
    thread.start()
    return thread


def _caught_up(container: Container) -> bool:
    return all(container.loader.lag(p) <= 0 for p in range(container.log.partitions))


def _warm_up(container: Container) -> None:
    try:
        while not _caught_up(container):
            time.sleep(POLL_SECONDS)
        started = time.perf_counter()
        profiles = container.profiles.refresh()
        tags = container.tags.refresh()
        console.print(
            f"Demo profiles and tags ready in {time.perf_counter() - started:.0f} s "
            f"({profiles.customers:,} customers, {len(tags.stats):,} tags): search, profiles and segments are live."
        )
    except Exception:  # the server may be stopping under it; the demo keeps serving either way
        log.exception("the demo warm-up (profile and tag refresh) failed; run them from the API or CLI")
