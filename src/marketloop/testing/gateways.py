"""Fake provider gateways for the HTTP channel adapters, served through `httpx.MockTransport`.

Each fake speaks its provider's protocol closely enough to catch mistakes:
the SMS gateway checks the HMAC signature and de-duplicates by `msgId`,
WeCom and WeChat hand out access tokens and refuse expired ones, WeChat
de-duplicates by `client_msg_id`, the webhook receiver verifies the
signature. Any fake can be told to answer an HTTP error or to time out,
before or after it has done what the request asked::

    gateway = FakeSmsGateway(secret="s3cret")
    channel = HttpSmsChannel(..., client=new_client(transport=gateway.transport()))
    gateway.fail_next(500)        # or gateway.time_out_next(), or gateway.lose_answer_next()
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson


class FakeGateway:
    """What every fake shares: recorded requests, queued failures, JSON answers."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._failures: list[int | None] = []  # HTTP status, or None for a timeout
        self._lost = 0  # requests handled whose answer then times out
        self._ids = itertools.count(1)

    def fail_next(self, status: int = 500, *, times: int = 1) -> None:
        self._failures += [status] * times

    def time_out_next(self, *, times: int = 1) -> None:
        self._failures += [None] * times

    def lose_answer_next(self, *, times: int = 1) -> None:
        """The next requests are carried out, then time out: the provider has the message, the caller not its id."""
        self._lost += times

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._failures:
            status = self._failures.pop(0)
            if status is None:
                raise httpx.ReadTimeout("fake gateway timed out", request=request)
            return httpx.Response(status, json={"error": "injected"})
        answer = self.handle(request)
        if self._lost and self.has_effect(request):
            self._lost -= 1
            raise httpx.ReadTimeout("fake gateway took the request, then timed out", request=request)
        return answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def has_effect(self, request: httpx.Request) -> bool:
        """Whether losing this request's answer loses something (`lose_answer_next` skips those that do not)."""
        return True

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"


def _json(request: httpx.Request) -> Any:
    return orjson.loads(request.content)


def _sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class FakeSmsGateway(FakeGateway):
    """The generic HTTP SMS gateway; `messages` holds each accepted message once."""

    def __init__(self, *, account: str = "bank", secret: str = "secret") -> None:  # noqa: S107 - a test fake
        super().__init__()
        self.account = account
        self.secret = secret
        self.messages: dict[str, dict[str, Any]] = {}
        self._ids_by_key: dict[str, str] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = _json(request)
        expected = _sign(self.secret, body["account"] + body["timestamp"] + body["mobile"] + body["msgId"])
        if body["account"] != self.account or not hmac.compare_digest(expected, body["sign"]):
            return httpx.Response(200, json={"code": "sign-error", "msg": "签名校验失败"})
        key = body["msgId"]
        if key not in self._ids_by_key:  # a repeated msgId is not sent again
            self._ids_by_key[key] = self.next_id("sms-")
            self.messages[key] = body
        return httpx.Response(200, json={"code": "0", "msg": "ok", "msgId": self._ids_by_key[key]})


