"""`marketloop triggers`: list, create, enable / disable, dry-run (test) triggers and show their fires.

These commands use the operational store only, so they work while
`marketloop serve` runs; the server's stream processor picks a change up at
its next batch. Firing an API trigger needs the server: `POST /v1/triggers/{id}/fire`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import msgspec
import orjson
import typer
from rich.table import Table

from marketloop.app.container import open_triggers
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, print_json, settings_for
from marketloop.core.events import as_utc
from marketloop.journeys.service import TriggerService, parse_test_events

app = typer.Typer(help="Triggers (触发器): real-time rules that start journeys.", no_args_is_help=True)

DefinitionFile = Annotated[Path, typer.Option("--file", "-f", help="The trigger's JSON definition.")]
TriggerId = Annotated[str, typer.Argument(help="The trigger id.")]


@contextmanager
def _triggers(data_dir: Path | None, config: Path | None) -> Iterator[TriggerService]:
    service, engine = open_triggers(settings_for(data_dir, config))
    try:
        yield service
    finally:
        engine.dispose()


def _read(file: Path, what: str) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        fail(f"cannot read the {what} {file}: {error.strerror or error}", code=2)


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        fail(f"{option} {text!r} is not a time: use e.g. 2026-11-24T08:00:00+08:00", code=2)


@app.command("list")
def list_triggers(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Every trigger."""
    with _triggers(data_dir, config) as triggers:
        found = triggers.list()
    if as_json:
        print_json(msgspec.to_builtins(found))
        return
    table = Table("id", "kind", "enabled", "name", "updated")
    for view in found:
        name = str(view.definition.get("name", ""))
        table.add_row(view.trigger_id, view.kind, "yes" if view.enabled else "no", name, view.updated_at.isoformat())
    console.print(table)


@app.command()
def create(
    file: DefinitionFile,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a trigger with the same id.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create a trigger from its JSON definition (see docs/realtime.md)."""
    document = _read(file, "definition")
    with _triggers(data_dir, config) as triggers:
        saved = triggers.save(document, replace=replace)
    console.print(f"trigger [bold]{saved.trigger_id}[/] ({saved.kind}) saved", highlight=False)


@app.command()
def enable(trigger_id: TriggerId, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Enable a trigger."""
    with _triggers(data_dir, config) as triggers:
        triggers.set_enabled(trigger_id, True)
    console.print(f"trigger {trigger_id} enabled", highlight=False)


@app.command()
def disable(trigger_id: TriggerId, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Disable a trigger; its open episodes and timers are dropped (enabled again, it starts afresh)."""
    with _triggers(data_dir, config) as triggers:
        triggers.set_enabled(trigger_id, False)
    console.print(f"trigger {trigger_id} disabled", highlight=False)


@app.command("test")
def dry_run_command(
    events: Annotated[Path, typer.Option("--events", "-e", help="A JSON list of events (only timestamp required).")],
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Try this definition.")] = None,
    trigger_id: Annotated[str | None, typer.Option("--id", help="Try a stored trigger.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Fire timers due by then [default: all].")] = None,
    start: Annotated[str | None, typer.Option("--start", help="A schedule's start [default: first event].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Dry-run a trigger against a list of events: what would fire, and when. Nothing is stored."""
    if (file is None) == (trigger_id is None):
        fail("give --file (a definition) or --id (a stored trigger)", code=2)
    given = parse_test_events(_read(events, "events"), pointer="")
    with _triggers(data_dir, config) as triggers:
        definition = triggers.trigger(trigger_id) if trigger_id is not None else _read(file or Path(), "definition")
        result = triggers.test(definition, given, until=_time(until, "--until"), start=_time(start, "--start"))
    if as_json:
        print_json(msgspec.to_builtins({"fires": result.fires, "pending_timers": result.pending}))
        return
    table = Table("at", "customer", "reason", "fire id")
    for fire in result.fires:
        table.add_row(fire.at.isoformat(), fire.customer, fire.reason, fire.fire_id)
    console.print(table)
    console.print(f"{len(result.fires)} fires, {len(result.pending)} timers still pending", highlight=False)


@app.command()
def fires(
    trigger_id: TriggerId,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 20,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """The trigger's newest fires, as the stream processor recorded them (JSON lines)."""
    with _triggers(data_dir, config) as triggers:
        found = triggers.fires(trigger_id, limit=limit)
    for fire in found:
        row = {
            "fire_id": fire.fire_id,
            "customer": fire.customer,
            "reason": fire.reason,
            "fired_at": fire.fired_at.isoformat(),
            "recorded_at": fire.recorded_at.isoformat(),
            "cause": orjson.loads(fire.cause),
            "context": orjson.loads(fire.context),
        }
        sys.stdout.write(orjson.dumps(row).decode() + "\n")
