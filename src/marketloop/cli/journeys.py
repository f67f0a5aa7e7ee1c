"""`marketloop journeys`: create drafts, publish, pause / resume, show counts and dry-run journeys.

These commands use the operational store only, so they work while
`marketloop serve` runs; its journey runner picks a change up at its next round.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from marketloop.access.service import AccessService
from marketloop.app.journeys import open_journeys
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, print_json, settings_for
from marketloop.journeys.definitions import JourneyDefinitions, JourneyView
from marketloop.journeys.rehearsal import RehearsalCustomer, rehearse

app = typer.Typer(help="Journeys (旅程): versioned graphs of steps that customers go through.", no_args_is_help=True)

GraphFile = Annotated[Path, typer.Option("--file", "-f", help="The journey graph as JSON (docs/journeys.md).")]
JourneyId = Annotated[str, typer.Argument(help="The journey id.")]


@contextmanager
def _opened(data_dir: Path | None, config: Path | None) -> Iterator[tuple[JourneyDefinitions, AccessService]]:
    definitions, access, engine = open_journeys(settings_for(data_dir, config))
    try:
        yield definitions, access
    finally:
        engine.dispose()


@contextmanager
def _journeys(data_dir: Path | None, config: Path | None) -> Iterator[JourneyDefinitions]:
    with _opened(data_dir, config) as (definitions, _):
        yield definitions


def _read(file: Path, what: str) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        fail(f"cannot read the {what} {file}: {error.strerror or error}", code=2)


def _said(view: JourneyView, what: str) -> None:
    version = f"v{view.version}" if view.version else "no published version"
    console.print(f"journey [bold]{view.journey_id}[/] {what}: {view.status}, {version}", highlight=False)


@app.command("list")
def list_journeys(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Every journey with its status and published version."""
    with _journeys(data_dir, config) as journeys:
        found = journeys.list()
    if as_json:
        print_json(msgspec.to_builtins(found))
        return
    table = Table("id", "name", "status", "version", "versions", "updated")
    for view in found:
        table.add_row(view.journey_id, view.name, view.status, str(view.version), str(view.versions), view.updated_at)
    console.print(table)


@app.command()
def create(
    file: GraphFile,
    replace: Annotated[bool, typer.Option("--replace", help="Replace the draft of an existing journey.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Save a journey draft from its JSON graph (validated: every fault is listed with its pointer)."""
    document = _read(file, "journey graph")
    with _journeys(data_dir, config) as journeys:
        _said(journeys.save(document, replace=replace), "saved")


@app.command()
def publish(
    journey_id: JourneyId,
    approval: Annotated[str, typer.Option("--approval", help="An approved journey.publish request (apr_…).")],
    user: Annotated[str, typer.Option("--as", help="The user who asked for the approval (its maker).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Publish the draft as the next version; running customers stay on theirs.

    Publishing needs an approved request (maker-checker): the maker asks with POST /v1/approvals
    (action journey.publish, target journey:ID), a checker approves, then this spends it.
    """
    with _opened(data_dir, config) as (journeys, access):
        maker = access.principal_of(access.users.get(user))
        if not maker.may("journeys:publish"):
            fail(f"{user} may not publish journeys (needs journeys:publish)", code=5)
        journeys.graph_to_try(journey_id)  # an unknown journey or an invalid draft spends no approval
        access.approvals.use(approval, action="journey.publish", target=f"journey:{journey_id}", user=maker)
        _said(journeys.publish(journey_id, by=maker.username), "published")


@app.command()
def pause(journey_id: JourneyId, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Pause: no one enters or moves on until resumed."""
    with _journeys(data_dir, config) as journeys:
        _said(journeys.pause(journey_id), "paused")


@app.command()
def resume(journey_id: JourneyId, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Resume a paused journey (waits due meanwhile run at once)."""
    with _journeys(data_dir, config) as journeys:
        _said(journeys.resume(journey_id), "resumed")


@app.command()
def show(journey_id: JourneyId, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """A journey with its draft, as JSON."""
    with _journeys(data_dir, config) as journeys:
        print_json(msgspec.to_builtins(journeys.get(journey_id)))


@app.command()
def counts(journey_id: JourneyId, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Per step: entered, waiting, sent, suppressed, failed, converted, exited."""
    with _journeys(data_dir, config) as journeys:
        found = journeys.counts(journey_id)
    if as_json:
        print_json(found)
        return
    kinds = ("entered", "waiting", "sent", "suppressed", "failed", "converted", "exited")
    table = Table("step", *kinds)
    for step, values in found.items():
        table.add_row(step, *(str(values.get(kind, 0)) for kind in kinds))
    console.print(table)


@app.command("dry-run")
def dry_run(
    journey_id: JourneyId,
    customers: Annotated[Path, typer.Option("--customers", "-c", help="A JSON list of test customers.")],
    version: Annotated[int | None, typer.Option("--version", help="A published version [default: the draft].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Walk test customers through the journey; nothing is stored or sent (see docs/journeys.md)."""
    raw = _read(customers, "test customers")
    try:
        tests = msgspec.json.decode(raw, type=list[RehearsalCustomer])
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        fail(f"{customers}: not a list of test customers: {error}", code=2)
    if not tests:
        fail(f"{customers}: the list of test customers is empty", code=2)
    with _journeys(data_dir, config) as journeys:
        graph = journeys.graph_to_try(journey_id, version)
    print_json(msgspec.to_builtins(rehearse(graph, tests, datetime.now(UTC))))
