"""Hypothesis round-trips of the Segment wire format: what an SDK sends is what the Event carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.collect.segment_spec import decode_segment

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

text = st.text(min_size=1, max_size=20)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
properties = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)


@st.composite
def track_messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": draw(text), "messageId": draw(text)}
    ids = draw(st.sampled_from(["user", "anon", "both"]))
    if ids in ("user", "both"):
        message["userId"] = draw(text)
    if ids in ("anon", "both"):
        message["anonymousId"] = draw(text)
    message["properties"] = draw(properties)
    if draw(st.booleans()):
        message["timestamp"] = draw(moments).isoformat().replace("+00:00", "Z")
    return message


@settings(max_examples=80, deadline=None)
@given(st.lists(track_messages(), min_size=1, max_size=20), moments)
def test_batch_round_trip(messages: list[dict[str, Any]], sent_at: datetime) -> None:
    body = orjson.dumps({"batch": messages, "sentAt": sent_at.isoformat()})
    inbound = decode_segment(body, endpoint="batch", received_at=NOW)
    assert not inbound.rejected
    assert len(inbound.events) == len(messages)
    for message, event in zip(messages, inbound.events, strict=True):
        assert event.message_id == message["messageId"]
        assert event.event == message["event"]
        assert event.user_id == message.get("userId")
        assert event.anonymous_id == message.get("anonymousId")
        assert event.properties == message["properties"]
        if "timestamp" in message:
            original = datetime.fromisoformat(message["timestamp"])
            assert event.original_timestamp == original
            # Skew correction keeps the interval between the act and the send.
            assert event.timestamp == NOW - (sent_at - original)
        else:
            assert event.timestamp == NOW


@settings(max_examples=60, deadline=None)
@given(st.lists(track_messages(), min_size=2, max_size=12), st.data())
def test_bad_messages_are_reported_by_index_and_good_ones_kept(
    messages: list[dict[str, Any]], data: st.DataObject
) -> None:
    bad = sorted(data.draw(st.sets(st.integers(0, len(messages) - 1), min_size=1, max_size=len(messages) - 1)))
    for index in bad:
        del messages[index]["event"]
    inbound = decode_segment(orjson.dumps({"batch": messages}), endpoint="batch", received_at=NOW)
    assert [r.index for r in inbound.rejected] == bad
    assert [e.message_id for e in inbound.events] == [m["messageId"] for i, m in enumerate(messages) if i not in bad]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=-86_400, max_value=86_400))
def test_skew_correction_recovers_server_time_for_any_device_offset(offset_seconds: int) -> None:
    device_now = NOW + timedelta(seconds=offset_seconds)
    acted = device_now - timedelta(seconds=5)
    body = orjson.dumps({"userId": "u", "event": "e", "timestamp": acted.isoformat(), "sentAt": device_now.isoformat()})
    (event,) = decode_segment(body, endpoint="track", received_at=NOW).events
    assert event.timestamp == NOW - timedelta(seconds=5)
