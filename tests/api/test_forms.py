"""Form-encoded bodies (``settle.api.forms``, through ``decode_body``): the bracket tree, its
shaping along the wire types, order independence, clear 400s, and never a 500."""

from __future__ import annotations

import random
from typing import Any, Literal
from urllib.parse import quote, urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settle import grammar
from settle.api import forms
from settle.api.forms import Branch, Conflict, parse_form
from settle.api.http import decode_body
from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.errors import MalformedBody, ValidationError

FORM = "application/x-www-form-urlencoded"


def decode(pairs: list[tuple[str, str]] | bytes, wire_type: type[Any] = wire.InvoiceCreate) -> Any:
    body = pairs if isinstance(pairs, bytes) else urlencode(pairs).encode()
    return decode_body(body, FORM, wire_type)


def plain(pairs: list[tuple[str, str]] | bytes, wire_type: type[Any] = wire.InvoiceCreate) -> Any:
    return msgspec.to_builtins(decode(pairs, wire_type))


def refused(
    pairs: list[tuple[str, str]] | bytes, field: str, code: str | None = None
) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        decode(pairs)
    assert info.value.field == field, info.value.message
    assert info.value.message.startswith(f"{field}:"), info.value.message
    if code is not None:
        assert info.value.code == code, info.value.code
    return info.value


# --- the tree -------------------------------------------------------------------------------


def test_the_tree_keeps_bracket_segments_as_strings() -> None:
    tree = parse_form(b"a=1&b[c]=2&d[0][e]=3&f[]=x&f[]=y&g[0]=n&g[x]=s")
    expected = Branch()
    expected.keys["a"] = "1"
    b = expected.keys["b"] = Branch()
    b.keys["c"] = "2"
    d = expected.keys["d"] = Branch()
    d0 = d.keys["0"] = Branch()
    d0.keys["e"] = "3"
    f = expected.keys["f"] = Branch()
    f.appended.extend(["x", "y"])
    g = expected.keys["g"] = Branch()
    g.keys.update({"0": "n", "x": "s"})
    assert tree == expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"a=1&a=2", "is given more than once"),
        (b"a=1&a=1", "is given more than once"),
        (b"a=1&a[b]=2", "is given both as a value and as an object"),
        (b"a[b]=2&a=1", "is given both as a value and as an object"),
        (b"a[b]=2&a=1&a[c]=3", "is given both as a value and as an object"),
    ],
)
def test_conflicts_are_recorded_whatever_the_order(body: bytes, problem: str) -> None:
    assert parse_form(body).keys["a"] == Conflict(problem)


