"""Shared helpers of the Reepay dialect's tests: clients that check every answer against the
vendor's schema and against the server's own document.

``reepay_client`` makes an httpx client rooted at ``/v1`` whose every response is checked
(``check_response``):

- no 5xx, and a ``Request-Id`` header;
- the body validates against the vendor's schema for that operation and status
  (``tests/data/reepay/openapi.derived.json``, a verbatim copy of the vendor's document as
  rebuilt in shared/reference, with its $refs resolved through a ``referencing`` registry),
  or against its ``ErrorResponse`` for an error status the vendor does not list;
- the status is one the server's own document (``GET /v1/openapi.json``) lists for the
  operation, and the body validates against that document's schema for it.

Test modules take the fixtures by importing them (``from tests.api.reepay.support import
reepay``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator, Draft202012Validator, FormatChecker
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4, DRAFT202012

from settle import grammar
from settle.api.reepay.openapi import openapi_document
from settle.errors import ValidationError
from settle.projects.models import IssuedKeys
from tests.conftest import RunningServer

VENDOR_PATH = Path(__file__).resolve().parents[2] / "data" / "reepay" / "openapi.derived.json"
VENDOR_URI = "urn:settle-tests:reepay-vendor"
OWN_URI = "urn:settle-tests:reepay-own"
# A request carrying this header expects an invoice without a customer (one made through
# ProcessOut without one): the vendor's schema requires ``customer``, which such an invoice
# cannot have. The server ignores the header.
NO_CUSTOMER_HEADER = "x-test-invoice-without-customer"


def _extended_vendor_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(VENDOR_PATH.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    # Extensions, only where the vendor's reference describes what its rebuilt schema lacks
    # (shared/reference/reepay/README.md): cost center and purchase order number on a
    # customer invoice ("the vendor's JSON names are not public; cost_center and
    # purchase_order_number are reasonable"), accepted when creating one and shown on it.
    for name in ("CreateCustomerInvoice", "Invoice"):
        for field in ("cost_center", "purchase_order_number"):
            schemas[name]["properties"][field] = {"type": "string"}
    # Metadata maps: the rebuilt document types their values ``{"type": "object"}``, the
    # generated client's spelling of "any value" (its reference: "object of custom
    # key-values"; the values are strings, numbers, ...). Read as any value, only there.
    metadata = document["paths"]["/v1/invoice/{handle}/metadata"]
    for schema in (
        metadata["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        metadata["put"]["responses"]["200"]["content"]["application/json"]["schema"],
        metadata["put"]["requestBody"]["content"]["application/json"]["schema"],
        schemas["CreateCustomer"]["properties"]["metadata"],
        schemas["CreateCustomerInvoice"]["properties"]["metadata"],
    ):
        assert schema["additionalProperties"] == {"type": "object"}
        schema["additionalProperties"] = {}
    return document


@cache
def vendor_document() -> dict[str, Any]:
    return _extended_vendor_document()


@cache
def own_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi_document())
    return document


_BASIC_OFFSET = re.compile(r"([+-][0-9]{2})([0-9]{2})$")


def _date_time(value: object) -> bool:
    """RFC 3339; or ISO 8601 with a ``+0000`` offset, which the vendor's own error example
    uses for ``ErrorResponse.timestamp`` (README: "2015-06-12T06:38:33.876+0000"), copied
    by the server's error bodies."""
    if not isinstance(value, str):
        return True
    value = _BASIC_OFFSET.sub(r"\1:\2", value)
    try:
        grammar.parse_timestamp(value, field="value")
    except ValidationError:
        return False
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_date_time)
    return checker


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = (
        Registry()
        .with_resource(VENDOR_URI, DRAFT4.create_resource(vendor_document()))
        .with_resource(OWN_URI, DRAFT202012.create_resource(own_document()))
    )
    return registry


@cache
def vendor_validator(*pointer: str) -> Validator:
    """A validator for the vendor's schema at ``pointer`` (e.g. "components", "schemas",
    "Invoice"); its $refs resolve against the vendor's components. OpenAPI 3.0.3 schemas are
    JSON Schema draft 4 in all the keywords this document uses."""
    ref = {"$ref": f"{VENDOR_URI}#/{_pointer(*pointer)}"}
    return Draft4Validator(ref, registry=_registry(), format_checker=_format_checker())


