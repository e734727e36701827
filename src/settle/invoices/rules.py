"""The invoice's own rules, as pure functions: each dialect's requests meet the same ones, and
the service checks them where it holds the row (an update is checked against the invoice it
changes, under its lock, not against a copy read before)."""

from __future__ import annotations

from typing import Final

from settle.errors import ErrorCode, ValidationError
from settle.invoices import vat
from settle.invoices.models import Invoice, InvoiceChanges, InvoiceTerms, Tax

TAX_EXCEEDS_CODE: Final = ErrorCode.TAX_EXCEEDS_AMOUNT


def check_tax_within(amount: int, tax: Tax | None, field: str = "tax.amount") -> None:
    """The tax is included in the amount (seed 001): it cannot be larger."""
    if tax is not None and tax.amount is not None and tax.amount > amount:
        raise ValidationError(
            f"{field}: the tax amount cannot be larger than the invoice amount (the tax is "
            "included in the amount).",
            code=TAX_EXCEEDS_CODE,
            field=field,
        )


def check_changes(changes: InvoiceChanges, stored: InvoiceTerms) -> None:
    """The invoice a change would make keeps the rules. A change may give the amount and the
    tax separately: the resulting pair counts. Names ``tax.amount`` when the change gave a
    tax, else ``amount``."""
    amount = stored.amount if changes.amount is None else changes.amount
    tax = stored.tax if changes.tax is None else changes.tax
    check_tax_within(amount, tax, "amount" if changes.tax is None else "tax.amount")


def check_vat_within(invoice: Invoice, field: str = "amount") -> None:
    """The VAT the invoice shows (its lines' where they carry rates, ``vat.included_vat``) is
    included in its amount: an amount changed below it would show a negative amount ex VAT."""
    if invoice.terms.amount < vat.included_vat(invoice):
        raise ValidationError(
            f"{field}: the amount cannot be less than the VAT of the invoice's lines (the VAT "
            "is included in the amount).",
            code=TAX_EXCEEDS_CODE,
            field=field,
        )