class FakePushGateway(FakeGateway):
    def __init__(self, *, api_key: str = "push-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.messages: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"code": 401, "message": "bad api key"})
        body = _json(request)
        self.messages.append(body)
        return httpx.Response(200, json={"code": 0, "messageId": self.next_id("push-")})


class _TencentFake(FakeGateway):
    token_path = ""

    def __init__(self) -> None:
        super().__init__()
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def issue_token(self) -> httpx.Response:
        self.tokens_issued += 1
        token = f"token-{self.tokens_issued}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    def has_effect(self, request: httpx.Request) -> bool:
        return request.url.path != self.token_path

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.token_path:
            return self.issue_token()
        if request.url.params.get("access_token") not in self.valid_tokens:
            return httpx.Response(200, json={"errcode": 42001, "errmsg": "access_token expired"})
        return self.message(request, _json(request))

    def message(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        raise NotImplementedError


class FakeWeCom(_TencentFake):
    """WeCom's token, `externalcontact/add_msg_template`, and the lookups of what was created:
    `get_groupmsg_list_v2` (by creator, creator type and a window of at most a month, paged by cursor) and
    `get_groupmsg_send_result` (a message's recipients for one RM, status 0 until the RM sends it).
    `not_contacts` land in `fail_list`; `messages` are the accepted request bodies in order."""

    token_path = "/cgi-bin/gettoken"  # noqa: S105 - a URL path
    _PATHS = ("add_msg_template", "get_groupmsg_list_v2", "get_groupmsg_send_result")

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.not_contacts: set[str] = set()
        self._now = now or (lambda: datetime.now(UTC))
        self._created: list[tuple[str, int, dict[str, Any]]] = []  # (msgid, create_time, body)

    def message(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        if not request.url.path.startswith("/cgi-bin/externalcontact/") or endpoint not in self._PATHS:
            return httpx.Response(404)
        if endpoint == "get_groupmsg_list_v2":
            return self._list(body)
        if endpoint == "get_groupmsg_send_result":
            return self._result(body)
        failed = [u for u in body["external_userid"] if u in self.not_contacts]
        self.messages.append(body)
        msgid = self.next_id("msgGCA")
        self._created.append((msgid, int(self._now().timestamp()), body))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "fail_list": failed, "msgid": msgid})

    def _list(self, body: dict[str, Any]) -> httpx.Response:
        start, end = int(body["start_time"]), int(body["end_time"])
        if body.get("chat_type", "single") != "single" or not 0 <= end - start <= 31 * 86400:
            return httpx.Response(200, json={"errcode": 40058, "errmsg": "invalid start_time / end_time"})
        company = body.get("filter_type") != 1  # every message here is company-created (create_type 0)
        found = [
            {
                "msgid": msgid,
                "creator": sent["sender"],
                "create_type": 0,
                "create_time": created,
                "text": sent.get("text", {}),
                "attachments": sent.get("attachments", []),
            }
            for msgid, created, sent in self._created
            if company and start <= created <= end and body.get("creator") in (None, sent["sender"])
        ]
        return _page(found, body, "group_msg_list", default_limit=50)

    def _result(self, body: dict[str, Any]) -> httpx.Response:
        sent = next((b for m, _, b in self._created if m == body.get("msgid")), None)
        if sent is None:
            return httpx.Response(200, json={"errcode": 41063, "errmsg": "msgid not found"})
        rows = [
            {"external_userid": user, "userid": sent["sender"], "status": 2 if user in self.not_contacts else 0}
            for user in sent["external_userid"]
            if body.get("userid") == sent["sender"]
        ]
        return _page(rows, body, "send_list", default_limit=500)


def _page(rows: list[dict[str, Any]], body: dict[str, Any], key: str, *, default_limit: int) -> httpx.Response:
    """One page of `rows` after the request's `cursor` (an offset here), with `next_cursor` when more follow."""
    start = int(body.get("cursor") or 0)
    end = start + int(body.get("limit") or default_limit)
    answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", key: rows[start:end]}
    answer["next_cursor"] = str(end) if end < len(rows) else ""
    return httpx.Response(200, json=answer)


class FakeWeChat(_TencentFake):
    """The official account's token and `message/template/send`; `unsubscribed` openids get 43004."""

    token_path = "/cgi-bin/token"  # noqa: S105 - a URL path

    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, dict[str, Any]] = {}
        self.unsubscribed: set[str] = set()
        self._ids_by_key: dict[str, str] = {}

    def message(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path != "/cgi-bin/message/template/send":
            return httpx.Response(404)
        if body["touser"] in self.unsubscribed:
            return httpx.Response(200, json={"errcode": 43004, "errmsg": "require subscribe"})
        key = body.get("client_msg_id") or self.next_id("anon-")
        if key not in self._ids_by_key:
            self._ids_by_key[key] = str(200228000 + len(self._ids_by_key) + 1)
            self.messages[key] = body
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "msgid": int(self._ids_by_key[key])})


class FakeWebhookReceiver(FakeGateway):
    """A bank system receiving signed webhooks; refuses (401) a wrong signature."""

    def __init__(self, *, secret: str = "hook-secret") -> None:  # noqa: S107 - a test fake
        super().__init__()
        self.secret = secret
        self.bodies: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        timestamp = request.headers.get("X-Marketloop-Timestamp", "")
        expected = "sha256=" + _sign(self.secret, f"{timestamp}.{request.content.decode()}")
        if not hmac.compare_digest(expected, request.headers.get("X-Marketloop-Signature", "")):
            return httpx.Response(401, json={"error": "bad signature"})
        self.bodies.append(_json(request))
        return httpx.Response(202, json={"id": self.next_id("hook-")})
