"""What every wire decoder hands to the collection service.

A decoder turns one HTTP request body into an `Inbound`: the credential it
carried and, per message, either an `Event` or the reason it was refused, by
the message's index in the request. Decoders never authenticate and never
write; they are pure functions of bytes and the receive time.

A decoder may keep its accepted messages in wire form (`Deferred`): when no
tracking plan has to look at them, the service writes them to the log straight
from the request bytes, without building an `Event` and its dicts per message
(the collection hot path; see benchmarks/ingest.py). Reading `Inbound.events`
turns them into `Event`s, so both forms give the same events.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.events import Event

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

# The source is not known while decoding: authentication comes after, from the
# header, the query string or a field of the body.
UNKNOWN_SOURCE = ""


class Deferred(Protocol):
    """Accepted messages still in wire form, in request order."""

    def __len__(self) -> int: ...

    def events(self) -> list[Event]:
        """The messages as `Event`s, `source_id` not yet set."""
        ...

    def records(self, source_id: str) -> list[bytes]:
        """The messages as event-log records: JSON equal to encoding `events()` with `source_id` set."""
        ...

    def partition_keys(self) -> list[str]:
        """Per record, what picks its partition: the user id, else the anonymous id, else the message id."""
        ...


class Inbound:
    """Messages decoded from one request, before authentication."""

    __slots__ = ("_deferred", "_events", "project", "rejected", "write_key")

    def __init__(
        self,
        *,
        events: list[Event] | None = None,
        rejected: list[FieldError] | None = None,
        write_key: str | None = None,
        project: str | None = None,
        deferred: Deferred | None = None,
    ) -> None:
        self._events: list[Event] = [] if events is None else events
        self._deferred = deferred
        self.rejected: list[FieldError] = [] if rejected is None else rejected
        self.write_key = write_key
        self.project = project

    @property
    def events(self) -> list[Event]:
        """Every accepted message as an `Event` (deferred ones are turned into `Event`s now, once)."""
        if self._deferred is not None:
            self._events.extend(self._deferred.events())
            self._deferred = None
        return self._events

    @property
    def deferred(self) -> Deferred | None:
        """The accepted messages when all of them are still in wire form, else None."""
        return self._deferred if not self._events else None

    @property
    def received(self) -> int:
        return len(self._events) + len(self._deferred or ()) + len(self.rejected)

    def __repr__(self) -> str:
        accepted = len(self._events) + len(self._deferred or ())
        return f"Inbound(accepted={accepted}, rejected={self.rejected!r}, write_key=..., project={self.project!r})"


def invalid_body(detail: str, *, pointer: str = "") -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="collect.invalid-body",
        title="The request body cannot be read",
        detail=detail,
        errors=[FieldError(pointer=pointer, detail=detail)] if pointer else [],
    )


def invalid_event(rejected: list[FieldError]) -> MarketloopError:
    """The error for a request that carried one message, and that message is invalid."""
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="collect.invalid-event",
        title="The event is not valid",
        detail=rejected[0].detail,
        errors=[FieldError(pointer=r.pointer, detail=r.detail) for r in rejected],
    )


def too_large(detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.TOO_LARGE,
        code="collect.too-large",
        title="The request or one of its events is too large",
        detail=detail,
    )


def msgspec_pointer(error: msgspec.ValidationError) -> str:
    """`$.properties.x` from msgspec's message, as a JSON pointer `/properties/x`."""
    message = str(error)
    marker = " - at `$"
    at = message.rfind(marker)
    if at < 0:
        return ""
    path = message[at + len(marker) : -1]
    return path.replace("[", ".").replace("]", "").replace(".", "/")


def msgspec_detail(error: msgspec.MsgspecError) -> str:
    message = str(error)
    at = message.rfind(" - at `$")
    return message[:at] if at >= 0 else message
