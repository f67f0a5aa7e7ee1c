"""Security headers on the product API's answers (and only there: the collection routes stay bare and fast).

No Starlette middleware: `secure_routes(app)` wraps the `handle` of every
top-level route (an included router or a route) that is not made only of
collection routes, so the headers are added to whatever that route sends,
answers and problem+json errors alike. HSTS is sent on HTTPS requests only.
The API docs get everything but the CSP (Swagger UI loads its own scripts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import Message, Receive, Scope, Send

from marketloop.api.auth import COLLECTION_REASON, public_reason

Handle = Callable[[Scope, Receive, Send], Awaitable[None]]

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def _secured(handle: Handle, *, csp: bool) -> Handle:
    extra = BASE_HEADERS + ((CSP,) if csp else ())

    async def secured(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(n, v) for n, v in extra if n not in present]
                if scope.get("scheme") == "https":
                    added.append(HSTS)
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await handle(scope, receive, send_with_headers)

    return secured


def _collection_only(route: object) -> bool:
    contexts = list(iter_route_contexts([route]))  # type: ignore[list-item]
    paths = [(method, c.path or "") for c in contexts for method in (c.methods or {"GET"})]
    return bool(paths) and all(
        public_reason(method, path) == COLLECTION_REASON for method, path in paths if method != "HEAD"
    )


def secure_routes(app: FastAPI) -> None:
    """Add the security headers to every route of `app` but the collection routes; call once, last."""
    docs = {app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url}
    for route in app.routes:
        if _collection_only(route):
            continue
        is_docs = getattr(route, "path", None) in docs
        route.handle = _secured(route.handle, csp=not is_docs)  # type: ignore[method-assign, assignment]
