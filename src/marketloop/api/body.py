"""Reading request bodies: size limits, gzip, and the write key in HTTP Basic auth.

Each reader comes twice: on a Starlette `Request`, and on the raw ASGI scope and
`receive` for the collection endpoints, which skip building a `Request`.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from marketloop.collect.wire import MAX_BATCH_BYTES, invalid_body, too_large

# A compressed body may not inflate past this: the batch limit plus room for the envelope.
MAX_INFLATED_BYTES = MAX_BATCH_BYTES + 1


async def read_body(request: Request, limit: int = MAX_BATCH_BYTES) -> bytes:
    """The body, inflated when `Content-Encoding: gzip`; 413 past `limit` (default: the batch limit)."""
    _check_declared(request.headers.get("content-length"), limit)
    body = await request.body()
    if len(body) > limit:
        raise too_large(f"The request is {len(body)} bytes; the limit is {limit}.")
    return _decoded(body, request.headers.get("content-encoding", ""))


class RequestHeaders:
    """The headers a collection endpoint reads, picked from the raw ASGI scope in one pass."""

    __slots__ = ("authorization", "content_encoding", "content_length")

    def __init__(self, scope: Scope) -> None:
        self.authorization: str | None = None
        self.content_length: str | None = None
        self.content_encoding: str | None = None
        for name, value in scope["headers"]:  # the first of repeated headers wins, as in `Request.headers`
            if name == b"authorization":
                self.authorization = self.authorization or value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = self.content_length or value.decode("latin-1")
            elif name == b"content-encoding":
                self.content_encoding = self.content_encoding or value.decode("latin-1")


async def receive_body(headers: RequestHeaders, receive: Receive, limit: int = MAX_BATCH_BYTES) -> bytes:
    """`read_body` on the raw ASGI `receive`; past `limit` it keeps counting but stops keeping the bytes.

    Raises `ClientDisconnect` when the client goes away first.
    """
    _check_declared(headers.content_length, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if size > limit:
        raise too_large(f"The request is {size} bytes; the limit is {limit}.")
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return _decoded(body, headers.content_encoding or "")


def _check_declared(declared: str | None, limit: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"The request is {declared} bytes; the limit is {limit}.")


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = encoding.lower()
    if not encoding or encoding == "identity":
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return inflate(body)
    raise invalid_body(f"Content-Encoding {encoding!r} is not supported; use gzip or none.")


def inflate(body: bytes) -> bytes:
    """Gzip or zlib data, inflated, refusing anything past the batch limit."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        data = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise invalid_body(f"The body is not valid gzip: {error}") from None
    if len(data) >= MAX_INFLATED_BYTES:
        raise too_large(f"The body inflates past the limit of {MAX_BATCH_BYTES} bytes.")
    return data


def basic_username(request: Request) -> str | None:
    """The username of `Authorization: Basic ...` (Segment SDKs put the write key there)."""
    return basic_username_of(request.headers.get("authorization"))


def basic_username_of(header: str | None) -> str | None:
    """The username of an `Authorization: Basic ...` header value, or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None
