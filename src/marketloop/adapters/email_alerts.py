"""`AlertMailer` over SMTP: one e-mail per alert to the rule's recipients, through the e-mail channel's `SmtpServer`.

The server, sender and credentials are the e-mail channel's ([channels.email]).
The `Message-ID` is derived from the rule and the day, so a mail system that
sees the same alert twice (a retry after a lost answer) can drop the copy.
Lost connections and 4xx replies are retried up to `attempts` times with
exponential backoff (`sleep` is injectable so tests do not wait); a refused
recipient or a 5xx reply is final. A failure is reported in the
`AlertDelivery`, never raised, and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate

from marketloop.adapters.channels.email import SmtpServer, message_id
from marketloop.ports.analytics import AlertDelivery, AlertMessage
from marketloop.ports.channels import ChannelError

log = logging.getLogger(__name__)
KINDS = {"threshold": "阈值 threshold", "anomaly": "异常 anomaly"}


class EmailAlertSink:
    def __init__(
        self,
        server: SmtpServer,
        *,
        sender: str,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._server = server
        self._sender = sender
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def mail(self, recipients: Sequence[str], message: AlertMessage) -> AlertDelivery:
        to = ", ".join(recipients)
        mail = compose(message, recipients, self._sender)
        outcome = AlertDelivery(ok=False, status=None, error="not attempted", to=to)
        for attempt in range(1, self._attempts + 1):
            try:
                refused = self._server.send(mail, channel="alert-email")
            except ChannelError as error:
                code = int(error.provider_code) if error.provider_code.isdigit() else None
                outcome = AlertDelivery(ok=False, status=code, error=error.message, to=to)
                if not error.retryable:
                    break
            else:
                if not refused:
                    return AlertDelivery(ok=True, status=250, error=None, to=to)
                named = ", ".join(f"{address} ({answer[0]})" for address, answer in sorted(refused.items()))
                outcome = AlertDelivery(ok=False, status=250, error=f"recipients refused: {named}", to=to)
                break  # the others have it: sending again would duplicate their copy
            if attempt < self._attempts:
                log.warning("alert %s to %s failed (%s); retry %d", message.rule, to, outcome.error, attempt)
                self._sleep(self._backoff * 2 ** (attempt - 1))
        log.error("alert %s to %s not delivered: %s", message.rule, to, outcome.error)
        return outcome


def compose(message: AlertMessage, recipients: Sequence[str], sender: str) -> EmailMessage:
    """The e-mail of an alert: Chinese first, the figures one per line."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = f"【指标预警】{message.rule} {message.day.isoformat()}: {message.value:g}"
    mail["Date"] = formatdate(localtime=False)
    key = f"alert:{message.rule}:{message.day.isoformat()}"
    mail["Message-ID"] = message_id(key, sender.rpartition("@")[2] or "marketloop")
    mail["X-Marketloop-Alert"] = message.rule
    baseline = "—" if message.baseline is None else f"{message.baseline:g}"
    lines = [
        f"指标预警 metric alert: {message.rule}",
        f"指标 metric: {message.metric}",
        f"日期 day: {message.day.isoformat()}",
        f"数值 value: {message.value:g}",
        f"基线 baseline: {baseline}",
        f"类型 kind: {KINDS.get(message.kind, message.kind)}",
        f"原因 reason: {message.reason}",
        f"检查时间 checked at: {message.checked_at.isoformat()}",
    ]
    mail.set_content("\n".join(lines) + "\n")
    return mail
