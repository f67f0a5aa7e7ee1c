"""WeChat official-account template messages (微信公众号模板消息) to a follower's openid.

Speaks the official-account API: `GET /cgi-bin/token?grant_type=client_credential&appid&secret`,
then `POST /cgi-bin/message/template/send?access_token=…` with `{"touser": openid,
"template_id", "url", "data": {"<key>": {"value": ...}}, "client_msg_id": "<idempotency key>"}`
(WeChat refuses a repeated `client_msg_id`); the answer's `msgid` is the provider id.
The delivery result arrives as the `TEMPLATESENDJOBFINISH` event (XML:
`<MsgID>` and `<Status>` success / failed:user block / failed: system failed).
WeChat reports no reads: opens and clicks come from the bank's own page behind
the template's `url` (or its proxy), posted as JSON `[{"msgid": "<WeChat msgid>",
"event": "opened" | "clicked", "time": "<ISO 8601 with offset>"}]`, so that a
customer who reads on WeChat counts for the learned channel preference and
the `wechat_habit` tag. `base_url` points at api.weixin.qq.com or the bank's proxy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from marketloop.adapters.channels.http import json_payload, request_json
from marketloop.adapters.channels.tencent import AccessToken, platform_error
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch
from marketloop.ports.clock import Clock

CLIENT_MSG_ID_LENGTH = 64

# The callback is a tiny fixed XML document; two fields are read with patterns rather than an XML parser,
# so no entity expansion can happen on input from the network.
_MSG_ID = re.compile(r"<MsgID>\s*(\d{1,30})\s*</MsgID>")
_STATUS = re.compile(r"<Status>\s*(?:<!\[CDATA\[)?([^<\]]{1,60})(?:\]\]>)?\s*</Status>")


def client_msg_id(key: str) -> str:
    """WeChat's de-duplication id (at most 64 characters) for a touch key: the key itself when it fits, else its
    SHA-256 (cutting it would give two customers' touches of one journey step the same id, and WeChat refuses
    the second as a repeat)."""
    return key if len(key) <= CLIENT_MSG_ID_LENGTH else hashlib.sha256(key.encode()).hexdigest()


class WeChatTemplateChannel:
    """The `Channel` port over WeChat template messages."""

    kind = ChannelKind.WECHAT

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        app_id: str,
        app_secret: str,
        default_template_id: str,
        client: httpx.Client,
        clock: Clock,
    ) -> None:
        self._name = name
        self._base = base_url.rstrip("/")
        self._template = default_template_id
        self._client = client
        self._token = AccessToken(
            channel=name,
            client=client,
            clock=clock,
            url=f"{self._base}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": app_id, "secret": app_secret},
        )

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        template = touch.template_id or self._template
        if not template:
            raise ChannelError(channel=self._name, message="no WeChat template_id", retryable=False)
        data = {k: {"value": v} for k, v in touch.variables.items()} or {"content": {"value": touch.body}}
        body = {
            "touser": touch.address,
            "template_id": template,
            "url": touch.link,
            "data": data,
            "client_msg_id": client_msg_id(touch.idempotency_key),
        }
        url = f"{self._base}/cgi-bin/message/template/send"
        answer = self._token.call(
            lambda token: request_json(self._client, self._name, "POST", url, body=body, params={"access_token": token})
        )
        if str(answer.get("errcode", "")) != "0":
            raise platform_error(self._name, answer, "WeChat refused the template message")
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=str(answer.get("msgid", "")))

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        if payload.lstrip()[:1] in (b"[", b"{"):
            return self._engagement(payload)
        text = payload.decode("utf-8", errors="replace")
        msg_id, status = _MSG_ID.search(text), _STATUS.search(text)
        if "TEMPLATESENDJOBFINISH" not in text or msg_id is None or status is None:
            raise ChannelError(channel=self._name, message="not a TEMPLATESENDJOBFINISH event", retryable=False)
        value = status.group(1).strip()
        result = DeliveryStatus.DELIVERED if value == "success" else DeliveryStatus.FAILED
        return [Receipt(provider_message_id=msg_id.group(1), status=result, detail=value)]

    def _engagement(self, payload: bytes) -> Sequence[Receipt]:
        """Opens and clicks reported by the bank's landing page (one report or a list of them)."""
        reports = json_payload(self._name, payload)
        reports = [reports] if isinstance(reports, dict) else reports
        if not isinstance(reports, list) or not reports or not all(_engagement_report(r) for r in reports):
            raise ChannelError(
                channel=self._name, message='expected [{msgid, event: "opened" | "clicked", time}]', retryable=False
            )
        return [
            Receipt(provider_message_id=str(r["msgid"]), status=ENGAGEMENT[r["event"]], at=_time(r.get("time")))
            for r in reports
        ]


ENGAGEMENT = {"opened": DeliveryStatus.OPENED, "clicked": DeliveryStatus.CLICKED}


def _engagement_report(report: Any) -> bool:
    return isinstance(report, dict) and str(report.get("msgid", "")).strip() != "" and report.get("event") in ENGAGEMENT


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time with its offset; None (the receipt's arrival time is used) when absent or naive."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
