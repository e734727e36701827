"""Domain objects -> Reepay JSON objects: minor units, VAT figures per line, RFC 3339 times.

Absent optional values are left out (the vendor's schema has no nulls). An object created
through another dialect is shown as this one would have made it: its id stands in for a
handle it lacks, a line without a VAT rate carries no VAT and includes what it has, and a
ProcessOut billing or shipping object becomes Reepay's address.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from settle.api.reepay.base import encode
from settle.billing.refunds import CreditNote, NoteLine
from settle.clock import rfc3339
from settle.customers.models import Customer
from settle.invoices import vat
from settle.invoices.models import Invoice, InvoiceLine, InvoiceState
from settle.invoices.totals import CustomerTotals
from settle.payments.models import Transaction

S = InvoiceState
# Domain invoice states -> Reepay's (the same words; Reepay's "dunning" has no counterpart).
STATES: Final[dict[InvoiceState, str]] = {
    S.CREATED: "created",
    S.PENDING: "pending",
    S.AUTHORIZED: "authorized",
    S.SETTLED: "settled",
    S.CANCELLED: "cancelled",
    S.FAILED: "failed",
}
INVOICE_TYPE: Final = "co"  # a one-time customer invoice
LINE_ORIGIN: Final = "ondemand"
# A credit note line's text when its refund gave none (the vendor's requires one).
CREDIT_NOTE_TEXT: Final = "Refund"

# Reepay customer field -> the domain's CustomerFields field.
_CUSTOMER_FIELDS: Final = (
    ("email", "email"),
    ("address", "address1"),
    ("address2", "address2"),
    ("city", "city"),
    ("country", "country_code"),
    ("phone", "phone_number"),
    ("company", "company_name"),
    ("vat", "vat"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("postal_code", "zip"),
)
# A ProcessOut billing/shipping object's fields -> Reepay's address fields.
_PROCESSOUT_ADDRESS: Final = (
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("address1", "address"),
    ("address2", "address2"),
    ("city", "city"),
    ("state", "state_or_province"),
    ("zip", "postal_code"),
    ("country_code", "country"),
    ("email", "email"),
    ("phone_number", "phone"),
)
# Customer counters of subscriptions, additional costs and credits: none of these exist here.
_NO_SUBSCRIPTIONS: Final = {
    "subscriptions": 0,
    "active_subscriptions": 0,
    "trial_active_subscriptions": 0,
    "trial_cancelled_subscriptions": 0,
    "expired_subscriptions": 0,
    "on_hold_subscriptions": 0,
    "cancelled_subscriptions": 0,
    "non_renewing_subscriptions": 0,
    "pending_additional_costs": 0,
    "pending_additional_cost_amount": 0,
    "transferred_additional_costs": 0,
    "transferred_additional_cost_amount": 0,
    "pending_credits": 0,
    "pending_credit_amount": 0,
    "transferred_credits": 0,
    "transferred_credit_amount": 0,
}


def handle_of_customer(cu: Customer) -> str:
    return cu.handle or cu.id


def customer(cu: Customer, totals: CustomerTotals, *, deleted: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"handle": handle_of_customer(cu)}
    for name, field in _CUSTOMER_FIELDS:
        value = getattr(cu, field)
        if value is not None:
            out[name] = value
    out["test"] = cu.sandbox
    out["created"] = rfc3339(cu.created_at)
    if deleted is not None:
        out["deleted"] = rfc3339(deleted)
    out.update(_NO_SUBSCRIPTIONS)
    for name, state in (
        ("pending", S.PENDING),
        ("dunning", None),
        ("settled", S.SETTLED),
        ("cancelled", S.CANCELLED),
        ("failed", S.FAILED),
    ):
        found = totals.of(state) if state is not None else None
        out[f"{name}_invoices"] = found.count if found else 0
        out[f"{name}_amount"] = found.amount if found else 0
    out["refunded_amount"] = totals.refunded_amount
    return out


# A shop's lines repeat a few rates: each one's Decimal made once (Decimals are immutable).
@lru_cache(maxsize=256)
def _decimal(rate: str) -> Decimal:
    return Decimal(rate)


def _rate(line: InvoiceLine) -> Decimal | int:
    return _decimal(line.vat_rate) if line.vat_rate is not None else 0


def order_line(line: InvoiceLine, timestamp: str) -> dict[str, Any]:
    """``timestamp``: the invoice's creation, as RFC 3339 (made once for all its lines)."""
    figures = vat.of_line(line)
    return {
        "id": line.id,
        "ordertext": line.name or line.description or "",
        "amount": figures.amount,
        "vat": _rate(line),
        "quantity": line.quantity,
        "origin": LINE_ORIGIN,
        "timestamp": timestamp,
        "amount_vat": figures.amount_vat,
        "amount_ex_vat": figures.amount_ex_vat,
        "unit_amount": figures.unit_amount,
        "unit_amount_vat": figures.unit_amount_vat,
        "unit_amount_ex_vat": figures.unit_amount_ex_vat,
        "amount_defined_incl_vat": line.amount_incl_vat,
    }


def _address(attributes: dict[str, Any], name: str, processout_name: str) -> dict[str, Any] | None:
    own = attributes.get(name)
    if isinstance(own, dict):
        return own
    other = attributes.get(processout_name)
    if not isinstance(other, dict):
        return None
    translated = {
        ours: other[theirs] for theirs, ours in _PROCESSOUT_ADDRESS if other.get(theirs) is not None
    }
    return translated or None


