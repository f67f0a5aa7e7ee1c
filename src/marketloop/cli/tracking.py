"""`marketloop tracking`: the tracking plan (埋点方案), its violations, the quarantine and replay."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import msgspec
import typer
import yaml
from rich.table import Table
from rich.text import Text

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.warehouse import QuarantinedEvent, StoredViolation, ViolationCount

app = typer.Typer(
    help="The tracking plan (埋点方案): show and set it, list violations, replay the quarantine.", no_args_is_help=True
)

SourceOption = Annotated[str | None, typer.Option("--source", help="Only this source (name or id).")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many rows.")]
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_time(text: str | None, now: datetime) -> datetime | None:
    """`--since`: an ISO 8601 time (naive means UTC) or a span back from now such as 30m, 24h, 7d."""
    if text is None:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="cli.invalid-since",
            title="--since is neither a time nor a span",
            detail=f"{text!r}: use e.g. 2026-11-24T08:00:00, 30m, 24h or 7d",
        ) from None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _cells(*values: object) -> list[Text]:
    """Table cells shown as plain text: event names and values come from clients, never as rich markup."""
    return [Text("" if value is None else str(value)) for value in values]


@app.command()
def show(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Print the current plan as YAML (or JSON); `tracking set` accepts the output back."""
    with opened(data_dir, config) as container:
        document = container.tracking.document()
    if as_json:
        print_json(document)
        return
    console.print(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), end="", markup=False, highlight=False)


@app.command("set")
def set_plan(
    file: Annotated[Path, typer.Argument(help="The plan as YAML or JSON.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Replace the plan with FILE; it becomes the next version. Promoted properties get warehouse columns."""
    try:
        text = file.read_bytes()
    except OSError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.unreadable-file", title="Cannot read the plan file", detail=str(error)
        ) from None
    with opened(data_dir, config) as container:
        change = container.tracking.replace(text)
    if as_json:
        print_json({"version": change.plan.version, "promoted": change.promoted})
        return
    console.print(f"Tracking plan version {change.plan.version} stored: {len(change.plan.events)} event specs.")
    for prop, column in change.promoted.items():
        console.print(f"  property {prop} → column events.{column}", markup=False, highlight=False)


@app.command()
def violations(
    source: SourceOption = None,
    event: Annotated[str | None, typer.Option("--event", help="Only this event name.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time, or a span back: 30m, 24h, 7d.")] = None,
    limit: Limit = 100,
    summary: Annotated[bool, typer.Option("--summary", help="Count by event and violation.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List stored violations, newest first, or (--summary) their counts (first loads the log)."""
    with opened(data_dir, config) as container:
        container.loader.drain()
        after = since_time(since, container.clock.now())
        names = {s.id: s.name for s in container.sources.list()}
        if summary:
            counts = container.tracking.violation_summary(source=source, event=event, since=after)
        else:
            found = container.tracking.violations(source=source, event=event, since=after, limit=limit)
    if as_json:
        print_json(msgspec.to_builtins(counts if summary else found))
    elif summary:
        console.print(_summary_table(counts))
    else:
        console.print(_violation_table(found, names))


def _summary_table(counts: list[ViolationCount]) -> Table:
    table = Table("type", "event", "violation", "count", "messages", "last seen")
    for c in counts:
        table.add_row(*_cells(c.type, c.event, c.violation, c.count, c.messages, _when(c.last_seen)))
    return table


def _violation_table(found: list[StoredViolation], names: dict[str, str]) -> Table:
    table = Table("received", "source", "event", "violation", "blocked", "message id")
    for v in found:
        blocked = "yes" if v.quarantined else ""
        event = v.event or f"({v.type})"
        source = names.get(v.source, v.source)
        table.add_row(*_cells(_when(v.received_at), source, event, v.violation, blocked, v.message_id))
    return table


@app.command()
def quarantine(
    source: SourceOption = None,
    include_released: Annotated[bool, typer.Option("--all", help="Include events already released.")] = False,
    limit: Limit = 100,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List quarantined events, oldest first (first loads the log)."""
    with opened(data_dir, config) as container:
        container.loader.drain()
        held = container.tracking.quarantine(source=source, include_released=include_released, limit=limit)
        names = {s.id: s.name for s in container.sources.list()}
    if as_json:
        print_json(msgspec.to_builtins(held))
        return
    console.print(_quarantine_table(held, names))


def _quarantine_table(held: list[QuarantinedEvent], names: dict[str, str]) -> Table:
    table = Table("received", "source", "event", "violations", "released", "message id")
    for q in held:
        released = _when(q.released_at) if q.released_at else ""
        source = names.get(q.source, q.source)
        table.add_row(*_cells(_when(q.received_at), source, q.event, "\n".join(q.violations), released, q.message_id))
    return table


@app.command()
def replay(
    source: SourceOption = None, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False
) -> None:
    """Re-check quarantined events against the current plan; collect again and release those that pass."""
    with opened(data_dir, config) as container:
        container.loader.drain()
        result = asyncio.run(container.tracking.replay(container.collect, source=source))
    if as_json:
        print_json(msgspec.to_builtins(result))
        return
    console.print(
        f"Checked {result.checked} quarantined events against plan version {result.plan_version}: "
        f"{result.released} released, {result.still_quarantined} still quarantined."
    )
    for violation, count in result.still_failing.items():
        console.print(f"  {count:>6}  {violation}", markup=False, highlight=False)
