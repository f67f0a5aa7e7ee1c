"""Wiring of channels and contact policy: which adapter serves each configured channel, and the services.

Like `governance`, it needs only the operational store, so `marketloop
channels` and `marketloop policy` work while `marketloop serve` runs. The
channel tables are created idempotently here until migration 0011 has them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta

import httpx
import sqlalchemy as sa

from marketloop.adapters.channels.email import SmtpEmailChannel
from marketloop.adapters.channels.http import new_client
from marketloop.adapters.channels.push import HttpPushChannel
from marketloop.adapters.channels.sms import HttpSmsChannel
from marketloop.adapters.channels.stored import InboxChannel, RmTaskChannel
from marketloop.adapters.channels.webhook import WebhookChannel
from marketloop.adapters.channels.wechat import WeChatTemplateChannel
from marketloop.adapters.channels.wecom import WeComChannel
from marketloop.adapters.clock import SystemClock
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.contact_policy import SqlBudgets, SqlContactHistory, SqlSuppressionLists
from marketloop.adapters.sql.deliveries import SqlDeliveryLedger
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.app.settings import Settings
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.journeys.channels.ratelimit import RateLimiter
from marketloop.journeys.channels.receipts import ReceiptService
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import RetrySchedule
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.channels.touches import SmsDress
from marketloop.journeys.channels.waves import FallbackRunner
from marketloop.journeys.channels.workbench import InboxService, RmTaskService
from marketloop.journeys.policy.lists import SuppressionListService
from marketloop.journeys.policy.rules import Cap, ContactPolicy, Period, QuietHours
from marketloop.journeys.policy.service import ContactPolicyService, parse_timezone
from marketloop.policy.consent import ConsentService
from marketloop.ports.clock import Clock
from marketloop.security.audit import AuditLog

Transport = Callable[[str], httpx.BaseTransport | None]


@dataclass(kw_only=True)
class Channels:
    """The channel and contact-policy services over one operational store."""

    registry: ChannelRegistry
    policy: ContactPolicyService
    sends: SendService
    receipts: ReceiptService
    inbox: InboxService
    rm_tasks: RmTaskService
    lists: SuppressionListService
    fallback: FallbackRunner
    ledger: SqlDeliveryLedger
    audit: AuditLog
    consent: ConsentService
    clients: list[httpx.Client] = field(default_factory=list)
    owned_engine: sa.Engine | None = None  # disposed on close when the channels opened it

    def close(self) -> None:
        for client in self.clients:
            client.close()
        if self.owned_engine is not None:
            self.owned_engine.dispose()


def open_channels_alone(settings: Settings, *, transport: Transport | None = None) -> Channels:
    """Channels over the operational store only (the CLI, while the server may run)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.state_url)
    try:
        upgrade(engine)
        clock = SystemClock()
        opened = open_channels(settings, engine, clock, AuditLog(SqlAuditStore(engine), clock), transport=transport)
    except BaseException:
        engine.dispose()
        raise
    opened.owned_engine = engine
    return opened


def contact_policy(settings: Settings) -> ContactPolicy:
    """The contact policy of the settings (errors in it were caught when the settings were read)."""
    policy = settings.policy
    parse_timezone(policy.timezone)
    caps = tuple(
        Cap(
            limit=c.limit,
            period=Period(c.period),
            channel=ChannelKind(c.channel) if c.channel else None,
            purposes=frozenset(Purpose(p) for p in c.purposes),
            per_campaign=c.per_campaign,
        )
        for c in policy.caps
    )
    quiet = tuple(_quiet(q.times(), q.channels, q.purposes, q.defer) for q in policy.quiet_hours)
    lists = {name: frozenset(Purpose(p) for p in purposes) for name, purposes in policy.lists.items()}
    return ContactPolicy(caps=caps, quiet_hours=quiet, lists=lists)


def _quiet(times: tuple[time, time], channels: Sequence[str], purposes: Sequence[str], defer: bool) -> QuietHours:
    return QuietHours(
        start=times[0],
        end=times[1],
        channels=frozenset(ChannelKind(c) for c in channels),
        purposes=frozenset(Purpose(p) for p in purposes),
        defer=defer,
    )


