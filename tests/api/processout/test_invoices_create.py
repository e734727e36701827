"""POST /invoices: every field the seeds document and the official client sends, JSON or form,
echoed normalised; amounts exact; references checked; the documentation's curl run verbatim."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from settle.projects.models import IssuedKeys
from tests.api.processout import invoices_support as s
from tests.conftest import RunningServer

po = s.po
po_empty = s.po_empty
no_server_errors = s.no_server_errors

# Invoice.create of processout==10.0.1 (sdk-10.0.1-endpoints.txt): it sends all of these, unset
# ones as null.
SDK_CREATE_FIELDS = (
    "customer_id",
    "name",
    "order_id",
    "amount",
    "currency",
    "metadata",
    "details",
    "submerchant",
    "submerchant_id",
    "reference_id",
    "exemption_reason_3ds2",
    "sca_exemption_reason",
    "challenge_indicator",
    "gateway_data",
    "merchant_initiator_type",
    "initiation_type",
    "payment_intent",
    "statement_descriptor",
    "statement_descriptor_phone",
    "statement_descriptor_city",
    "statement_descriptor_company",
    "statement_descriptor_url",
    "return_url",
    "cancel_url",
    "webhook_url",
    "risk",
    "shipping",
    "device",
    "require_backend_capture",
    "external_fraud_tools",
    "tax",
    "payment_type",
    "billing",
    "unsupported_feature_bypass",
    "verification",
    "auto_capture_at",
    "expires_at",
)
# The writable fields of the seed 001 field table that the SDK list above does not repeat.
SEED_ONLY_FIELDS = ("token_id",)

# Server-made values of the seed example, replaced by ours in the response.
GENERATED = {"id", "project_id", "transaction_id", "url", "created_at"}


def _close_to_now(stamp: str) -> None:
    assert s.RFC3339_UTC_RE.match(stamp), stamp
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=5), stamp


def _assert_shape(expected: Any, actual: Any, path: str = "invoice") -> None:
    """``actual`` has every key of ``expected`` (recursively), with the same JSON kind."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (path, actual)
        missing = set(expected) - set(actual)
        assert not missing, f"{path} lacks {sorted(missing)}"
        for key, value in expected.items():
            if value is not None:
                _assert_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (path, actual)
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _assert_shape(e, a, f"{path}[{i}]")
    else:
        assert type(actual) is type(expected), (path, expected, actual)


# --- the seed 001 example ------------------------------------------------------------------