def invoice(
    iv: Invoice,
    *,
    customer_handle: str | None,
    transaction: Transaction | None,
    transactions: list[dict[str, Any]] | None = None,
    credit_notes: Sequence[CreditNote] = (),
) -> dict[str, Any]:
    """``transactions``: the payment's operations as the vendor's transactions
    (``api.reepay.transactions``); ``credit_notes``: its refunds' (``billing.refunds``)."""
    t = iv.terms
    amount_vat = vat.included_vat(iv)
    created = rfc3339(iv.created_at)
    out: dict[str, Any] = {
        "id": iv.id,
        "handle": t.handle or iv.id,
    }
    if customer_handle is not None:
        out["customer"] = customer_handle
    out.update(
        {
            "state": STATES[iv.state],
            "type": INVOICE_TYPE,
            "amount": t.amount,
            "currency": t.currency,
            "due": created,
            "created": created,
            "credits": [],
            "discount_amount": 0,
            "org_amount": t.amount,
            "amount_vat": amount_vat,
            "amount_ex_vat": t.amount - amount_vat,
            "settled_amount": transaction.captured_amount if transaction else 0,
            "refunded_amount": transaction.refunded_amount if transaction else 0,
            "authorized_amount": transaction.authorized_amount if transaction else 0,
            "credited_amount": 0,
            "order_lines": [order_line(line, created) for line in iv.lines],
            "additional_costs": [],
            "transactions": transactions or [],
            "credit_notes": [credit_note(n, iv.id, customer_handle) for n in credit_notes],
        }
    )
    if transaction is not None:
        for name, at in (
            ("authorized", transaction.authorized_at),
            ("settled", transaction.captured_at),
        ):
            if at is not None:
                out[name] = rfc3339(at)
    if iv.state is S.CANCELLED:
        voided = transaction.voided_at if transaction else None
        out["cancelled"] = rfc3339(voided if voided is not None else iv.updated_at)
    elif iv.state is S.FAILED:
        out["failed"] = rfc3339(transaction.updated_at if transaction else iv.updated_at)
    attrs = t.attributes
    for name, processout_name in (("billing_address", "billing"), ("shipping_address", "shipping")):
        found = _address(attrs, name, processout_name)
        if found is not None:
            out[name] = found
    for name in ("cost_center", "purchase_order_number"):
        if attrs.get(name) is not None:
            out[name] = attrs[name]
    return out


def _note_line(line: NoteLine, created: str) -> dict[str, Any]:
    """A line the refund was asked with, its figures by the order lines' rule."""
    figures = line.figures
    out: dict[str, Any] = {
        "amount": figures.amount,
        "text": line.text,
        "quantity": line.quantity,
        "vat": _decimal(line.vat_rate) if line.vat_rate is not None else 0,
        "origin": line.origin or LINE_ORIGIN,
        "created": created,
        "amount_incl_vat": figures.amount,
        "amount_ex_vat": figures.amount_ex_vat,
        "unit_amount": figures.unit_amount,
        "unit_amount_vat": figures.unit_amount_vat,
        "unit_amount_ex_vat": figures.unit_amount_ex_vat,
        "amount_incl_vat_defined": line.amount_incl_vat,
    }
    if line.order_line_id is not None:
        out["order_line_id"] = line.order_line_id
    return out


def credit_note(note: CreditNote, invoice_id: str, customer_handle: str | None) -> dict[str, Any]:
    """The vendor's InvoiceCreditNote: the lines the refund was asked with (``note_lines``),
    else one line of the whole credit, which states no VAT rate: its VAT is a share of the
    invoice's (``billing.refunds.credit_notes``), not a rate's."""
    created = rfc3339(note.created_at)
    out: dict[str, Any] = {"id": note.id, "invoice": invoice_id}
    if customer_handle is not None:
        out["customer"] = customer_handle
    out.update(
        {
            "amount": note.amount,
            "amount_vat": note.amount_vat,
            "amount_ex_vat": note.amount_ex_vat,
            "currency": note.currency,
            "created": created,
            "transaction": note.operation_id,
            "credit_note_lines": [_note_line(line, created) for line in note.lines]
            or [
                {
                    "amount": note.amount,
                    "text": note.text or CREDIT_NOTE_TEXT,
                    "quantity": 1,
                    "origin": LINE_ORIGIN,
                    "created": created,
                    "amount_incl_vat": note.amount,
                    "amount_ex_vat": note.amount_ex_vat,
                    "unit_amount": note.amount,
                    "unit_amount_vat": note.amount_vat,
                    "unit_amount_ex_vat": note.amount_ex_vat,
                    "amount_incl_vat_defined": True,
                }
            ],
        }
    )
    return out


def page(
    *, size: int, range_: str, start: str, end: str, content: list[bytes], token: str | None
) -> bytes:
    """A list answer around already encoded items (``content``)."""
    head = encode({"size": size, "count": len(content), "from": start, "to": end, "range": range_})
    tail = b"" if token is None else b',"next_page_token":' + encode(token)
    return head[:-1] + b',"content":[' + b",".join(content) + b"]" + tail + b"}"
