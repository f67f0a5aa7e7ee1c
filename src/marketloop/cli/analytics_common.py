"""What the `marketloop analytics` commands share: reading spec files, printing problems and results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from marketloop.analytics.parse import SpecError
from marketloop.cli.common import console, errors
from marketloop.core.errors import ErrorKind, MarketloopError

SpecFile = Annotated[Path, typer.Argument(help="The analysis spec (JSON).")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="Relative ranges end here (ISO 8601) [default: now].")]


def load(file: Path) -> Any:
    """The JSON document in `file`; a readable error when it cannot be read or is not JSON."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.unreadable-file", title="Cannot read the file", detail=str(error)
        ) from None
    except json.JSONDecodeError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="analytics.invalid-spec",
            title="The file is not JSON",
            detail=f"{file}:{error.lineno}:{error.colno}: {error.msg}",
        ) from None


def bad_spec(file: Path | str, error: SpecError) -> typer.Exit:
    """Print each problem as `FILE: /pointer: message`; the exit to raise (code 2)."""
    for problem in error.errors:
        errors.print(f"{file}: {problem.pointer or '/'}: {problem.detail}", highlight=False, markup=False)
    return typer.Exit(2)


def plain(value: Any) -> Any:
    """Dataclasses and datetimes as JSON-ready data."""
    return msgspec.to_builtins(value)


def show_result(result: dict[str, Any]) -> None:
    """The result's numbers as a table: one row per entry that carries a `cell`."""
    rows = list(_leaves(result))
    if not rows:
        console.print("(no rows)")
        return
    columns = [key for key in rows[0] if key != "cell"]
    table = Table(title=result["model"])
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_text(row.get(column)) for column in columns))
    console.print(table)


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)


def _leaves(node: Any, context: dict[str, Any] | None = None) -> Any:
    if isinstance(node, dict):
        if "cell" in node and not any(isinstance(v, list) for v in node.values()):
            yield (context or {}) | node
            return
        here = dict(context or {}) | {k: v for k, v in node.items() if isinstance(v, str | int) and k != "model"}
        for value in node.values():
            yield from _leaves(value, here if "cell" in node else context)
    elif isinstance(node, list):
        for item in node:
            yield from _leaves(item, context)
