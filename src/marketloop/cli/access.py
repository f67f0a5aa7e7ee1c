"""`marketloop users | tokens | roles`: manage who may use marketloop (works while the server runs).

Passwords are read from a hidden prompt (asked twice) or, for scripts, from
standard input with `--password-stdin`; never from a command-line argument,
which would end up in the shell history. A token's secret is printed once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from marketloop.access.service import AccessService
from marketloop.app.governance import open_access
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, print_json, settings_for
from marketloop.ports.access import ApiToken, Role, User

users_app = typer.Typer(help="Users (用户) and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for services.", no_args_is_help=True)
roles_app = typer.Typer(help="Roles (角色) and their permissions.", no_args_is_help=True)

RoleOption = Annotated[list[str], typer.Option("--role", "-r", help="A role (repeat for several).")]


@contextmanager
def access_opened(data_dir: Path | None, config: Path | None) -> Iterator[AccessService]:
    access, engine = open_access(settings_for(data_dir, config))
    try:
        yield access
    finally:
        engine.dispose()


def user_dict(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "branch_code": user.branch_code,
        "rm_id": user.rm_id,
        "enabled": user.enabled,
        "can_log_in": user.password_hash is not None,
        "created_at": user.created_at.isoformat(),
    }


def _token_dict(token: ApiToken, owner: str) -> dict[str, object]:
    return {
        "id": token.id,
        "user": owner,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def _role_dict(role: Role) -> dict[str, object]:
    return {
        "name": role.name,
        "description": role.description,
        "permissions": sorted(role.permissions),
        "builtin": role.builtin,
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            fail("--password-stdin: standard input had no password", code=2)
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def create_user(
    username: str,
    roles: RoleOption,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    branch: Annotated[str | None, typer.Option("--branch", help="Branch code; none = head office.")] = None,
    rm_id: Annotated[str | None, typer.Option("--rm-id", help="The RM id, for relationship managers.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    service: Annotated[bool, typer.Option("--service", help="No password: a service account for tokens.")] = False,
    as_json: AsJson = False,
) -> None:
    """Create a user with roles (asks for a password unless --service)."""
    password = None if service else _read_password(password_stdin)
    with access_opened(data_dir, config) as access:
        user = access.users.create(
            username, roles=roles, password=password, display_name=name, branch_code=branch, rm_id=rm_id
        )
    if as_json:
        print_json(user_dict(user))
        return
    console.print(f"User [bold]{user.username}[/] created with roles {', '.join(user.roles)}.")


@users_app.command("list")
def list_users(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """List users."""
    with access_opened(data_dir, config) as access:
        users = access.users.list()
    if as_json:
        print_json([user_dict(u) for u in users])
        return
    table = Table("username", "name", "roles", "branch", "rm", "enabled", "login")
    for u in users:
        login = "password" if u.password_hash else "tokens only"
        table.add_row(
            u.username,
            u.display_name,
            ", ".join(u.roles),
            u.branch_code or "总行",
            u.rm_id or "",
            str(u.enabled),
            login,
        )
    console.print(table)


@users_app.command("disable")
def disable_user(username: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Disable a user: their sessions end and their tokens stop working."""
    with access_opened(data_dir, config) as access:
        access.users.set_enabled(username, False)
    console.print(f"User {username} disabled.")


@users_app.command("enable")
def enable_user(username: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Enable a user again."""
    with access_opened(data_dir, config) as access:
        access.users.set_enabled(username, True)
    console.print(f"User {username} enabled.")


@users_app.command("set-roles")
def set_roles(
    username: str, roles: RoleOption, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False
) -> None:
    """Replace a user's roles (their console sessions end)."""
    with access_opened(data_dir, config) as access:
        user = access.users.set_roles(username, roles)
    if as_json:
        print_json(user_dict(user))
        return
    console.print(f"User {user.username}: roles {', '.join(user.roles)}.")


@users_app.command("set-password")
def set_password(
    username: str,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Set a user's password (their console sessions end)."""
    password = _read_password(password_stdin)
    with access_opened(data_dir, config) as access:
        access.users.set_password(username, password)
    console.print(f"Password of {username} changed.")


@tokens_app.command("create")
def create_token(
    username: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    expires_days: Annotated[int | None, typer.Option("--expires-days", help="Expire after this many days.")] = None,
    as_json: AsJson = False,
) -> None:
    """Create an API token acting as USERNAME; prints the secret once."""
    with access_opened(data_dir, config) as access:
        token, secret = access.create_token(username, name, expires_in_days=expires_days)
    if as_json:
        print_json(_token_dict(token, username) | {"token": secret})
        return
    console.print(f"Token {token.id} for {username} (keep it; it is not shown again):")
    console.print(secret, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def list_tokens(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: AsJson = False,
) -> None:
    """List API tokens (never their secrets)."""
    with access_opened(data_dir, config) as access:
        names = {u.id: u.username for u in access.users.list()}
        tokens = access.tokens(user)
    rows = [_token_dict(t, names.get(t.user_id, t.user_id)) for t in tokens]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "user", "name", "created", "expires", "revoked")
    for row in rows:
        table.add_row(*(str(row[k] or "") for k in ("id", "user", "name", "created_at", "expires_at", "revoked_at")))
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Revoke an API token at once."""
    with access_opened(data_dir, config) as access:
        access.revoke_token(token_id)
    console.print(f"Token {token_id} revoked.")


@roles_app.command("list")
def list_roles(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """List roles and their permissions."""
    with access_opened(data_dir, config) as access:
        roles = access.roles.all()
    if as_json:
        print_json([_role_dict(r) for r in roles])
        return
    table = Table("role", "built-in", "permissions", "description")
    for r in roles:
        table.add_row(r.name, str(r.builtin), ", ".join(sorted(r.permissions)), r.description)
    console.print(table)


@roles_app.command("create")
def create_role(
    name: str,
    permissions: Annotated[list[str], typer.Option("--permission", "-p", help="A permission (repeat).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    description: Annotated[str, typer.Option("--description")] = "",
) -> None:
    """Create a custom role: a named set of permissions from the catalog."""
    with access_opened(data_dir, config) as access:
        role = access.roles.create(name, permissions, description)
    console.print(f"Role {role.name}: {', '.join(sorted(role.permissions))}.")
