"""What every wire decoder hands to the collection service.

A decoder turns one HTTP request body into an `Inbound`: the credential it
carried and, per message, either an `Event` or the reason it was refused, by
the message's index in the request. Decoders never authenticate and never
write; they are pure functions of bytes and the receive time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.events import Event

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

# The source is not known while decoding: authentication comes after, from the
# header, the query string or a field of the body.
UNKNOWN_SOURCE = ""


@dataclass(kw_only=True)
class Inbound:
    """Messages decoded from one request, before authentication."""

    events: list[Event] = field(default_factory=list)
    rejected: list[FieldError] = field(default_factory=list)
    write_key: str | None = None
    project: str | None = None

    @property
    def received(self) -> int:
        return len(self.events) + len(self.rejected)


def invalid_body(detail: str, *, pointer: str = "") -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="collect.invalid-body",
        title="The request body cannot be read",
        detail=detail,
        errors=[FieldError(pointer=pointer, detail=detail)] if pointer else [],
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
