"""The fast decoder of the Segment wire format: a whole request straight to event-log records.

One typed msgspec decode reads a whole request; `properties`, `traits` and
`context` stay raw JSON (`msgspec.Raw`, checked to be objects), so no dict is
built per message, and `_Messages.records` encodes each record from those
bytes. This is the collection hot path (benchmarks/ingest.py).

It vouches only for requests it can handle exactly as the decoder of
`segment_spec` would: every message valid, identifiers as strings, one line of
valid UTF-8, no message that could be over the size limit. For anything else it
returns None and `segment_spec` decodes the request message by message, with
the errors by index.

The objects are stored as the client wrote them, so they are JSON-equal to what
the exact decoder stores (which re-encodes them), not byte-equal: `1E2` stays
`1E2`, `{ }` stays `{ }`. Two differences are accepted, both about JSON that
RFC 8259 leaves undefined or that a Python float cannot hold:

- a float literal beyond the double range (`1e999`) inside an object is kept,
  where the exact decoder refuses the message; finding such literals without
  parsing costs more than the rest of the decode (DuckDB keeps the literal);
- an object with a repeated key keeps both, where the exact decoder keeps the
  last one (DuckDB's `json_extract` then reads the first).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from marketloop.collect.wire import MAX_EVENT_BYTES, UNKNOWN_SOURCE, Inbound
from marketloop.core.events import Event, ProfileOp, as_utc

# An absent, null or `{}` `properties` / `traits` / `context`: left out of the record, as encoding an
# `Event` leaves out its empty dicts. Always compared by identity.
_ABSENT = msgspec.Raw()
# The first byte of a raw value, as a 1-tuple: the cheapest look at it (msgspec.Raw cannot be indexed).
_first = struct.Struct("c").unpack_from
_OBJECT, _NULL = (b"{",), (b"n",)


class _Message(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    """A message of `/v1/{type}`: `SegmentMessage` with string ids and the objects as raw JSON."""

    type: str | None = None
    message_id: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: msgspec.Raw = _ABSENT
    traits: msgspec.Raw = _ABSENT
    context: msgspec.Raw = _ABSENT
    timestamp: datetime | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    write_key: str | None = None


class _BatchMessage(_Message, kw_only=True, gc=False):
    """A message of `/v1/batch`, where the type says what it is."""

    type: Literal["track", "identify", "page", "screen", "alias", "group"]


class _Batch(msgspec.Struct, rename="camel", kw_only=True):
    batch: list[_BatchMessage]
    sent_at: datetime | None = None
    write_key: str | None = None
    context: dict[str, Any] | None = None


class _Record(msgspec.Struct, omit_defaults=True, gc=False):
    """An `Event` as the log carries it, its objects still raw JSON: same fields, order and names."""

    message_id: str
    type: str
    source_id: str
    received_at: datetime
    timestamp: datetime
    event: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    profile_op: str | None = None
    properties: msgspec.Raw = _ABSENT
    traits: msgspec.Raw = _ABSENT
    context: msgspec.Raw = _ABSENT


_message_decoder = msgspec.json.Decoder(_Message)
_batch_decoder = msgspec.json.Decoder(_Batch)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def decode_single_fast(body: bytes, endpoint: str, received_at: datetime) -> Inbound | None:
    """`decode_segment` for `/v1/{endpoint}` (not batch), or None when the exact decoder must say."""
    if not _one_line_utf8(body):
        return None
    try:
        message = _message_decoder.decode(body)
    except msgspec.DecodeError:  # ValidationError too
        return None
    built = _records([message], endpoint, received_at, None, None)
    if built is None:
        return None
    return Inbound(write_key=message.write_key, deferred=_Records(built[0]))


def decode_batch_fast(body: bytes, received_at: datetime) -> Inbound | None:
    """`decode_segment` for `/v1/batch`, or None when the exact decoder must say."""
    if not _one_line_utf8(body):
        return None
    try:
        envelope = _batch_decoder.decode(body)
    except msgspec.DecodeError:
        return None
    built = _records(envelope.batch, None, received_at, envelope.sent_at, envelope.context)
    if built is None:
        return None
    # Messages are disjoint parts of the body and each is longer than its objects, so
    # none is over the limit when the body less the other messages' objects is within it.
    records, objects, largest = built
    if len(body) - objects + largest > MAX_EVENT_BYTES:
        return None
    return Inbound(write_key=envelope.write_key, deferred=_Records(records))


def _one_line_utf8(body: bytes) -> bool:
    """Raw JSON copied into a record must keep the log one record a line, in valid UTF-8.

    msgspec checks the UTF-8 of the strings it decodes, not of the ones it skips.
    """
    if b"\n" in body or b"\r" in body:
        return False
    if body.isascii():
        return True
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _records(  # noqa: C901 - one flat pass over locals, on purpose: it runs for every collected event
    messages: Sequence[_Message],
    endpoint: str | None,
    received_at: datetime,
    sent_at: datetime | None,
    context: dict[str, Any] | None,
) -> tuple[list[_Record], int, int] | None:
    """What `segment_spec` makes of the messages, as records with the objects left raw; with the total
    size of the messages' objects and the largest one's. None when a message is not valid: the checks of
    `segment_spec._check`, and objects must be JSON objects (null and `{}` become absent)."""
    default_sent = _utc(sent_at) if sent_at is not None else None
    # receivedAt - (sentAt - originalTimestamp), with the envelope's sentAt shared by the batch
    shift = received_at - default_sent if default_sent is not None else None
    records: list[_Record] = []
    objects = largest = 0
    for m in messages:
        kind = endpoint or m.type or ""
        if m.user_id is None and m.anonymous_id is None:
            return None
        name: str | None
        if kind == "track":
            if not m.event:
                return None
            name = m.event
        elif _valid_other(m, kind):
            name = m.name
        else:
            return None
        properties: msgspec.Raw | None = m.properties
        traits: msgspec.Raw | None = m.traits
        context_: msgspec.Raw | None = m.context
        size = len(m.properties) + len(m.traits) + len(m.context)
        objects += size
        if size > largest:
            largest = size
        if properties is not _ABSENT and (_first(m.properties) != _OBJECT or len(m.properties) == 2):
            properties = _object_or_absent(m.properties)
        if context_ is not _ABSENT and (_first(m.context) != _OBJECT or len(m.context) == 2):
            context_ = _object_or_absent(m.context)
        if traits is not _ABSENT:
            traits = _object_or_absent(m.traits)
        if properties is None or context_ is None or traits is None:
            return None
        if m.category is not None and (kind == "page" or kind == "screen"):
            properties = _with_category(properties, m.category)
        if context is not None:
            context_ = _raw(context | _object(context_))
        original, sent = m.timestamp or m.original_timestamp, m.sent_at
        if sent is not None and sent.tzinfo is not UTC:
            sent = as_utc(sent)
        if original is None:
            timestamp = received_at
        else:
            if original.tzinfo is not UTC:
                original = as_utc(original)
            if sent is not None:
                timestamp = received_at - (sent - original)
            else:
                timestamp = original if shift is None else original + shift
        records.append(
            _Record(
                m.message_id or str(uuid.uuid4()),
                kind,
                UNKNOWN_SOURCE,
                received_at,
                timestamp,
                name,
                m.anonymous_id,
                m.user_id,
                m.previous_id,
                m.group_id,
                original,
                sent or default_sent,
                ProfileOp.SET if kind == "identify" else None,
                properties,
                traits,
                context_,
            )
        )
    return records, objects, largest


def _valid_other(message: _Message, kind: str) -> bool:
    if kind == "alias":
        return message.previous_id is not None and message.user_id is not None
    if kind == "group":
        return message.group_id is not None
    return kind in ("identify", "page", "screen")


def _object_or_absent(raw: msgspec.Raw) -> msgspec.Raw | None:
    """`raw` when it is a non-empty JSON object, absent for null or `{}`, None for anything else."""
    if raw is _ABSENT:
        return raw
    first = _first(raw)
    if first == _OBJECT:
        return _ABSENT if len(raw) == 2 else raw
    return _ABSENT if first == _NULL else None


class _Records:
    """Records of accepted messages, the source not yet set: the `Deferred` of an `Inbound`."""

    __slots__ = ("_records",)

    def __init__(self, records: list[_Record]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def records(self, source_id: str) -> list[bytes]:
        encode = _encoder.encode
        encoded = []
        for record in self._records:
            record.source_id = source_id
            encoded.append(encode(record))
        return encoded

    def events(self) -> list[Event]:
        return [_event(record) for record in self._records]

    def partition_keys(self) -> list[str]:
        return [r.user_id or r.anonymous_id or r.message_id for r in self._records]


def _event(record: _Record) -> Event:
    return Event(
        message_id=record.message_id,
        type=record.type,
        source_id=UNKNOWN_SOURCE,
        received_at=record.received_at,
        timestamp=record.timestamp,
        event=record.event,
        anonymous_id=record.anonymous_id,
        user_id=record.user_id,
        previous_id=record.previous_id,
        group_id=record.group_id,
        original_timestamp=record.original_timestamp,
        sent_at=record.sent_at,
        profile_op=record.profile_op,
        properties=_object(record.properties),
        traits=_object(record.traits),
        context=_object(record.context),
    )


def _with_category(properties: msgspec.Raw, category: str) -> msgspec.Raw:
    merged = _object(properties)
    merged.setdefault("category", category)
    return _raw(merged)


def _object(raw: msgspec.Raw) -> dict[str, Any]:
    return {} if raw is _ABSENT else _object_decoder.decode(raw)


def _raw(value: dict[str, Any]) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode(value)) if value else _ABSENT


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else as_utc(moment)
