"""Signed webhooks: a touch POSTed as JSON to a bank system (call-centre list, CRM, a partner).

Headers: `X-Marketloop-Timestamp` (Unix seconds), `X-Marketloop-Signature:
sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` and `Idempotency-Key`.
The receiver checks the signature with `verify_signature` (or the same three
lines in its own language) and refuses timestamps older than five minutes.
Any 2xx is acceptance; the answer's `id` (when JSON) is the provider id.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import httpx
import orjson

from marketloop.adapters.channels.http import hmac_hex, json_payload
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch
from marketloop.ports.clock import Clock

MAX_SKEW_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac_hex(secret, f"{timestamp}.{body.decode()}")


def verify_signature(secret: str, timestamp: str, body: bytes, given: str, now: float) -> bool:
    """True when `given` signs `body` at `timestamp` and the timestamp is within five minutes of `now`."""
    try:
        fresh = abs(now - int(timestamp)) <= MAX_SKEW_SECONDS
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given)


class WebhookChannel:
    """The `Channel` port as a signed HTTP POST; `kind` says which channel's policy applies (default call)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        secret: str,
        client: httpx.Client,
        clock: Clock,
        kind: ChannelKind = ChannelKind.CALL,
    ) -> None:
        self._name = name
        self._url = url
        self._secret = secret
        self._client = client
        self._clock = clock
        self.kind = kind

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        body = orjson.dumps(
            {
                "idempotency_key": touch.idempotency_key,
                "customer": touch.customer,
                "channel": touch.channel.value,
                "purpose": touch.purpose.value,
                "address": touch.address,
                "title": touch.title,
                "body": touch.body,
                "variables": dict(touch.variables),
                "link": touch.link,
                "campaign": touch.campaign,
                "journey": touch.journey,
            }
        )
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Marketloop-Timestamp": timestamp,
            "X-Marketloop-Signature": signature(self._secret, timestamp, body),
            "Idempotency-Key": touch.idempotency_key,
        }
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as error:
            raise ChannelError(channel=self._name, message="webhook timed out", retryable=True) from error
        except httpx.TransportError as error:
            raise ChannelError(channel=self._name, message=f"webhook unreachable: {error}", retryable=True) from error
        if not response.is_success:
            code = response.status_code
            retryable = code == 429 or code >= 500
            raise ChannelError(
                channel=self._name,
                message=f"webhook answered HTTP {code}",
                retryable=retryable,
                provider_code=str(code),
            )
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=_answer_id(response, touch))

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        events = json_payload(self._name, payload)
        statuses = {s.value: s for s in DeliveryStatus}
        if not isinstance(events, list) or not all(
            isinstance(e, dict) and e.get("id") and e.get("status") in statuses for e in events
        ):
            raise ChannelError(channel=self._name, message="expected a list of {id, status}", retryable=False)
        return [Receipt(provider_message_id=str(e["id"]), status=statuses[e["status"]]) for e in events]


def _answer_id(response: httpx.Response, touch: Touch) -> str:
    try:
        answer = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and answer.get("id"):
        return str(answer["id"])[:200]
    return touch.idempotency_key
