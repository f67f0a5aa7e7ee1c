"""Real `marketloop` processes for integration tests: the CLI, and a server to start, kill and stop.

    key = create_source(data_dir, "mobile-banking")
    server = ServerProcess(data_dir)
    try:
        server.start()              # returns once /healthz answers
        ...                         # httpx against server.url
        assert server.stop() == 0   # SIGTERM: drained and exited 0
    finally:
        server.cleanup()            # kills it if a test failed half-way

Every process runs in the data directory's parent with no `MARKETLOOP_*`
variables, so a developer's `marketloop.toml` or environment cannot change
what the tests see. Needs httpx (the `dev` extra).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class ServerProcessError(RuntimeError):
    """A marketloop process did not start, answer or stop as expected; the message carries its output."""


def marketloop_command() -> list[str]:
    """The installed `marketloop` script next to this Python, or `python -m marketloop`."""
    script = Path(sys.executable).with_name("marketloop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "marketloop"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETLOOP_")}
    env["NO_COLOR"] = "1"
    return env


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`marketloop ARGS --data-dir DATA_DIR`; with `check`, a failure shows the command's output."""
    data_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [*marketloop_command(), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
        env=_environment(),
        check=False,
    )
    if check and done.returncode != 0:
        raise ServerProcessError(f"marketloop {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def cli_json(data_dir: Path, *args: str) -> Any:
    return json.loads(cli(data_dir, *args, "--json").stdout)


def create_source(data_dir: Path, name: str) -> str:
    """Create a source with the CLI; returns its write key."""
    key: str = cli_json(data_dir, "sources", "create", name)["write_key"]
    return key


class ServerProcess:
    """`marketloop serve` on a data directory and a port; restartable on both after a kill."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the server and wait until `/healthz` answers; fails with the server's output."""
        if self.running:
            raise ServerProcessError("the server is already running")
        self._close_log()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [*marketloop_command(), "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
            env=_environment(),
            start_new_session=True,
        )
        self.starts += 1
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.url, timeout=1.0) as client:
            while True:
                if self._process is None or self._process.poll() is not None:
                    code = None if self._process is None else self._process.returncode
                    raise ServerProcessError(f"the server exited {code}:\n{self.output()}")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ServerProcessError(f"the server was not healthy within {START_TIMEOUT} s:\n{self.output()}")
                time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, then wait for the graceful drain; returns the exit code."""
        return self._end(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL: a crash at whatever the server was doing; returns the exit code."""
        return self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> int:
        process = self._process
        if process is None:
            raise ServerProcessError("the server was never started")
        if process.poll() is None:
            process.send_signal(sig)
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise ServerProcessError(
                f"the server did not exit within {STOP_TIMEOUT} s of {sig.name}:\n{self.output()}"
            ) from None
        finally:
            self._close_log()
        return code

    def cleanup(self) -> None:
        """Kill the server if it still runs (a test failed half-way); safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
