"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://marketloop.dev/problems/"

STATUS = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED: 415,
    ErrorKind.RATE_LIMITED: 429,
}


def field_errors(errors: list[FieldError]) -> list[dict[str, Any]]:
    return [_field_error(e) for e in errors]


def _field_error(error: FieldError) -> dict[str, Any]:
    found: dict[str, Any] = {"pointer": error.pointer, "detail": error.detail}
    extra = {"index": error.index, "line": error.line, "column": error.column}
    return found | {key: value for key, value in extra.items() if value is not None}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    *,
    instance: str = "",
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": TYPE_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = field_errors(errors)
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Basic realm="marketloop"')
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def install(app: FastAPI) -> None:
    """Make every error of `app` a problem+json response."""

    async def domain(request: Request, error: Exception) -> Response:
        assert isinstance(error, MarketloopError)
        return problem_response(
            STATUS[error.kind],
            error.code,
            error.title,
            error.detail,
            instance=request.url.path,
            errors=error.errors,
            headers=error.headers or None,
        )

    async def validation(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = [
            FieldError(pointer="/" + "/".join(str(p) for p in e["loc"]), detail=str(e["msg"])) for e in error.errors()
        ]
        return problem_response(
            422, "request.invalid", "The request is not valid", instance=request.url.path, errors=errors
        )

    async def http(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = f"http.{error.status_code}"
        # Keep the exception's headers: a 405 must say what is allowed (`Allow`), a 401 how to authenticate.
        return problem_response(
            error.status_code, code, str(error.detail), instance=request.url.path, headers=dict(error.headers or {})
        )

    app.add_exception_handler(MarketloopError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http)
