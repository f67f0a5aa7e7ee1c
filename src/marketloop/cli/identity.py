"""`marketloop identity`: look up, merge, unmerge and trace OneIDs (统一身份).

Identifiers are written `TYPE:VALUE` (the raw value, e.g. `phone:13800138000`),
or `TYPE#HASH` for a protected type given by the keyed hash `show` prints.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer
from rich.table import Table

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, opened, print_json
from marketloop.core.identities import Conflict, HistoryRecord, Identifier, MergeRecord
from marketloop.identity.service import IdentityService, Person

app = typer.Typer(help="OneID: one customer behind every identifier (统一身份).", no_args_is_help=True)

IdentifierArgs = Annotated[list[str], typer.Argument(help="Identifiers as TYPE:VALUE (or TYPE#HASH).")]


def parse_identifier(identity: IdentityService, text: str) -> Identifier:
    colon, hash_ = text.find(":"), text.find("#")
    if hash_ > 0 and (colon < 0 or hash_ < colon):
        return identity.hashed(text[:hash_], text[hash_ + 1 :])
    if colon <= 0:
        fail(f"{text!r} is not TYPE:VALUE", code=2)
    return identity.identifier(text[:colon], text[colon + 1 :])


def _identifier_json(identity: IdentityService, identifier: Identifier) -> dict[str, Any]:
    protected = identity.types.get(identifier.type).protected
    return {"type": identifier.type, "value": identifier.value, "protected": protected}


def _person_json(identity: IdentityService, person: Person) -> dict[str, Any]:
    return {
        "one_id": person.one_id,
        "created_at": person.created_at.isoformat(),
        "identifiers": [_identifier_json(identity, i) for i in person.identifiers],
        "merged": list(person.merged),
    }


def _print_person(identity: IdentityService, person: Person) -> None:
    console.print(f"OneID [bold]{person.one_id}[/]  created {person.created_at:%Y-%m-%d %H:%M:%S}")
    table = Table("type", "value")
    for i in person.identifiers:
        table.add_row(i.type, f"#{i.value}" if identity.types.get(i.type).protected else i.value)
    console.print(table)
    if person.merged:
        console.print(f"merged into it: {', '.join(person.merged)}")


def _conflict_line(conflict: Conflict) -> str:
    return f"{conflict.at:%Y-%m-%d %H:%M:%S}  refused ({conflict.reason.value}): {conflict.detail}"


@app.command()
def show(
    id_type: Annotated[str, typer.Argument(metavar="TYPE")],
    value: Annotated[str, typer.Argument(metavar="VALUE")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """The OneID of an identifier and all of its identifiers (protected values as #hash)."""
    with opened(data_dir, config) as container:
        identity = container.identity
        person = identity.show(parse_identifier(identity, f"{id_type}:{value}"))
        if as_json:
            print_json(_person_json(identity, person))
        else:
            _print_person(identity, person)


@app.command()
def merge(
    identifiers: IdentifierArgs,
    reason: Annotated[str, typer.Option(help="Why, for the history.")] = "cli",
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Link identifiers into one OneID; all or nothing (exit code 4, with the reasons, when the rules refuse it)."""
    with opened(data_dir, config) as container:
        identity = container.identity
        parsed = [parse_identifier(identity, text) for text in identifiers]
        outcome = identity.merge(parsed, reason=reason, source=f"cli:{getpass.getuser()}")
    if as_json:
        print_json({"one_id": outcome.one_id, "created": outcome.created, "absorbed": list(outcome.absorbed)})
    else:
        merged = f" (merged {', '.join(outcome.absorbed)})" if outcome.absorbed else ""
        console.print(f"OneID {outcome.one_id}{merged}")


@app.command()
def unmerge(
    one_id: Annotated[str, typer.Argument(metavar="ONE_ID")],
    identifiers: IdentifierArgs,
    actor: Annotated[str | None, typer.Option(help="Who asks [default: the OS user].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Split identifiers off a OneID into another; their loaded events move with them."""
    with opened(data_dir, config) as container:
        identity = container.identity
        parsed = [parse_identifier(identity, text) for text in identifiers]
        result = identity.unmerge(one_id, parsed, actor=actor or getpass.getuser())
    outcome = result.outcome
    if as_json:
        print_json(
            {
                "from_one_id": outcome.from_one_id,
                "one_id": outcome.one_id,
                "revived": outcome.revived,
                "events_reattributed": result.events_reattributed,
            }
        )
        return
    console.print(
        f"{len(outcome.moved)} identifiers moved from {outcome.from_one_id} to {outcome.one_id}"
        f"{' (revived)' if outcome.revived else ''}; {result.events_reattributed} events re-attributed"
    )


def _history_json(identity: IdentityService, record: HistoryRecord) -> dict[str, Any]:
    row: dict[str, Any] = {"at": record.at.isoformat()}
    if isinstance(record, MergeRecord):
        row |= {"kind": "merge", "survivor": record.survivor, "absorbed": record.absorbed}
        row |= {"reason": record.reason, "source": record.source}
    else:
        row |= {"kind": "unmerge", "from_one_id": record.from_one_id, "to_one_id": record.to_one_id}
        row |= {"actor": record.actor}
    return row | {"identifiers": [_identifier_json(identity, i) for i in record.identifiers]}


@app.command()
def history(
    one_id: Annotated[str, typer.Argument(metavar="ONE_ID")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Merges and unmerges of a person, oldest first, then its refused merges."""
    with opened(data_dir, config) as container:
        identity = container.identity
        records, conflicts = identity.history(one_id)
        rows = [_history_json(identity, r) for r in records]
    if as_json:
        print_json({"history": rows, "conflicts": [{"reason": c.reason.value, "detail": c.detail} for c in conflicts]})
        return
    for row in rows:
        what = f"{row['absorbed']} -> {row['survivor']}" if row["kind"] == "merge" else f"-> {row['to_one_id']}"
        console.print(f"{row['at']}  {row['kind']:8} {what}", highlight=False)
    for conflict in conflicts:
        console.print(_conflict_line(conflict), highlight=False)
