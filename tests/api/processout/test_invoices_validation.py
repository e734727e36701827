"""POST /invoices field rules of seed 001: lengths, enums, codes, URLs, addresses, tax, metadata.

Accepted values go to the module's shared project (``po``) and are checked as stored; rejected
ones go to ``po_empty``, which must hold no invoice at the end of the module (nothing written).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.api.processout import invoices_support as s

po = s.po
po_empty = s.po_empty
no_server_errors = s.no_server_errors

BASE: dict[str, Any] = {"amount": "10", "currency": "EUR"}
_STEP_RE = re.compile(r"([a-z0-9_]+)(?:\[(\d+)\])?")


def body_with(path: str, value: Any) -> dict[str, Any]:
    """``body_with("details[0].name", "x")`` -> the base body with ``details: [{amount, name}]``."""
    body: dict[str, Any] = dict(BASE)
    node = body
    steps = path.split(".")
    for i, step in enumerate(steps):
        match = _STEP_RE.fullmatch(step)
        assert match, step
        name, index = match.group(1), match.group(2)
        last = i == len(steps) - 1
        if index is not None:
            assert not last and index == "0"
            node[name] = [{"amount": "1"}] if name == "details" else [{}]
            node = node[name][0]
        elif last:
            node[name] = value
        else:
            node = node.setdefault(name, {})
    return body


def value_at(invoice: dict[str, Any], path: str) -> Any:
    node: Any = invoice
    for step in path.split("."):
        match = _STEP_RE.fullmatch(step)
        assert match, step
        node = node[match.group(1)]
        if match.group(2) is not None:
            node = node[int(match.group(2))]
    return node


def post(client: httpx.Client, path: str, value: Any) -> httpx.Response:
    return client.post("/invoices", json=body_with(path, value))


# --- lengths -------------------------------------------------------------------------------

LENGTHS = [
    ("name", 80, "n"),
    ("statement_descriptor", 22, "s"),
    ("details[0].name", 80, "n"),
    ("details[0].type", 30, "t"),
    ("details[0].reference", 255, "r"),
    ("details[0].description", 255, "d"),
    ("details[0].brand", 80, "b"),
    ("details[0].model", 80, "m"),
    ("risk.score", 12, "9"),
    ("shipping.provider", 32, "p"),
    ("shipping.address1", 255, "a"),
    ("shipping.address2", 255, "a"),
    ("shipping.state", 80, "s"),
    ("shipping.city", 80, "c"),
    ("shipping.zip", 16, "7"),
    ("shipping.relay_store_name", 100, "r"),
    ("shipping.phone.number", 14, "6"),
]


@pytest.mark.parametrize(("path", "limit", "char"), LENGTHS, ids=[p for p, _, _ in LENGTHS])
def test_longest_value_is_accepted(po: httpx.Client, path: str, limit: int, char: str) -> None:
    value = char * limit
    invoice = s.success(post(po, path, value))["invoice"]
    assert value_at(invoice, path) == value
    assert value_at(s.find(po, invoice["id"]), path) == value


@pytest.mark.parametrize(("path", "limit", "char"), LENGTHS, ids=[p for p, _, _ in LENGTHS])
def test_one_character_more_is_rejected(
    po_empty: httpx.Client, path: str, limit: int, char: str
) -> None:
    body = s.invalid(post(po_empty, path, char * (limit + 1)), path, "request.validation.error")
    assert f"at most {limit} characters" in body["message"]


def test_lengths_count_characters_not_bytes(po: httpx.Client) -> None:
    name = "é" * 40 + "日本" * 20  # 80 characters, 200 UTF-8 bytes
    assert s.create(po, name=name)["name"] == name


@pytest.mark.parametrize(
    "descriptor", ["amazing item", "My Company", "ACME 1.0/x", "A", "0123456789 ./abcdefghi"]
)
def test_statement_descriptor_allowed_characters(po: httpx.Client, descriptor: str) -> None:
    assert s.create(po, statement_descriptor=descriptor)["statement_descriptor"] == descriptor


@pytest.mark.parametrize("descriptor", ["a-b", "a_b", "ab!", "café", "a\tb", "a,b", "a:b", "100%"])
def test_statement_descriptor_other_characters_rejected(
    po_empty: httpx.Client, descriptor: str
) -> None:
    response = post(po_empty, "statement_descriptor", descriptor)
    s.invalid(response, "statement_descriptor", "request.validation.invalid-statement-descriptor")


# --- enums ---------------------------------------------------------------------------------

ENUMS: dict[str, tuple[str, ...]] = {
    "initiation_type": ("cit", "mit"),
    "payment_intent": (
        "one-off",
        "recurring",
        "recurring-standing-order",
        "recurring-subscription",
        "installment",
        "unscheduled",
        "unscheduled-delayed-charge",
        "unscheduled-resubmission",
        "unscheduled-no-show",
        "unscheduled-reauthorization",
    ),
    "sca_exemption_reason": ("low-value", "trusted-beneficiary", "transaction-risk-analysis"),
    "challenge_indicator": (
        "no-preference",
        "no-challenge-requested",
        "challenge-requested",
        "challenge-requested-mandate",
        "no-challenge-requested-tra-performed",
        "no-challenge-requested-data-share-only",
        "no-challenge-requested-sca-performed",
        "no-challenge-requested-whitelist-exemption",
        "challenge-requested-whitelist-prompt",
        "cb-scoring",
    ),
    "payment_type": ("moto", "ecommerce"),
    "details[0].category": (
        "food",
        "entertainment",
        "home",
        "appliance",
        "bidding",
        "gift",
        "technology",
        "media",
        "communication",
        "health",
        "sport",
        "tickets",
        "personal-service",
        "professional-service",
        "clothing",
        "travel",
        "transport",
        "other",
    ),
    "details[0].condition": ("new", "refurbished", "used", "other"),
    "device.channel": ("web", "ios", "android", "other"),
    "shipping.method": (
        "web",
        "collect-at-shop",
        "relay",
        "travel-station",
        "home",
        "shipping",
        "locker",
        "other",
    ),
    "shipping.delay": ("express", "priority", "standard", "other"),
}
ENUM_VALUES = [(path, value) for path, values in ENUMS.items() for value in values]


@pytest.mark.parametrize(("path", "value"), ENUM_VALUES, ids=[f"{p}={v}" for p, v in ENUM_VALUES])
def test_every_enum_value_is_accepted(po: httpx.Client, path: str, value: str) -> None:
    invoice = s.success(post(po, path, value))["invoice"]
    assert value_at(invoice, path) == value
    assert value_at(s.find(po, invoice["id"]), path) == value


@pytest.mark.parametrize("path", list(ENUMS))
def test_enum_is_case_insensitive_and_stored_lower_case(po: httpx.Client, path: str) -> None:
    value = ENUMS[path][-1]
    invoice = s.success(post(po, path, value.upper()))["invoice"]
    assert value_at(invoice, path) == value


@pytest.mark.parametrize("path", list(ENUMS))
@pytest.mark.parametrize("wrong", ["definitely-not-allowed", "", " web"])
def test_wrong_enum_value_is_rejected(po_empty: httpx.Client, path: str, wrong: str) -> None:
    body = s.invalid(post(po_empty, path, wrong), path, "request.validation.invalid-enum")
    # The message lists what is allowed.
    assert all(value in body["message"] for value in ENUMS[path])


@pytest.mark.parametrize("path", list(ENUMS))
def test_enum_must_be_a_string(po_empty: httpx.Client, path: str) -> None:
    s.invalid(post(po_empty, path, 1), path, "request.validation.error")


# --- country codes, URLs, IP addresses -----------------------------------------------------


@pytest.mark.parametrize("path", ["shipping.country_code", "billing.country_code"])
@pytest.mark.parametrize("code", ["ZZ", "XX", "FRA", "F", "", "12", "U S"])
def test_unknown_country_code_rejected(po_empty: httpx.Client, path: str, code: str) -> None:
    s.invalid(post(po_empty, path, code), path, "request.validation.invalid-country")


@pytest.mark.parametrize(("sent", "stored"), [("FR", "FR"), ("fr", "FR"), ("Us", "US")])
def test_country_code_normalised(po: httpx.Client, sent: str, stored: str) -> None:
    invoice = s.success(post(po, "shipping.country_code", sent))["invoice"]
    assert invoice["shipping"]["country_code"] == stored


URL_FIELDS = ["return_url", "cancel_url", "webhook_url"]


@pytest.mark.parametrize("field", URL_FIELDS)
@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://x",
        "ftp://example.com/file",
        "mailto:shop@example.com",
        "javascript:alert(1)",
        "//example.com/path",
        "https://",
        "http:///path",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://example.com:0/",  # no server listens on port 0
        "https://example..com/",  # an empty label: no IDNA form, never reachable
        "https://" + "a" * 64 + ".example.com/",  # a DNS label is at most 63 characters
        "",
    ],
)
def test_invalid_url_rejected(po_empty: httpx.Client, field: str, url: str) -> None:
    s.invalid(post(po_empty, field, url), field, "request.validation.invalid-url")


@pytest.mark.parametrize("field", URL_FIELDS)
@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com/return-url",
        "http://localhost:8000/cb?x=1&y=2#frag",
        "https://[2001:db8::1]/hook",
    ],
)
def test_valid_url_accepted(po: httpx.Client, field: str, url: str) -> None:
    assert s.success(post(po, field, url))["invoice"][field] == url


@pytest.mark.parametrize(
    "ip", ["999.1.1.1", "1.1.1", "1.1.1.1.1", "abc", "", "::g", "1.1.1.1/24", "256.0.0.0"]
)
def test_invalid_ip_address_rejected(po_empty: httpx.Client, ip: str) -> None:
    response = post(po_empty, "device.ip_address", ip)
    s.invalid(response, "device.ip_address", "request.validation.invalid-ip")


@pytest.mark.parametrize(
    ("ip", "stored"),
    [
        ("1.1.1.1", "1.1.1.1"),
        ("::1", "::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ],
)
def test_ip_address_accepted(po: httpx.Client, ip: str, stored: str) -> None:
    invoice = s.success(post(po, "device.ip_address", ip))["invoice"]
    assert invoice["device"]["ip_address"] == stored


# --- tax -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "stored"),
    [
        ("0", "0"),
        ("100", "100"),
        ("7.5", "7.5"),
        ("7.50", "7.5"),
        ("0.0", "0"),
        ("20", "20"),
        ("10.0", "10"),
        # 37 digits: stored "100" (normalize() rounds to the default context's 28 digits).
        ("99.99999999999999999999999999999999999", "99.99999999999999999999999999999999999"),
    ],
)
def test_tax_rate_between_0_and_100(po: httpx.Client, rate: str, stored: str) -> None:
    invoice = s.success(post(po, "tax.rate", rate))["invoice"]
    assert invoice["tax"] == {"amount": None, "rate": stored}
    assert s.find(po, invoice["id"])["tax"] == {"amount": None, "rate": stored}


@pytest.mark.parametrize(
    "rate", ["101", "100.01", "-1", "-0.5", "abc", "", "1e1", "NaN", "Infinity", "5%"]
)
def test_tax_rate_out_of_range_rejected(po_empty: httpx.Client, rate: str) -> None:
    s.invalid(post(po_empty, "tax.rate", rate), "tax.rate", "request.validation.invalid-tax-rate")


def test_tax_rate_must_be_a_string(po_empty: httpx.Client) -> None:
    s.invalid(post(po_empty, "tax.rate", 7.5), "tax.rate", "request.validation.error")


@pytest.mark.parametrize(("amount", "stored"), [("0", "0"), ("1.5", "1.5"), ("10", "10")])
def test_tax_amount_zero_or_positive(po: httpx.Client, amount: str, stored: str) -> None:
    invoice = s.success(post(po, "tax.amount", amount))["invoice"]
    assert invoice["tax"]["amount"] == stored


@pytest.mark.parametrize("amount", ["-1", "-0.01", "1.999", "abc", ""])
def test_tax_amount_negative_or_malformed_rejected(po_empty: httpx.Client, amount: str) -> None:
    response = post(po_empty, "tax.amount", amount)
    s.invalid(response, "tax.amount", "request.validation.invalid-amount")


# --- metadata, details.quantity, phone -----------------------------------------------------


def test_metadata_string_to_string(po: httpx.Client) -> None:
    metadata = {"fruit": "banana", "n": "1", "": "empty key", "unicode": "日本"}
    invoice = s.create(po, metadata=metadata, details=[{"amount": "1", "metadata": metadata}])
    assert invoice["metadata"] == metadata
    assert invoice["details"][0]["metadata"] == metadata
    assert s.find(po, invoice["id"])["metadata"] == metadata


@pytest.mark.parametrize("value", [1, 1.5, True, None, ["a"], {"a": "b"}])
@pytest.mark.parametrize("path", ["metadata", "details[0].metadata", "gateway_data"])
def test_metadata_values_must_be_strings(po_empty: httpx.Client, path: str, value: Any) -> None:
    body = s.failure(post(po_empty, path, {"key": value}), 400, "request.validation.error")
    assert body["message"].startswith(f"{path}[")
    assert "must be a string" in body["message"]


@pytest.mark.parametrize("value", ["a=b", ["a", "b"], 5])
def test_metadata_must_be_an_object(po_empty: httpx.Client, value: Any) -> None:
    s.invalid(post(po_empty, "metadata", value), "metadata", "request.validation.error")


def test_metadata_bounded(po_empty: httpx.Client) -> None:
    too_many = {f"k{i}": "v" for i in range(101)}
    s.invalid(post(po_empty, "metadata", too_many), "metadata")
    long_key = {"k" * 256: "v"}
    s.invalid(post(po_empty, "metadata", long_key), "metadata[key]")


def test_details_quantity_defaults_to_1(po: httpx.Client) -> None:
    invoice = s.create(
        po,
        details=[
            {"amount": "1"},
            {"amount": "2", "quantity": None},
            {"amount": "3", "quantity": 4},
        ],
    )
    assert [d["quantity"] for d in invoice["details"]] == [1, 1, 4]
    assert [d["amount"] for d in invoice["details"]] == ["1", "2", "3"]
    assert [d["quantity"] for d in s.find(po, invoice["id"])["details"]] == [1, 1, 4]


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True])
def test_details_quantity_positive_integer(po_empty: httpx.Client, quantity: Any) -> None:
    s.invalid(post(po_empty, "details[0].quantity", quantity), "details[0].quantity")


def test_a_detail_totals_at_most_the_largest_amount(
    po: httpx.Client, po_empty: httpx.Client
) -> None:
    """A detail's amount and quantity were bounded apart, not their product: 999999999999999
    JPY times 1,000,000 made a line of about 10**21 minor units, shown so by the Reepay face
    (past any 64-bit integer of its clients), where the same order line is refused."""
    big = {"amount": "999999999999999", "quantity": 2}
    body = {"amount": "1", "currency": "JPY", "details": [{"amount": "1"}, big]}
    s.invalid(
        po_empty.post("/invoices", json=body), "details[1]", "request.validation.invalid-amount"
    )
    invoice = s.create(po, amount="1", currency="JPY")
    response = po.put(f"/invoices/{invoice['id']}", json={"details": [big]})
    s.invalid(response, "details[0]", "request.validation.invalid-amount")
    assert s.find(po, invoice["id"])["details"] == []
    most = {"amount": "499999999999999", "quantity": 2}
    s.success(po.put(f"/invoices/{invoice['id']}", json={"details": [most]}))


def test_details_keep_their_order_and_get_ids(po: httpx.Client) -> None:
    names = [f"item {i}" for i in range(12)]
    invoice = s.create(po, details=[{"name": n, "amount": str(i)} for i, n in enumerate(names)])
    details = s.find(po, invoice["id"])["details"]
    assert [d["name"] for d in details] == names
    ids = [d["id"] for d in details]
    assert all(s.DETAIL_ID_RE.match(i) for i in ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("sent", "stored"), [("+33", "0033"), ("0033", "0033"), ("33", "33")])
def test_phone_dialing_code_plus_is_00(po: httpx.Client, sent: str, stored: str) -> None:
    invoice = s.success(post(po, "shipping.phone.dialing_code", sent))["invoice"]
    assert invoice["shipping"]["phone"]["dialing_code"] == stored


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("shipping.phone.dialing_code", "+3a"),
        ("shipping.phone.dialing_code", "12345"),
        ("shipping.phone.number", "call me"),
        ("shipping.email", "not-an-email"),
    ],
)
def test_phone_and_email_checked(po_empty: httpx.Client, path: str, value: str) -> None:
    s.invalid(post(po_empty, path, value), path)


# --- wrong types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "want"),
    [
        ("name", 5, "must be a string or null, not an integer"),
        ("name", True, "must be a string or null, not a boolean"),
        ("name", {"a": 1}, "must be a string or null, not an object"),
        ("order_id", 1, "must be a string"),
        ("customer_id", 1, "must be a string"),
        ("details", {"amount": "1"}, "must be an array"),
        ("risk", "high", "must be an object"),
        ("risk.is_legit", "yes", "must be a boolean"),
        ("risk.skip_gateway_rules", 1, "must be a boolean"),
        ("shipping.phone", "0612345678", "must be an object"),
        ("device.id", 42, "must be a string"),
        ("require_backend_capture", "true", "must be a boolean"),
        ("unsupported_feature_bypass.incremental_authorization", "no", "must be a boolean"),
        ("details[0].marketplace_merchant_is_business", "yes", "must be a boolean"),
        ("expires_at", "tomorrow", "RFC 3339"),
        ("expires_at", "2030-01-01T00:00:00", "time zone"),
        ("auto_capture_at", 1700000000, "must be"),
        ("shipping.expects_shipping_at", "2023-04-21", "RFC 3339"),
        ("details[0].marketplace_merchant_created_at", "yesterday", "RFC 3339"),
        ("external_fraud_tools", ["forter"], "must be an object"),
    ],
)
def test_wrong_type_names_the_field(
    po_empty: httpx.Client, path: str, value: Any, want: str
) -> None:
    body = s.invalid(post(po_empty, path, value), path, "request.validation.error")
    assert want in body["message"]


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [
        (b'{"amount": "1", "currency": "EUR"', "request.body.malformed"),
        (b'{"amount": "1", "currency": "EUR",}', "request.body.malformed"),
        (b"{amount: 1}", "request.body.malformed"),
        (b'{"amount": "1", "currency": "EUR"} x', "request.body.malformed"),
        (b'{"name": "\xff", "amount": "1", "currency": "EUR"}', "request.body.malformed"),
        (b"[]", "request.validation.error"),
        (b"null", "request.validation.error"),
        (b'"text"', "request.validation.error"),
    ],
)
def test_malformed_json_is_400(po_empty: httpx.Client, raw: bytes, error_type: str) -> None:
    response = po_empty.post("/invoices", content=raw, headers={"Content-Type": "application/json"})
    s.failure(response, 400, error_type)


def test_deeply_nested_raw_json_is_400(po_empty: httpx.Client) -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    response = po_empty.post("/invoices", json={**BASE, "external_fraud_tools": {"forter": deep}})
    s.invalid(response, "external_fraud_tools")


def test_unsupported_content_type_is_400(po_empty: httpx.Client) -> None:
    response = po_empty.post(
        "/invoices", content=b"amount=1&currency=EUR", headers={"Content-Type": "text/plain"}
    )
    s.failure(response, 400, "request.body.unsupported-media-type")


def test_empty_body_asks_for_the_currency(po_empty: httpx.Client) -> None:
    response = po_empty.post("/invoices", content=b"", headers={"Content-Type": "application/json"})
    s.invalid(response, "currency", "request.validation.missing-currency")


def test_unknown_fields_are_ignored(po: httpx.Client) -> None:
    """Official clients send fields of newer API versions; they must not break a request."""
    invoice = s.create(po, brand_new_field={"x": 1}, details=[{"amount": "1", "future": True}])
    assert "brand_new_field" not in invoice
    assert "future" not in invoice["details"][0]


def test_rejected_requests_write_nothing(client: httpx.Client) -> None:
    kept = s.create(client, name="kept")
    rejected: list[dict[str, Any]] = [
        body_with("name", "x" * 81),
        body_with("payment_intent", "sometimes"),
        body_with("shipping.country_code", "ZZ"),
        body_with("return_url", "ftp://x"),
        body_with("device.ip_address", "999.1.1.1"),
        body_with("tax.rate", "101"),
        body_with("metadata", {"n": 1}),
        {"amount": "4.999", "currency": "EUR"},
        {"amount": "1", "currency": "XYZ"},
        # Valid up to its last detail: the invoice, its transaction and first lines are not
        # written either.
        {**BASE, "details": [{"amount": "1"}] * 5 + [{"amount": "1", "category": "x"}]},
    ]
    for body in rejected:
        s.failure(client.post("/invoices", json=body), 400)
    assert s.all_invoice_ids(client) == [kept["id"]]
    assert s.find(client, kept["id"]) == kept


# --- the strict wire grammar, over HTTP (JSON and form bodies) --------------------------------

FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def post_form(client: httpx.Client, pairs: list[tuple[str, str]]) -> httpx.Response:
    return client.post("/invoices", content=urlencode(pairs), headers=FORM_HEADERS)


@pytest.mark.parametrize("rate", ["1_0", "\u0665", " 5 ", "+5", "5\n", "\u00a05", ".5", "5.", "05"])
def test_tax_rate_follows_the_decimal_grammar(po_empty: httpx.Client, rate: str) -> None:
    """Decimal() accepted "1_0" (stored "10"), Arabic-Indic digits, spaces and signs."""
    s.invalid(post(po_empty, "tax.rate", rate), "tax.rate", "request.validation.invalid-tax-rate")
    s.invalid(
        post_form(po_empty, [("amount", "10"), ("currency", "EUR"), ("tax[rate]", rate)]),
        "tax.rate",
        "request.validation.invalid-tax-rate",
    )


@pytest.mark.parametrize("amount", [" 5", "5 ", "\u00a05", "5\n", "\t5", "\u0665", "\uff15", "5_0"])
@pytest.mark.parametrize("path", ["amount", "tax.amount", "shipping.amount", "details[0].amount"])
def test_amounts_follow_the_decimal_grammar(po_empty: httpx.Client, path: str, amount: str) -> None:
    """str.strip() let surrounding whitespace (NBSP, newline) through."""
    body = body_with(path, amount)
    s.invalid(po_empty.post("/invoices", json=body), path, "request.validation.invalid-amount")


@pytest.mark.parametrize("quantity", ["1e3", "1.0", "01", "+1", " 1", "1_0", "\u0661"])
def test_form_quantity_follows_the_integer_grammar(po_empty: httpx.Client, quantity: str) -> None:
    """msgspec's lax conversion turned "1e3" into 1000 and "1.0" into 1 (JSON refused both)."""
    pairs = [
        ("amount", "10"),
        ("currency", "EUR"),
        ("details[0][amount]", "10"),
        ("details[0][quantity]", quantity),
    ]
    s.invalid(post_form(po_empty, pairs), "details[0].quantity")


