"""The invoice's own rules (settle.invoices.rules), as pure functions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from settle.errors import ValidationError
from settle.invoices.models import InvoiceChanges, InvoiceTerms, LineInput, Tax
from settle.invoices.rules import (
    TAX_EXCEEDS_CODE,
    check_changes,
    check_tax_of_lines,
    check_tax_within,
)


def refused(call: Callable[[], None], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field, info.value.message
    assert info.value.message.startswith(f"{field}:"), info.value.message
    assert info.value.code == TAX_EXCEEDS_CODE


@pytest.mark.parametrize(("amount", "tax"), [(100, 500), (1000, 1001), (0, 1)])
def test_a_tax_larger_than_the_amount_is_refused(amount: int, tax: int) -> None:
    refused(lambda: check_tax_within(amount, Tax(amount=tax)), "tax.amount")


@pytest.mark.parametrize(("amount", "tax"), [(1000, 1000), (1000, 0), (0, 0), (100, 99)])
def test_a_tax_within_the_amount_is_accepted(amount: int, tax: int) -> None:
    check_tax_within(amount, Tax(amount=tax, rate="5"))
    check_tax_within(amount, None)
    check_tax_within(amount, Tax(amount=None, rate="5"))


def _stored(amount: int, tax: int | None) -> InvoiceTerms:
    return InvoiceTerms(
        amount=amount, currency="EUR", tax=None if tax is None else Tax(amount=tax, rate=None)
    )


@pytest.mark.parametrize(
    ("changes", "stored", "field"),
    [
        # A tax larger than the stored amount.
        (InvoiceChanges(tax=Tax(amount=600)), _stored(500, None), "tax.amount"),
        # An amount smaller than the stored tax.
        (InvoiceChanges(amount=100), _stored(500, 200), "amount"),
        # Both given: the resulting amount counts.
        (InvoiceChanges(amount=100, tax=Tax(amount=200)), _stored(500, 0), "tax.amount"),
    ],
)
def test_a_change_is_checked_against_the_resulting_invoice(
    changes: InvoiceChanges, stored: InvoiceTerms, field: str
) -> None:
    refused(lambda: check_changes(changes, stored), field)


@pytest.mark.parametrize(
    ("changes", "stored"),
    [
        (InvoiceChanges(), _stored(500, 500)),
        (InvoiceChanges(amount=1000), _stored(500, 500)),
        (InvoiceChanges(tax=Tax(amount=None, rate="5")), _stored(500, 200)),
        (InvoiceChanges(amount=100, tax=Tax(amount=100)), _stored(500, 400)),
        (InvoiceChanges(amount=100), _stored(500, None)),
    ],
)
def test_a_change_within_the_rules_is_accepted(
    changes: InvoiceChanges, stored: InvoiceTerms
) -> None:
    check_changes(changes, stored)


# 100.00 x2 incl. 25 % and 4.00 excl. 25 %: 41.00 of VAT at 25 %.
RATED = [
    LineInput(amount=10000, quantity=2, vat_rate="0.25"),
    LineInput(amount=400, vat_rate="0.25", amount_incl_vat=False),
]


@pytest.mark.parametrize(
    "tax",
    [
        Tax(amount=4100, rate="25"),
        Tax(amount=4100, rate="25.00"),  # the same percentage
        Tax(amount=4100),
        Tax(rate="25"),
        Tax(),
    ],
)
def test_lines_with_rates_take_only_their_own_tax(tax: Tax) -> None:
    check_tax_of_lines(tax, RATED)


@pytest.mark.parametrize(
    ("tax", "lines"),
    [
        (Tax(amount=4000, rate="25"), RATED),
        (Tax(amount=4100, rate="20"), RATED),
        (Tax(amount=0), RATED),
        # Two rates: none to match.
        (Tax(rate="25"), [*RATED, LineInput(amount=100, vat_rate="0.1")]),
    ],
)
def test_lines_with_rates_refuse_another_tax(tax: Tax, lines: list[LineInput]) -> None:
    with pytest.raises(ValidationError) as info:
        check_tax_of_lines(tax, lines)
    assert info.value.field == "tax" and info.value.message.startswith("tax:")


def test_lines_without_rates_take_any_tax() -> None:
    check_tax_of_lines(Tax(amount=123, rate="7"), [LineInput(amount=1000)])
    check_tax_of_lines(Tax(amount=123, rate="7"), [])
