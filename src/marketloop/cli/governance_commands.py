"""Registers the governance commands: audit, keys, consent, compliance, users, tokens, roles,
`customers erase`, `events purge`."""

from __future__ import annotations

import typer

from marketloop.cli import access, approvals, audit, compliance, consent, docs, erasure, keys
from marketloop.cli.governed import cli_actor

__all__ = ["cli_actor", "register_governance"]

CUSTOMERS_HELP = "Customers (客户)."


def _group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The command group `name` of `app`, added when no other part registered it yet."""
    for group in app.registered_groups:
        if group.name == name and isinstance(group.typer_instance, typer.Typer):
            return group.typer_instance
    added = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(added, name=name)
    return added


def register_governance(app: typer.Typer) -> None:
    """Add the governance groups and commands to `app` (call after the other groups are added)."""
    app.add_typer(audit.app, name="audit")
    app.add_typer(keys.app, name="keys")
    app.add_typer(consent.app, name="consent")
    app.add_typer(compliance.app, name="compliance")
    app.add_typer(access.users_app, name="users")
    app.add_typer(access.tokens_app, name="tokens")
    app.add_typer(access.roles_app, name="roles")
    app.add_typer(approvals.app, name="approvals")
    app.add_typer(docs.app, name="docs")
    _group(app, "customers", CUSTOMERS_HELP).command("erase")(erasure.erase)
    _group(app, "events", "Collected events.").command("purge")(erasure.purge_events)
