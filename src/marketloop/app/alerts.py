"""Wiring of metric alerts: webhooks over httpx, e-mail through the SMTP server of the e-mail channel."""

from __future__ import annotations

import sqlalchemy as sa

from marketloop.adapters.channels.email import SmtpServer
from marketloop.adapters.email_alerts import EmailAlertSink
from marketloop.adapters.sql.analytics import SqlAnalyticsRepository
from marketloop.adapters.webhook_alerts import WebhookAlertSink
from marketloop.analytics.alerts import AlertService
from marketloop.analytics.service import AnalyticsService
from marketloop.app.settings import Settings
from marketloop.ports.clock import Clock


def alert_mailer(settings: Settings) -> EmailAlertSink | None:
    """Alert e-mail through [channels.email] (host, port, sender, login, STARTTLS); None when no host is set."""
    email = settings.channels.email
    if not email.host:
        return None
    server = SmtpServer(
        host=email.host,
        port=email.port,
        username=email.username,
        password=email.password,
        starttls=email.starttls,
        timeout=email.timeout_seconds,
    )
    return EmailAlertSink(server, sender=email.sender)


def alert_service(settings: Settings, analytics: AnalyticsService, clock: Clock, engine: sa.Engine) -> AlertService:
    return AlertService(
        analytics,
        WebhookAlertSink(),
        clock,
        repository=SqlAnalyticsRepository(engine),
        mailer=alert_mailer(settings),
    )
