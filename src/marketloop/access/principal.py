"""Who is calling (`Principal`): the user, how they authenticated, their permissions and data scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from marketloop.core.scope import Scope

Via = Literal["token", "session"]


@dataclass(frozen=True, kw_only=True)
class Principal:
    user_id: str
    username: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    scope: Scope
    via: Via
    token_id: str | None = None
    session_hash: str | None = None

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"user:{self.username}" if self.token_id is None else f"user:{self.username}/token:{self.token_id}"
