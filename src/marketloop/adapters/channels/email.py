"""E-mail over SMTP (stdlib `smtplib`): one message per touch, STARTTLS and login when configured.

`SmtpServer` is the one SMTP client of the code base: metric alerts
(`adapters.email_alerts`) send through it too.

The `Message-ID` is derived from the idempotency key, so a mail system that
sees the same touch twice can drop the copy, and it is the provider id that
bounces and open-tracking callbacks refer to (a JSON list of
`{"messageId", "event": "delivered" | "opened" | "clicked" | "bounced"}`).
SMTP 4xx answers and lost connections are retryable; 5xx and refused
recipients are permanent.
"""

from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from marketloop.adapters.channels.http import json_payload
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, DeliveryStatus, Receipt, SendResult, Touch

EVENTS = {
    "delivered": DeliveryStatus.DELIVERED,
    "opened": DeliveryStatus.OPENED,
    "clicked": DeliveryStatus.CLICKED,
    "bounced": DeliveryStatus.FAILED,
}


def message_id(key: str, domain: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class SmtpServer:
    """One SMTP server as the settings describe it ([channels.email]): connect, STARTTLS, log in, send.

    The e-mail channel sends touches through it and metric alerts their
    e-mails; both get the same mapping of SMTP failures to `ChannelError`.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    def send(self, message: EmailMessage, *, channel: str) -> dict[str, tuple[int, bytes]]:
        """Send `message` to its To / Cc addresses; the recipients the server refused (when it took the others).

        Raises `ChannelError` (named `channel`) when nothing was sent: every
        recipient refused or a 5xx reply (permanent), a 4xx reply or a lost
        or refused connection (retryable).
        """
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._username:
                    smtp.login(self._username, self._password)
                return smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise ChannelError(channel=channel, message="recipient refused", retryable=False) from error
        except smtplib.SMTPResponseException as error:
            retryable = 400 <= error.smtp_code < 500
            raise ChannelError(
                channel=channel,
                message=f"SMTP {error.smtp_code}",
                retryable=retryable,
                provider_code=str(error.smtp_code),
            ) from error
        except (smtplib.SMTPException, OSError) as error:  # TimeoutError is an OSError
            raise ChannelError(channel=channel, message=f"SMTP server: {error}", retryable=True) from error


class SmtpEmailChannel:
    """The `Channel` port over an SMTP server."""

    kind = ChannelKind.EMAIL

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._name = name
        self._sender = sender
        self._server = SmtpServer(
            host=host, port=port, username=username, password=password, starttls=starttls, timeout=timeout
        )

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        if "@" not in touch.address:
            raise ChannelError(channel=self._name, message="not an e-mail address", retryable=False)
        message = self._message(touch)
        self._server.send(message, channel=self._name)
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=str(message["Message-ID"]))

    def _message(self, touch: Touch) -> EmailMessage:
        sender = touch.sender if "@" in touch.sender else self._sender  # `sender` may name an RM, not an address
        message = EmailMessage()
        message["From"] = sender
        message["To"] = touch.address
        message["Subject"] = touch.title or touch.body[:40]
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id(touch.idempotency_key, sender.rpartition("@")[2] or "marketloop")
        message["X-Marketloop-Campaign"] = touch.campaign
        body = touch.body + (f"\n\n{touch.link}" if touch.link else "")
        message.set_content(body)
        return message

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        events = json_payload(self._name, payload)
        if not isinstance(events, list) or not all(_valid(e) for e in events):
            raise ChannelError(channel=self._name, message="expected a list of {messageId, event}", retryable=False)
        return [Receipt(provider_message_id=str(e["messageId"]), status=EVENTS[e["event"]]) for e in events]


def _valid(event: Any) -> bool:
    return isinstance(event, dict) and bool(event.get("messageId")) and event.get("event") in EVENTS
