"""What every Reepay handler shares: authentication, JSON answers, finding objects by handle.

Reepay authenticates with HTTP Basic: the private API key (``priv_...``) as the user name and
an empty password (a password, if sent, is not looked at: the key alone is the secret).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from settle.api.http import basic_auth
from settle.api.lifecycle import Call
from settle.api.reepay.convert import lookup_handle
from settle.customers import service as customers
from settle.customers.models import Customer
from settle.db.database import Lock, Tx
from settle.errors import AuthenticationError, ErrorCode, NotFoundError, SettleError
from settle.invoices import service as invoices
from settle.invoices.models import Invoice
from settle.projects.models import Scope
from settle.runtime import Runtime

# VAT rates are Decimals: written as JSON numbers (0.25), as the vendor does, exactly.
encode: Final = msgspec.json.Encoder(decimal_format="number").encode

CUSTOMER_ID_PREFIX: Final = "cust_"
INVOICE_ID_PREFIX: Final = "iv_"


def json_response(payload: Any) -> Response:
    return Response(encode(payload), media_type="application/json")


async def authenticate(request: Request, rt: Runtime) -> Scope:
    creds = basic_auth(request)
    if creds is None or not creds[0]:
        raise AuthenticationError(
            "Authenticate with HTTP Basic: your private API key as the user name and an empty "
            "password.",
            code=ErrorCode.AUTHENTICATION_MISSING,
        )
    return await rt.keys.reepay(creds[0])


async def start(request: Request) -> Call:
    return await Call.start(request, authenticate)


def path_ref(request: Request, param: str, kind: str) -> str:
    """The handle (or id) in the path, checked before the body is read: a reference no object
    can have is a 404 whatever the body says."""
    return lookup_handle(request.path_params[param], kind)


def customer_deleted(ref: str) -> SettleError:
    return SettleError(f"The customer {ref!r} has been deleted.", code=ErrorCode.CUSTOMER_DELETED)


async def find_customer(tx: Tx, scope: Scope, ref: str, *, lock: Lock = Lock.NONE) -> Customer:
    """The live customer whose handle is ``ref``; a customer created without a handle (through
    another dialect) answers to its id, which stands in for its handle everywhere here. A
    deleted customer is code 71, not 9."""
    lookup_handle(ref, "customer")
    try:
        return await customers.get_customer(tx, scope, ref, by="handle", lock=lock)
    except NotFoundError:
        pass
    by_id = ref.startswith(CUSTOMER_ID_PREFIX)
    if by_id:
        try:
            return await customers.get_customer(tx, scope, ref, by="id", lock=lock)
        except NotFoundError:
            pass
    if await customers.customer_gone(tx, scope, ref) is not None or (
        by_id and await customers.customer_gone(tx, scope, ref, by="id") is not None
    ):
        raise customer_deleted(ref)
    raise NotFoundError("customer", ref)


async def find_invoice(tx: Tx, scope: Scope, ref: str, *, lock: Lock = Lock.NONE) -> Invoice:
    """The invoice whose id or handle is ``ref`` (an invoice created without a handle, through
    another dialect, answers to its id alone)."""
    lookup_handle(ref, "invoice")
    if ref.startswith(INVOICE_ID_PREFIX):
        try:
            return await invoices.get_invoice(tx, scope, ref, lock=lock)
        except NotFoundError:
            pass
    return await invoices.get_invoice(tx, scope, ref, by="handle", lock=lock)
