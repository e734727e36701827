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

from settle.api.http import allowed_methods
from settle.db.database import DatabaseUnavailable
from settle.errors import (
    ErrorCode,
    SettleError,
)

log = logging.getLogger("settle.api.processout")

C = ErrorCode
# The HTTP status of every domain error code; its ``error_type`` is the code itself. Every
# member of ErrorCode is listed (tests/api/test_error_codes.py): a new code is mapped on
# purpose, not by a default.
STATUS: Final[dict[ErrorCode, int]] = {
    C.ERROR: 400,
    C.VALIDATION: 400,
    C.MALFORMED_BODY: 400,
    C.AUTHENTICATION_INVALID: 401,
    C.AUTHENTICATION_MISSING: 401,
    C.NOT_FOUND: 404,
    C.CONFLICT: 400,
    C.DUPLICATE: 400,
    C.BODY_TOO_LARGE: 413,
    C.UNAVAILABLE: 503,
    C.UNSUPPORTED_MEDIA_TYPE: 400,
    C.FORM_CONFLICT: 400,
    C.FORM_INVALID_INDEX: 400,
    C.IDEMPOTENCY_KEY_INVALID: 400,
    C.IDEMPOTENCY_KEY_REUSED: 400,
    C.IDEMPOTENCY_KEY_IN_PROGRESS: 400,
    C.INVALID_CHARACTER: 400,
    C.INVALID_AMOUNT: 400,
    C.INVALID_CURRENCY: 400,
    C.INVALID_TAX_RATE: 400,
    C.TAX_EXCEEDS_AMOUNT: 400,
    C.MISSING_CURRENCY: 400,
    C.MISSING_AMOUNT: 400,
    C.INVALID_URL: 400,
    C.INVALID_IP: 400,
    C.INVALID_EMAIL: 400,
    C.INVALID_COUNTRY: 400,
    C.INVALID_DATE: 400,
    C.INVALID_ENUM: 400,
    C.INVALID_STATEMENT_DESCRIPTOR: 400,
    C.IMMUTABLE_FIELD: 400,
    C.FREE_FORM_TOO_LARGE: 400,
    C.INVALID_LIMIT: 400,
    C.INVALID_CURSOR: 400,
    C.CONFLICTING_CURSORS: 400,
    C.DATE_RANGE_INVALID: 400,
    C.NOT_IMPLEMENTED: 400,
    C.INVOICE_NOT_FOUND: 404,
    C.CUSTOMER_NOT_FOUND: 404,
    C.TRANSACTION_NOT_FOUND: 404,
    C.TOKEN_NOT_FOUND: 404,
    C.PROJECT_NOT_FOUND: 404,
    C.EVENT_NOT_FOUND: 404,
    C.WEBHOOK_NOT_FOUND: 404,
    C.INVOICE_DUPLICATE_HANDLE: 400,
    C.CUSTOMER_DUPLICATE_HANDLE: 400,
    C.CUSTOMER_DELETED: 404,
    # A state conflict is a 400: the official clients know no 409 (see the module docstring).
    C.INVOICE_ALREADY_USED: 400,
    C.INVOICE_NO_CUSTOMER: 400,
    C.INVOICE_ALREADY_SETTLED: 400,
    C.INVOICE_ALREADY_CANCELLED: 400,
    C.INVOICE_ALREADY_AUTHORIZED: 400,
    C.INVOICE_NOT_AUTHORIZED: 400,
    C.INVOICE_WRONG_STATE: 400,
    C.CARD_NOT_FOUND: 404,
    C.REFUND_NOT_FOUND: 404,
    C.INVALID_CARD_NUMBER: 400,
    C.INVALID_CARD_EXPIRY: 400,
    C.INVALID_CARD_CVC: 400,
    C.TOKEN_NOT_USABLE: 400,
    C.PAYMENT_METHOD_MISSING: 400,
    C.INVOICE_NOT_PAYABLE: 400,
    C.INVOICE_NOT_SETTLED: 400,
    C.TRANSACTION_BUSY: 400,
    C.TRANSACTION_ILLEGAL_OPERATION: 400,
    C.TRANSACTION_AMOUNT_TOO_HIGH: 400,
    C.GATEWAY_UNAVAILABLE: 503,
    C.SANDBOX_ONLY: 400,
    C.SOURCE_UNKNOWN: 400,
}


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = msgspec.json.encode({"success": False, "error_type": error_type, "message": message})
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Basic realm="ProcessOut API"'}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def status_of(exc: SettleError) -> int:
    return STATUS[exc.code]


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
    return error_response(503, ErrorCode.UNAVAILABLE, "The service is temporarily unavailable.")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this response, so the server logs the traceback; the body
    # says nothing about it. The server then drops the connection: say so, or a keep-alive
    # client sends its next request into a closed socket and reads a reset.
    return error_response(
        500, "server.internal", "An internal error occurred.", headers={"Connection": "close"}
    )


HANDLERS: Final = {
    SettleError: on_settle_error,
    HTTPException: on_http_error,
    DatabaseUnavailable: on_unavailable,
    Exception: on_unexpected,
}
