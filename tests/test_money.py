from __future__ import annotations

from decimal import Decimal

import pytest

from settle.errors import ValidationError
from settle.money import format_amount, minor_to_decimal, parse_amount, round_minor


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("4.99", "EUR", 499),
        ("29", "EUR", 2900),
        ("4.990", "EUR", 499),
        ("100", "JPY", 100),
        ("1.005", "KWD", 1005),
        ("0", "USD", 0),
        ("12345678901.23", "EUR", 1234567890123),
    ],
)
def test_amounts_parse_exactly(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("100.5", "JPY"),
        ("4.999", "EUR"),
        ("1.0005", "KWD"),
        ("-1", "EUR"),
        ("1e3", "EUR"),
        ("", "EUR"),
        ("NaN", "EUR"),
        ("1,00", "EUR"),
        ("01", "EUR"),
        ("10000000000000", "EUR"),
    ],
)
def test_invalid_amounts_are_refused(text: str, currency: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_amount(text, currency)
    assert info.value.field == "amount"


def test_unknown_currencies_are_refused() -> None:
    with pytest.raises(ValidationError, match="XYZ"):
        parse_amount("1", "XYZ")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (499, "EUR", "4.99"),
        (2900, "EUR", "29"),
        (490, "EUR", "4.9"),
        (1005, "KWD", "1.005"),
        (100, "JPY", "100"),
        (-5, "EUR", "-0.05"),
        (0, "EUR", "0"),
    ],
)
def test_amounts_format_shortest_and_exact(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text
    if minor >= 0:
        assert parse_amount(text, currency) == minor


def test_decimal_conversion_and_rounding_are_exact() -> None:
    assert minor_to_decimal(1005, "KWD") == Decimal("1.005")
    assert round_minor(Decimal("2.5")) == 2  # half to even
    assert round_minor(Decimal("3.5")) == 4


@pytest.mark.parametrize(
    "text",
    [
        " 5",
        "5 ",
        "\u00a05",  # str.strip() removed these before the grammar saw them
        "5\n",
        "\t5",
        "+5",
        "\u0665",  # Arabic-Indic five
        "\uff15",  # full-width five
        "5_0",
        ".5",
        "5.",
        ".",
        "5e0",
    ],
)
def test_amounts_outside_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_amount(text, "EUR", field="tax.amount")
    assert info.value.field == "tax.amount"
    assert info.value.code == "request.validation.invalid-amount"
