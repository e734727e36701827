"""The OpenAPI 3.1 document served at ``GET /openapi.json``.

Request bodies are generated from the same msgspec wire types that decode requests, so the
document cannot drift from what the server accepts.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import msgspec

from settle.api.processout import schemas as w

_ERROR: Final = {
    "type": "object",
    "required": ["success", "error_type", "message"],
    "properties": {
        "success": {"const": False},
        "error_type": {"type": "string"},
        "message": {"type": "string"},
    },
}

_LIST_PARAMS: Final = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100}},
    {"name": "start_after", "in": "query", "schema": {"type": "string"}},
    {"name": "end_before", "in": "query", "schema": {"type": "string"}},
    {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
]


def _ok(key: str | None, ref: str | None, *, many: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"success": {"const": True}}
    required = ["success"]
    if key and ref:
        item = {"$ref": f"#/components/schemas/{ref}"}
        props[key] = {"type": "array", "items": item} if many else item
        required.append(key)
        if many:
            props["has_more"] = {"type": "boolean"}
            required.append("has_more")
    return {"type": "object", "required": required, "properties": props}


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "success", "content": {"application/json": {"schema": ok}}},
    }
    for status, what in (
        ("400", "invalid request"),
        ("401", "bad credentials"),
        ("404", "not found"),
        ("413", "body too large"),
    ):
        responses[status] = {
            "description": what,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}},
            },
        }
    if params:
        op["parameters"] = params
    return op


def _id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


@cache
def openapi_document() -> bytes:
    _, components = msgspec.json.schema_components(
        [w.InvoiceCreate, w.InvoiceUpdate, w.CustomerIn, w.AssignCustomer],
        ref_template="#/components/schemas/{name}",
    )
    components["Error"] = _ERROR
    components["Invoice"] = {"type": "object", "required": ["id", "amount", "currency"]}
    components["Customer"] = {"type": "object", "required": ["id"]}
    iv, cu = [_id("invoice_id")], [_id("customer_id")]
    paths = {
        "/invoices": {
            "post": _op("Create an invoice", _ok("invoice", "Invoice"), body="InvoiceCreate"),
            "get": _op("List invoices", _ok("invoices", "Invoice", many=True), params=_LIST_PARAMS),
        },
        "/invoices/{invoice_id}": {
            "get": _op("Find an invoice", _ok("invoice", "Invoice"), params=iv),
            "put": _op(
                "Update an invoice", _ok("invoice", "Invoice"), body="InvoiceUpdate", params=iv
            ),
            "delete": _op("Delete an unpaid invoice", _ok(None, None), params=iv),
        },
        "/invoices/{invoice_id}/customers": {
            "get": _op("The invoice's customer", _ok("customer", "Customer"), params=iv),
            "post": _op(
                "Assign a customer", _ok("customer", "Customer"), body="AssignCustomer", params=iv
            ),
        },
        "/customers": {
            "post": _op("Create a customer", _ok("customer", "Customer"), body="CustomerIn"),
            "get": _op(
                "List customers", _ok("customers", "Customer", many=True), params=_LIST_PARAMS
            ),
        },
        "/customers/{customer_id}": {
            "get": _op("Find a customer", _ok("customer", "Customer"), params=cu),
            "put": _op(
                "Update a customer", _ok("customer", "Customer"), body="CustomerIn", params=cu
            ),
            "delete": _op("Delete a customer", _ok(None, None), params=cu),
        },
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Settle (ProcessOut dialect)", "version": "1.4.0.0"},
        "components": {
            "schemas": components,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
        "paths": paths,
    }
    return msgspec.json.encode(document)