@pytest.mark.parametrize("body", [b"a[b=1", b"a]b=1", b"[a]=1", b"a[b]c=1", b"=1"])
def test_malformed_keys_are_400(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse_form(body)


def test_depth_and_field_count_are_bounded() -> None:
    parse_form(b"a" + b"[b]" * (forms.MAX_DEPTH - 1) + b"=1")
    with pytest.raises(MalformedBody, match="nested too deeply"):
        parse_form(b"a" + b"[b]" * forms.MAX_DEPTH + b"=1")
    with pytest.raises(MalformedBody):
        parse_form(b"&".join(b"k%d=1" % i for i in range(forms.MAX_FIELDS + 1)))


# --- the supported forms keep working -------------------------------------------------------


def test_the_documented_bracket_forms() -> None:
    data = plain(
        [
            ("amount", "1"),
            ("currency", "EUR"),
            ("tax[rate]", "20"),
            ("details[0][amount]", "3"),
            ("details[0][quantity]", "2"),
            ("external_fraud_tools[forter][]", "x"),
            ("external_fraud_tools[forter][]", "y"),
        ]
    )
    assert data["tax"] == {"rate": "20"}
    assert data["details"] == [{"amount": "3", "quantity": 2}]
    assert data["external_fraud_tools"] == {"forter": ["x", "y"]}


def test_unknown_fields_are_ignored_conflicts_in_them_included() -> None:
    data = plain(b"amount=1&currency=EUR&future=1&future[x]=2&other[0]=a&other[b]=c")
    assert data == {"amount": "1", "currency": "EUR"}


# --- defect 1: mixing numeric and named keys in one group never 500s ------------------------


def test_numeric_and_named_keys_in_metadata_are_both_string_keys() -> None:
    assert plain(b"metadata[0]=a&metadata[x]=b")["metadata"] == {"0": "a", "x": "b"}


def test_numeric_and_named_keys_in_details_are_a_clear_400() -> None:
    error = refused(b"details[0][amount]=1&details[foo][amount]=2", "details", forms.INDEX_CODE)
    assert "'foo' is not an item index" in error.message


def test_numeric_and_named_keys_in_free_form_json_stay_an_object() -> None:
    data = plain(b"external_fraud_tools[forter][0]=a&external_fraud_tools[forter][k]=b")
    assert data["external_fraud_tools"] == {"forter": {"0": "a", "k": "b"}}


# --- defect 2: numeric keys where an object is wanted; no value dropped ---------------------


@pytest.mark.parametrize("key", ["0", "7", "2024", "01", "-1", "999999999999"])
def test_numeric_metadata_keys_are_kept_as_in_json(key: str) -> None:
    form = plain([("metadata[" + key + "]", "a")])["metadata"]
    json_ = msgspec.to_builtins(
        decode_body(
            msgspec.json.encode({"metadata": {key: "a"}}), "application/json", wire.InvoiceCreate
        )
    )["metadata"]
    assert form == json_ == {key: "a"}


def test_numeric_keys_in_details_metadata_and_gateway_data() -> None:
    data = plain(
        b"details[0][amount]=1&details[0][metadata][7]=x&gateway_data[2024]=y&submerchant[0]=z"
    )
    assert data["details"][0]["metadata"] == {"7": "x"}
    assert data["gateway_data"] == {"2024": "y"}
    assert data["submerchant"] == {"0": "z"}


@pytest.mark.parametrize("index", ["-1", "01", "+1", "1.0", "1e1", " 1", "\u0661", "x", "0x1"])
def test_non_canonical_indices_are_refused_not_dropped(index: str) -> None:
    pairs = [("details[0][amount]", "1"), (f"details[{index}][amount]", "2")]
    refused(pairs, "details", forms.INDEX_CODE)


def test_sparse_indices_are_taken_in_numeric_order() -> None:
    pairs = [
        ("details[10][amount]", "4"),
        ("details[2][amount]", "3"),
        ("details[0][amount]", "1"),
        ("details[1][amount]", "2"),
    ]
    assert [d["amount"] for d in plain(pairs)["details"]] == ["1", "2", "3", "4"]


def test_indices_are_bounded_by_the_schema() -> None:
    assert len(plain([("details[999][amount]", "1")])["details"]) == 1
    refused([("details[1000][amount]", "1")], "details", forms.INDEX_CODE)
    refused([("details[" + "9" * 40 + "][amount]", "1")], "details", forms.INDEX_CODE)
    too_many = [("details[][amount]", "1")] * 1001
    error = refused(too_many, "details")
    assert "at most 1000 items" in error.message


def test_appends_keep_their_order_and_do_not_mix_with_indices() -> None:
    pairs = [("details[][amount]", "1"), ("details[][amount]", "2")]
    assert [d["amount"] for d in plain(pairs)["details"]] == ["1", "2"]
    refused(
        [("details[][amount]", "1"), ("details[0][amount]", "2")], "details", forms.CONFLICT_CODE
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"name=a&name=b", "name"),
        (b"amount=1&amount[x]=2", "amount"),
        (b"metadata=1&metadata[k]=v", "metadata"),
        (b"details[0]=1&details[0][name]=x", "details[0]"),
        (b"details[0][amount]=1&details[0][amount]=2", "details[0].amount"),
        (b"metadata[k]=1&metadata[k]=2", "metadata.k"),
        (b"tax[rate]=1&tax[rate][x]=2", "tax.rate"),
        (b"external_fraud_tools[a]=1&external_fraud_tools[a]=2", "external_fraud_tools.a"),
        (b"verification[]=1&verification[k]=2", "verification"),
    ],
)
def test_conflicts_are_a_clear_400_naming_the_field(body: bytes, field: str) -> None:
    refused(body, field, forms.CONFLICT_CODE)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b"tax=5", "tax", "must be an object or null, not a string"),
        (b"details=x", "details", "must be an array or null, not a string"),
        (b"metadata[]=x", "metadata", "must be an object or null, not an array"),
        (b"name[x]=1", "name", "must be a string or null, not an object"),
        (b"details[0][quantity][x]=1", "details[0].quantity", "must be an integer or null"),
    ],
)
def test_wrong_shapes_name_the_field(body: bytes, field: str, message: str) -> None:
    error = refused(body, field)
    assert message in error.message


# --- defect 3: form leaves are converted with the strict grammar -----------------------------


@pytest.mark.parametrize("quantity", ["1e3", "1.0", "01", "+1", " 1", "1 ", "\u0661", "1_0", ""])
def test_form_quantities_follow_the_integer_grammar(quantity: str) -> None:
    pairs = [("details[0][amount]", "1"), ("details[0][quantity]", quantity)]
    refused(pairs, "details[0].quantity", grammar.INVALID_INTEGER)


def test_form_quantity_ranges_are_checked_as_in_json() -> None:
    for quantity in ("0", "-1", "1000001"):
        with pytest.raises(ValidationError) as info:
            decode([("details[0][amount]", "1"), ("details[0][quantity]", quantity)])
        assert info.value.field == "details[0].quantity"
    data = plain([("details[0][amount]", "1"), ("details[0][quantity]", "1000000")])
    assert data["details"][0]["quantity"] == 1_000_000


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("1", True)])
def test_form_booleans(text: str, value: bool) -> None:
    assert plain([("risk[is_legit]", text)])["risk"]["is_legit"] is value


