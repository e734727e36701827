"""The OpenAPI 3.1 document served at ``GET /openapi.json``.

Request bodies are generated from the same msgspec wire types that decode requests, so the
document cannot drift from what the server accepts. Responses are described exactly: every key
the renderers (``processout.render``) write is listed and required, nothing else is allowed,
and normalised values (enums, country and currency codes, amounts) carry their patterns, so a
fuzzer checking conformance (``tests/api/test_schemathesis.py``) catches any drift. The
descriptive objects an invoice stores as given (risk, device, shipping, billing, ...) are
described by strict copies of their request schemas.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, get_args

import msgspec

from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.api.processout.invoices import EXPANDS as INVOICE_EXPANDS
from settle.listing import MAX_LIMIT
from settle.payments.models import TransactionStatus

Schema = dict[str, Any]

_REF: Final = "#/components/schemas/{name}"


def _ref(name: str) -> Schema:
    return {"$ref": _REF.format(name=name)}


def _null(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _id(prefix: str) -> Schema:
    return {"type": "string", "pattern": f"^{prefix}[A-Za-z0-9]{{32}}$"}


def _enum(values: tuple[str, ...]) -> Schema:
    return {"type": "string", "enum": list(values)}


# Renderers write amounts as the shortest exact decimal string of the currency's minor units.
_DECIMAL: Final = {"type": "string", "pattern": r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"}
_TIME: Final = {"type": "string", "format": "date-time"}
_STR: Final = {"type": "string"}
_BOOL: Final = {"type": "boolean"}
_CURRENCY: Final = {"type": "string", "pattern": "^[A-Z]{3}$"}
_COUNTRY: Final = {"type": "string", "pattern": "^[A-Z]{2}$"}
_STRINGS: Final = {"type": "object", "additionalProperties": {"type": "string"}}
_ANY: Final[Schema] = {}


def _object(properties: dict[str, Schema], *, optional: dict[str, Schema] | None = None) -> Schema:
    """An object with exactly these keys, all present (plus the ``optional`` ones)."""
    return {
        "type": "object",
        "properties": {**properties, **(optional or {})},
        "required": list(properties),
        "additionalProperties": False,
    }


def _strict(components: dict[str, Schema], name: str, *, patch: dict[str, Schema]) -> Schema:
    """A request component as a response: every field present, no other, nested request
    components replaced by their strict response counterparts, ``patch`` for the fields the
    server normalises."""
    text = msgspec.json.encode(components[name]).decode()  # a deep copy, refs rewritten
    for other in _AS_RESPONSE:
        text = text.replace(_REF.format(name=other), _REF.format(name=_AS_RESPONSE[other]))
    schema: Schema = msgspec.json.decode(text)
    schema.pop("title", None)
    for field, value in patch.items():
        assert field in schema["properties"], (name, field)
        schema["properties"][field] = value
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return schema


# Request components that invoices store and return as given (after normalisation).
_AS_RESPONSE: Final = {
    "PhoneIn": "Phone",
    "RiskIn": "Risk",
    "DeviceIn": "Device",
    "ShippingIn": "Shipping",
    "BillingIn": "Billing",
    "UnsupportedFeatureBypassIn": "UnsupportedFeatureBypass",
}


def _response_components(requests: dict[str, Schema]) -> dict[str, Schema]:
    def enum_or_null(values: tuple[str, ...]) -> Schema:
        return _null(_enum(values))

    line = _strict(
        requests,
        "DetailIn",
        patch={
            "amount": _DECIMAL,
            "quantity": {"type": "integer", "minimum": 1},
            "discount_amount": _null(_DECIMAL),
            "condition": enum_or_null(convert.CONDITIONS),
            "category": enum_or_null(convert.CATEGORIES),
            "marketplace_merchant_created_at": _null(_TIME),
            "metadata": _STRINGS,
        },
    )
    line["properties"] = {"id": _id("iv_det_"), **line["properties"]}
    line["required"] = ["id", *line["required"]]
    customer = _object(
        {
            "id": _id("cust_"),
            "project_id": _id("proj_"),
            "default_token_id": _null(_STR),
            "balance": _null(_DECIMAL),
            "currency": _null(_CURRENCY),
            "email": _null(_STR),
            "first_name": _null(_STR),
            "last_name": _null(_STR),
            "company_name": _null(_STR),
            "address1": _null(_STR),
            "address2": _null(_STR),
            "city": _null(_STR),
            "state": _null(_STR),
            "zip": _null(_STR),
            "country_code": _null(_COUNTRY),
            "ip_address": _null(_STR),
            "phone_number": _null(_STR),
            "phone": _null(_ref("Phone")),
            "legal_document": _null(_STR),
            "date_of_birth": _null(_STR),
            "is_business": _null(_BOOL),
            "sex": _null(_STR),
            "reference_id": _null(_STR),
            "metadata": _STRINGS,
            "sandbox": _BOOL,
            "created_at": _TIME,
            "registered_at": _null(_TIME),
        }
    )
    transaction = _object(
        {
            "id": _id("tr_"),
            "project_id": _id("proj_"),
            "invoice_id": _id("iv_"),
            "customer_id": _null(_STR),
            "name": _null(_STR),
            "amount": _DECIMAL,
            "currency": _CURRENCY,
            "status": _enum(get_args(TransactionStatus)),
            "authorized": _BOOL,
            "captured": _BOOL,
            "voided": _BOOL,
            "refunded": _BOOL,
            "authorized_amount": _DECIMAL,
            "captured_amount": _DECIMAL,
            "refunded_amount": _DECIMAL,
            "available_amount": _DECIMAL,
            "voided_amount": _DECIMAL,
            "error_code": _null(_STR),
            "error_message": _null(_STR),
            "metadata": _STRINGS,
            "sandbox": _BOOL,
            "created_at": _TIME,
            "operations": {"type": "array"},
            "refunds": {"type": "array"},
        }
    )
    project = _object(
        {
            "id": _id("proj_"),
            "name": _STR,
            "default_currency": _null(_CURRENCY),
            "created_at": _TIME,
        }
    )
    invoice = _object(
        {
            "id": _id("iv_"),
            "project_id": _id("proj_"),
            "subscription_id": {"type": "null"},
            "customer_id": _null(_STR),
            "token_id": _null(_STR),
            "transaction_id": _id("tr_"),
            "details": {"type": "array", "items": _ref("InvoiceDetail")},
            "name": _null(_STR),
            "order_id": _null(_STR),
            "reference_id": _null(_STR),
            "amount": _DECIMAL,
            "currency": _CURRENCY,
            "metadata": _STRINGS,
            "gateway_data": _STRINGS,
            "exemption_reason_3ds2": _null(_STR),
            "sca_exemption_reason": enum_or_null(convert.SCA_EXEMPTION_REASONS),
            "challenge_indicator": enum_or_null(convert.CHALLENGE_INDICATORS),
            "statement_descriptor": _null(_STR),
            "statement_descriptor_phone": _null(_STR),
            "statement_descriptor_city": _null(_STR),
            "statement_descriptor_company": _null(_STR),
            "statement_descriptor_url": _null(_STR),
            "merchant_initiator_type": _null(_STR),
            "initiation_type": enum_or_null(convert.INITIATION_TYPES),
            "payment_intent": enum_or_null(convert.PAYMENT_INTENTS),
            "payment_type": enum_or_null(convert.PAYMENT_TYPES),
            "require_backend_capture": _null(_BOOL),
            "card_verification": {"type": "null"},
            "return_url": _null(_STR),
            "cancel_url": _null(_STR),
            "webhook_url": _null(_STR),
            "sandbox": _BOOL,
            "url": {"type": "string", "format": "uri"},
            "created_at": _TIME,
            "expires_at": _null(_TIME),
            "auto_capture_at": _null(_TIME),
            "risk": _null(_ref("Risk")),
            "device": _null(_ref("Device")),
            "shipping": _null(_ref("Shipping")),
            "billing": _null(_ref("Billing")),
            "external_fraud_tools": _null({"type": "object"}),
            "unsupported_feature_bypass": _null(_ref("UnsupportedFeatureBypass")),
            "submerchant_id": _null(_STR),
            "submerchant": _null({"type": "object"}),
            "verification": _ANY,
            "incremental": {"type": "null"},
            "tax": _null(_object({"amount": _null(_DECIMAL), "rate": _null(_STR)})),
        },
        # Present when asked for with ``expand``.
        optional={
            "customer": _null(_ref("Customer")),
            "transaction": _null(_ref("Transaction")),
            "project": _ref("Project"),
            "token": {"type": "null"},
        },
    )
    components = {
        "Invoice": invoice,
        "InvoiceDetail": line,
        "Customer": customer,
        "Transaction": transaction,
        "Project": project,
        "Phone": _strict(requests, "PhoneIn", patch={}),
        "Risk": _strict(requests, "RiskIn", patch={}),
        "Device": _strict(requests, "DeviceIn", patch={"channel": enum_or_null(convert.CHANNELS)}),
        "Shipping": _strict(
            requests,
            "ShippingIn",
            patch={
                "amount": _null(_DECIMAL),
                "method": enum_or_null(convert.SHIPPING_METHODS),
                "delay": enum_or_null(convert.SHIPPING_DELAYS),
                "country_code": _null(_COUNTRY),
            },
        ),
        "Billing": _strict(requests, "BillingIn", patch={"country_code": _null(_COUNTRY)}),
        "UnsupportedFeatureBypass": _strict(requests, "UnsupportedFeatureBypassIn", patch={}),
        "Error": _object(
            {
                "success": {"const": False},
                "error_type": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
            }
        ),
    }
    return components


def _ok(key: str | None = None, ref: str | None = None, *, many: bool = False) -> Schema:
    props: dict[str, Schema] = {"success": {"const": True}}
    if key and ref:
        props[key] = {"type": "array", "items": _ref(ref)} if many else _ref(ref)
        if many:
            props["has_more"] = _BOOL
    return _object(props)


def _error(description: str, headers: dict[str, Any] | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


_UNAUTHORIZED: Final = _error(
    "Missing or wrong credentials (every wrong credential gets the same answer).",
    headers={
        "WWW-Authenticate": {"required": True, "schema": {"type": "string", "pattern": "^Basic"}}
    },
)


def _op(
    operation_id: str,
    summary: str,
    ok: Schema,
    *,
    body: str | None = None,
    params: list[Schema] | None = None,
    links: dict[str, Schema] | None = None,
) -> Schema:
    success: Schema = {
        "description": "Success.",
        "content": {"application/json": {"schema": ok}},
    }
    if links:
        success["links"] = links
    responses: Schema = {
        "200": success,
        "400": _error("Invalid request: the message names the field."),
        "401": _UNAUTHORIZED,
        "404": _error("No such object in the caller's project and mode, or no such endpoint."),
    }
    op: Schema = {"operationId": operation_id, "summary": summary}
    if params:
        op["parameters"] = params
    if body:
        responses["413"] = _error("The request body is larger than the server accepts.")
        # A missing body means an empty one; JSON or application/x-www-form-urlencoded.
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    responses["503"] = _error("The database is unavailable; retry later.")
    op["responses"] = responses
    return op


_IDEMPOTENCY_KEY: Final = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: a second request with the same key (same project and "
    "mode, within 24 hours) gets the first one's answer instead of doing the work again. A "
    "key reused for a different request gets 400. Only successful answers are recorded.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


def _idempotent(operation: Schema) -> None:
    operation["parameters"] = [*operation.get("parameters", []), _IDEMPOTENCY_KEY]
    operation["responses"]["200"]["headers"] = {
        "Idempotent-Replayed": {
            "description": "Present (true) when the answer is the one recorded for the "
            "Idempotency-Key.",
            "schema": {"const": "true"},
        }
    }


def _path_id(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_LIST_PARAMS: Final = [
    {
        "name": "limit",
        "in": "query",
        "description": "Page size; 0 or absent means 10.",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT},
    },
    {
        "name": "start_after",
        "in": "query",
        "description": "The id of an object of this listing; not with end_before.",
        "schema": {"type": "string"},
    },
    {
        "name": "end_before",
        "in": "query",
        "description": "The id of an object of this listing; not with start_after.",
        "schema": {"type": "string"},
    },
    {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
]
_EXPAND: Final = {
    "name": "expand",
    "in": "query",
    "description": "Objects to include in full (also as expand[] or comma-joined).",
    "style": "form",
    "explode": True,
    "schema": {"type": "array", "items": {"enum": list(INVOICE_EXPANDS)}},
}


def _link(operation_id: str, param: str, pointer: str) -> Schema:
    return {"operationId": operation_id, "parameters": {param: f"$response.body#{pointer}"}}


@cache
def openapi_document() -> bytes:
    _, requests = msgspec.json.schema_components(
        [wire.InvoiceCreate, wire.InvoiceUpdate, wire.CustomerIn, wire.AssignCustomer],
        ref_template=_REF,
    )
    # What the server requires although the wire types allow null (null means "not given").
    requests["InvoiceCreate"]["required"] = ["amount", "currency"]
    for field in ("amount", "currency"):
        requests["InvoiceCreate"]["properties"][field] = {"type": "string", "maxLength": 255}
    requests["AssignCustomer"]["required"] = ["customer_id"]
    requests["AssignCustomer"]["properties"]["customer_id"] = {"type": "string", "maxLength": 255}
    components = {**requests, **_response_components(requests)}

    iv, cu = [_path_id("invoice_id")], [_path_id("customer_id")]
    invoice_links = {
        name: _link(op, "invoice_id", "/invoice/id")
        for name, op in (
            ("FindInvoice", "findInvoice"),
            ("UpdateInvoice", "updateInvoice"),
            ("DeleteInvoice", "deleteInvoice"),
            ("InvoiceCustomer", "invoiceCustomer"),
            ("AssignInvoiceCustomer", "assignInvoiceCustomer"),
        )
    }
    customer_links = {
        name: _link(op, "customer_id", "/customer/id")
        for name, op in (
            ("FindCustomer", "findCustomer"),
            ("UpdateCustomer", "updateCustomer"),
            ("DeleteCustomer", "deleteCustomer"),
        )
    }
    paths = {
        "/invoices": {
            "post": _op(
                "createInvoice",
                "Create an invoice",
                _ok("invoice", "Invoice"),
                body="InvoiceCreate",
                links=invoice_links,
            ),
            "get": _op(
                "listInvoices",
                "List invoices, newest first",
                _ok("invoices", "Invoice", many=True),
                params=[*_LIST_PARAMS, _EXPAND],
            ),
        },
        "/invoices/{invoice_id}": {
            "get": _op(
                "findInvoice", "Find an invoice", _ok("invoice", "Invoice"), params=[*iv, _EXPAND]
            ),
            "put": _op(
                "updateInvoice",
                "Update an unpaid invoice",
                _ok("invoice", "Invoice"),
                body="InvoiceUpdate",
                params=iv,
            ),
            "delete": _op("deleteInvoice", "Delete an unpaid invoice", _ok(), params=iv),
        },
        "/invoices/{invoice_id}/customers": {
            "get": _op(
                "invoiceCustomer",
                "The invoice's customer (400 if it has none)",
                _ok("customer", "Customer"),
                params=iv,
            ),
            "post": _op(
                "assignInvoiceCustomer",
                "Assign a customer to an unpaid invoice",
                _ok("customer", "Customer"),
                body="AssignCustomer",
                params=iv,
            ),
        },
        "/customers": {
            "post": _op(
                "createCustomer",
                "Create a customer",
                _ok("customer", "Customer"),
                body="CustomerIn",
                links=customer_links,
            ),
            "get": _op(
                "listCustomers",
                "List customers, newest first",
                _ok("customers", "Customer", many=True),
                params=_LIST_PARAMS,
            ),
        },
        "/customers/{customer_id}": {
            "get": _op("findCustomer", "Find a customer", _ok("customer", "Customer"), params=cu),
            "put": _op(
                "updateCustomer",
                "Update a customer (absent and null fields are left as they are)",
                _ok("customer", "Customer"),
                body="CustomerIn",
                params=cu,
            ),
            "delete": _op("deleteCustomer", "Delete a customer", _ok(), params=cu),
        },
        "/ping": {
            "get": _op("ping", "Check credentials; touches no data", _ok()),
        },
    }
    for operations in paths.values():
        for method, operation in operations.items():
            if method in ("post", "put", "delete"):
                _idempotent(operation)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Settle (ProcessOut dialect)",
            "version": "1.4.0.0",
            "description": "Errors are {success: false, error_type, message}. A method a path "
            "does not serve gets 405 with an Allow header.",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
        "paths": paths,
    }
    return msgspec.json.encode(document)
