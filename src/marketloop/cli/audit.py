"""`marketloop audit`: verify the hash chain and list entries."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, errors, print_json
from marketloop.cli.governed import governance, parse_time
from marketloop.core.audit import AuditEntry, VerifyReport

app = typer.Typer(help="The append-only, hash-chained audit log (审计日志).", no_args_is_help=True)

EXIT_BROKEN = 7


def _report_dict(report: VerifyReport) -> dict[str, object]:
    broken = report.first_break
    return {
        "ok": report.ok,
        "checked": report.checked,
        "last_seq": report.last_seq,
        "head_seq": report.head_seq,
        "broken": None if broken is None else {"seq": broken.seq, "kind": broken.kind.value, "detail": broken.detail},
    }


def _entry_dict(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details_dict,
        "hash": entry.hash,
    }


@app.command()
def verify(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Check every entry against the chain; exit 7 and name the first broken seq when one was edited,
    deleted or moved."""
    with governance(data_dir, config) as opened:
        report = opened.audit.verify()
    if as_json:
        print_json(_report_dict(report))
    elif report.first_break is None:
        console.print(f"audit log intact: {report.checked} entries, head seq {report.head_seq}")
    else:
        b = report.first_break
        errors.print(f"[bold red]audit log broken[/] at seq {b.seq}: {b.kind.value} — {b.detail}", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)


@app.command("list")
def list_entries(
    since: Annotated[str | None, typer.Option(help="Only entries at or after this ISO date or time.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only entries of this actor, e.g. cli:alice.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action; ending in '.' = every action under it.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 100,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List audit entries, newest first."""
    with governance(data_dir, config) as opened:
        entries = opened.audit.entries(since=parse_time(since, "--since"), actor=actor, action=action, limit=limit)
    if as_json:
        print_json([_entry_dict(e) for e in entries])
        return
    table = Table("seq", "at", "actor", "action", "target", "details")
    for e in entries:
        table.add_row(str(e.seq), e.at, e.actor, e.action, e.target, e.details)
    console.print(table)
