"""Access tokens of the Tencent platforms (企业微信 WeCom and 微信公众号 WeChat official accounts).

Both hand out an `access_token` valid for `expires_in` seconds (7200) from a
token endpoint and answer `{"errcode": 42001 | 40001 | 40014, …}` when it has
expired or is invalid; the token is then fetched again once. Tokens are kept
in memory per channel and renewed five minutes before they expire.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from marketloop.adapters.channels.http import request_json
from marketloop.ports.channels import ChannelError
from marketloop.ports.clock import Clock

TOKEN_EXPIRED = frozenset({"40001", "40014", "42001"})
BUSY = frozenset({"-1", "45009", "45011", "45033", "45047"})  # system busy; API frequency limits
RENEW_EARLY_SECONDS = 300.0


class AccessToken:
    """One platform account's cached access token."""

    def __init__(
        self, *, channel: str, client: httpx.Client, clock: Clock, url: str, params: Mapping[str, str]
    ) -> None:
        self._channel = channel
        self._client = client
        self._clock = clock
        self._url = url
        self._params = dict(params)
        self._token = ""
        self._expires = 0.0

    def get(self) -> str:
        if not self._token or self._clock.monotonic() >= self._expires:
            answer = request_json(self._client, self._channel, "GET", self._url, params=self._params)
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise platform_error(self._channel, answer, "could not get an access token")
            self._token = token
            lifetime = float(answer.get("expires_in", 7200))
            self._expires = self._clock.monotonic() + max(lifetime - RENEW_EARLY_SECONDS, 60.0)
        return self._token

    def forget(self) -> None:
        self._token = ""

    def call(self, request: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """`request(token)`, fetching a fresh token once when the platform says the token expired."""
        answer = request(self.get())
        if str(answer.get("errcode", 0)) in TOKEN_EXPIRED:
            self.forget()
            answer = request(self.get())
        return answer


def platform_error(channel: str, answer: Mapping[str, Any], what: str) -> ChannelError:
    code = str(answer.get("errcode", ""))
    return ChannelError(
        channel=channel,
        message=f"{what}: {str(answer.get('errmsg', ''))[:200]}",
        retryable=code in BUSY,
        provider_code=code,
    )
