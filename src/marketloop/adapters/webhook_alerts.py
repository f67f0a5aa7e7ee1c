"""`AlertSink` over HTTP: each alert is POSTed as JSON to the rule's webhook with httpx.

Connection errors, timeouts, 429 and 5xx answers are retried up to
`attempts` times with exponential backoff (`sleep` is injectable so tests
do not wait); any other answer is final. A failure is reported in the
`AlertDelivery`, never raised, and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict

import httpx
import orjson

from marketloop.ports.analytics import AlertDelivery, AlertMessage

log = logging.getLogger(__name__)
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class WebhookAlertSink:
    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client or httpx.Client(timeout=10.0)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def deliver(self, url: str, message: AlertMessage) -> AlertDelivery:
        body = orjson.dumps(asdict(message))
        headers = {"Content-Type": "application/json"}
        outcome = AlertDelivery(ok=False, status=None, error="not attempted", to=url)
        for attempt in range(1, self._attempts + 1):
            try:
                answer = self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as error:
                outcome = AlertDelivery(ok=False, status=None, error=f"{type(error).__name__}: {error}", to=url)
            else:
                if answer.is_success:
                    return AlertDelivery(ok=True, status=answer.status_code, error=None, to=url)
                outcome = AlertDelivery(ok=False, status=answer.status_code, error=f"HTTP {answer.status_code}", to=url)
                if answer.status_code not in RETRYABLE:
                    break
            if attempt < self._attempts:
                log.warning("alert %s to %s failed (%s); retry %d", message.rule, url, outcome.error, attempt)
                self._sleep(self._backoff * 2 ** (attempt - 1))
        log.error("alert %s to %s not delivered: %s", message.rule, url, outcome.error)
        return outcome

    def close(self) -> None:
        self._client.close()
