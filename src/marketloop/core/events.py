"""The internal event model every collection format is mapped to.

An `Event` is what the event log carries and what the warehouse loads: one
behaviour or identity message, already validated, stamped and corrected for
client clock skew. Wire formats (Segment spec, Sensors Analytics) live in
`marketloop.collect`; they only produce `Event`s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec


class EventType(StrEnum):
    """Message types of the Segment spec; Sensors types map onto them."""

    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    ALIAS = "alias"
    GROUP = "group"


class ProfileOp(StrEnum):
    """How an identify message changes the profile (Sensors `profile_*` types).

    Segment's identify is `SET`; Sensors adds the others.
    """

    SET = "set"
    SET_ONCE = "set_once"
    INCREMENT = "increment"
    APPEND = "append"
    UNSET = "unset"
    DELETE = "delete"


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One accepted message, as written to the event log and loaded into the warehouse.

    `event` holds the event name for track and the page / screen name for
    page and screen. `timestamp` is the skew-corrected time the customer did
    it; `original_timestamp` is what the device said. `violations` lists
    tracking-plan findings; `quarantined` events are kept out of `events`
    until they are replayed.
    """

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
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    context: dict[str, Any] = {}
    violations: list[str] = []
    quarantined: bool = False


def as_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def corrected_timestamp(
    *,
    received_at: datetime,
    original_timestamp: datetime | None,
    sent_at: datetime | None,
) -> datetime:
    """The time the customer acted, corrected for device clock skew.

    As the Segment spec documents: `receivedAt - (sentAt - originalTimestamp)`
    when the client sent both; the device time when it sent no `sentAt`; the
    receive time when it sent no time at all.
    """
    if original_timestamp is None:
        return received_at
    original = as_utc(original_timestamp)
    if sent_at is None:
        return original
    return received_at - (as_utc(sent_at) - original)
