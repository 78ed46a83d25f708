"""One place that turns errors into responses: JSON for /api, an error page for HTML, a
toast (via the HX-Trigger header) for htmx requests. Domain errors know nothing of HTTP."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response

from app.domain import errors as domain
from app.services.unit_of_work import DatabaseUnavailable
from app.web.deps import NotAuthenticated
from app.web.forms import toast
from app.web.openapi import allowed_methods
from app.web.templating import is_htmx, render

log = logging.getLogger("prefloop.web")

STATUS = {
    domain.ValidationFailed: 422,
    domain.NotFound: 404,
    domain.Expired: 409,
    domain.Conflict: 409,
    domain.Forbidden: 403,
    domain.RateLimited: 429,
    domain.TooLarge: 413,
}
CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "database_unavailable",
}


def status_for(exc: domain.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or (
        "application/json" in request.headers.get("accept", "") and not is_htmx(request)
    )


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_json(request):
        body = {"error": {"code": code, "message": message, "details": details}}
        return JSONResponse(body, status_code=status, headers=headers)
    if is_htmx(request):
        hx = {**toast(message, "error", details=details), "HX-Reswap": "none"}
        return Response(status_code=status, headers={**(headers or {}), **hx})
    ctx = {"status": status, "code": code, "message": message, "details": details}
    return render(request, "error.html", ctx, status_code=status, headers=headers)


async def on_domain_error(request: Request, exc: domain.DomainError) -> Response:
    return error_response(request, status_for(exc), exc.code, exc.message, exc.details)


async def on_not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
    if wants_json(request):
        return error_response(
            request, 401, "not_authenticated", str(exc), headers={"WWW-Authenticate": "Bearer"}
        )
    target = "/login?next=" + quote(request.url.path)
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def on_request_validation(request: Request, exc: RequestValidationError) -> Response:
    problems = domain.Problems()
    problems.add_located(exc.errors(), skip=("body", "query", "path"))
    failure = problems.error()
    return error_response(request, 422, failure.code, failure.message, failure.details)


async def on_http_exception(request: Request, exc: HTTPException) -> Response:
    code = CODES.get(exc.status_code, "error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # every method of the path, not only the first route's
        allowed = allowed_methods(request.app, request.url.path)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return error_response(request, exc.status_code, code, str(exc.detail), headers=headers)


async def on_database_unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
    message = "The database is unavailable; try again in a moment."
    return error_response(request, 503, CODES[503], message, headers={"Retry-After": "1"})


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal_error", "Something went wrong on our side.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(domain.DomainError, on_domain_error)
    app.add_exception_handler(NotAuthenticated, on_not_authenticated)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(DatabaseUnavailable, on_database_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