def test_form_numbers_in_the_grammar_are_accepted(po: httpx.Client) -> None:
    pairs = [
        ("amount", "10.50"),
        ("currency", "EUR"),
        ("details[0][amount]", "10.5"),
        ("details[0][quantity]", "1000"),
        ("tax[rate]", "7.50"),
        ("risk[is_legit]", "True"),
    ]
    invoice = s.success(post_form(po, pairs))["invoice"]
    assert (invoice["amount"], invoice["tax"]["rate"]) == ("10.5", "7.5")
    assert invoice["details"][0]["quantity"] == 1000
    assert invoice["risk"]["is_legit"] is True


# --- form bodies: bracket keys parse the same whatever the order -----------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"amount=1&currency=EUR&metadata[0]=a&metadata[x]=b",
        b"amount=1&currency=EUR&metadata[x]=b&metadata[0]=a",
    ],
)
def test_form_metadata_mixing_numeric_and_named_keys(po: httpx.Client, raw: bytes) -> None:
    """It was a 500 (int("x")) when the numeric key came first."""
    invoice = s.success(po.post("/invoices", content=raw, headers=FORM_HEADERS))["invoice"]
    assert invoice["metadata"] == {"0": "a", "x": "b"}


@pytest.mark.parametrize("key", ["7", "2024", "0"])
def test_form_metadata_numeric_keys_work_as_in_json(po: httpx.Client, key: str) -> None:
    pairs = [("amount", "1"), ("currency", "EUR"), (f"metadata[{key}]", "a")]
    assert s.success(post_form(po, pairs))["invoice"]["metadata"] == {key: "a"}
    assert s.create(po, amount="1", metadata={key: "a"})["metadata"] == {key: "a"}


