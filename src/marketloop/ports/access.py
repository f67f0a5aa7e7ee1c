"""Access ports: users, custom roles, API tokens and console sessions in the operational store;
the branch hierarchy and customer assignment that data scoping reads.

Secrets are never stored: tokens and session ids as SHA-256 hashes (they are
random 256-bit values), passwords as argon2 hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class User:
    """A person (or a service account, with no password) who uses marketloop."""

    id: str
    username: str
    display_name: str
    password_hash: str | None  # argon2; None: cannot log in with a password (service accounts)
    roles: tuple[str, ...]
    branch_code: str | None  # None: head office
    rm_id: str | None  # the RM this user is, for relationship managers
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class Role:
    """A named set of permissions. Built-in roles live in code; custom ones in the store."""

    name: str
    description: str
    permissions: frozenset[str]
    builtin: bool = False


@dataclass(frozen=True, kw_only=True)
class ApiToken:
    """An API token of a user (usually a service account); acts with that user's roles and scope."""

    id: str
    user_id: str
    name: str
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, at: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True, kw_only=True)
class Session:
    """A console login: an opaque id in an HttpOnly cookie, and its CSRF token's hash."""

    id_hash: str
    user_id: str
    csrf_hash: str
    created_at: datetime
    expires_at: datetime
    client: str


class AccessStore(Protocol):
    """Durable store of users, custom roles, tokens and sessions."""

    def add_user(self, user: User) -> None:
        """Store a new user. Raises `MarketloopError` (conflict) when the username is taken."""
        ...

    def user(self, username_or_id: str) -> User | None:
        """The user with this username or id, or None."""
        ...

    def users(self) -> list[User]:
        """Every user, by username."""
        ...

    def update_user(self, user: User) -> None:
        """Replace the stored user with the same id."""
        ...

    def add_role(self, role: Role) -> None:
        """Store a custom role. Raises `MarketloopError` (conflict) when the name is taken."""
        ...

    def roles(self) -> list[Role]:
        """Every custom role, by name."""
        ...

    def add_token(self, token: ApiToken) -> None:
        """Store a new token (its hash)."""
        ...

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `token_hash`, or None (revoked and expired ones too)."""
        ...

    def tokens(self, user_id: str | None = None) -> list[ApiToken]:
        """Tokens (of `user_id`, or all), oldest first."""
        ...

    def revoke_token(self, token_id: str, at: datetime) -> ApiToken | None:
        """Mark the token revoked at `at` (idempotent: an earlier revocation stays); None when unknown."""
        ...

    def add_session(self, session: Session) -> None:
        """Store a new session."""
        ...

    def session(self, id_hash: str) -> Session | None:
        """The session with this id hash, or None (expired ones too: the caller checks)."""
        ...

    def delete_session(self, id_hash: str) -> None:
        """End the session (idempotent)."""
        ...

    def delete_sessions_of(self, user_id: str) -> int:
        """End every session of a user (disabling a user, changing their roles); returns how many."""
        ...


class BranchDirectory(Protocol):
    """The bank's branch hierarchy (总行/分行/支行) and which branch and RM each customer belongs to."""

    def subtree(self, branch_id: str) -> frozenset[str] | None:
        """`branch_id` and every branch below it; None when `branch_id` is the head office (a root).

        An unknown branch is its own subtree (a user of a branch not yet loaded sees nothing).
        """
        ...

    def owner(self, cust_no: str) -> tuple[str | None, str | None] | None:
        """(branch_id, rm_id) of the customer, or None when there is no such customer."""
        ...


@dataclass(frozen=True, kw_only=True)
class Approval:
    """A maker's request to do something that needs a second person (maker-checker, 双人复核)."""

    id: str
    action: str  # what is asked, e.g. "segment.export", "journey.publish", "tag.delete"
    target: str  # what it is done to, e.g. "segment:seg_ab12"
    details: dict[str, object]
    reason: str
    requested_by: str  # username of the maker
    requested_at: datetime
    status: str  # pending, approved, rejected, used
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    expires_at: datetime
    used_at: datetime | None


class ApprovalStore(Protocol):
    """Durable store of approval requests. Decisions and uses are compare-and-set, so each happens once."""

    def add(self, approval: Approval) -> None:
        """Store a new request."""
        ...

    def get(self, approval_id: str) -> Approval | None:
        """The request with this id, or None."""
        ...

    def search(self, *, status: str | None, requested_by: str | None, limit: int) -> list[Approval]:
        """Requests newest first, narrowed by status and maker when given."""
        ...

    def decide(self, approval_id: str, *, status: str, by: str, at: datetime, note: str) -> bool:
        """Set the decision if the request is still pending; False when it was not (decided meanwhile)."""
        ...

    def use(self, approval_id: str, at: datetime) -> bool:
        """Mark an approved, unused request used; False when it was not approved or already used."""
        ...
