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

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final, get_args

import msgspec

from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.api.processout.cards import TOKEN_EXPANDS
from settle.api.processout.events import NAMES as EVENT_NAMES
from settle.api.processout.invoices import EXPANDS as INVOICE_EXPANDS
from settle.listing import MAX_LIMIT
from settle.payments.gateway import OperationType
from settle.payments.models import OperationStatus, TransactionStatus

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
            "default_token_id": _null(_id("tok_")),
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
            "customer_id": _null(_id("cust_")),
            "token_id": _null(_id("tok_")),
            "card_id": _null(_id("card_")),
            "name": _null(_STR),
            "amount": _DECIMAL,
            "currency": _CURRENCY,
            "status": _enum(get_args(TransactionStatus)),
            "authorized": _BOOL,
            "captured": _BOOL,
            "voided": _BOOL,
            "refunded": _BOOL,
            "chargedback": _BOOL,
            "authorized_amount": _DECIMAL,
            "captured_amount": _DECIMAL,
            "refunded_amount": _DECIMAL,
            "available_amount": _DECIMAL,
            "voided_amount": _DECIMAL,
            "error_code": _null(_STR),
            "error_message": _null(_STR),
            "gateway_name": _null(_STR),
            "three_d_s_status": _null(_STR),
            "cvc_check": _null(_STR),
            "avs_check": _null(_STR),
            "metadata": _STRINGS,
            "sandbox": _BOOL,
            "created_at": _TIME,
            "authorized_at": _null(_TIME),
            "captured_at": _null(_TIME),
            "voided_at": _null(_TIME),
            "refunded_at": _null(_TIME),
            "chargedback_at": _null(_TIME),
            "operations": {"type": "array", "items": _ref("Operation")},
            "refunds": {"type": "array", "items": _ref("Refund")},
        }
    )
    operation_status = _enum(get_args(OperationStatus))
    operation = _object(
        {
            "id": _id("op_"),
            "transaction_id": _id("tr_"),
            "token_id": _null(_id("tok_")),
            "card_id": _null(_id("card_")),
            "gateway_configuration_id": {"type": "null"},
            "amount": _DECIMAL,
            "currency": _CURRENCY,
            "is_attempt": _BOOL,
            "has_failed": _BOOL,
            "is_accountable": _BOOL,
            "type": _enum(tuple(OperationType)),
            "status": operation_status,
            "gateway_operation_id": _null(_STR),
            "error_code": _null(_STR),
            "error_message": _null(_STR),
            "metadata": _STRINGS,
            "created_at": _TIME,
        }
    )
    refund = _object(
        {
            "id": _id("re_"),
            "transaction_id": _id("tr_"),
            "amount": _DECIMAL,
            "reason": _null(_STR),
            "information": _null(_STR),
            "has_failed": _BOOL,
            "status": operation_status,
            "metadata": _STRINGS,
            "sandbox": _BOOL,
            "created_at": _TIME,
        }
    )
    # What Settle keeps of a card: never its number or CVC.
    card = _object(
        {
            "id": _id("card_"),
            "project_id": _id("proj_"),
            "scheme": {"type": "string", "minLength": 1},
            "type": _null(_STR),
            "iin": {"type": "string", "pattern": "^[0-9]{6}$"},
            "last_4_digits": {"type": "string", "pattern": "^[0-9]{4}$"},
            "exp_month": {"type": "integer", "minimum": 1, "maximum": 12},
            "exp_year": {"type": "integer", "minimum": 2000},
            "cvc_check": _STR,
            "avs_check": _STR,
            "name": _null(_STR),
            # SHA-256 of the project and the number; null once the card is anonymized.
            "fingerprint": _null({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
            "metadata": _STRINGS,
            "sandbox": _BOOL,
            "created_at": _TIME,
        }
    )
    token = _object(
        {
            "id": _id("tok_"),
            "customer_id": _id("cust_"),
            "card_id": _id("card_"),
            "type": {"const": "card"},
            "description": _null(_STR),
            "metadata": _STRINGS,
            "is_default": _BOOL,
            "is_chargeable": _BOOL,
            "created_at": _TIME,
        },
        # The token's card, where the answer includes it (find and create; lists do not).
        optional={"card": _ref("Card")},
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
            "token_id": _null(_id("tok_")),
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
    # An event: what happened, and the object as it was then, under its kind's key.
    event = _object(
        {
            "id": _id("ev_"),
            "project_id": _id("proj_"),
            "name": _enum(tuple(sorted(n for n in EVENT_NAMES.values() if n is not None))),
            "data": {
                "oneOf": [
                    _object({kind: _ref(component)})
                    for kind, component in (
                        ("invoice", "Invoice"),
                        ("transaction", "Transaction"),
                        ("customer", "Customer"),
                    )
                ]
            },
            "sandbox": _BOOL,
            "fired_at": _TIME,
        }
    )
    # One attempt to deliver an event (settle.api.processout.webhooks).
    webhook = _object(
        {
            "id": _id("wha_"),
            "project_id": _id("proj_"),
            "event_id": _id("ev_"),
            "request_url": _STR,
            "request_method": {"const": "POST"},
            "response_body": _STR,
            "response_time_ms": {"type": "integer", "minimum": 0},
            "status": {"enum": [1, 2], "description": "1 delivered (a 2xx), 2 failed"},
            "success": _BOOL,
            "created_at": _TIME,
            "release_at": _TIME,
        },
        optional={"response_code": {"type": "integer"}, "error": _STR},
    )
    components = {
        "Invoice": invoice,
        "Event": event,
        "Webhook": webhook,
        "InvoiceDetail": line,
        "Customer": customer,
        "Transaction": transaction,
        "Operation": operation,
        "Refund": refund,
        "Card": card,
        "Token": token,
        # What the payer must do (3-D Secure): go to ``value``.
        "CustomerAction": _object({"type": _STR, "value": {"type": "string", "format": "uri"}}),
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


def _ok(
    key: str | None = None,
    ref: str | Schema | None = None,
    *,
    many: bool = False,
    paged: bool = True,
    **more: Schema,
) -> Schema:
    """``{"success": true}``, with ``key`` holding one ``ref`` (a component's name, or a
    schema), or a list of them (``many``; with ``has_more`` unless not ``paged``), and the
    ``more`` keys."""
    props: dict[str, Schema] = {"success": {"const": True}}
    if key and ref:
        item = _ref(ref) if isinstance(ref, str) else ref
        props[key] = {"type": "array", "items": item} if many else item
        if many and paged:
            props["has_more"] = _BOOL
    return _object({**props, **more})


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


def _expand(names: Iterable[str]) -> Schema:
    return {
        "name": "expand",
        "in": "query",
        "description": "Objects to include in full (also as expand[] or comma-joined).",
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": {"enum": list(names)}},
    }


_EXPAND: Final = _expand(INVOICE_EXPANDS)


def _link(operation_id: str, param: str, pointer: str) -> Schema:
    return {"operationId": operation_id, "parameters": {param: f"$response.body#{pointer}"}}


def _require(schema: Schema, *fields: str) -> Schema:
    """``fields`` of a request component required and not null (null means "not given")."""
    for field in fields:
        prop = schema["properties"][field]
        prop.pop("default", None)
        options = prop.pop("anyOf", None)
        if options is not None:
            kept = [o for o in options if o != {"type": "null"}]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
    schema["required"] = [*schema.get("required", []), *fields]
    return schema


def _copy(schema: Schema, title: str) -> Schema:
    copied: Schema = msgspec.json.decode(msgspec.json.encode(schema))
    copied["title"] = title
    return copied


@cache
def openapi_document() -> bytes:
    _, requests = msgspec.json.schema_components(
        [
            wire.InvoiceCreate,
            wire.InvoiceUpdate,
            wire.CustomerIn,
            wire.AssignCustomer,
            wire.CardIn,
            wire.TokenIn,
            wire.PaymentIn,
            wire.AmountIn,
            wire.RefundIn,
        ],
        ref_template=_REF,
    )
    # What the server requires although the wire types allow null (null means "not given").
    _require(requests["InvoiceCreate"], "amount", "currency")
    _require(requests["AssignCustomer"], "customer_id")
    _require(requests["CardIn"], "number", "exp_month", "exp_year")
    # A sandbox test card (shared/reference/processout/README.md), not expired, so that a
    # client generating requests from this document can make a card and follow its links.
    year = datetime.now(UTC).year + 5
    requests["CardIn"]["examples"] = [
        {"number": "4242424242424242", "exp_month": 12, "exp_year": year, "cvc2": "123"}
    ]
    _require(requests["RefundIn"], "amount")
    # Refunding given invoice details is refused (request.not-implemented): null or [] only.
    requests["RefundIn"]["properties"]["invoice_detail_ids"] = {
        **_null({"type": "array", "items": _STR, "maxItems": 0}),
        "description": "Refunding given invoice details is not supported: null or an empty list.",
    }
    # One wire type for two routes that require different fields: a copy for the stricter.
    requests["TokenCreate"] = _require(_copy(requests["TokenIn"], "TokenCreate"), "source")
    requests["AuthorizeIn"] = _require(_copy(requests["PaymentIn"], "AuthorizeIn"), "source")
    requests["IncrementIn"] = _require(_copy(requests["AmountIn"], "IncrementIn"), "amount")
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
    for name, op in (
        ("Authorize", "authorizeInvoice"),
        ("Capture", "captureInvoice"),
        ("Void", "voidInvoice"),
        ("IncrementAuthorization", "incrementAuthorization"),
        ("RefundInvoice", "refundInvoice"),
        ("InvoiceTransaction", "invoiceTransaction"),
    ):
        invoice_links[name] = _link(op, "invoice_id", "/invoice/id")
    customer_links["CreateToken"] = _link("createToken", "customer_id", "/customer/id")
    customer_links["ListTokens"] = _link("listTokens", "customer_id", "/customer/id")
    customer_links["CustomerTransactions"] = _link(
        "customerTransactions", "customer_id", "/customer/id"
    )
    tr, cd = [_path_id("transaction_id")], [_path_id("card_id")]
    tk = [*cu, _path_id("token_id")]
    card_links = {
        name: _link(op, "card_id", "/card/id")
        for name, op in (("FindCard", "findCard"), ("AnonymizeCard", "anonymizeCard"))
    }
    token_links = {
        name: {
            "operationId": op,
            "parameters": {
                "customer_id": "$response.body#/token/customer_id",
                "token_id": "$response.body#/token/id",
            },
        }
        for name, op in (
            ("FindToken", "findToken"),
            ("UpdateToken", "updateToken"),
            ("DeleteToken", "deleteToken"),
        )
    }
    # After a payment operation: the next ones on the same invoice, and its transaction.
    paid_links = {
        name: _link(op, "invoice_id", "/transaction/invoice_id")
        for name, op in (
            ("Capture", "captureInvoice"),
            ("Void", "voidInvoice"),
            ("IncrementAuthorization", "incrementAuthorization"),
            ("RefundInvoice", "refundInvoice"),
        )
    }
    paid_links |= {
        name: _link(op, "transaction_id", "/transaction/id")
        for name, op in (
            ("FindTransaction", "findTransaction"),
            ("RefundTransaction", "refundTransaction"),
            ("ListRefunds", "listRefunds"),
        )
    }
    refund_links = {
        "FindRefund": {
            "operationId": "findRefund",
            "parameters": {
                "transaction_id": "$response.body#/refund/transaction_id",
                "refund_id": "$response.body#/refund/id",
            },
        },
        "FindTransaction": _link("findTransaction", "transaction_id", "/refund/transaction_id"),
    }
    # authorize, capture, void and increment_authorization answer the transaction and, where
    # the payer must act (3-D Secure), what they must do.
    paid = _ok(
        "transaction",
        "Transaction",
        customer_action=_null(_ref("CustomerAction")),
    )
    # A token with its card (find, create; lists with expand=card).
    with_card: Schema = {"allOf": [_ref("Token"), {"required": ["card"]}]}
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
        "/customers/{customer_id}/transactions": {
            "get": _op(
                "customerTransactions",
                "The customer's transactions, newest first",
                _ok("transactions", "Transaction", many=True),
                params=[*cu, *_LIST_PARAMS],
            ),
        },
        "/customers/{customer_id}/tokens": {
            "post": _op(
                "createToken",
                "Save a card (source: a card id) for the customer",
                _ok("token", with_card, customer_action={"type": "null"}),
                body="TokenCreate",
                params=cu,
                links=token_links,
            ),
            "get": _op(
                "listTokens",
                "The customer's tokens, newest first",
                _ok("tokens", "Token", many=True),
                params=[*cu, *_LIST_PARAMS, _expand(TOKEN_EXPANDS)],
            ),
        },
        "/customers/{customer_id}/tokens/{token_id}": {
            "get": _op("findToken", "Find a token", _ok("token", with_card), params=tk),
            "put": _op(
                "updateToken",
                "Make the token the customer's default (set_default)",
                _ok(),
                body="TokenIn",
                params=tk,
            ),
            "delete": _op("deleteToken", "Delete a token", _ok(), params=tk),
        },
        "/cards": {
            "post": _op(
                "createCard",
                "Create a card (number and CVC go to the gateway's vault only)",
                _ok("card", "Card"),
                body="CardIn",
                links=card_links,
            ),
            "get": _op(
                "listCards",
                "List cards, newest first",
                _ok("cards", "Card", many=True),
                params=_LIST_PARAMS,
            ),
        },
        "/cards/{card_id}": {
            "get": _op("findCard", "Find a card", _ok("card", "Card"), params=cd),
            "delete": _op(
                "anonymizeCard",
                "Anonymize a card: it can no longer be charged",
                _ok(),
                params=cd,
            ),
        },
        "/invoices/{invoice_id}/authorize": {
            "post": _op(
                "authorizeInvoice",
                "Authorize the invoice's amount on a source (a card, or a token of the "
                "invoice's customer)",
                paid,
                body="AuthorizeIn",
                params=iv,
                links=paid_links,
            ),
        },
        "/invoices/{invoice_id}/capture": {
            "post": _op(
                "captureInvoice",
                "Capture the authorization (capture_amount of it), or with a source pay the "
                "invoice at once (a sale)",
                paid,
                body="PaymentIn",
                params=iv,
                links=paid_links,
            ),
        },
        "/invoices/{invoice_id}/void": {
            "post": _op(
                "voidInvoice",
                "Void the authorization",
                paid,
                body="AmountIn",
                params=iv,
                links=paid_links,
            ),
        },
        "/invoices/{invoice_id}/increment_authorization": {
            "post": _op(
                "incrementAuthorization",
                "Authorize an amount more",
                paid,
                body="IncrementIn",
                params=iv,
                links=paid_links,
            ),
        },
        "/invoices/{invoice_id}/refunds": {
            "post": _op(
                "refundInvoice",
                "Refund an amount of the invoice's captured payment",
                _ok("refund", "Refund"),
                body="RefundIn",
                params=iv,
                links=refund_links,
            ),
        },
        "/invoices/{invoice_id}/transactions": {
            "get": _op(
                "invoiceTransaction",
                "The invoice's transaction",
                _ok("transaction", "Transaction"),
                params=iv,
            ),
        },
        "/transactions": {
            "get": _op(
                "listTransactions",
                "List transactions, newest first",
                _ok("transactions", "Transaction", many=True),
                params=_LIST_PARAMS,
            ),
        },
        "/transactions/{transaction_id}": {
            "get": _op(
                "findTransaction",
                "Find a transaction, with its operations and refunds",
                _ok("transaction", "Transaction"),
                params=tr,
            ),
        },
        "/transactions/{transaction_id}/refunds": {
            "post": _op(
                "refundTransaction",
                "Refund an amount of the captured payment",
                _ok("refund", "Refund"),
                body="RefundIn",
                params=tr,
                links=refund_links,
            ),
            "get": _op(
                "listRefunds",
                "The transaction's refunds, oldest first (not paged)",
                _ok("refunds", "Refund", many=True, paged=False),
                params=tr,
            ),
        },
        "/transactions/{transaction_id}/refunds/{refund_id}": {
            "get": _op(
                "findRefund",
                "Find a refund of the transaction",
                _ok("refund", "Refund"),
                params=[*tr, _path_id("refund_id")],
            ),
        },
        "/events": {
            "get": _op(
                "listEvents",
                "List events, newest first",
                _ok("events", "Event", many=True),
                params=_LIST_PARAMS,
            ),
        },
        "/events/{event_id}": {
            "get": _op(
                "findEvent",
                "Find an event: what happened, and the object as it was then",
                _ok("event", "Event"),
                params=[_path_id("event_id")],
            ),
        },
        "/events/{event_id}/webhooks": {
            "get": _op(
                "fetchEventWebhooks",
                "Every attempt to deliver the event to this project's webhook URLs",
                _ok("webhooks", "Webhook", many=True),
                params=[_path_id("event_id")],
            ),
            "post": _op(
                "redeliverEvent",
                "Send the event again to every URL it goes to",
                _ok(webhooks_pending={"type": "integer", "minimum": 0}),
                params=[_path_id("event_id")],
            ),
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
