"""WeCom (企业微信) messages from a relationship manager's account to an external contact (客户联系).

Speaks the WeCom server API: `GET /cgi-bin/gettoken?corpid&corpsecret`, then
`POST /cgi-bin/externalcontact/add_msg_template?access_token=…` with
`{"chat_type": "single", "external_userid": [...], "sender": "<RM user id>",
"text": {"content": ...}, "attachments": [{"msgtype": "link", ...}]}`; the RM
confirms the message in the WeCom app and WeCom delivers it. The answer's
`msgid` is the provider id; an external user in `fail_list` is a permanent
failure. Results (`get_groupmsg_send_result` detail lists) are parsed as
receipts: status 1 delivered, 2 (not a contact) and 3 (the customer's limit
reached) failed. `base_url` points at qyapi.weixin.qq.com or the bank's proxy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from marketloop.adapters.channels.http import json_payload, request_json
from marketloop.adapters.channels.tencent import AccessToken, platform_error
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch
from marketloop.ports.clock import Clock

RESULT_STATUS = {1: DeliveryStatus.DELIVERED, 2: DeliveryStatus.FAILED, 3: DeliveryStatus.FAILED}


class WeComChannel:
    """The `Channel` port over the WeCom external-contact message API."""

    kind = ChannelKind.WECOM

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        corp_id: str,
        secret: str,
        default_sender: str,
        client: httpx.Client,
        clock: Clock,
    ) -> None:
        self._name = name
        self._base = base_url.rstrip("/")
        self._sender = default_sender
        self._client = client
        self._token = AccessToken(
            channel=name,
            client=client,
            clock=clock,
            url=f"{self._base}/cgi-bin/gettoken",
            params={"corpid": corp_id, "corpsecret": secret},
        )

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        sender = touch.sender or self._sender
        if not sender:
            raise ChannelError(
                channel=self._name, message="no sending RM (sender) for a WeCom message", retryable=False
            )
        body: dict[str, Any] = {
            "chat_type": "single",
            "external_userid": [touch.address],
            "sender": sender,
            "text": {"content": touch.body},
        }
        if touch.link:
            link = {"title": touch.title or touch.body[:30], "url": touch.link}
            body["attachments"] = [{"msgtype": "link", "link": link}]
        url = f"{self._base}/cgi-bin/externalcontact/add_msg_template"
        answer = self._token.call(
            lambda token: request_json(self._client, self._name, "POST", url, body=body, params={"access_token": token})
        )
        if str(answer.get("errcode", "")) != "0":
            raise platform_error(self._name, answer, "WeCom refused the message")
        if touch.address in (answer.get("fail_list") or []):
            raise ChannelError(
                channel=self._name, message="the customer is not an external contact of the RM", retryable=False
            )
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=str(answer.get("msgid", "")))

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        answer = json_payload(self._name, payload)
        details = answer.get("detail_list") if isinstance(answer, dict) else None
        msgid = answer.get("msgid") if isinstance(answer, dict) else None
        if not isinstance(details, list) or not msgid:
            raise ChannelError(channel=self._name, message="expected {msgid, detail_list: [...]}", retryable=False)
        return [
            Receipt(provider_message_id=str(msgid), status=RESULT_STATUS[d["status"]], detail=str(d["status"]))
            for d in details
            if isinstance(d, dict) and d.get("status") in RESULT_STATUS
        ]
