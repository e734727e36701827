"""The error tree -> ProcessOut error bodies, in one place.

ProcessOut documents 400, 401, 404 and 5xx; its official clients raise ValidationError,
AuthenticationError, NotFoundError and InternalError for those. A state conflict ("this invoice
was already paid") is therefore a 400 here, with its own ``error_type``.
"""

from __future__ import annotations

import logging
from typing import Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settle.db.database import DatabaseUnavailable
from settle.errors import (
    AuthenticationError,
    NotFoundError,
    PayloadTooLarge,
    SettleError,
    UnavailableError,
    ValidationError,
)

log = logging.getLogger("settle.api.processout")

_STATUS: Final[list[tuple[type[SettleError], int]]] = [
    (ValidationError, 400),
    (AuthenticationError, 401),
    (NotFoundError, 404),
    (PayloadTooLarge, 413),
    (UnavailableError, 503),
]


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = msgspec.json.encode({"success": False, "error_type": error_type, "message": message})
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Basic realm="ProcessOut API"'}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110: a 405 lists them in Allow).
    Starlette's own Allow names only the first route that matched the path."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


def status_of(exc: SettleError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


async def on_settle_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SettleError)
    return error_response(status_of(exc), exc.code, exc.message)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "request.route.not-found", "No such endpoint.")
    if exc.status_code == 405:
        return error_response(
            405,
            "request.route.method-not-allowed",
            f"{request.method} is not allowed on {request.url.path}.",
            headers={"Allow": allowed_methods(request)},
        )
    return error_response(exc.status_code, "request.error", str(exc.detail))


async def on_unavailable(request: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", exc)
    return error_response(503, "service.unavailable", "The service is temporarily unavailable.")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this response, so the server logs the traceback; the body
    # says nothing about it.
    return error_response(500, "server.internal", "An internal error occurred.")


HANDLERS: Final = {
    SettleError: on_settle_error,
    HTTPException: on_http_error,
    DatabaseUnavailable: on_unavailable,
    Exception: on_unexpected,
}
