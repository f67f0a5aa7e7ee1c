"""The outbox dispatcher in its own process (`marketloop dispatch`), started by `marketloop serve`.

Sending a touch (contact policy, compliance, the delivery ledger, the channel's
HTTP call, settling the outbox row) costs more interpreter time than deciding
it. In the server process it would take the interpreter from collection, the
stream processor and the journey walks, and an event's way to the outbox would
slow with every touch sent. So `serve` starts this process beside it (setting
`[stream] dispatcher = "process"`, the default): it opens only the operational
store and the channels (not the warehouse, which the server holds), sends the
touch rows of the outbox in paced batches and settles them; the server's own
dispatcher thread performs only tag updates (they write the warehouse).
Both processes work on the same outbox and ledger, so either may be killed at
any moment: the outbox row, the ledger claim and the provider's idempotency
key keep every touch to one. The child stops when the server asks (SIGTERM,
after a drain) and when it sees its parent gone.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from marketloop.adapters.clock import SystemClock
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.engine import create_engine
from marketloop.adapters.sql.journeys import SqlJourneyStore
from marketloop.app.channels import open_channels
from marketloop.app.settings import Settings, load_settings
from marketloop.journeys.outbox import OutboxDispatcher
from marketloop.journeys.rounds import Rounds
from marketloop.security.audit import AuditLog

log = logging.getLogger(__name__)
PARENT_CHECK_SECONDS = 1.0
NICENESS = 10
# A round every quarter second, up to 1,000 touches each (4,000/s): each round is a few write transactions on
# the store the server writes too, and fewer, larger ones keep the server's commits from waiting on them.
PACE_SECONDS = 0.25
BATCH = 1000
STOP_SECONDS = 60.0
WATCH_SECONDS = 5.0  # how often the server checks that its dispatcher process runs


def run_dispatcher(settings: Settings, stop: threading.Event, *, parent: int | None = None) -> None:
    """Send the outbox's touches until `stop` is set (or the parent process is gone)."""
    engine = create_engine(settings.state_url)
    clock = SystemClock()
    channels = open_channels(settings, engine, clock, AuditLog(SqlAuditStore(engine), clock))
    sends = channels.sends
    dispatcher = OutboxDispatcher(
        SqlJourneyStore(engine), sends.send_many, sends.send, clock, channels="touches", batch=BATCH
    )
    rounds = Rounds(
        "journey dispatcher", dispatcher.dispatch_once, poll_seconds=PACE_SECONDS, pace_seconds=PACE_SECONDS
    )
    rounds.start()
    try:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if parent is not None and os.getppid() != parent:
                log.warning("the server process is gone: the dispatcher stops")
                break
    finally:
        rounds.stop()
        for _ in range(1000):  # drain what is due now, bounded (a deferred touch waits for the next start)
            if dispatcher.dispatch_once() == 0:
                break
        channels.close()
        engine.dispose()


class DispatcherProcess:
    """`marketloop dispatch` as a child of this process, with the same data directory and settings file."""

    def __init__(self, data_dir: Path, config: Path | None) -> None:
        # this module, not the CLI: importing every command costs seconds of CPU the server needs
        self._args = [sys.executable, "-m", "marketloop.app.dispatch", "--data-dir", str(data_dir)]
        if config is not None:
            self._args += ["--config", str(config)]
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start the child, and a watchdog that starts it again (after a pause) if it ever exits by itself."""
        self._stopping.clear()
        self._spawn()
        self._watch = threading.Thread(target=self._watchdog, name="dispatcher-watchdog", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        env = os.environ | {"MARKETLOOP_DISPATCH_PARENT": str(os.getpid())}
        self._process = subprocess.Popen(self._args, env=env, stdin=subprocess.DEVNULL)
        # sending can wait a moment; collection, the stream processor and the walks cannot: on a busy machine the
        # server goes first (the child's start-up imports alone are seconds of CPU)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, self._process.pid, NICENESS)

    def _watchdog(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            process = self._process
            if process is None or process.poll() is None:
                continue
            log.error("the dispatcher process exited (code %s): starting it again", process.returncode)
            self.restarts += 1
            self._spawn()

    def stop(self) -> None:
        """Ask it to drain and stop (SIGTERM); killed if it has not stopped within a minute."""
        self._stopping.set()
        if self._watch is not None:
            self._watch.join()
            self._watch = None
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("the dispatcher process did not stop in %.0f s: killed", STOP_SECONDS)
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    """`python -m marketloop.app.dispatch --data-dir DIR [--config FILE]`: what `marketloop dispatch` runs."""
    parser = argparse.ArgumentParser(description="Send the journeys' outbox until SIGTERM, then drain.")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)
    serve_dispatcher(load_settings(args.config, data_dir=args.data_dir))


def serve_dispatcher(settings: Settings) -> None:
    """Run the dispatcher in this process until SIGTERM / SIGINT (or the parent `serve` is gone)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.environ.get("MARKETLOOP_DISPATCH_PARENT")
    run_dispatcher(settings, stop, parent=int(parent) if parent else None)


if __name__ == "__main__":
    main()
