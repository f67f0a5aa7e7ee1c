"""The Sensors Analytics (神策) SDK wire format.

The web, Android, iOS, Java and Python SDKs of Sensors Analytics post here
after changing only the server URL:

* `POST /sa?project=NAME&token=KEY`, an `application/x-www-form-urlencoded`
  body whose field `data` holds one event or `data_list` a JSON array of
  events. The field is base64 of the UTF-8 JSON; with `gzip=1` it is base64 of
  the gzip-compressed JSON (Android, iOS, Java and Python do this). The web SDK
  sends plain base64, percent-encoded, sometimes URL-safe. `crc` and `ext`
  carry a checksum of the text and are ignored. `gzip=9` and `gzip=13` mean an
  encrypted payload, which is refused. A payload that starts with the gzip
  magic bytes is gunzipped even without `gzip=1` (JSON cannot start so).
* `GET /sa.gif?project=NAME&token=KEY&data=BASE64&ext=...`, the web beacon,
  with the same `data` encoding.

Each event of a `data_list` is decoded on its own (`msgspec.Raw`), so that one
bad event is reported by its index (`/data_list/{i}/...`) and the others are
kept; a single `data` event that is invalid fails the request.

Mapping to `Event`:

=====================  ==========  ===========================================
Sensors `type`         `type`      fields
=====================  ==========  ===========================================
`track`                track       `event` = event name; `properties` as sent,
                                   `$` preset properties included
`track_signup`         alias       `user_id` = `distinct_id` (the login id),
                                   `previous_id` = `anonymous_id` =
                                   `original_id`; `properties` as sent
`profile_set`          identify    `traits` = properties, `profile_op` = set
`profile_set_once`     identify    `profile_op` = set_once
`profile_increment`    identify    `profile_op` = increment
`profile_append`       identify    `profile_op` = append
`profile_unset`        identify    `profile_op` = unset
`profile_delete`       identify    `profile_op` = delete
`track_id_bind`,       refused     ID-Mapping 3 bind messages merge several ids
`track_id_unbind`                  at once; they have no alias equivalent
anything else          refused     e.g. `item_set`, `item_delete`
=====================  ==========  ===========================================

Identity (all but `track_signup`): `user_id` is `login_id`, else
`identities.$identity_login_id`, else `distinct_id` when the server SDKs
(Java) flag it with the property `$is_login_id: true`; otherwise None.
`anonymous_id` is `anonymous_id`, else `identities.$identity_anonymous_id`,
else, when there is no login id, `distinct_id`. A message with neither is
refused.

Time: `time` is the device clock in ms since the epoch and becomes
`original_timestamp`; `_flush_time`, stamped by the SDK when it sends, is the
`sent_at` that corrects the device's clock skew for `timestamp`.

`context` carries `library` (the SDK's `lib` object) and `sensors`: the
original `type`, `event`, `distinct_id`, `original_id`, `identities`,
`project`, `_track_id` (as `track_id`) and `time_free` as sent. The `token` is
a credential and is kept out of the event.

`message_id`: Sensors has none. The SDKs keep each event's JSON in a local
store until the server acknowledges it and send the same JSON again after a
timeout, re-stamping only `_flush_time`. The id is therefore a uuid5 of what a
retry keeps - `type`, `event`, `distinct_id`, `original_id`, `_track_id` (a
random int the SDK draws per event), `time` and the properties - so a retried
event gets the same id and is deduplicated downstream, while two events only
share an id if they agree on all of these.
"""

from __future__ import annotations

import base64
import binascii
import uuid
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

import msgspec

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
from marketloop.core.events import Event, EventType, ProfileOp, corrected_timestamp

PROFILE_OPS: dict[str, ProfileOp] = {f"profile_{op.value}": op for op in ProfileOp}
SUPPORTED_TYPES = frozenset({"track", "track_signup", *PROFILE_OPS})
BIND_TYPES = frozenset({"track_id_bind", "track_id_unbind"})

