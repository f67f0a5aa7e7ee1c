"""Segment spec decoding: types, required fields, skew correction, batch errors by index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from marketloop.collect.segment_spec import decode_segment
from marketloop.collect.wire import MAX_EVENT_BYTES
from marketloop.core.errors import ErrorKind, MarketloopError

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_track_keeps_fields_and_corrects_clock_skew() -> None:
    body = orjson.dumps(
        {
            "userId": "C0001",
            "event": "fund_page_view",
            "properties": {"fund_code": "000001"},
            "messageId": "m-1",
            "timestamp": "2026-11-24T07:00:00Z",
            "sentAt": "2026-11-24T07:00:10Z",
        }
    )
    inbound = decode_segment(body, endpoint="track", received_at=NOW)
    (event,) = inbound.events
    assert event.message_id == "m-1"
    assert event.type == "track"
    assert event.event == "fund_page_view"
    assert event.user_id == "C0001"
    assert event.properties == {"fund_code": "000001"}
    # The device clock is an hour behind: receivedAt - (sentAt - originalTimestamp).
    assert event.timestamp == NOW - timedelta(seconds=10)
    assert event.original_timestamp == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_missing_message_id_is_generated_and_numeric_ids_become_text() -> None:
    inbound = decode_segment(b'{"userId": 42, "traits": {"vip": 3}}', endpoint="identify", received_at=NOW)
    (event,) = inbound.events
    assert event.user_id == "42"
    assert len(event.message_id) == 36
    assert event.profile_op == "set"
    assert event.timestamp == NOW


def test_batch_keeps_good_events_and_reports_bad_ones_by_index() -> None:
    batch = {
        "writeKey": "k",
        "sentAt": "2026-11-24T08:00:00Z",
        "batch": [
            {"type": "track", "userId": "a", "event": "login"},
            {"type": "track", "userId": "b"},
            {"type": "teleport", "userId": "c"},
            {"type": "page", "anonymousId": "d", "name": "home", "category": "wealth"},
            {"type": "alias", "previousId": "d", "userId": "a"},
            {"type": "group", "userId": "a", "groupId": 7},
            {"type": "track", "userId": ["x"], "event": "e"},
        ],
    }
    inbound = decode_segment(orjson.dumps(batch), endpoint="batch", received_at=NOW)
    assert inbound.write_key == "k"
    assert [e.type for e in inbound.events] == ["track", "page", "alias", "group"]
    assert inbound.events[1].event == "home"
    assert inbound.events[1].properties == {"category": "wealth"}
    assert [(r.index, r.pointer) for r in inbound.rejected] == [
        (1, "/batch/1/event"),
        (2, "/batch/2/type"),
        (6, "/batch/6/userId"),
    ]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"", ErrorKind.INVALID),
        (b"   ", ErrorKind.INVALID),
        (b"{not json", ErrorKind.INVALID),
        (b"[1, 2]", ErrorKind.INVALID),
        (b'{"userId": "a"}', ErrorKind.INVALID),
    ],
)
def test_unreadable_single_events_raise(body: bytes, kind: ErrorKind) -> None:
    with pytest.raises(MarketloopError) as caught:
        decode_segment(body, endpoint="track", received_at=NOW)
    assert caught.value.kind == kind


def test_oversized_event_is_refused() -> None:
    body = orjson.dumps({"userId": "a", "event": "e", "properties": {"blob": "x" * MAX_EVENT_BYTES}})
    with pytest.raises(MarketloopError) as caught:
        decode_segment(body, endpoint="track", received_at=NOW)
    assert caught.value.kind == ErrorKind.TOO_LARGE


def test_oversized_event_in_a_batch_is_rejected_by_index() -> None:
    big = {"type": "track", "userId": "a", "event": "e", "properties": {"blob": "x" * MAX_EVENT_BYTES}}
    small = {"type": "track", "userId": "a", "event": "e"}
    inbound = decode_segment(orjson.dumps({"batch": [small, big]}), endpoint="batch", received_at=NOW)
    assert len(inbound.events) == 1
    assert inbound.rejected[0].index == 1
    assert "limit" in inbound.rejected[0].detail


def test_batch_without_batch_field_is_invalid() -> None:
    with pytest.raises(MarketloopError) as caught:
        decode_segment(b'{"messages": []}', endpoint="batch", received_at=NOW)
    assert caught.value.kind == ErrorKind.INVALID
