"""``processout.render``: domain objects to ProcessOut JSON, in-process. Money is exact decimal
strings in the currency's own exponent (JPY 0, EUR 2, KWD 3), absent values are null, and
times are RFC 3339 UTC with microseconds."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from settle.api.processout import render
from settle.clock import MAX_US, MIN_US
from settle.customers.models import Customer, Phone
from settle.invoices.models import Invoice, InvoiceLine, InvoiceState, InvoiceTerms, Tax
from settle.payments.models import Transaction, TransactionStatus
from settle.projects.models import Project

T0 = 1_682_327_833_370_001  # 2023-04-24T09:17:13.370001Z
T0_TEXT = "2023-04-24T09:17:13.370001Z"

# (currency, minor units, ProcessOut's decimal string)
MONEY = [
    ("JPY", 0, "0"),
    ("JPY", 5, "5"),
    ("JPY", 500, "500"),
    ("JPY", 123_456_789, "123456789"),
    ("EUR", 0, "0"),
    ("EUR", 5, "0.05"),
    ("EUR", 10, "0.1"),
    ("EUR", 400, "4"),
    ("EUR", 499, "4.99"),
    ("EUR", 10**15 - 1, "9999999999999.99"),  # past a float's exact digits
    ("KWD", 0, "0"),
    ("KWD", 1, "0.001"),
    ("KWD", 1000, "1"),
    ("KWD", 1005, "1.005"),
    ("KWD", 1230, "1.23"),
    ("KWD", 10**15 - 1, "999999999999.999"),
]


def line(amount: int, **fields: Any) -> InvoiceLine:
    return InvoiceLine(id="iv_det_1", name="item", amount=amount, **fields)


def invoice(
    amount: int,
    currency: str,
    *,
    lines: list[InvoiceLine] | None = None,
    created_at: int = T0,
    **terms: Any,
) -> Invoice:
    return Invoice(
        id="iv_1",
        project_id="proj_1",
        sandbox=True,
        transaction_id="tr_1",
        state=InvoiceState.PENDING,
        created_at=created_at,
        updated_at=created_at,
        version=1,
        terms=InvoiceTerms(amount=amount, currency=currency, **terms),
        lines=lines or [],
    )


def customer(**fields: Any) -> Customer:
    return Customer(
        id="cust_1",
        project_id="proj_1",
        sandbox=False,
        created_at=T0,
        updated_at=T0,
        **fields,
    )


def transaction(
    currency: str, amount: int, *, status: TransactionStatus = "waiting", **fields: Any
) -> Transaction:
    return Transaction(
        id="tr_1",
        project_id="proj_1",
        sandbox=True,
        invoice_id="iv_1",
        customer_id=None,
        name=None,
        amount=amount,
        currency=currency,
        status=status,
        created_at=T0,
        updated_at=T0,
        **fields,
    )


def encodable(rendered: dict[str, Any]) -> dict[str, Any]:
    """What the client receives: the rendering through JSON and back."""
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(rendered))
    return decoded


# --- invoices -------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "minor", "text"), MONEY)
def test_invoice_money_is_exact_in_the_currencys_exponent(
    currency: str, minor: int, text: str
) -> None:
    iv = invoice(
        minor,
        currency,
        lines=[line(minor, discount_amount=minor)],
        tax=Tax(amount=minor, rate="25"),
        shipping_amount=minor,
        attributes={"shipping": {"city": "Oslo"}},
    )
    out = encodable(render.invoice(iv, "https://pay.example/iv_1"))
    assert (out["amount"], out["currency"]) == (text, currency)
    assert out["details"][0]["amount"] == text
    assert out["details"][0]["discount_amount"] == text
    assert out["tax"] == {"amount": text, "rate": "25"}
    assert out["shipping"] == {"amount": text, "city": "Oslo"}


def test_invoice_absent_values_are_null() -> None:
    out = encodable(render.invoice(invoice(499, "EUR", lines=[line(100)]), "u"))
    assert out["tax"] is None
    assert out["shipping"] is None
    assert out["customer_id"] is None and out["token_id"] is None
    assert out["expires_at"] is None and out["auto_capture_at"] is None
    assert out["risk"] is None and out["device"] is None and out["billing"] is None
    assert out["gateway_data"] == {} and out["metadata"] == {}
    detail = out["details"][0]
    assert detail["discount_amount"] is None
    assert detail["marketplace_merchant_created_at"] is None
    assert detail["marketplace_merchant_is_business"] is None
    assert detail["metadata"] == {}


def test_invoice_tax_with_neither_part_renders_as_no_tax() -> None:
    iv = invoice(499, "EUR", tax=Tax(amount=None, rate=None))
    assert render.invoice(iv, "u")["tax"] is None
    rate_only = render.invoice(invoice(499, "EUR", tax=Tax(rate="12.5")), "u")
    assert rate_only["tax"] == {"amount": None, "rate": "12.5"}


@pytest.mark.parametrize(
    ("currency", "unit", "text"),
    [("JPY", 1100, "300"), ("EUR", 1100, "3"), ("KWD", 1100, "0.3")],
)
def test_invoice_tax_of_lines_with_rates_is_their_vat_in_the_currencys_exponent(
    currency: str, unit: int, text: str
) -> None:
    # 1100 minor units incl. 10 %: 100 of VAT a unit, x3; the lines' VAT wins over a tax given.
    lines = [line(unit, quantity=3, vat_rate="0.1")]
    out = render.invoice(invoice(3 * unit, currency, lines=lines, tax=Tax(amount=1)), "u")
    assert out["tax"] == {"amount": text, "rate": "10"}


def test_invoice_shipping_without_amount_renders_a_null_amount() -> None:
    iv = invoice(499, "EUR", attributes={"shipping": {"city": "Oslo"}})
    assert render.invoice(iv, "u")["shipping"] == {"amount": None, "city": "Oslo"}


def test_invoice_renders_its_own_fields_and_lines_in_order() -> None:
    lines = [
        InvoiceLine(id=f"iv_det_{i}", name=f"line {i}", amount=100 * i, quantity=i + 1)
        for i in range(3)
    ]
    iv = invoice(
        1005,
        "KWD",
        lines=lines,
        customer_id="cust_1",
        name="Amazing item",
        order_id="000001",
        metadata={"k": "v"},
        require_backend_capture=True,
        attributes={"risk": {"score": "low"}, "gateway_data": {"x": "y"}},
    )
    out = encodable(render.invoice(iv, "https://pay.example/checkout/iv_1"))
    assert out["id"] == "iv_1" and out["project_id"] == "proj_1"
    assert out["transaction_id"] == "tr_1" and out["customer_id"] == "cust_1"
    assert out["url"] == "https://pay.example/checkout/iv_1"
    assert out["sandbox"] is True and out["require_backend_capture"] is True
    assert (out["name"], out["order_id"], out["metadata"]) == ("Amazing item", "000001", {"k": "v"})
    assert out["risk"] == {"score": "low"} and out["gateway_data"] == {"x": "y"}
    assert [(d["id"], d["name"], d["amount"], d["quantity"]) for d in out["details"]] == [
        ("iv_det_0", "line 0", "0", 1),
        ("iv_det_1", "line 1", "0.1", 2),
        ("iv_det_2", "line 2", "0.2", 3),
    ]


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00.000000Z"),
        (T0, T0_TEXT),
        (1_700_000_000_000_000, "2023-11-14T22:13:20.000000Z"),
        (MIN_US, "0001-01-01T00:00:00.000000Z"),
        (MAX_US, "9999-12-31T23:59:59.999999Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
    ],
)
def test_invoice_times_are_rfc3339_utc_with_microseconds(us: int, text: str) -> None:
    iv = invoice(
        1,
        "EUR",
        created_at=us,
        expires_at=us,
        auto_capture_at=us,
        lines=[line(1, marketplace_merchant_created_at=us)],
    )
    out = render.invoice(iv, "u")
    assert out["created_at"] == out["expires_at"] == out["auto_capture_at"] == text
    assert out["details"][0]["marketplace_merchant_created_at"] == text


# --- customers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "minor", "text"), MONEY)
def test_customer_balance_is_exact_in_its_currency(currency: str, minor: int, text: str) -> None:
    out = encodable(render.customer(customer(balance=minor, currency=currency)))
    assert (out["balance"], out["currency"]) == (text, currency)


@pytest.mark.parametrize(
    ("currency", "minor", "text"),
    [("JPY", -500, "-500"), ("EUR", -5, "-0.05"), ("EUR", -1234, "-12.34"), ("KWD", -1, "-0.001")],
)
def test_a_negative_balance_keeps_its_sign(currency: str, minor: int, text: str) -> None:
    assert render.customer(customer(balance=minor, currency=currency))["balance"] == text


def test_customer_absent_values_are_null() -> None:
    out = encodable(render.customer(customer()))
    assert out["balance"] is None and out["currency"] is None
    assert out["phone"] is None and out["registered_at"] is None
    assert out["email"] is None and out["is_business"] is None
    assert out["default_token_id"] is None
    assert out["metadata"] == {}
    assert out["created_at"] == T0_TEXT
    # A currency without a balance: no balance; a balance without a currency cannot be told.
    assert render.customer(customer(currency="EUR"))["balance"] is None
    assert render.customer(customer(balance=100))["balance"] is None


def test_customer_renders_its_fields() -> None:
    out = encodable(
        render.customer(
            customer(
                email="jane@example.com",
                first_name="Jane",
                country_code="DK",
                phone=Phone(number="12345678", dialing_code="+45"),
                is_business=False,
                registered_at=0,
                metadata={"k": "v"},
            )
        )
    )
    assert out["id"] == "cust_1" and out["project_id"] == "proj_1" and out["sandbox"] is False
    assert (out["email"], out["first_name"], out["country_code"]) == (
        "jane@example.com",
        "Jane",
        "DK",
    )
    assert out["phone"] == {"number": "12345678", "dialing_code": "+45"}
    assert out["is_business"] is False
    assert out["registered_at"] == "1970-01-01T00:00:00.000000Z"
    assert out["metadata"] == {"k": "v"}


# --- transactions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "minor", "text"), MONEY)
def test_transaction_amounts_are_exact_in_the_currencys_exponent(
    currency: str, minor: int, text: str
) -> None:
    out = encodable(render.transaction(transaction(currency, minor)))
    assert (out["amount"], out["currency"]) == (text, currency)
    for field in ("authorized", "captured", "refunded", "available", "voided"):
        assert out[f"{field}_amount"] == "0"
    assert out["authorized"] is out["captured"] is out["refunded"] is out["voided"] is False


def test_transaction_amounts_and_flags_follow_its_operations() -> None:
    tr = transaction(
        "KWD",
        10_005,
        status="partially-refunded",
        authorized_amount=10_005,
        captured_amount=10_005,
        refunded_amount=1_005,
        voided_amount=0,
    )
    out = encodable(render.transaction(tr))
    assert out["status"] == "partially-refunded"
    assert (out["amount"], out["authorized_amount"], out["captured_amount"]) == (
        "10.005",
        "10.005",
        "10.005",
    )
    assert (out["refunded_amount"], out["available_amount"], out["voided_amount"]) == (
        "1.005",
        "9",
        "0",
    )
    assert (out["authorized"], out["captured"], out["refunded"], out["voided"]) == (
        True,
        True,
        True,
        False,
    )


def test_transaction_absent_values_are_null_and_time_is_rfc3339() -> None:
    out = encodable(render.transaction(transaction("EUR", 499)))
    assert out["customer_id"] is None and out["name"] is None
    assert out["error_code"] is None and out["error_message"] is None
    assert out["metadata"] == {} and out["operations"] == [] and out["refunds"] == []
    assert out["created_at"] == T0_TEXT
    assert out["invoice_id"] == "iv_1" and out["sandbox"] is True


# --- projects -------------------------------------------------------------------------------


def test_project_renders_with_its_creation_time() -> None:
    project = Project(id="proj_1", name="Shop", default_currency=None, created_at=T0)
    assert render.project(project) == {
        "id": "proj_1",
        "name": "Shop",
        "default_currency": None,
        "created_at": T0_TEXT,
    }