def test_form_free_form_json_mixing_numeric_and_named_keys(po: httpx.Client) -> None:
    raw = (
        b"amount=1&currency=EUR&external_fraud_tools[forter][0]=a&external_fraud_tools[forter][k]=b"
    )
    invoice = s.success(po.post("/invoices", content=raw, headers=FORM_HEADERS))["invoice"]
    assert invoice["external_fraud_tools"] == {"forter": {"0": "a", "k": "b"}}


@pytest.mark.parametrize(
    "raw",
    [
        b"details[0][amount]=1&details[foo][amount]=2",
        b"details[foo][amount]=2&details[0][amount]=1",
        b"details[0][amount]=1&details[-1][amount]=2",  # kept one line of amount 2, silently
        b"details[0][amount]=1&details[01][amount]=2",
        b"details[0][amount]=1&details[][amount]=2",
    ],
)
def test_form_details_with_bad_indices_are_a_clear_400(po_empty: httpx.Client, raw: bytes) -> None:
    body = b"amount=1&currency=EUR&" + raw
    s.invalid(po_empty.post("/invoices", content=body, headers=FORM_HEADERS), "details")


def test_form_details_order_independent(po: httpx.Client) -> None:
    pairs = [
        ("amount", "6"),
        ("currency", "EUR"),
        ("details[0][name]", "a"),
        ("details[0][amount]", "1"),
        ("details[1][name]", "b"),
        ("details[1][amount]", "2"),
        ("details[10][name]", "c"),
        ("details[10][amount]", "3"),
    ]
    expected = [("a", "1"), ("b", "2"), ("c", "3")]
    for ordered in (pairs, pairs[::-1], pairs[1::2] + pairs[::2]):
        invoice = s.success(post_form(po, ordered))["invoice"]
        assert [(d["name"], d["amount"]) for d in invoice["details"]] == expected


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"amount=1&currency=EUR&name=a&name=b", "name"),
        (b"amount=1&currency=EUR&metadata[k]=1&metadata[k]=2", "metadata.k"),
        (b"amount=1&currency=EUR&tax[rate]=1&tax[rate][x]=2", "tax.rate"),
    ],
)
def test_form_conflicts_name_the_field(po_empty: httpx.Client, raw: bytes, field: str) -> None:
    response = po_empty.post("/invoices", content=raw, headers=FORM_HEADERS)
    s.invalid(response, field, "request.body.form-conflict")


