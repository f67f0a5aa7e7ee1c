"""Consent (个人信息保护法 / PIPL 同意): channels, purposes, consent records and the rule that decides a contact.

A consent record says that a customer granted or withdrew contact on one
channel for one purpose, from some source (app settings, counter, SMS reply
"R", call centre, erasure). Records are never changed: the newest record at
or before the moment of the send decides. Without any record, the
configured defaults decide (`ConsentDefaults`; see docs/security.md).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    """Where a touch (触达) goes."""

    SMS = "sms"
    PUSH = "push"  # app push notification
    WECOM = "wecom"  # 企业微信
    WECHAT = "wechat"  # 微信公众号 / 小程序 template messages
    EMAIL = "email"
    INAPP = "inapp"  # banner or message inside the bank's own app
    CALL = "call"  # outbound call (外呼)
    RM = "rm"  # relationship manager contact (客户经理)


class Purpose(StrEnum):
    """Why the bank contacts the customer; consent is per purpose."""

    MARKETING = "marketing"  # 营销
    SERVICE = "service"  # 服务通知: maturity, statements, account changes
    RISK = "risk"  # 风险提示: fraud, security alerts


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, kw_only=True)
class ConsentRecord:
    """One consent fact, as given; `at` is when the customer gave it, `recorded_at` when it was stored."""

    customer: str  # cust_no, or one_id for a customer without a customer number
    channel: Channel
    purpose: Purpose
    status: ConsentStatus
    source: str  # app_settings, counter, sms_reply, call_centre, import, erasure, ...
    at: datetime
    recorded_at: datetime | None = None
    actor: str = ""
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Decision:
    """May the bank contact this customer on this channel for this purpose, and why."""

    allowed: bool
    reason: str
    record: ConsentRecord | None = None


ConsentDefaults = Mapping[Purpose, frozenset[Channel]]

# Conservative defaults (PIPL: marketing needs consent per purpose): without a record, marketing reaches a
# customer only inside the bank's own app, where they are already using it and can close the message; service
# notices and risk alerts are part of running the account and may use every channel.
DEFAULT_WITHOUT_RECORD: ConsentDefaults = {
    Purpose.MARKETING: frozenset({Channel.INAPP}),
    Purpose.SERVICE: frozenset(Channel),
    Purpose.RISK: frozenset(Channel),
}


def defaults_from(allowed: Mapping[str, Iterable[str]]) -> ConsentDefaults:
    """Defaults from settings: purpose name → channel names allowed without a record (unnamed purposes: none)."""
    return {Purpose(p): frozenset(Channel(c) for c in channels) for p, channels in allowed.items()}


def decide(record: ConsentRecord | None, channel: Channel, purpose: Purpose, defaults: ConsentDefaults) -> Decision:
    """The decision given the newest applicable record (or None) and the defaults."""
    if record is not None:
        allowed = record.status is ConsentStatus.GRANTED
        verb = "granted" if allowed else "withdrew"
        when = record.at.date().isoformat()
        return Decision(
            allowed=allowed, reason=f"customer {verb} {purpose} on {channel} ({record.source}, {when})", record=record
        )
    if channel in defaults.get(purpose, frozenset()):
        return Decision(allowed=True, reason=f"no record; {purpose} on {channel} is allowed by default")
    return Decision(allowed=False, reason=f"no record; {purpose} on {channel} needs the customer's consent")
