"""`AccessService` (访问控制): who may call, as whom, seeing what.

Owns API tokens (random, stored hashed, shown once, revocable, optional
expiry), console sessions (opaque id in a cookie, stored hashed, with a CSRF
token, expiring), logins with throttling, and turning a credential into a
`Principal` (permissions from the user's roles, data scope from their branch
or RM id). Users and roles are managed by `UserDirectory` and `RoleBook`,
reachable as `.users` and `.roles`; maker-checker requests by `.approvals`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from marketloop.access.approvals import ApprovalService
from marketloop.access.principal import Principal, Via
from marketloop.access.roles import RoleBook
from marketloop.access.secrets import TOKEN_PREFIX, new_secret, secret_hash, verify_password
from marketloop.access.throttle import LoginThrottle, ThrottleRules
from marketloop.access.users import UserDirectory, scope_of
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.scope import Scope
from marketloop.ports.access import AccessStore, ApiToken, ApprovalStore, BranchDirectory, Session, User
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.security.ratelimit import RateLimiter

MAX_TOKEN_DAYS = 3650
DEFAULT_THROTTLE = ThrottleRules()


@dataclass(frozen=True, kw_only=True)
class Login:
    """A new console session: the secrets to put in cookies (shown only now) and who logged in."""

    session_id: str
    csrf_token: str
    session: Session
    user: User


def unauthenticated(detail: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.UNAUTHENTICATED, code="auth.unauthenticated", title="Authentication required", detail=detail
    )


class AccessService:
    """See the module docstring."""

    def __init__(
        self,
        store: AccessStore,
        clock: Clock,
        *,
        audit: AuditRecorder | None = None,
        branches: BranchDirectory | None = None,
        session_ttl: timedelta = timedelta(hours=8),
        throttle: ThrottleRules = DEFAULT_THROTTLE,
        approvals: ApprovalStore | None = None,
        token_limiter: RateLimiter | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        self._branches = branches
        self._session_ttl = session_ttl
        self.roles = RoleBook(store, audit)
        self.users = UserDirectory(store, self.roles, clock, audit)
        self.throttle = LoginThrottle(clock, throttle)
        self._approvals = ApprovalService(approvals, clock, audit) if approvals and audit else None
        self._token_limiter = token_limiter

    @property
    def approvals(self) -> ApprovalService:
        """Maker-checker requests (wired with an approval store and an audit log)."""
        if self._approvals is None:
            raise RuntimeError("AccessService was built without an approval store and audit log")
        return self._approvals

    # -- tokens ----------------------------------------------------------------------

    def create_token(self, username: str, name: str, *, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
        """A new token acting as `username`; returns it and its secret (shown only now)."""
        user = self.users.get(username)
        if not name.strip() or len(name) > 200:
            raise MarketloopError(kind=ErrorKind.INVALID, code="access.invalid-token", title="A token needs a name")
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="access.invalid-token",
                title="The token's lifetime is not valid",
                detail=f"expires_in_days must be 1 to {MAX_TOKEN_DAYS}",
            )
        now = self._clock.now()
        secret = new_secret(TOKEN_PREFIX)
        token = ApiToken(
            id="tok_" + secrets.token_hex(6),
            user_id=user.id,
            name=name.strip(),
            token_hash=secret_hash(secret),
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            revoked_at=None,
        )
        self._store.add_token(token)
        expires = token.expires_at.isoformat() if token.expires_at else None
        self._record(
            "token.create", f"token:{token.id}", {"user": user.username, "name": token.name, "expires": expires}
        )
        return token, secret

    def tokens(self, username: str | None = None) -> list[ApiToken]:
        return self._store.tokens(self.users.get(username).id if username else None)

    def revoke_token(self, token_id: str) -> ApiToken:
        revoked = self._store.revoke_token(token_id, self._clock.now())
        if revoked is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND, code="access.no-token", title="No such token", detail=token_id
            )
        self._record("token.revoke", f"token:{token_id}", {})
        return revoked

    # -- sessions ----------------------------------------------------------------------

    def login(self, username: str, password: str, *, client: str) -> Login:
        """Check the password (throttled) and open a session; every attempt is audited."""
        name = username.strip().lower()
        self.throttle.check(name, client)
        user = self._store.user(name)
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok or not user.enabled:
            locked = self.throttle.failed(name, client)
            self._record("auth.login-failed", f"user:{name[:100]}", {"client": client, "locked": locked}, actor=name)
            raise unauthenticated("unknown user, wrong password, or the user is disabled")
        self.throttle.succeeded(name)
        now = self._clock.now()
        session_id, csrf = new_secret(), new_secret()
        session = Session(
            id_hash=secret_hash(session_id),
            user_id=user.id,
            csrf_hash=secret_hash(csrf),
            created_at=now,
            expires_at=now + self._session_ttl,
            client=client[:100],
        )
        self._store.add_session(session)
        self._record("auth.login", f"user:{user.username}", {"client": client}, actor=f"user:{user.username}")
        return Login(session_id=session_id, csrf_token=csrf, session=session, user=user)

    def logout(self, principal: Principal) -> None:
        if principal.session_hash is not None:
            self._store.delete_session(principal.session_hash)
            self._record("auth.logout", f"user:{principal.username}", {}, actor=principal.actor)

    # -- authentication ------------------------------------------------------------------

    def authenticate_token(self, secret: str) -> Principal:
        """The principal of an API token; raises unauthenticated for an unknown, revoked or expired one."""
        token = self._store.token_by_hash(secret_hash(secret))
        if token is None or not token.active(self._clock.now()):
            raise unauthenticated("the API token is unknown, revoked or expired")
        return self._principal(token.user_id, "token", token_id=token.id)

    def check_rate(self, principal: Principal) -> None:
        """Raise rate-limited (429) when the principal's API token has used up its requests for now."""
        if self._token_limiter is not None and principal.token_id is not None:
            self._token_limiter.check(principal.token_id, "API token")

    def authenticate_session(self, session_id: str) -> tuple[Principal, Session]:
        """The principal of a console session and the session (its CSRF hash); raises when absent or expired."""
        id_hash = secret_hash(session_id)
        session = self._store.session(id_hash)
        if session is None or self._clock.now() >= session.expires_at:
            raise unauthenticated("the session has ended; log in again")
        return self._principal(session.user_id, "session", session_hash=id_hash), session

    def customer_in_scope(self, scope: Scope, cust_no: str) -> bool:
        """Whether the customer `cust_no` is inside `scope` (by their branch and RM now)."""
        if scope.everything:
            return True
        owner = self._branches.owner(cust_no) if self._branches is not None else None
        return owner is not None and scope.allows(*owner)

    def principal_of(self, user: User, via: Via = "session") -> Principal:
        return Principal(
            user_id=user.id,
            username=user.username,
            roles=user.roles,
            permissions=self.roles.permissions(user.roles),
            scope=scope_of(user, self._branches),
            via=via,
        )

    def _principal(
        self, user_id: str, via: Via, *, token_id: str | None = None, session_hash: str | None = None
    ) -> Principal:
        user = self._store.user(user_id)
        if user is None or not user.enabled:
            raise unauthenticated("the user is disabled")
        base = self.principal_of(user, via)
        return Principal(
            user_id=base.user_id,
            username=base.username,
            roles=base.roles,
            permissions=base.permissions,
            scope=base.scope,
            via=via,
            token_id=token_id,
            session_hash=session_hash,
        )

    def _record(self, action: str, target: str, details: dict[str, object], *, actor: str | None = None) -> None:
        if self._audit is not None:
            self._audit.record(action, target, details=details, actor=actor)
