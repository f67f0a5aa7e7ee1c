"""Sensors Analytics wire format: encodings, type mapping, identity, skew correction, errors by index."""

from __future__ import annotations

import base64
import gzip
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest

from marketloop.collect.sensors_format import decode_sensors_form, decode_sensors_query
from marketloop.collect.wire import MAX_BATCH_BYTES, MAX_EVENT_BYTES, UNKNOWN_SOURCE
from marketloop.core.errors import ErrorKind, MarketloopError

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ACTED_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z on the device clock
ACTED = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)


def track(**fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": "$pageview",
        "distinct_id": "anon-1",
        "time": ACTED_MS,
        "_track_id": 123,
        "properties": {"$os": "iOS", "$url": "https://bank.example/fund"},
    }
    message.update(fields)
    return message


def b64(value: Any, *, compress: bool = False) -> str:
    raw = orjson.dumps(value)
    return base64.b64encode(gzip.compress(raw) if compress else raw).decode()


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def post(body: bytes, project: str | None = "default", token: str | None = "tok") -> Any:
    return decode_sensors_form(body, received_at=NOW, project=project, token=token)


def post_one(message: dict[str, Any], **fields: str) -> Any:
    return post(form(data=b64(message), **fields))


def error_of(body: bytes) -> MarketloopError:
    with pytest.raises(MarketloopError) as caught:
        post(body)
    return caught.value


# --- type mapping -------------------------------------------------------------------------------


def test_track_keeps_name_properties_and_library_and_corrects_clock_skew() -> None:
    message = track(_flush_time=ACTED_MS + 10_000, lib={"$lib": "js", "$lib_version": "1.26.0"}, project="wealth")
    inbound = post_one(message)
    (event,) = inbound.events
    assert event.type == "track"
    assert event.event == "$pageview"
    assert event.source_id == UNKNOWN_SOURCE
    assert event.properties == {"$os": "iOS", "$url": "https://bank.example/fund"}
    assert event.anonymous_id == "anon-1"
    assert event.user_id is None
    assert event.original_timestamp == ACTED
    assert event.sent_at == ACTED + timedelta(seconds=10)
    # The device clock is a year behind: receivedAt - (_flush_time - time).
    assert event.timestamp == NOW - timedelta(seconds=10)
    assert event.received_at == NOW
    assert event.context["library"] == {"$lib": "js", "$lib_version": "1.26.0"}
    assert event.context["sensors"] == {
        "type": "track",
        "event": "$pageview",
        "distinct_id": "anon-1",
        "project": "wealth",
        "track_id": 123,
    }
    assert uuid.UUID(event.message_id).version == 5


def test_track_without_flush_time_keeps_device_time_and_without_time_takes_receive_time() -> None:
    (event,) = post_one(track()).events
    assert event.timestamp == ACTED
    assert event.sent_at is None
    untimed = track()
    del untimed["time"]
    (event,) = post_one(untimed).events
    assert event.timestamp == NOW
    assert event.original_timestamp is None


def test_track_signup_becomes_alias_from_the_anonymous_to_the_login_id() -> None:
    message = {
        "type": "track_signup",
        "event": "$SignUp",
        "distinct_id": "C0001",
        "original_id": "anon-1",
        "time": ACTED_MS,
        "properties": {"channel": "app"},
    }
    (event,) = post_one(message).events
    assert event.type == "alias"
    assert event.user_id == "C0001"
    assert event.previous_id == "anon-1"
    assert event.anonymous_id == "anon-1"
    assert event.event is None
    assert event.properties == {"channel": "app"}
    assert event.context["sensors"]["event"] == "$SignUp"


@pytest.mark.parametrize(
    ("kind", "op"),
    [
        ("profile_set", "set"),
        ("profile_set_once", "set_once"),
        ("profile_increment", "increment"),
        ("profile_append", "append"),
        ("profile_unset", "unset"),
        ("profile_delete", "delete"),
    ],
)
def test_profile_types_become_identify_with_their_profile_op(kind: str, op: str) -> None:
    message = {"type": kind, "distinct_id": "C0001", "login_id": "C0001", "time": ACTED_MS, "properties": {"vip": 3}}
    (event,) = post_one(message).events
    assert event.type == "identify"
    assert event.profile_op == op
    assert event.traits == {"vip": 3}
    assert event.properties == {}
    assert event.user_id == "C0001"
    assert event.event is None


def test_profile_delete_without_properties_has_no_traits() -> None:
    (event,) = post_one({"type": "profile_delete", "distinct_id": "anon-9", "time": ACTED_MS}).events
    assert event.profile_op == "delete"
    assert event.traits == {}
    assert event.anonymous_id == "anon-9"


# --- identity -----------------------------------------------------------------------------------


def test_login_id_is_the_user_and_anonymous_id_field_the_anonymous_id() -> None:
    (event,) = post_one(track(distinct_id="C0001", login_id="C0001", anonymous_id="dev-7")).events
    assert (event.user_id, event.anonymous_id) == ("C0001", "dev-7")


