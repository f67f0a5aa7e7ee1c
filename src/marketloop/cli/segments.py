"""`marketloop segments`: count, show the SQL, save, list, materialise and export segments (客群).

A definition file holds the JSON form (starts with `{`) or the text form;
see `marketloop.segments.parse` and `marketloop.segments.text`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from marketloop.cli.common import AsJson, ConfigFile, DataDir, as_of_time, console, errors, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.segments import SegmentVersion
from marketloop.segments.errors import DefinitionError
from marketloop.segments.parse import from_json
from marketloop.segments.text import to_text

app = typer.Typer(help="Segments (客群): count, save, materialise and export.", no_args_is_help=True)

DefinitionFile = Annotated[
    Path, typer.Option("--definition", help="The definition: JSON form or text form.", exists=False)
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Evaluate as of this time (ISO 8601; a date is its midnight, UTC) [default: now]."),
]
SegmentId = Annotated[str, typer.Argument(help="The segment id (seg_…).")]


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.unreadable-file", title="Cannot read the definition", detail=str(error)
        ) from None


def _bad_definition(file: Path, error: DefinitionError) -> NoReturn:
    for problem in error.problems:
        where = problem.position
        spot = f"{where.line}:{where.column}" if where and where.line is not None else (where.pointer if where else "")
        errors.print(Text(f"{file}:{spot or '/'}: {problem.message} [{problem.code}]"), soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def count(
    definition: DefinitionFile,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Count the customers a definition selects (exactly, in the warehouse)."""
    source = _read(definition)
    with opened(data_dir, config) as container:
        try:
            found = container.segments.count(source, as_of=as_of_time(as_of))
        except DefinitionError as error:
            _bad_definition(definition, error)
    if as_json:
        sys.stdout.write(msgspec.json.encode({"count": found.count, "ms": found.ms}).decode() + "\n")
        return
    console.print(f"{found.count} customers as of {found.as_of.isoformat()} ({found.ms} ms)")


@app.command()
def sql(
    definition: DefinitionFile,
    as_of: AsOf = None,
    counting: Annotated[bool, typer.Option("--count", help="The count query instead of the member list.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Print the warehouse SQL of a definition."""
    source = _read(definition)
    with opened(data_dir, config) as container:
        try:
            compiled = container.segments.sql(source, as_of=as_of_time(as_of), form="count" if counting else "members")
        except DefinitionError as error:
            _bad_definition(definition, error)
    console.print(compiled.sql, markup=False, highlight=False, soft_wrap=True)


@app.command()
def save(
    definition: DefinitionFile,
    name: Annotated[str, typer.Option("--name", help="What marketers call the segment.")],
    segment_id: Annotated[str | None, typer.Option("--id", help="Save as the next version of this segment.")] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Save a definition as a new segment, or (--id) as the next version of one."""
    source = _read(definition)
    with opened(data_dir, config) as container:
        try:
            saved = container.segments.save(name, source, segment_id=segment_id, description=description)
        except DefinitionError as error:
            _bad_definition(definition, error)
    if as_json:
        print_json(msgspec.to_builtins(saved))
        return
    console.print(f"Saved {saved.segment_id} version {saved.version}: {saved.name}", markup=False, highlight=False)


def _when(segment: SegmentVersion) -> str:
    return segment.created_at.isoformat(sep=" ", timespec="seconds")


@app.command("list")
def list_segments(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """List saved segments (newest version of each)."""
    with opened(data_dir, config) as container:
        found = container.segments.list()
    if as_json:
        print_json(msgspec.to_builtins(found))
        return
    table = Table("id", "version", "name", "saved", "definition")
    for segment in found:
        text = to_text(from_json(segment.definition))
        table.add_row(
            *(Text(str(v)) for v in (segment.segment_id, segment.version, segment.name, _when(segment), text))
        )
    console.print(table)


@app.command()
def materialise(
    segment_id: SegmentId,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Store the segment's members now as a snapshot (固化客群)."""
    with opened(data_dir, config) as container:
        snapshot = container.segments.materialise(segment_id, as_of=as_of_time(as_of))
    if as_json:
        print_json(msgspec.to_builtins(snapshot))
        return
    console.print(f"{snapshot.customers} customers in {segment_id} as of {snapshot.as_of.isoformat()}")


@app.command()
def export(
    segment_id: SegmentId,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    approval: Annotated[str, typer.Option("--approval", help="An approved segment.export request (apr_…).")],
    user: Annotated[str, typer.Option("--as", help="The user who asked for the approval (its maker).")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Write the newest snapshot's cust_nos to a CSV or Parquet file (materialising one when there is none).

    Exporting a customer list needs an approved request (maker-checker): the maker asks with
    POST /v1/approvals, a checker approves (`marketloop approvals approve`), then this spends it.
    The file holds only the customers in the maker's data scope and is watermarked with their name.
    """
    if fmt not in ("csv", "parquet"):
        raise MarketloopError(kind=ErrorKind.INVALID, code="cli.invalid-format", title="--format is csv or parquet")
    with opened(data_dir, config) as container:
        maker = container.access.principal_of(container.access.users.get(user))
        container.segments.get(segment_id)
        target = f"segment:{segment_id}"
        container.access.approvals.use(approval, action="segment.export", target=target, user=maker)
        result = container.segments.export(
            segment_id,
            output,
            "csv" if fmt == "csv" else "parquet",
            audit=container.audit,
            user=maker.actor,
            scope=maker.scope,
        )
    console.print(f"{result.rows} customers written to {result.path}", markup=False, highlight=False)
