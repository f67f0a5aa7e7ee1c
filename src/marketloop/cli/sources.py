"""`marketloop sources`: create, list, disable and enable write keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, print_json, sources_opened
from marketloop.ports.state import Source, TrackingMode

app = typer.Typer(help="Event sources and their write keys.", no_args_is_help=True)


def _as_dict(source: Source) -> dict[str, object]:
    return {
        "id": source.id,
        "name": source.name,
        "enabled": source.enabled,
        "tracking_mode": source.tracking_mode.value,
        "project": source.project,
        "created_at": source.created_at.isoformat(),
    }


@app.command()
def create(
    name: str,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    mode: Annotated[TrackingMode, typer.Option(help="Tracking-plan mode.")] = TrackingMode.WARN,
    project: Annotated[str | None, typer.Option(help="Sensors Analytics SDK project name it receives.")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a source and print its write key (shown only this once)."""
    with sources_opened(data_dir, config) as sources:
        source, key = sources.create(name, tracking_mode=mode, project=project)
    if as_json:
        print_json(_as_dict(source) | {"write_key": key})
        return
    console.print(f"Source [bold]{source.name}[/] created. Write key (keep it; it is not shown again):")
    console.print(key, highlight=False, soft_wrap=True)


@app.command("list")
def list_sources(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """List sources."""
    with sources_opened(data_dir, config) as service:
        sources = service.list()
    if as_json:
        print_json([_as_dict(s) for s in sources])
        return
    table = Table("name", "id", "enabled", "mode", "project", "created")
    for s in sources:
        table.add_row(s.name, s.id, str(s.enabled), s.tracking_mode.value, s.project or "", s.created_at.isoformat())
    console.print(table)


@app.command()
def disable(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Refuse the source's write key (401) from now on."""
    with sources_opened(data_dir, config) as sources:
        sources.set_enabled(name, False)
    console.print(f"Source {name} disabled.")


@app.command()
def enable(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Accept the source's write key again."""
    with sources_opened(data_dir, config) as sources:
        sources.set_enabled(name, True)
    console.print(f"Source {name} enabled.")


@app.command("set-mode")
def set_mode(name: str, mode: TrackingMode, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Change what the source does with events that break the tracking plan (allow / warn / block)."""
    with sources_opened(data_dir, config) as sources:
        sources.set_tracking_mode(name, mode)
    console.print(f"Source {name}: tracking mode {mode.value}.")
