"""The error tree -> Reepay error bodies, in one place.

Reepay answers ``{"code", "error", "message", "path", "timestamp", "http_status",
"http_reason", "request_id"}`` with a numeric ``code`` from its table (``error_codes.json``,
served at ``GET /v1/error_codes``) and a ``Request-Id`` header on every response. Domain
errors name domain fields; a client of this dialect is told the names it sent.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from settle.api.http import allowed_methods
from settle.api.reepay.request_id import request_id_of
from settle.db.database import DatabaseUnavailable
from settle.errors import ErrorCode, SettleError

log = logging.getLogger("settle.api.reepay")

# Domain field -> the name this dialect's clients use for it.
FIELD_NAMES: Final[dict[str, str]] = {
    "country_code": "country",
    "zip": "postal_code",
    "phone_number": "phone",
    "company_name": "company",
    "address1": "address",
    "lines": "order_lines",
    "start_after": "next_page_token",
    "limit": "size",
    "capture_amount": "amount",  # the amount of a charge's settle
}
C = ErrorCode
# Every domain error code -> (Reepay's numeric code, HTTP status). Every member of ErrorCode is
# listed (tests/api/test_error_codes.py): a new code is mapped on purpose. Reepay answers 422
# for a missing or badly formatted parameter, 400 for an illegal operation (its reference).
CODES: Final[dict[ErrorCode, tuple[int, int]]] = {
    C.ERROR: (1, 400),
    C.VALIDATION: (1, 422),
    C.MALFORMED_BODY: (1, 400),
    C.AUTHENTICATION_INVALID: (6, 401),
    C.AUTHENTICATION_MISSING: (6, 401),
    C.NOT_FOUND: (8, 404),
    C.CONFLICT: (1, 400),
    C.DUPLICATE: (11, 400),
    C.BODY_TOO_LARGE: (1, 413),
    C.UNAVAILABLE: (2, 503),
    C.UNSUPPORTED_MEDIA_TYPE: (1, 415),
    C.FORM_CONFLICT: (1, 400),
    C.FORM_INVALID_INDEX: (1, 400),
    C.IDEMPOTENCY_KEY_INVALID: (1, 400),
    C.IDEMPOTENCY_KEY_REUSED: (1, 400),
    C.IDEMPOTENCY_KEY_IN_PROGRESS: (80, 400),  # "Invoice processing": being done already
    C.INVALID_CHARACTER: (1, 422),
    C.INVALID_AMOUNT: (1, 422),
    C.INVALID_CURRENCY: (1, 422),
    C.INVALID_TAX_RATE: (1, 422),
    C.TAX_EXCEEDS_AMOUNT: (1, 422),
    C.MISSING_CURRENCY: (1, 422),
    C.MISSING_AMOUNT: (24, 400),  # "Missing amount"
    C.INVALID_URL: (1, 422),
    C.INVALID_IP: (1, 422),
    C.INVALID_EMAIL: (1, 422),
    C.INVALID_COUNTRY: (1, 422),
    C.INVALID_DATE: (1, 422),
    C.INVALID_ENUM: (1, 422),
    C.INVALID_STATEMENT_DESCRIPTOR: (1, 422),
    C.IMMUTABLE_FIELD: (1, 400),
    C.FREE_FORM_TOO_LARGE: (1, 422),
    C.INVALID_LIMIT: (1, 422),
    C.INVALID_CURSOR: (1, 422),
    C.CONFLICTING_CURSORS: (1, 422),
    C.DATE_RANGE_INVALID: (23, 400),  # "From date after to date"
    C.NOT_IMPLEMENTED: (43, 501),  # "Not implemented"
    C.INVOICE_NOT_FOUND: (31, 404),
    C.CUSTOMER_NOT_FOUND: (9, 404),
    C.TRANSACTION_NOT_FOUND: (70, 404),
    C.TOKEN_NOT_FOUND: (40, 404),  # a saved card: Reepay's "payment method"
    C.PROJECT_NOT_FOUND: (15, 404),  # "Account not found"
    C.EVENT_NOT_FOUND: (47, 404),  # "Event not found"
    C.WEBHOOK_NOT_FOUND: (46, 404),  # "Webhook not found"
    C.INVOICE_DUPLICATE_HANDLE: (11, 400),
    C.CUSTOMER_DUPLICATE_HANDLE: (11, 400),
    C.CUSTOMER_DELETED: (71, 404),  # "Customer has been deleted"
    C.INVOICE_ALREADY_USED: (30, 400),  # "Invoice has active transactions"
    C.INVOICE_NO_CUSTOMER: (18, 400),  # "Missing customer"
    C.INVOICE_ALREADY_SETTLED: (79, 400),
    C.INVOICE_ALREADY_CANCELLED: (29, 400),
    C.INVOICE_ALREADY_AUTHORIZED: (105, 400),
    C.INVOICE_NOT_AUTHORIZED: (106, 400),  # "Invoice must be authorized"
    C.INVOICE_WRONG_STATE: (82, 400),
    C.CARD_NOT_FOUND: (19, 404),
    C.REFUND_NOT_FOUND: (107, 404),
    C.INVALID_CARD_NUMBER: (34, 400),  # "Invalid card token": the card cannot be used
    C.INVALID_CARD_EXPIRY: (34, 400),
    C.INVALID_CARD_CVC: (34, 400),
    C.TOKEN_NOT_USABLE: (42, 400),  # "Payment method not active"
    C.PAYMENT_METHOD_MISSING: (76, 400),  # "Payment method not provided"
    C.INVOICE_NOT_PAYABLE: (79, 400),  # "Invoice already settled" and kin
    C.INVOICE_NOT_SETTLED: (64, 400),  # a refund of an invoice not settled
    C.TRANSACTION_BUSY: (80, 400),  # "Invoice processing"
    C.TRANSACTION_ILLEGAL_OPERATION: (109, 400),  # "Transaction wrong state for operation"
    C.TRANSACTION_AMOUNT_TOO_HIGH: (65, 400),  # "Refund amount too high" and kin
    C.GATEWAY_UNAVAILABLE: (2, 503),
    C.SANDBOX_ONLY: (1, 400),
    C.SOURCE_UNKNOWN: (110, 400),  # "Unknown or missing source"
}
# Where Reepay has two codes for one domain code, the error's field tells them apart: a
# capture above the authorized rest is its 102, a refund above what is left its 65; an
# invoice not payable for its amount of 0 is its 145, one paid already its 79.
FIELD_CODES: Final[dict[tuple[ErrorCode, str], tuple[int, int]]] = {
    (C.TRANSACTION_AMOUNT_TOO_HIGH, "capture_amount"): (102, 400),
    (C.INVOICE_NOT_PAYABLE, "amount"): (145, 400),
}


@cache
def error_table() -> list[dict[str, Any]]:
    """The vendor's code table, as shipped beside this module."""
    table: list[dict[str, Any]] = json.loads(
        Path(__file__).with_name("error_codes.json").read_text(encoding="utf-8")
    )
    return table


