"""What the HTTP channel adapters share: one JSON request with errors mapped to `ChannelError`.

Timeouts, connection errors, HTTP 429 and 5xx are retryable; other 4xx and
answers that are not JSON objects are permanent. Nothing here retries: the
send service decides when to try again.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from marketloop.ports.channels import ChannelError

DEFAULT_TIMEOUT = 5.0


def new_client(timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An HTTP client for one channel; tests pass an `httpx.MockTransport` or point it at a local server."""
    return httpx.Client(timeout=timeout, transport=transport, trust_env=False)


def request_json(
    client: httpx.Client,
    channel: str,
    method: str,
    url: str,
    *,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON object the provider answers; `ChannelError` for every failure, retryable when it may pass."""
    content = orjson.dumps(body) if body is not None else None
    send_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    try:
        response = client.request(method, url, content=content, headers=send_headers, params=params)
    except httpx.TimeoutException as error:
        raise ChannelError(
            channel=channel, message=f"gateway timed out ({type(error).__name__})", retryable=True
        ) from error
    except httpx.TransportError as error:
        raise ChannelError(channel=channel, message=f"gateway unreachable: {error}", retryable=True) from error
    return _answer(channel, response)


def _answer(channel: str, response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status == 429 or status >= 500:
        raise ChannelError(
            channel=channel, message=f"gateway answered HTTP {status}", retryable=True, provider_code=str(status)
        )
    if status >= 400:
        raise ChannelError(
            channel=channel,
            message=f"gateway refused the request (HTTP {status}): {response.text[:200]}",
            retryable=False,
            provider_code=str(status),
        )
    try:
        answer = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError as error:
        raise ChannelError(channel=channel, message="gateway answer is not JSON", retryable=False) from error
    if not isinstance(answer, dict):
        raise ChannelError(channel=channel, message="gateway answer is not a JSON object", retryable=False)
    return answer


def hmac_hex(secret: str, message: str) -> str:
    """HMAC-SHA256 of `message` under `secret`, lower-case hex."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def json_payload(channel: str, payload: bytes) -> Any:
    """A callback body as JSON; a permanent `ChannelError` when it is not JSON."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise ChannelError(channel=channel, message="callback body is not JSON", retryable=False) from error
