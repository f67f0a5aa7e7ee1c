"""The demo's login: an admin user with a random password and an API token, kept in the data directory.

Created on the first `marketloop demo` and shown again on every start; the
files are readable by their owner only (0600). Not for production: create
real users with `marketloop users create`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from marketloop.app.container import Container
from marketloop.cli.common import console

DEMO_USER = "demo-admin"


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def ensure_demo_login(container: Container) -> tuple[str, str, str]:
    """(username, password, API token) of the demo admin, created on first call."""
    folder = container.settings.data_dir
    login_file, token_file = folder / "demo-login.txt", folder / "demo-token.txt"
    if not login_file.exists():
        password = secrets.token_urlsafe(12)
        container.access.users.create(DEMO_USER, roles=["admin"], password=password, display_name="Demo admin")
        _, token = container.access.create_token(DEMO_USER, "demo")
        _write_private(token_file, token + "\n")
        _write_private(login_file, f"{DEMO_USER} {password}\n")
    username, password = login_file.read_text(encoding="utf-8").split()
    return username, password, token_file.read_text(encoding="utf-8").strip()


def print_demo_login(container: Container, base_url: str) -> None:
    username, password, token = ensure_demo_login(container)
    console.print(f"Demo login (admin): [bold]{username}[/] / [bold]{password}[/]  (saved in demo-login.txt)")
    console.print(f"Demo API token: [bold]{token}[/]  (saved in demo-token.txt; /docs → Authorize)", soft_wrap=True)
    console.print(
        f"Try: curl -H 'Authorization: Bearer {token}' '{base_url}/v1/customers?limit=3'",
        highlight=False,
        soft_wrap=True,
    )