# The form body is base64 (4/3 of the JSON) and percent-encoded on top; anything
# beyond three times the batch limit cannot decode to an acceptable batch.
MAX_FORM_BYTES = 3 * MAX_BATCH_BYTES
MAX_FORM_FIELDS = 32
GZIP_MAGIC = b"\x1f\x8b"

# Milliseconds since the epoch of 9999-12-31T23:59:59.999Z, the last instant a datetime holds.
MAX_EPOCH_MS = 253_402_300_799_999

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MESSAGE_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://marketloop.dev/collect/sensors")

Identifier = str | int


class SensorsMessage(msgspec.Struct, kw_only=True):
    """One event as the Sensors SDKs send it. Unknown fields are ignored."""

    type: str | None = None
    event: str | None = None
    distinct_id: Identifier | None = None
    login_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    original_id: Identifier | None = None
    identities: dict[str, Identifier] | None = None
    time: int | None = None
    track_id: Identifier | None = msgspec.field(default=None, name="_track_id")
    flush_time: int | None = msgspec.field(default=None, name="_flush_time")
    time_free: bool | None = None
    lib: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    project: str | None = None
    token: str | None = None


class _Envelope(msgspec.Struct):
    """Only to tell a `data` that is not a JSON object from an invalid event."""


_message_decoder = msgspec.json.Decoder(SensorsMessage)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def decode_sensors_form(body: bytes, *, received_at: datetime, project: str | None, token: str | None) -> Inbound:
    """Decode one form-encoded `POST /sa` body; `project` and `token` come from its query string.

    Raises `MarketloopError` for a body that cannot be read at all (empty, no
    `data` or `data_list`, bad base64 or gzip, not JSON, over the size
    limits); reports events of a `data_list` that fail validation in
    `Inbound.rejected` by index.
    """
    if not body.strip():
        raise invalid_body("The request body is empty; send a form with a data or data_list field.")
    if len(body) > MAX_FORM_BYTES:
        raise too_large(f"The request is {len(body)} bytes; the limit is {MAX_FORM_BYTES}.")
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError as error:
        raise invalid_body(f"The body is not a form (application/x-www-form-urlencoded): {error}") from None
    return _decode_fields(
        fields,
        received_at,
        project or fields.get("project") or None,
        token or fields.get("token") or None,
    )


def decode_sensors_query(params: Mapping[str, str], *, received_at: datetime) -> Inbound:
    """Decode the `GET /sa.gif` web beacon from its (already percent-decoded) query parameters."""
    if sum(len(value) for value in params.values()) > MAX_FORM_BYTES:
        raise too_large(f"The query string is over {MAX_FORM_BYTES} bytes.")
    return _decode_fields(params, received_at, params.get("project") or None, params.get("token") or None)


def _decode_fields(fields: Mapping[str, str], received_at: datetime, project: str | None, token: str | None) -> Inbound:
    data, data_list = fields.get("data"), fields.get("data_list")
    if data is not None and data_list is not None:
        raise invalid_body("The request has both data and data_list; send one of them.")
    if data_list is not None:
        payload = _payload(data_list, fields.get("gzip"), "/data_list")
        return _decode_list(payload, received_at, Inbound(write_key=token, project=project))
    if data is not None:
        payload = _payload(data, fields.get("gzip"), "/data")
        return _decode_single(payload, received_at, Inbound(write_key=token, project=project))
    raise invalid_body("The request has no data or data_list field.")


def _payload(text: str, gzip: str | None, pointer: str) -> bytes:
    """The JSON bytes of a `data` / `data_list` field: un-base64 and, with `gzip=1`, gunzip."""
    if gzip in ("9", "13"):
        raise invalid_body(
            f"The payload is encrypted (gzip={gzip}); turn off encryption in the SDK to send here.", pointer=pointer
        )
    if gzip not in (None, "", "0", "1"):
        raise invalid_body(f"Unknown gzip={gzip!r}; expected 0 or 1.", pointer="/gzip")
    raw = _unbase64(text, pointer)
    # JSON never starts with the gzip magic: a client that compressed without saying so is read too.
    payload = _gunzip(raw, pointer) if gzip == "1" or raw.startswith(GZIP_MAGIC) else raw
    if len(payload) > MAX_BATCH_BYTES:
        raise too_large(f"The decoded payload is {len(payload)} bytes; the limit is {MAX_BATCH_BYTES}.")
    return payload


