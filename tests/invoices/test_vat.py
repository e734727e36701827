"""VAT per line and per invoice (settle.invoices.vat): exact, one rounding rule, sums that add
up."""

from __future__ import annotations

import itertools
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from settle.invoices import vat
from settle.invoices.models import (
    Invoice,
    InvoiceLine,
    InvoiceState,
    InvoiceTerms,
    LineInput,
    Tax,
)
from settle.money import EXPONENTS, MAX_MINOR, format_amount, parse_amount

units = st.integers(min_value=0, max_value=MAX_MINOR)
quantities = st.integers(min_value=1, max_value=1_000_000)
# Rates as clients send them: 0 to 1 with up to 6 decimals, common ones more often.
rates = st.one_of(
    st.sampled_from(["0", "0.25", "0.2", "0.19", "0.07", "0.055", "0.125", "1"]),
    st.integers(min_value=0, max_value=10**6).map(lambda n: str(Decimal(n).scaleb(-6))),
)


def exact_half_even(value: Fraction) -> int:
    """The reference: Python rounds a Fraction half to even, exactly."""
    return round(value)


@given(units, quantities, rates, st.booleans())
def test_amount_is_vat_plus_ex_vat_always(unit: int, quantity: int, rate: str, incl: bool) -> None:
    line = vat.line_amounts(unit, quantity, rate, incl_vat=incl)
    assert line.unit_amount == line.unit_amount_vat + line.unit_amount_ex_vat
    assert line.amount == line.amount_vat + line.amount_ex_vat
    assert (line.amount, line.amount_vat, line.amount_ex_vat) == (
        line.unit_amount * quantity,
        line.unit_amount_vat * quantity,
        line.unit_amount_ex_vat * quantity,
    )
    assert (line.unit_amount if incl else line.unit_amount_ex_vat) == unit
    assert 0 <= line.unit_amount_vat <= line.unit_amount


@given(units, rates, st.booleans())
def test_the_one_rounding_rule_is_exact_half_even(unit: int, rate: str, incl: bool) -> None:
    r = Fraction(rate)
    true_vat = unit * r / (1 + r) if incl else unit * r
    assert vat.unit_vat(unit, rate, incl_vat=incl) == exact_half_even(true_vat)


@given(units, rates)
def test_incl_and_excl_round_trip_within_one_minor_unit(unit_ex: int, rate: str) -> None:
    excl = vat.line_amounts(unit_ex, 1, rate, incl_vat=False)
    incl = vat.line_amounts(excl.unit_amount, 1, rate, incl_vat=True)
    assert incl.unit_amount == excl.unit_amount
    assert abs(incl.unit_amount_ex_vat - unit_ex) <= 1
    assert abs(incl.unit_amount_vat - excl.unit_amount_vat) <= 1
    back = vat.line_amounts(incl.unit_amount_ex_vat, 1, rate, incl_vat=False)
    assert abs(back.unit_amount - excl.unit_amount) <= 1


@given(
    st.lists(
        st.builds(
            LineInput,
            amount=units,
            quantity=quantities,
            vat_rate=st.none() | rates,
            amount_incl_vat=st.booleans(),
        ),
        max_size=20,
    )
)
def test_invoice_totals_are_the_sums_of_its_lines(lines: list[LineInput]) -> None:
    figures = [vat.of_line(line) for line in lines]
    totals = vat.invoice_totals(lines)
    assert totals.amount == sum(f.amount for f in figures)
    assert totals.amount_vat == sum(f.amount_vat for f in figures)
    assert totals.amount_ex_vat == sum(f.amount_ex_vat for f in figures)
    assert totals.amount == totals.amount_vat + totals.amount_ex_vat


@pytest.mark.parametrize(
    ("unit", "rate", "incl", "expected_vat"),
    [
        (10000, "0.25", True, 2000),  # 100.00 incl. 25 %: 20.00 VAT
        (10000, "0.25", False, 2500),  # 100.00 excl. 25 %: 25.00 on top
        (1, "0.25", False, 0),  # 0.25 -> 0 (half below: down)
        (2, "0.25", False, 0),  # 0.5 -> 0 (half: to even)
        (6, "0.25", False, 2),  # 1.5 -> 2 (half: to even)
        (10, "0.25", False, 2),  # 2.5 -> 2 (half: to even)
        (14, "0.25", False, 4),  # 3.5 -> 4
        (5, "0.25", True, 1),  # 1 exactly
        (100, "0.07", True, 7),  # 6.542... -> 7
        (0, "0.25", True, 0),
        (12345, "0", True, 0),
        (12345, None, True, 0),
        (200, "1", True, 100),  # 100 % VAT: half of the amount
    ],
)
def test_examples(unit: int, rate: str | None, incl: bool, expected_vat: int) -> None:
    assert vat.unit_vat(unit, rate, incl_vat=incl) == expected_vat


@pytest.mark.parametrize("currency", ["JPY", "EUR", "KWD", "BHD", "CLF"])
def test_every_exponent_the_same_arithmetic_in_minor_units(currency: str) -> None:
    """100 units of the currency's major unit at 25 % including VAT: 20 of them are VAT,
    whatever the exponent, because the arithmetic is in minor units."""
    exponent = EXPONENTS[currency]
    unit = parse_amount("100", currency)
    line = vat.line_amounts(unit, 3, "0.25", incl_vat=True)
    assert format_amount(line.unit_amount_vat, currency) == "20"
    assert format_amount(line.amount_ex_vat, currency) == "240"
    assert line.unit_amount_vat == 20 * 10**exponent


