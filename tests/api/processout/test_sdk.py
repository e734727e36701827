"""The official ProcessOut Python client (processout==10.0.1), unmodified, over a real socket.

The client sends every field it knows, unset ones as null, and sub-objects through its
SubObjectEncoder (every sub-field, including ones Settle does not model); it decides success
from the body's ``success`` and raises by HTTP status. In this version ``Invoice`` has no
``save()``: ``Invoice.update(invoice_id, ...)`` is the PUT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import processout
import pytest
from processout.errors.authenticationerror import AuthenticationError
from processout.errors.notfounderror import NotFoundError
from processout.errors.validationerror import ValidationError
from processout.networking.request import SubObjectEncoder

from settle.projects.models import IssuedKeys
from tests.conftest import RunningServer

ID_RE = re.compile(r"(?P<prefix>[a-z_]+_)[A-Za-z0-9]{32}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")

DETAILS: list[dict[str, Any]] = [
    {
        "name": "Amazing item",
        "type": "physical",
        "amount": "4.5",
        "quantity": 2,
        "metadata": {"sku": "AMZ-1"},
        "reference": "ref-1",
        "description": "An amazing item",
        "brand": "Acme",
        "model": "A1",
        "discount_amount": "0.50",
        "condition": "new",
        "category": "technology",
    },
    {"name": "Gift wrap", "amount": "1.99"},
]
SHIPPING: dict[str, Any] = {
    "amount": "5.5",
    "method": "HOME",
    "provider": "La Poste",
    "delay": "express",
    "address1": "1 Rue de Rivoli",
    "city": "Paris",
    "state": "IDF",
    "country_code": "fr",
    "zip": "75001",
    "phone_number": "+33612345678",
    "phone": {"number": "612345678", "dialing_code": "+33"},
    "expects_shipping_at": "2030-01-02T03:04:05Z",
    "relay_store_name": "Relais",
    "first_name": "Jane",
    "last_name": "Doe",
    "email": "jane@example.com",
}
TAX: dict[str, Any] = {"amount": "1.20", "rate": "20.0"}
RISK: dict[str, Any] = {"score": "42", "is_legit": True, "skip_gateway_rules": False}
DEVICE: dict[str, Any] = {
    "channel": "Web",
    "ip_address": "203.0.113.9",
    "platform": "linux",
    "id": "device-1",
}


def prefix(object_id: str) -> str:
    match = ID_RE.fullmatch(object_id)
    assert match, object_id
    return match.group("prefix")


def as_json(obj: Any) -> Any:
    """An SDK object as the plain JSON the client itself would encode (nested objects too)."""
    return json.loads(json.dumps(obj.to_json(), cls=SubObjectEncoder))


def new_invoice(sdk: processout.ProcessOut, **fields: Any) -> processout.Invoice:
    return sdk.new_invoice().create(
        {"name": "Amazing item", "amount": "9.99", "currency": "EUR", **fields}
    )


# --- invoices --------------------------------------------------------------------------


def test_invoice_create_find_all_update_delete(
    sdk: processout.ProcessOut, project: IssuedKeys
) -> None:
    invoice = sdk.new_invoice().create(
        {
            "name": "Amazing item",
            "order_id": "000001",
            "amount": "4.99",
            "currency": "aud",
            "statement_descriptor": "amazing item",
            "metadata": {"k": "v"},
            "return_url": "https://shop.example/return",
        }
    )
    assert isinstance(invoice, processout.Invoice)
    assert prefix(invoice.id) == "iv_"
    assert prefix(invoice.transaction_id) == "tr_"
    assert invoice.project_id == project.project.id
    assert invoice.amount == "4.99"
    assert invoice.currency == "AUD"
    assert invoice.name == "Amazing item"
    assert invoice.order_id == "000001"
    assert invoice.metadata == {"k": "v"}
    assert invoice.sandbox is True
    assert invoice.url.endswith(f"/{invoice.id}")
    assert TIME_RE.fullmatch(invoice.created_at)
    assert invoice.details == []

    found = sdk.new_invoice().find(invoice.id)
    assert as_json(found) == as_json(invoice)

    other = new_invoice(sdk)
    listed = sdk.new_invoice().all()
    assert [iv.id for iv in listed] == [other.id, invoice.id]
    assert all(isinstance(iv, processout.Invoice) for iv in listed)

    updated = sdk.new_invoice().update(invoice.id, {"amount": "5.25"})
    assert updated.id == invoice.id
    assert updated.amount == "5.25"
    assert updated.name == "Amazing item"
    assert sdk.new_invoice().find(invoice.id).amount == "5.25"

    assert sdk.new_invoice().delete(invoice.id) is True
    with pytest.raises(NotFoundError) as err:
        sdk.new_invoice().find(invoice.id)
    assert err.value.code == "resource.invoice.not-found"
    assert invoice.id in err.value.message
    assert [iv.id for iv in sdk.new_invoice().all()] == [other.id]


def test_invoice_sub_objects_round_trip(sdk: processout.ProcessOut) -> None:
    invoice = sdk.new_invoice().create(
        {
            "name": "Basket",
            "amount": "20.18",
            "currency": "EUR",
            "details": DETAILS,
            "shipping": SHIPPING,
            "tax": TAX,
            "risk": RISK,
            "device": DEVICE,
        }
    )
    for inv in (invoice, sdk.new_invoice().find(invoice.id)):
        assert inv.amount == "20.18"
        assert len(inv.details) == 2
        first, second = inv.details
        assert isinstance(first, processout.InvoiceDetail)
        assert prefix(first.id) == "iv_det_"
        assert prefix(second.id) == "iv_det_"
        assert first.id != second.id
        for name, value in DETAILS[0].items():
            if name != "discount_amount":
                assert getattr(first, name) == value, name
        assert first.discount_amount == "0.5"
        assert (second.name, second.amount, second.quantity) == ("Gift wrap", "1.99", 1)
        assert second.metadata == {}

        shipping = inv.shipping
        assert isinstance(shipping, processout.InvoiceShipping)
        assert shipping.amount == "5.5"
        assert shipping.method == "home"
        assert shipping.provider == "La Poste"
        assert shipping.delay == "express"
        assert shipping.country_code == "FR"
        assert shipping.phone_number == "+33612345678"
        assert shipping.first_name == "Jane"
        assert shipping.last_name == "Doe"
        assert shipping.email == "jane@example.com"
        assert shipping.relay_store_name == "Relais"
        assert shipping.address2 is None
        assert isinstance(shipping.phone, processout.InvoiceShippingPhone)
        assert shipping.phone.number == "612345678"
        assert shipping.phone.dialing_code == "0033"
        assert re.fullmatch(r"2030-01-02T03:04:05(\.0+)?Z", shipping.expects_shipping_at)

        assert isinstance(inv.tax, processout.InvoiceTax)
        assert (inv.tax.amount, inv.tax.rate) == ("1.2", "20")
        assert isinstance(inv.risk, processout.InvoiceRisk)
        assert (inv.risk.score, inv.risk.is_legit, inv.risk.skip_gateway_rules) == (
            "42",
            True,
            False,
        )
        assert isinstance(inv.device, processout.InvoiceDevice)
        assert inv.device.channel == "web"
        assert inv.device.ip_address == "203.0.113.9"
        assert inv.device.platform == "linux"
        assert inv.device.id == "device-1"


def test_invoice_update_sub_objects(sdk: processout.ProcessOut) -> None:
    invoice = new_invoice(sdk, details=DETAILS, shipping=SHIPPING, tax=TAX)
    updated = sdk.new_invoice().update(
        invoice.id,
        {
            "amount": "12.00",
            "tax": {"amount": "2.00", "rate": "5.5"},
            "details": [{"name": "Replacement", "amount": "12.00"}],
            "shipping": {"amount": "0", "method": "relay", "city": "Lyon"},
        },
    )
    found = sdk.new_invoice().find(invoice.id)
    for inv in (updated, found):
        assert inv.amount == "12"
        assert (inv.tax.amount, inv.tax.rate) == ("2", "5.5")
        assert [(d.name, d.amount) for d in inv.details] == [("Replacement", "12")]
        assert prefix(inv.details[0].id) == "iv_det_"
        assert inv.shipping.method == "relay"
        assert inv.shipping.city == "Lyon"
        assert inv.shipping.amount == "0"
        assert inv.shipping.first_name is None
        assert inv.name == "Amazing item"


def test_update_of_a_found_invoice_sends_it_back_whole(sdk: processout.ProcessOut) -> None:
    """update() on a found invoice re-sends its details (with their ids), shipping and tax."""
    invoice = new_invoice(sdk, details=DETAILS, shipping=SHIPPING, tax=TAX)
    found = sdk.new_invoice().find(invoice.id)
    updated = found.update(found.id, {"amount": "30.00"})
    assert updated.amount == "30"
    again = sdk.new_invoice().find(invoice.id)
    assert [(d.name, d.amount, d.quantity) for d in again.details] == [
        ("Amazing item", "4.5", 2),
        ("Gift wrap", "1.99", 1),
    ]
    assert again.details[0].metadata == {"sku": "AMZ-1"}
    assert (again.shipping.amount, again.shipping.city) == ("5.5", "Paris")
    assert again.shipping.phone.dialing_code == "0033"
    assert (again.tax.amount, again.tax.rate) == ("1.2", "20")


def test_invoice_all_with_limit_and_expand(sdk: processout.ProcessOut) -> None:
    jane = sdk.new_customer().create({"email": "jane@example.com", "first_name": "Jane"})
    oldest = new_invoice(sdk, customer_id=jane.id)
    middle = new_invoice(sdk)
    newest = new_invoice(sdk, customer_id=jane.id)
    page = sdk.new_invoice().all({"limit": 2, "expand": ["customer"]})
    assert [iv.id for iv in page] == [newest.id, middle.id]
    assert isinstance(page[0].customer, processout.Customer)
    assert page[0].customer.id == jane.id
    assert page[0].customer.email == "jane@example.com"
    assert page[0].customer_id == jane.id
    assert page[1].customer is None
    rest = sdk.new_invoice().all({"limit": 2, "start_after": middle.id})
    assert [iv.id for iv in rest] == [oldest.id]
    assert rest[0].customer is None  # not expanded
    found = sdk.new_invoice().find(oldest.id, {"expand": ["customer"]})
    assert found.customer.first_name == "Jane"


def test_invoice_customer_assign_and_fetch(sdk: processout.ProcessOut) -> None:
    invoice = new_invoice(sdk)
    customer = sdk.new_customer().create({"email": "buyer@example.com", "last_name": "Buyer"})
    assigned = invoice.assign_customer(customer.id)
    assert isinstance(assigned, processout.Customer)
    assert assigned.id == customer.id
    assert assigned.email == "buyer@example.com"
    fetched = sdk.new_invoice().find(invoice.id).fetch_customer()
    assert isinstance(fetched, processout.Customer)
    assert as_json(fetched) == as_json(assigned)
    assert sdk.new_invoice().find(invoice.id).customer_id == customer.id

    with pytest.raises(NotFoundError) as err:
        invoice.assign_customer("cust_" + "0" * 32)
    assert err.value.code == "resource.customer.not-found"
    assert sdk.new_invoice().find(invoice.id).customer_id == customer.id

    # Once the customer is deleted, the invoice keeps its id but the customer is gone.
    assert customer.delete() is True
    with pytest.raises(NotFoundError) as err:
        invoice.fetch_customer()
    assert err.value.code == "resource.customer.not-found"
    (listed,) = sdk.new_invoice().all({"expand": ["customer"]})
    assert listed.customer_id == customer.id
    assert listed.customer is None


def test_fetch_customer_of_an_invoice_without_one(sdk: processout.ProcessOut) -> None:
    invoice = new_invoice(sdk)
    with pytest.raises(ValidationError) as err:
        invoice.fetch_customer()
    assert err.value.code == "invoice.no-customer"


# --- customers -------------------------------------------------------------------------


def test_customer_create_find_all_save_delete(
    sdk: processout.ProcessOut, project: IssuedKeys
) -> None:
    customer = sdk.new_customer().create(
        {
            "email": "jane@example.com",
            "first_name": "Jane",
            "last_name": "Doe",
            "company_name": "Doe & Co",
            "address1": "1 Rue de Rivoli",
            "city": "Paris",
            "zip": "75001",
            "country_code": "fr",
            "ip_address": "198.51.100.4",
            "phone": {"number": "612345678", "dialing_code": "33"},
            "phone_number": "+33612345678",
            "legal_document": "X123",
            "date_of_birth": "1990-04-01",
            "is_business": False,
            "sex": "female",
            "metadata": {"crm": "42"},
            "reference_id": "crm-42",
            "registered_at": "2020-01-02T03:04:05Z",
            "balance": "10.00",
            "currency": "EUR",
        }
    )
    assert isinstance(customer, processout.Customer)
    assert prefix(customer.id) == "cust_"
    assert customer.project_id == project.project.id
    assert customer.sandbox is True
    assert TIME_RE.fullmatch(customer.created_at)
    assert customer.country_code == "FR"
    assert isinstance(customer.phone, processout.CustomerPhone)
    assert (customer.phone.number, customer.phone.dialing_code) == ("612345678", "33")
    assert customer.balance == "10"
    assert customer.currency == "EUR"
    assert customer.registered_at.startswith("2020-01-02T03:04:05")
    assert customer.metadata == {"crm": "42"}

    found = sdk.new_customer().find(customer.id)
    assert as_json(found) == as_json(customer)

    # save() sends every field back, balance without its currency.
    found.first_name = "Janet"
    found.city = "Lyon"
    saved = found.save()
    assert saved is found
    assert (saved.first_name, saved.city) == ("Janet", "Lyon")
    again = sdk.new_customer().find(customer.id)
    assert as_json(again) == {**as_json(customer), "first_name": "Janet", "city": "Lyon"}

    other = sdk.new_customer().create({"email": "other@example.com"})
    listed = sdk.new_customer().all()
    assert [c.id for c in listed] == [other.id, customer.id]
    assert all(isinstance(c, processout.Customer) for c in listed)
    assert [c.id for c in sdk.new_customer().all({"limit": 1})] == [other.id]

    assert again.delete() is True
    with pytest.raises(NotFoundError) as err:
        sdk.new_customer().find(customer.id)
    assert err.value.code == "resource.customer.not-found"
    assert [c.id for c in sdk.new_customer().all()] == [other.id]


def test_customer_created_with_nothing(sdk: processout.ProcessOut) -> None:
    customer = sdk.new_customer().create()
    assert prefix(customer.id) == "cust_"
    assert customer.email is None
    assert customer.metadata == {}
    customer.email = "later@example.com"
    customer.save()
    assert sdk.new_customer().find(customer.id).email == "later@example.com"


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "abc"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": None}, "currency"),
        ({"details": [{"name": "no amount"}]}, "details[0].amount"),
        ({"shipping": {"country_code": "ZZ"}}, "shipping.country_code"),
        ({"device": {"ip_address": "999.1.1.1"}}, "device.ip_address"),
    ],
)
def test_validation_errors_raise_validation_error(
    sdk: processout.ProcessOut, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        sdk.new_invoice().create({"name": "x", "amount": "1.00", "currency": "EUR", **fields})
    assert err.value.code.startswith("request.validation."), err.value.code
    assert err.value.message.startswith(f"{field}:"), err.value.message
    assert sdk.new_invoice().all() == []


def test_invalid_amount_on_update(sdk: processout.ProcessOut) -> None:
    invoice = new_invoice(sdk, currency="JPY", amount="100")
    with pytest.raises(ValidationError) as err:
        sdk.new_invoice().update(invoice.id, {"amount": "1.5"})
    assert err.value.code == "request.validation.invalid-amount"
    assert "amount" in err.value.message
    assert sdk.new_invoice().find(invoice.id).amount == "100"


def test_customer_validation_errors(sdk: processout.ProcessOut) -> None:
    for fields, field in (
        ({"email": "nope"}, "email"),
        ({"country_code": "ZZ"}, "country_code"),
        ({"ip_address": "1.2.3.400"}, "ip_address"),
    ):
        with pytest.raises(ValidationError) as err:
            sdk.new_customer().create(fields)
        assert err.value.message.startswith(f"{field}:"), err.value.message
    assert sdk.new_customer().all() == []


def test_wrong_key_raises_authentication_error(server: RunningServer, project: IssuedKeys) -> None:
    for username, secret in (
        (project.processout_username, "key_sandbox_" + "x" * 40),
        ("test-proj_" + "x" * 32, project.processout_password),
        (project.project.id, project.processout_password),  # a sandbox key as live
        (project.processout_username, ""),
    ):
        client = processout.ProcessOut(username, secret)
        client.host = server.url
        with pytest.raises(AuthenticationError) as err:
            client.new_invoice().all()
        assert err.value.code == "request.authentication.invalid"
        assert err.value.message
        assert secret not in err.value.message or not secret
        with pytest.raises(AuthenticationError):
            client.new_customer().create({"email": "a@example.com"})


def test_unknown_ids_raise_not_found(sdk: processout.ProcessOut) -> None:
    unknown_invoice, unknown_customer = "iv_" + "0" * 32, "cust_" + "0" * 32
    calls: list[tuple[Callable[[], object], str, str]] = [
        (lambda: sdk.new_invoice().find(unknown_invoice), "invoice", unknown_invoice),
        (
            lambda: sdk.new_invoice().update(unknown_invoice, {"amount": "1"}),
            "invoice",
            unknown_invoice,
        ),
        (lambda: sdk.new_invoice().delete(unknown_invoice), "invoice", unknown_invoice),
        (
            lambda: sdk.new_invoice({"id": unknown_invoice}).fetch_customer(),
            "invoice",
            unknown_invoice,
        ),
        (lambda: sdk.new_customer().find(unknown_customer), "customer", unknown_customer),
        (lambda: sdk.new_customer({"id": unknown_customer}).save(), "customer", unknown_customer),
        (lambda: sdk.new_customer({"id": unknown_customer}).delete(), "customer", unknown_customer),
        (lambda: new_invoice(sdk, customer_id=unknown_customer), "customer", unknown_customer),
    ]
    for call, kind, object_id in calls:
        with pytest.raises(NotFoundError) as err:
            call()
        assert err.value.code == f"resource.{kind}.not-found"
        assert object_id in err.value.message


def test_other_projects_objects_are_not_found(
    sdk: processout.ProcessOut, server: RunningServer
) -> None:
    keys = server.create_project("other")
    other = processout.ProcessOut(keys.processout_username, keys.processout_password)
    other.host = server.url
    invoice = new_invoice(sdk)
    customer = sdk.new_customer().create({"email": "mine@example.com"})
    with pytest.raises(NotFoundError):
        other.new_invoice().find(invoice.id)
    with pytest.raises(NotFoundError):
        other.new_customer().find(customer.id)
    with pytest.raises(NotFoundError):
        other.new_invoice().delete(invoice.id)
    with pytest.raises(NotFoundError):
        other.new_customer({"id": customer.id}).delete()
    theirs = new_invoice(other)
    with pytest.raises(NotFoundError):
        theirs.assign_customer(customer.id)
    assert sdk.new_invoice().find(invoice.id).amount == "9.99"
    assert sdk.new_customer().find(customer.id).email == "mine@example.com"
