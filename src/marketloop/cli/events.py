"""`marketloop events`: what is in the warehouse."""

from __future__ import annotations

from typing import Annotated

import typer

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, opened, print_json

app = typer.Typer(help="Collected events.", no_args_is_help=True)


@app.command()
def count(
    event: Annotated[str | None, typer.Option(help="Only events with this name.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Count loaded events (first loads everything durable in the log)."""
    with opened(data_dir, config) as container:
        container.loader.drain()
        total = container.warehouse.count_events(event)
    if as_json:
        print_json({"count": total})
    else:
        console.print(f"{total} events" + (f" named {event}" if event else ""))
