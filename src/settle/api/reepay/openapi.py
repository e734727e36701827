"""The Reepay dialect's OpenAPI 3.1 document, served at ``GET /v1/openapi.json``.

Request bodies are generated from the msgspec wire types that decode them (``schemas``), so the
document cannot drift from what the server accepts. Responses carry the vendor's component
names, properties and types (``openapi.derived.json``, rebuilt from the vendor's own document),
narrowed to what this server writes: every listed key that is always written is required, and
no other key is allowed, so a conformance test catches any drift of the renderers (``render``).
Where the vendor's document lacks what its reference describes (the handle rule; cost center
and purchase order number), the schema here says so in its description.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import msgspec

from settle.api.reepay import lists, openapi_ops, refunds
from settle.api.reepay import schemas as wire
from settle.api.reepay.render import INVOICE_TYPE, LINE_ORIGIN
from settle.api.reepay.webhooks import EVENT_TYPES

Schema = dict[str, Any]

_REF: Final = "#/components/schemas/{name}"
_INT: Final[Schema] = {"type": "integer"}
_MINOR: Final[Schema] = {"type": "integer", "minimum": 0}
_STR: Final[Schema] = {"type": "string"}
_TIME: Final[Schema] = {"type": "string", "format": "date-time"}
_BOOL: Final[Schema] = {"type": "boolean"}
_EMPTY_LIST: Final[Schema] = {"type": "array", "maxItems": 0}
_HANDLE: Final[Schema] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[a-zA-Z0-9_.\-@]+$",
}


def _ref(name: str) -> Schema:
    return {"$ref": _REF.format(name=name)}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def _exact_rates(components: dict[str, Schema]) -> None:
    """A VAT rate is read exactly from a JSON number or a decimal string (msgspec's schema
    of the wire type says string only). Applied to every set of components that holds these
    structs: a later set generated from structs that reference them would bring them back
    unpatched (schemathesis found a number refused by the document the server accepts)."""
    rate = {
        "description": "VAT as a fraction (0.25 is 25 %), from 0 to 1, at most 6 decimals; "
        "a JSON number (read exactly) or a decimal string.",
        "anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "string"}],
    }
    for name in ("CreateOrderLine", "CreateCreditNoteLine", "CreateRefund"):
        if name in components:
            components[name]["properties"]["vat"] = {"anyOf": [rate, {"type": "null"}]}


def _ops_request_components() -> dict[str, Schema]:
    components = openapi_ops.request_components()
    _exact_rates(components)
    return components


def _request_components() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(
        [
            wire.CreateCustomer,
            wire.UpdateCustomer,
            wire.CreateCustomerInvoice,
            wire.InvoiceBillingAddress,
            wire.InvoiceShippingAddress,
            wire.UpdateWebhookSettings,
            refunds.CreateRefund,
        ],
        ref_template=_REF,
    )
    _exact_rates(components)
    invoice = components["CreateCustomerInvoice"]["properties"]
    invoice["handle"] = {
        **_HANDLE,
        "description": "Unique per project and mode (code 11 when taken). The vendor's rule, "
        "from its reference (its schema has minLength only).",
    }
    for name in ("cost_center", "purchase_order_number"):
        invoice[name]["description"] = (
            "For accounting; not in the vendor's schema, named as its reference describes."
        )
    invoice["settle"]["description"] = "Settle at once: state settled, or failed if declined."
    components["CreateRefund"]["properties"]["note_lines"]["description"] = (
        "The credit note's lines, kept and shown as its credit_note_lines; the refund is "
        "their sum (not with amount). order_line_id must name an order line of the invoice."
    )
    components["CreateRefund"]["properties"]["manual_transfer"]["description"] = (
        "A manual refund (method, payment_date, reference, comment), for a manually settled "
        "invoice; an invoice settled by card answers code 109."
    )
    customer = components["CreateCustomer"]["properties"]
    customer["handle"] = {
        "anyOf": [_HANDLE, {"type": "null"}],
        "description": "Required unless generate_handle is true.",
    }
    return components


def _response_components() -> dict[str, Schema]:
    counters = {
        name: _MINOR
        for name in (
            "subscriptions",
            "active_subscriptions",
            "trial_active_subscriptions",
            "trial_cancelled_subscriptions",
            "expired_subscriptions",
            "on_hold_subscriptions",
            "cancelled_subscriptions",
            "non_renewing_subscriptions",
            "failed_invoices",
            "failed_amount",
            "cancelled_invoices",
            "cancelled_amount",
            "pending_invoices",
            "pending_amount",
            "dunning_invoices",
            "dunning_amount",
            "settled_invoices",
            "settled_amount",
            "refunded_amount",
            "pending_additional_costs",
            "pending_additional_cost_amount",
            "transferred_additional_costs",
            "transferred_additional_cost_amount",
            "pending_credits",
            "pending_credit_amount",
            "transferred_credits",
            "transferred_credit_amount",
        )
    }
    customer = _object(
        {"handle": _STR, "test": _BOOL, "created": _TIME, **counters},
        {
            name: _STR
            for name in (
                "email",
                "address",
                "address2",
                "city",
                "country",
                "phone",
                "company",
                "vat",
                "first_name",
                "last_name",
                "postal_code",
            )
        }
        | {"deleted": _TIME},
    )
    order_line = _object(
        {
            "id": _STR,
            "ordertext": _STR,
            "amount": _MINOR,
            "vat": {"type": "number", "minimum": 0, "maximum": 1},
            "quantity": {"type": "integer", "minimum": 1},
            "origin": {"type": "string", "enum": [LINE_ORIGIN]},
            "timestamp": _TIME,
            "amount_vat": _MINOR,
            "amount_ex_vat": _MINOR,
            "unit_amount": _MINOR,
            "unit_amount_vat": _MINOR,
            "unit_amount_ex_vat": _MINOR,
            "amount_defined_incl_vat": _BOOL,
        }
    )
    # One note per succeeded refund (settle.billing.refunds.credit_notes): the lines the
    # refund was asked with (note_lines), else one line whose VAT is a share of the
    # invoice's, so that line states no rate.
    credit_note_line = _object(
        {
            "amount": {"type": "integer", "minimum": 1},
            "text": {"type": "string", "minLength": 1},
            "quantity": {"type": "integer", "minimum": 1},
            "origin": {"type": "string", "enum": list(refunds.NOTE_LINE_ORIGINS)},
            "created": _TIME,
            "amount_incl_vat": _MINOR,
            "amount_ex_vat": _INT,
            "unit_amount": _MINOR,
            "unit_amount_vat": _INT,
            "unit_amount_ex_vat": _INT,
            "amount_incl_vat_defined": _BOOL,
        },
        {
            "vat": {"type": "number", "minimum": 0, "maximum": 1},
            "order_line_id": _STR,
        },
    )
    credit_note = _object(
        {
            "id": {"type": "string", "pattern": "^cn_"},
            "invoice": _STR,
            "amount": _MINOR,
            "amount_vat": _INT,
            "amount_ex_vat": _INT,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "created": _TIME,
            "transaction": _STR,
            "credit_note_lines": {
                "type": "array",
                "items": _ref("CreditNoteLine"),
                "minItems": 1,
                "maxItems": 100,
            },
        },
        {
            "customer": {
                "type": "string",
                "description": "The invoice's customer (absent as on the invoice).",
            },
        },
    )
    invoice = _object(
        {
            "id": _STR,
            "handle": {"type": "string", "minLength": 1},
            "state": {"type": "string", "enum": list(lists.REEPAY_STATES)},
            "type": {"type": "string", "enum": [INVOICE_TYPE]},
            "amount": _MINOR,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "due": _TIME,
            "created": _TIME,
            "credits": _EMPTY_LIST,
            "discount_amount": _MINOR,
            "org_amount": _MINOR,
            "amount_vat": _MINOR,
            "amount_ex_vat": _MINOR,
            "settled_amount": _MINOR,
            "refunded_amount": _MINOR,
            "authorized_amount": _MINOR,
            "credited_amount": _MINOR,
            "order_lines": {"type": "array", "items": _ref("OrderLine")},
            "additional_costs": _EMPTY_LIST,
            "transactions": {"type": "array", "items": _ref("Transaction")},
            "credit_notes": {"type": "array", "items": _ref("InvoiceCreditNote")},
        },
        {
            "customer": {
                "type": "string",
                "description": "The customer's handle (its id if it has none); absent for an "
                "invoice made without a customer through another dialect.",
            },
            "authorized": _TIME,
            "settled": _TIME,
            "cancelled": _TIME,
            "failed": _TIME,
            "billing_address": _ref("InvoiceBillingAddress"),
            "shipping_address": _ref("InvoiceShippingAddress"),
            "cost_center": {**_STR, "description": "Not in the vendor's schema (its reference)."},
            "purchase_order_number": {
                **_STR,
                "description": "Not in the vendor's schema (its reference).",
            },
        },
    )

    def page(item: str, ranges: list[str]) -> Schema:
        return _object(
            {
                "size": {"type": "integer", "minimum": lists.MIN_SIZE, "maximum": lists.MAX_SIZE},
                "count": _MINOR,
                "from": _STR,
                "to": _STR,
                "range": {"type": "string", "enum": ranges},
                "content": {"type": "array", "items": _ref(item)},
            },
            {"next_page_token": _STR},
        )

    error = _object(
        {
            "code": _INT,
            "error": _STR,
            "message": _STR,
            "path": _STR,
            "timestamp": {"type": "string"},
            "http_status": _INT,
            "http_reason": _STR,
            "request_id": _STR,
        }
    )
    error_code = _object(
        {"code": _INT, "error": _STR, "http_status": {"type": ["integer", "null"]}}
    )
    return {
        "Customer": customer,
        "CustomerList": page("Customer", ["created"]),
        "OrderLine": order_line,
        "Invoice": invoice,
        "InvoiceCreditNote": credit_note,
        "CreditNoteLine": credit_note_line,
        "InvoiceList": page("Invoice", ["created"]),
        "ErrorResponse": error,
        "ErrorCodeDto": error_code,
        # Not in the vendor's derived document (its invoice surface only); the fields the
        # vendor's reference names and this server acts on.
        "WebhookSettings": _object(
            {
                "urls": {"type": "array", "items": {"type": "string", "format": "uri"}},
                "disabled": _BOOL,
                "secret": _STR,
                "event_types": {"type": "array", "items": {"enum": list(EVENT_TYPES)}},
            }
        ),
        "Refund": refunds.REFUND_SCHEMA,
        # The account's webhooks and their attempts (settle.api.reepay.deliveries).
        "Webhook": _object(
            {
                "id": _STR,
                "event": _STR,
                "url": _STR,
                "state": {"enum": ["pending", "retrying", "completed", "failed"]},
                "created": _TIME,
                "count": {"type": "integer", "minimum": 0},
            },
            {
                "event_type": {"enum": list(EVENT_TYPES)},
                "success": _TIME,
                "first_fail": _TIME,
                "last_fail": _TIME,
                "last_http_status": _INT,
                "last_error": _STR,
            },
        ),
        "WebhookList": _object(
            {
                "size": _INT,
                "count": _INT,
                "content": {"type": "array", "items": _ref("Webhook")},
            },
            {"next_page_token": _STR},
        ),
        "WebhookRequest": _object(
            {
                "id": _STR,
                "webhook": _STR,
                "url": _STR,
                "created": _TIME,
                "success": _BOOL,
                "duration_ms": {"type": "integer", "minimum": 0},
            },
            {"http_status": _INT, "error": _STR},
        ),
    }


_METADATA: Final[Schema] = {
    "type": "object",
    "maxProperties": 100,
    "additionalProperties": {"type": "string", "maxLength": 4096},
    "description": "Values are strings here (the vendor allows any JSON value).",
}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(
    operation_id: str,
    tag: str,
    *,
    answer: Schema | None,
    errors: tuple[int, ...],
    body: Schema | None = None,
    params: list[Schema] | None = None,
    public: bool = False,
) -> Schema:
    ok = {"description": "OK", **(_json(answer) if answer is not None else {})}
    responses: Schema = {"200": ok}
    for status in (*errors, 500, 503):
        responses[str(status)] = {"description": f"HTTP {status}", **_json(_ref("ErrorResponse"))}
    op: Schema = {"operationId": operation_id, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if public:
        op["security"] = []
    return op


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema or _STR}


def _list_params(filters: tuple[str, ...], multi: tuple[str, ...]) -> list[Schema]:
    params = [
        _query(
            "size",
            {
                "type": "integer",
                "minimum": lists.MIN_SIZE,
                "maximum": lists.MAX_SIZE,
                "default": lists.DEFAULT_SIZE,
            },
        ),
        _query("next_page_token"),
        _query("from", {"type": "string", "description": "Inclusive; UTC without a zone."}),
        _query("to", {"type": "string", "description": "Exclusive; UTC without a zone."}),
        _query("range", {"type": "string", "enum": ["created"], "default": "created"}),
    ]
    params += [_query(name) for name in filters]
    params += [_query(name, {"type": "array", "items": _STR}) for name in multi]
    return params


_WRITE_ERRORS: Final = (400, 401, 404, 413, 415, 422)
_READ_ERRORS: Final = (401, 404)


def _paths() -> dict[str, Schema]:
    handle = [_path_param("handle")]
    invoice_id = [_path_param("id")]
    customer = _ref("Customer")
    invoice = _ref("Invoice")
    return {
        "/customer": {
            "post": _operation(
                "createCustomerJson",
                "Customer",
                body=_ref("CreateCustomer"),
                answer=customer,
                errors=_WRITE_ERRORS,
            )
        },
        "/customer/{handle}": {
            "get": _operation(
                "getCustomer", "Customer", params=handle, answer=customer, errors=_READ_ERRORS
            ),
            "put": _operation(
                "updateCustomerJson",
                "Customer",
                params=handle,
                body=_ref("UpdateCustomer"),
                answer=customer,
                errors=_WRITE_ERRORS,
            ),
            "delete": _operation(
                "deleteCustomer", "Customer", params=handle, answer=customer, errors=_READ_ERRORS
            ),
        },
        "/customer/{handle}/invoice": {
            "post": _operation(
                "createCustomerInvoice",
                "Customer",
                params=handle,
                body=_ref("CreateCustomerInvoice"),
                answer=invoice,
                errors=(*_WRITE_ERRORS, 501),
            )
        },
        "/invoice/{id}": {
            "get": _operation(
                "getInvoice", "Invoice", params=invoice_id, answer=invoice, errors=_READ_ERRORS
            )
        },
        "/invoice/{handle}/metadata": {
            "get": _operation(
                "getMetadata4", "Invoice", params=handle, answer=_METADATA, errors=_READ_ERRORS
            ),
            "put": _operation(
                "updateMetadata4",
                "Invoice",
                params=handle,
                body=_METADATA,
                answer=_METADATA,
                errors=_WRITE_ERRORS,
            ),
            "delete": _operation(
                "deleteMetadata4", "Invoice", params=handle, answer=None, errors=_READ_ERRORS
            ),
        },
        "/invoice/{id}/billing_address": {
            "put": _operation(
                "createOrUpdateBillingAddress",
                "Invoice",
                params=invoice_id,
                body=_ref("InvoiceBillingAddress"),
                answer=invoice,
                errors=_WRITE_ERRORS,
            )
        },
        "/invoice/{id}/shipping_address": {
            "put": _operation(
                "createOrUpdateShippingAddress",
                "Invoice",
                params=invoice_id,
                body=_ref("InvoiceShippingAddress"),
                answer=invoice,
                errors=_WRITE_ERRORS,
            )
        },
        "/refund": {
            "post": _operation(
                "createRefund",
                "Refund",
                body=_ref("CreateRefund"),
                answer=_ref("Refund"),
                errors=(*_WRITE_ERRORS, 501),
            )
        },
        "/refund/{id}": {
            "get": _operation(
                "getRefund", "Refund", params=invoice_id, answer=_ref("Refund"), errors=_READ_ERRORS
            )
        },
        "/list/invoice": {
            "get": _operation(
                "getInvoiceList",
                "List",
                params=_list_params(
                    ("handle", "handle_prefix", "customer", "subscription", "plan"),
                    ("state", "exclude_state", "currency", "type"),
                ),
                answer=_ref("InvoiceList"),
                errors=(400, 401, 422, 501),
            )
        },
        "/list/customer": {
            "get": _operation(
                "getCustomerList",
                "List",
                params=_list_params((*lists.CUSTOMER_COLUMNS, "handle_prefix", "email_prefix"), ()),
                answer=_ref("CustomerList"),
                errors=(400, 401, 422, 501),
            )
        },
        "/webhook": {
            "get": _operation(
                "getWebhookList",
                "Webhook",
                params=[
                    _query(
                        "size",
                        {
                            "type": "integer",
                            "minimum": lists.MIN_SIZE,
                            "maximum": lists.MAX_SIZE,
                            "default": lists.DEFAULT_SIZE,
                        },
                    ),
                    _query("next_page_token"),
                    _query("event"),
                    _query("state", {"enum": ["pending", "retrying", "completed", "failed"]}),
                ],
                answer=_ref("WebhookList"),
                errors=(400, 401, 422),
            )
        },
        "/webhook/{id}": {
            "get": _operation(
                "getWebhook",
                "Webhook",
                params=[_path_param("id")],
                answer=_ref("Webhook"),
                errors=_READ_ERRORS,
            )
        },
        "/webhook/{id}/request": {
            "get": _operation(
                "getWebhookRequests",
                "Webhook",
                params=[_path_param("id")],
                answer={"type": "array", "items": _ref("WebhookRequest")},
                errors=_READ_ERRORS,
            )
        },
        "/webhook/{id}/resend": {
            "post": _operation(
                "resendWebhook",
                "Webhook",
                params=[_path_param("id")],
                answer=_ref("Webhook"),
                errors=_READ_ERRORS,
            )
        },
        "/account/webhook_settings": {
            "get": _operation(
                "getWebhookSettings",
                "Account",
                answer=_ref("WebhookSettings"),
                errors=(401,),
            ),
            "put": _operation(
                "updateWebhookSettings",
                "Account",
                body=_ref("UpdateWebhookSettings"),
                answer=_ref("WebhookSettings"),
                errors=(400, 401, 413, 415, 422, 501),
            ),
        },
        "/error_codes": {
            "get": _operation(
                "getErrorCodes",
                "Default",
                answer={"type": "array", "items": _ref("ErrorCodeDto")},
                errors=(),
                public=True,
            )
        },
    }


@cache
def openapi_document() -> bytes:
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Settle (Reepay dialect)",
            "version": "1",
            "description": "Customers by handle and their one-time invoices, with order lines "
            "in minor units and VAT per line; numeric error codes (GET /v1/error_codes).",
        },
        "servers": [{"url": "/v1"}],
        "security": [{"basicAuth": []}],
        "components": {
            "schemas": {
                **_request_components(),
                **_ops_request_components(),
                **_response_components(),
                **openapi_ops.response_components(),
            },
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The private API key (priv_...) as the user name, an empty "
                    "password.",
                }
            },
        },
        "paths": {**_paths(), **openapi_ops.paths(_operation, _path_param)},
    }
    return msgspec.json.encode(document)
