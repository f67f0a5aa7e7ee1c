"""Hypothesis round-trips of the Sensors Analytics wire format: what an SDK sends is what the Event carries."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.collect.sensors_format import decode_sensors_form, decode_sensors_query
from marketloop.collect.wire import Inbound
from marketloop.core.events import Event

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROFILE_TYPES = ["profile_set", "profile_set_once", "profile_increment", "profile_append", "profile_unset"]
PROFILE_TYPES += ["profile_delete"]
TYPES = ["track", "track_signup", *PROFILE_TYPES]

ids = st.text(min_size=1, max_size=20)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
property_names = st.text(max_size=12).filter(lambda name: name != "$is_login_id")
properties = st.dictionaries(property_names, json_values, max_size=6)
epoch_ms = st.integers(
    min_value=int((datetime(2020, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000),
    max_value=int((datetime(2030, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000),
)


@st.composite
def sensors_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(TYPES))
    message: dict[str, Any] = {"type": kind, "distinct_id": draw(ids), "time": draw(epoch_ms)}
    if draw(st.booleans()):
        message["_track_id"] = draw(st.integers(-(2**31), 2**31 - 1))
    if kind == "track":
        message["event"] = draw(st.text(min_size=1, max_size=20))
    if kind == "track_signup":
        message["event"] = "$SignUp"
        message["original_id"] = draw(ids)
    if draw(st.booleans()):
        message["login_id"] = message["distinct_id"]
    if draw(st.booleans()):
        message["anonymous_id"] = draw(ids)
    if draw(st.booleans()):
        message["lib"] = {"$lib": draw(st.sampled_from(["js", "Android", "iOS", "python"])), "$lib_version": "6.0.0"}
    message["properties"] = draw(properties)
    return message


def encode(value: Any, *, compress: bool, url_safe: bool) -> str:
    raw = orjson.dumps(value)
    payload = gzip.compress(raw) if compress else raw
    if url_safe:
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return base64.b64encode(payload).decode()


def flushed(messages: list[dict[str, Any]], delay_ms: int) -> list[dict[str, Any]]:
    """What the SDK sends: the stored events, stamped with the flush time."""
    return [{**message, "_flush_time": message["time"] + delay_ms} for message in messages]


def send(field: str, value: Any, *, compress: bool, url_safe: bool, beacon: bool) -> Inbound:
    fields = {field: encode(value, compress=compress, url_safe=url_safe), "crc": "-1"}
    if compress:
        fields["gzip"] = "1"
    if beacon:
        return decode_sensors_query({**fields, "project": "default", "token": "tok"}, received_at=NOW)
    return decode_sensors_form(urlencode(fields).encode(), received_at=NOW, project="default", token="tok")


def expected_ids(message: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(user_id, anonymous_id, previous_id) as the module docstring documents them."""
    if message["type"] == "track_signup":
        return message["distinct_id"], message["original_id"], message["original_id"]
    login = message.get("login_id")
    anonymous = message.get("anonymous_id") or (None if login else message["distinct_id"])
    return login, anonymous, None


def assert_carries(message: dict[str, Any], event: Event) -> None:
    kind = message["type"]
    expected_type = {"track": "track", "track_signup": "alias"}.get(kind, "identify")
    assert event.type == expected_type
    assert (event.user_id, event.anonymous_id, event.previous_id) == expected_ids(message)
    if kind == "track":
        assert event.event == message["event"]
    if kind.startswith("profile_"):
        assert event.profile_op == kind.removeprefix("profile_")
        assert event.traits == message["properties"]
    else:
        assert event.properties == message["properties"]
    original = EPOCH + timedelta(milliseconds=message["time"])
    assert event.original_timestamp == original
    assert event.sent_at == EPOCH + timedelta(milliseconds=message["_flush_time"])
    # Skew correction keeps the interval between the act and the flush.
    assert event.timestamp == NOW - (event.sent_at - original)
    assert event.context.get("library") == message.get("lib")


@settings(max_examples=80, deadline=None)
@given(
    st.lists(sensors_events(), min_size=1, max_size=20),
    st.integers(0, 86_400_000),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_data_list_round_trip(
    messages: list[dict[str, Any]], delay_ms: int, compress: bool, url_safe: bool, beacon: bool
) -> None:
    inbound = send("data_list", flushed(messages, delay_ms), compress=compress, url_safe=url_safe, beacon=beacon)
    assert not inbound.rejected
    assert (inbound.write_key, inbound.project) == ("tok", "default")
    assert len(inbound.events) == len(messages)
    for message, event in zip(flushed(messages, delay_ms), inbound.events, strict=True):
        assert_carries(message, event)


@settings(max_examples=80, deadline=None)
@given(sensors_events(), st.integers(0, 86_400_000), st.booleans(), st.booleans(), st.booleans())
def test_single_data_round_trip(
    message: dict[str, Any], delay_ms: int, compress: bool, url_safe: bool, beacon: bool
) -> None:
    (sent,) = flushed([message], delay_ms)
    (event,) = send("data", sent, compress=compress, url_safe=url_safe, beacon=beacon).events
    assert_carries(sent, event)


@settings(max_examples=60, deadline=None)
@given(st.lists(sensors_events(), min_size=1, max_size=10), st.integers(0, 60_000), st.integers(1, 3_600_000))
def test_message_id_is_the_same_when_the_sdk_retries(
    messages: list[dict[str, Any]], first_delay_ms: int, retry_later_ms: int
) -> None:
    # The first attempt goes out as a plain data_list; the retry, later and gzipped, one by one as data.
    first = send("data_list", flushed(messages, first_delay_ms), compress=False, url_safe=False, beacon=False)
    retried = [
        send("data", sent, compress=True, url_safe=True, beacon=False).events[0]
        for sent in flushed(messages, first_delay_ms + retry_later_ms)
    ]
    assert [e.message_id for e in first.events] == [e.message_id for e in retried]
    # Received at the same NOW but flushed later, the retry is corrected to an act earlier by as much.
    for earlier, later in zip(first.events, retried, strict=True):
        assert later.timestamp == earlier.timestamp - timedelta(milliseconds=retry_later_ms)


@settings(max_examples=60, deadline=None)
@given(st.lists(sensors_events(), min_size=2, max_size=12), st.data())
def test_bad_events_are_reported_by_index_and_good_ones_kept(
    messages: list[dict[str, Any]], data: st.DataObject
) -> None:
    bad = sorted(data.draw(st.sets(st.integers(0, len(messages) - 1), min_size=1, max_size=len(messages) - 1)))
    for index in bad:
        messages[index]["type"] = data.draw(st.sampled_from(["track_id_bind", "item_set", "teleport"]))
    inbound = send("data_list", flushed(messages, 0), compress=True, url_safe=False, beacon=False)
    assert [r.index for r in inbound.rejected] == bad
    assert [r.pointer for r in inbound.rejected] == [f"/data_list/{index}/type" for index in bad]
    assert len(inbound.events) == len(messages) - len(bad)