@cache
def own_validator(*pointer: str) -> Validator:
    ref = {"$ref": f"{OWN_URI}#/{_pointer(*pointer)}"}
    return Draft202012Validator(ref, registry=_registry(), format_checker=_format_checker())


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


@cache
def _templates(which: str) -> list[tuple[re.Pattern[str], str]]:
    document = vendor_document() if which == "vendor" else own_document()
    prefix = "" if which == "vendor" else "/v1"
    return [(_template_regex(prefix + path), path) for path in document["paths"]]


def _operation(which: str, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
    document = vendor_document() if which == "vendor" else own_document()
    for regex, template in _templates(which):
        if regex.match(path) and method.lower() in document["paths"][template]:
            return template, document["paths"][template][method.lower()]
    return None


def _json_schema_pointer(
    which: str, template: str, method: str, status: str, operation: dict[str, Any]
) -> tuple[str, ...] | None:
    content = operation["responses"][status].get("content", {})
    if "application/json" not in content:
        return None
    return ("paths", template, method.lower(), "responses", status, "content")


def _errors(validator: Validator, body: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


def check_response(response: httpx.Response) -> None:
    """Every check of the module docstring, on one answer."""
    request = response.request
    response.read()
    where = f"{request.method} {request.url.path} -> {response.status_code}: {response.text[:500]}"
    assert response.status_code < 500 or response.status_code in (501, 503), where
    assert response.headers.get("request-id"), where
    path, method, status = request.url.path, request.method, str(response.status_code)
    body: Any = response.json() if response.content else None
    vendor = _operation("vendor", path, method)
    if vendor is not None and path != "/v1/openapi.json":
        template, operation = vendor
        if status in operation["responses"]:
            pointer = _json_schema_pointer("vendor", template, method, status, operation)
            if pointer is None:
                assert not response.content, where  # "OK (empty body)"
            else:
                schema = (*pointer, "application/json", "schema")
                vendor_body = body
                if NO_CUSTOMER_HEADER in request.headers:
                    assert "customer" not in body, where
                    vendor_body = {**body, "customer": "(none)"}
                problems = _errors(vendor_validator(*schema), vendor_body)
                assert not problems, (where, problems)
        else:
            assert response.status_code >= 400, where
            problems = _errors(vendor_validator("components", "schemas", "ErrorResponse"), body)
            assert not problems, (where, problems)
    own = _operation("own", path, method)
    if own is not None:
        template, operation = own
        assert status in operation["responses"], f"{where}: not in /v1/openapi.json"
        pointer = _json_schema_pointer("own", template, method, status, operation)
        if pointer is None:
            assert not response.content, where
        else:
            schema = (*pointer, "application/json", "schema")
            problems = _errors(own_validator(*schema), body)
            assert not problems, (where, problems)


def reepay_client(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/v1",
        auth=(key, ""),
        timeout=30,
        event_hooks={"response": [check_response]},
    )


@pytest.fixture
def reepay(server: RunningServer, project: IssuedKeys) -> Iterator[httpx.Client]:
    """A checked client of a fresh sandbox project, Reepay dialect (the ``client`` fixture
    is the same project's ProcessOut client)."""
    with reepay_client(server, project.reepay_private_key) as c:
        yield c


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["http_status"] == status
    assert body["path"] == response.request.url.path
    return body


ORDER_LINE = {"ordertext": "Shoes", "amount": 10000, "vat": 0.25, "quantity": 1}


def invoice_body(handle: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"handle": handle, "order_lines": [copy.deepcopy(ORDER_LINE)]}
    body.update(fields)
    return body


def new_customer(reepay: httpx.Client, handle: str, **fields: Any) -> dict[str, Any]:
    response = reepay.post("/customer", json={"handle": handle, **fields})
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def new_invoice(reepay: httpx.Client, customer: str, handle: str, **fields: Any) -> dict[str, Any]:
    response = reepay.post(f"/customer/{customer}/invoice", json=invoice_body(handle, **fields))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created
