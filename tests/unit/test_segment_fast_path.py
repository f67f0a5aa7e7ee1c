"""The fast Segment decoder gives the exact decoder's events and records, or declines.

`segment_records` decodes a whole request at once and writes log records from
the raw JSON; `segment_spec` decodes message by message. For every request the
fast one accepts, both must give equal `Event`s and JSON-equal log records; for
every request with a bad message, the fast one must decline so the exact one
reports it by index.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.collect import segment_spec
from marketloop.collect.segment_records import decode_batch_fast, decode_single_fast
from marketloop.collect.wire import Inbound

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

ids = st.text(min_size=1, max_size=12)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
moments = st.builds(
    lambda d, z, naive: (d.replace(tzinfo=None) if naive else d.astimezone(z)).isoformat(),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    zones,
    st.booleans(),
)


def _ids_for(kind: str, draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {}
    which = draw(st.sampled_from(["user", "anon", "both"]))
    if which != "anon" or kind == "alias":
        message["userId"] = draw(ids)
    if which != "user":
        message["anonymousId"] = draw(ids)
    required = {"track": "event", "alias": "previousId", "group": "groupId"}.get(kind)
    if required:
        message[required] = draw(ids)
    return message


@st.composite
def messages(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    kind = kind or draw(st.sampled_from(["track", "identify", "page", "screen", "alias", "group"]))
    message: dict[str, Any] = {"type": kind, **_ids_for(kind, draw)}
    if kind in ("page", "screen") and draw(st.booleans()):
        message["name"] = draw(ids)
        if draw(st.booleans()):
            message["category"] = draw(ids)
    for field in ("properties", "traits", "context"):
        # absent, null, or an object (possibly empty)
        choice = draw(st.integers(0, 3))
        if choice:
            message[field] = None if choice == 1 else draw(objects)
    for field in ("messageId", "timestamp", "originalTimestamp", "sentAt"):
        if draw(st.booleans()):
            message[field] = draw(ids) if field == "messageId" else draw(moments)
    return message


def _assert_equal(fast: Inbound, exact: Inbound) -> None:
    """Equal events, and records JSON-equal to the encoded events, with the source set."""
    assert not exact.rejected
    assert not fast.rejected
    assert fast.write_key == exact.write_key
    deferred = fast.deferred
    assert deferred is not None
    records = deferred.records("source-1")
    keys = deferred.partition_keys()
    fast_events, exact_events = fast.events, exact.events
    assert len(fast_events) == len(exact_events)
    for one, other in zip(fast_events, exact_events, strict=True):
        # A message without an id gets a fresh uuid from each decoder.
        other.message_id = one.message_id
        assert one == other
        other.source_id = "source-1"
    expected = [orjson.loads(msgspec.json.encode(event)) for event in exact_events]
    assert [orjson.loads(record) for record in records] == expected
    assert keys == [e.user_id or e.anonymous_id or e.message_id for e in exact_events]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(messages(), min_size=1, max_size=8),
    st.none() | moments,
    st.none() | objects,
    st.none() | ids,
)
def test_fast_batch_equals_exact_batch(
    batch: list[dict[str, Any]], sent_at: str | None, context: dict[str, Any] | None, write_key: str | None
) -> None:
    envelope: dict[str, Any] = {"batch": batch}
    if sent_at is not None:
        envelope["sentAt"] = sent_at
    if context is not None:
        envelope["context"] = context
    if write_key is not None:
        envelope["writeKey"] = write_key
    body = orjson.dumps(envelope)
    fast = decode_batch_fast(body, NOW)
    assert fast is not None
    _assert_equal(fast, segment_spec._decode_batch(body, NOW))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["track", "identify", "page", "screen", "alias", "group"]).flatmap(
        lambda k: st.tuples(st.just(k), messages(k))
    )
)
def test_fast_single_equals_exact_single(kind_and_message: tuple[str, dict[str, Any]]) -> None:
    kind, message = kind_and_message
    message.pop("type")
    body = orjson.dumps(message)
    fast = decode_single_fast(body, kind, NOW)
    assert fast is not None
    _assert_equal(fast, segment_spec._decode_single(body, kind, NOW))


def _batch(*messages: dict[str, Any]) -> bytes:
    return orjson.dumps({"batch": list(messages)})


GOOD = {"type": "track", "userId": "u", "event": "login", "properties": {"amount": 1}}


def test_fast_batch_declines_whatever_the_exact_decoder_must_report() -> None:
    declined = [
        _batch(GOOD, {"type": "track", "userId": "u"}),  # no event name
        _batch(GOOD, {"type": "teleport", "userId": "u"}),  # unknown type
        _batch(GOOD, {"type": "track", "event": "e"}),  # no ids
        _batch(GOOD, {"type": "alias", "userId": "u"}),  # alias without previousId
        _batch(GOOD, {"type": "group", "userId": "u"}),  # group without groupId
        _batch(GOOD, {**GOOD, "properties": [1, 2]}),  # properties not an object
        _batch(GOOD, {**GOOD, "context": "app"}),
        _batch(GOOD, {**GOOD, "userId": 42}),  # numeric ids: the exact decoder turns them into text
        _batch(GOOD, {**GOOD, "timestamp": "yesterday"}),
        orjson.dumps({"batch": [GOOD]}, option=orjson.OPT_INDENT_2),  # spans lines
        _batch(GOOD).replace(b'"login"', b'"log\xffin"'),  # not UTF-8
        _batch(GOOD, {**GOOD, "properties": {"blob": "x" * 40_000}}),  # possibly over the event limit
        b'{"messages": []}',
        b"[1, 2]",
    ]
    for body in declined:
        assert decode_batch_fast(body, NOW) is None, body[:80]


def test_fast_batch_keeps_raw_objects_and_null_as_absent() -> None:
    body = _batch({**GOOD, "properties": {"a": [1, {"b": None}]}, "context": None, "traits": {}})
    inbound = decode_batch_fast(body, NOW)
    assert inbound is not None
    assert inbound.deferred is not None
    (record,) = inbound.deferred.records("s")
    decoded = orjson.loads(record)
    assert decoded["properties"] == {"a": [1, {"b": None}]}
    assert "context" not in decoded
    assert decoded.get("traits", {}) == {}
    (event,) = inbound.events
    assert event.properties == {"a": [1, {"b": None}]}
    assert event.context == {}
    assert event.traits == {}


def test_decode_segment_falls_back_to_errors_by_index() -> None:
    inbound = segment_spec.decode_segment(
        _batch(GOOD, {"type": "track", "userId": "u"}), endpoint="batch", received_at=NOW
    )
    assert [(r.index, r.pointer) for r in inbound.rejected] == [(1, "/batch/1/event")]
    assert len(inbound.events) == 1
