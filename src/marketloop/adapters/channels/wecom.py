"""WeCom (企业微信) messages from a relationship manager's account to an external contact (客户联系).

Speaks the WeCom server API: `GET /cgi-bin/gettoken?corpid&corpsecret`, then
`POST /cgi-bin/externalcontact/add_msg_template?access_token=…` with
`{"chat_type": "single", "external_userid": [...], "sender": "<RM user id>",
"text": {"content": ...}, "attachments": [{"msgtype": "link", ...}]}`; the RM
confirms the message in the WeCom app and WeCom delivers it. The answer's
`msgid` is the provider id; an external user in `fail_list` is a permanent
failure. Results (`get_groupmsg_send_result`: `send_list`, or the `detail_list`
of the older `get_group_msg_result`, with the message's `msgid`) are parsed as
receipts: status 1 delivered, 2 (not a contact) and 3 (the customer's limit
reached) failed. `base_url` points at qyapi.weixin.qq.com or the bank's proxy.

Sending twice. `add_msg_template` has no idempotency field, and its `msgid`
comes back only in the answer, so it cannot be recorded before the call. When
the answer is lost (a timeout, or a crash between WeCom's acceptance and the
ledger's update), the next attempt (`touch.attempt` > 1) first looks for the
message: `get_groupmsg_list_v2` lists the messages the company created for
the RM (`creator`, `filter_type` 0) since the key was first claimed, those
with the touch's exact text (and link) are checked with
`get_groupmsg_send_result` for the customer's `external_userid`, and a match
is answered as the send's result (its `msgid`) instead of a second message.
A lookup that fails is a `ChannelError` like a failed send: nothing is sent.

What is left: (1) an identical message (same RM, text, link, customer) made
by other means in the window is taken for this touch, so this touch is not
sent; the customer already has that text. (2) WeCom does not say how soon a
created message shows in the list; retries come 30 s or more later and a dead
worker's claim is taken over after 10 minutes, but a list that lags longer
would let a second message through. (3) The list covers at most one month
(WeCom's limit), longer than retries last. (4) More than `MAX_LOOKUP_PAGES`
pages of the RM's messages in the window: the attempt fails for good rather
than guess (the touch is FAILED with the reason, for someone to check).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import httpx

from marketloop.adapters.channels.http import json_payload, request_json
from marketloop.adapters.channels.tencent import AccessToken, platform_error
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch
from marketloop.ports.clock import Clock

RESULT_STATUS = {1: DeliveryStatus.DELIVERED, 2: DeliveryStatus.FAILED, 3: DeliveryStatus.FAILED}
LIST_SPAN = timedelta(days=30)  # get_groupmsg_list_v2 refuses a window longer than one month
LOOKUP_SLACK = timedelta(minutes=5)  # clock skew between us and WeCom around the window's ends
MAX_LOOKUP_PAGES = 20  # of the message list (100 a page) and of each message's results (1,000 a page)


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
        self._clock = clock
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
        if touch.attempt > 1:
            existing = self._already_created(touch, sender)
            if existing:
                return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=existing)
        body: dict[str, Any] = {
            "chat_type": "single",
            "external_userid": [touch.address],
            "sender": sender,
            "text": {"content": touch.body},
        }
        if touch.link:
            body["attachments"] = [{"msgtype": "link", "link": _link(touch)}]
        answer = self._post("add_msg_template", body)
        if str(answer.get("errcode", "")) != "0":
            raise platform_error(self._name, answer, "WeCom refused the message")
        if touch.address in (answer.get("fail_list") or []):
            raise ChannelError(
                channel=self._name, message="the customer is not an external contact of the RM", retryable=False
            )
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=str(answer.get("msgid", "")))

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base}/cgi-bin/externalcontact/{endpoint}"
        return self._token.call(
            lambda token: request_json(self._client, self._name, "POST", url, body=body, params={"access_token": token})
        )

    def _already_created(self, touch: Touch, sender: str) -> str:
        """The msgid of a message WeCom already has for this touch (an earlier attempt whose answer was lost),
        or "" when there is none; see the module docstring."""
        end = self._clock.now() + LOOKUP_SLACK
        since = (touch.first_attempted_at or end - LIST_SPAN) - LOOKUP_SLACK
        window = {"start_time": int(max(since, end - LIST_SPAN).timestamp()), "end_time": int(end.timestamp())}
        query = {"chat_type": "single", "creator": sender, "filter_type": 0, "limit": 100, **window}
        for message in self._pages("get_groupmsg_list_v2", query, "group_msg_list"):
            if _same_content(message, touch) and self._sent_to(str(message.get("msgid", "")), sender, touch.address):
                return str(message["msgid"])
        return ""

    def _sent_to(self, msgid: str, sender: str, external_user: str) -> bool:
        """Whether the message's task for `sender` includes `external_user` (sent or still waiting for the RM)."""
        query: dict[str, Any] = {"msgid": msgid, "userid": sender, "limit": 1000}
        return msgid != "" and any(
            row.get("external_userid") == external_user for row in self._pages("get_groupmsg_send_result", query)
        )

    def _pages(self, endpoint: str, query: dict[str, Any], rows: str = "send_list") -> Iterator[dict[str, Any]]:
        cursor = ""
        for _ in range(MAX_LOOKUP_PAGES):
            answer = self._post(endpoint, {**query, "cursor": cursor} if cursor else query)
            if str(answer.get("errcode", "")) != "0":
                raise platform_error(self._name, answer, f"could not look up earlier messages ({endpoint})")
            yield from (row for row in answer.get(rows) or [] if isinstance(row, dict))
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return
        raise ChannelError(
            channel=self._name,
            message=f"too many earlier messages to tell whether this one was already created ({endpoint}); not sent",
            retryable=False,
        )

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        answer = json_payload(self._name, payload)
        details = _result_rows(answer)
        msgid = answer.get("msgid") if isinstance(answer, dict) else None
        if not isinstance(details, list) or not msgid:
            raise ChannelError(channel=self._name, message="expected {msgid, send_list: [...]}", retryable=False)
        return [
            Receipt(provider_message_id=str(msgid), status=RESULT_STATUS[d["status"]], detail=str(d["status"]))
            for d in details
            if isinstance(d, dict) and d.get("status") in RESULT_STATUS
        ]


def _link(touch: Touch) -> dict[str, str]:
    return {"title": touch.title or touch.body[:30], "url": touch.link}


def _same_content(message: dict[str, Any], touch: Touch) -> bool:
    """Whether a listed message has the touch's text and, when the touch has a link, that link."""
    text = message.get("text")
    if not isinstance(text, dict) or text.get("content") != touch.body:
        return False
    attachments = [a.get("link") for a in message.get("attachments") or [] if isinstance(a, dict)]
    links = [link.get("url") for link in attachments if isinstance(link, dict)]
    return not touch.link or touch.link in links


def _result_rows(answer: object) -> object:
    if not isinstance(answer, dict):
        return None
    return answer.get("send_list", answer.get("detail_list"))
