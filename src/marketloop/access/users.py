"""Users (用户): create, list, disable, set roles and passwords; and the data scope a user gets.

Every change is audited. Disabling a user or changing their roles ends their
console sessions, so the change applies at once; tokens are checked against
the user on every request, so they follow too.
"""

from __future__ import annotations

import builtins
import re
import secrets
from dataclasses import replace

from marketloop.access.permissions import NEEDS_BRANCH, NEEDS_RM
from marketloop.access.roles import RoleBook
from marketloop.access.secrets import hash_password
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.scope import EVERYTHING, Scope
from marketloop.ports.access import AccessStore, BranchDirectory, User
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


def _invalid(pointer: str, detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="access.invalid-user",
        title="The user is not valid",
        errors=[FieldError(pointer=pointer, detail=detail)],
    )


def not_found(username: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.NOT_FOUND, code="access.no-user", title="No such user", detail=username)


def scope_of(user: User, branches: BranchDirectory | None) -> Scope:
    """An RM sees their customers; a user of a branch its subtree; head office (no branch, or a root) all."""
    if user.rm_id is not None:
        return Scope(rm_id=user.rm_id)
    if user.branch_code is None:
        return EVERYTHING
    subtree = branches.subtree(user.branch_code) if branches is not None else frozenset({user.branch_code})
    return EVERYTHING if subtree is None else Scope(branch_ids=subtree)


class UserDirectory:
    """Users in the access store; see the module docstring."""

    def __init__(self, store: AccessStore, roles: RoleBook, clock: Clock, audit: AuditRecorder | None) -> None:
        self._store = store
        self._roles = roles
        self._clock = clock
        self._audit = audit

    def create(
        self,
        username: str,
        *,
        roles: builtins.list[str],
        password: str | None,
        display_name: str = "",
        branch_code: str | None = None,
        rm_id: str | None = None,
    ) -> User:
        """A new enabled user; `password` None makes a service account (tokens only)."""
        name = username.strip().lower()
        if not _USERNAME.match(name):
            raise _invalid("/username", "2 to 64 characters: lower-case letters, digits and . _ @ -")
        chosen = self._roles.check(roles)
        self._check_placement(chosen, branch_code, rm_id)
        user = User(
            id="usr_" + secrets.token_hex(8),
            username=name,
            display_name=display_name.strip() or name,
            password_hash=hash_password(password) if password is not None else None,
            roles=chosen,
            branch_code=branch_code or None,
            rm_id=rm_id or None,
            enabled=True,
            created_at=self._clock.now(),
        )
        self._store.add_user(user)
        details = {"roles": list(chosen), "branch_code": user.branch_code, "rm_id": user.rm_id}
        self._record("user.create", user, details | {"password": password is not None})
        return user

    @staticmethod
    def _check_placement(roles: tuple[str, ...], branch_code: str | None, rm_id: str | None) -> None:
        if NEEDS_RM.intersection(roles) and not rm_id:
            raise _invalid("/rm_id", "a relationship manager needs the RM id (rm_id) whose customers they see")
        if NEEDS_BRANCH.intersection(roles) and not branch_code:
            raise _invalid("/branch_code", "a branch manager needs the branch (branch_code) they manage")

    def get(self, username_or_id: str) -> User:
        user = self._store.user(username_or_id.strip().lower()) or self._store.user(username_or_id.strip())
        if user is None:
            raise not_found(username_or_id)
        return user

    def list(self) -> list[User]:
        return self._store.users()

    def set_roles(self, username: str, roles: builtins.list[str]) -> User:
        user = self.get(username)
        chosen = self._roles.check(roles)
        self._check_placement(chosen, user.branch_code, user.rm_id)
        changed = replace(user, roles=chosen)
        self._store.update_user(changed)
        ended = self._store.delete_sessions_of(user.id)
        self._record("user.set-roles", changed, {"from": list(user.roles), "to": list(chosen), "sessions_ended": ended})
        return changed

    def set_enabled(self, username: str, enabled: bool) -> User:
        changed = replace(self.get(username), enabled=enabled)
        self._store.update_user(changed)
        ended = 0 if enabled else self._store.delete_sessions_of(changed.id)
        self._record("user.enable" if enabled else "user.disable", changed, {"sessions_ended": ended})
        return changed

    def set_password(self, username: str, password: str) -> User:
        changed = replace(self.get(username), password_hash=hash_password(password))
        self._store.update_user(changed)
        ended = self._store.delete_sessions_of(changed.id)
        self._record("user.set-password", changed, {"sessions_ended": ended})
        return changed

    def _record(self, action: str, user: User, details: dict[str, object]) -> None:
        if self._audit is not None:
            self._audit.record(action, f"user:{user.username}", details={"id": user.id, **details})
