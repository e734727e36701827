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
"""

from __future__ import annotations


class SettleError(Exception):
    """Base of the tree. ``code`` is stable; ``message`` is for humans."""

    code = "settle.error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ValidationError(SettleError):
    code = "request.validation.error"


class MalformedBody(ValidationError):
    code = "request.body.malformed"


class AuthenticationError(SettleError):
    code = "request.authentication.invalid"


class NotFoundError(SettleError):
    code = "resource.not-found"

    def __init__(self, kind: str, object_id: str | None = None) -> None:
        what = f"{kind} {object_id!r}" if object_id else kind
        super().__init__(f"The {what} could not be found.", code=f"resource.{kind}.not-found")
        self.kind = kind
        self.object_id = object_id


class ConflictError(SettleError):
    code = "resource.conflict"


class DuplicateError(ConflictError):
    code = "resource.duplicate"


class PayloadTooLarge(SettleError):
    code = "request.body.too-large"


class UnavailableError(SettleError):
    code = "service.unavailable"