# --- tax within the amount, truncated timestamps -----------------------------------------------


def test_tax_larger_than_the_amount_is_rejected(po_empty: httpx.Client) -> None:
    body = {"amount": "1", "currency": "EUR", "tax": {"amount": "5"}}
    response = po_empty.post("/invoices", json=body)
    s.invalid(response, "tax.amount", "request.validation.tax-exceeds-amount")


def test_tax_larger_than_the_amount_is_rejected_on_put(po: httpx.Client) -> None:
    invoice = s.create(po, amount="10", tax={"amount": "2"})
    response = po.put(f"/invoices/{invoice['id']}", json={"amount": "1", "tax": {"amount": "5"}})
    s.invalid(response, "tax.amount", "request.validation.tax-exceeds-amount")
    assert s.find(po, invoice["id"]) == invoice


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2030-06-01T12:00:00.9999999Z", "2030-06-01T12:00:00.999999Z"),
        ("2030-06-01T12:00:00.0000009Z", "2030-06-01T12:00:00.000000Z"),
        ("2030-06-01T14:00:00.99999999+02:00", "2030-06-01T12:00:00.999999Z"),
    ],
)
def test_timestamps_are_truncated_not_rounded(po: httpx.Client, sent: str, stored: str) -> None:
    """msgspec rounded "...:00.9999999Z" up into the next second."""
    invoice = s.create(po, expires_at=sent, shipping={"expects_shipping_at": sent})
    assert invoice["expires_at"] == stored
    assert invoice["shipping"]["expects_shipping_at"] == stored
    assert s.find(po, invoice["id"])["expires_at"] == stored


