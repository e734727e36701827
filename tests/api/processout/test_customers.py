"""ProcessOut customers over HTTP: POST/GET/PUT/DELETE /customers/{id} and GET /customers.

Bodies are shaped as the official client sends them (every known field, unset ones as null),
and as the form-encoded ``curl -d`` examples of the ProcessOut documentation.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from settle.db.database import connect
from settle.projects import service as projects
from settle.projects.keys import new_processout_secret, processout_username
from settle.projects.models import IssuedKeys
from tests.conftest import RunningServer

ID_RE = re.compile(r"cust_[A-Za-z0-9]{32}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")

# Every field Customer.create of processout==10.0.1 sends, unset ones as null.
SDK_CREATE_FIELDS = [
    "balance",
    "currency",
    "email",
    "first_name",
    "last_name",
    "company_name",
    "address1",
    "address2",
    "city",
    "state",
    "zip",
    "country_code",
    "ip_address",
    "phone",
    "legal_document",
    "date_of_birth",
    "is_business",
    "sex",
    "metadata",
    "id",
    "reference_id",
    "registered_at",
    "phone_number",
]
# Every field Customer.save sends.
SDK_SAVE_FIELDS = [
    "balance",
    "default_token_id",
    "email",
    "first_name",
    "last_name",
    "company_name",
    "address1",
    "address2",
    "city",
    "state",
    "zip",
    "country_code",
    "ip_address",
    "phone",
    "legal_document",
    "date_of_birth",
    "is_business",
    "sex",
    "metadata",
    "registered_at",
    "phone_number",
]

FULL: dict[str, Any] = {
    "email": "jane.doe@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "company_name": "Doe & Co",
    "address1": "1 Rue de Rivoli",
    "address2": "Bâtiment B",
    "city": "Paris",
    "state": "Île-de-France",
    "zip": "75001",
    "country_code": "fr",
    "ip_address": "2001:DB8::1",
    "phone": {"number": "6 12 34 56 78", "dialing_code": "+33"},
    "phone_number": "+33612345678",
    "legal_document": "123-45-678",
    "date_of_birth": "1990-04-01",
    "is_business": True,
    "sex": "female",
    "metadata": {"crm_id": "42", "tier": "gold"},
    "reference_id": "crm-42",
    "registered_at": "2020-01-02T03:04:05+01:00",
    "balance": "10.5",
    "currency": "eur",
}


def sdk_body(**given: Any) -> dict[str, Any]:
    """A create body as the official client builds it."""
    body: dict[str, Any] = dict.fromkeys(SDK_CREATE_FIELDS)
    body.update(given)
    return body


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    resp = client.post("/customers", json=fields)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    customer: dict[str, Any] = body["customer"]
    return customer


def get(client: httpx.Client, customer_id: str) -> dict[str, Any]:
    resp = client.get(f"/customers/{customer_id}")
    assert resp.status_code == 200, resp.text
    customer: dict[str, Any] = resp.json()["customer"]
    return customer


def assert_error(resp: httpx.Response, status: int, error_type: str, field: str = "") -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False
    assert body["error_type"] == error_type
    assert isinstance(body["message"], str) and body["message"]
    if field:
        assert body["message"].startswith(f"{field}:"), body["message"]


def assert_full(customer: dict[str, Any]) -> None:
    """FULL, as stored and normalised."""
    expected = {
        **FULL,
        "country_code": "FR",
        "ip_address": "2001:db8::1",
        "phone": {"number": "6 12 34 56 78", "dialing_code": "0033"},
        "registered_at": "2020-01-02T02:04:05.000000Z",
        "balance": "10.5",
        "currency": "EUR",
    }
    for name, value in expected.items():
        assert customer[name] == value, name


@pytest.fixture
def other(server: RunningServer) -> Iterator[httpx.Client]:
    """A client of another sandbox project."""
    keys = server.create_project("other")
    with httpx.Client(
        base_url=server.url, auth=(keys.processout_username, keys.processout_password), timeout=30
    ) as c:
        yield c


@pytest.fixture
def live(server: RunningServer, project: IssuedKeys) -> Iterator[httpx.Client]:
    """A client of the *same* project as ``client``, with a live key."""
    secret = new_processout_secret(False)

    async def issue() -> None:
        db = await connect(server.database_url)
        try:
            async with db.write() as tx:
                await projects.issue_key(tx, project.project.id, False, "processout", secret)
        finally:
            await db.close()

    asyncio.run(issue())
    with httpx.Client(
        base_url=server.url,
        auth=(processout_username(project.project.id, False), secret),
        timeout=30,
    ) as c:
        yield c


# --- create and find -------------------------------------------------------------------


def test_create_with_every_field_and_find(client: httpx.Client, project: IssuedKeys) -> None:
    before = datetime.now(UTC)
    customer = create(client, **sdk_body(**FULL))
    assert ID_RE.fullmatch(customer["id"]), customer["id"]
    assert customer["project_id"] == project.project.id
    assert customer["sandbox"] is True
    assert customer["default_token_id"] is None
    assert TIME_RE.fullmatch(customer["created_at"]), customer["created_at"]
    created_at = datetime.fromisoformat(customer["created_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert_full(customer)
    found = get(client, customer["id"])
    assert found == customer


def test_nulls_mean_not_given_on_create(client: httpx.Client) -> None:
    customer = create(client, **sdk_body())
    assert ID_RE.fullmatch(customer["id"])
    for name in SDK_CREATE_FIELDS:
        if name not in ("id", "metadata"):
            assert customer[name] is None, name
    assert customer["metadata"] == {}
    assert customer["id"] != "null"


def test_empty_bodies_create_an_empty_customer(client: httpx.Client) -> None:
    assert create(client)["email"] is None
    resp = client.post("/customers")
    assert resp.status_code == 200, resp.text
    assert ID_RE.fullmatch(resp.json()["customer"]["id"])


def test_ids_are_unique(client: httpx.Client) -> None:
    ids = {create(client)["id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(ID_RE.fullmatch(i) for i in ids)


def test_form_encoded_create_and_update(client: httpx.Client) -> None:
    resp = client.post(
        "/customers",
        data={
            "email": "form@example.com",
            "first_name": "Form",
            "country_code": "de",
            "is_business": "true",
            "phone[number]": "30 1234567",
            "phone[dialing_code]": "49",
            "metadata[source]": "curl",
            "balance": "3",
            "currency": "JPY",
            "registered_at": "2021-06-01T10:00:00Z",
        },
    )
    assert resp.status_code == 200, resp.text
    customer = resp.json()["customer"]
    assert customer["email"] == "form@example.com"
    assert customer["country_code"] == "DE"
    assert customer["is_business"] is True
    assert customer["phone"] == {"number": "30 1234567", "dialing_code": "49"}
    assert customer["metadata"] == {"source": "curl"}
    assert customer["balance"] == "3"
    assert customer["currency"] == "JPY"
    assert customer["registered_at"] == "2021-06-01T10:00:00.000000Z"

    resp = client.put(f"/customers/{customer['id']}", data={"last_name": "Encoded"})
    assert resp.status_code == 200, resp.text
    updated = get(client, customer["id"])
    assert updated["last_name"] == "Encoded"
    assert updated["first_name"] == "Form"
    assert updated["metadata"] == {"source": "curl"}


def test_country_code_is_upper_cased(client: httpx.Client) -> None:
    assert create(client, country_code="gb")["country_code"] == "GB"
    assert create(client, country_code="Us")["country_code"] == "US"


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("email", "not-an-email", "request.validation.invalid-email"),
        ("email", "jane@localhost", "request.validation.invalid-email"),
        ("email", "a b@example.com", "request.validation.invalid-email"),
        ("country_code", "ZZ", "request.validation.invalid-country"),
        ("country_code", "FRA", "request.validation.invalid-country"),
        ("ip_address", "300.1.1.1", "request.validation.invalid-ip"),
        ("ip_address", "localhost", "request.validation.invalid-ip"),
        ("currency", "ZZZ", None),
        ("balance", "ten", None),
        ("is_business", "yes", None),
        ("metadata", {"a": 1}, None),
        ("registered_at", "yesterday", None),
        ("zip", "1" * 17, None),
    ],
)
def test_invalid_field_is_400_naming_it(
    client: httpx.Client, field: str, value: Any, error_type: str | None
) -> None:
    body = sdk_body(currency="EUR") if field == "balance" else sdk_body()
    body[field] = value
    resp = client.post("/customers", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()
    assert error["success"] is False
    assert field in error["message"], error["message"]
    if error_type is not None:
        assert error["error_type"] == error_type
        assert error["message"].startswith(f"{field}:")
    # Nothing was created.
    assert client.get("/customers").json()["customers"] == []


def test_balance_needs_a_currency(client: httpx.Client) -> None:
    resp = client.post("/customers", json=sdk_body(balance="5.00"))
    assert_error(resp, 400, "request.validation.error", "currency")


def test_balance_respects_the_currency_exponent(client: httpx.Client) -> None:
    resp = client.post("/customers", json={"balance": "1.5", "currency": "JPY"})
    assert resp.status_code == 400, resp.text
    assert "balance" in resp.json()["message"]
    assert create(client, balance="1.234", currency="kwd")["balance"] == "1.234"


def test_unknown_default_token_is_404(client: httpx.Client) -> None:
    customer = create(client, email="a@example.com")
    resp = client.put(f"/customers/{customer['id']}", json={"default_token_id": "tok_" + "x" * 32})
    assert resp.status_code == 404, resp.text
    assert get(client, customer["id"]) == customer


def test_malformed_bodies(client: httpx.Client) -> None:
    resp = client.post(
        "/customers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(resp, 400, "request.body.malformed")
    resp = client.post("/customers", content=b"<x/>", headers={"content-type": "text/xml"})
    assert_error(resp, 400, "request.body.unsupported-media-type")
    resp = client.post("/customers", json=["not", "an", "object"])
    assert resp.status_code == 400, resp.text
    assert client.get("/customers").json()["customers"] == []


def test_authentication(anon: httpx.Client, project: IssuedKeys) -> None:
    assert_error(anon.get("/customers"), 401, "request.authentication.missing")
    resp = anon.get("/customers", auth=(project.processout_username, "key_sandbox_wrong"))
    assert_error(resp, 401, "request.authentication.invalid")
    # The right key under another project's name is refused too.
    resp = anon.get("/customers", auth=("test-proj_" + "x" * 32, project.processout_password))
    assert_error(resp, 401, "request.authentication.invalid")


# --- update ----------------------------------------------------------------------------


def test_put_with_only_first_name_keeps_the_rest(client: httpx.Client) -> None:
    customer = create(client, **FULL)
    resp = client.put(f"/customers/{customer['id']}", json={"first_name": "Janet"})
    assert resp.status_code == 200, resp.text
    updated = resp.json()["customer"]
    assert updated["first_name"] == "Janet"
    assert updated == {**customer, "first_name": "Janet"}
    assert get(client, customer["id"]) == updated


def test_put_nulls_mean_not_given(client: httpx.Client) -> None:
    customer = create(client, **FULL)
    body: dict[str, Any] = dict.fromkeys(SDK_SAVE_FIELDS)
    body["last_name"] = "Smith"
    resp = client.put(f"/customers/{customer['id']}", json=body)
    assert resp.status_code == 200, resp.text
    assert get(client, customer["id"]) == {**customer, "last_name": "Smith"}


def test_put_changes_every_writable_field(client: httpx.Client) -> None:
    customer = create(client, email="old@example.com")
    changes = {
        **FULL,
        "email": "new@example.com",
        "phone": {"number": "20 7946 0000", "dialing_code": "0044"},
        "country_code": "gb",
        "ip_address": "203.0.113.7",
        "is_business": False,
        "metadata": {"only": "this"},
    }
    resp = client.put(f"/customers/{customer['id']}", json=changes)
    assert resp.status_code == 200, resp.text
    updated = get(client, customer["id"])
    assert updated == resp.json()["customer"]
    assert updated["email"] == "new@example.com"
    assert updated["country_code"] == "GB"
    assert updated["ip_address"] == "203.0.113.7"
    assert updated["is_business"] is False
    assert updated["phone"] == {"number": "20 7946 0000", "dialing_code": "0044"}
    assert updated["metadata"] == {"only": "this"}
    assert updated["balance"] == "10.5"
    assert updated["id"] == customer["id"]
    assert updated["created_at"] == customer["created_at"]
    assert updated["sandbox"] is True


def test_put_balance_alone_uses_the_stored_currency(client: httpx.Client) -> None:
    """The official client's save() sends balance but never currency."""
    customer = create(client, balance="10.00", currency="EUR")
    resp = client.put(f"/customers/{customer['id']}", json={"balance": "12.05"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["customer"]["balance"] == "12.05"
    assert get(client, customer["id"]) == {**customer, "balance": "12.05"}
    # The stored currency's exponent applies: yen have no decimals.
    yen = create(client, balance="100", currency="JPY")
    resp = client.put(f"/customers/{yen['id']}", json={"balance": "12.5"})
    assert_error(resp, 400, "request.validation.invalid-amount", "balance")
    assert get(client, yen["id"]) == yen
    # Without a stored currency, a balance still needs one.
    plain = create(client)
    resp = client.put(f"/customers/{plain['id']}", json={"balance": "1"})
    assert_error(resp, 400, "request.validation.error", "currency")


def test_put_currency_alone_does_not_reprice_the_balance(client: httpx.Client) -> None:
    """10.50 EUR (1050 cents) must not silently become 1050 JPY."""
    customer = create(client, balance="10.50", currency="EUR")
    resp = client.put(f"/customers/{customer['id']}", json={"currency": "JPY"})
    assert_error(resp, 400, "request.validation.error", "balance")
    assert get(client, customer["id"]) == customer
    resp = client.put(f"/customers/{customer['id']}", json={"currency": "JPY", "balance": "1500"})
    assert resp.status_code == 200, resp.text
    assert get(client, customer["id"]) == {**customer, "balance": "1500", "currency": "JPY"}
    # Re-stating the same currency, or setting one where no balance is stored, is fine.
    assert client.put(f"/customers/{customer['id']}", json={"currency": "jpy"}).status_code == 200
    plain = create(client)
    resp = client.put(f"/customers/{plain['id']}", json={"currency": "USD"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["customer"]["currency"] == "USD"
    assert resp.json()["customer"]["balance"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "nope"), ("country_code", "ZZ"), ("ip_address", "1.2.3"), ("currency", "ZZZ")],
)
def test_invalid_put_is_400_and_changes_nothing(
    client: httpx.Client, field: str, value: str
) -> None:
    customer = create(client, **FULL)
    resp = client.put(f"/customers/{customer['id']}", json={"first_name": "X", field: value})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["message"]
    assert get(client, customer["id"]) == customer


# --- delete ----------------------------------------------------------------------------


def test_delete_then_get_is_404(client: httpx.Client) -> None:
    customer = create(client, email="gone@example.com")
    kept = create(client, email="kept@example.com")
    resp = client.delete(f"/customers/{customer['id']}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"success": True}
    assert_error(client.get(f"/customers/{customer['id']}"), 404, "resource.customer.not-found")
    assert customer["id"] in client.get(f"/customers/{customer['id']}").json()["message"]
    assert_error(
        client.put(f"/customers/{customer['id']}", json={"first_name": "Zombie"}),
        404,
        "resource.customer.not-found",
    )
    assert_error(client.delete(f"/customers/{customer['id']}"), 404, "resource.customer.not-found")
    listed = client.get("/customers").json()["customers"]
    assert [c["id"] for c in listed] == [kept["id"]]


def test_unknown_customer_is_404(client: httpx.Client) -> None:
    unknown = "cust_" + "0" * 32
    for resp in (
        client.get(f"/customers/{unknown}"),
        client.put(f"/customers/{unknown}", json={"first_name": "x"}),
        client.delete(f"/customers/{unknown}"),
    ):
        assert_error(resp, 404, "resource.customer.not-found")


# --- isolation -------------------------------------------------------------------------


def test_another_projects_customer_is_404_and_unchanged(
    client: httpx.Client, other: httpx.Client
) -> None:
    mine = create(client, **FULL)
    cid = mine["id"]
    assert_error(other.get(f"/customers/{cid}"), 404, "resource.customer.not-found")
    assert_error(
        other.put(f"/customers/{cid}", json={"first_name": "Mallory", "email": "m@example.com"}),
        404,
        "resource.customer.not-found",
    )
    assert_error(other.delete(f"/customers/{cid}"), 404, "resource.customer.not-found")
    assert other.get("/customers").json() == {"success": True, "customers": [], "has_more": False}
    assert_error(
        other.get("/customers", params={"start_after": cid}),
        400,
        "request.validation.invalid-cursor",
    )
    assert get(client, cid) == mine
    assert [c["id"] for c in client.get("/customers").json()["customers"]] == [cid]


def test_sandbox_and_live_are_isolated(client: httpx.Client, live: httpx.Client) -> None:
    sandboxed = create(client, email="sandbox@example.com")
    live_one = create(live, email="live@example.com")
    assert sandboxed["sandbox"] is True
    assert live_one["sandbox"] is False
    assert live_one["project_id"] == sandboxed["project_id"]
    assert [c["id"] for c in client.get("/customers").json()["customers"]] == [sandboxed["id"]]
    assert [c["id"] for c in live.get("/customers").json()["customers"]] == [live_one["id"]]
    for a, b in ((client, live_one), (live, sandboxed)):
        assert_error(a.get(f"/customers/{b['id']}"), 404, "resource.customer.not-found")
        assert_error(
            a.put(f"/customers/{b['id']}", json={"first_name": "x"}),
            404,
            "resource.customer.not-found",
        )
        assert_error(a.delete(f"/customers/{b['id']}"), 404, "resource.customer.not-found")
    assert get(client, sandboxed["id"]) == sandboxed
    assert get(live, live_one["id"]) == live_one


# --- list ------------------------------------------------------------------------------


def ids_of(resp: httpx.Response) -> tuple[list[str], bool]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    return [c["id"] for c in body["customers"]], body["has_more"]


def test_list_pages(client: httpx.Client) -> None:
    assert ids_of(client.get("/customers")) == ([], False)
    made = [create(client, first_name=f"c{i}")["id"] for i in range(5)]
    newest = made[::-1]

    assert ids_of(client.get("/customers")) == (newest, False)
    assert ids_of(client.get("/customers", params={"limit": 0})) == (newest, False)
    assert ids_of(client.get("/customers", params={"limit": 2})) == (newest[:2], True)
    assert ids_of(client.get("/customers", params={"limit": 5})) == (newest, False)
    assert ids_of(client.get("/customers", params={"limit": 2, "start_after": newest[1]})) == (
        newest[2:4],
        True,
    )
    assert ids_of(client.get("/customers", params={"limit": 2, "start_after": newest[3]})) == (
        newest[4:],
        False,
    )
    assert ids_of(client.get("/customers", params={"limit": 2, "end_before": newest[4]})) == (
        newest[2:4],
        True,
    )
    assert ids_of(client.get("/customers", params={"end_before": newest[2]})) == (
        newest[:2],
        False,
    )
    assert ids_of(client.get("/customers", params={"order": "asc"})) == (made, False)
    assert ids_of(client.get("/customers", params={"order": "asc", "limit": 3})) == (
        made[:3],
        True,
    )
    assert ids_of(
        client.get("/customers", params={"order": "asc", "limit": 2, "start_after": made[2]})
    ) == (made[3:], False)
    assert ids_of(
        client.get("/customers", params={"order": "asc", "limit": 2, "end_before": made[2]})
    ) == (made[:2], False)
    # Empty values mean absent.
    assert ids_of(
        client.get("/customers", params={"start_after": "", "end_before": "", "order": ""})
    ) == (newest, False)
    # The listed objects are the same as found ones.
    listed = client.get("/customers", params={"limit": 1}).json()["customers"][0]
    assert listed == get(client, newest[0])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"start_after": "cust_" + "0" * 32}, "start_after"),
        ({"end_before": "cust_" + "0" * 32}, "end_before"),
        ({"expand": "project"}, "expand"),
    ],
)
def test_list_rejects_bad_options(client: httpx.Client, params: dict[str, str], field: str) -> None:
    resp = client.get("/customers", params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"].startswith(f"{field}:"), resp.json()["message"]


def test_list_rejects_two_cursors(client: httpx.Client) -> None:
    a, b = create(client)["id"], create(client)["id"]
    resp = client.get("/customers", params={"start_after": a, "end_before": b})
    assert_error(resp, 400, "request.validation.conflicting-cursors")


def test_list_accepts_the_maximum_limit(client: httpx.Client) -> None:
    for _ in range(3):
        create(client)
    assert len(ids_of(client.get("/customers", params={"limit": 100}))[0]) == 3


def test_a_customer_cursor_deleted_by_another_client_keeps_its_place(client: httpx.Client) -> None:
    ids = [
        client.post("/customers", json={"first_name": f"c{i}"}).json()["customer"]["id"]
        for i in range(5)
    ][::-1]
    first = client.get("/customers", params={"limit": 2}).json()
    assert [c["id"] for c in first["customers"]] == ids[:2]
    assert client.delete(f"/customers/{ids[1]}").json() == {"success": True}
    after = client.get("/customers", params={"limit": 5, "start_after": ids[1]}).json()
    assert after["success"] is True, after
    assert [c["id"] for c in after["customers"]] == ids[2:]
    before = client.get("/customers", params={"end_before": ids[1]}).json()
    assert [c["id"] for c in before["customers"]] == ids[:1]


# --- date_of_birth and sex ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["not-a-date", "1990-02-30", "1990-4-1", "01/04/1990", " 1990-04-01", "1990-04-01T00:00:00Z"],
)
def test_date_of_birth_must_be_a_calendar_date(client: httpx.Client, value: str) -> None:
    """Any string was accepted and stored."""
    resp = client.post("/customers", json=sdk_body(date_of_birth=value))
    assert_error(resp, 400, "request.validation.invalid-date", "date_of_birth")
    assert client.get("/customers").json()["customers"] == []