def _unbase64(text: str, pointer: str) -> bytes:
    """Standard or URL-safe base64, padded or not, once more percent-encoded or not.

    Form decoding turns an unescaped `+` into a space, so spaces are read as `+`.
    """
    cleaned = unquote(text) if "%" in text else text
    cleaned = cleaned.strip().replace(" ", "+").replace("\n", "").replace("\r", "")
    if not cleaned:
        raise invalid_body(f"The {pointer[1:]} field is empty.", pointer=pointer)
    cleaned = cleaned.replace("-", "+").replace("_", "/").rstrip("=")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as error:
        raise invalid_body(f"The {pointer[1:]} field is not base64: {error}", pointer=pointer) from None


def _gunzip(compressed: bytes, pointer: str) -> bytes:
    """Gunzip every member, refusing to inflate past the batch limit."""
    out = bytearray()
    rest = compressed
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, MAX_BATCH_BYTES + 1 - len(out))
        except zlib.error as error:
            raise invalid_body(f"The {pointer[1:]} field is not gzip: {error}", pointer=pointer) from None
        if len(out) > MAX_BATCH_BYTES:
            raise too_large(f"The decompressed payload is over the limit of {MAX_BATCH_BYTES} bytes.")
        if not inflater.eof:
            raise invalid_body(f"The gzip data of the {pointer[1:]} field is truncated.", pointer=pointer)
        rest = inflater.unused_data
    return bytes(out)


def _decode_single(payload: bytes, received_at: datetime, inbound: Inbound) -> Inbound:
    if len(payload) > MAX_EVENT_BYTES:
        raise too_large(f"The event is {len(payload)} bytes; the limit is {MAX_EVENT_BYTES}.")
    try:
        _envelope_decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # invalid UTF-8 inside a JSON string
        raise invalid_body(f"The data field is not a JSON object: {error}", pointer="/data") from None
    _decode_one(inbound, 0, payload, received_at, "/data")
    if inbound.rejected and not inbound.events:
        raise invalid_event(inbound.rejected)
    return inbound


def _decode_list(payload: bytes, received_at: datetime, inbound: Inbound) -> Inbound:
    try:
        raws = _list_decoder.decode(payload)
    except msgspec.ValidationError as error:
        detail = f"The data_list field is not a JSON array: {msgspec_detail(error)}"
        raise invalid_body(detail, pointer="/data_list") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # invalid UTF-8 inside a JSON string
        raise invalid_body(f"The data_list field is not valid JSON: {error}", pointer="/data_list") from None
    for index, raw in enumerate(raws):
        _decode_one(inbound, index, raw, received_at, f"/data_list/{index}")
    return inbound


def _decode_one(inbound: Inbound, index: int, raw: bytes | msgspec.Raw, received_at: datetime, prefix: str) -> None:
    if len(raw) > MAX_EVENT_BYTES:
        detail = f"The event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}."
        inbound.rejected.append(FieldError(index=index, pointer=prefix, detail=detail))
        return
    try:
        message = _message_decoder.decode(raw)
    except msgspec.ValidationError as error:
        inbound.rejected.append(
            FieldError(index=index, pointer=prefix + msgspec_pointer(error), detail=msgspec_detail(error))
        )
        return
    except (msgspec.DecodeError, UnicodeDecodeError) as error:  # invalid UTF-8 inside a JSON string
        inbound.rejected.append(FieldError(index=index, pointer=prefix, detail=f"Not a JSON object: {error}"))
        return
    problem = _check(message)
    if problem is None:
        try:
            inbound.events.append(_to_event(message, received_at))
        except OverflowError:
            problem = "/_flush_time", "The clock-skew correction from time and _flush_time is out of range."
    if problem is not None:
        inbound.rejected.append(FieldError(index=index, pointer=prefix + problem[0], detail=problem[1]))
        return
    inbound.write_key = inbound.write_key or message.token or None
    inbound.project = inbound.project or message.project or None


