"""SMS (短信) through a generic HTTP SMS gateway, of the kind Chinese banks run in front of the operators.

Request (POST `url`, JSON, UTF-8)::

    {"account": "...", "mobile": "13800001234", "content": "【某某银行】…拒收请回复R",
     "templateId": "SMS_001", "params": {"name": "张先生"}, "msgId": "<idempotency key>",
     "parts": 2, "timestamp": "20260105090000", "sign": "<hex HMAC-SHA256(secret, account+timestamp+mobile+msgId)>"}

Answer: `{"code": "0", "msgId": "<gateway id>"}`; any other `code` is a refusal
(`retry_codes` lists the gateway codes that mean "busy, try later"). A bank's
gateway with other field names is served by `fields` (settings:
`[channels.sms] fields = {mobile = "phone", content = "msg"}`) and `success_code`.
Status reports (状态报告) arrive as a JSON list of
`{"msgId", "status": "DELIVRD" | <operator error>, "reportTime"}`; replies
`{"msgId", "type": "reply", "content": "R"}` are unsubscriptions.

Length (短信计费条数): a message of GSM-7 characters is 1 part up to 160
characters and 153 per part above; any Chinese character makes it UCS-2: 70
characters in 1 part, 67 per part of a long (concatenated) message. The
signature counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from marketloop.adapters.channels.http import hmac_hex, json_payload, request_json
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch
from marketloop.ports.clock import Clock

GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Field names a bank's gateway may rename: of the request, then of the answer (`id`: the gateway's message id).
REQUEST_FIELDS = ("account", "mobile", "content", "templateId", "params", "msgId", "parts", "timestamp", "sign")
FIELDS = (*REQUEST_FIELDS, "code", "msg", "id")
UNSUBSCRIBE_REPLIES = frozenset({"R", "T", "TD", "N", "0000", "退订"})
BEIJING = timezone(timedelta(hours=8))


def sms_units(text: str) -> int:
    """Length as the operator counts it: UCS-2 code units (a character outside the BMP counts 2)."""
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def sms_parts(text: str) -> int:
    """How many billed parts the operator splits `text` into (0 for an empty text)."""
    if not text:
        return 0
    single, multi = (160, 153) if all(c in GSM7 for c in text) else (70, 67)
    units = sms_units(text)
    return 1 if units <= single else math.ceil(units / multi)


def split_sms(text: str) -> list[str]:
    """`text` cut into the parts the operator sends (each ≤ 67 units, or 70 when it fits in one)."""
    if sms_parts(text) <= 1:
        return [text] if text else []
    size = 153 if all(c in GSM7 for c in text) else 67
    parts: list[str] = []
    current, units = "", 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if units + width > size:
            parts.append(current)
            current, units = "", 0
        current, units = current + char, units + width
    return [*parts, current] if current else parts


class HttpSmsChannel:
    """The `Channel` port over an HTTP SMS gateway; see the module docstring for the wire format."""

    kind = ChannelKind.SMS

    def __init__(
        self,
        *,
        name: str,
        url: str,
        account: str,
        secret: str,
        client: httpx.Client,
        clock: Clock,
        max_parts: int = 5,
        retry_codes: Sequence[str] = ("busy", "429", "503"),
        fields: Mapping[str, str] | None = None,
        success_code: str = "0",
    ) -> None:
        """`fields` renames request and answer fields for a bank's own gateway (e.g. {"mobile": "phone",
        "content": "msg"}); unknown names are refused. `success_code` is the answer's code for success."""
        unknown = sorted(set(fields or {}) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown SMS gateway fields {unknown}; known: {sorted(FIELDS)}")
        self._name = name
        self._url = url
        self._account = account
        self._secret = secret
        self._client = client
        self._clock = clock
        self._max_parts = max_parts
        self._retry_codes = frozenset(retry_codes)
        self._fields = {**{name: name for name in FIELDS}, "id": "msgId", **(fields or {})}
        self._success = success_code

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        parts = sms_parts(touch.body)
        if parts == 0 or parts > self._max_parts:
            raise ChannelError(
                channel=self._name,
                message=f"SMS of {sms_units(touch.body)} characters is {parts} parts (1 to {self._max_parts} allowed)",
                retryable=False,
            )
        stamp = self._clock.now().astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
        values: dict[str, Any] = {
            "account": self._account,
            "mobile": touch.address,
            "content": touch.body,
            "templateId": touch.template_id,
            "params": dict(touch.variables),
            "msgId": touch.idempotency_key,
            "parts": parts,
            "timestamp": stamp,
            "sign": hmac_hex(self._secret, self._account + stamp + touch.address + touch.idempotency_key),
        }
        body = {self._fields[name]: value for name, value in values.items()}
        answer = request_json(self._client, self._name, "POST", self._url, body=body)
        code = str(answer.get(self._fields["code"], ""))
        if code != self._success:
            raise ChannelError(
                channel=self._name,
                message=f"gateway refused: {str(answer.get(self._fields['msg'], ''))[:200]}",
                retryable=code in self._retry_codes,
                provider_code=code,
            )
        provider_id = str(answer.get(self._fields["id"], ""))
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=provider_id, parts=parts)

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        reports = json_payload(self._name, payload)
        if not isinstance(reports, list) or not all(isinstance(r, dict) and r.get("msgId") for r in reports):
            raise ChannelError(channel=self._name, message="expected a list of {msgId, status}", retryable=False)
        return [_receipt(report) for report in reports]


def _receipt(report: dict[str, Any]) -> Receipt:
    if report.get("type") == "reply":
        content = str(report.get("content", "")).strip().upper()
        status = DeliveryStatus.UNSUBSCRIBED if content in UNSUBSCRIBE_REPLIES else DeliveryStatus.DELIVERED
        return Receipt(provider_message_id=str(report["msgId"]), status=status, detail=f"reply {content[:20]}")
    code = str(report.get("status", ""))
    status = DeliveryStatus.DELIVERED if code == "DELIVRD" else DeliveryStatus.FAILED
    return Receipt(provider_message_id=str(report["msgId"]), status=status, at=_report_time(report), detail=code)


def _report_time(report: dict[str, Any]) -> datetime | None:
    text = str(report.get("reportTime", ""))
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).astimezone(UTC)
    except ValueError:
        return None
