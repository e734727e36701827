"""``processout.convert`` in-process: the rules that need no database (tax within the amount,
fields PUT cannot change, bounds of free-form JSON, truncated timestamps, customer fields)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
import pytest

from settle.api.http import decode_body
from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.clock import rfc3339
from settle.errors import ValidationError
from settle.invoices.models import InvoiceChanges

JSON = "application/json"


def create_body(**fields: Any) -> wire.InvoiceCreate:
    body = {"amount": "10", "currency": "EUR", **fields}
    return decode_body(msgspec.json.encode(body), JSON, wire.InvoiceCreate)


def update_body(**fields: Any) -> wire.InvoiceUpdate:
    return decode_body(msgspec.json.encode(fields), JSON, wire.InvoiceUpdate)


def refused(call: Any, field: str, code: str | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field, info.value.message
    assert info.value.message.startswith(f"{field}:"), info.value.message
    if code is not None:
        assert info.value.code == code
    return info.value


# --- fields PUT cannot change (defect 7) -----------------------------------------------------


def test_update_lists_every_other_create_field() -> None:
    create, update = wire.InvoiceCreate.__struct_fields__, wire.InvoiceUpdate.__struct_fields__
    assert set(update) == set(create)
    assert set(wire.IMMUTABLE) == set(create) - set(wire.UPDATABLE)


@pytest.mark.parametrize("field", wire.IMMUTABLE)
def test_every_immutable_field_is_refused_unless_null(field: str) -> None:
    values: list[Any] = ["x", 1, {"a": "b"}, [], False, ""]
    for value in values:
        body = update_body(**{field: value})
        refused(partial(convert.invoice_changes, body, "EUR"), field, convert.IMMUTABLE_CODE)
    assert convert.invoice_changes(update_body(**{field: None}), "EUR") == InvoiceChanges()


def test_immutable_fields_in_form_bodies() -> None:
    body = decode_body(
        b"amount=1&name=renamed", "application/x-www-form-urlencoded", wire.InvoiceUpdate
    )
    refused(lambda: convert.invoice_changes(body, "EUR"), "name", convert.IMMUTABLE_CODE)


def test_unknown_fields_on_update_stay_ignored() -> None:
    changes = convert.invoice_changes(update_body(amount="2", brand_new={"x": 1}), "EUR")
    assert changes == InvoiceChanges(amount=200)


def test_the_update_schema_says_only_null_is_accepted() -> None:
    schema = msgspec.json.schema(wire.InvoiceUpdate)["$defs"]["InvoiceUpdate"]["properties"]
    assert schema["name"]["type"] == "null"
    assert "cannot be changed" in schema["name"]["description"].lower()


# --- free-form JSON bounds (defect 8) --------------------------------------------------------

FREE_FORM = ["external_fraud_tools", "submerchant", "verification", "gateway_data", "device"]


def _free(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"device": {"threeds_sdk": value}} if field == "device" else {field: value}


def _name(field: str) -> str:
    return "device.threeds_sdk" if field == "device" else field


@pytest.mark.parametrize("field", [f for f in FREE_FORM if f != "gateway_data"])
def test_free_form_fields_are_bounded_in_keys(field: str) -> None:
    # (gateway_data is string to string with at most 100 entries: its schema says so first.)
    at_limit = {f"k{i}": "v" for i in range(convert.MAX_FREE_FORM_KEYS)}
    convert.invoice_input(create_body(**_free(field, at_limit)))
    over = {**at_limit, "one": "more"}
    body = create_body(**_free(field, over))
    refused(lambda: convert.invoice_input(body), _name(field), convert.FREE_FORM_CODE)


def _sized(size: int) -> dict[str, str]:
    """An object of string values (at most 4096 characters each, as gateway_data allows)
    whose JSON encoding is exactly ``size`` bytes."""
    value: dict[str, str] = {}
    remaining = size - 2  # the braces
    i = 0
    while remaining > 0:
        key = f"k{i}"
        syntax = len(key) + 5 + (1 if value else 0)  # "k":"" and a comma
        chunk = min(4000, remaining - syntax)
        if chunk < 0:  # too little left for another entry: grow the previous one
            last = next(reversed(value))
            value[last] += "v" * remaining
            break
        value[key] = "v" * chunk
        remaining -= syntax + chunk
        i += 1
    assert len(msgspec.json.encode(value)) == size
    return value


@pytest.mark.parametrize("field", FREE_FORM)
def test_free_form_fields_are_bounded_in_bytes(field: str) -> None:
    convert.invoice_input(create_body(**_free(field, _sized(convert.MAX_FREE_FORM_BYTES))))
    body = create_body(**_free(field, _sized(convert.MAX_FREE_FORM_BYTES + 1)))
    refused(lambda: convert.invoice_input(body), _name(field), convert.FREE_FORM_CODE)


def test_free_form_keys_are_counted_at_every_level() -> None:
    nested = {"a": {f"k{i}": {"x": 1} for i in range(130)}}  # 1 + 130 + 130 keys
    body = create_body(external_fraud_tools=nested)
    refused(lambda: convert.invoice_input(body), "external_fraud_tools", convert.FREE_FORM_CODE)


def test_the_probe_object_of_80000_keys_is_refused() -> None:
    big = {f"k{i}": 0 for i in range(80_000)}
    body = create_body(external_fraud_tools=big)
    refused(lambda: convert.invoice_input(body), "external_fraud_tools", convert.FREE_FORM_CODE)


# --- timestamps are truncated, not rounded (defect 5) ----------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2030-06-01T12:00:00.9999999Z", "2030-06-01T12:00:00.999999Z"),
        ("2030-06-01T12:00:00.1234565Z", "2030-06-01T12:00:00.123456Z"),
        ("2030-06-01T23:59:59.99999999999+02:00", "2030-06-01T21:59:59.999999Z"),
        ("2030-06-01t12:00:00z", "2030-06-01T12:00:00.000000Z"),
        ("2030-06-01T12:00:00-00:00", "2030-06-01T12:00:00.000000Z"),
    ],
)
def test_timestamps_are_truncated_to_microseconds(sent: str, stored: str) -> None:
    data = convert.invoice_input(
        create_body(
            expires_at=sent,
            auto_capture_at=sent,
            shipping={"expects_shipping_at": sent},
            details=[{"amount": "1", "marketplace_merchant_created_at": sent}],
        )
    )
    assert data.expires_at is not None and rfc3339(data.expires_at) == stored
    assert data.auto_capture_at is not None and rfc3339(data.auto_capture_at) == stored
    assert data.attributes["shipping"]["expects_shipping_at"] == stored
    created_at = data.lines[0].marketplace_merchant_created_at
    assert created_at is not None and rfc3339(created_at) == stored
    customer = convert.customer_fields(
        decode_body(msgspec.json.encode({"registered_at": sent}), JSON, wire.CustomerIn)
    )
    assert customer.registered_at is not None and rfc3339(customer.registered_at) == stored


def test_timestamps_keep_the_year_range_check() -> None:
    for sent in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01"):
        body = create_body(expires_at=sent)
        error = refused(partial(convert.invoice_input, body), "expires_at")
        assert "between years 0001 and 9999" in error.message
    data = convert.invoice_input(create_body(expires_at="9999-12-31T23:59:59.9999999Z"))
    assert data.expires_at is not None
    assert rfc3339(data.expires_at) == "9999-12-31T23:59:59.999999Z"


# --- customers: date_of_birth and sex (defect 6) ---------------------------------------------


def customer(**fields: Any) -> Any:
    body = decode_body(msgspec.json.encode(fields), JSON, wire.CustomerIn)
    return convert.customer_fields(body)


@pytest.mark.parametrize("value", ["1990-04-01", "2000-02-29", "1900-01-01"])
def test_date_of_birth_is_a_calendar_date(value: str) -> None:
    assert customer(date_of_birth=value).date_of_birth == value


@pytest.mark.parametrize(
    "value", ["not-a-date", "1990-02-30", "1990-4-1", "01/04/1990", " 1990-04-01", "1990-04-01Z"]
)
def test_date_of_birth_must_be_a_real_date(value: str) -> None:
    refused(
        lambda: customer(date_of_birth=value), "date_of_birth", "request.validation.invalid-date"
    )


def test_date_of_birth_may_not_be_in_the_future() -> None:
    today = datetime.now(UTC).date()
    assert customer(date_of_birth=today.isoformat()).date_of_birth == today.isoformat()
    later = (today + timedelta(days=2)).isoformat()
    refused(
        lambda: customer(date_of_birth=later), "date_of_birth", "request.validation.invalid-date"
    )


@pytest.mark.parametrize(
    ("sent", "stored"), [("male", "male"), ("Female", "female"), ("OTHER", "other")]
)
def test_sex_is_one_of_the_allowed_values(sent: str, stored: str) -> None:
    assert customer(sex=sent).sex == stored


@pytest.mark.parametrize("value", ["", "f", "woman", "unknown", " male", "any string"])
def test_other_sex_values_are_refused(value: str) -> None:
    refused(lambda: customer(sex=value), "sex", "request.validation.invalid-enum")


def test_nulls_still_mean_not_given() -> None:
    fields = customer(date_of_birth=None, sex=None)
    assert (fields.date_of_birth, fields.sex) == (None, None)
