"""The settling operations' part of the Reepay dialect's OpenAPI document (``openapi``):
invoice settle / manual_settle / cancel / fail / reactivate, transactions, payment methods
and charges. Built with ``openapi``'s helpers, in the same style: request bodies from the
msgspec wire types, responses narrowed to what the renderers write (no other key allowed).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from settle.api.reepay import ops_schemas as ops_wire
from settle.api.reepay import schemas as wire
from settle.api.reepay.lists import REEPAY_STATES
from settle.api.reepay.payment_methods import CARD_TYPES, PROVIDER
from settle.billing.states import MANUAL_METHODS

Schema = dict[str, Any]
_REF: Final = "#/components/schemas/{name}"
_STR: Final[Schema] = {"type": "string"}
_TIME: Final[Schema] = {"type": "string", "format": "date-time"}
_MINOR: Final[Schema] = {"type": "integer", "minimum": 0}
_CARD_TYPE: Final[Schema] = {
    "type": "string",
    "enum": [*sorted(set(CARD_TYPES.values())), "unknown"],
}
# Not in the vendor's document (settle.api.reepay.transactions): the payer's 3-D Secure page.
_REDIRECT: Final[Schema] = {
    "type": "string",
    "format": "uri",
    "description": "Not in the vendor's document: while the transaction is pending for the "
    "payer's 3-D Secure answer, the page to send them to (Settle's challenge page); the "
    "answer settles the invoice, or fails it if refused.",
}
_ERROR_STATE: Final[Schema] = {"type": "string", "enum": ["hard_declined", "processing_error"]}


def _ref(name: str) -> Schema:
    return {"$ref": _REF.format(name=name)}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def request_components() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(
        [
            wire.Settle,
            wire.ManualSettleTransfer,
            ops_wire.CreatePaymentMethod,
            ops_wire.CreateCharge,
            ops_wire.SettleCharge,
        ],
        ref_template=_REF,
    )
    components["Settle"]["properties"]["due"]["description"] = (
        "Settling later is not supported: refused with code 43."
    )
    transfer = components["ManualSettleTransfer"]["properties"]
    transfer["method"]["description"] = f"Required: one of {', '.join(MANUAL_METHODS)}."
    transfer["payment_date"]["description"] = "Required: YYYY-MM-DD."
    components["CreatePaymentMethod"]["description"] = (
        "Sandbox projects only: a test card of the sandbox gateway (4242 4242 4242 4242 "
        "succeeds, 4000 0000 0000 0002 is declined, ...). Not a vendor operation: the vendor "
        "adds cards through its hosted card form."
    )
    for name, fields in ops_wire.UNSUPPORTED.items():
        for field in fields:
            wire_name = "async" if field == "async_" else field
            components[name.__name__]["properties"][wire_name]["description"] = (
                "Not supported: refused with code 43 when given (when true)."
            )
    charge = components["CreateCharge"]["properties"]
    charge["source"]["description"] = "A saved card of the customer (ca_...); others: code 110."
    charge["customer"]["description"] = "Its handle names an existing customer (not created)."
    charge["handle"]["description"] = (
        "A handle taken by an unpaid charge (pending, or failed after a decline) of the same "
        "customer, currency and order lines: a new attempt to pay it. Settled: 79; "
        "authorized: 105; cancelled: 82; in flight: 80; another customer's or content: 11."
    )
    return components


def response_components() -> dict[str, Schema]:
    card_facts = {
        "card_type": _CARD_TYPE,
        "exp_date": _STR,
        "masked_card": _STR,
        "fingerprint": _STR,
    }
    card_transaction = _object(
        {**card_facts, "provider": {"type": "string", "enum": [PROVIDER]}},
        {
            "error": _STR,
            "error_state": _ERROR_STATE,
            "strong_authentication_status": {"type": "string", "enum": ["threed_secure"]},
        },
    )
    manual_transaction = _object(
        {"method": {"type": "string", "enum": list(MANUAL_METHODS)}, "payment_date": _TIME},
        {"comment": _STR, "reference": _STR},
    )
    transaction = _object(
        {
            "id": _STR,
            "state": {
                "type": "string",
                "enum": [
                    "pending",
                    "processing",
                    "authorized",
                    "settled",
                    "refunded",
                    "failed",
                    "cancelled",
                ],
            },
            "invoice": _STR,
            "type": {"type": "string", "enum": ["settle", "refund", "authorization"]},
            "amount": _MINOR,
            "currency": _STR,
            "created": _TIME,
            "payment_type": {"type": "string", "enum": ["card", "manual"]},
        },
        {
            "settled": _TIME,
            "authorized": _TIME,
            "failed": _TIME,
            "refunded": _TIME,
            "payment_method": _STR,
            "card_transaction": _ref("CardTransaction"),
            "manual_transaction": _ref("ManualTransaction"),
            "redirect_url": _REDIRECT,
        },
    )
    card = _object(
        {
            "id": {"type": "string", "pattern": "^ca_"},
            "state": {"type": "string", "enum": ["active", "inactivated"]},
            "customer": _STR,
            "created": _TIME,
            "gw_ref": _STR,
            **card_facts,
        }
    )
    source = _object(
        {"type": {"type": "string", "enum": ["card", "manual"]}},
        {"card": _STR, **card_facts, "provider": {"type": "string", "enum": [PROVIDER]}},
    )
    charge = _object(
        {
            "handle": _STR,
            "state": {"type": "string", "enum": [s for s in REEPAY_STATES if s != "dunning"]},
            "customer": _STR,
            "amount": _MINOR,
            "currency": _STR,
            "created": _TIME,
            "source": _ref("ChargeSource"),
            "order_lines": {"type": "array", "items": _ref("OrderLine")},
            "refunded_amount": _MINOR,
            "authorized_amount": _MINOR,
            "processing": {"type": "boolean"},
        },
        {
            "authorized": _TIME,
            "settled": _TIME,
            "cancelled": _TIME,
            "transaction": _STR,
            "error": _STR,
            "error_state": _ERROR_STATE,
            "billing_address": _ref("InvoiceBillingAddress"),
            "shipping_address": _ref("InvoiceShippingAddress"),
            "redirect_url": _REDIRECT,
        },
    )
    return {
        "Transaction": transaction,
        "CardTransaction": card_transaction,
        "ManualTransaction": manual_transaction,
        "Card": card,
        "CustomerPaymentMethods": _object({"cards": {"type": "array", "items": _ref("Card")}}),
        "ChargeSource": source,
        "Charge": charge,
    }


OperationMaker = Any  # openapi._operation, passed in (no import cycle)


def paths(operation: OperationMaker, path_param: OperationMaker) -> dict[str, Schema]:
    """The settling operations' paths, built with ``openapi``'s ``_operation``."""
    invoice_id = [path_param("id")]
    handle = [path_param("handle")]
    invoice = _ref("Invoice")
    charge = _ref("Charge")
    write = (400, 401, 404, 413, 415, 422)
    change = (400, 401, 404)

    def invoice_change(operation_id: str) -> Schema:
        return {
            "post": operation(
                operation_id, "Invoice", params=invoice_id, answer=invoice, errors=change
            )
        }

    return {
        "/invoice/{id}/settle": {
            "post": operation(
                "settle",
                "Invoice",
                params=invoice_id,
                body=_ref("Settle"),
                answer=invoice,
                errors=(*write, 501),
            )
        },
        "/invoice/{id}/settle/cancel": invoice_change("cancelSettleLater"),
        "/invoice/{id}/manual_settle": {
            "post": operation(
                "manualSettle",
                "Invoice",
                params=invoice_id,
                body=_ref("ManualSettleTransfer"),
                answer=invoice,
                errors=write,
            )
        },
        "/invoice/{id}/cancel": invoice_change("cancelInvoice"),
        "/invoice/{id}/fail": invoice_change("failInvoice"),
        "/invoice/{id}/reactivate": invoice_change("reactivateInvoice"),
        "/invoice/{id}/transaction/{transaction}": {
            "get": operation(
                "transaction",
                "Invoice",
                params=[*invoice_id, path_param("transaction")],
                answer=_ref("Transaction"),
                errors=(401, 404),
            )
        },
        "/customer/{handle}/payment_method": {
            "get": operation(
                "getPaymentMethods",
                "Customer",
                params=handle,
                answer=_ref("CustomerPaymentMethods"),
                errors=(401, 404),
            ),
            "post": operation(
                "addSandboxCard",
                "Customer",
                params=handle,
                body=_ref("CreatePaymentMethod"),
                answer=_ref("Card"),
                errors=write,
            ),
        },
        "/charge": {
            "post": operation(
                "createCharge",
                "Charge",
                body=_ref("CreateCharge"),
                answer=charge,
                errors=(*write, 501),
            )
        },
        "/charge/{handle}": {
            "get": operation("getCharge", "Charge", params=handle, answer=charge, errors=(401, 404))
        },
        "/charge/{handle}/settle": {
            "post": operation(
                "settleCharge",
                "Charge",
                params=handle,
                body=_ref("SettleCharge"),
                answer=charge,
                errors=(*write, 501),
            )
        },
        "/charge/{handle}/cancel": {
            "post": operation("cancelCharge", "Charge", params=handle, answer=charge, errors=change)
        },
    }