def test_identities_supply_login_and_anonymous_ids() -> None:
    identities = {"$identity_login_id": "C0002", "$identity_anonymous_id": "dev-8", "$identity_android_id": "a1"}
    (event,) = post_one(track(distinct_id="C0002", identities=identities)).events
    assert (event.user_id, event.anonymous_id) == ("C0002", "dev-8")
    assert event.context["sensors"]["identities"] == identities


def test_logged_in_distinct_id_without_anonymous_id_is_not_taken_as_anonymous() -> None:
    (event,) = post_one(track(distinct_id="C0003", login_id="C0003")).events
    assert (event.user_id, event.anonymous_id) == ("C0003", None)


def test_is_login_id_property_marks_distinct_id_as_the_login_id() -> None:
    (event,) = post_one(track(distinct_id="C0004", properties={"$is_login_id": True})).events
    assert (event.user_id, event.anonymous_id) == ("C0004", None)


def test_numeric_ids_become_text() -> None:
    (event,) = post_one(track(distinct_id=42)).events
    assert event.anonymous_id == "42"


# --- credentials --------------------------------------------------------------------------------


def test_query_project_and_token_win_over_the_event_fields() -> None:
    inbound = post(form(data=b64(track(project="p-event", token="t-event"))), project="p-query", token="t-query")
    assert (inbound.write_key, inbound.project) == ("t-query", "p-query")


def test_event_project_and_token_are_used_when_the_query_has_none() -> None:
    inbound = post(form(data=b64(track(project="p-event", token="t-event"))), project=None, token=None)
    assert (inbound.write_key, inbound.project) == ("t-event", "p-event")
    # The token is a credential: it never reaches the event log.
    assert "token" not in inbound.events[0].context["sensors"]


def test_form_project_and_token_fields_are_a_fallback() -> None:
    inbound = post(form(data=b64(track()), project="p-form", token="t-form"), project=None, token=None)
    assert (inbound.write_key, inbound.project) == ("t-form", "p-form")


# --- encodings ----------------------------------------------------------------------------------

ODD = track(properties={"fund": "基金>>??~~ÿ???>>>!"})  # its base64 has '+', '/' and '=' in it


def test_plain_standard_and_url_safe_base64() -> None:
    standard = b64(ODD)
    assert "+" in standard
    assert "/" in standard
    assert standard.endswith("=")
    url_safe = standard.replace("+", "-").replace("/", "_").rstrip("=")
    for encoded in (standard, url_safe):
        (event,) = post(form(data=encoded)).events
        assert event.properties == ODD["properties"]


def test_unescaped_plus_read_as_space_and_double_percent_encoding() -> None:
    standard = b64(ODD)
    unescaped = f"data={standard}".encode()  # a client that forgot to percent-encode: '+' arrives as ' '
    double = f"data={quote(quote(standard, safe=''), safe='')}".encode()
    for body in (unescaped, double):
        (event,) = post(body).events
        assert event.properties == ODD["properties"]


def test_gzip_data_and_data_list() -> None:
    (event,) = post(form(data=b64(ODD, compress=True), gzip="1", crc="-12345")).events
    assert event.properties == ODD["properties"]
    inbound = post(form(data_list=b64([ODD, track(event="login")], compress=True), gzip="1"))
    assert [e.event for e in inbound.events] == ["$pageview", "login"]


def test_gzip_payload_without_the_gzip_flag_is_still_read() -> None:
    (event,) = post(form(data=b64(ODD, compress=True))).events
    assert event.event == "$pageview"


def test_web_beacon_query() -> None:
    params = {"project": "default", "token": "tok", "data": b64(track()), "ext": "crc=123"}
    inbound = decode_sensors_query(params, received_at=NOW)
    assert (inbound.write_key, inbound.project) == ("tok", "default")
    assert [e.event for e in inbound.events] == ["$pageview"]


# --- batches and rejections ---------------------------------------------------------------------


def test_data_list_keeps_good_events_and_reports_bad_ones_by_index() -> None:
    messages = [
        track(event="login"),
        track(event=None),
        {"type": "teleport", "distinct_id": "x"},
        {"type": "track_id_bind", "distinct_id": "x", "identities": {"$identity_login_id": "C1"}},
        track(distinct_id=None),
        track(time="yesterday"),
        track(time=-1),
        {"type": "track_signup", "distinct_id": "C1", "time": ACTED_MS},
        "not an object",
        {"type": "profile_set", "distinct_id": "C1", "properties": {"vip": 1}},
    ]
    inbound = post(form(data_list=b64(messages)))
    assert [(e.type, e.event) for e in inbound.events] == [("track", "login"), ("identify", None)]
    assert [(r.index, r.pointer) for r in inbound.rejected] == [
        (1, "/data_list/1/event"),
        (2, "/data_list/2/type"),
        (3, "/data_list/3/type"),
        (4, "/data_list/4/distinct_id"),
        (5, "/data_list/5/time"),
        (6, "/data_list/6/time"),
        (7, "/data_list/7/original_id"),
        (8, "/data_list/8"),
    ]
    assert "track_id_bind" in inbound.rejected[2].detail
    assert "not supported" in inbound.rejected[2].detail


