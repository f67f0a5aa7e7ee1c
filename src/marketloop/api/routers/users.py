"""User, role and API token administration (用户与权限管理): all need `users:admin`.

A token's secret is in the answer to `POST /v1/tokens` only; afterwards only
its id, name, owner and dates are shown. Every change is audited by the
access engine (user.create, user.set-roles, token.create, token.revoke, …).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from marketloop.access.permissions import PERMISSIONS
from marketloop.access.service import AccessService
from marketloop.api.auth import access_of, require
from marketloop.ports.access import ApiToken, Role, User

router = APIRouter(prefix="/v1", tags=["users"], dependencies=[require("users:admin")])


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    password: str | None = Field(default=None, description="None: a service account, for API tokens only")
    roles: list[str] = Field(min_length=1, max_length=20)
    display_name: str = Field(default="", max_length=200)
    branch_code: str | None = Field(default=None, max_length=64, description="None: head office")
    rm_id: str | None = Field(default=None, max_length=64, description="For relationship managers")


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    roles: list[str]
    branch_code: str | None
    rm_id: str | None
    enabled: bool
    can_log_in: bool
    created_at: datetime


class RolesIn(BaseModel):
    roles: list[str] = Field(min_length=1, max_length=20)


class RoleIn(BaseModel):
    name: str = Field(min_length=2, max_length=63)
    permissions: list[str] = Field(min_length=1, max_length=len(PERMISSIONS))
    description: str = Field(default="", max_length=500)


class RoleOut(BaseModel):
    name: str
    description: str
    permissions: list[str]
    builtin: bool


class TokenIn(BaseModel):
    username: str = Field(min_length=2, max_length=64, description="The user the token acts as")
    name: str = Field(min_length=1, max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class NewToken(TokenOut):
    token: str = Field(description="The secret: shown only now. Send it as Authorization: Bearer <token>.")


def _user(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=list(user.roles),
        branch_code=user.branch_code,
        rm_id=user.rm_id,
        enabled=user.enabled,
        can_log_in=user.password_hash is not None,
        created_at=user.created_at,
    )


def _role(role: Role) -> RoleOut:
    return RoleOut(
        name=role.name, description=role.description, permissions=sorted(role.permissions), builtin=role.builtin
    )


def _token(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        user_id=token.user_id,
        name=token.name,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


def _access(request: Request) -> AccessService:
    return access_of(request)


@router.get("/users", summary="Users, by username")
def list_users(request: Request) -> list[UserOut]:
    return [_user(u) for u in _access(request).users.list()]


@router.post("/users", summary="Create a user (or a service account, without password)", status_code=201)
def create_user(body: UserIn, request: Request) -> UserOut:
    created = _access(request).users.create(
        body.username,
        roles=body.roles,
        password=body.password,
        display_name=body.display_name,
        branch_code=body.branch_code,
        rm_id=body.rm_id,
    )
    return _user(created)


@router.get("/users/{username}", summary="One user")
def get_user(username: str, request: Request) -> UserOut:
    return _user(_access(request).users.get(username))


@router.put("/users/{username}/roles", summary="Replace a user's roles; ends their console sessions")
def set_roles(username: str, body: RolesIn, request: Request) -> UserOut:
    return _user(_access(request).users.set_roles(username, body.roles))


@router.post("/users/{username}/disable", summary="Disable a user: sessions end, tokens stop working")
def disable_user(username: str, request: Request) -> UserOut:
    return _user(_access(request).users.set_enabled(username, False))


@router.post("/users/{username}/enable", summary="Enable a user again")
def enable_user(username: str, request: Request) -> UserOut:
    return _user(_access(request).users.set_enabled(username, True))


@router.get("/roles", summary="Built-in and custom roles with their permissions")
def list_roles(request: Request) -> list[RoleOut]:
    return [_role(r) for r in _access(request).roles.all()]


@router.post("/roles", summary="Create a custom role: a named set of permissions", status_code=201)
def create_role(body: RoleIn, request: Request) -> RoleOut:
    return _role(_access(request).roles.create(body.name, body.permissions, body.description))


@router.get("/permissions", summary="The permission catalog")
def list_permissions() -> dict[str, str]:
    return dict(PERMISSIONS)


@router.get("/tokens", summary="API tokens (never their secrets)")
def list_tokens(
    request: Request, username: Annotated[str | None, Query(max_length=64, description="Only this user's")] = None
) -> list[TokenOut]:
    return [_token(t) for t in _access(request).tokens(username)]


@router.post("/tokens", summary="Create an API token; its secret is shown only in this answer", status_code=201)
def create_token(body: TokenIn, request: Request) -> NewToken:
    token, secret = _access(request).create_token(body.username, body.name, expires_in_days=body.expires_in_days)
    return NewToken(token=secret, **_token(token).model_dump())


@router.delete("/tokens/{token_id}", summary="Revoke an API token (at once)")
def revoke_token(token_id: str, request: Request) -> TokenOut:
    return _token(_access(request).revoke_token(token_id))
