"""Invoice API failures: the error body, 401, 404 without leaking existence, 405, 413; and the
wall between sandbox and live credentials."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from settle.projects.models import IssuedKeys
from tests.api.processout import invoices_support as s
from tests.conftest import RunningServer

no_server_errors = s.no_server_errors

LIMIT = 256 * 1024  # the test server's max_body_bytes

ENDPOINTS = [
    ("POST", "/invoices"),
    ("GET", "/invoices"),
    ("GET", "/invoices/{id}"),
    ("PUT", "/invoices/{id}"),
    ("DELETE", "/invoices/{id}"),
]


def call(client: httpx.Client, method: str, path: str, invoice_id: str) -> httpx.Response:
    body = {"amount": "1", "currency": "EUR"} if method in ("POST", "PUT") else None
    return client.request(method, path.format(id=invoice_id), json=body)


# --- 401 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def victim(server: RunningServer) -> Iterator[tuple[IssuedKeys, httpx.Client, dict[str, str]]]:
    """A project with one invoice, shared by the module: no request here may change either."""
    keys = server.create_project()
    with httpx.Client(
        base_url=server.url,
        auth=(keys.processout_username, keys.processout_password),
        timeout=30,
    ) as c:
        invoice = s.create(s.guard(c), name="victim", details=[{"amount": "1"}])
        yield keys, c, invoice
        assert s.all_invoice_ids(c) == [invoice["id"]]
        assert s.find(c, invoice["id"]) == invoice


@pytest.fixture
def intact(
    victim: tuple[IssuedKeys, httpx.Client, dict[str, str]],
) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """The victim's client and invoice; after the test, it is checked unchanged."""
    _, c, invoice = victim
    yield c, invoice
    assert s.all_invoice_ids(c) == [invoice["id"]]
    assert s.find(c, invoice["id"]) == invoice


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_credentials_is_401(
    intact: tuple[httpx.Client, dict[str, str]], anon: httpx.Client, method: str, path: str
) -> None:
    _, invoice = intact
    response = call(anon, method, path, invoice["id"])
    s.failure(response, 401, "request.authentication.missing")
    assert response.headers["www-authenticate"].startswith("Basic")


def _wrong_credentials(
    project: IssuedKeys, other: IssuedKeys, live: IssuedKeys
) -> dict[str, tuple[str, str]]:
    user, secret = project.processout_username, project.processout_password
    return {
        "wrong password": (user, secret[:-1] + ("A" if secret[-1] != "A" else "B")),
        "empty password": (user, ""),
        "other project's secret": (user, other.processout_password),
        "right secret, other project's username": (other.processout_username, secret),
        "right secret, no test- prefix": (project.project.id, secret),
        "right secret, empty username": ("", secret),
        "right secret, username with a suffix": (user + "x", secret),
        "live secret as sandbox username": (
            "test-" + live.project.id,
            live.processout_password,
        ),
        "reepay key as processout secret": (user, project.reepay_private_key),
    }


CASES = [
    "wrong password",
    "empty password",
    "other project's secret",
    "right secret, other project's username",
    "right secret, no test- prefix",
    "right secret, empty username",
    "right secret, username with a suffix",
    "live secret as sandbox username",
    "reepay key as processout secret",
]


@pytest.fixture(scope="module")
def keysets(server: RunningServer) -> tuple[IssuedKeys, IssuedKeys]:
    return server.create_project(), server.create_project(sandbox=False)


@pytest.mark.parametrize("case", CASES)
def test_wrong_credentials_are_401(
    server: RunningServer,
    victim: tuple[IssuedKeys, httpx.Client, dict[str, str]],
    intact: tuple[httpx.Client, dict[str, str]],
    keysets: tuple[IssuedKeys, IssuedKeys],
    case: str,
) -> None:
    project, _, invoice = victim
    creds = _wrong_credentials(project, *keysets)[case]
    with httpx.Client(base_url=server.url, auth=creds, timeout=30) as bad:
        s.guard(bad)
        for method, path in ENDPOINTS:
            response = call(bad, method, path, invoice["id"])
            body = s.failure(response, 401, "request.authentication.invalid")
            assert project.processout_password not in body["message"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer key_sandbox_x",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ],
)
def test_malformed_authorization_is_401(anon: httpx.Client, header: str) -> None:
    response = anon.get("/invoices", headers={"Authorization": header})
    s.failure(response, 401)


