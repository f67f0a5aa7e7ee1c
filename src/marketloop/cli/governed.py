"""What the governance commands share: who is acting, the governance services, time options."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from marketloop.app.governance import Governance, open_governance
from marketloop.cli.common import fail, settings_for


def cli_actor() -> str:
    """The audit actor of a command run from a shell: "cli:<login name>"."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (e.g. a container without /etc/passwd entry)
        return "cli:unknown"


@contextmanager
def governance(data_dir: Path | None, config: Path | None) -> Iterator[Governance]:
    """Audit log and consent on the operational store only, so they work while the server runs."""
    opened = open_governance(settings_for(data_dir, config))
    try:
        yield opened
    finally:
        opened.close()


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO date or date-time from an option (naive = UTC); a readable error otherwise."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO date or time (e.g. 2026-01-05 or 2026-01-05T09:00:00+08:00)", code=2)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