# --- PUT refuses the fields it cannot change ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "USD"),
        ("name", "renamed"),
        ("metadata", {"a": "b"}),
        ("customer_id", "cust_x"),
        ("expires_at", "2030-01-01T00:00:00Z"),
        ("external_fraud_tools", {}),
        ("require_backend_capture", False),
    ],
)
def test_put_of_a_field_it_cannot_change_is_400(po: httpx.Client, field: str, value: Any) -> None:
    """They were answered 200 and dropped."""
    invoice = s.create(po, name="kept")
    response = po.put(f"/invoices/{invoice['id']}", json={"amount": "2", field: value})
    body = s.invalid(response, field, "request.validation.immutable-field")
    assert "cannot be changed" in body["message"]
    assert s.find(po, invoice["id"]) == invoice


def test_put_immutable_field_in_a_form_is_400(po: httpx.Client) -> None:
    invoice = s.create(po, name="kept")
    response = po.put(
        f"/invoices/{invoice['id']}", content=b"amount=2&name=renamed", headers=FORM_HEADERS
    )
    s.invalid(response, "name", "request.validation.immutable-field")


def test_put_nulls_and_unknown_fields_are_not_changes(po: httpx.Client) -> None:
    invoice = s.create(po, name="kept")
    body = {"amount": "3", "name": None, "currency": None, "metadata": None, "brand_new": 1}
    response = po.put(f"/invoices/{invoice['id']}", json=body)
    updated = s.success(response)["invoice"]
    assert (updated["amount"], updated["name"], updated["currency"]) == ("3", "kept", "EUR")