def open_channels(
    settings: Settings,
    engine: sa.Engine,
    clock: Clock,
    audit: AuditLog,
    *,
    transport: Transport | None = None,
) -> Channels:
    """Every configured channel and the services; `transport(name)` lets tests put a fake under a channel."""
    # governance imports the container, which opens channels: imported here, not at module level, to avoid the cycle
    from marketloop.app.governance import compliance_rules, consent_service

    clients: list[httpx.Client] = []

    def client(name: str, timeout: float) -> httpx.Client:
        made = new_client(timeout, transport(name) if transport else None)
        clients.append(made)
        return made

    registry = ChannelRegistry(_configured(settings, engine, clock, client))
    consent = consent_service(settings, engine, clock, audit)
    policy = ContactPolicyService(
        SqlContactHistory(engine),
        lists := SqlSuppressionLists(engine),
        consent,
        clock,
        policy=contact_policy(settings),
        rules=compliance_rules(settings),
        timezone=settings.policy.timezone,
        budgets=SqlBudgets(engine),
    )
    config = settings.channels
    ledger = SqlDeliveryLedger(engine, stale_after=timedelta(seconds=config.claim_stale_seconds))
    limiter = RateLimiter(clock, {c.name: (c.rate_per_second, _burst(settings, c.name)) for c in registry})
    retry = RetrySchedule(
        max_attempts=config.retry_max_attempts,
        first=timedelta(seconds=config.retry_first_seconds),
        cap=timedelta(seconds=config.retry_cap_seconds),
    )
    sends = SendService(
        registry,
        ledger,
        policy,
        clock,
        limiter=limiter,
        retry=retry,
        sms=SmsDress(signature=config.sms.signature, opt_out=config.sms.opt_out),
        audit=audit,
        costs_fen=_costs_fen(settings),
    )
    receipts = ReceiptService(registry, ledger, policy, clock, consent=consent)
    stored = InboxChannel(name="inapp", engine=engine, clock=clock)
    tasks = RmTaskChannel(name="rm", engine=engine, clock=clock, default_queue=config.rm.default_queue)
    return Channels(
        registry=registry,
        policy=policy,
        sends=sends,
        receipts=receipts,
        inbox=InboxService(stored, receipts, clock),
        rm_tasks=RmTaskService(tasks, receipts, clock),
        lists=SuppressionListService(lists, clock, audit=audit),
        fallback=FallbackRunner(sends, ledger, policy, clock),
        ledger=ledger,
        audit=audit,
        consent=consent,
        clients=clients,
    )


def _costs_fen(settings: Settings) -> dict[ChannelKind, int]:
    """Per-channel prices for campaign budgets, from `[experiments.channel_costs]` (yuan) in fen."""
    kinds = {kind.value: kind for kind in ChannelKind}
    return {
        kinds[name]: round(yuan * 100) for name, yuan in settings.experiments.channel_costs.items() if name in kinds
    }


def _burst(settings: Settings, name: str) -> int:
    section = getattr(settings.channels, name, None)
    return int(getattr(section, "burst", 10))


def _secret(value: str) -> str:
    return "***" if value else ""


def _configured(
    settings: Settings, engine: sa.Engine, clock: Clock, client: Callable[[str, float], httpx.Client]
) -> list[ConfiguredChannel]:
    found = [*_http_channels(settings, clock, client), *_mail_and_stored(settings, engine, clock)]
    return [c for c in found if c is not None]


