"""`marketloop channels`: the configured channels, a test send, the delivery ledger (dead letters)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from marketloop.app.channels import Channels, open_channels_alone
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, print_json, settings_for
from marketloop.core.consent import Channel as ChannelKind
from marketloop.journeys.channels.sending import SendOutcome, SendStatus
from marketloop.ports.channels import DeliveryStatus
from marketloop.security.masking import PersonalKind, mask

app = typer.Typer(help="Channels (触达渠道): list, test send, deliveries.", no_args_is_help=True)

_MASKED = {ChannelKind.SMS: PersonalKind.PHONE, ChannelKind.EMAIL: PersonalKind.EMAIL}


@contextmanager
def channels_opened(data_dir: Path | None, config: Path | None) -> Iterator[Channels]:
    """Channels over the operational store only, so they work while the server runs."""
    opened = open_channels_alone(settings_for(data_dir, config))
    try:
        yield opened
    finally:
        opened.close()


@app.command("list")
def list_channels(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """The configured channels and their settings (secrets masked)."""
    with channels_opened(data_dir, config) as opened:
        rows = [
            {
                "name": c.name,
                "kind": c.kind.value,
                "description": c.description,
                "rate_per_second": c.rate_per_second,
                "settings": dict(c.settings),
            }
            for c in opened.registry
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "kind", "what", "rate/s")
    for row in rows:
        table.add_row(str(row["name"]), str(row["kind"]), str(row["description"]), str(row["rate_per_second"] or "-"))
    console.print(table)


def outcome_dict(outcome: SendOutcome) -> dict[str, object]:
    return {
        "idempotency_key": outcome.idempotency_key,
        "status": outcome.status.value,
        "channel": outcome.channel,
        "code": outcome.code,
        "reason": outcome.reason,
        "provider_message_id": outcome.provider_message_id,
        "retry_at": outcome.retry_at.isoformat() if outcome.retry_at else None,
        "attempts": outcome.attempts,
    }


@app.command("test")
def send_test(
    channel: Annotated[str, typer.Argument(help="A configured channel name (see `marketloop channels list`).")],
    to: Annotated[str, typer.Option("--to", help="A staff address: phone, push token, openid, e-mail, …")],
    text: Annotated[str, typer.Option("--text", help="The message; content compliance applies.")],
    title: Annotated[str, typer.Option("--title", help="Title (push, e-mail, in-app).")] = "",
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Send a test message through a configured channel (测试发送); audited."""
    with channels_opened(data_dir, config) as opened:
        kind = opened.registry.get(channel).kind
        outcome = opened.sends.test_send(channel, to, text, title=title)
    if as_json:
        print_json(outcome_dict(outcome))
    shown = mask(_MASKED[kind], to, frozenset()) if kind in _MASKED else to
    if outcome.status is not SendStatus.SENT:
        fail(f"{channel}: {outcome.status.value} for {shown}: {outcome.reason}", code=1)
    if not as_json:
        console.print(f"{channel}: sent to {shown}, provider message id {outcome.provider_message_id}")


@app.command("deliveries")
def deliveries(
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only this status (dead = the dead-letter list).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """The delivery ledger, newest first: one row per idempotency key."""
    with channels_opened(data_dir, config) as opened:
        rows = opened.ledger.list(status=status, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "idempotency_key": d.idempotency_key,
                    "channel": d.channel,
                    "customer": d.customer,
                    "campaign": d.campaign,
                    "status": d.status.value,
                    "attempts": d.attempts,
                    "error": d.error,
                    "provider_message_id": d.provider_message_id,
                    "updated_at": d.updated_at.isoformat(),
                }
                for d in rows
            ]
        )
        return
    table = Table("key", "channel", "customer", "status", "attempts", "error")
    for d in rows:
        table.add_row(d.idempotency_key, d.channel, d.customer, d.status.value, str(d.attempts), d.error[:60])
    console.print(table)
