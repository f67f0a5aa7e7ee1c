"""Settings of the channels (`[channels.*]`) and of the contact policy (`[policy]`); see docs/channels.md.

A network channel is configured when its address (`url`, `base_url`, `host`)
is set; the in-app inbox and RM tasks are on unless `enabled = false`.
Secrets may come from the environment, e.g. `MARKETLOOP_CHANNELS__SMS__SECRET`.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ChannelKindName = Literal["sms", "push", "wecom", "wechat", "email", "inapp", "call", "rm"]
PurposeName = Literal["marketing", "service", "risk"]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Limited(_Section):
    rate_per_second: float = Field(default=0.0, ge=0)  # 0 = not limited
    burst: int = Field(default=10, ge=1)
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)


class SmsChannelSettings(_Limited):
    """A generic HTTP SMS gateway (短信网关) with a registered signature (短信签名)."""

    url: str = ""
    account: str = ""
    secret: str = ""
    signature: str = ""  # e.g. 【某某银行】; added in front of every SMS
    opt_out: str = "拒收请回复R"  # added to marketing SMS that lack it
    max_parts: int = Field(default=5, ge=1, le=20)
    fields: dict[str, str] = {}  # the gateway's own field names, e.g. {mobile = "phone", content = "msg"}
    success_code: str = "0"
    retry_codes: list[str] = ["busy", "429", "503"]

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        known = (
            "account",
            "mobile",
            "content",
            "templateId",
            "params",
            "msgId",
            "parts",
            "timestamp",
            "sign",
            "code",
            "msg",
            "id",
        )
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown SMS gateway fields {unknown}; known: {list(known)}")
        return value


class PushChannelSettings(_Limited):
    url: str = ""
    api_key: str = ""


class WeComChannelSettings(_Limited):
    base_url: str = ""  # https://qyapi.weixin.qq.com or the bank's proxy
    corp_id: str = ""
    secret: str = ""
    default_sender: str = ""  # the RM's WeCom user id when a touch names none


class WeChatChannelSettings(_Limited):
    base_url: str = ""  # https://api.weixin.qq.com or the bank's proxy
    app_id: str = ""
    app_secret: str = ""
    template_id: str = ""


class EmailChannelSettings(_Section):
    host: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "marketing@bank.example"
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    rate_per_second: float = Field(default=0.0, ge=0)
    burst: int = Field(default=10, ge=1)


class WebhookChannelSettings(_Limited):
    url: str = ""
    secret: str = ""
    kind: ChannelKindName = "call"  # whose consent, caps and quiet hours apply (e.g. an outbound-call list)


class StoredChannelSettings(_Section):
    enabled: bool = True
    default_queue: str = "unassigned"  # RM tasks without a named RM


class ChannelsSettings(_Section):
    sms: SmsChannelSettings = SmsChannelSettings()
    push: PushChannelSettings = PushChannelSettings()
    wecom: WeComChannelSettings = WeComChannelSettings()
    wechat: WeChatChannelSettings = WeChatChannelSettings()
    email: EmailChannelSettings = EmailChannelSettings()
    webhook: WebhookChannelSettings = WebhookChannelSettings()
    inapp: StoredChannelSettings = StoredChannelSettings()
    rm: StoredChannelSettings = StoredChannelSettings()
    retry_max_attempts: int = Field(default=5, ge=1, le=50)
    retry_first_seconds: float = Field(default=30.0, gt=0)
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    # A PENDING ledger claim older than this belongs to a worker that died mid-send and may be taken over (the
    # provider's idempotency field — push requestId, SMS msgId — absorbs the resend). Keep it well above the
    # longest a live batch holds its claims (batch size × channel timeout).
    claim_stale_seconds: float = Field(default=600.0, gt=0)


class CapSettings(_Section):
    limit: int = Field(ge=0, le=1000)
    period: Literal["day", "week", "month"]
    channel: ChannelKindName | None = None
    purposes: list[PurposeName] = ["marketing"]
    per_campaign: bool = False


class QuietHoursSettings(_Section):
    start: str = "21:00"
    end: str = "08:00"
    channels: list[ChannelKindName] = ["sms", "push"]
    purposes: list[PurposeName] = ["marketing"]
    defer: bool = True  # false: suppress instead of sending when the window ends

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("a local time HH:MM, e.g. 21:00")
        return value

    def times(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class PolicySettings(_Section):
    """The contact policy (触达策略): caps, quiet hours, suppression lists, the customers' default time zone."""

    timezone: str = "Asia/Shanghai"
    caps: list[CapSettings] = [
        CapSettings(limit=2, period="day"),
        CapSettings(limit=5, period="week"),
        CapSettings(limit=1, period="day", channel="sms"),
    ]
    quiet_hours: list[QuietHoursSettings] = [QuietHoursSettings()]
    lists: dict[str, list[PurposeName]] = {"dnd": ["marketing"], "holdout": ["marketing"]}