@cache
def _names() -> dict[int, str]:
    return {row["code"]: row["error"] for row in error_table()}


def _timestamp() -> str:
    # Reepay's format: "2015-06-12T06:38:33.876+0000".
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def error_response(
    request: Request, status: int, code: int, message: str, *, close: bool = False
) -> Response:
    request_id = request_id_of(request)
    body = {
        "code": code,
        "error": _names().get(code, HTTPStatus(status).phrase),
        "message": message,
        "path": request.url.path,
        "timestamp": _timestamp(),
        "http_status": status,
        "http_reason": HTTPStatus(status).phrase,
        "request_id": request_id,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Reepay API"'} if status == 401 else {}
    if close:  # the server drops the connection after a 500: say so (see the ProcessOut face)
        headers["Connection"] = "close"
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def translate_field(exc: SettleError) -> str:
    """The message with the domain's field name replaced by this dialect's."""
    field, message = exc.field, exc.message
    if field is None:
        return message
    head = field.split(".", 1)[0].split("[", 1)[0]
    name = FIELD_NAMES.get(head)
    if name is None:
        return message
    return message.replace(head, name, 1) if message.startswith(head) else message


def code_and_status(exc: SettleError) -> tuple[int, int]:
    if exc.field is not None:
        found = FIELD_CODES.get((exc.code, exc.field))
        if found is not None:
            return found
    return CODES[exc.code]


async def on_settle_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SettleError)
    code, status = code_and_status(exc)
    return error_response(request, status, code, translate_field(exc))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(request, 404, 8, "No such endpoint.")
    if exc.status_code == 405:
        response = error_response(
            request, 405, 1, f"{request.method} is not allowed on {request.url.path}."
        )
        # Every method of the path (Starlette's names only the first route matching it).
        response.headers["Allow"] = allowed_methods(request)
        return response
    return error_response(request, exc.status_code, 1, str(exc.detail))


async def on_unavailable(request: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", exc)
    return error_response(request, 503, 2, "The service is temporarily unavailable.")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # The server logs the traceback; the body says nothing about it.
    return error_response(request, 500, 2, "An internal error occurred.", close=True)


HANDLERS: Final = {
    SettleError: on_settle_error,
    HTTPException: on_http_error,
    DatabaseUnavailable: on_unavailable,
    Exception: on_unexpected,
}
