"""Reading request bodies: size limits, gzip, and the write key in HTTP Basic auth."""

from __future__ import annotations

import base64
import binascii
import zlib

from starlette.requests import Request

from marketloop.collect.wire import MAX_BATCH_BYTES, invalid_body, too_large

# A compressed body may not inflate past this: the batch limit plus room for the envelope.
MAX_INFLATED_BYTES = MAX_BATCH_BYTES + 1


async def read_body(request: Request, limit: int = MAX_BATCH_BYTES) -> bytes:
    """The body, inflated when `Content-Encoding: gzip`; 413 past `limit` (default: the batch limit)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"The request is {declared} bytes; the limit is {limit}.")
    body = await request.body()
    if len(body) > limit:
        raise too_large(f"The request is {len(body)} bytes; the limit is {limit}.")
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return inflate(body)
    if encoding not in ("", "identity"):
        raise invalid_body(f"Content-Encoding {encoding!r} is not supported; use gzip or none.")
    return body


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
    header = request.headers.get("authorization")
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None
