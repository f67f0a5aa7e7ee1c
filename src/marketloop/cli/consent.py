"""`marketloop consent`: record and show a customer's consent per channel and purpose (PIPL)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, print_json
from marketloop.cli.governed import governance, parse_time
from marketloop.core.consent import Channel, ConsentRecord, ConsentStatus, Purpose

app = typer.Typer(help="Consent per customer, channel and purpose (营销同意, PIPL).", no_args_is_help=True)


def _record_dict(record: ConsentRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "customer": record.customer,
        "channel": record.channel.value,
        "purpose": record.purpose.value,
        "status": record.status.value,
        "source": record.source,
        "at": record.at.isoformat(),
        "recorded_at": record.recorded_at.isoformat() if record.recorded_at else None,
        "actor": record.actor,
    }


@app.command("set")
def set_consent(
    customer: Annotated[str, typer.Argument(help="Customer number (or OneID).")],
    channel: Annotated[Channel, typer.Option(help="Channel.")],
    status: Annotated[ConsentStatus, typer.Option(help="granted or withdrawn.")],
    source: Annotated[str, typer.Option(help="Where it came from: app_settings, counter, sms_reply, call_centre, …")],
    purpose: Annotated[Purpose, typer.Option(help="Purpose.")] = Purpose.MARKETING,
    at: Annotated[str | None, typer.Option(help="When the customer gave it (ISO) [default: now].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Record a grant or withdrawal; the newest record wins, history is kept."""
    with governance(data_dir, config) as opened:
        record = opened.consent.record(customer, channel, purpose, status, source=source, at=parse_time(at, "--at"))
    if as_json:
        print_json(_record_dict(record))
    else:
        console.print(f"{record.customer}: {record.purpose} on {record.channel} {record.status} ({record.source})")


@app.command()
def show(
    customer: Annotated[str, typer.Argument(help="Customer number (or OneID).")],
    history: Annotated[bool, typer.Option("--history", help="Also list every record.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """What may be sent to the customer now, per purpose and channel, and why."""
    with governance(data_dir, config) as opened:
        decisions = opened.consent.show(customer)
        records = opened.consent.history(customer) if history else []
    if as_json:
        print_json(
            {
                "customer": customer,
                "decisions": [
                    {
                        "channel": d.channel.value,
                        "purpose": d.purpose.value,
                        "allowed": d.decision.allowed,
                        "reason": d.decision.reason,
                    }
                    for d in decisions
                ],
                "history": [_record_dict(r) for r in records],
            }
        )
        return
    table = Table("purpose", "channel", "allowed", "why")
    for d in decisions:
        table.add_row(d.purpose.value, d.channel.value, "yes" if d.decision.allowed else "no", d.decision.reason)
    console.print(table)
    for r in records:
        console.print(f"{r.at.isoformat()}  {r.purpose}/{r.channel}  {r.status}  ({r.source})")
