"""Domain objects -> ProcessOut JSON objects (decimal-string amounts, RFC 3339 times)."""

from __future__ import annotations

from typing import Any

import msgspec

from settle.clock import rfc3339
from settle.customers.models import Customer
from settle.invoices import vat
from settle.invoices.models import Invoice, InvoiceLine
from settle.money import format_amount
from settle.payments.models import Card, Operation, Token, Transaction
from settle.projects.models import Project


def _time(us: int | None) -> str | None:
    return None if us is None else rfc3339(us)


def _money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else format_amount(minor, currency)


def line(item: InvoiceLine, currency: str) -> dict[str, Any]:
    # A detail's amount includes its tax, as the invoice's does: a line defined excluding VAT
    # (Reepay lets a line say so) shows its VAT-inclusive unit price here.
    unit = item.amount if item.amount_incl_vat else vat.of_line(item).unit_amount
    return {
        "id": item.id,
        "name": item.name,
        "type": item.type,
        "amount": format_amount(unit, currency),
        "quantity": item.quantity,
        "reference": item.reference,
        "description": item.description,
        "brand": item.brand,
        "model": item.model,
        "discount_amount": _money(item.discount_amount, currency),
        "condition": item.condition,
        "marketplace_merchant": item.marketplace_merchant,
        "marketplace_merchant_is_business": item.marketplace_merchant_is_business,
        "marketplace_merchant_created_at": _time(item.marketplace_merchant_created_at),
        "category": item.category,
        "metadata": item.metadata,
    }


def invoice(iv: Invoice, checkout_url: str) -> dict[str, Any]:
    t = iv.terms
    c = t.currency
    attrs = t.attributes
    shipping = attrs.get("shipping")
    if shipping is not None:
        shipping = {"amount": _money(t.shipping_amount, c), **shipping}
    tax = None
    # The VAT of lines carrying rates (an invoice made through Reepay), else the tax given.
    stated = vat.stated_tax(iv)
    # A tax with neither part is stored as no tax (two NULL columns): render it so at once.
    if stated is not None and (stated.amount is not None or stated.rate is not None):
        tax = {"amount": _money(stated.amount, c), "rate": stated.rate}
    return {
        "id": iv.id,
        "project_id": iv.project_id,
        "subscription_id": None,
        "customer_id": t.customer_id,
        "token_id": t.token_id,
        "transaction_id": iv.transaction_id,
        "details": [line(item, c) for item in iv.lines],
        "name": t.name,
        "order_id": t.order_id,
        "reference_id": t.reference_id,
        "amount": format_amount(t.amount, c),
        "currency": c,
        "metadata": t.metadata,
        "gateway_data": attrs.get("gateway_data", {}),
        "exemption_reason_3ds2": t.exemption_reason_3ds2,
        "sca_exemption_reason": t.sca_exemption_reason,
        "challenge_indicator": t.challenge_indicator,
        "statement_descriptor": t.statement_descriptor,
        "statement_descriptor_phone": t.statement_descriptor_phone,
        "statement_descriptor_city": t.statement_descriptor_city,
        "statement_descriptor_company": t.statement_descriptor_company,
        "statement_descriptor_url": t.statement_descriptor_url,
        "merchant_initiator_type": t.merchant_initiator_type,
        "initiation_type": t.initiation_type,
        "payment_intent": t.payment_intent,
        "payment_type": t.payment_type,
        "require_backend_capture": t.require_backend_capture,
        "card_verification": None,
        "return_url": t.return_url,
        "cancel_url": t.cancel_url,
        "webhook_url": t.webhook_url,
        "sandbox": iv.sandbox,
        "url": checkout_url,
        "created_at": rfc3339(iv.created_at),
        "expires_at": _time(t.expires_at),
        "auto_capture_at": _time(t.auto_capture_at),
        "risk": attrs.get("risk"),
        "device": attrs.get("device"),
        "shipping": shipping,
        "billing": attrs.get("billing"),
        "external_fraud_tools": attrs.get("external_fraud_tools"),
        "unsupported_feature_bypass": attrs.get("unsupported_feature_bypass"),
        "submerchant_id": t.submerchant_id,
        "submerchant": attrs.get("submerchant"),
        "verification": attrs.get("verification"),
        "incremental": None,
        "tax": tax,
    }


def customer(cu: Customer) -> dict[str, Any]:
    return {
        "id": cu.id,
        "project_id": cu.project_id,
        "default_token_id": cu.default_token_id,
        "balance": _money(cu.balance, cu.currency) if cu.currency else None,
        "currency": cu.currency,
        "email": cu.email,
        "first_name": cu.first_name,
        "last_name": cu.last_name,
        "company_name": cu.company_name,
        "address1": cu.address1,
        "address2": cu.address2,
        "city": cu.city,
        "state": cu.state,
        "zip": cu.zip,
        "country_code": cu.country_code,
        "ip_address": cu.ip_address,
        "phone_number": cu.phone_number,
        "phone": msgspec.structs.asdict(cu.phone) if cu.phone is not None else None,
        "legal_document": cu.legal_document,
        "date_of_birth": cu.date_of_birth,
        "is_business": cu.is_business,
        "sex": cu.sex,
        "reference_id": cu.reference_id,
        "metadata": cu.metadata or {},
        "sandbox": cu.sandbox,
        "created_at": rfc3339(cu.created_at),
        "registered_at": _time(cu.registered_at),
    }


