"""``settle.payments.cards``: what a card must be to be accepted (Luhn, 12-19 digits, expiry,
CVC), its scheme, and what Settle keeps of it: never the number, never in an error either."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settle.db.database import Database
from settle.errors import ErrorCode, ValidationError
from settle.payments.cards import check_card, get_cards, luhn_ok, new_card, scheme_of
from settle.payments.gateway import CardData
from settle.payments.sandbox import TEST_CARDS, SandboxGateway
from settle.projects.models import Scope
from tests.domain_fixtures import (  # noqa: F401
    add_card,
    domain_db_fixture,
    gateway_fixture,
    new_scope,
    scope_fixture,
)

GOOD_MC: Final = "5555555555554444"

PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
TODAY: Final = datetime(2026, 6, 15, tzinfo=UTC)
VISA: Final = "4242424242424242"
SCOPE: Final = Scope(project_id="proj_cards", sandbox=True)


def card(
    number: str = VISA,
    *,
    exp_month: int = 12,
    exp_year: int = 2030,
    cvc: str | None = "123",
    name: str | None = "Jane Doe",
) -> CardData:
    return CardData(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc, name=name)


def refused(data: CardData, code: ErrorCode, field: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        check_card(data, today=TODAY)
    error = info.value
    assert (error.code, error.field) == (code, field)
    assert error.message.startswith(f"{field}: ")
    digits = data.number.replace(" ", "").replace("-", "")
    for text in (error.message, str(error), repr(error), repr(error.args)):
        if digits:
            assert digits not in text
        if data.number.strip():
            assert data.number not in text
    return error


def luhn_digit(body: str) -> str:
    """The check digit that makes ``body`` + it pass Luhn (computed here, independently)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these are doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def with_luhn(body: str) -> str:
    return body + luhn_digit(body)


