"""`AccessStore` on SQL: users, custom roles, API tokens and console sessions.

Roles and permissions are stored as JSON lists in text columns (a handful per
user; never queried by content). Times as timezone-aware DateTime.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.access import ApiToken, Role, Session, User

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("branch_code", sa.String(64), nullable=True),
    sa.Column("rm_id", sa.String(64), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("permissions", sa.Text, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("client", sa.String(100), nullable=False),
)


def _conflict(code: str, title: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.CONFLICT, code=code, title=title)


class SqlAccessStore:
    """Users, roles, tokens and sessions in the operational store."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _write(self, statement: sa.Executable) -> sa.CursorResult[object]:
        with self._engine.begin() as connection:
            return connection.execute(statement)

    def add_user(self, user: User) -> None:
        try:
            self._write(users.insert().values(**_user_row(user)))
        except sa.exc.IntegrityError:
            raise _conflict("access.user-exists", f"The username {user.username} is taken") from None

    def user(self, username_or_id: str) -> User | None:
        condition = sa.or_(users.c.id == username_or_id, users.c.username == username_or_id)
        with self._engine.connect() as connection:
            row = connection.execute(users.select().where(condition)).mappings().first()
        return _user(row) if row is not None else None

    def users(self) -> list[User]:
        with self._engine.connect() as connection:
            return [_user(row) for row in connection.execute(users.select().order_by(users.c.username)).mappings()]

    def update_user(self, user: User) -> None:
        self._write(users.update().where(users.c.id == user.id).values(**_user_row(user)))

    def add_role(self, role: Role) -> None:
        row = {"name": role.name, "description": role.description, "permissions": _json(sorted(role.permissions))}
        try:
            self._write(roles.insert().values(**row))
        except sa.exc.IntegrityError:
            raise _conflict("access.role-exists", f"Role {role.name} exists") from None

    def roles(self) -> list[Role]:
        with self._engine.connect() as connection:
            rows = connection.execute(roles.select().order_by(roles.c.name)).mappings().all()
        return [
            Role(name=r["name"], description=r["description"], permissions=frozenset(orjson.loads(r["permissions"])))
            for r in rows
        ]

    def add_token(self, token: ApiToken) -> None:
        self._write(
            api_tokens.insert().values(
                id=token.id,
                user_id=token.user_id,
                name=token.name,
                token_hash=token.token_hash,
                created_at=token.created_at,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
            )
        )

    def _tokens(self, condition: sa.ColumnElement[bool]) -> list[ApiToken]:
        query = api_tokens.select().where(condition).order_by(api_tokens.c.created_at, api_tokens.c.id)
        with self._engine.connect() as connection:
            return [_token(row) for row in connection.execute(query).mappings()]

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        found = self._tokens(api_tokens.c.token_hash == token_hash)
        return found[0] if found else None

    def tokens(self, user_id: str | None = None) -> list[ApiToken]:
        return self._tokens(api_tokens.c.user_id == user_id if user_id is not None else sa.true())

    def revoke_token(self, token_id: str, at: datetime) -> ApiToken | None:
        c = api_tokens.c
        self._write(api_tokens.update().where(c.id == token_id, c.revoked_at.is_(None)).values(revoked_at=at))
        found = self._tokens(c.id == token_id)
        return found[0] if found else None

    def add_session(self, session: Session) -> None:
        self._write(
            sessions.insert().values(
                id_hash=session.id_hash,
                user_id=session.user_id,
                csrf_hash=session.csrf_hash,
                created_at=session.created_at,
                expires_at=session.expires_at,
                client=session.client,
            )
        )

    def session(self, id_hash: str) -> Session | None:
        with self._engine.connect() as connection:
            row = connection.execute(sessions.select().where(sessions.c.id_hash == id_hash)).mappings().first()
        if row is None:
            return None
        return Session(
            id_hash=row["id_hash"],
            user_id=row["user_id"],
            csrf_hash=row["csrf_hash"],
            created_at=as_utc(row["created_at"]),
            expires_at=as_utc(row["expires_at"]),
            client=row["client"],
        )

    def delete_session(self, id_hash: str) -> None:
        self._write(sessions.delete().where(sessions.c.id_hash == id_hash))

    def delete_sessions_of(self, user_id: str) -> int:
        return int(self._write(sessions.delete().where(sessions.c.user_id == user_id)).rowcount)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _user_row(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "password_hash": user.password_hash,
        "roles": _json(list(user.roles)),
        "branch_code": user.branch_code,
        "rm_id": user.rm_id,
        "enabled": user.enabled,
        "created_at": user.created_at,
    }


def _user(row: sa.RowMapping) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        password_hash=row["password_hash"],
        roles=tuple(orjson.loads(row["roles"])),
        branch_code=row["branch_code"],
        rm_id=row["rm_id"],
        enabled=bool(row["enabled"]),
        created_at=as_utc(row["created_at"]),
    )


def _token(row: sa.RowMapping) -> ApiToken:
    return ApiToken(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        token_hash=row["token_hash"],
        created_at=as_utc(row["created_at"]),
        expires_at=as_utc(row["expires_at"]) if row["expires_at"] is not None else None,
        revoked_at=as_utc(row["revoked_at"]) if row["revoked_at"] is not None else None,
    )
