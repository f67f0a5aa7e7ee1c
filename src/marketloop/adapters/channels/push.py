"""App push (推送) through a generic push gateway HTTP API (the bank's own, or a vendor's behind it).

Request: `POST {url}` with `Authorization: Bearer <api key>` and
`{"requestId": "<idempotency key>", "token": "<device token or alias>",
"title", "body", "link", "extras": {"campaign", "journey"}}`; the answer is
`{"code": 0, "messageId": "..."}`. Callbacks are a JSON list of
`{"messageId", "event": "delivered" | "opened" | "clicked" | "failed", "time"}`
(`time` ISO 8601).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from marketloop.adapters.channels.http import json_payload, request_json
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch

EVENTS = {
    "delivered": DeliveryStatus.DELIVERED,
    "opened": DeliveryStatus.OPENED,
    "clicked": DeliveryStatus.CLICKED,
    "failed": DeliveryStatus.FAILED,
}


class HttpPushChannel:
    """The `Channel` port over an HTTP push gateway."""

    kind = ChannelKind.PUSH

    def __init__(self, *, name: str, url: str, api_key: str, client: httpx.Client) -> None:
        self._name = name
        self._url = url
        self._api_key = api_key
        self._client = client

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        body = {
            "requestId": touch.idempotency_key,
            "token": touch.address,
            "title": touch.title,
            "body": touch.body,
            "link": touch.link,
            "extras": {"campaign": touch.campaign, "journey": touch.journey},
        }
        headers = {"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": touch.idempotency_key}
        answer = request_json(self._client, self._name, "POST", self._url, body=body, headers=headers)
        if answer.get("code") not in (0, "0"):
            raise ChannelError(
                channel=self._name,
                message=f"push gateway refused: {str(answer.get('message', ''))[:200]}",
                retryable=False,
                provider_code=str(answer.get("code")),
            )
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=str(answer.get("messageId", "")))

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        events = json_payload(self._name, payload)
        if not isinstance(events, list) or not all(_valid(e) for e in events):
            raise ChannelError(
                channel=self._name, message="expected a list of {messageId, event, time}", retryable=False
            )
        return [
            Receipt(provider_message_id=str(e["messageId"]), status=EVENTS[e["event"]], at=_time(e.get("time")))
            for e in events
        ]


def _valid(event: Any) -> bool:
    return isinstance(event, dict) and bool(event.get("messageId")) and event.get("event") in EVENTS


def _time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