def test_seed_001_example_round_trips(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    seed = s.seed_invoice()
    customer = s.create_customer(client)
    body = {**seed, "customer_id": customer["id"]}  # read-only fields are sent back too

    invoice = s.success(client.post("/invoices", json=body))["invoice"]

    _assert_shape(seed, invoice)
    # Server-made: ours, never the client's.
    assert s.INVOICE_ID_RE.match(invoice["id"]) and invoice["id"] != seed["id"]
    assert invoice["project_id"] == project.project.id
    assert s.PROJECT_ID_RE.match(invoice["project_id"])
    assert s.TRANSACTION_ID_RE.match(invoice["transaction_id"])
    assert invoice["transaction_id"] != seed["transaction_id"]
    assert invoice["customer_id"] == customer["id"]
    assert invoice["token_id"] is None
    assert invoice["subscription_id"] is None
    assert invoice["sandbox"] is True
    assert invoice["url"] == (
        f"{server.url}/checkout/{project.processout_username}/{invoice['id']}"
    )
    _close_to_now(invoice["created_at"])
    (detail,) = invoice["details"]
    assert s.DETAIL_ID_RE.match(detail["id"]) and detail["id"] != seed["details"][0]["id"]

    # Everything else is echoed, normalised: enums to their documented case, times to RFC 3339
    # UTC with microseconds.
    expected = {k: v for k, v in seed.items() if k not in GENERATED | {"customer_id"}}
    expected["initiation_type"] = "mit"  # sent as "MIT"
    expected["shipping"]["expects_shipping_at"] = "2023-04-21T17:52:47.828402Z"
    expected["details"][0]["id"] = detail["id"]
    for key, value in expected.items():
        if isinstance(value, dict) and key not in ("metadata", "gateway_data", "tax"):
            assert {k: invoice[key][k] for k in value} == value, key
        else:
            assert invoice[key] == value, key

    # Stable: the stored invoice is the one answered, url and all.
    assert s.find(client, invoice["id"]) == invoice
    listed = s.success(client.get("/invoices"))["invoices"]
    assert listed == [invoice]

    # Its transaction was created with it, waiting for a payment.
    transaction = s.find(client, invoice["id"], expand="transaction")["transaction"]
    assert transaction["id"] == invoice["transaction_id"]
    assert transaction["status"] == "waiting"
    assert transaction["invoice_id"] == invoice["id"]
    assert transaction["customer_id"] == customer["id"]
    assert (transaction["amount"], transaction["currency"]) == ("29", "EUR")
    assert transaction["sandbox"] is True


def test_every_documented_and_sdk_field_is_stored(po: httpx.Client) -> None:
    customer = s.create_customer(po)
    body: dict[str, Any] = {
        "customer_id": customer["id"],
        "name": "Amazing item",
        "order_id": "000001",
        "reference_id": "ref-42",
        "amount": "104.50",
        "currency": "USD",
        "metadata": {"fruit": "banana", "empty": ""},
        "details": [
            {
                "name": "Widget",
                "type": "gadget",
                "amount": "50.25",
                "quantity": 2,
                "category": "technology",
                "reference": "W-1",
                "description": "A widget",
                "brand": "Acme",
                "model": "W1",
                "discount_amount": "1.5",
                "condition": "refurbished",
                "marketplace_merchant": "mm-1",
                "marketplace_merchant_is_business": True,
                "marketplace_merchant_created_at": "2020-01-02T03:04:05.123456+02:00",
                "metadata": {"color": "red"},
            }
        ],
        "submerchant": {"name": "Sub", "address": {"city": "Paris"}},
        "submerchant_id": "sub_1",
        "exemption_reason_3ds2": "low-value",
        "sca_exemption_reason": "trusted-beneficiary",
        "challenge_indicator": "challenge-requested",
        "gateway_data": {"psp": "value"},
        "merchant_initiator_type": "recurring",
        "initiation_type": "cit",
        "payment_intent": "one-off",
        "statement_descriptor": "ACME shop 1.0/x",
        "statement_descriptor_phone": "+1 555 0100",
        "statement_descriptor_city": "Springfield",
        "statement_descriptor_company": "Acme Inc",
        "statement_descriptor_url": "https://acme.example/help",
        "return_url": "https://acme.example/return?x=1",
        "cancel_url": "http://acme.example/cancel",
        "webhook_url": "https://hooks.acme.example/po",
        "risk": {"score": "42", "is_legit": False, "skip_gateway_rules": True},
        "shipping": {
            "amount": "3",
            "method": "relay",
            "provider": "UPS",
            "delay": "priority",
            "address1": "1 Main St",
            "address2": "Apt 2",
            "city": "Springfield",
            "state": "IL",
            "country_code": "us",
            "zip": "62701",
            "phone": {"number": "5550100", "dialing_code": "+1"},
            "expects_shipping_at": "2030-05-06T09:08:09+02:00",
            "relay_store_name": "Corner store",
        },
        "device": {"id": "dev-1", "channel": "android", "ip_address": "2001:DB8::1"},
        "require_backend_capture": True,
        "external_fraud_tools": {"forter": {"token": "abc", "signals": [1, 2.5, {"a": None}]}},
        "tax": {"amount": "4.25", "rate": "4.50"},
        "payment_type": "ecommerce",
        "billing": {
            "address1": "2 Side St",
            "city": "Lyon",
            "country_code": "fr",
            "zip": "69001",
        },
        "unsupported_feature_bypass": {"incremental_authorization": True},
        "verification": {"kind": "zero-auth"},
        "auto_capture_at": "2030-01-01T12:00:00+01:00",
        "expires_at": "2030-02-01T00:00:00.5Z",
    }
    assert set(SDK_CREATE_FIELDS) <= set(body)
    invoice = s.success(po.post("/invoices", json=body))["invoice"]
    assert s.find(po, invoice["id"]) == invoice

    same = [
        "customer_id",
        "name",
        "order_id",
        "reference_id",
        "currency",
        "metadata",
        "submerchant",
        "submerchant_id",
        "exemption_reason_3ds2",
        "sca_exemption_reason",
        "challenge_indicator",
        "gateway_data",
        "merchant_initiator_type",
        "initiation_type",
        "payment_intent",
        "statement_descriptor",
        "statement_descriptor_phone",
        "statement_descriptor_city",
        "statement_descriptor_company",
        "statement_descriptor_url",
        "return_url",
        "cancel_url",
        "webhook_url",
        "risk",
        "require_backend_capture",
        "external_fraud_tools",
        "payment_type",
        "verification",
    ]
    for key in same:
        assert invoice[key] == body[key], key
    assert invoice["amount"] == "104.5"
    assert invoice["tax"] == {"amount": "4.25", "rate": "4.5"}
    assert invoice["auto_capture_at"] == "2030-01-01T11:00:00.000000Z"
    assert invoice["expires_at"] == "2030-02-01T00:00:00.500000Z"
    assert invoice["unsupported_feature_bypass"]["incremental_authorization"] is True

    (detail,) = invoice["details"]
    assert s.DETAIL_ID_RE.match(detail["id"])
    sent = body["details"][0]
    for key in sent:
        if key not in ("discount_amount", "marketplace_merchant_created_at"):
            assert detail[key] == sent[key], key
    assert detail["discount_amount"] == "1.5"
    assert detail["marketplace_merchant_created_at"] == "2020-01-02T01:04:05.123456Z"

    shipping = invoice["shipping"]
    for key in ("amount", "method", "provider", "delay", "address1", "address2", "city"):
        assert shipping[key] == body["shipping"][key], key
    assert (shipping["state"], shipping["zip"]) == ("IL", "62701")
    assert shipping["relay_store_name"] == "Corner store"
    assert shipping["country_code"] == "US"
    assert shipping["phone"] == {"number": "5550100", "dialing_code": "001"}
    assert shipping["expects_shipping_at"] == "2030-05-06T07:08:09.000000Z"

    assert invoice["device"]["id"] == "dev-1"
    assert invoice["device"]["channel"] == "android"
    assert invoice["device"]["ip_address"] == "2001:db8::1"
    billing = invoice["billing"]
    assert (billing["address1"], billing["city"], billing["zip"]) == ("2 Side St", "Lyon", "69001")
    assert billing["country_code"] == "FR"


def test_null_means_not_given(po: httpx.Client) -> None:
    """The official client sends every field, unset ones as null."""
    body: dict[str, Any] = dict.fromkeys((*SDK_CREATE_FIELDS, *SEED_ONLY_FIELDS))
    body.update(amount="4.99", currency="AUD")
    invoice = s.success(po.post("/invoices", json=body))["invoice"]
    assert (invoice["amount"], invoice["currency"]) == ("4.99", "AUD")
    assert invoice["details"] == []
    assert invoice["metadata"] == {}
    assert invoice["gateway_data"] == {}
    for key in (
        "customer_id",
        "token_id",
        "name",
        "order_id",
        "statement_descriptor",
        "initiation_type",
        "payment_intent",
        "return_url",
        "risk",
        "device",
        "shipping",
        "tax",
        "billing",
        "external_fraud_tools",
        "expires_at",
    ):
        assert invoice[key] is None, key
    assert s.find(po, invoice["id"]) == invoice


def test_null_inside_nested_objects_means_not_given(po: httpx.Client) -> None:
    nulls = dict.fromkeys
    body = {
        "amount": "1",
        "currency": "EUR",
        "details": [
            {
                "amount": "1",
                **nulls(
                    (
                        "name",
                        "type",
                        "quantity",
                        "metadata",
                        "reference",
                        "description",
                        "brand",
                        "model",
                        "discount_amount",
                        "condition",
                        "marketplace_merchant",
                        "marketplace_merchant_is_business",
                        "marketplace_merchant_created_at",
                        "category",
                    )
                ),
            }
        ],
        "risk": nulls(("score", "is_legit", "skip_gateway_rules")),
        "device": nulls(("id", "channel", "ip_address")),
        "external_fraud_tools": {"forter": None},
        "shipping": {
            **nulls(
                (
                    "amount",
                    "method",
                    "provider",
                    "delay",
                    "address1",
                    "address2",
                    "city",
                    "state",
                    "country_code",
                    "zip",
                    "expects_shipping_at",
                    "relay_store_name",
                )
            ),
            "phone": nulls(("number", "dialing_code")),
        },
        "tax": nulls(("amount", "rate")),
        "unsupported_feature_bypass": nulls(("incremental_authorization",)),
    }
    invoice = s.success(po.post("/invoices", json=body))["invoice"]
    (detail,) = invoice["details"]
    assert detail["quantity"] == 1
    assert detail["metadata"] == {}
    assert detail["name"] is None and detail["category"] is None
    # A tax object with neither part says nothing: it is stored and shown as no tax.
    assert invoice["tax"] is None
    assert invoice["shipping"]["amount"] is None
    assert invoice["shipping"]["method"] is None
    assert invoice["shipping"]["phone"] == {"number": None, "dialing_code": None}
    assert invoice["risk"] == {"score": None, "is_legit": None, "skip_gateway_rules": None}
    assert invoice["device"]["ip_address"] is None


# --- form-encoded bodies -------------------------------------------------------------------


def _post_form(client: httpx.Client, path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    return client.post(
        path,
        content=urlencode(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_form_encoded_body_with_nested_fields(po: httpx.Client) -> None:
    pairs = [
        ("name", "Amazing item"),
        ("amount", "12.30"),
        ("currency", "eur"),
        ("order_id", "000001"),
        ("metadata[fruit]", "banana"),
        ("metadata[colour]", "yellow & green"),
        ("details[0][name]", "Banana"),
        ("details[0][amount]", "1.10"),
        ("details[0][quantity]", "3"),
        ("details[0][category]", "food"),
        ("details[0][metadata][origin]", "Ecuador"),
        ("details[1][name]", "Bag"),
        ("details[1][amount]", "0.5"),
        ("details[1][marketplace_merchant_is_business]", "true"),
        ("risk[score]", "7"),
        ("risk[is_legit]", "true"),
        ("risk[skip_gateway_rules]", "false"),
        ("device[channel]", "web"),
        ("device[ip_address]", "192.0.2.1"),
        ("shipping[amount]", "2"),
        ("shipping[method]", "home"),
        ("shipping[country_code]", "FR"),
        ("shipping[phone][number]", "684758495"),
        ("shipping[phone][dialing_code]", "+33"),
        ("shipping[expects_shipping_at]", "2030-01-01T00:00:00Z"),
        ("tax[amount]", "2.05"),
        ("tax[rate]", "20"),
        ("unsupported_feature_bypass[incremental_authorization]", "1"),
        ("return_url", "https://shop.example/return"),
    ]
    invoice = s.success(_post_form(po, "/invoices", pairs))["invoice"]
    assert s.find(po, invoice["id"]) == invoice
    assert (invoice["name"], invoice["amount"], invoice["currency"]) == (
        "Amazing item",
        "12.3",
        "EUR",
    )
    assert invoice["order_id"] == "000001"
    assert invoice["metadata"] == {"fruit": "banana", "colour": "yellow & green"}
    first, second = invoice["details"]
    assert (first["name"], first["amount"], first["quantity"]) == ("Banana", "1.1", 3)
    assert first["category"] == "food"
    assert first["metadata"] == {"origin": "Ecuador"}
    assert (second["name"], second["amount"], second["quantity"]) == ("Bag", "0.5", 1)
    assert second["marketplace_merchant_is_business"] is True
    assert invoice["risk"] == {"score": "7", "is_legit": True, "skip_gateway_rules": False}
    assert invoice["device"]["ip_address"] == "192.0.2.1"
    assert invoice["shipping"]["amount"] == "2"
    assert invoice["shipping"]["phone"] == {"number": "684758495", "dialing_code": "0033"}
    assert invoice["shipping"]["expects_shipping_at"] == "2030-01-01T00:00:00.000000Z"
    assert invoice["tax"] == {"amount": "2.05", "rate": "20"}
    assert invoice["unsupported_feature_bypass"]["incremental_authorization"] is True
    assert invoice["return_url"] == "https://shop.example/return"


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("amount", "4.999")], "amount"),
        ([("details[0][amount]", "1"), ("details[0][quantity]", "many")], "details[0].quantity"),
        ([("risk[is_legit]", "maybe")], "risk.is_legit"),
        ([("shipping[method]", "teleport")], "shipping.method"),
        ([("name", "x" * 81)], "name"),
    ],
)
def test_form_encoded_errors_name_the_field(
    po_empty: httpx.Client, pairs: list[tuple[str, str]], field: str
) -> None:
    base = [("amount", "1"), ("currency", "EUR")]
    given = {k for k, _ in pairs}
    response = _post_form(po_empty, "/invoices", [p for p in base if p[0] not in given] + pairs)
    s.invalid(response, field)


