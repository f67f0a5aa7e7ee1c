"""What every command shares: the `--data-dir` / `--config` options, the container, error output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console

from marketloop.app.container import Container, open_sources
from marketloop.app.settings import Settings, load_settings
from marketloop.collect.sources import SourceService
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.eventlog import LogLockedError

console = Console()
errors = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where marketloop keeps its data [default: ./marketloop-data]."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file [default: ./marketloop.toml when present]."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

EXIT_CODES = {
    ErrorKind.INVALID: 2,
    ErrorKind.NOT_FOUND: 3,
    ErrorKind.CONFLICT: 4,
    ErrorKind.UNAUTHENTICATED: 5,
    ErrorKind.FORBIDDEN: 5,
    ErrorKind.TOO_LARGE: 2,
    ErrorKind.UNSUPPORTED: 2,
    ErrorKind.RATE_LIMITED: 8,
}


def settings_for(data_dir: Path | None, config: Path | None, **overrides: Any) -> Settings:
    """Settings for a command; a bad settings file or variable is a readable error, exit code 2."""
    if config is not None and not config.is_file():
        fail(f"settings file {config} does not exist", code=2)
    try:
        return load_settings(config, data_dir=data_dir, **overrides)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        fail(f"invalid settings: {problems}", code=2)


@contextmanager
def opened(data_dir: Path | None, config: Path | None) -> Iterator[Container]:
    """The container over the data directory, closed (and the log loaded) on exit."""
    try:
        container = Container.open(settings_for(data_dir, config))
    except LogLockedError as error:
        fail(f"{error}. Stop `marketloop serve` first, or use the HTTP API while it runs.", code=6)
    try:
        yield container
    finally:
        container.close()


@contextmanager
def sources_opened(data_dir: Path | None, config: Path | None) -> Iterator[SourceService]:
    """The source service alone (no event log, no warehouse), so it works while the server runs."""
    sources, engine = open_sources(settings_for(data_dir, config))
    try:
        yield sources
    finally:
        engine.dispose()


def print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def fail(message: str, *, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def report(error: MarketloopError) -> NoReturn:
    """Print a domain error readably and exit with its code (outside a click context)."""
    lines = [f"{error.title}" + (f": {error.detail}" if error.detail else "")]
    lines += [f"  {e.pointer or '(body)'}: {e.detail}" for e in error.errors]
    errors.print("[bold red]error:[/] " + "\n".join(lines), highlight=False)
    sys.exit(EXIT_CODES.get(error.kind, 1))


def as_of_time(text: str | None) -> datetime | None:
    """`--as-of` as a UTC time (None when not given); INVALID with an example when it is not one."""
    if text is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="cli.invalid-as-of",
            title="--as-of is not a time",
            detail=f"{text!r}: use e.g. 2026-11-24 or 2026-11-24T08:00:00",
        ) from None
