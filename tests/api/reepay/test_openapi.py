"""The Reepay dialect's own OpenAPI document: it covers every route, its schemas are valid, and
they are the vendor's, narrowed (every property is the vendor's, of the vendor's type; what the
vendor requires is required), but for the few differences each named here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from settle.api.reepay.routes import ROUTES
from tests.api.reepay.support import own_document, vendor_document

# Components of both documents, and the differences of ours, each with its reason.
RESPONSES = ["Customer", "CustomerList", "Invoice", "InvoiceList", "OrderLine", "ErrorResponse"]
REQUESTS = [
    "CreateCustomer",
    "UpdateCustomer",
    "CreateCustomerInvoice",
    "CreateOrderLine",
    "InvoiceBillingAddress",
    "InvoiceShippingAddress",
    "Settle",
    "ManualSettleTransfer",
]
NOT_REQUIRED_HERE = {
    # An invoice made without a customer through the ProcessOut face has none to name.
    ("Invoice", "customer"),
}
# Ours, of another JSON type than the vendor's: a VAT rate may also be sent as a decimal
# string (read exactly, as a JSON number is).
OTHER_TYPES = {("CreateOrderLine", "vat")}


def _types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a (simple) property schema allows, null aside."""
    if "$ref" in schema:
        return {"object"}
    if "anyOf" in schema:
        return set().union(*(_types(s) for s in schema["anyOf"])) - {"null"}
    found = schema.get("type")
    if found is None:
        return set()
    types = {found} if isinstance(found, str) else set(found)
    return types - {"null"}


def test_every_route_is_documented(anon: httpx.Client) -> None:
    served = anon.get("/v1/openapi.json")
    assert served.status_code == 200
    document = served.json()
    assert document == own_document()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    for route in ROUTES:
        if route.path == "/openapi.json":
            continue
        for method in route.methods or ():
            if method != "HEAD":
                assert (method, route.path) in documented, (method, route.path)
    assert len(documented) == sum(
        len((r.methods or set()) - {"HEAD"}) for r in ROUTES if r.path != "/openapi.json"
    )


def test_every_schema_is_valid_json_schema() -> None:
    for name, schema in own_document()["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert name


@pytest.mark.parametrize("name", RESPONSES + REQUESTS)
def test_schemas_are_the_vendors_narrowed(name: str) -> None:
    ours = own_document()["components"]["schemas"][name]
    theirs = vendor_document()["components"]["schemas"][name]
    for prop, schema in ours["properties"].items():
        assert prop in theirs["properties"], f"{name}.{prop} is not the vendor's"
        if (name, prop) in OTHER_TYPES:
            continue
        want = _types(theirs["properties"][prop])
        want = {"number", "integer"} if want == {"number"} else want
        got = _types(schema)
        assert got and got <= want, (name, prop, got, want)
    if name in RESPONSES:
        required = set(theirs.get("required", ())) & set(ours["properties"])
        missing = required - set(ours["required"]) - {p for n, p in NOT_REQUIRED_HERE if n == name}
        assert not missing, (name, missing)
        # Every field the vendor requires is written (none left out of ours).
        assert set(theirs.get("required", ())) <= set(ours["properties"]), name


def test_the_error_code_table_differs_from_the_vendors_dto_by_one_name() -> None:
    """``GET /v1/error_codes`` answers ``http_status`` (as the table the vendor ships does),
    where the vendor's ErrorCodeDto names it ``http_code``."""
    ours = own_document()["components"]["schemas"]["ErrorCodeDto"]["properties"]
    theirs = vendor_document()["components"]["schemas"]["ErrorCodeDto"]["properties"]
    assert set(ours) - set(theirs) == {"http_status"}
    assert set(theirs) - set(ours) == {"http_code"}
