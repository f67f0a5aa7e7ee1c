"""Roles (角色): the built-in ones from the permission catalog plus the custom ones an admin adds."""

from __future__ import annotations

import re
from collections.abc import Iterable

from marketloop.access.permissions import BUILTIN_ROLES, unknown_permissions
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.ports.access import AccessStore, Role
from marketloop.ports.audit import AuditRecorder

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


def builtin_roles() -> list[Role]:
    return [
        Role(name=name, description=description, permissions=permissions, builtin=True)
        for name, (description, permissions) in BUILTIN_ROLES.items()
    ]


def _invalid(pointer: str, detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="access.invalid-role",
        title="The role is not valid",
        errors=[FieldError(pointer=pointer, detail=detail)],
    )


class RoleBook:
    """Looks roles up and turns a user's roles into permissions."""

    def __init__(self, store: AccessStore, audit: AuditRecorder | None = None) -> None:
        self._store = store
        self._audit = audit

    def all(self) -> list[Role]:
        return builtin_roles() + self._store.roles()

    def by_name(self) -> dict[str, Role]:
        return {role.name: role for role in self.all()}

    def create(self, name: str, permissions: Iterable[str], description: str = "") -> Role:
        """A custom role; its name must be new and every permission in the catalog."""
        wanted = frozenset(permissions)
        if not _NAME.match(name):
            raise _invalid("/name", "lower-case letters, digits and _, 2 to 63 characters, starting with a letter")
        if name in self.by_name():
            raise MarketloopError(kind=ErrorKind.CONFLICT, code="access.role-exists", title=f"Role {name} exists")
        if not wanted:
            raise _invalid("/permissions", "a role needs at least one permission")
        unknown = unknown_permissions(wanted)
        if unknown:
            raise _invalid("/permissions", f"not in the permission catalog: {', '.join(unknown)}")
        role = Role(name=name, description=description, permissions=wanted)
        self._store.add_role(role)
        if self._audit is not None:
            self._audit.record("role.create", f"role:{name}", details={"permissions": sorted(wanted)})
        return role

    def check(self, names: Iterable[str]) -> tuple[str, ...]:
        """`names` without duplicates, in order; raises when one is not a role."""
        known = self.by_name()
        chosen = tuple(dict.fromkeys(names))
        missing = [name for name in chosen if name not in known]
        if missing:
            raise _invalid("/roles", f"no such role: {', '.join(missing)} (see `marketloop roles list`)")
        return chosen

    def permissions(self, names: Iterable[str]) -> frozenset[str]:
        known = self.by_name()
        return frozenset(p for name in names if name in known for p in known[name].permissions)