def _http_channels(
    settings: Settings, clock: Clock, client: Callable[[str, float], httpx.Client]
) -> list[ConfiguredChannel | None]:
    c = settings.channels
    sms = push = wecom = wechat = hook = None
    if c.sms.url:
        sms = ConfiguredChannel(
            name="sms",
            kind=ChannelKind.SMS,
            channel=HttpSmsChannel(
                name="sms",
                url=c.sms.url,
                account=c.sms.account,
                secret=c.sms.secret,
                client=client("sms", c.sms.timeout_seconds),
                clock=clock,
                max_parts=c.sms.max_parts,
                fields=c.sms.fields,
                success_code=c.sms.success_code,
                retry_codes=c.sms.retry_codes,
            ),
            description=f"HTTP SMS gateway {c.sms.url}",
            settings={
                "url": c.sms.url,
                "account": c.sms.account,
                "secret": _secret(c.sms.secret),
                "signature": c.sms.signature,
                "opt_out": c.sms.opt_out,
                "max_parts": c.sms.max_parts,
                "fields": dict(c.sms.fields),
            },
            rate_per_second=c.sms.rate_per_second,
        )
    if c.push.url:
        push = ConfiguredChannel(
            name="push",
            kind=ChannelKind.PUSH,
            channel=HttpPushChannel(
                name="push", url=c.push.url, api_key=c.push.api_key, client=client("push", c.push.timeout_seconds)
            ),
            description=f"push gateway {c.push.url}",
            settings={"url": c.push.url, "api_key": _secret(c.push.api_key)},
            rate_per_second=c.push.rate_per_second,
        )
    if c.wecom.base_url:
        wecom = ConfiguredChannel(
            name="wecom",
            kind=ChannelKind.WECOM,
            channel=WeComChannel(
                name="wecom",
                base_url=c.wecom.base_url,
                corp_id=c.wecom.corp_id,
                secret=c.wecom.secret,
                default_sender=c.wecom.default_sender,
                client=client("wecom", c.wecom.timeout_seconds),
                clock=clock,
            ),
            description=f"企业微信 external-contact messages via {c.wecom.base_url}",
            settings={
                "base_url": c.wecom.base_url,
                "corp_id": c.wecom.corp_id,
                "secret": _secret(c.wecom.secret),
                "default_sender": c.wecom.default_sender,
            },
            rate_per_second=c.wecom.rate_per_second,
        )
    if c.wechat.base_url:
        wechat = ConfiguredChannel(
            name="wechat",
            kind=ChannelKind.WECHAT,
            channel=WeChatTemplateChannel(
                name="wechat",
                base_url=c.wechat.base_url,
                app_id=c.wechat.app_id,
                app_secret=c.wechat.app_secret,
                default_template_id=c.wechat.template_id,
                client=client("wechat", c.wechat.timeout_seconds),
                clock=clock,
            ),
            description=f"微信公众号 template messages via {c.wechat.base_url}",
            settings={
                "base_url": c.wechat.base_url,
                "app_id": c.wechat.app_id,
                "app_secret": _secret(c.wechat.app_secret),
                "template_id": c.wechat.template_id,
            },
            rate_per_second=c.wechat.rate_per_second,
        )
    if c.webhook.url:
        hook = ConfiguredChannel(
            name="webhook",
            kind=ChannelKind(c.webhook.kind),
            channel=WebhookChannel(
                name="webhook",
                url=c.webhook.url,
                secret=c.webhook.secret,
                client=client("webhook", c.webhook.timeout_seconds),
                clock=clock,
                kind=ChannelKind(c.webhook.kind),
            ),
            description=f"signed webhook to {c.webhook.url}",
            settings={"url": c.webhook.url, "secret": _secret(c.webhook.secret), "kind": c.webhook.kind},
            rate_per_second=c.webhook.rate_per_second,
        )
    return [sms, push, wecom, wechat, hook]


def _mail_and_stored(settings: Settings, engine: sa.Engine, clock: Clock) -> list[ConfiguredChannel | None]:
    c = settings.channels
    email = inapp = rm = None
    if c.email.host:
        email = ConfiguredChannel(
            name="email",
            kind=ChannelKind.EMAIL,
            channel=SmtpEmailChannel(
                name="email",
                host=c.email.host,
                port=c.email.port,
                sender=c.email.sender,
                username=c.email.username,
                password=c.email.password,
                starttls=c.email.starttls,
                timeout=c.email.timeout_seconds,
            ),
            description=f"SMTP {c.email.host}:{c.email.port}",
            settings={
                "host": c.email.host,
                "port": c.email.port,
                "sender": c.email.sender,
                "username": c.email.username,
                "password": _secret(c.email.password),
                "starttls": c.email.starttls,
            },
            rate_per_second=c.email.rate_per_second,
        )
    if c.inapp.enabled:
        inapp = ConfiguredChannel(
            name="inapp",
            kind=ChannelKind.INAPP,
            channel=InboxChannel(name="inapp", engine=engine, clock=clock),
            description="in-app inbox (站内信), fetched by the app from /v1/inbox/{customer}",
        )
    if c.rm.enabled:
        rm = ConfiguredChannel(
            name="rm",
            kind=ChannelKind.RM,
            channel=RmTaskChannel(name="rm", engine=engine, clock=clock, default_queue=c.rm.default_queue),
            description="RM tasks (客户经理任务), listed and closed at /v1/rm-tasks",
            settings={"default_queue": c.rm.default_queue},
        )
    return [email, inapp, rm]
