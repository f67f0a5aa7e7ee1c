"""The access engine on the SQL store: users, roles, tokens, sessions, throttling, scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.access.permissions import BUILTIN_ROLES, PERMISSIONS
from marketloop.access.secrets import verify_password
from marketloop.access.service import AccessService
from marketloop.access.throttle import ThrottleRules
from marketloop.adapters.sql.access import SqlAccessStore
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.scope import Scope
from marketloop.security.audit import AuditLog
from marketloop.testing.access import InMemoryBranches
from marketloop.testing.clock import FrozenClock

PASSWORD = "correct horse battery"
BRANCHES = InMemoryBranches({"HQ": None, "SH": "HQ", "SH-PD": "SH", "BJ": "HQ"}, {"C1": ("SH-PD", "RM1")})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def audit(engine: sa.Engine, clock: FrozenClock) -> AuditLog:
    return AuditLog(SqlAuditStore(engine), clock)


@pytest.fixture
def access(engine: sa.Engine, clock: FrozenClock, audit: AuditLog) -> AccessService:
    rules = ThrottleRules(max_failures_per_user=3, max_failures_per_client=5, window_seconds=60, lockout_seconds=300)
    return AccessService(SqlAccessStore(engine), clock, audit=audit, branches=BRANCHES, throttle=rules)


def test_catalog_has_the_agreed_names_and_roles_only_use_them() -> None:
    for name in ("customers:reveal", "tags:delete", "journeys:publish", "approvals:decide", "consent:write"):
        assert name in PERMISSIONS
    for _, (_, permissions) in BUILTIN_ROLES.items():
        assert permissions <= set(PERMISSIONS)
    assert BUILTIN_ROLES["admin"][1] == frozenset(PERMISSIONS)
    assert "customers:reveal" not in BUILTIN_ROLES["analyst"][1]


def test_passwords_are_argon2_and_never_stored_in_clear(access: AccessService, engine: sa.Engine) -> None:
    user = access.users.create("alice", roles=["marketer"], password=PASSWORD)
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, "wrong one!")
    with pytest.raises(MarketloopError) as short:
        access.users.create("bob", roles=["marketer"], password="short")
    assert short.value.errors[0].pointer == "/password"


def test_users_need_known_roles_and_placement(access: AccessService) -> None:
    with pytest.raises(MarketloopError) as unknown:
        access.users.create("x1", roles=["wizard"], password=None)
    assert "no such role: wizard" in unknown.value.errors[0].detail
    with pytest.raises(MarketloopError) as rm:
        access.users.create("x2", roles=["relationship_manager"], password=None)
    assert rm.value.errors[0].pointer == "/rm_id"
    with pytest.raises(MarketloopError) as bm:
        access.users.create("x3", roles=["branch_manager"], password=None)
    assert bm.value.errors[0].pointer == "/branch_code"
    access.users.create("x4", roles=["analyst"], password=None)
    with pytest.raises(MarketloopError) as taken:
        access.users.create("X4", roles=["analyst"], password=None)
    assert taken.value.kind is ErrorKind.CONFLICT


def test_custom_roles_are_named_permission_sets(access: AccessService) -> None:
    role = access.roles.create("campaign_viewer", ["segments:read", "journeys:read"], "reads campaigns")
    assert role.permissions == {"segments:read", "journeys:read"}
    access.users.create("carol", roles=["campaign_viewer", "auditor"], password=None)
    principal = access.principal_of(access.users.get("carol"))
    assert principal.may("journeys:read")
    assert principal.may("audit:read")
    assert not principal.may("segments:write")
    with pytest.raises(MarketloopError, match="not valid"):
        access.roles.create("bad_role", ["segments:fly"])
    with pytest.raises(MarketloopError) as exists:
        access.roles.create("admin", ["segments:read"])
    assert exists.value.kind is ErrorKind.CONFLICT


def test_tokens_are_shown_once_stored_hashed_revocable_and_expire(
    access: AccessService, engine: sa.Engine, clock: FrozenClock
) -> None:
    access.users.create("crm-sync", roles=["analyst"], password=None)
    token, secret = access.create_token("crm-sync", "nightly sync", expires_in_days=1)
    with engine.connect() as connection:
        assert secret not in str(connection.execute(sa.text("SELECT * FROM api_tokens")).all())
    principal = access.authenticate_token(secret)
    assert principal.username == "crm-sync"
    assert principal.token_id == token.id
    assert principal.may("analytics:read")
    clock.advance(timedelta(days=1))
    with pytest.raises(MarketloopError, match="expired"):
        access.authenticate_token(secret)
    _, other = access.create_token("crm-sync", "forever")
    access.authenticate_token(other)
    access.revoke_token(access.tokens("crm-sync")[-1].id)
    with pytest.raises(MarketloopError) as revoked:
        access.authenticate_token(other)
    assert revoked.value.kind is ErrorKind.UNAUTHENTICATED
    with pytest.raises(MarketloopError):
        access.authenticate_token("mlt_made-up")


def test_disabling_a_user_stops_their_tokens_and_sessions(access: AccessService) -> None:
    access.users.create("dave", roles=["marketer"], password=PASSWORD)
    _, secret = access.create_token("dave", "script")
    login = access.login("dave", PASSWORD, client="10.0.0.1")
    access.users.set_enabled("dave", False)
    with pytest.raises(MarketloopError):
        access.authenticate_token(secret)
    with pytest.raises(MarketloopError):
        access.authenticate_session(login.session_id)


def test_sessions_expire_and_end_on_role_change(access: AccessService, clock: FrozenClock) -> None:
    access.users.create("erin", roles=["marketer"], password=PASSWORD)
    login = access.login("Erin", PASSWORD, client="10.0.0.1")
    principal, session = access.authenticate_session(login.session_id)
    assert principal.via == "session"
    assert session.csrf_hash != login.csrf_token
    clock.advance(timedelta(hours=8))
    with pytest.raises(MarketloopError, match="log in again"):
        access.authenticate_session(login.session_id)
    again = access.login("erin", PASSWORD, client="10.0.0.1")
    access.users.set_roles("erin", ["analyst"])
    with pytest.raises(MarketloopError):
        access.authenticate_session(again.session_id)


def test_failed_logins_lock_the_user_then_the_window_passes(
    access: AccessService, clock: FrozenClock, audit: AuditLog
) -> None:
    access.users.create("frank", roles=["marketer"], password=PASSWORD)
    for _ in range(3):
        with pytest.raises(MarketloopError) as wrong:
            access.login("frank", "not the password", client="10.0.0.2")
        assert wrong.value.kind is ErrorKind.UNAUTHENTICATED
    with pytest.raises(MarketloopError) as locked:
        access.login("frank", PASSWORD, client="10.0.0.3")  # the right password is refused while locked
    assert locked.value.code == "access.locked-out"
    clock.advance(timedelta(seconds=301))
    assert access.login("frank", PASSWORD, client="10.0.0.3").user.username == "frank"
    actions = [e.action for e in audit.entries(action="auth.")]
    assert actions.count("auth.login-failed") == 3
    assert actions.count("auth.login") == 1


def test_one_client_guessing_many_users_is_locked(access: AccessService) -> None:
    for n in range(5):
        with pytest.raises(MarketloopError):
            access.login(f"nobody{n}", "guess guess guess", client="10.9.9.9")
    with pytest.raises(MarketloopError) as locked:
        access.login("nobody9", "guess guess guess", client="10.9.9.9")
    assert locked.value.code == "access.locked-out"


def test_scope_follows_branch_tree_and_rm(access: AccessService) -> None:
    access.users.create("hq", roles=["analyst"], password=None, branch_code="HQ")
    access.users.create("sh", roles=["branch_manager"], password=None, branch_code="SH")
    access.users.create("rm1", roles=["relationship_manager"], password=None, branch_code="SH-PD", rm_id="RM1")
    scope = {name: access.principal_of(access.users.get(name)).scope for name in ("hq", "sh", "rm1")}
    assert scope["hq"].everything
    assert scope["sh"] == Scope(branch_ids=frozenset({"SH", "SH-PD"}))
    assert scope["sh"].allows("SH-PD", "RM9")
    assert not scope["sh"].allows("BJ", None)
    assert scope["rm1"].allows("SH-PD", "RM1")
    assert not scope["rm1"].allows("SH-PD", "RM2")


def test_changes_are_audited(access: AccessService, audit: AuditLog) -> None:
    access.users.create("gina", roles=["marketer"], password=None)
    access.users.set_roles("gina", ["analyst", "approver"])
    token, _ = access.create_token("gina", "ci")
    access.revoke_token(token.id)
    actions = [e.action for e in reversed(audit.entries())]
    assert actions == ["user.create", "user.set-roles", "token.create", "token.revoke"]
    assert audit.verify().ok