@pytest.mark.parametrize("text", ["yes", "on", "", "2", " true"])
def test_form_booleans_are_strict(text: str) -> None:
    refused([("risk[is_legit]", text)], "risk.is_legit", grammar.INVALID_BOOLEAN)


def test_form_strings_are_kept_verbatim() -> None:
    # Strings are never reinterpreted: a name of "1e3" or " 5 " stays as sent.
    assert plain([("name", "1e3"), ("order_id", " 5 ")]) == {"name": "1e3", "order_id": " 5 "}


def test_customer_forms() -> None:
    data = plain(
        [("is_business", "true"), ("metadata[1]", "one"), ("phone[number]", "12")], wire.CustomerIn
    )
    assert data == {"is_business": True, "metadata": {"1": "one"}, "phone": {"number": "12"}}


# --- order independence ---------------------------------------------------------------------

RICH_PAIRS = [
    ("amount", "12.30"),
    ("currency", "eur"),
    ("metadata[0]", "zero"),
    ("metadata[x]", "ex"),
    ("metadata[2024]", "year"),
    ("details[0][name]", "Banana"),
    ("details[0][amount]", "1.10"),
    ("details[0][quantity]", "3"),
    ("details[0][metadata][7]", "seven"),
    ("details[1][amount]", "0.5"),
    ("details[1][marketplace_merchant_is_business]", "true"),
    ("details[10][amount]", "2"),
    ("risk[is_legit]", "false"),
    ("shipping[phone][dialing_code]", "+33"),
    ("shipping[expects_shipping_at]", "2030-01-01T00:00:00Z"),
    ("tax[rate]", "20"),
    ("external_fraud_tools[forter][0]", "a"),
    ("external_fraud_tools[forter][k]", "b"),
    ("unknown[0]", "x"),
    ("unknown[y]", "x"),
]


def test_the_pairs_order_does_not_matter() -> None:
    expected = plain(RICH_PAIRS)
    assert [d.get("name") for d in expected["details"]] == ["Banana", None, None]
    rng = random.Random(20240601)
    for _ in range(50):
        shuffled = RICH_PAIRS[:]
        rng.shuffle(shuffled)
        assert plain(shuffled) == expected


@settings(max_examples=100, deadline=None, database=None)
@given(st.permutations([*RICH_PAIRS, ("metadata[x]", "again")]))
def test_conflicts_do_not_depend_on_the_order(pairs: list[tuple[str, str]]) -> None:
    refused(pairs, "metadata.x", forms.CONFLICT_CODE)


# --- never a 500 ----------------------------------------------------------------------------

_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_names = st.sampled_from(
    [
        "amount",
        "currency",
        "name",
        "metadata",
        "details",
        "tax",
        "risk",
        "shipping",
        "device",
        "external_fraud_tools",
        "verification",
        "gateway_data",
        "submerchant",
        "expires_at",
        "quantity",
        "is_business",
        "phone",
        "require_backend_capture",
        "x",
    ]
)
_segments = st.one_of(
    _names,
    st.sampled_from(["", "0", "1", "01", "-1", "1000", "1e3", "k", "amount", "quantity"]),
    st.text(st.characters(exclude_characters="[]", exclude_categories=_SURROGATES), max_size=6),
)
_keys = st.builds(
    lambda base, segments: base + "".join(f"[{s}]" for s in segments),
    _names,
    st.lists(_segments, max_size=4),
)
_values = st.one_of(
    st.sampled_from(["1", "0", "-1", "1e3", "true", "", "2030-01-01T00:00:00Z", "EUR", "x" * 300]),
    st.text(st.characters(exclude_categories=_SURROGATES), max_size=10),
)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    pairs=st.lists(st.tuples(_keys, _values), max_size=12),
    wire_type=st.sampled_from([wire.InvoiceCreate, wire.InvoiceUpdate, wire.CustomerIn]),
    noise=st.sampled_from([b"", b"&", b"&&=", b"&%ff", b"&a[=1", b"&%00=1", b"&x=%00"]),
)
def test_random_forms_raise_only_validation_errors(
    pairs: list[tuple[str, str]], wire_type: type[Any], noise: bytes
) -> None:
    body = "&".join(f"{quote(k, safe='[]')}={quote(v)}" for k, v in pairs).encode() + noise
    try:
        decoded = decode_body(body, FORM, wire_type)
        if wire_type is wire.InvoiceCreate:
            convert.invoice_input(decoded)
        elif wire_type is wire.InvoiceUpdate:
            convert.invoice_changes(decoded, "EUR")
        else:
            convert.customer_fields(decoded, "EUR")
    except ValidationError:
        pass
