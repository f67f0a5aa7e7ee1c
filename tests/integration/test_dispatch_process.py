"""The dispatcher process beside `marketloop serve`: started again when it dies, stopped with the server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.app import dispatch
from marketloop.app.dispatch import DispatcherProcess

pytestmark = pytest.mark.slow


def _wait(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_dispatcher_that_dies_is_started_again_and_stops_with_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "WATCH_SECONDS", 0.2)
    data = tmp_path / "data"
    data.mkdir()
    upgrade(create_engine(f"sqlite:///{data / 'state.sqlite'}"))  # as serve leaves it before starting the child
    child = DispatcherProcess(data, None)
    child.start()
    try:
        first = child._process
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        _wait(lambda: child.restarts == 1 and child._process is not first)
        second = child._process
        assert second is not None
        assert second.poll() is None
        assert os.getpriority(os.PRIO_PROCESS, second.pid) >= dispatch.NICENESS
    finally:
        child.stop()
    assert second.poll() is not None  # stopped (SIGTERM, drained) with the server
    assert child.restarts == 1