def test_date_of_birth_may_not_be_in_the_future(client: httpx.Client) -> None:
    later = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    resp = client.post("/customers", json=sdk_body(date_of_birth=later))
    assert_error(resp, 400, "request.validation.invalid-date", "date_of_birth")
    customer = create(client, date_of_birth="2000-02-29")
    resp = client.put(f"/customers/{customer['id']}", json={"date_of_birth": later})
    assert_error(resp, 400, "request.validation.invalid-date", "date_of_birth")
    assert get(client, customer["id"]) == customer


@pytest.mark.parametrize("value", ["yes", "f", "unknown", "", " male"])
def test_sex_must_be_an_allowed_value(client: httpx.Client, value: str) -> None:
    """Any string was accepted and stored."""
    resp = client.post("/customers", json=sdk_body(sex=value))
    assert_error(resp, 400, "request.validation.invalid-enum", "sex")
    customer = create(client)
    resp = client.put(f"/customers/{customer['id']}", json={"sex": value})
    assert_error(resp, 400, "request.validation.invalid-enum", "sex")


@pytest.mark.parametrize(
    ("sent", "stored"), [("male", "male"), ("Female", "female"), ("OTHER", "other")]
)
def test_sex_is_matched_case_insensitively(client: httpx.Client, sent: str, stored: str) -> None:
    customer = create(client, sex=sent)
    assert customer["sex"] == stored
    assert get(client, customer["id"])["sex"] == stored


def test_form_encoded_customer_fields_follow_the_grammar(client: httpx.Client) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for raw, field in (
        (b"is_business=yes", "is_business"),
        (b"balance=%205&currency=EUR", "balance"),
        (b"registered_at=2021-06-01T10:00:00", "registered_at"),
        (b"date_of_birth=1990-02-30", "date_of_birth"),
    ):
        resp = client.post("/customers", content=raw, headers=headers)
        assert resp.status_code == 400, (raw, resp.text)
        assert resp.json()["message"].startswith(f"{field}:"), resp.text
    resp = client.post(
        "/customers",
        content=b"is_business=1&metadata[7]=seven&date_of_birth=1990-04-01&sex=Male",
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    customer = resp.json()["customer"]
    assert customer["is_business"] is True
    assert customer["metadata"] == {"7": "seven"}
    assert (customer["date_of_birth"], customer["sex"]) == ("1990-04-01", "male")
