"""Atheris (libFuzzer) harness for the event decoders: `python harness.py TARGET [libFuzzer flags] [corpus]`.

TARGET is `segment`, `sensors_form` or `sensors_query`. The contract under
test: whatever bytes arrive, a decoder returns or raises `MarketloopError`;
any other exception is a crash, and atheris exits non-zero with its traceback.

The first input byte picks a variant (the Segment endpoint; for Sensors, how
the rest is wrapped: a raw form or query string, or base64 / gzip+base64 in
`data` / `data_list`), so the fuzzer reaches the JSON decoding behind the
transport encodings instead of stopping at the first base64 error.
"""

from __future__ import annotations

import base64
import builtins
import gzip
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import atheris

with atheris.instrument_imports(include=["marketloop"]):
    from marketloop.collect.segment_spec import decode_segment
    from marketloop.collect.sensors_format import decode_sensors_form, decode_sensors_query
    from marketloop.core.errors import MarketloopError

RECEIVED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Known bugs the test tolerates while they are open (built-in exception names, comma-separated); see the test.
TOLERATED: tuple[type[BaseException], ...] = tuple(
    getattr(builtins, name) for name in os.environ.get("MARKETLOOP_FUZZ_TOLERATE", "").split(",") if name
)
ENDPOINTS = ("batch", "track", "identify", "page", "screen", "group", "alias")


def sensors_fields(data: bytes) -> dict[str, str]:
    """Query or form fields from fuzz input: the first byte picks the wrapping of the rest."""
    mode, rest = (data[0] % 5, data[1:]) if data else (0, b"")
    if mode == 0:
        return dict(parse_qsl(rest.decode("utf-8", errors="replace"), keep_blank_values=True))
    if mode == 1:
        return {"data": base64.b64encode(rest).decode(), "project": "default"}
    if mode == 2:
        return {"data": base64.b64encode(gzip.compress(rest, mtime=0)).decode(), "gzip": "1"}
    if mode == 3:
        return {"data_list": base64.b64encode(rest).decode()}
    return {"data_list": base64.b64encode(gzip.compress(rest, mtime=0)).decode(), "gzip": "1"}


def segment(data: bytes) -> None:
    endpoint = ENDPOINTS[data[0] % len(ENDPOINTS)] if data else "track"
    try:
        decode_segment(data[1:], endpoint=endpoint, received_at=RECEIVED_AT)
    except MarketloopError:
        pass
    except TOLERATED:
        pass


def sensors_form(data: bytes) -> None:
    fields = sensors_fields(data)
    body = urlencode(fields).encode() if data and data[0] % 5 else data[1:]
    try:
        decode_sensors_form(body, received_at=RECEIVED_AT, project=None, token=None)
    except MarketloopError:
        pass
    except TOLERATED:
        pass


def sensors_query(data: bytes) -> None:
    try:
        decode_sensors_query(sensors_fields(data), received_at=RECEIVED_AT)
    except MarketloopError:
        pass
    except TOLERATED:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "segment": segment,
    "sensors_form": sensors_form,
    "sensors_query": sensors_query,
}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
