"""The Segment HTTP tracking API wire format.

Existing Segment and RudderStack SDKs post here after changing only the host:
`/v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/alias`,
`/v1/group` carry one message, `/v1/batch` up to 500 KB of them. Decoding is
msgspec straight from the raw bytes.

`decode_segment` first tries the fast decoder of `segment_records`, which
vouches only for requests in which every message is valid; for any other
request it decodes here, each message of a batch on its own (`msgspec.Raw`), so
that one bad message is reported by its index and the others are kept.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from marketloop.collect.segment_records import decode_batch_fast, decode_single_fast
from marketloop.collect.wire import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    UNKNOWN_SOURCE,
    Inbound,
    invalid_body,
    invalid_event,
    msgspec_detail,
    msgspec_pointer,
    too_large,
)
from marketloop.core.errors import FieldError
from marketloop.core.events import Event, EventType, ProfileOp, as_utc, corrected_timestamp

SINGLE_TYPES = frozenset(t.value for t in EventType)

Identifier = str | int


class SegmentMessage(msgspec.Struct, rename="camel", kw_only=True):
    """One message as the Segment spec defines it. Unknown fields are ignored."""

    type: str | None = None
    message_id: str | None = None
    anonymous_id: Identifier | None = None
    user_id: Identifier | None = None
    previous_id: Identifier | None = None
    group_id: Identifier | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    timestamp: datetime | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    write_key: str | None = None


class SegmentBatch(msgspec.Struct, rename="camel", kw_only=True):
    """The `/v1/batch` envelope: messages stay raw until decoded one by one."""

    batch: list[msgspec.Raw]
    sent_at: datetime | None = None
    write_key: str | None = None
    context: dict[str, Any] | None = None


class _Envelope(msgspec.Struct, rename="camel", kw_only=True):
    write_key: str | None = None


_message_decoder = msgspec.json.Decoder(SegmentMessage)
_batch_decoder = msgspec.json.Decoder(SegmentBatch)
_envelope_decoder = msgspec.json.Decoder(_Envelope)


def decode_segment(body: bytes, *, endpoint: str, received_at: datetime) -> Inbound:
    """Decode one request to `/v1/{endpoint}`.

    Raises `MarketloopError` for a body that cannot be read at all (empty,
    not JSON, not an object, over the size limits); reports messages that
    fail validation in `Inbound.rejected` by index.
    """
    if not body.strip():
        raise invalid_body("The request body is empty; send a JSON object.")
    if len(body) > MAX_BATCH_BYTES:
        raise too_large(f"The request is {len(body)} bytes; the limit is {MAX_BATCH_BYTES}.")
    if endpoint == "batch":
        return decode_batch_fast(body, received_at) or _decode_batch(body, received_at)
    if len(body) > MAX_EVENT_BYTES:
        raise too_large(f"The event is {len(body)} bytes; the limit is {MAX_EVENT_BYTES}.")
    return decode_single_fast(body, endpoint, received_at) or _decode_single(body, endpoint, received_at)


def _decode_single(body: bytes, endpoint: str, received_at: datetime) -> Inbound:
    try:
        envelope = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # invalid UTF-8 inside a JSON string
        raise invalid_body(f"The body is not a JSON object: {error}") from None
    inbound = Inbound(write_key=envelope.write_key)
    _decode_one(inbound, 0, body, endpoint, received_at, None)
    if inbound.rejected and not inbound.events:
        raise invalid_event(inbound.rejected)
    return inbound


def _decode_batch(body: bytes, received_at: datetime) -> Inbound:
    try:
        envelope = _batch_decoder.decode(body)
    except msgspec.ValidationError as error:
        raise invalid_body(msgspec_detail(error), pointer=msgspec_pointer(error)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # invalid UTF-8 inside a JSON string
        raise invalid_body(f"The body is not valid JSON: {error}") from None
    inbound = Inbound(write_key=envelope.write_key)
    for index, raw in enumerate(envelope.batch):
        _decode_one(inbound, index, raw, None, received_at, envelope)
    return inbound


def _decode_one(
    inbound: Inbound,
    index: int,
    raw: bytes | msgspec.Raw,
    endpoint: str | None,
    received_at: datetime,
    envelope: SegmentBatch | None,
) -> None:
    if len(raw) > MAX_EVENT_BYTES:
        inbound.rejected.append(
            FieldError(
                index=index,
                pointer=f"/batch/{index}",
                detail=f"The event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}.",
            )
        )
        return
    try:
        message = _message_decoder.decode(raw)
    except msgspec.ValidationError as error:
        inbound.rejected.append(_rejection(index, envelope, msgspec_pointer(error), msgspec_detail(error)))
        return
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # invalid UTF-8 inside a JSON string
        inbound.rejected.append(_rejection(index, envelope, "", f"Not a JSON object: {error}"))
        return
    problem = _check(message, endpoint)
    if problem is not None:
        inbound.rejected.append(_rejection(index, envelope, problem[0], problem[1]))
        return
    inbound.events.append(_to_event(message, endpoint, received_at, envelope))


def _rejection(index: int, envelope: SegmentBatch | None, pointer: str, detail: str) -> FieldError:
    prefix = f"/batch/{index}" if envelope is not None else ""
    return FieldError(index=index, pointer=prefix + pointer, detail=detail)


def _check(message: SegmentMessage, endpoint: str | None) -> tuple[str, str] | None:
    """The first rule of the spec the message breaks, as (pointer, detail)."""
    kind = endpoint or message.type
    if kind not in SINGLE_TYPES:
        return "/type", f"Unknown message type {kind!r}; expected one of {sorted(SINGLE_TYPES)}."
    if message.user_id is None and message.anonymous_id is None:
        return "/userId", "Every message needs a userId or an anonymousId."
    if kind == EventType.TRACK and not message.event:
        return "/event", "A track message needs an event name."
    if kind == EventType.ALIAS and (message.previous_id is None or message.user_id is None):
        return "/previousId", "An alias message needs both previousId and userId."
    if kind == EventType.GROUP and message.group_id is None:
        return "/groupId", "A group message needs a groupId."
    return None


def _to_event(
    message: SegmentMessage,
    endpoint: str | None,
    received_at: datetime,
    envelope: SegmentBatch | None,
) -> Event:
    kind = endpoint or message.type or ""
    sent_at = message.sent_at or (envelope.sent_at if envelope is not None else None)
    original = message.timestamp or message.original_timestamp
    context = message.context
    if envelope is not None and envelope.context:
        context = {**envelope.context, **(context or {})}
    return Event(
        message_id=message.message_id or str(uuid.uuid4()),
        type=kind,
        source_id=UNKNOWN_SOURCE,
        received_at=received_at,
        timestamp=corrected_timestamp(received_at=received_at, original_timestamp=original, sent_at=sent_at),
        event=message.event if kind == EventType.TRACK else message.name,
        anonymous_id=_text(message.anonymous_id),
        user_id=_text(message.user_id),
        previous_id=_text(message.previous_id),
        group_id=_text(message.group_id),
        original_timestamp=as_utc(original) if original is not None else None,
        sent_at=as_utc(sent_at) if sent_at is not None else None,
        profile_op=ProfileOp.SET if kind == EventType.IDENTIFY else None,
        properties=_page_properties(message)
        if kind in (EventType.PAGE, EventType.SCREEN)
        else message.properties or {},
        traits=message.traits or {},
        context=context or {},
    )


def _page_properties(message: SegmentMessage) -> dict[str, Any]:
    properties = dict(message.properties or {})
    if message.category is not None:
        properties.setdefault("category", message.category)
    return properties


def _text(value: Identifier | None) -> str | None:
    return None if value is None else str(value)