# The request of seed 000 (ProcessOut's "create an invoice" example), character for character.
SEED_000_CURL = """\
curl -X POST https://api.processout.com/invoices \\
    -u test-proj_gAO1Uu0ysZJvDuUpOGPkUBeE3pGalk3x:key_sandbox_mah31RDFqcDxmaS7MvhDbJfDJvjtsFTB \\
    -d customer_id="cust_CgdhFgj5QEv5I8dx6tHxVVrgxBDDzAgc" \\
    -d name="Amazing item" \\
    -d statement_descriptor="amazing item" \\
    -d amount="4.99" \\
    -d currency="AUD" \\
    -d order_id="000001"
"""


def test_seed_000_curl_example_verbatim(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    customer = s.create_customer(client)
    command = (
        SEED_000_CURL.replace("https://api.processout.com", server.url)
        .replace("test-proj_gAO1Uu0ysZJvDuUpOGPkUBeE3pGalk3x", project.processout_username)
        .replace("key_sandbox_mah31RDFqcDxmaS7MvhDbJfDJvjtsFTB", project.processout_password)
        .replace("cust_CgdhFgj5QEv5I8dx6tHxVVrgxBDDzAgc", customer["id"])
    )
    # Pasted into a shell, as a reader of the documentation would: the shell handles the quotes
    # and line continuations, the real curl binary sends the form.
    assert shutil.which("curl"), "the curl binary is needed"
    done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30, check=True)
    body = json.loads(done.stdout)
    assert body["success"] is True, body
    invoice = body["invoice"]
    assert s.INVOICE_ID_RE.match(invoice["id"])
    assert s.TRANSACTION_ID_RE.match(invoice["transaction_id"])
    assert invoice["customer_id"] == customer["id"]
    assert invoice["name"] == "Amazing item"
    assert invoice["statement_descriptor"] == "amazing item"
    assert (invoice["amount"], invoice["currency"]) == ("4.99", "AUD")
    assert invoice["order_id"] == "000001"
    assert invoice["sandbox"] is True
    assert invoice["url"].startswith(f"{server.url}/")
    assert s.find(client, invoice["id"]) == invoice


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "amount", "echoed"),
    [
        ("EUR", "4.99", "4.99"),
        ("EUR", "4.90", "4.9"),
        ("EUR", "4.990", "4.99"),  # extra zeros are not extra precision
        ("EUR", "12345678901.23", "12345678901.23"),
        ("JPY", "100", "100"),
        ("JPY", "100.0", "100"),
        ("KWD", "1.005", "1.005"),
        ("BHD", "0.5", "0.5"),
        ("AUD", "29", "29"),
        ("usd", "0.01", "0.01"),
    ],
)
def test_amount_is_stored_exactly(
    po: httpx.Client, currency: str, amount: str, echoed: str
) -> None:
    invoice = s.create(po, amount=amount, currency=currency)
    assert invoice["amount"] == echoed
    assert invoice["currency"] == currency.upper()
    found = s.find(po, invoice["id"], expand="transaction")
    assert found["amount"] == echoed
    assert found["transaction"]["amount"] == echoed
    assert found["transaction"]["currency"] == currency.upper()


