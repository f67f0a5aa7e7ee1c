"""`marketloop approvals list | approve | reject`: the checker's side of maker-checker (双人复核) from a shell.

A shell has no login, so the checker names themself with `--as USERNAME`:
that user must exist, be enabled, hold `approvals:decide` and not be the
request's maker. The audit log records the decision under that user.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.access.principal import Principal
from marketloop.access.service import AccessService
from marketloop.cli.access import access_opened
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, print_json
from marketloop.core.scope import EVERYTHING
from marketloop.ports.access import Approval

app = typer.Typer(help="Maker-checker approvals (双人复核).", no_args_is_help=True)

# Who lists from a shell: sees every request (the operator of the server), decides nothing.
SHELL = Principal(
    user_id="cli",
    username="cli",
    roles=(),
    permissions=frozenset({"approvals:decide"}),
    scope=EVERYTHING,
    via="session",
)
AsUser = Annotated[str, typer.Option("--as", help="The user deciding (needs approvals:decide).")]
Note = Annotated[str, typer.Option("--note", help="Why (kept with the decision).")]


def acting_user(access: AccessService, username: str) -> Principal:
    """The principal of `username` for a command run from a shell; refused when disabled."""
    user = access.users.get(username)
    if not user.enabled:
        fail(f"user {username} is disabled", code=5)
    return access.principal_of(user)


def _dict(approval: Approval) -> dict[str, object]:
    times = ("requested_at", "decided_at", "expires_at", "used_at")
    fields = ("id", "action", "target", "details", "reason", "requested_by", "status", "decided_by", "decision_note")
    found: dict[str, object] = {name: getattr(approval, name) for name in fields}
    for name in times:
        value = getattr(approval, name)
        found[name] = value.isoformat() if value is not None else None
    return found


@app.command("list")
def list_approvals(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    status: Annotated[str | None, typer.Option("--status", help="pending, approved, rejected or used.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: AsJson = False,
) -> None:
    """List approval requests, newest first."""
    with access_opened(data_dir, config) as access:
        found = access.approvals.requests(viewer=SHELL, status=status, limit=limit)
    if as_json:
        print_json([_dict(a) for a in found])
        return
    table = Table("id", "action", "target", "maker", "status", "reason", "requested")
    for a in found:
        table.add_row(a.id, a.action, a.target, a.requested_by, a.status, a.reason, a.requested_at.isoformat())
    console.print(table)


def _decide(approval_id: str, username: str, note: str, approve: bool, data_dir: DataDir, config: ConfigFile) -> None:
    with access_opened(data_dir, config) as access:
        checker = acting_user(access, username)
        decided = access.approvals.decide(approval_id, checker=checker, approve=approve, note=note)
    console.print(f"{decided.id} ({decided.action} {decided.target}, by {decided.requested_by}): {decided.status}.")


@app.command()
def approve(
    approval_id: str, user: AsUser, data_dir: DataDir = None, config: ConfigFile = None, note: Note = ""
) -> None:
    """Approve someone else's request."""
    _decide(approval_id, user, note, True, data_dir, config)


@app.command()
def reject(
    approval_id: str, user: AsUser, data_dir: DataDir = None, config: ConfigFile = None, note: Note = ""
) -> None:
    """Reject someone else's request."""
    _decide(approval_id, user, note, False, data_dir, config)
