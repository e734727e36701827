"""The invoice's own rules, as pure functions: each dialect's requests meet the same ones, and
the service checks them where it holds the row (an update is checked against the invoice it
changes, under its lock, not against a copy read before)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from settle.errors import ErrorCode, ValidationError
from settle.invoices import vat
from settle.invoices.models import Invoice, InvoiceChanges, InvoiceTerms, LineInput, Tax

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


def check_tax_of_lines(tax: Tax, lines: Sequence[LineInput]) -> None:
    """A tax given for lines that carry VAT rates (``vat.lines_tax``) must be theirs: their
    VAT is the invoice's tax, shown by both dialects (``vat.stated_tax``), so a different one
    would be stored and shown by neither (it did: the ProcessOut face showed it, the Reepay
    face the lines'). A part left out (None) is not compared: a client that writes back the
    tax it read (the official client's ``Invoice.update``), or only its amount, is served."""
    own = vat.lines_tax(lines)
    if own is None:
        return
    same_amount = tax.amount is None or tax.amount == own.amount
    same_rate = tax.rate is None or (
        own.rate is not None and Decimal(tax.rate) == Decimal(own.rate)
    )
    if not (same_amount and same_rate):
        raise ValidationError(
            "tax: the invoice's tax is the VAT of its lines, which carry VAT rates (it was "
            "made through the Reepay API): it cannot be set apart from them. Leave tax out, "
            "give the tax the invoice shows, or replace the details along with it.",
            field="tax",
        )