def operation(op: Operation) -> dict[str, Any]:
    c = op.currency
    return {
        "id": op.id,
        "transaction_id": op.transaction_id,
        "token_id": op.token_id,
        "card_id": op.card_id,
        "gateway_configuration_id": None,
        "amount": format_amount(op.amount, c),
        "currency": c,
        # ProcessOut's flags: an attempt that failed, or is not finished yet.
        "is_attempt": op.status != "succeeded",
        "has_failed": op.status == "failed",
        "is_accountable": op.status == "succeeded",
        "type": op.type,
        "status": op.status,
        "gateway_operation_id": op.gateway_reference,
        "error_code": op.error_code,
        "error_message": op.error_message,
        "metadata": op.metadata,
        "created_at": rfc3339(op.created_at),
    }


def refund(op: Operation, sandbox: bool) -> dict[str, Any]:
    return {
        "id": op.refund_id,
        "transaction_id": op.transaction_id,
        "amount": format_amount(op.amount, op.currency),
        "reason": op.reason,
        "information": op.information,
        "has_failed": op.status == "failed",
        "status": op.status,
        "metadata": op.metadata,
        "sandbox": sandbox,
        "created_at": rfc3339(op.created_at),
    }


def transaction(tr: Transaction, operations: list[Operation] | None = None) -> dict[str, Any]:
    """``operations``: the transaction's log (None renders it empty: a waiting transaction's,
    or where the log was not loaded)."""
    c = tr.currency
    ops = operations or []
    return {
        "id": tr.id,
        "project_id": tr.project_id,
        "invoice_id": tr.invoice_id,
        "customer_id": tr.customer_id,
        "token_id": tr.token_id,
        "card_id": tr.card_id,
        "name": tr.name,
        "amount": format_amount(tr.amount, c),
        "currency": c,
        "status": tr.status,
        "authorized": tr.authorized_amount > 0,
        "captured": tr.captured_amount > 0,
        "voided": tr.voided_amount > 0,
        "refunded": tr.refunded_amount > 0,
        "chargedback": tr.chargedback_at is not None,
        "authorized_amount": format_amount(tr.authorized_amount, c),
        "captured_amount": format_amount(tr.captured_amount, c),
        "refunded_amount": format_amount(tr.refunded_amount, c),
        "available_amount": format_amount(tr.available_amount, c),
        "voided_amount": format_amount(tr.voided_amount, c),
        "error_code": tr.error_code,
        "error_message": tr.error_message,
        "gateway_name": tr.gateway_name,
        "three_d_s_status": tr.three_d_s_status,
        "cvc_check": tr.cvc_check,
        "avs_check": tr.avs_check,
        "metadata": tr.metadata,
        "sandbox": tr.sandbox,
        "created_at": rfc3339(tr.created_at),
        "authorized_at": _time(tr.authorized_at),
        "captured_at": _time(tr.captured_at),
        "voided_at": _time(tr.voided_at),
        "refunded_at": _time(tr.refunded_at),
        "chargedback_at": _time(tr.chargedback_at),
        "operations": [operation(op) for op in ops],
        "refunds": [refund(op, tr.sandbox) for op in ops if op.refund_id is not None],
    }


def card(cd: Card) -> dict[str, Any]:
    return {
        "id": cd.id,
        "project_id": cd.project_id,
        "scheme": cd.scheme,
        "type": cd.type,
        "iin": cd.iin,
        "last_4_digits": cd.last_4_digits,
        "exp_month": cd.exp_month,
        "exp_year": cd.exp_year,
        "cvc_check": cd.cvc_check,
        "avs_check": cd.avs_check,
        "name": cd.name,
        "fingerprint": cd.fingerprint or None,
        "metadata": cd.metadata,
        "sandbox": cd.sandbox,
        "created_at": rfc3339(cd.created_at),
    }


def token(tk: Token, cd: Card | None, *, with_card: bool = True) -> dict[str, Any]:
    """``cd``: the token's card (None: gone); shown in full when ``with_card`` (find and
    create always, lists with ``expand=card``)."""
    out: dict[str, Any] = {
        "id": tk.id,
        "customer_id": tk.customer_id,
        "card_id": tk.card_id,
        "type": "card",
        "description": tk.description,
        "metadata": tk.metadata,
        "is_default": tk.is_default,
        # Chargeable while its card can be charged (not anonymized).
        "is_chargeable": cd is not None and cd.anonymized_at is None,
        "created_at": rfc3339(tk.created_at),
    }
    if cd is not None and with_card:
        out["card"] = card(cd)
    return out


def project(pr: Project) -> dict[str, Any]:
    return {
        "id": pr.id,
        "name": pr.name,
        "default_currency": pr.default_currency,
        "created_at": rfc3339(pr.created_at),
    }
