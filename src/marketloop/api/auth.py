"""Authentication and authorisation of the product API: `require("<permission>")` on every route.

    router = APIRouter(prefix="/v1/tags", dependencies=[require("tags:read")])

    @router.post("/{tag}/refresh")
    def refresh(tag: str, user: Annotated[Principal, require("tags:write")]) -> ...:
        ...  # `user.scope`, `user.actor`, `user.may("customers:reveal")`

A caller authenticates with `Authorization: Bearer <API token>` or with the
console's session cookie; with the cookie, unsafe methods (POST, PUT, PATCH,
DELETE) also need the CSRF token in the `X-CSRF-Token` header, equal to the
`ml_csrf` cookie and to the token issued with the session (double submit).
No credential, or a bad one: 401; a credential without the permission: 403;
both RFC 9457 problem+json. The audit actor of the request becomes the user.

Every route of the app declares a permission this way, or is listed in
`PUBLIC_ROUTES` with the reason it is open (collection routes authenticate by
write key; `/healthz`; logging in; the API docs). tests/access/test_route_permissions.py
walks `app.routes` and fails on a route with neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from marketloop.access.permissions import PERMISSIONS
from marketloop.access.principal import Principal
from marketloop.access.secrets import same, secret_hash
from marketloop.access.service import AccessService, unauthenticated
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.security.audit import act_as

SESSION_COOKIE = "ml_session"
CSRF_COOKIE = "ml_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGNED_IN = "(signed in)"
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="marketloop"'}
_BEARER = HTTPBearer(auto_error=False, description="An API token (marketloop tokens create)")
_SESSION = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The console session (POST /v1/auth/login)")


@dataclass(frozen=True)
class PublicRoute:
    method: str
    path: str
    reason: str


COLLECTION_REASON = "collection: authenticated by the source's write key, not by a user"
PUBLIC_ROUTES: tuple[PublicRoute, ...] = (
    *(
        PublicRoute("POST", f"/v1/{name}", COLLECTION_REASON)
        for name in ("batch", "track", "identify", "page", "screen", "alias", "group")
    ),
    PublicRoute("POST", "/sa", COLLECTION_REASON),
    PublicRoute("GET", "/sa.gif", COLLECTION_REASON),
    PublicRoute("GET", "/healthz", "liveness probe for the orchestrator; says nothing but ok"),
    PublicRoute("POST", "/v1/auth/login", "logging in; throttled per user and client address"),
    PublicRoute("GET", "/openapi.json", "the API description; no data"),
    PublicRoute("GET", "/docs", "the API documentation page; no data"),
    PublicRoute("GET", "/docs/oauth2-redirect", "part of the API documentation page"),
    PublicRoute("GET", "/redoc", "the API documentation page; no data"),
)


def access_of(request: Request) -> AccessService:
    found: AccessService = request.app.state.container.access
    return found


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthenticated(detail: str) -> MarketloopError:
    error = unauthenticated(detail)
    error.headers.update(_BEARER_CHALLENGE)
    return error


def _forbidden(code: str, title: str, detail: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.FORBIDDEN, code=code, title=title, detail=detail)


def _authenticate(request: Request) -> Principal:
    """The caller of `request`, by bearer token or session cookie (with the CSRF check on unsafe methods)."""
    access = access_of(request)
    authorization = request.headers.get("authorization")
    try:
        if authorization is not None:
            scheme, _, secret = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise unauthenticated("use Authorization: Bearer <API token>")
            return access.authenticate_token(secret.strip())
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            raise unauthenticated("send Authorization: Bearer <API token>, or log in (POST /v1/auth/login)")
        principal, session = access.authenticate_session(session_id)
    except MarketloopError as error:
        raise _unauthenticated(error.detail) from None
    if request.method not in SAFE_METHODS:
        _check_csrf(request, session.csrf_hash)
    return principal


def _check_csrf(request: Request, csrf_hash: str) -> None:
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not header or not same(header, cookie) or not same(secret_hash(header), csrf_hash):
        raise _forbidden(
            "auth.csrf",
            "The CSRF token is missing or wrong",
            f"send the {CSRF_COOKIE} cookie's value in the X-CSRF-Token header",
        )


class Requirement:
    """A FastAPI dependency: authenticate the caller, check `permission`, return the `Principal`.

    `permission` None: any signed-in user (e.g. `GET /v1/auth/me`).
    """

    def __init__(self, permission: str | None) -> None:
        if permission is not None and permission not in PERMISSIONS:
            raise ValueError(f"{permission!r} is not in the permission catalog (marketloop.access.permissions)")
        self.permission = permission

    async def __call__(
        self,
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
        _session: Annotated[str | None, Depends(_SESSION)] = None,
    ) -> Principal:
        # `_bearer` and `_session` only describe the two ways in for the OpenAPI schema (and /docs'
        # Authorize button); `_authenticate` reads the request itself.
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            principal = await run_in_threadpool(_authenticate, request)
            access_of(request).check_rate(principal)
            request.state.principal = principal
            act_as(principal.actor)
        if self.permission is not None and not principal.may(self.permission):
            raise _forbidden(
                "auth.forbidden",
                "You do not have the permission for this",
                f"needs {self.permission}; your roles: {', '.join(principal.roles) or 'none'}",
            )
        return principal

    def __repr__(self) -> str:
        return f"require({self.permission!r})"


def require(permission: str) -> Any:
    """The dependency that admits only callers with `permission` (a name from the permission catalog).

    Use it in `dependencies=[...]` of a route or router, or as `Annotated[Principal, require(...)]`.
    """
    return Depends(Requirement(permission))


def signed_in() -> Any:
    """The dependency that admits any signed-in user, with no particular permission."""
    return Depends(Requirement(None))


async def _scoped_cust_no(cust_no: str, request: Request, user: Annotated[Principal, signed_in()]) -> str:
    if user.scope.everything or await run_in_threadpool(access_of(request).customer_in_scope, user.scope, cust_no):
        return cust_no
    raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="customer.not-found", title="No such customer")


# A `{cust_no}` path parameter that is "not found" (404) when the customer is outside the caller's
# data scope, exactly as for an unknown customer: `def route(cust_no: ScopedCustNo, ...)`.
ScopedCustNo = Annotated[str, Depends(_scoped_cust_no)]


def permissions_of(route: RouteContext) -> list[str]:
    """The permissions a route requires (`SIGNED_IN` for a route open to any signed-in user)."""
    found: list[str] = []
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Requirement):
            found.append(dependant.call.permission or SIGNED_IN)
        pending.extend(dependant.dependencies)
    declared = set(found)
    if declared - {SIGNED_IN}:
        declared.discard(SIGNED_IN)  # a real permission implies being signed in (ScopedCustNo asks for both)
    return sorted(declared)


def public_reason(method: str, path: str) -> str | None:
    for public in PUBLIC_ROUTES:
        if public.method == method and public.path == path:
            return public.reason
    return None


@dataclass(frozen=True)
class RouteDeclaration:
    """What a route of the app declares: its permissions, or why it is public (or neither: a defect)."""

    method: str
    path: str
    permissions: tuple[str, ...]
    public: str | None


def declarations(app: FastAPI) -> list[RouteDeclaration]:
    """One row per (route, method) of `app`, in path order."""
    rows = []
    for route in iter_route_contexts(app.routes):
        permissions = tuple(permissions_of(route))
        path = route.path or ""
        for method in sorted(set(route.methods or {"GET"}) - {"HEAD"}):
            rows.append(RouteDeclaration(method, path, permissions, public_reason(method, path)))
    return sorted(rows, key=lambda row: (row.path, row.method))
