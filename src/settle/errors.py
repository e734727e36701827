"""The one error tree of Settle.

Every failure the domain can report is a ``SettleError``. Each dialect translates the tree to its
own wire format in a single exception handler, looking errors up by class (so a handler on the
base class covers every subclass)::

    SettleError                      code: stable, dotted, machine-readable
    ├── ValidationError              the request is malformed or breaks a rule (one field named)
    │   └── MalformedBody            the body could not be parsed at all (JSON, form, UTF-8)
    ├── AuthenticationError          missing or wrong credentials
    ├── NotFoundError                no such object *in the caller's project and mode*
    ├── ConflictError                the object exists but its state forbids the operation
    │   └── DuplicateError           a unique handle or key is taken
    ├── PayloadTooLarge              the body is over the configured limit
    └── UnavailableError             a dependency (the database) is not answering

Errors carry no secrets: messages name fields and ids, never keys or card data.

Every code is a member of ``ErrorCode``: a dialect maps each one (tests/api/test_error_codes.py
proves that no code is left unmapped), so a new error cannot reach a client unnamed.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """The stable, dotted codes of every error Settle reports."""

    # The tree's defaults
    ERROR = "settle.error"
    VALIDATION = "request.validation.error"
    MALFORMED_BODY = "request.body.malformed"
    AUTHENTICATION_INVALID = "request.authentication.invalid"
    NOT_FOUND = "resource.not-found"
    CONFLICT = "resource.conflict"
    DUPLICATE = "resource.duplicate"
    BODY_TOO_LARGE = "request.body.too-large"
    UNAVAILABLE = "service.unavailable"
    # The request itself
    AUTHENTICATION_MISSING = "request.authentication.missing"
    UNSUPPORTED_MEDIA_TYPE = "request.body.unsupported-media-type"
    FORM_CONFLICT = "request.body.form-conflict"
    FORM_INVALID_INDEX = "request.body.form-invalid-index"
    IDEMPOTENCY_KEY_INVALID = "request.idempotency-key.invalid"
    IDEMPOTENCY_KEY_REUSED = "request.idempotency-key.reused"
    IDEMPOTENCY_KEY_IN_PROGRESS = "request.idempotency-key.in-progress"
    # Fields
    INVALID_CHARACTER = "request.validation.invalid-character"
    INVALID_AMOUNT = "request.validation.invalid-amount"
    INVALID_CURRENCY = "request.validation.invalid-currency"
    INVALID_TAX_RATE = "request.validation.invalid-tax-rate"
    TAX_EXCEEDS_AMOUNT = "request.validation.tax-exceeds-amount"
    MISSING_CURRENCY = "request.validation.missing-currency"
    MISSING_AMOUNT = "request.validation.missing-amount"
    INVALID_URL = "request.validation.invalid-url"
    INVALID_IP = "request.validation.invalid-ip"
    INVALID_EMAIL = "request.validation.invalid-email"
    INVALID_COUNTRY = "request.validation.invalid-country"
    INVALID_DATE = "request.validation.invalid-date"
    INVALID_ENUM = "request.validation.invalid-enum"
    INVALID_STATEMENT_DESCRIPTOR = "request.validation.invalid-statement-descriptor"
    IMMUTABLE_FIELD = "request.validation.immutable-field"
    FREE_FORM_TOO_LARGE = "request.validation.free-form-too-large"
    # Lists
    INVALID_LIMIT = "request.validation.invalid-limit"
    INVALID_CURSOR = "request.validation.invalid-cursor"
    CONFLICTING_CURSORS = "request.validation.conflicting-cursors"
    DATE_RANGE_INVALID = "request.validation.date-range"
    # A documented field or filter this server does not act on yet: refused, never ignored
    NOT_IMPLEMENTED = "request.not-implemented"
    # Objects
    INVOICE_NOT_FOUND = "resource.invoice.not-found"
    CUSTOMER_NOT_FOUND = "resource.customer.not-found"
    TRANSACTION_NOT_FOUND = "resource.transaction.not-found"
    TOKEN_NOT_FOUND = "resource.token.not-found"  # noqa: S105 (a code, not a secret)
    PROJECT_NOT_FOUND = "resource.project.not-found"
    EVENT_NOT_FOUND = "resource.event.not-found"
    WEBHOOK_NOT_FOUND = "resource.webhook.not-found"
    INVOICE_DUPLICATE_HANDLE = "invoice.duplicate-handle"
    CUSTOMER_DUPLICATE_HANDLE = "customer.duplicate-handle"
    CUSTOMER_DELETED = "customer.deleted"
    INVOICE_ALREADY_USED = "invoice.already-used"
    INVOICE_NO_CUSTOMER = "invoice.no-customer"
    INVOICE_ALREADY_SETTLED = "invoice.already-settled"
    INVOICE_ALREADY_CANCELLED = "invoice.already-cancelled"
    INVOICE_ALREADY_AUTHORIZED = "invoice.already-authorized"
    INVOICE_NOT_AUTHORIZED = "invoice.not-authorized"
    INVOICE_WRONG_STATE = "invoice.wrong-state"
    # Payments
    CARD_NOT_FOUND = "resource.card.not-found"
    REFUND_NOT_FOUND = "resource.refund.not-found"
    INVALID_CARD_NUMBER = "card.invalid-number"
    INVALID_CARD_EXPIRY = "card.invalid-expiry"
    INVALID_CARD_CVC = "card.invalid-cvc"
    TOKEN_NOT_USABLE = "token.not-usable"  # noqa: S105 (a code, not a secret)
    PAYMENT_METHOD_MISSING = "invoice.payment-method-missing"
    INVOICE_NOT_PAYABLE = "invoice.not-payable"
    INVOICE_NOT_SETTLED = "invoice.not-settled"
    TRANSACTION_BUSY = "transaction.operation-in-progress"
    TRANSACTION_ILLEGAL_OPERATION = "transaction.illegal-operation"
    TRANSACTION_AMOUNT_TOO_HIGH = "transaction.amount-too-high"
    GATEWAY_UNAVAILABLE = "gateway.unavailable"
    SANDBOX_ONLY = "request.sandbox-only"
    SOURCE_UNKNOWN = "payment.source-unknown"


class SettleError(Exception):
    """Base of the tree. ``code`` is stable; ``message`` is for humans."""

    code: ErrorCode = ErrorCode.ERROR

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ValidationError(SettleError):
    code = ErrorCode.VALIDATION


def invalid(field: str, message: str, code: ErrorCode = ErrorCode.VALIDATION) -> ValidationError:
    """The error for one field: its message starts with the field's name."""
    return ValidationError(f"{field}: {message}", code=code, field=field)


class MalformedBody(ValidationError):
    code = ErrorCode.MALFORMED_BODY


class AuthenticationError(SettleError):
    code = ErrorCode.AUTHENTICATION_INVALID


class NotFoundError(SettleError):
    """No such ``kind`` of object: its code is ``resource.<kind>.not-found``, a member of
    ErrorCode (a kind without one is a programming error, caught by the tests)."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, object_id: str | None = None) -> None:
        what = f"{kind} {object_id!r}" if object_id else kind
        super().__init__(
            f"The {what} could not be found.", code=ErrorCode(f"resource.{kind}.not-found")
        )
        self.kind = kind
        self.object_id = object_id


class ConflictError(SettleError):
    code = ErrorCode.CONFLICT


class DuplicateError(ConflictError):
    code = ErrorCode.DUPLICATE


class PayloadTooLarge(SettleError):
    code = ErrorCode.BODY_TOO_LARGE


class UnavailableError(SettleError):
    code = ErrorCode.UNAVAILABLE
