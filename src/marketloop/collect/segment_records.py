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

One difference is accepted: a float literal beyond the double range (`1e999`)
inside `properties`, `traits` or `context` is kept as written here, where the
exact decoder refuses the message (it cannot hold the number in a Python float).
Finding such literals without parsing costs more than the rest of the decode.
"""

from __future__ import annotations

import struct
import uuid
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
    if _accepted([message], endpoint) is None:
        return None
    return Inbound(write_key=message.write_key, deferred=_Messages([message], endpoint, received_at, None, None))


def decode_batch_fast(body: bytes, received_at: datetime) -> Inbound | None:
    """`decode_segment` for `/v1/batch`, or None when the exact decoder must say."""
    if not _one_line_utf8(body):
        return None
    try:
        envelope = _batch_decoder.decode(body)
    except msgspec.DecodeError:
        return None
    messages: list[_Message] = list(envelope.batch)
    sizes = _accepted(messages, None)
    if sizes is None:
        return None
    # Messages are disjoint parts of the body and each is longer than its objects, so
    # none is over the limit when the body less the other messages' objects is within it.
    total, largest = sizes
    if len(body) - total + largest > MAX_EVENT_BYTES:
        return None
    deferred = _Messages(messages, None, received_at, envelope.sent_at, envelope.context)
    return Inbound(write_key=envelope.write_key, deferred=deferred)


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


def _accepted(messages: list[_Message], endpoint: str | None) -> tuple[int, int] | None:
    """Check every message as `segment_spec._check` does, and that its objects are objects; give each
    a message id. The total size of the messages' objects and the largest one's, or None when a message
    is not valid."""
    total = largest = 0
    for message in messages:
        kind = endpoint or message.type
        if message.user_id is None and message.anonymous_id is None:
            return None
        if not (message.event if kind == "track" else _valid_other(message, kind)):
            return None
        size = _objects(message)
        if size < 0:
            return None
        total += size
        largest = max(largest, size)
        if not message.message_id:
            message.message_id = str(uuid.uuid4())
    return total, largest


def _valid_other(message: _Message, kind: str | None) -> bool:
    if kind == "alias":
        return message.previous_id is not None and message.user_id is not None
    if kind == "group":
        return message.group_id is not None
    return kind in ("identify", "page", "screen")


def _objects(message: _Message) -> int:  # noqa: C901 - three fields unrolled: it runs for every event
    """The size of the message's raw objects, or -1 when one is not a JSON object or null.

    Null and `{}` become absent, as in an encoded `Event`.
    """
    size = 0
    raw = message.properties
    if raw is not _ABSENT:
        length = len(raw)
        size += length
        if _first(raw) != _OBJECT:
            if _first(raw) != _NULL:
                return -1
            message.properties = _ABSENT
        elif length == 2:  # {}
            message.properties = _ABSENT
    raw = message.context
    if raw is not _ABSENT:
        length = len(raw)
        size += length
        if _first(raw) != _OBJECT:
            if _first(raw) != _NULL:
                return -1
            message.context = _ABSENT
        elif length == 2:  # {}
            message.context = _ABSENT
    raw = message.traits
    if raw is not _ABSENT:
        length = len(raw)
        size += length
        if _first(raw) != _OBJECT:
            if _first(raw) != _NULL:
                return -1
            message.traits = _ABSENT
        elif length == 2:  # {}
            message.traits = _ABSENT
    return size


class _Messages:
    """Accepted messages in wire form: the `Deferred` of an `Inbound`."""

    __slots__ = ("_context", "_kind", "_messages", "_received_at", "_sent_at")

    def __init__(
        self,
        messages: list[_Message],
        kind: str | None,
        received_at: datetime,
        sent_at: datetime | None,
        context: dict[str, Any] | None,
    ) -> None:
        self._messages = messages
        self._kind = kind
        self._received_at = received_at
        self._sent_at = _utc(sent_at) if sent_at is not None else None
        self._context = context or None

    def __len__(self) -> int:
        return len(self._messages)

    def records(self, source_id: str) -> list[bytes]:
        encode = _encoder.encode
        return [encode(record) for record in self._records(source_id)]

    def events(self) -> list[Event]:
        return [_event(record) for record in self._records(UNKNOWN_SOURCE)]

    def partition_keys(self) -> list[str]:
        return [m.user_id or m.anonymous_id or m.message_id or "" for m in self._messages]

    def _records(self, source_id: str) -> list[_Record]:
        """What `segment_spec._to_event` makes of each message, with the objects left as raw JSON.

        Written as one loop over locals: it runs for every collected event.
        """
        received_at, default_sent, endpoint = self._received_at, self._sent_at, self._kind
        # receivedAt - (sentAt - originalTimestamp), with the envelope's sentAt shared by the batch
        default_shift = received_at - default_sent if default_sent is not None else None
        records = []
        for m in self._messages:
            kind = endpoint or m.type or ""
            original, sent_at = m.timestamp or m.original_timestamp, m.sent_at
            if sent_at is not None and sent_at.tzinfo is not UTC:
                sent_at = as_utc(sent_at)
            if original is None:
                timestamp = received_at
            else:
                if original.tzinfo is not UTC:
                    original = as_utc(original)
                if sent_at is not None:
                    timestamp = received_at - (sent_at - original)
                else:
                    timestamp = original if default_shift is None else original + default_shift
            properties, context = m.properties, m.context
            if m.category is not None and (kind == "page" or kind == "screen"):
                properties = _with_category(properties, m.category)
            if self._context is not None:
                context = _raw(self._context | _object(context))
            records.append(
                _Record(
                    m.message_id or "",
                    kind,
                    source_id,
                    received_at,
                    timestamp,
                    m.event if kind == "track" else m.name,
                    m.anonymous_id,
                    m.user_id,
                    m.previous_id,
                    m.group_id,
                    original,
                    sent_at or default_sent,
                    ProfileOp.SET if kind == "identify" else None,
                    properties,
                    m.traits,
                    context,
                )
            )
        return records


def _event(record: _Record) -> Event:
    return Event(
        message_id=record.message_id,
        type=record.type,
        source_id=record.source_id,
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
