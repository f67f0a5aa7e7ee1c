"""Access helpers for tests (yours too): a branch tree fake, and users or tokens with given roles.

    headers = grant(container.access, "analyst")              # {"Authorization": "Bearer mlt_…"}
    client.get("/v1/customers", headers=headers)
    rm = grant(container.access, "relationship_manager", rm_id="RM001")

`grant` creates a service user (no password) with the roles and one API
token, and returns the Authorization header. `AccessService` is what
`Container.access` holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from marketloop.access.service import AccessService

_counter = itertools.count(1)


class InMemoryBranches:
    """`BranchDirectory` over a dict of branch -> parent (None for head office) and customer owners."""

    def __init__(
        self, parents: Mapping[str, str | None], owners: Mapping[str, tuple[str | None, str | None]] | None = None
    ) -> None:
        self._parents = dict(parents)
        self._owners = dict(owners or {})

    def subtree(self, branch_id: str) -> frozenset[str] | None:
        if branch_id in self._parents and self._parents[branch_id] is None:
            return None
        found = {branch_id}
        grew = True
        while grew:
            below = {child for child, parent in self._parents.items() if parent in found}
            grew = not below <= found
            found |= below
        return frozenset(found)

    def owner(self, cust_no: str) -> tuple[str | None, str | None] | None:
        return self._owners.get(cust_no)


def grant(
    access: AccessService,
    *roles: str,
    branch_code: str | None = None,
    rm_id: str | None = None,
    username: str | None = None,
) -> dict[str, str]:
    """A new service user with `roles` and an API token; returns the `Authorization` header for it."""
    name = username or f"test-{'-'.join(roles) or 'none'}-{next(_counter)}".replace("_", "-")
    access.users.create(name, roles=list(roles), password=None, branch_code=branch_code, rm_id=rm_id)
    _, secret = access.create_token(name, "test")
    return {"Authorization": f"Bearer {secret}"}


def approved(access: AccessService, maker: Mapping[str, str], action: str, target: str) -> str:
    """An approved maker-checker request: asked by the holder of `maker` (headers from `grant`), approved by a
    new approver; returns its id, e.g. for `GET /v1/segments/{id}/export?approval=…`."""
    principal = access.authenticate_token(maker["Authorization"].removeprefix("Bearer "))
    asked = access.approvals.request(action, target, maker=principal, reason="test")
    checker = f"test-approver-{next(_counter)}"
    access.users.create(checker, roles=["approver"], password=None)
    access.approvals.decide(asked.id, checker=access.principal_of(access.users.get(checker)), approve=True)
    return asked.id
