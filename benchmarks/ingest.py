"""Ingest throughput and latency of `marketloop serve`, against a raw ASGI baseline in the same run.

What it does, as a user would: create a data directory and a source with the CLI,
start `marketloop serve` (the production uvicorn settings), then drive it with wrk
(a separate process; Lua scripts in benchmarks/lua generate every request, with a
fresh messageId per event so dedupe does real work):

1. batched: POST /v1/batch, 100 bank track events (~420 bytes each) per request,
   Basic auth, as many connections as it takes to saturate, after a short warm-up;
2. single: POST /v1/track, one event per request, paced at a fixed 2,000 requests/s
   (a per-thread send schedule in Lua, so a slow answer does not hide later ones);
3. stop the server with SIGTERM (it drains the loader), and check with
   `marketloop events count` that the warehouse holds exactly the events that got a 200;
4. raw: the same batched load against benchmarks/raw_app.py, a bare ASGI app served
   with the same uvicorn config, that reads the body and answers 200.

Prints one JSON line. `--quick` is a short smoke run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUA = HERE / "lua" / "segment_batch.lua"
BIN = Path(sys.executable).parent
MARKETLOOP = str(BIN / "marketloop")
WRK = shutil.which("wrk") or "/usr/bin/wrk"

TARGET_EVENTS_PER_S = 150_000
TARGET_SINGLE_P99_MS = 20.0
EVENTS_PER_REQUEST = 100
# wrk runs this long past the send window, so every request sent gets its answer; less than
# uvicorn's keep-alive timeout (5 s), or the server closing idle connections counts as errors.
GRACE_S = 4.0


@dataclass(frozen=True, kw_only=True)
class Load:
    """One wrk run: what it sent, for how long, and what came back."""

    path: str
    seconds: float
    connections: int
    per_request: int
    rate: float = 0.0  # requests/s in total; 0 = as fast as the server answers


@dataclass(frozen=True, kw_only=True)
class Result:
    requests: int
    non_2xx: int
    socket_errors: int
    timeouts: int
    window_s: float
    late: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    wrk_cpu_s: float
    per_request: int

    @property
    def ok_requests(self) -> int:
        return self.requests - self.non_2xx

    @property
    def request_rate(self) -> float:
        return self.requests / self.window_s if self.window_s > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.ok_requests * max(self.per_request, 1) / self.window_s if self.window_s > 0 else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, load: Load, authorization: str) -> Result:
    """Run wrk with the Lua script; nothing is in flight when it stops (the script goes idle first)."""
    nonce = random.getrandbits(31)
    command = [
        WRK,
        "-t1",
        f"-c{load.connections}",
        f"-d{load.seconds + GRACE_S:.0f}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{load.path}",
        "--",
        authorization,
        str(nonce),
        f"{load.seconds}",
        str(load.per_request),
        f"{load.rate}",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if not lines:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    raw: dict[str, Any] = json.loads(lines[-1].removeprefix("WRK_RESULT "))
    return Result(
        requests=raw["requests"],
        non_2xx=raw["non_2xx"],
        socket_errors=raw["socket_errors"],
        timeouts=raw["timeouts"],
        window_s=raw["window_s"],
        late=raw["late"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        wrk_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        per_request=load.per_request,
    )


def marketloop(*args: str) -> Any:
    completed = subprocess.run([MARKETLOOP, *args], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def stop(process: subprocess.Popen[bytes], timeout: float = 900.0) -> float:
    """SIGTERM, then wait for the drain; returns the seconds it took."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"the server did not stop within {timeout} s of SIGTERM") from None
    return time.monotonic() - started