def _check(message: SensorsMessage) -> tuple[str, str] | None:
    """The first rule of the format the message breaks, as (pointer, detail)."""
    kind = message.type
    if kind in BIND_TYPES:
        return "/type", f"{kind} (ID-Mapping bind) messages are not supported; send track_signup to link ids."
    if kind not in SUPPORTED_TYPES:
        return "/type", f"Unknown message type {kind!r}; expected one of {sorted(SUPPORTED_TYPES)}."
    if kind == "track_signup":
        if not _text(message.distinct_id) or not _text(message.original_id):
            return "/original_id", "A track_signup message needs both distinct_id and original_id."
    elif _identity(message) == (None, None):
        return "/distinct_id", "Every message needs a distinct_id, login_id or anonymous_id."
    if kind == "track" and not message.event:
        return "/event", "A track message needs an event name."
    return _check_times(message)


def _check_times(message: SensorsMessage) -> tuple[str, str] | None:
    for pointer, value in (("/time", message.time), ("/_flush_time", message.flush_time)):
        if value is not None and not 0 <= value <= MAX_EPOCH_MS:
            return pointer, f"{pointer[1:]} must be milliseconds since 1970-01-01 UTC, between 0 and {MAX_EPOCH_MS}."
    return None


def _identity(message: SensorsMessage) -> tuple[str | None, str | None]:
    """(user_id, anonymous_id) of a message other than track_signup."""
    identities = message.identities or {}
    distinct_id = _text(message.distinct_id)
    login = _text(message.login_id) or _text(identities.get("$identity_login_id"))
    if login is None and (message.properties or {}).get("$is_login_id") is True:
        login = distinct_id
    anonymous = _text(message.anonymous_id) or _text(identities.get("$identity_anonymous_id"))
    if anonymous is None and login is None:
        anonymous = distinct_id
    return login, anonymous


def _to_event(message: SensorsMessage, received_at: datetime) -> Event:
    kind = message.type or ""
    original = _moment(message.time)
    sent_at = _moment(message.flush_time)
    event = Event(
        message_id=_message_id(message),
        type=EventType.TRACK.value,
        source_id=UNKNOWN_SOURCE,
        received_at=received_at,
        timestamp=corrected_timestamp(received_at=received_at, original_timestamp=original, sent_at=sent_at),
        original_timestamp=original,
        sent_at=sent_at,
        context=_context(message),
    )
    if kind == "track_signup":
        event.type = EventType.ALIAS.value
        event.user_id = _text(message.distinct_id)
        event.previous_id = event.anonymous_id = _text(message.original_id)
        event.properties = message.properties or {}
        return event
    event.user_id, event.anonymous_id = _identity(message)
    if kind == "track":
        event.event = message.event
        event.properties = message.properties or {}
        return event
    event.type = EventType.IDENTIFY.value
    event.profile_op = PROFILE_OPS[kind]
    event.traits = message.properties or {}
    return event


def _context(message: SensorsMessage) -> dict[str, Any]:
    sensors = {
        "type": message.type,
        "event": message.event,
        "distinct_id": _text(message.distinct_id),
        "original_id": _text(message.original_id),
        "identities": message.identities,
        "project": message.project,
        "track_id": message.track_id,
        "time_free": message.time_free,
    }
    context: dict[str, Any] = {"sensors": {key: value for key, value in sensors.items() if value is not None}}
    if message.lib:
        context["library"] = message.lib
    return context


def _message_id(message: SensorsMessage) -> str:
    """A uuid5 of what a client retry of the event keeps; see the module docstring."""
    key = [
        message.type,
        message.event,
        _text(message.distinct_id),
        _text(message.original_id),
        message.track_id,
        message.time,
        message.properties or {},
    ]
    name = msgspec.json.encode(key, order="sorted").decode()
    return str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, name))


def _moment(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else _EPOCH + timedelta(milliseconds=epoch_ms)


def _text(value: Identifier | None) -> str | None:
    """An id as text; an empty id is no id."""
    if value is None or value == "":
        return None
    return str(value)