@pytest.mark.parametrize(
    "rate",
    [
        "-0.1",
        "1.01",
        "0.1234567",
        "NaN",
        "Infinity",
        "abc",
        # Beyond the default context's 28 digits: normalize() rounded these to 0.25 and 0.
        "0.2500000000000000000000000000001",
        "1E-999999999",
    ],
)
def test_rates_outside_the_rules_are_refused(rate: str) -> None:
    with pytest.raises(ValueError):
        vat.line_amounts(100, 1, rate)


@given(
    st.integers(min_value=1, max_value=MAX_MINOR),
    st.data(),
)
def test_vat_share_is_the_exact_half_even_proportion(amount: int, data: st.DataObject) -> None:
    included = data.draw(st.integers(min_value=0, max_value=amount))
    part = data.draw(st.integers(min_value=0, max_value=amount))
    share = vat.vat_share(part, amount, included)
    assert share == exact_half_even(Fraction(part * included, amount))
    assert vat.vat_share(amount, amount, included) == included  # all of it: all its VAT


@given(st.integers(min_value=1, max_value=10**9), st.data())
def test_cumulative_shares_add_up_to_the_vat(amount: int, data: st.DataObject) -> None:
    """How credit notes use it: the shares of running totals, differenced."""
    included = data.draw(st.integers(min_value=0, max_value=amount // 2))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=amount), max_size=8)))
    bounds = [0, *cuts, amount]
    parts = [
        vat.vat_share(b, amount, included) - vat.vat_share(a, amount, included)
        for a, b in itertools.pairwise(bounds)
    ]
    assert sum(parts) == included and all(p >= 0 for p in parts)


def test_vat_share_rounds_half_to_even() -> None:
    # 2 of 4 including 1 of VAT: 0.5 -> 0; 6 of 4 including 1 (a share past the whole): 1.5 -> 2.
    assert vat.vat_share(2, 4, 1) == 0
    assert vat.vat_share(6, 4, 1) == 2
    assert vat.vat_share(5, 0, 0) == 0


def _invoice(lines: list[LineInput], tax: Tax | None = None) -> Invoice:
    return Invoice(
        id="iv_1",
        project_id="proj_1",
        sandbox=True,
        transaction_id="tr_1",
        state=InvoiceState.PENDING,
        created_at=0,
        updated_at=0,
        version=1,
        terms=InvoiceTerms(
            amount=sum(vat.of_line(x).amount for x in lines), currency="EUR", tax=tax
        ),
        lines=[
            InvoiceLine(id=f"iv_det_{i}", **msgspec.structs.asdict(x)) for i, x in enumerate(lines)
        ],
    )


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # 100.00 x2 incl. 25 % (40.00) and 4.00 excl. 25 % (1.00): one rate, as a percentage.
        (
            [
                LineInput(amount=10000, quantity=2, vat_rate="0.25"),
                LineInput(amount=400, vat_rate="0.25", amount_incl_vat=False),
            ],
            Tax(amount=4100, rate="25"),
        ),
        # One rate however it is written; decimals of a percentage kept exactly.
        (
            [LineInput(amount=1000, vat_rate="0.055"), LineInput(amount=1000, vat_rate="0.0550")],
            Tax(amount=104, rate="5.5"),
        ),
        ([LineInput(amount=1000, vat_rate="0.000001")], Tax(amount=0, rate="0.0001")),
        ([LineInput(amount=1000, vat_rate="1")], Tax(amount=500, rate="100")),
        ([LineInput(amount=1000, vat_rate="0")], Tax(amount=0, rate="0")),
        # Two rates, or a line without one (no VAT: 0 % beside 25 %): no one rate.
        (
            [LineInput(amount=1000, vat_rate="0.25"), LineInput(amount=1000, vat_rate="0.1")],
            Tax(amount=291, rate=None),
        ),
        (
            [LineInput(amount=1000, vat_rate="0.25"), LineInput(amount=150)],
            Tax(amount=200, rate=None),
        ),
        # Lines without rates state no tax.
        ([LineInput(amount=1000), LineInput(amount=150)], None),
        ([], None),
    ],
)
def test_the_lines_tax_is_their_vat_with_their_one_rate(
    lines: list[LineInput], expected: Tax | None
) -> None:
    assert vat.lines_tax(lines) == expected
    stated = vat.stated_tax(_invoice(lines))
    assert stated == expected
    assert vat.included_vat(_invoice(lines)) == (0 if expected is None else expected.amount)


def test_the_stated_tax_is_the_lines_else_the_one_given() -> None:
    given_tax = Tax(amount=300, rate="10")
    assert vat.stated_tax(_invoice([LineInput(amount=3300)], given_tax)) == given_tax
    assert vat.stated_tax(_invoice([], given_tax)) == given_tax
    # Lines with rates are the VAT, as included_vat (the Reepay face's amount_vat) says.
    rated = _invoice([LineInput(amount=3300, vat_rate="0.1")], given_tax)
    assert vat.stated_tax(rated) == Tax(amount=300, rate="10")
    assert vat.included_vat(rated) == 300