def test_live_credentials_for_live_projects(server: RunningServer) -> None:
    live = server.create_project(sandbox=False)
    assert live.processout_username == live.project.id
    assert live.processout_username.startswith("proj_")
    assert live.processout_password.startswith("key_live_")
    with httpx.Client(
        base_url=server.url, auth=(live.processout_username, live.processout_password)
    ) as c:
        s.guard(c)
        invoice = s.create(c)
        assert invoice["sandbox"] is False
        assert invoice["url"] == f"{server.url}/checkout/{live.project.id}/{invoice['id']}"
        assert s.find(c, invoice["id"], expand="transaction")["transaction"]["sandbox"] is False
        # The sandbox spelling of the same live key is refused.
        bad = httpx.get(
            f"{server.url}/invoices", auth=("test-" + live.project.id, live.processout_password)
        )
        s.failure(bad, 401, "request.authentication.invalid")


# --- sandbox and live of one project -------------------------------------------------------


@pytest.fixture
def both_modes(
    server: RunningServer, project: IssuedKeys, client: httpx.Client
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The sandbox client of a project, and a live client of the same project."""
    live_user, live_secret = s.issue_processout_key(
        server.database_url, project.project.id, sandbox=False
    )
    assert live_user == project.project.id
    with httpx.Client(base_url=server.url, auth=(live_user, live_secret), timeout=30) as live:
        yield client, s.guard(live)


def test_sandbox_and_live_never_see_each_other(
    both_modes: tuple[httpx.Client, httpx.Client], project: IssuedKeys
) -> None:
    sandbox, live = both_modes
    assert sandbox.auth is not None and live.auth is not None
    assert project.processout_username == f"test-{project.project.id}"
    assert project.processout_username.startswith("test-proj_")
    assert project.processout_password.startswith("key_sandbox_")
    test_iv = s.create(sandbox, name="sandbox one")
    live_iv = s.create(live, name="live one")
    assert test_iv["sandbox"] is True and live_iv["sandbox"] is False
    assert test_iv["project_id"] == live_iv["project_id"] == project.project.id
    assert "/checkout/test-proj_" in test_iv["url"]
    assert f"/checkout/{project.project.id}/" in live_iv["url"]

    assert s.all_invoice_ids(sandbox) == [test_iv["id"]]
    assert s.all_invoice_ids(live) == [live_iv["id"]]
    for client, foreign in ((sandbox, live_iv), (live, test_iv)):
        fid = foreign["id"]
        s.failure(client.get(f"/invoices/{fid}"), 404, "resource.invoice.not-found")
        s.failure(client.put(f"/invoices/{fid}", json={"amount": "2"}), 404)
        s.failure(client.delete(f"/invoices/{fid}"), 404)
        s.invalid(client.get("/invoices", params={"start_after": fid}), "start_after")
    assert s.find(sandbox, test_iv["id"]) == test_iv
    assert s.find(live, live_iv["id"]) == live_iv

    # Customers are walled off the same way.
    test_cust = s.create_customer(sandbox)
    response = live.post(
        "/invoices", json={"amount": "1", "currency": "EUR", "customer_id": test_cust["id"]}
    )
    s.failure(response, 404, "resource.customer.not-found")
    assert s.all_invoice_ids(live) == [live_iv["id"]]


# --- 404 -----------------------------------------------------------------------------------


def _same_error(a: httpx.Response, a_id: str, b: httpx.Response, b_id: str) -> None:
    """Two 404s that differ only by the id they repeat."""
    assert a.status_code == b.status_code == 404
    body_a, body_b = a.json(), b.json()
    assert body_a["message"].count(a_id) == 1
    body_a["message"] = body_a["message"].replace(a_id, "<id>")
    body_b["message"] = body_b["message"].replace(b_id, "<id>")
    assert body_a == body_b
    assert set(a.headers) - {"date"} == set(b.headers) - {"date"}


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if "{id}" in e[1]])
def test_foreign_invoice_looks_exactly_like_an_unknown_one(
    intact: tuple[httpx.Client, dict[str, str]], server: RunningServer, method: str, path: str
) -> None:
    _, theirs = intact
    with s.project_client(server) as client:
        unknown = "iv_" + "Q" * 32
        foreign_response = call(client, method, path, theirs["id"])
        s.failure(foreign_response, 404, "resource.invoice.not-found")
        unknown_response = call(client, method, path, unknown)
        s.failure(unknown_response, 404, "resource.invoice.not-found")
        _same_error(foreign_response, theirs["id"], unknown_response, unknown)
        assert s.count_invoices(client) == 0


@pytest.mark.parametrize(
    "invoice_id", ["nope", "iv_", "iv_short", "tr_" + "a" * 32, "%00", "x" * 300]
)
def test_unknown_invoice_id_is_404(
    intact: tuple[httpx.Client, dict[str, str]], invoice_id: str
) -> None:
    client, _ = intact
    s.failure(client.get(f"/invoices/{invoice_id}"), 404, "resource.invoice.not-found")
    s.failure(client.put(f"/invoices/{invoice_id}", json={}), 404, "resource.invoice.not-found")
    s.failure(client.delete(f"/invoices/{invoice_id}"), 404, "resource.invoice.not-found")


def test_unknown_route_is_404(intact: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = intact
    s.failure(client.get("/invoicez"), 404, "request.route.not-found")
    s.failure(client.get("/invoices/a/b/c"), 404, "request.route.not-found")


# --- 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/invoices"),
        ("PUT", "/invoices"),
        ("DELETE", "/invoices"),
        ("PATCH", "/invoices/{id}"),
        ("POST", "/invoices/{id}"),
    ],
)
def test_wrong_method_is_405(
    intact: tuple[httpx.Client, dict[str, str]], method: str, path: str
) -> None:
    client, invoice = intact
    response = client.request(
        method, path.format(id=invoice["id"]), json={"amount": "1", "currency": "EUR"}
    )
    body = s.failure(response, 405, "request.route.method-not-allowed")
    assert method in body["message"]


# --- 413 -----------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(intact: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = intact
    big = {"amount": "1", "currency": "EUR", "name": "x", "padding": "y" * LIMIT}
    s.failure(client.post("/invoices", json=big), 413, "request.body.too-large")


def test_streamed_body_over_the_limit_is_413(intact: tuple[httpx.Client, dict[str, str]]) -> None:
    """No Content-Length (chunked): the limit holds while reading."""

    def chunks() -> Iterator[bytes]:
        yield b'{"amount": "1", "currency": "EUR", "padding": "'
        for _ in range(LIMIT // 4096 + 2):
            yield b"z" * 4096
        yield b'"}'

    client, _ = intact
    response = client.post(
        "/invoices", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    s.failure(response, 413, "request.body.too-large")


def test_put_body_over_the_limit_is_413(intact: tuple[httpx.Client, dict[str, str]]) -> None:
    client, invoice = intact
    big = {"details": [{"amount": "1", "description": "d" * 250}] * 1000}
    s.failure(client.put(f"/invoices/{invoice['id']}", json=big), 413, "request.body.too-large")


def test_body_just_under_the_limit_is_accepted(client: httpx.Client) -> None:
    metadata = {f"k{i:02}": "v" * 4000 for i in range(60)}  # about 240 KiB
    invoice = s.create(client, metadata=metadata)
    assert s.find(client, invoice["id"])["metadata"] == metadata


# --- 500 never appears ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b"\x00\x01\x02"),
        ("application/json", b'{"amount": "\\ud800", "currency": "EUR"}'),
        ("application/json", b'{"details": [' + b"[" * 5000 + b"]" * 5000 + b"]}"),
        ("application/json", b'{"amount": "1", "currency": "EUR", "name": "\xc3\x28"}'),
        ("application/x-www-form-urlencoded", b"amount=%ff&currency=EUR"),
        ("application/x-www-form-urlencoded", b"details[0]=1&details[0][name]=x"),
        ("application/x-www-form-urlencoded", b"a[" + b"[b]" * 100 + b"=1"),
        ("application/x-www-form-urlencoded", b"details[99999][amount]=1"),
        ("application/x-www-form-urlencoded", b"amount=1&amount[x]=2&currency=EUR"),
        ("application/x-www-form-urlencoded", b"metadata=1&metadata[k]=v"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("", b"\xff\xfe"),
    ],
)
def test_hostile_bodies_are_400(
    intact: tuple[httpx.Client, dict[str, str]], content_type: str, raw: bytes
) -> None:
    client, invoice = intact
    headers = {"Content-Type": content_type} if content_type else {}
    s.failure(client.post("/invoices", content=raw, headers=headers), 400)
    s.failure(client.put(f"/invoices/{invoice['id']}", content=raw, headers=headers), 400)


def test_body_without_content_type_is_read_as_json_or_form(client: httpx.Client) -> None:
    for raw in (
        b"amount=1&currency=EUR&name=form",
        b'{"amount":"1","currency":"EUR","name":"json"}',
    ):
        response = client.post("/invoices", content=raw)
        assert "content-type" not in response.request.headers
        assert s.success(response)["invoice"]["name"] in ("form", "json")
    assert [s.find(client, i)["name"] for i in s.all_invoice_ids(client)] == ["json", "form"]