def spoiled(number: str) -> str:
    """``number`` with its last digit changed: Luhn catches every single-digit error."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# --- the number -------------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(TEST_CARDS))
def test_every_sandbox_test_card_is_a_valid_number(number: str) -> None:
    assert luhn_ok(number)
    checked = check_card(card(number), today=TODAY)
    assert checked.number == number


@PROPERTY
@given(body=st.text("0123456789", min_size=11, max_size=18), delta=st.integers(1, 9))
def test_luhn_accepts_the_right_check_digit_and_no_other(body: str, delta: int) -> None:
    good = with_luhn(body)
    assert luhn_ok(good)
    assert check_card(card(good), today=TODAY).number == good
    bad = body + str((int(good[-1]) + delta) % 10)
    assert not luhn_ok(bad)
    refused(card(bad), ErrorCode.INVALID_CARD_NUMBER, "number")


@PROPERTY
@given(number=st.text("0123456789", min_size=12, max_size=19))
def test_any_digit_string_is_accepted_exactly_when_luhn_says_so(number: str) -> None:
    if luhn_ok(number):
        assert check_card(card(number), today=TODAY).number == number
    else:
        refused(card(number), ErrorCode.INVALID_CARD_NUMBER, "number")


@pytest.mark.parametrize("length", [12, 13, 15, 16, 19])
def test_a_number_of_12_to_19_digits_is_accepted(length: int) -> None:
    number = with_luhn("4" + "0" * (length - 2))
    assert len(number) == length
    assert check_card(card(number), today=TODAY).number == number


@pytest.mark.parametrize("length", [0, 1, 10, 11, 20, 24])
def test_a_number_too_short_or_too_long_is_refused_even_when_luhn_passes(length: int) -> None:
    number = with_luhn("4" + "0" * (length - 2)) if length >= 2 else "0" * length
    assert len(number) == length
    error = refused(card(number), ErrorCode.INVALID_CARD_NUMBER, "number")
    assert "12 to 19" in error.message


@pytest.mark.parametrize(
    "typed",
    [
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        " 4242 4242-4242 4242 ",
        "4242--4242  4242-4242",
    ],
)
def test_spaces_and_dashes_are_stripped(typed: str) -> None:
    assert check_card(card(typed), today=TODAY).number == VISA


@pytest.mark.parametrize(
    "typed",
    [
        "4242.4242.4242.4242",
        "4242_4242_4242_4242",
        "4242\t4242424242424",
        "4242424242424242\n",
        "+4242424242424242",
        "\uff14\uff12\uff14\uff12" * 4,  # fullwidth digits: str.isdigit() says yes
        "\u0664\u0662\u0664\u0662" * 4,  # Arabic-Indic digits
        "424242424242424x",
        "",
    ],
)
def test_anything_but_ascii_digits_spaces_and_dashes_is_refused(typed: str) -> None:
    refused(card(typed), ErrorCode.INVALID_CARD_NUMBER, "number")


@pytest.mark.parametrize("number", [spoiled(VISA), spoiled("378282246310005"), "1234567890123"])
def test_a_number_failing_luhn_is_refused_without_repeating_it(number: str) -> None:
    error = refused(card(number), ErrorCode.INVALID_CARD_NUMBER, "number")
    assert error.message == "number: is not a valid card number."


def test_no_refusal_repeats_the_number_or_its_last_digits() -> None:
    """Whatever else is wrong with a card, its number is not in the message."""
    attempts = [
        (card(spoiled(VISA)), ErrorCode.INVALID_CARD_NUMBER, "number"),
        (card(VISA + "0000"), ErrorCode.INVALID_CARD_NUMBER, "number"),
        (card(VISA, exp_month=13), ErrorCode.INVALID_CARD_EXPIRY, "exp_month"),
        (card(VISA, exp_year=2020), ErrorCode.INVALID_CARD_EXPIRY, "exp_year"),
        (card(VISA, cvc="12a"), ErrorCode.INVALID_CARD_CVC, "cvc2"),
    ]
    for data, code, field in attempts:
        error = refused(data, code, field)
        assert "4242" not in error.message


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "year"),
    [(6, 2026), (12, 2026), (1, 2027), (6, 2076), (6, 26), (1, 27), (12, 76)],
)
def test_an_expiry_this_month_or_later_is_accepted(month: int, year: int) -> None:
    checked = check_card(card(exp_month=month, exp_year=year), today=TODAY)
    assert checked.exp_month == month
    assert checked.exp_year == (year + 2000 if year < 100 else year)


@pytest.mark.parametrize(("year", "full"), [(26, 2026), (30, 2030), (0, 2000), (99, 2099)])
def test_a_two_digit_year_is_20yy(year: int, full: int) -> None:
    today = datetime(2000, 1, 1, tzinfo=UTC)
    if full > 2050:
        with pytest.raises(ValidationError):
            check_card(card(exp_month=1, exp_year=year), today=today)
        today = datetime(2099, 1, 1, tzinfo=UTC)
    assert check_card(card(exp_month=1, exp_year=year), today=today).exp_year == full


@pytest.mark.parametrize(
    ("month", "year"),
    [(5, 2026), (1, 2026), (12, 2025), (12, 1999), (5, 26), (12, 25), (1, 0)],
)
def test_a_past_expiry_is_refused(month: int, year: int) -> None:
    error = refused(card(exp_month=month, exp_year=year), ErrorCode.INVALID_CARD_EXPIRY, "exp_year")
    assert "expired" in error.message


@pytest.mark.parametrize("year", [2077, 2100, 9999, 100, 1000])
def test_an_expiry_more_than_50_years_ahead_or_nonsense_is_refused(year: int) -> None:
    refused(card(exp_month=6, exp_year=year), ErrorCode.INVALID_CARD_EXPIRY, "exp_year")


@pytest.mark.parametrize("month", [0, 13, -1, 99])
def test_a_month_outside_1_to_12_is_refused(month: int) -> None:
    refused(card(exp_month=month), ErrorCode.INVALID_CARD_EXPIRY, "exp_month")


def test_expiry_is_checked_against_today_by_default() -> None:
    now = datetime.now(UTC)
    assert check_card(card(exp_month=now.month, exp_year=now.year)).exp_year == now.year
    last_month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    with pytest.raises(ValidationError) as info:
        check_card(card(exp_month=last_month[1], exp_year=last_month[0]))
    assert info.value.code == ErrorCode.INVALID_CARD_EXPIRY


# --- CVC --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cvc", ["123", "000", "1234", "9999"])
def test_a_cvc_of_3_or_4_digits_is_kept(cvc: str) -> None:
    assert check_card(card(cvc=cvc), today=TODAY).cvc == cvc


@pytest.mark.parametrize("cvc", [None, ""])
def test_no_cvc_is_none(cvc: str | None) -> None:
    assert check_card(card(cvc=cvc), today=TODAY).cvc is None


@pytest.mark.parametrize(
    "cvc", ["1", "12", "12345", "12a", " 123", "1 23", "-12", "\uff11\uff12\uff13", "\u0663" * 3]
)
def test_any_other_cvc_is_refused(cvc: str) -> None:
    error = refused(card(cvc=cvc), ErrorCode.INVALID_CARD_CVC, "cvc2")
    assert error.message == "cvc2: must be 3 or 4 digits."


def test_the_checked_card_keeps_the_name_and_nothing_is_changed_but_the_number() -> None:
    checked = check_card(card("4242 4242-4242 4242", exp_year=30, name="J. Doe"), today=TODAY)
    assert checked == CardData(number=VISA, exp_month=12, exp_year=2030, cvc="123", name="J. Doe")


# --- schemes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(TEST_CARDS))
def test_scheme_of_each_test_card(number: str) -> None:
    assert scheme_of(number) == TEST_CARDS[number].scheme


@pytest.mark.parametrize(
    ("number", "scheme"),
    [
        ("4000056655665556", "visa"),
        ("2223003122003222", "mastercard"),
        ("5105105105105100", "mastercard"),
        ("371449635398431", "american express"),
        ("36227206271667", "diners club"),
        ("6011000990139424", "discover"),
        ("6500000000000002", "discover"),
        ("3566002020360505", "jcb"),
        ("9999999999999995", "unknown"),
        ("", "unknown"),
    ],
)
def test_scheme_of_other_ranges(number: str, scheme: str) -> None:
    assert scheme_of(number) == scheme


# --- what Settle keeps ------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(TEST_CARDS))
def test_new_card_keeps_iin_and_last_four_and_never_the_number(number: str) -> None:
    checked = check_card(card(number, cvc="7391"), today=TODAY)
    kept = new_card(
        SCOPE, checked, gateway_name="sandbox", gateway_reference="sbxcard_x", metadata={"a": "b"}
    )
    assert kept.iin == number[:6] and kept.last_4_digits == number[-4:]
    assert kept.scheme == TEST_CARDS[number].scheme and kept.type == "credit"
    assert (kept.exp_month, kept.exp_year, kept.name) == (12, 2030, "Jane Doe")
    assert (kept.project_id, kept.sandbox) == (SCOPE.project_id, SCOPE.sandbox)
    assert kept.id.startswith("card_")
    assert (kept.gateway_name, kept.gateway_reference) == ("sandbox", "sbxcard_x")
    assert kept.metadata == {"a": "b"} and kept.anonymized_at is None
    assert kept.cvc_check == "unchecked" and kept.avs_check == "unchecked"
    assert not {"number", "cvc", "cvc2"} & set(kept.__struct_fields__)
    encoded = msgspec.json.encode(kept)
    assert number.encode() not in encoded
    assert number not in repr(kept)
    for field, value in msgspec.to_builtins(kept).items():  # nor the CVC
        if field not in ("id", "fingerprint", "created_at"):
            assert "7391" not in str(value), field


def test_new_card_without_a_cvc_says_it_is_unavailable() -> None:
    kept = new_card(
        SCOPE,
        check_card(card(cvc=None), today=TODAY),
        gateway_name="sandbox",
        gateway_reference="sbxcard_x",
        metadata={},
    )
    assert kept.cvc_check == "unavailable"


def test_the_fingerprint_tells_the_same_card_within_a_project_only() -> None:
    def fingerprint(scope: Scope, number: str) -> str:
        checked = check_card(card(number), today=TODAY)
        return new_card(
            scope, checked, gateway_name="sandbox", gateway_reference="r", metadata={}
        ).fingerprint

    mine = fingerprint(SCOPE, VISA)
    assert mine == fingerprint(SCOPE, "4242 4242 4242 4242")
    assert mine != fingerprint(SCOPE, "5555555555554444")
    assert mine != fingerprint(Scope(project_id="proj_other", sandbox=True), VISA)
    assert VISA not in mine and len(mine) == 64


async def test_get_cards_loads_several_of_one_scope_only(
    domain_db: Database, scope: Scope, gateway: SandboxGateway
) -> None:
    mine = [await add_card(domain_db, scope, gateway, n) for n in ("4242424242424242", GOOD_MC)]
    theirs = await add_card(domain_db, await new_scope(domain_db), gateway)
    async with domain_db.read() as tx:
        found = await get_cards(tx, scope, [c.id for c in mine] + [theirs.id, "card_nope", ""])
        assert await get_cards(tx, scope, []) == {}
    assert found == {c.id: c for c in mine}