def start(command: list[str], log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/healthz", process)
    return process


def batched(path: str, args: argparse.Namespace, seconds: float) -> Load:
    return Load(path=path, seconds=seconds, connections=args.connections, per_request=EVENTS_PER_REQUEST)


def bench_product(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    source = marketloop("sources", "create", "bench", "--json", "--data-dir", str(data_dir))
    authorization = "Basic " + base64.b64encode(f"{source['write_key']}:".encode()).decode()
    port = free_port()
    server = start(
        [MARKETLOOP, "serve", "--data-dir", str(data_dir), "--port", str(port)], data_dir.parent / "serve.log", port
    )
    try:
        warm = run_wrk(port, batched("/v1/batch", args, args.warmup), authorization)
        # The server's CPU over the send window only, not while the loader catches up after it.
        cpu = [cpu_seconds(server.pid)]
        window_end = threading.Timer(args.duration, lambda: cpu.append(cpu_seconds(server.pid)))
        window_end.start()
        main = run_wrk(port, batched("/v1/batch", args, args.duration), authorization)
        window_end.join()
        server_cpu = cpu[1] - cpu[0]
        time.sleep(args.settle)
        single = run_wrk(
            port,
            Load(path="/v1/track", seconds=args.single_duration, connections=64, per_request=0, rate=args.single_rate),
            authorization,
        )
    finally:
        drain_s = stop(server)
    loaded = marketloop("events", "count", "--json", "--data-dir", str(data_dir))["count"]
    acked = sum(r.ok_requests * max(r.per_request, 1) for r in (warm, main, single))
    return {
        "main": main,
        "single": single,
        "server_cpu_cores": server_cpu / args.duration,
        "drain_s": drain_s,
        "loaded": loaded,
        "acked": acked,
        "server_exit": server.returncode,
    }


def bench_raw(args: argparse.Namespace, data_dir: Path) -> Result:
    port = free_port()
    server = start(
        [str(BIN / "python"), str(HERE / "raw_app.py"), "--port", str(port)], data_dir.parent / "raw.log", port
    )
    try:
        run_wrk(port, batched("/v1/batch", args, args.warmup), "Basic eDo=")
        return run_wrk(port, batched("/v1/batch", args, args.duration), "Basic eDo=")
    finally:
        stop(server)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ingest benchmark of marketloop serve; prints one JSON line.")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of batched load [12]")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before each batched run [3]")
    parser.add_argument("--single-duration", type=float, default=10.0, help="seconds of paced single events [10]")
    parser.add_argument("--single-rate", type=float, default=2000.0, help="single-event requests/s [2000]")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for batched load [64]")
    parser.add_argument("--settle", type=float, default=2.0, help="pause between batched and single runs [2]")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (a few seconds each)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and server logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.single_duration, args.settle = 3.0, 1.0, 3.0, 1.0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="marketloop-bench-"))
    data_dir = work / "data"
    try:
        product = bench_product(args, data_dir)
        raw = bench_raw(args, data_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    main_run: Result = product["main"]
    single: Result = product["single"]
    events_per_s = main_run.events_per_s
    result = {
        "events_per_s": round(events_per_s),
        "p50_ms": round(main_run.p50_ms, 2),
        "p99_ms": round(main_run.p99_ms, 2),
        "single_event_p99_ms": round(single.p99_ms, 2),
        "single_event_p50_ms": round(single.p50_ms, 2),
        "single_event_rate": round(single.request_rate),
        "single_event_late_sends": single.late,
        "raw_events_per_s": round(raw.events_per_s),
        "raw_p99_ms": round(raw.p99_ms, 2),
        "ratio_to_raw": round(events_per_s / raw.events_per_s, 3) if raw.events_per_s else None,
        "loaded_events": product["loaded"],
        "acked_events": product["acked"],
        "verified": product["loaded"] == product["acked"] and product["server_exit"] in (0, -signal.SIGTERM),
        "errors": {
            name: {"non_2xx": r.non_2xx, "socket": r.socket_errors, "timeouts": r.timeouts}
            for name, r in (("batched", main_run), ("single", single), ("raw", raw))
        },
        "server_cpu_cores": round(product["server_cpu_cores"], 2),
        "server_cpu_us_per_event": round(product["server_cpu_cores"] * 1e6 / events_per_s, 2) if events_per_s else None,
        "wrk_cpu_cores": round(main_run.wrk_cpu_s / main_run.window_s, 2),
        "raw_wrk_cpu_cores": round(raw.wrk_cpu_s / raw.window_s, 2),
        "drain_s": round(product["drain_s"], 2),
        # Other processes on the machine skew every figure; the raw baseline shares the skew.
        "load_avg_1m_before": round(load_before, 2),
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
        "connections": args.connections,
        "events_per_request": EVENTS_PER_REQUEST,
        "targets": {"events_per_s": TARGET_EVENTS_PER_S, "single_event_p99_ms": TARGET_SINGLE_P99_MS},
        "meets_targets": events_per_s >= TARGET_EVENTS_PER_S and single.p99_ms <= TARGET_SINGLE_P99_MS,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
