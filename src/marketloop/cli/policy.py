"""`marketloop policy`: explain the contact policy's decision, a customer's contact history, suppression lists."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.cli.channels import channels_opened
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, print_json
from marketloop.cli.governed import parse_time
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.journeys.policy.service import Content, Explanation, PolicyQuery
from marketloop.ports.contact_policy import ContactRecord, ListEntry

app = typer.Typer(help="Contact policy (触达策略): check, history, suppression lists.", no_args_is_help=True)
lists_app = typer.Typer(help="Suppression lists (免打扰 dnd, 全局对照组 holdout, …).", no_args_is_help=True)
app.add_typer(lists_app, name="lists")


def record_dict(record: ContactRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "customer": record.customer,
        "channel": record.channel.value,
        "purpose": record.purpose.value,
        "campaign": record.campaign,
        "priority": record.priority,
        "outcome": record.outcome.value,
        "code": record.code,
        "reason": record.reason,
        "decided_at": record.decided_at.isoformat(),
        "effective_at": record.effective_at.isoformat(),
        "active": record.active,
    }


def _explanation_dict(explained: Explanation) -> dict[str, object]:
    return {
        "decision": record_dict(explained.decision),
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in explained.checks],
    }


@app.command()
def check(
    customer: Annotated[str, typer.Option("--customer", help="Customer number (or OneID).")],
    channel: Annotated[ChannelKind, typer.Option("--channel", help="Channel kind.")],
    purpose: Annotated[Purpose, typer.Option("--purpose", help="Purpose.")] = Purpose.MARKETING,
    campaign: Annotated[str, typer.Option(help="Campaign or journey (per-campaign caps).")] = "",
    priority: Annotated[int, typer.Option(help="Priority against competing campaigns.")] = 0,
    timezone: Annotated[str | None, typer.Option(help="Customer time zone [default: the policy's].")] = None,
    text: Annotated[str | None, typer.Option(help="The final text, to check content compliance.")] = None,
    product_type: Annotated[str | None, typer.Option(help="wealth, fund, deposit, insurance, …")] = None,
    product_risk: Annotated[str | None, typer.Option(help="R1–R5, for suitability.")] = None,
    tolerance: Annotated[str | None, typer.Option(help="The customer's risk tolerance C1–C5.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Explain what the policy would decide now for a touch, check by check (nothing is recorded)."""
    content = None
    if text is not None:
        content = Content(text=text, product_type=product_type, product_risk=product_risk, customer_tolerance=tolerance)
    query = PolicyQuery(
        customer=customer,
        channel=channel,
        purpose=purpose,
        campaign=campaign,
        priority=priority,
        timezone=timezone,
        content=content,
    )
    with channels_opened(data_dir, config) as opened:
        explained = opened.policy.explain(query)
    if as_json:
        print_json(_explanation_dict(explained))
        return
    decision = explained.decision
    when = f" until {decision.effective_at.isoformat()}" if decision.outcome.value == "defer" else ""
    console.print(f"[bold]{decision.outcome.value}[/]{when} ({decision.code}): {decision.reason}")
    table = Table("check", "passed", "detail")
    for c in explained.checks:
        table.add_row(c.name, "yes" if c.passed else "no", c.detail)
    console.print(table)


@app.command()
def history(
    customer: Annotated[str, typer.Argument(help="Customer number (or OneID).")],
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """The customer's contact history: every decision, newest first, with its reason."""
    with channels_opened(data_dir, config) as opened:
        records = opened.policy.history(customer.strip(), limit=limit)
    if as_json:
        print_json([record_dict(r) for r in records])
        return
    table = Table("decided", "channel", "campaign", "outcome", "counts", "reason")
    for r in records:
        table.add_row(
            r.decided_at.isoformat(timespec="seconds"),
            r.channel.value,
            r.campaign,
            r.outcome.value,
            "yes" if r.active else "no",
            r.reason,
        )
    console.print(table)


def _entry_dict(entry: ListEntry) -> dict[str, object]:
    return {
        "list": entry.list_name,
        "customer": entry.customer,
        "reason": entry.reason,
        "added_at": entry.added_at.isoformat(),
        "until": entry.until.isoformat() if entry.until else None,
    }


@lists_app.command("add")
def list_add(
    list_name: Annotated[str, typer.Argument(metavar="LIST", help="dnd, holdout or a list of your own.")],
    customer: Annotated[str, typer.Argument(help="Customer number (or OneID).")],
    reason: Annotated[str, typer.Option(help="Why (kept and audited).")] = "",
    until: Annotated[str | None, typer.Option(help="Until when (ISO) [default: until removed].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Put a customer on a suppression list (audited)."""
    with channels_opened(data_dir, config) as opened:
        entry = opened.lists.add(list_name, customer, reason=reason, until=parse_time(until, "--until"))
    if as_json:
        print_json(_entry_dict(entry))
    else:
        console.print(f"{entry.customer} is on {entry.list_name}")


@lists_app.command("remove")
def list_remove(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    customer: Annotated[str, typer.Argument(help="Customer number (or OneID).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Take a customer off a suppression list (audited)."""
    with channels_opened(data_dir, config) as opened:
        removed = opened.lists.remove(list_name, customer)
    console.print(f"{customer.strip()} {'removed from' if removed else 'was not on'} {list_name}")


@lists_app.command("show")
def list_show(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """The customers on a list."""
    with channels_opened(data_dir, config) as opened:
        entries = opened.lists.entries(list_name, limit=limit)
    if as_json:
        print_json([_entry_dict(e) for e in entries])
        return
    table = Table("customer", "reason", "added", "until")
    for e in entries:
        table.add_row(
            e.customer, e.reason, e.added_at.isoformat(timespec="seconds"), e.until.isoformat() if e.until else ""
        )
    console.print(table)