@pytest.mark.parametrize(
    ("currency", "amount"),
    [
        ("JPY", "100.5"),
        ("JPY", "0.1"),
        ("EUR", "4.999"),
        ("KWD", "1.0005"),
        ("EUR", "-1"),
        ("EUR", "-0.01"),
        ("EUR", "+1"),
        ("EUR", "1e3"),
        ("EUR", "1E3"),
        ("EUR", "NaN"),
        ("EUR", "Infinity"),
        ("EUR", ""),
        ("EUR", "abc"),
        ("EUR", "4,99"),
        ("EUR", "4."),
        ("EUR", ".5"),
        ("EUR", "0x10"),
        ("EUR", "1 000"),
        ("EUR", "1" + "0" * 30),
    ],
)
def test_invalid_amount_is_rejected(po_empty: httpx.Client, currency: str, amount: str) -> None:
    response = po_empty.post("/invoices", json={"amount": amount, "currency": currency})
    s.invalid(response, "amount", "request.validation.invalid-amount")


@pytest.mark.parametrize("amount", [4.99, 5, True, ["4.99"], {"value": "4.99"}])
def test_amount_must_be_a_string(po_empty: httpx.Client, amount: Any) -> None:
    response = po_empty.post("/invoices", json={"amount": amount, "currency": "EUR"})
    body = s.invalid(response, "amount", "request.validation.error")
    assert "must be a string" in body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"details": [{"amount": "1.5"}]}, "details[0].amount"),
        ({"details": [{"amount": "1"}, {"amount": "-2"}]}, "details[1].amount"),
        ({"details": [{"amount": "1", "discount_amount": "0.5"}]}, "details[0].discount_amount"),
        ({"details": [{"name": "no amount"}]}, "details[0].amount"),
        ({"details": [{"amount": 1.0}]}, "details[0].amount"),
        ({"shipping": {"amount": "2.5"}}, "shipping.amount"),
        ({"tax": {"amount": "0.1"}}, "tax.amount"),
        ({"tax": {"amount": "-1"}}, "tax.amount"),
    ],
)
def test_nested_amounts_follow_the_invoice_currency(
    po_empty: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = po_empty.post("/invoices", json={"amount": "100", "currency": "JPY", **body})
    s.invalid(response, field)


def test_nested_amounts_are_exact(po: httpx.Client) -> None:
    invoice = s.create(
        po,
        amount="10.005",
        currency="KWD",
        details=[{"amount": "3.335", "discount_amount": "0.001", "quantity": 3}],
        shipping={"amount": "0.100"},
        tax={"amount": "0"},
    )
    assert invoice["amount"] == "10.005"
    assert invoice["details"][0]["amount"] == "3.335"
    assert invoice["details"][0]["discount_amount"] == "0.001"
    assert invoice["shipping"]["amount"] == "0.1"
    assert invoice["tax"] == {"amount": "0", "rate": None}


@pytest.mark.parametrize(
    ("body", "field", "error_type"),
    [
        ({"currency": "EUR"}, "amount", "request.validation.missing-amount"),
        ({"amount": None, "currency": "EUR"}, "amount", "request.validation.missing-amount"),
        ({"amount": "1"}, "currency", "request.validation.missing-currency"),
        ({"amount": "1", "currency": None}, "currency", "request.validation.missing-currency"),
        ({"amount": "1", "currency": ""}, "currency", "request.validation.missing-currency"),
        ({"amount": "1", "currency": "XYZ"}, "currency", "request.validation.invalid-currency"),
        ({"amount": "1", "currency": "EU"}, "currency", "request.validation.invalid-currency"),
        ({"amount": "1", "currency": "EURO"}, "currency", "request.validation.invalid-currency"),
        # ISO 4217 codes without a minor unit (gold, test code): no defined precision.
        ({"amount": "1", "currency": "XAU"}, "currency", "request.validation.invalid-currency"),
        ({"amount": "1", "currency": "XXX"}, "currency", "request.validation.invalid-currency"),
        ({"amount": "1", "currency": 978}, "currency", "request.validation.error"),
    ],
)
def test_amount_and_currency_are_required_and_checked(
    po_empty: httpx.Client, body: dict[str, Any], field: str, error_type: str
) -> None:
    s.invalid(po_empty.post("/invoices", json=body), field, error_type)


@pytest.mark.parametrize(("sent", "stored"), [("eur", "EUR"), ("Jpy", "JPY"), ("KWD", "KWD")])
def test_currency_is_normalised_to_upper_case(po: httpx.Client, sent: str, stored: str) -> None:
    invoice = s.create(po, currency=sent, amount="1")
    assert invoice["currency"] == stored
    assert s.find(po, invoice["id"])["currency"] == stored


# --- references ----------------------------------------------------------------------------


def test_customer_of_the_same_project(po: httpx.Client) -> None:
    customer = s.create_customer(po)
    invoice = s.create(po, customer_id=customer["id"])
    assert invoice["customer_id"] == customer["id"]
    expanded = s.find(po, invoice["id"], expand="customer")
    assert expanded["customer"]["id"] == customer["id"]
    assert expanded["customer"]["email"] == "jane@example.com"


def test_customer_of_another_project_is_not_found(
    client: httpx.Client, server: RunningServer
) -> None:
    with s.project_client(server) as other:
        foreign = s.create_customer(other)
        unknown = "cust_" + "A" * 32
        mine = s.create(client)
        before = s.all_invoice_ids(client)

        taken = s.failure(
            client.post(
                "/invoices", json={"amount": "1", "currency": "EUR", "customer_id": foreign["id"]}
            ),
            404,
            "resource.customer.not-found",
        )
        missing = s.failure(
            client.post(
                "/invoices", json={"amount": "1", "currency": "EUR", "customer_id": unknown}
            ),
            404,
            "resource.customer.not-found",
        )
        # Nothing tells a foreign customer from one that does not exist.
        assert taken["message"].replace(foreign["id"], "ID") == missing["message"].replace(
            unknown, "ID"
        )
        assert foreign["id"] in taken["message"]
        assert s.all_invoice_ids(client) == before == [mine["id"]]
        assert s.count_invoices(other) == 0


def test_deleted_customer_is_not_found(client: httpx.Client) -> None:
    customer = s.create_customer(client)
    s.success(client.delete(f"/customers/{customer['id']}"))
    response = client.post(
        "/invoices", json={"amount": "1", "currency": "EUR", "customer_id": customer["id"]}
    )
    s.failure(response, 404, "resource.customer.not-found")
    assert s.count_invoices(client) == 0


@pytest.mark.parametrize("token_id", ["tok_" + "a" * 32, "card_" + "b" * 32, "anything"])
def test_token_id_is_not_found(po_empty: httpx.Client, token_id: str) -> None:
    customer = s.create_customer(po_empty)
    response = po_empty.post(
        "/invoices",
        json={
            "amount": "1",
            "currency": "EUR",
            "customer_id": customer["id"],
            "token_id": token_id,
        },
    )
    body = s.failure(response, 404, "resource.token.not-found")
    assert "token" in body["message"] and token_id in body["message"]
    assert s.count_invoices(po_empty) == 0
