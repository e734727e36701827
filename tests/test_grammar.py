"""The wire grammar (``settle.grammar``): each parser accepts exactly its grammar.

Property tests draw valid strings from each grammar and check the exact value they parse to,
and draw near-misses (non-ASCII digits, underscores, spaces, signs, exponents, lone dots,
leading zeros) and check they are refused: first on the parsers, then end to end through
``decode_body`` into the real wire types and ``convert``, for JSON and form-encoded bodies.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from settle import grammar
from settle.api.http import decode_body
from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.clock import from_datetime, rfc3339
from settle.errors import ErrorCode, ValidationError
from settle.money import MAX_MINOR, parse_amount

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- strategies: the grammars, and their near misses ----------------------------------------

_digits = st.text("0123456789", min_size=1, max_size=12)
_whole = st.one_of(
    st.just("0"),
    st.sampled_from("123456789"),
    st.builds(str.__add__, st.sampled_from("123456789"), _digits),
)
decimals = st.builds(
    lambda whole, frac: whole if frac is None else f"{whole}.{frac}",
    _whole,
    st.none() | st.text("0123456789", min_size=1, max_size=6),
)

# Characters Python's int()/Decimal()/str.strip() accept but the grammar does not.
UNICODE_DIGITS = [
    "\u0665",
    "\uff15",
    "\u096b",
    "\U0001d7d3",
    "\u00b2",
]  # Arabic-Indic, full-width, Devanagari, bold 5; superscript 2
SPACES = [" ", "\u00a0", "\n", "\t", "\r", "\u2003", "\u3000"]


@st.composite
def near_miss_decimals(draw: st.DrawFn) -> str:
    valid: str = draw(decimals)
    kind = draw(
        st.sampled_from(
            [
                "unicode-digit",
                "underscore",
                "space",
                "sign",
                "exponent",
                "lone-dot",
                "leading-zero",
                "empty",
                "comma",
                "special",
            ]
        )
    )
    if kind == "unicode-digit":
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.sampled_from(UNICODE_DIGITS)) + valid[at:]
    if kind == "underscore":
        return draw(st.sampled_from(["1_0", "1_000.5", "10_0", "0.1_5"]))
    if kind == "space":
        space = draw(st.sampled_from(SPACES))
        return draw(st.sampled_from([space + valid, valid + space, space + valid + space]))
    if kind == "sign":
        sign: str = draw(st.sampled_from(["+", "-"]))
        return sign + valid
    if kind == "exponent":
        return valid + draw(st.sampled_from(["e3", "E3", "e-2", "e+1", "e0"]))
    if kind == "lone-dot":
        return draw(st.sampled_from([".", f"{valid}.", f".{valid}", f"{valid}..1"]))
    if kind == "leading-zero":
        return "0" + valid if valid[0] != "0" or "." not in valid else "00" + valid
    if kind == "comma":
        return draw(st.sampled_from(["1,00", "1,000.5", "0,5"]))
    if kind == "special":
        return draw(st.sampled_from(["NaN", "nan", "Infinity", "inf", "0x10", "1/2", "\u00bd"]))
    return ""


canonical_ints = st.integers(0, 10**12).map(str)


@st.composite
def near_miss_ints(draw: st.DrawFn) -> str:
    valid = draw(canonical_ints)
    return draw(
        st.sampled_from(
            [
                valid + ".0",
                valid + "e3",
                "1e3",
                "0" + valid,
                "+" + valid,
                "-0",
                " " + valid,
                valid + "\n",
                "\u00a0" + valid,
                valid[:1] + "_" + valid,
                "\u0665",
                "\uff15",
                valid + "\u0665",
                "",
                "0x1",
                "1.5",
                "1 000",
            ]
        )
    )


timestamps = st.builds(
    lambda d, fraction, offset, lower: (
        (d.strftime("%Y-%m-%d") + ("t" if lower else "T") + d.strftime("%H:%M:%S"))
        + (f".{fraction}" if fraction else "")
        + (
            ("z" if lower else "Z")
            if offset is None
            else ("+" if offset >= 0 else "-") + f"{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        )
    ),
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30)),
    st.none() | st.text("0123456789", min_size=1, max_size=12),
    st.none() | st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.booleans(),
)


def expected_micros(text: str) -> int:
    """The exact instant of a valid timestamp, computed independently of the parser."""
    base, rest = text[:19], text[19:]
    fraction = ""
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        fraction, rest = rest[1:end], rest[end:]
    local = datetime.strptime(base.replace("t", "T"), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    offset = timedelta(0)
    if rest not in ("Z", "z"):
        sign = 1 if rest[0] == "+" else -1
        offset = sign * timedelta(hours=int(rest[1:3]), minutes=int(rest[4:6]))
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    return from_datetime(local - offset) + micros


NEAR_MISS_TIMESTAMPS = [
    "",
    "2030-06-01",
    "2030-06-01T12:00:00",  # no time zone
    "2030-06-01 12:00:00Z",  # space separator
    "2030-06-01T12:00Z",  # no seconds
    "2030-06-01T12:00:00.Z",  # empty fraction
    "2030-06-01T12:00:00,5Z",  # comma fraction
    "2030-6-01T12:00:00Z",
    "30-06-01T12:00:00Z",
    "+2030-06-01T12:00:00Z",
    "2030-06-01T12:00:00+0200",
    "2030-06-01T12:00:00+02",
    "2030-06-01T12:00:00 Z",
    " 2030-06-01T12:00:00Z",
    "2030-06-01T12:00:00Z\n",
    "2030-06-01T12:00:00\u00a0Z",
    "2030-06-0\u0661T12:00:00Z",
    "\uff12030-06-01T12:00:00Z",
    "2030-02-30T12:00:00Z",
    "2030-13-01T12:00:00Z",
    "2030-06-01T24:00:00Z",
    "2030-06-01T12:60:00Z",
    "2030-06-01T23:59:60Z",  # a leap second
    "2030-06-01T12:00:00+24:00",
    "2030-06-01T12:00:00+02:60",
    "0000-01-01T00:00:00Z",
    "2030-06-01T12:00:00.1_2Z",
    "2030-06-01T12:00:00UTC",
    "1717243200",
    "2030-06-01T12:00:00." + "0" * 60 + "Z",
]


# --- the parsers --------------------------------------------------------------------------


@PROPERTY
@given(text=decimals)
def test_decimal_grammar_parses_exactly(text: str) -> None:
    assert grammar.parse_decimal(text, field="f", code=ErrorCode.VALIDATION) == Decimal(text)
    whole, frac = grammar.decimal_parts(text) or ("?", "?")
    assert (whole + ("." + frac if frac else "")) == text


@PROPERTY
@given(text=near_miss_decimals())
@example("\u0665")
@example("1_0")
@example(" 5 ")
@example("+5")
@example("\u00a05")
@example("5\n")
@example(".5")
@example("1.")
@example(".")
def test_decimal_near_misses_are_refused(text: str) -> None:
    assert grammar.decimal_parts(text) is None
    with pytest.raises(ValidationError) as info:
        grammar.parse_decimal(text, field="tax.rate", code=ErrorCode.INVALID_TAX_RATE)
    assert info.value.field == "tax.rate"
    assert info.value.code == "request.validation.invalid-tax-rate"


@PROPERTY
@given(text=decimals, currency=st.sampled_from(["EUR", "JPY", "KWD", "USD"]))
def test_amount_text_to_minor_units_is_decimal_arithmetic(text: str, currency: str) -> None:
    exponent = {"EUR": 2, "JPY": 0, "KWD": 3, "USD": 2}[currency]
    exact = Decimal(text).scaleb(exponent)
    if exact != exact.to_integral_value() or exact > MAX_MINOR:
        with pytest.raises(ValidationError):
            parse_amount(text, currency)
    else:
        assert parse_amount(text, currency) == int(exact)


@PROPERTY
@given(text=near_miss_decimals())
def test_amount_near_misses_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_amount(text, "EUR")
    assert info.value.code == "request.validation.invalid-amount"


@PROPERTY
@given(value=st.integers(-(10**17), 10**17))
def test_integer_grammar_parses_exactly(value: int) -> None:
    assert grammar.parse_integer(str(value), field="q", signed=True) == value
    if value >= 0:
        assert grammar.parse_integer(str(value), field="q") == value
    else:
        with pytest.raises(ValidationError):
            grammar.parse_integer(str(value), field="q")


@PROPERTY
@given(text=near_miss_ints())
def test_integer_near_misses_are_refused(text: str) -> None:
    for signed in (False, True):
        with pytest.raises(ValidationError) as info:
            grammar.parse_integer(text, field="details[0].quantity", signed=signed)
        assert info.value.code == grammar.INVALID_INTEGER
        assert info.value.field == "details[0].quantity"


def test_integer_digits_are_bounded() -> None:
    assert grammar.parse_integer("9" * 18, field="q") == 10**18 - 1
    with pytest.raises(ValidationError):
        grammar.parse_integer("9" * 19, field="q")
    with pytest.raises(ValidationError):
        grammar.parse_integer("9" * 5000, field="q")  # int() itself would raise ValueError


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False), ("1", True), ("0", False)],
)
def test_booleans(text: str, value: bool) -> None:
    assert grammar.parse_boolean(text, field="b") is value


@pytest.mark.parametrize(
    "text", ["", "yes", "no", "on", "t", " true", "true ", "2", "01", "-1", "truE\n", "\uff54rue"]
)
def test_boolean_near_misses_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        grammar.parse_boolean(text, field="risk.is_legit")
    assert info.value.code == grammar.INVALID_BOOLEAN


@PROPERTY
@given(text=timestamps)
@example("2030-06-01T12:00:00.9999999Z")
@example("2030-06-01T12:00:00.999999999999Z")
@example("2030-06-01t12:00:00z")
@example("2030-06-01T12:00:00-00:00")
def test_timestamp_grammar_parses_exactly_and_truncates(text: str) -> None:
    assert grammar.parse_timestamp(text, field="t") == expected_micros(text)


def test_sub_microsecond_fractions_are_truncated_not_rounded() -> None:
    us = grammar.parse_timestamp("2030-06-01T12:00:00.9999999Z", field="expires_at")
    assert rfc3339(us) == "2030-06-01T12:00:00.999999Z"


@pytest.mark.parametrize("text", NEAR_MISS_TIMESTAMPS)
def test_timestamp_near_misses_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        grammar.parse_timestamp(text, field="expires_at")
    assert info.value.code == grammar.INVALID_TIMESTAMP
    assert info.value.message.startswith("expires_at:")


@pytest.mark.parametrize("text", ["1990-04-01", "2000-02-29", "0001-01-01", "9999-12-31"])
def test_dates(text: str) -> None:
    assert grammar.parse_date(text, field="d") == date.fromisoformat(text)


@pytest.mark.parametrize(
    "text",
    ["not-a-date", "1990-02-30", "1990-4-1", "19900401", "1990-04-01T00:00:00Z", " 1990-04-01",
     "1990-04-01\n", "0000-01-01", "1990/04/01", "199\uff10-04-01", ""],
)  # fmt: skip
def test_date_near_misses_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        grammar.parse_date(text, field="date_of_birth")
    assert info.value.code == grammar.INVALID_DATE


# --- end to end: decode_body into the wire types, then convert ------------------------------


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


def create(content: bytes, content_type: str) -> Any:
    return convert.invoice_input(decode_body(content, content_type, wire.InvoiceCreate))


def both_encodings(fields: dict[str, str]) -> list[tuple[bytes, str]]:
    """The same invoice as a JSON body and as a form body (``a.b`` keys become ``a[b]``)."""
    nested: dict[str, Any] = {}
    pairs = []
    for key, value in fields.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        pairs.append((parts[0] + "".join(f"[{p}]" for p in parts[1:]), value))
    return [(_json(nested), JSON), (_form(pairs), FORM)]


@PROPERTY
@given(text=decimals)
def test_amounts_end_to_end(text: str) -> None:
    exact = Decimal(text).scaleb(3)
    for content, content_type in both_encodings({"amount": text, "currency": "KWD"}):
        if exact != exact.to_integral_value() or exact > MAX_MINOR:
            with pytest.raises(ValidationError) as info:
                create(content, content_type)
            assert info.value.field == "amount"
        else:
            assert create(content, content_type).amount == int(exact)


@PROPERTY
@given(text=near_miss_decimals())
def test_amount_near_misses_end_to_end(text: str) -> None:
    for field in ("amount", "tax.amount", "shipping.amount"):
        body = {"amount": "10", "currency": "EUR", field: text}
        for content, content_type in both_encodings(body):
            with pytest.raises(ValidationError) as info:
                create(content, content_type)
            assert info.value.field == field, (content, info.value.message)


@PROPERTY
@given(text=decimals)
def test_rates_end_to_end(text: str) -> None:
    body = {"amount": "10", "currency": "EUR", "tax.rate": text}
    for content, content_type in both_encodings(body):
        if Decimal(text) > 100:
            with pytest.raises(ValidationError) as info:
                create(content, content_type)
            assert info.value.field == "tax.rate"
        else:
            rate = create(content, content_type).tax.rate
            assert Decimal(rate) == Decimal(text)
            assert rate == format(Decimal(text).normalize(), "f") or rate == "0"


@PROPERTY
@given(text=near_miss_decimals())
@example("1_0")
@example("\u0665")
@example(" 5 ")
@example("+5")
def test_rate_near_misses_end_to_end(text: str) -> None:
    body = {"amount": "10", "currency": "EUR", "tax.rate": text}
    for content, content_type in both_encodings(body):
        with pytest.raises(ValidationError) as info:
            create(content, content_type)
        assert info.value.field == "tax.rate"
        assert info.value.code == "request.validation.invalid-tax-rate"


@PROPERTY
@given(quantity=st.integers(1, 1_000_000))
def test_quantities_end_to_end(quantity: int) -> None:
    content = _json(
        {"amount": "1", "currency": "EUR", "details": [{"amount": "1", "quantity": quantity}]}
    )
    assert create(content, JSON).lines[0].quantity == quantity
    form = _form(
        [
            ("amount", "1"),
            ("currency", "EUR"),
            ("details[0][amount]", "1"),
            ("details[0][quantity]", str(quantity)),
        ]
    )
    assert create(form, FORM).lines[0].quantity == quantity


@PROPERTY
@given(text=near_miss_ints())
@example("1e3")
@example("1.0")
def test_quantity_near_misses_end_to_end(text: str) -> None:
    form = _form(
        [
            ("amount", "1"),
            ("currency", "EUR"),
            ("details[0][amount]", "1"),
            ("details[0][quantity]", text),
        ]
    )
    with pytest.raises(ValidationError) as info:
        create(form, FORM)
    assert info.value.field == "details[0].quantity"
    # In JSON the same text is either not JSON, not an integer token, or a string: refused.
    # (Spaces around a JSON token are JSON syntax, not part of the value: not tried raw.)
    raw = b'{"amount": "1", "currency": "EUR", "details": [{"amount": "1", "quantity": '
    tokens = [json.dumps(text).encode()]
    if text.strip(" \t\r\n") == text:
        tokens.append(text.encode())
    for token in tokens:
        with pytest.raises(ValidationError):
            create(raw + token + b"}]}", JSON)


@PROPERTY
@given(text=timestamps)
def test_timestamps_end_to_end(text: str) -> None:
    us = expected_micros(text)
    for field in ("expires_at", "auto_capture_at", "shipping.expects_shipping_at"):
        body = {"amount": "1", "currency": "EUR", field: text}
        for content, content_type in both_encodings(body):
            data = create(content, content_type)
            if field == "shipping.expects_shipping_at":
                assert data.attributes["shipping"]["expects_shipping_at"] == rfc3339(us)
            else:
                assert getattr(data, field) == us


@pytest.mark.parametrize("text", NEAR_MISS_TIMESTAMPS)
def test_timestamp_near_misses_end_to_end(text: str) -> None:
    for field in ("expires_at", "shipping.expects_shipping_at"):
        body = {"amount": "1", "currency": "EUR", field: text}
        for content, content_type in both_encodings(body):
            with pytest.raises(ValidationError) as info:
                create(content, content_type)
            assert info.value.field == field


@PROPERTY
@given(text=st.one_of(near_miss_ints(), st.sampled_from(["yes", "on", "", "2", " true"])))
def test_boolean_near_misses_in_forms(text: str) -> None:
    form = _form([("amount", "1"), ("currency", "EUR"), ("require_backend_capture", text)])
    with pytest.raises(ValidationError) as info:
        create(form, FORM)
    assert info.value.field == "require_backend_capture"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("7.50", "7.5"),
        ("10.0", "10"),
        ("100", "100"),
        ("0.0", "0"),
        ("0E-999999999", "0"),
        ("1E-38", "0.00000000000000000000000000000000000001"),
        ("99.99999999999999999999999999999999999", "99.99999999999999999999999999999999999"),
    ],
)
def test_plain_is_the_exact_value_without_trailing_zeros(value: str, text: str) -> None:
    assert grammar.plain(Decimal(value)) == text
    assert Decimal(grammar.plain(Decimal(value))) == Decimal(value)
