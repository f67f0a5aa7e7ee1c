"""Console login (登录): `POST /v1/auth/login`, `POST /v1/auth/logout`, `GET /v1/auth/me`.

A login sets two cookies: `ml_session` (the opaque session id; HttpOnly,
Secure, SameSite=Strict) and `ml_csrf` (readable by the console's script,
which echoes it in the `X-CSRF-Token` header of every unsafe request; also
returned in the body). Failed logins are throttled per user and per client
address and audited, like logins and logouts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import CSRF_COOKIE, SESSION_COOKIE, access_of, signed_in
from marketloop.api.deps import container

router = APIRouter(prefix="/v1/auth", tags=["auth"])
SignedIn = Annotated[Principal, signed_in()]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    user_id: str
    username: str
    roles: list[str]
    permissions: list[str]
    scope: str = Field(description="Which customers this user sees")
    via: str


class LoginOut(BaseModel):
    user: Me
    csrf_token: str = Field(description="Send it back as X-CSRF-Token on POST, PUT, PATCH and DELETE")
    expires_at: datetime


def _me(principal: Principal) -> Me:
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        roles=list(principal.roles),
        permissions=sorted(principal.permissions),
        scope=principal.scope.describe(),
        via=principal.via,
    )


@router.post(
    "/login",
    summary="Log in to the console; sets the session and CSRF cookies",
    responses={401: {"description": "Wrong user or password"}, 403: {"description": "Locked out after failures"}},
)
async def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    access = access_of(request)
    client = request.client.host if request.client else "unknown"
    done = await run_in_threadpool(access.login, body.username, body.password, client=client)
    secure = container(request).settings.access.cookie_secure
    max_age = int((done.session.expires_at - done.session.created_at).total_seconds())
    for name, value, http_only in ((SESSION_COOKIE, done.session_id, True), (CSRF_COOKIE, done.csrf_token, False)):
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=secure, httponly=http_only, samesite="strict"
        )
    principal = access.principal_of(done.user)
    return LoginOut(user=_me(principal), csrf_token=done.csrf_token, expires_at=done.session.expires_at)


@router.post("/logout", summary="End this console session", status_code=204)
def logout(user: SignedIn, request: Request) -> Response:
    access_of(request).logout(user)
    response = Response(status_code=204)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=True, httponly=name == SESSION_COOKIE, samesite="strict")
    return response


@router.get("/me", summary="Who is logged in: roles, permissions and data scope")
def me(user: SignedIn) -> Me:
    return _me(user)
