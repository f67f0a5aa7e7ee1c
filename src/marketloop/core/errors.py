"""Domain errors. Each carries what an RFC 9457 problem needs, but no HTTP code of its own.

The API maps `kind` to a status; the CLI maps it to an exit code and a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID = "invalid"  # the input is malformed or fails validation
    UNAUTHENTICATED = "unauthenticated"  # no credential or an unknown / disabled one
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    TOO_LARGE = "too-large"
    UNSUPPORTED = "unsupported-media"
    RATE_LIMITED = "rate-limited"  # too many requests for this credential; retry after a while


@dataclass(frozen=True, kw_only=True)
class FieldError:
    """One offending field: a JSON pointer-like path and what is wrong with it."""

    pointer: str
    detail: str
    index: int | None = None
    line: int | None = None  # for text input (a segment definition's text form): 1-based
    column: int | None = None


@dataclass(kw_only=True)
class MarketloopError(Exception):
    """Base of every error marketloop raises on purpose."""

    kind: ErrorKind
    code: str  # stable, dotted: becomes the problem `type` suffix
    title: str
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # e.g. WWW-Authenticate, Retry-After

    def __str__(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail else self.title
