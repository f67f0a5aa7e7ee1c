"""A small real SMTP server on 127.0.0.1 for tests: speaks enough RFC 5321 for `smtplib` and keeps messages.

    with LocalSmtpServer() as server:
        channel = SmtpEmailChannel(host="127.0.0.1", port=server.port, ...)
        ...
        assert server.messages[0]["To"] == "zhang@example.com"

`reject_recipients` answers 550 to those addresses; `answer_next(451)` makes
the next DATA fail with that code (4xx retryable, 5xx permanent).
"""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 localhost marketloop test SMTP")
        recipients: list[str] = []
        while line := self.rfile.readline(65536):
            command = line.decode("utf-8", errors="replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                recipients = []
                self.reply("250 OK")
            elif verb == "RCPT":
                self._recipient(command, recipients)
            elif verb == "DATA":
                self._data(recipients)
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:  # RSET, NOOP and anything else
                self.reply("250 OK")

    def _recipient(self, command: str, recipients: list[str]) -> None:
        address = command.partition(":")[2].strip().strip("<>")
        if address in self.server.owner.reject_recipients:
            self.reply("550 No such user")
            return
        recipients.append(address)
        self.reply("250 OK")

    def _data(self, recipients: list[str]) -> None:
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        while (line := self.rfile.readline(65536)) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        owner = self.server.owner
        if owner.next_answers:
            code = owner.next_answers.pop(0)
            self.reply(f"{code} injected failure")
            return
        parsed = message_from_bytes(b"".join(lines), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        owner.messages.append(parsed)
        owner.recipients.append(list(recipients))
        self.reply("250 OK queued")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LocalSmtpServer


class LocalSmtpServer:
    """A threaded SMTP server on an ephemeral port; a context manager."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.reject_recipients: set[str] = set()
        self.next_answers: list[int] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer_next(self, code: int) -> None:
        self.next_answers.append(code)

    def __enter__(self) -> LocalSmtpServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