def test_empty_data_list_is_an_empty_inbound() -> None:
    inbound = post(form(data_list=b64([])))
    assert inbound.received == 0


def test_oversize_event_in_a_list_is_rejected_by_index() -> None:
    big = track(properties={"blob": "x" * MAX_EVENT_BYTES})
    inbound = post(form(data_list=b64([track(), big, track()])))
    assert len(inbound.events) == 2
    ((rejected),) = inbound.rejected
    assert (rejected.index, rejected.pointer) == (1, "/data_list/1")
    assert str(MAX_EVENT_BYTES) in rejected.detail


def test_oversize_single_event_is_too_large() -> None:
    error = error_of(form(data=b64(track(properties={"blob": "x" * MAX_EVENT_BYTES}))))
    assert error.kind == ErrorKind.TOO_LARGE


def test_gzip_bomb_is_too_large_without_inflating_it_all() -> None:
    bomb = base64.b64encode(gzip.compress(b"[" + b" " * (MAX_BATCH_BYTES * 4) + b"]")).decode()
    error = error_of(form(data_list=bomb, gzip="1"))
    assert error.kind == ErrorKind.TOO_LARGE


def test_invalid_single_event_raises_with_its_pointer() -> None:
    error = error_of(form(data=b64(track(event=""))))
    assert error.kind == ErrorKind.INVALID
    assert error.code == "collect.invalid-event"
    assert [e.pointer for e in error.errors] == ["/data/event"]


def test_single_event_without_any_id_raises() -> None:
    error = error_of(form(data=b64({"type": "track", "event": "e"})))
    assert error.code == "collect.invalid-event"
    assert error.errors[0].pointer == "/data/distinct_id"


@pytest.mark.parametrize(
    ("body", "kind", "fragment"),
    [
        (b"", ErrorKind.INVALID, "empty"),
        (b"  \n", ErrorKind.INVALID, "empty"),
        (b"crc=1&gzip=1", ErrorKind.INVALID, "no data"),
        (b"data=", ErrorKind.INVALID, "empty"),
        (b"data=%%%%", ErrorKind.INVALID, "base64"),
        (b"data=abc$def", ErrorKind.INVALID, "base64"),
        (b"data=a", ErrorKind.INVALID, "base64"),
        (form(data=b64(track()), gzip="1"), ErrorKind.INVALID, "gzip"),
        (form(data=base64.b64encode(gzip.compress(b"{}")[:-6]).decode(), gzip="1"), ErrorKind.INVALID, "truncated"),
        (form(data=base64.b64encode(b"{not json").decode()), ErrorKind.INVALID, "JSON object"),
        (form(data=b64([track()])), ErrorKind.INVALID, "JSON object"),
        (form(data_list=b64(track())), ErrorKind.INVALID, "JSON array"),
        (form(data_list=base64.b64encode(b"[{").decode()), ErrorKind.INVALID, "valid JSON"),
        (form(data=b64(track()), data_list=b64([track()])), ErrorKind.INVALID, "both"),
        (form(data='{"key_id": 1, "payload": "..."}', gzip="9"), ErrorKind.INVALID, "encrypted"),
        (form(data=b64(track()), gzip="2"), ErrorKind.INVALID, "gzip"),
        (b"\xff\xfe", ErrorKind.INVALID, "form"),
        (b"data=" + b"A" * (3 * MAX_BATCH_BYTES), ErrorKind.TOO_LARGE, "limit"),
        (form(data=base64.b64encode(b" " * (MAX_BATCH_BYTES + 1)).decode()), ErrorKind.TOO_LARGE, "limit"),
    ],
)
def test_unreadable_bodies_raise(body: bytes, kind: ErrorKind, fragment: str) -> None:
    error = error_of(body)
    assert error.kind == kind
    assert fragment in error.detail


def test_out_of_range_skew_correction_is_rejected_not_raised() -> None:
    inbound = post(form(data_list=b64([track(time=0, _flush_time=250_000_000_000_000), track()])))
    assert len(inbound.events) == 1
    assert [(r.index, r.pointer) for r in inbound.rejected] == [(0, "/data_list/0/_flush_time")]


# --- message id ---------------------------------------------------------------------------------


def test_message_id_survives_a_retry_that_restamps_flush_time() -> None:
    first = post_one(track(_flush_time=ACTED_MS + 1_000)).events[0]
    retry = post(form(data_list=b64([track(_flush_time=ACTED_MS + 60_000)], compress=True), gzip="1")).events[0]
    assert first.message_id == retry.message_id


@pytest.mark.parametrize(
    "change",
    [
        {"_track_id": 124},
        {"time": ACTED_MS + 1},
        {"event": "login"},
        {"distinct_id": "anon-2"},
        {"properties": {"$os": "Android"}},
    ],
)
def test_message_id_differs_for_different_events(change: dict[str, Any]) -> None:
    assert post_one(track()).events[0].message_id != post_one(track(**change)).events[0].message_id
