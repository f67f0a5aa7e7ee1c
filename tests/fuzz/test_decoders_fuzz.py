"""Fuzzing the event decoders: only `MarketloopError` may ever escape them.

Two fuzzers, bounded so they run in CI on every change:

- atheris (coverage-guided libFuzzer), `harness.py` in a subprocess for
  `FUZZ_SECONDS` per decoder from a small seed corpus; a crash prints the
  input and traceback and fails the test (set MARKETLOOP_FUZZ_SECONDS for a
  longer run);
- hypothesis byte fuzzing in-process, derandomised, with the same contract
  and the same input wrappings (runs also where atheris has no wheel).
"""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketloop.collect.segment_spec import decode_segment
from marketloop.collect.sensors_format import decode_sensors_form, decode_sensors_query
from marketloop.core.errors import MarketloopError

RECEIVED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HARNESS = Path(__file__).with_name("harness.py")
# Exceptions other than MarketloopError the decoders may let out: none. (These fuzzers found msgspec's
# UnicodeDecodeError for invalid UTF-8 inside a JSON string escaping as a 500; both decoders now catch it.)
KNOWN_ESCAPES: tuple[type[BaseException], ...] = ()
FUZZ_SECONDS = int(os.environ.get("MARKETLOOP_FUZZ_SECONDS", "3"))
ENDPOINTS = ("batch", "track", "identify", "page", "screen", "group", "alias")
SEGMENT_EVENT = {"type": "track", "userId": "C0001", "event": "fund_page_view", "properties": {"fund": "F1", "n": 1.5}}
SENSORS_EVENT = {
    "type": "track",
    "event": "ViewProduct",
    "distinct_id": "C0001",
    "time": 1767600000000,
    "properties": {"$os": "iOS", "product_id": "W1"},
}


def seeds() -> dict[str, list[bytes]]:
    segment_json = orjson.dumps(SEGMENT_EVENT)
    sensors_json = orjson.dumps(SENSORS_EVENT)
    return {
        "segment": [
            bytes([1]) + segment_json,
            bytes([0]) + orjson.dumps({"batch": [SEGMENT_EVENT, {"type": "identify", "userId": "C2", "traits": {}}]}),
            bytes([6]) + orjson.dumps({"previousId": "a1", "userId": "C1"}),
        ],
        "sensors_form": [
            bytes([0]) + b"data=" + base64.b64encode(sensors_json) + b"&project=default",
            bytes([1]) + sensors_json,
            bytes([2]) + sensors_json,
            bytes([3]) + orjson.dumps([SENSORS_EVENT, {"type": "profile_set", "distinct_id": "C1", "properties": {}}]),
        ],
        "sensors_query": [
            bytes([0]) + b"data=" + base64.b64encode(sensors_json) + b"&project=default&ext=crc%3D1",
            bytes([1]) + sensors_json,
            bytes([4]) + orjson.dumps([SENSORS_EVENT]),
        ],
    }


@pytest.mark.slow
@pytest.mark.parametrize("target", ["segment", "sensors_form", "sensors_query"])
def test_atheris_finds_no_crash(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris has no wheel for this platform; the hypothesis fuzzer still runs")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n, seed in enumerate(seeds()[target]):
        (corpus / f"seed{n}").write_bytes(seed)
    command = [
        sys.executable, str(HARNESS), target,
        f"-max_total_time={FUZZ_SECONDS}", "-seed=1", "-timeout=10", "-rss_limit_mb=2048", "-max_len=4096",
        f"-artifact_prefix={tmp_path}/", str(corpus),
    ]  # fmt: skip
    environment = {**os.environ, "MARKETLOOP_FUZZ_TOLERATE": ",".join(e.__name__ for e in KNOWN_ESCAPES)}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, check=False, env=environment
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr, result.stderr[-2000:]  # libFuzzer's closing line: it really ran


def _sensors_fields(mode: int, rest: bytes) -> dict[str, str]:
    if mode == 0:
        return {"data": rest.decode("utf-8", errors="replace")}
    if mode == 1:
        return {"data": base64.b64encode(rest).decode()}
    if mode == 2:
        return {"data": base64.b64encode(gzip.compress(rest, mtime=0)).decode(), "gzip": "1"}
    return {"data_list": base64.b64encode(rest).decode()}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
segment_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*ENDPOINTS, "x", ""]) | json_values,
        "userId": st.text(max_size=5) | json_values,
        "anonymousId": json_values,
        "event": json_values,
        "properties": json_values,
        "traits": json_values,
        "context": json_values,
        "timestamp": st.sampled_from(["2026-01-05T09:00:00Z", "not a time", "9999-99-99"]) | json_values,
        "messageId": json_values,
        "batch": st.lists(json_values, max_size=3),
        "distinct_id": json_values,
        "time": st.integers(-(2**63), 2**63 - 1) | json_values,
    },
)
json_payloads = segment_like.map(orjson.dumps) | st.lists(segment_like, max_size=3).map(orjson.dumps)


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """Valid JSON with one byte replaced, often by a byte that is not valid UTF-8."""
    payload = bytearray(draw(json_payloads))
    position = draw(st.integers(0, len(payload) - 1))
    payload[position] = draw(st.integers(0x80, 0xFF) | st.integers(0, 0xFF))
    return bytes(payload)


payloads = st.binary(max_size=512) | json_payloads | corrupted()
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _only_domain_errors(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except MarketloopError:
        pass
    except KNOWN_ESCAPES:
        pass


INVALID_UTF8 = b'{"type":"track","userId":"\xb10001","event":"e"}'


@pytest.mark.parametrize("decoder", ["segment", "sensors"])
def test_invalid_utf8_inside_a_string_is_a_domain_error(decoder: str) -> None:
    data = base64.b64encode(INVALID_UTF8.replace(b"userId", b"distinct_id")).decode()
    decode = {
        "segment": lambda: decode_segment(INVALID_UTF8, endpoint="track", received_at=RECEIVED_AT),
        "sensors": lambda: decode_sensors_query({"data": data}, received_at=RECEIVED_AT),
    }[decoder]
    with pytest.raises(MarketloopError):
        decode()


@FUZZ
@given(body=payloads, endpoint=st.sampled_from(ENDPOINTS))
def test_segment_decoder_raises_only_domain_errors(body: bytes, endpoint: str) -> None:
    _only_domain_errors(lambda: decode_segment(body, endpoint=endpoint, received_at=RECEIVED_AT))


@FUZZ
@given(payload=payloads, mode=st.integers(0, 3), raw_form=st.binary(max_size=200))
def test_sensors_form_decoder_raises_only_domain_errors(payload: bytes, mode: int, raw_form: bytes) -> None:
    body = urlencode(_sensors_fields(mode, payload)).encode()
    _only_domain_errors(lambda: decode_sensors_form(body, received_at=RECEIVED_AT, project=None, token=None))
    _only_domain_errors(lambda: decode_sensors_form(raw_form, received_at=RECEIVED_AT, project="p", token="t"))


@FUZZ
@given(payload=payloads, mode=st.integers(0, 3), extra=st.dictionaries(st.text(max_size=8), st.text(max_size=20)))
def test_sensors_query_decoder_raises_only_domain_errors(payload: bytes, mode: int, extra: dict[str, str]) -> None:
    fields = {**extra, **_sensors_fields(mode, payload)}
    _only_domain_errors(lambda: decode_sensors_query(fields, received_at=RECEIVED_AT))
