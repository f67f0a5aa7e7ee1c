"""A fake push and SMS provider on a real HTTP port, for a `marketloop serve` running in another process.

`marketloop.testing.gateways` fakes the providers inside the test process
(`httpx.MockTransport`); a server started with `ServerProcess` needs a port
instead. `HttpGateways` is one threaded HTTP server that speaks both
protocols of the adapters (`adapters/channels/push.py`, `sms.py`):

- `POST /push`: `Authorization: Bearer <api key>`, `{"requestId", "token", ...}` → `{"code": 0, "messageId"}`;
- `POST /sms`: `{"account", "mobile", "msgId", "timestamp", "sign", ...}` with the HMAC signature checked
  → `{"code": "0", "msgId"}`.

Like a real gateway it de-duplicates by the request's idempotency field
(`requestId`, `msgId`): a repeat is answered with the first message id and
not delivered again. `received` records every request it accepted (repeats
included), `distinct` counts the keys::

    with HttpGateways() as gateways:
        toml = gateways.settings_toml()   # [channels.push] / [channels.sms] pointing here
        ...
        gateways.received                 # [Accepted(channel, key, repeat), ...]
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson

PUSH_KEY = "fault-push-key"
SMS_ACCOUNT = "fault-bank"
SMS_SECRET = "fault-sms-secret"  # noqa: S105 - a test fake's secret


@dataclass(frozen=True)
class Accepted:
    """One request the gateway accepted: its channel, idempotency key and whether it was a repeat."""

    channel: str
    key: str
    repeat: bool


class HttpGateways:
    """See the module docstring. Thread-safe; `start` / `stop`, or use it as a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._message_ids: dict[str, str] = {}
        self.received: list[Accepted] = []
        self._server = _Server((host, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-gateways", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HttpGateways:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HttpGateways:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def settings_toml(self, *, sms_signature: str = "【示例银行】") -> str:
        """The `[channels.push]` and `[channels.sms]` sections of a `marketloop.toml` that send here."""
        return (
            f'[channels.push]\nurl = "{self.url}/push"\napi_key = "{PUSH_KEY}"\n\n'
            f'[channels.sms]\nurl = "{self.url}/sms"\naccount = "{SMS_ACCOUNT}"\nsecret = "{SMS_SECRET}"\n'
            f'signature = "{sms_signature}"\n'
        )

    @property
    def count(self) -> int:
        """How many requests it accepted so far (repeats included)."""
        return len(self.received)

    @property
    def distinct(self) -> int:
        """How many distinct keys it accepted: the messages it delivered."""
        return len(self._message_ids)

    def accept(self, channel: str, key: str) -> str:
        """Record a request for `key`; the message id (the first one's, for a repeat)."""
        with self._lock:
            found = self._message_ids.get(key)
            self.received.append(Accepted(channel=channel, key=key, repeat=found is not None))
            if found is None:
                found = self._message_ids[key] = f"{channel}-{next(self._ids)}"
            return found

    def answer(self, path: str, headers: Any, body: dict[str, Any]) -> tuple[HTTPStatus, dict[str, Any]]:
        """The gateway's answer to one request (see the module docstring)."""
        if path == "/push":
            if headers.get("Authorization") != f"Bearer {PUSH_KEY}":
                return HTTPStatus.UNAUTHORIZED, {"code": 401, "message": "bad api key"}
            return HTTPStatus.OK, {"code": 0, "messageId": self.accept("push", str(body["requestId"]))}
        if path == "/sms":
            signed = str(body["account"]) + str(body["timestamp"]) + str(body["mobile"]) + str(body["msgId"])
            expected = hmac.new(SMS_SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
            if body["account"] != SMS_ACCOUNT or not hmac.compare_digest(expected, str(body["sign"])):
                return HTTPStatus.OK, {"code": "sign-error", "msg": "签名校验失败"}
            return HTTPStatus.OK, {"code": "0", "msg": "ok", "msgId": self.accept("sms", str(body["msgId"]))}
        return HTTPStatus.NOT_FOUND, {"code": 404, "message": f"no such path {path}"}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-connection (the fault test's SIGKILL) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(gateways: HttpGateways) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the adapters' httpx clients reuse their connections
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = orjson.loads(self.rfile.read(length))
                status, answer = gateways.answer(self.path, self.headers, body)
            except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                status, answer = HTTPStatus.BAD_REQUEST, {"code": 400, "message": str(error)}
            content = orjson.dumps(answer)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            return  # a request line per send would drown the test output

    return Handler
