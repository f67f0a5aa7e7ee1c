"""`marketloop analytics`: run an analysis spec, show its SQL, list the customers of a cell, check an alert rule.

A spec file is the JSON the API takes (see docs/analytics.md). A bad spec
prints each problem as `FILE: /pointer: message` and exits with code 2.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from marketloop.analytics.alerts import read_rule
from marketloop.analytics.parse import SpecError
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, errors, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc

app = typer.Typer(help="Analyses (分析): events, funnels, retention, paths, attribution, alerts.", no_args_is_help=True)

SpecFile = Annotated[Path, typer.Argument(help="The analysis spec (JSON).")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="Relative ranges end here (ISO 8601) [default: now].")]


def _load(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.unreadable-file", title="Cannot read the spec", detail=str(error)
        ) from None
    except json.JSONDecodeError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="analytics.invalid-spec",
            title="The spec is not JSON",
            detail=f"{file}:{error.lineno}:{error.colno}: {error.msg}",
        ) from None


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.invalid-as-of", title="--as-of is not a time", detail=repr(text)
        ) from None


def _bad_spec(file: Path, error: SpecError) -> typer.Exit:
    for problem in error.errors:
        errors.print(f"{file}: {problem.pointer or '/'}: {problem.detail}", highlight=False, markup=False)
    return typer.Exit(2)


def _plain(value: Any) -> Any:
    """Dataclasses and datetimes as JSON-ready data."""
    import msgspec

    return msgspec.to_builtins(value)


@app.command()
def query(
    spec: SpecFile, as_of: AsOf = None, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False
) -> None:
    """Run an analysis and print its result."""
    doc = _load(spec)
    with opened(data_dir, config) as container:
        try:
            found = container.analytics.query(doc, as_of=_as_of(as_of))
        except SpecError as error:
            raise _bad_spec(spec, error) from None
    if as_json:
        print_json(_plain(found))
        return
    _table(found.result)
    console.print(f"[dim]{found.ms} ms, data version {found.data_version}{', cached' if found.cached else ''}[/]")


def _table(result: dict[str, Any]) -> None:
    """The result's numbers as a table: one row per leaf entry that carries a `cell`."""
    rows = list(_leaves(result))
    if not rows:
        console.print("(no rows)")
        return
    columns = [key for key in rows[0] if key != "cell"]
    table = Table(title=result["model"])
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                json.dumps(row.get(c), ensure_ascii=False) if isinstance(row.get(c), dict) else str(row.get(c))
                for c in columns
            )
        )
    console.print(table)


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


@app.command()
def sql(spec: SpecFile, as_of: AsOf = None, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Print the warehouse SQL of an analysis."""
    doc = _load(spec)
    with opened(data_dir, config) as container:
        try:
            text = container.analytics.sql(doc, as_of=_as_of(as_of))
        except SpecError as error:
            raise _bad_spec(spec, error) from None
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def customers(
    spec: SpecFile,
    cell: Annotated[
        str, typer.Option("--cell", help='The cell as the result gave it, e.g. \'{"grp": "all", "step": 3}\'.')
    ],
    dropped: Annotated[bool, typer.Option("--dropped", help="Funnels: reached this step, not the next.")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    offset: Annotated[int, typer.Option("--offset")] = 0,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List the customers behind one number of a result (masked)."""
    doc = _load(spec)
    try:
        chosen = json.loads(cell)
    except json.JSONDecodeError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.invalid-cell", title="--cell is not JSON", detail=error.msg
        ) from None
    if not isinstance(chosen, dict):
        raise MarketloopError(kind=ErrorKind.INVALID, code="cli.invalid-cell", title="--cell is a JSON object")
    with opened(data_dir, config) as container:
        try:
            page = container.analytics.customers(
                doc, chosen, as_of=_as_of(as_of), dropped=dropped, limit=limit, offset=offset
            )
        except SpecError as error:
            raise _bad_spec(spec, error) from None
    if as_json:
        print_json(_plain(page))
        return
    table = Table(title=f"{page.total} customers")
    for column in ("cust_no", "name", "phone", "city", "vip_level"):
        table.add_column(column)
    for hit in page.items:
        table.add_row(hit.cust_no, hit.name or "", hit.phone or "", hit.city or "", hit.vip_level or "")
    console.print(table)


@app.command()
def alert(
    rule: Annotated[Path, typer.Argument(help="The alert rule (JSON).")],
    day: Annotated[str | None, typer.Option("--day", help="The day to check [default: yesterday, UTC].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Check an alert rule on one day; post to its webhook when it fires. Exit code 1 when delivery failed."""
    try:
        parsed = read_rule(_load(rule))
        checked = date.fromisoformat(day) if day else None
    except SpecError as error:
        raise _bad_spec(rule, error) from None
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.invalid-day", title="--day is not a date", detail=repr(day)
        ) from None
    with opened(data_dir, config) as container:
        try:
            found = container.alerts.check(parsed, day=checked)
        except SpecError as error:
            raise _bad_spec(rule, error) from None
    if as_json:
        print_json(_plain(found))
    else:
        state = "ALERT" if found.verdict.alert else "ok"
        console.print(f"{found.rule} {found.day}: {found.value:g} — {state}: {found.verdict.reason}", markup=False)
    if found.delivery is not None and not found.delivery.ok:
        errors.print(f"the webhook was not reached: {found.delivery.error}", markup=False)
        raise typer.Exit(1)
