"""Tenant isolation, generated from the application's route table.

Every route of ``create_app(...)`` is classified here, so an endpoint added later cannot slip
through: a route whose path parameter this module cannot fill, or a write without an object id
that it does not know, fails the test until it is taught about it.

For each route with an object id, credentials of tenant A acting on tenant B's object get a 404
that is indistinguishable from the 404 for an id that does not exist, and B's object is unchanged
afterwards (compared row by row in the database). Tenants are: two projects, and the sandbox and
live modes of one project (sandbox credentials never see live objects, nor the reverse). Lists
never show another tenant's objects, and writes cannot reference them.

Both dialects are walked: a route under ``/v1`` is sent with the tenant's Reepay key, and its
objects are named by handle or id (a Reepay error body's ``timestamp`` and ``request_id`` differ
from one answer to the next, and are left out of the comparison).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from settle.app import app_routes, create_app
from settle.db.database import connect
from settle.ids import new_id
from settle.projects import service as projects
from settle.projects.keys import new_processout_secret, new_reepay_secret, processout_username
from tests.conftest import RunningServer
from tests.dbcheck import query

# How to fill each kind of path parameter: the attribute of a Tenant holding such an object.
PATH_PARAMS: dict[str, str] = {
    "invoice_id": "invoice_id",
    "customer_id": "customer_id",
    "card_id": "card_id",
    "token_id": "token_id",
    "transaction_id": "transaction_id",
    "refund_id": "refund_id",
    "event_id": "event_id",
    # The Reepay dialect's: a customer's handle, an invoice's id (either stands for its handle).
    "handle": "reepay_customer",
    "id": "reepay_invoice_id",
    "transaction": "reepay_transaction",
}
ID_PREFIXES: dict[str, str] = {
    "invoice_id": "iv_",
    "customer_id": "cust_",
    "card_id": "card_",
    "token_id": "tok_",
    "transaction_id": "tr_",
    "refund_id": "re_",
    "event_id": "ev_",
    "handle": "h-",  # a made-up handle of the vendor's charset
    "id": "iv_",
    "transaction": "op_",
}
# Routes that need an object in another state than the default one (an unpaid invoice): the
# payment operations each act on an invoice they are valid for.
ROUTE_PARAMS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/invoices/{invoice_id}/capture"): {"invoice_id": "authorized_invoice_id"},
    ("POST", "/invoices/{invoice_id}/void"): {"invoice_id": "authorized_invoice_id"},
    ("POST", "/invoices/{invoice_id}/increment_authorization"): {
        "invoice_id": "authorized_invoice_id"
    },
    ("POST", "/invoices/{invoice_id}/refunds"): {"invoice_id": "paid_invoice_id"},
    ("GET", "/invoices/{invoice_id}/transactions"): {"invoice_id": "paid_invoice_id"},
    # Invoices by handle (the metadata routes name it so) and, for one route, by id.
    ("GET", "/v1/invoice/{handle}/metadata"): {"handle": "reepay_invoice"},
    ("HEAD", "/v1/invoice/{handle}/metadata"): {"handle": "reepay_invoice"},
    ("PUT", "/v1/invoice/{handle}/metadata"): {"handle": "reepay_invoice_id"},
    ("DELETE", "/v1/invoice/{handle}/metadata"): {"handle": "reepay_invoice"},
    ("PUT", "/v1/invoice/{id}/billing_address"): {"id": "reepay_invoice"},
    # Settling: an unpaid invoice of the customer with a saved card; reactivating a failed
    # one; a transaction of a settled one; charges by their handles.
    ("POST", "/v1/invoice/{id}/settle"): {"id": "invoice_id"},
    ("POST", "/v1/invoice/{id}/reactivate"): {"id": "reepay_failed_invoice_id"},
    ("GET", "/v1/invoice/{id}/transaction/{transaction}"): {"id": "reepay_settled_invoice_id"},
    ("HEAD", "/v1/invoice/{id}/transaction/{transaction}"): {"id": "reepay_settled_invoice_id"},
    ("GET", "/v1/charge/{handle}"): {"handle": "reepay_charge"},
    ("HEAD", "/v1/charge/{handle}"): {"handle": "reepay_charge"},
    ("POST", "/v1/charge/{handle}/settle"): {"handle": "reepay_charge"},
    ("POST", "/v1/charge/{handle}/cancel"): {"handle": "reepay_charge"},
    ("GET", "/v1/refund/{id}"): {"id": "refund_id"},
    ("HEAD", "/v1/refund/{id}"): {"id": "refund_id"},
    ("GET", "/v1/webhook/{id}"): {"id": "reepay_webhook_id"},
    ("HEAD", "/v1/webhook/{id}"): {"id": "reepay_webhook_id"},
    ("GET", "/v1/webhook/{id}/request"): {"id": "reepay_webhook_id"},
    ("HEAD", "/v1/webhook/{id}/request"): {"id": "reepay_webhook_id"},
    ("POST", "/v1/webhook/{id}/resend"): {"id": "reepay_webhook_id"},
}
# Routes a live project is refused (400) on its own objects: adding a test card.
SANDBOX_ONLY: frozenset[tuple[str, str]] = frozenset(
    {("POST", "/v1/customer/{handle}/payment_method")}
)

# Routes without an id that write: the body each sends when it references the victim's objects
# (None: the route references no other object; the created object must stay the caller's).
Body = Callable[["Tenant", "Tenant"], dict[str, Any]]
WRITES_WITHOUT_ID: dict[tuple[str, str], Body | None] = {
    ("POST", "/invoices"): lambda me, victim: {
        "amount": "1.00",
        "currency": "EUR",
        "customer_id": victim.customer_id,
    },
    ("POST", "/customers"): None,
    ("POST", "/cards"): None,
    ("POST", "/v1/customer"): None,
    ("POST", "/v1/charge"): lambda me, victim: {
        "handle": new_id("hijack-"),
        "source": victim.payment_method,
        "customer_handle": me.customer_id,
        "amount": 100,
    },
    ("PUT", "/v1/account/webhook_settings"): None,
    # A refund of the victim's paid invoice, by its id.
    ("POST", "/v1/refund"): lambda me, victim: {"invoice": victim.paid_invoice_id, "amount": 1},
}
CARD_YEAR = datetime.now(UTC).year + 5  # a card's expiry must be in the future
# The body of each write above that references no other object.
OWN_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/customers"): {"first_name": "own"},
    ("POST", "/cards"): {"number": "4242424242424242", "exp_month": 12, "exp_year": CARD_YEAR},
    ("POST", "/v1/customer"): {"generate_handle": True},
    ("PUT", "/v1/account/webhook_settings"): {"urls": ["https://own.example/hooks"]},
}
# The body each id route is sent: valid on the caller's own objects (checked below), so that a
# 404 can only mean "not yours".
BODIES: dict[tuple[str, str], Body] = {
    ("PUT", "/invoices/{invoice_id}"): lambda me, victim: {
        "amount": "99.00",
        "details": [{"name": "hijack", "amount": "99.00"}],
    },
    ("POST", "/invoices/{invoice_id}/customers"): lambda me, victim: {
        "customer_id": me.customer_id
    },
    ("PUT", "/customers/{customer_id}"): lambda me, victim: {
        "first_name": "Mallory",
        "email": "mallory@example.com",
    },
    ("POST", "/customers/{customer_id}/tokens"): lambda me, victim: {"source": me.card_id},
    ("PUT", "/customers/{customer_id}/tokens/{token_id}"): lambda me, victim: {"set_default": True},
    # On an unpaid invoice.
    ("POST", "/invoices/{invoice_id}/authorize"): lambda me, victim: {"source": me.card_id},
    # On an authorized invoice (ROUTE_PARAMS).
    ("POST", "/invoices/{invoice_id}/capture"): lambda me, victim: {"capture_amount": "4.00"},
    ("POST", "/invoices/{invoice_id}/increment_authorization"): lambda me, victim: {
        "amount": "1.00"
    },
    # On a captured one.
    ("POST", "/invoices/{invoice_id}/refunds"): lambda me, victim: {
        "amount": "1.00",
        "reason": "hijack",
    },
    ("POST", "/transactions/{transaction_id}/refunds"): lambda me, victim: {
        "amount": "1.00",
        "reason": "hijack",
    },
    ("PUT", "/v1/customer/{handle}"): lambda me, victim: {"first_name": "Mallory"},
    ("POST", "/v1/customer/{handle}/invoice"): lambda me, victim: {
        "handle": new_id("hijack-"),
        "order_lines": [{"ordertext": "hijack", "amount": 100}],
    },
    ("PUT", "/v1/invoice/{handle}/metadata"): lambda me, victim: {"owner": "Mallory"},
    ("PUT", "/v1/invoice/{id}/billing_address"): lambda me, victim: {"company": "Mallory"},
    ("PUT", "/v1/invoice/{id}/shipping_address"): lambda me, victim: {"company": "Mallory"},
    ("POST", "/v1/invoice/{id}/settle"): lambda me, victim: {"payment_method": me.payment_method},
    ("POST", "/v1/invoice/{id}/manual_settle"): lambda me, victim: {
        "method": "cash",
        "payment_date": "2026-01-02",
    },
    ("POST", "/v1/customer/{handle}/payment_method"): lambda me, victim: {
        "number": "4242424242424242",
        "exp_month": 12,
        "exp_year": CARD_YEAR,
    },
}


def _no_body(me: Tenant, victim: Tenant) -> dict[str, Any]:
    return {}


@dataclass
class Tenant:
    name: str
    project_id: str
    sandbox: bool
    client: httpx.Client
    reepay: httpx.Client  # the same tenant's Reepay key, rooted at the server (paths /v1/...)
    customer_id: str = ""
    invoice_id: str = ""  # unpaid
    waiting_transaction_id: str = ""  # the unpaid invoice's
    card_id: str = ""
    token_id: str = ""  # of the customer, for the card
    authorized_invoice_id: str = ""  # authorized with the token, not captured
    authorized_transaction_id: str = ""
    paid_invoice_id: str = ""  # paid with the card, then refunded in part
    transaction_id: str = ""  # the paid invoice's
    refund_id: str = ""  # of that transaction
    reepay_customer: str = ""  # a customer made through the Reepay dialect: its handle
    reepay_invoice: str = ""  # its invoice: handle
    reepay_invoice_id: str = ""  # and id
    payment_method: str = ""  # the token as a Reepay payment method (ca_)
    reepay_settled_invoice_id: str = ""  # a Reepay invoice settled by a manual transfer
    reepay_transaction: str = ""  # its settle transaction
    reepay_failed_invoice_id: str = ""
    reepay_charge: str = ""  # a charge (authorized) of the customer with the token: handle
    event_id: str = ""  # the newest event of the changes above
    reepay_webhook_id: str = ""  # a webhook (delivery) of those events to the Reepay URL

    def http(self, path: str) -> httpx.Client:
        """The client of the dialect that serves ``path``."""
        return self.reepay if path.startswith("/v1/") else self.client

    def _ok(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http(path).request(method, path, json=body)
        assert response.status_code == 200, (method, path, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    def _invoice(self, what: str) -> dict[str, Any]:
        answer = self._ok(
            "POST",
            "/invoices",
            {
                "name": f"{self.name}'s {what} invoice",
                "amount": "10.00",
                "currency": "EUR",
                "customer_id": self.customer_id,
                "details": [{"name": "line", "amount": "10.00"}],
                "metadata": {"owner": self.name},
            },
        )
        invoice: dict[str, Any] = answer["invoice"]
        return invoice

    def create_objects(self) -> Tenant:
        # Reepay webhooks of the changes below go here (nowhere reachable: they stay pending).
        hooks = {"urls": ["https://hooks.invalid/settle"]}
        self._ok("PUT", "/v1/account/webhook_settings", hooks)
        customer = self._ok(
            "POST", "/customers", {"email": f"{self.name}@example.com", "first_name": self.name}
        )
        self.customer_id = customer["customer"]["id"]
        invoice = self._invoice("unpaid")
        self.invoice_id, self.waiting_transaction_id = invoice["id"], invoice["transaction_id"]
        card = self._ok(
            "POST",
            "/cards",
            {
                "number": "4242424242424242",
                "exp_month": 12,
                "exp_year": CARD_YEAR,
                "name": self.name,
            },
        )
        self.card_id = card["card"]["id"]
        token = self._ok("POST", f"/customers/{self.customer_id}/tokens", {"source": self.card_id})
        self.token_id = token["token"]["id"]
        authorized = self._invoice("authorized")
        answer = self._ok(
            "POST", f"/invoices/{authorized['id']}/authorize", {"source": self.token_id}
        )
        assert answer["transaction"]["status"] == "authorized", answer
        self.authorized_invoice_id = authorized["id"]
        self.authorized_transaction_id = authorized["transaction_id"]
        paid = self._invoice("paid")
        answer = self._ok("POST", f"/invoices/{paid['id']}/capture", {"source": self.card_id})
        assert answer["transaction"]["status"] == "completed", answer
        self.paid_invoice_id, self.transaction_id = paid["id"], paid["transaction_id"]
        refund = self._ok(
            "POST", f"/transactions/{self.transaction_id}/refunds", {"amount": "2.50"}
        )
        self.refund_id = refund["refund"]["id"]
        self.reepay_customer = self._ok(
            "POST", "/v1/customer", {"handle": new_id(f"{self.name}-"), "email": "r@example.com"}
        )["handle"]
        reepay_invoice = self._ok(
            "POST",
            f"/v1/customer/{self.reepay_customer}/invoice",
            {
                "handle": new_id(f"{self.name}-inv-"),
                "order_lines": [{"ordertext": "line", "amount": 1000, "vat": 0.25}],
                "metadata": {"owner": self.name},
                "billing_address": {"company": self.name},
            },
        )
        self.reepay_invoice, self.reepay_invoice_id = reepay_invoice["handle"], reepay_invoice["id"]
        self.payment_method = "ca_" + self.token_id.removeprefix("tok_")
        lines = [{"ordertext": "line", "amount": 1000}]
        settled = self._ok(
            "POST",
            f"/v1/customer/{self.reepay_customer}/invoice",
            {
                "handle": new_id(f"{self.name}-paid-"),
                "order_lines": lines,
                "manual_transfer": {"method": "cash", "payment_date": "2026-01-02"},
            },
        )
        self.reepay_settled_invoice_id = settled["id"]
        self.reepay_transaction = settled["transactions"][0]["id"]
        failed = self._ok(
            "POST",
            f"/v1/customer/{self.reepay_customer}/invoice",
            {"handle": new_id(f"{self.name}-failed-"), "order_lines": lines},
        )
        self.reepay_failed_invoice_id = failed["id"]
        self._ok("POST", f"/v1/invoice/{failed['id']}/fail", {})
        charge = self._ok(
            "POST",
            "/v1/charge",
            {
                "handle": new_id(f"{self.name}-charge-"),
                "source": self.payment_method,
                "customer_handle": self.customer_id,
                "amount": 500,
            },
        )
        assert charge["state"] == "authorized", charge
        self.reepay_charge = charge["handle"]
        (event,) = self._get("/events", limit=1)["events"]
        self.event_id = event["id"]
        deadline = time.monotonic() + 20  # the server's delivery worker fans events out
        while not self.reepay_webhook_id:
            assert time.monotonic() < deadline, "no Reepay webhook was made"
            webhooks = self.reepay.get("/v1/webhook", params={"size": 10}).json()["content"]
            if webhooks:
                self.reepay_webhook_id = webhooks[0]["id"]
            else:
                time.sleep(0.05)
        return self

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    def ids(self) -> list[str]:
        return [
            self.customer_id,
            self.invoice_id,
            self.waiting_transaction_id,
            self.card_id,
            self.token_id,
            self.authorized_invoice_id,
            self.authorized_transaction_id,
            self.paid_invoice_id,
            self.transaction_id,
            self.refund_id,
            self.reepay_customer,
            self.reepay_invoice,
            self.reepay_invoice_id,
            self.event_id,
            self.reepay_webhook_id,
        ]


def _add_keys(database_url: str, project_id: str, *, sandbox: bool) -> tuple[str, str, str]:
    """Second keys (ProcessOut's and Reepay's) for an existing project, in the other mode: one
    project, two tenants. Returns the ProcessOut user name and secret, and the Reepay key."""
    secret, reepay_secret = new_processout_secret(sandbox), new_reepay_secret()

    async def run() -> None:
        db = await connect(database_url)
        try:
            async with db.write() as tx:
                await projects.issue_key(tx, project_id, sandbox, "processout", secret)
                await projects.issue_key(tx, project_id, sandbox, "reepay", reepay_secret)
        finally:
            await db.close()

    asyncio.run(run())
    return processout_username(project_id, sandbox), secret, reepay_secret


@pytest.fixture(scope="module")
def tenants(server: RunningServer) -> Iterator[dict[str, Tenant]]:
    a = server.create_project("tenant A")
    b = server.create_project("tenant B")
    both = server.create_project("sandbox and live")
    live_user, live_secret, live_reepay = _add_keys(
        server.database_url, both.project.id, sandbox=False
    )
    clients = {
        "A": (a.project.id, True, (a.processout_username, a.processout_password), a),
        "B": (b.project.id, True, (b.processout_username, b.processout_password), b),
        "sandbox": (
            both.project.id,
            True,
            (both.processout_username, both.processout_password),
            both,
        ),
        "live": (both.project.id, False, (live_user, live_secret), None),
    }
    opened: dict[str, Tenant] = {}
    try:
        for name, (project_id, sandbox, auth, keys) in clients.items():
            client = httpx.Client(base_url=server.url, auth=auth, timeout=30)
            reepay_key = keys.reepay_private_key if keys is not None else live_reepay
            reepay = httpx.Client(base_url=server.url, auth=(reepay_key, ""), timeout=30)
            opened[name] = Tenant(name, project_id, sandbox, client, reepay).create_objects()
        yield opened
    finally:
        for tenant in opened.values():
            tenant.client.close()
            tenant.reepay.close()


# (attacker, victim): another project; and the two modes of one project, both ways.
PAIRS = [("A", "B"), ("sandbox", "live"), ("live", "sandbox")]


def all_routes(server: RunningServer) -> list[Route]:
    routes = []
    for route in app_routes(create_app(server.settings)):
        if not isinstance(route, Route):
            pytest.fail(f"{route!r} is not a plain Route: teach the isolation test about it")
        routes.append(route)
    assert routes
    return routes


def id_routes(server: RunningServer) -> list[tuple[str, str, Route]]:
    found: list[tuple[str, str, Route]] = []
    for route in all_routes(server):
        unknown = set(route.param_convertors) - PATH_PARAMS.keys()
        if unknown:
            pytest.fail(
                f"{route.path}: no way to fill path parameter(s) {sorted(unknown)}; add them "
                "to PATH_PARAMS so tenant isolation is tested for this endpoint"
            )
        if route.param_convertors:
            found.extend((method, route.path, route) for method in sorted(route.methods or ()))
    assert found
    return found


def path_ids(method: str, path: str, tenant: Tenant) -> dict[str, str]:
    """The tenant's object for each path parameter of the route."""
    attrs = PATH_PARAMS | ROUTE_PARAMS.get((method, path), {})
    return {p: getattr(tenant, attrs[p]) for p in PATH_PARAMS if "{" + p + "}" in path}


def fill(method: str, path: str, tenant: Tenant) -> str:
    for param, value in path_ids(method, path, tenant).items():
        path = path.replace("{" + param + "}", value)
    return path


def fake(path: str) -> tuple[str, dict[str, str]]:
    """The path with ids of the right shape that exist nowhere."""
    made = {}
    for param, prefix in ID_PREFIXES.items():
        if "{" + param + "}" in path:
            made[param] = new_id(prefix)
            path = path.replace("{" + param + "}", made[param])
    return path, made


def snapshot(database_url: str, tenant: Tenant) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tenant's objects (its project, in its mode), as stored."""
    scope = (tenant.project_id, tenant.sandbox)
    where = "WHERE project_id = $1 AND sandbox = $2 ORDER BY id"
    return {
        "invoices": query(database_url, f"SELECT * FROM invoices {where}", *scope),
        "transactions": query(database_url, f"SELECT * FROM transactions {where}", *scope),
        "operations": query(database_url, f"SELECT * FROM transaction_operations {where}", *scope),
        "customers": query(database_url, f"SELECT * FROM customers {where}", *scope),
        "cards": query(database_url, f"SELECT * FROM cards {where}", *scope),
        "tokens": query(database_url, f"SELECT * FROM tokens {where}", *scope),
        "events": query(database_url, f"SELECT * FROM events {where}", *scope),
        "webhook_endpoints": query(
            database_url,
            "SELECT * FROM webhook_endpoints WHERE project_id = $1 AND sandbox = $2"
            " ORDER BY dialect",
            *scope,
        ),
    }


def api_view(tenant: Tenant) -> dict[str, Any]:
    c, t = tenant.client, tenant
    token = f"/customers/{t.customer_id}/tokens/{t.token_id}"
    return {
        "invoice": c.get(f"/invoices/{t.invoice_id}").json(),
        "customer": c.get(f"/customers/{t.customer_id}").json(),
        "invoice_customer": c.get(f"/invoices/{t.invoice_id}/customers").json(),
        "invoices": c.get("/invoices", params={"limit": 100, "expand": "customer"}).json(),
        "customers": c.get("/customers", params={"limit": 100}).json(),
        "card": c.get(f"/cards/{t.card_id}").json(),
        "cards": c.get("/cards", params={"limit": 100}).json(),
        "token": c.get(token).json(),
        "tokens": c.get(f"/customers/{t.customer_id}/tokens").json(),
        "authorized": c.get(f"/invoices/{t.authorized_invoice_id}/transactions").json(),
        "transaction": c.get(f"/transactions/{t.transaction_id}").json(),
        "transactions": c.get("/transactions", params={"limit": 100}).json(),
        "refund": c.get(f"/transactions/{t.transaction_id}/refunds/{t.refund_id}").json(),
        "reepay_customer": t.reepay.get(f"/v1/customer/{t.reepay_customer}").json(),
        "reepay_invoice": t.reepay.get(f"/v1/invoice/{t.reepay_invoice}").json(),
        "reepay_metadata": t.reepay.get(f"/v1/invoice/{t.reepay_invoice}/metadata").json(),
        "reepay_po_invoice": t.reepay.get(f"/v1/invoice/{t.invoice_id}").json(),
        "event": c.get(f"/events/{t.event_id}").json(),
        "events": c.get("/events", params={"limit": 100}).json(),
        "webhook_settings": t.reepay.get("/v1/account/webhook_settings").json(),
    }


def _comparable(response: httpx.Response) -> str:
    """The answer's text, but for what differs between any two answers of the Reepay dialect:
    an error's timestamp and request id, a list's end of range (now)."""
    if not response.request.url.path.startswith("/v1/") or not response.content:
        return response.text
    body = response.json()
    if isinstance(body, dict):
        for key in ("timestamp", "request_id", "to"):
            body.pop(key, None)
    return json.dumps(body, sort_keys=True)


def _same_404(victim: httpx.Response, missing: httpx.Response, ids: dict[str, str]) -> None:
    assert victim.status_code == 404, (victim.request.url, victim.text)
    assert missing.status_code == 404, (missing.request.url, missing.text)
    a, b = _comparable(victim), _comparable(missing)
    for real, made_up in ids.items():
        a, b = a.replace(real, "<id>"), b.replace(made_up, "<id>")
    assert a == b, "a foreign id must look exactly like one that does not exist"


@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_foreign_ids_are_404_and_change_nothing(
    server: RunningServer, tenants: dict[str, Tenant], attacker: str, victim: str
) -> None:
    me, them = tenants[attacker], tenants[victim]
    before_rows = snapshot(server.database_url, them)
    before_api = api_view(them)
    routes = id_routes(server)
    for method, path, _ in routes:
        body = BODIES.get((method, path), _no_body)(me, them)
        target = fill(method, path, them)
        missing_path, made_up = fake(path)
        real_ids = path_ids(method, path, them)
        send: dict[str, Any] = {"json": body} if method in ("POST", "PUT", "PATCH") else {}
        victim_response = me.http(path).request(method, target, **send)
        missing_response = me.http(path).request(method, missing_path, **send)
        _same_404(victim_response, missing_response, {real_ids[p]: made_up[p] for p in made_up})
    # The Reepay dialect names an object made through ProcessOut by its id: not another's.
    for path, foreign, made_up_id in (
        ("/v1/customer/{}", them.customer_id, new_id("cust_")),
        ("/v1/invoice/{}", them.invoice_id, new_id("iv_")),
        ("/v1/invoice/{}/metadata", them.paid_invoice_id, new_id("iv_")),
    ):
        _same_404(
            me.reepay.get(path.format(foreign)),
            me.reepay.get(path.format(made_up_id)),
            {foreign: made_up_id},
        )
    assert snapshot(server.database_url, them) == before_rows
    assert api_view(them) == before_api


@pytest.mark.parametrize("attacker", ["A", "live"])
def test_the_same_requests_succeed_on_own_objects(
    server: RunningServer, tenants: dict[str, Tenant], attacker: str
) -> None:
    """The control: each request above is valid, so its 404 could only mean "not yours"."""
    me = tenants[attacker]
    for method, path, _ in id_routes(server):
        own = Tenant(me.name, me.project_id, me.sandbox, me.client, me.reepay).create_objects()
        body = BODIES.get((method, path), _no_body)(own, own)
        send: dict[str, Any] = {"json": body} if method in ("POST", "PUT", "PATCH") else {}
        response = me.http(path).request(method, fill(method, path, own), **send)
        expected = 400 if not me.sandbox and (method, path) in SANDBOX_ONLY else 200
        assert response.status_code == expected, (method, path, response.text)


def _list_routes(server: RunningServer) -> list[str]:
    return [
        r.path for r in all_routes(server) if not r.param_convertors and "GET" in (r.methods or ())
    ]


# Lists inside one's own objects (id routes, tested above for foreign ids): filled with the
# caller's objects, they must not show the victim's either.
OWN_LISTS = [
    "/customers/{customer_id}/tokens",
    "/customers/{customer_id}/transactions",
    "/transactions/{transaction_id}/refunds",
]


# The Reepay lists' filters, each naming the victim's objects where one can.
REEPAY_PARAM_SETS: list[dict[str, str | int]] = [{}, {"size": 100}, {"state": "pending"}]


def _made_up_like(object_id: str) -> str:
    if "_" not in object_id:  # a Reepay handle made by create_objects ("A-0Vc...")
        return new_id(object_id[: object_id.index("-") + 1])
    return new_id(object_id[: object_id.index("_") + 1])


@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_lists_never_show_foreign_objects(
    server: RunningServer, tenants: dict[str, Tenant], attacker: str, victim: str
) -> None:
    me, them = tenants[attacker], tenants[victim]
    lists = _list_routes(server)
    assert {"/invoices", "/customers", "/cards", "/transactions"} <= set(lists)
    lists += [fill("GET", path, me) for path in OWN_LISTS]
    param_sets: list[dict[str, str | int]] = [
        {},
        {"limit": 100},
        {"limit": 100, "order": "asc"},
        {"expand": "customer"},
        {"expand": "transaction"},
    ]
    for path in lists:
        reepay = path.startswith("/v1/")
        for params in REEPAY_PARAM_SETS if reepay else param_sets:
            response = me.http(path).get(path, params=params)
            assert response.status_code in (200, 400), (path, params, response.text)
            for foreign in them.ids():
                assert foreign not in response.text, (path, params)
        # A foreign object (of any kind) as a cursor is as unknown as an id that does not
        # exist.
        for cursor in ("next_page_token",) if reepay else ("start_after", "end_before"):
            for foreign in them.ids():
                foreign_page = me.http(path).get(path, params={cursor: foreign})
                unknown_id = _made_up_like(foreign)
                unknown = me.http(path).get(path, params={cursor: unknown_id})
                assert foreign_page.status_code == unknown.status_code, (path, foreign)
                assert _comparable(foreign_page).replace(foreign, "<id>") == _comparable(
                    unknown
                ).replace(unknown_id, "<id>"), (path, foreign)
    # The tenant's own objects are listed: the lists above were not simply empty.
    for path, key, own in (
        ("/invoices", "invoices", me.invoice_id),
        ("/customers", "customers", me.customer_id),
        ("/cards", "cards", me.card_id),
        ("/transactions", "transactions", me.transaction_id),
        (f"/customers/{me.customer_id}/tokens", "tokens", me.token_id),
        (f"/customers/{me.customer_id}/transactions", "transactions", me.transaction_id),
        (f"/transactions/{me.transaction_id}/refunds", "refunds", me.refund_id),
        ("/events", "events", me.event_id),
    ):
        # Oldest first: the module's own objects came before those the other tests made.
        mine = me.client.get(path, params={"limit": 100, "order": "asc"}).json()[key]
        assert own in {item["id"] for item in mine}, path
    # Reepay lists are newest first only: walk them to the tenant's first objects.
    for path, own in (
        ("/v1/list/invoice", me.reepay_invoice_id),
        ("/v1/list/customer", me.reepay_customer),
    ):
        listed, token = [], None
        while own not in listed:
            answer = me.reepay.get(path, params={"size": 100, "next_page_token": token or ""})
            page = answer.json()
            listed += [item["id" if "invoice" in path else "handle"] for item in page["content"]]
            token = page.get("next_page_token")
            if token is None:
                break
        assert own in listed, path


def _writes_without_id(server: RunningServer) -> list[tuple[str, str]]:
    found = []
    for route in all_routes(server):
        if route.param_convertors:
            continue
        for method in sorted((route.methods or set()) - {"GET", "HEAD"}):
            if (method, route.path) not in WRITES_WITHOUT_ID:
                pytest.fail(
                    f"{method} {route.path} writes without an object id: add it to "
                    "WRITES_WITHOUT_ID with the body that references another tenant's objects"
                )
            found.append((method, route.path))
    assert found
    return found


@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_writes_cannot_reference_or_reach_foreign_objects(
    server: RunningServer, tenants: dict[str, Tenant], attacker: str, victim: str
) -> None:
    me, them = tenants[attacker], tenants[victim]
    before_rows = snapshot(server.database_url, them)
    before_api = api_view(them)
    for method, path in _writes_without_id(server):
        make_body = WRITES_WITHOUT_ID[(method, path)]
        if make_body is None:
            response = me.http(path).request(method, path, json=OWN_BODIES[(method, path)])
            assert response.status_code == 200, response.text
            continue
        response = me.http(path).request(method, path, json=make_body(me, them))
        assert response.status_code == 404, (method, path, response.text)
    # Assigning a foreign customer to one's own invoice is refused the same way.
    response = me.client.post(
        f"/invoices/{me.invoice_id}/customers", json={"customer_id": them.customer_id}
    )
    assert response.status_code == 404, response.text
    # So is naming a foreign card or token in a write on one's own objects, or reaching a
    # foreign token through one's own customer: as if it did not exist.
    own_token = f"/customers/{me.customer_id}/tokens/{{}}"
    references: list[tuple[str, str, str, Callable[[str], dict[str, Any]] | None]] = [
        ("POST", f"/invoices/{me.invoice_id}/authorize", them.card_id, lambda i: {"source": i}),
        ("POST", f"/invoices/{me.invoice_id}/capture", them.card_id, lambda i: {"source": i}),
        ("POST", f"/invoices/{me.invoice_id}/authorize", them.token_id, lambda i: {"source": i}),
        ("POST", f"/customers/{me.customer_id}/tokens", them.card_id, lambda i: {"source": i}),
        (
            "POST",
            "/invoices",
            them.token_id,
            lambda i: {
                "amount": "1.00",
                "currency": "EUR",
                "customer_id": me.customer_id,
                "token_id": i,
            },
        ),
        ("PUT", f"/customers/{me.customer_id}", them.token_id, lambda i: {"default_token_id": i}),
        ("GET", own_token, them.token_id, None),
        ("PUT", own_token, them.token_id, lambda i: {"set_default": True}),
        ("DELETE", own_token, them.token_id, None),
        # A foreign payment method to settle one's own Reepay invoice with.
        (
            "POST",
            f"/v1/customer/{me.customer_id}/invoice",
            them.token_id,
            lambda i: {
                "handle": "never-made",
                "order_lines": [{"ordertext": "x", "amount": 100}],
                "settle": {"payment_method": i},
            },
        ),
        (
            "POST",
            f"/v1/customer/{me.customer_id}/invoice",
            them.payment_method,
            lambda i: {
                "handle": "never-made",
                "order_lines": [{"ordertext": "x", "amount": 100}],
                "settle": {"payment_method": i},
            },
        ),
        (
            "POST",
            f"/v1/invoice/{me.invoice_id}/settle",
            them.payment_method,
            lambda i: {"payment_method": i},
        ),
    ]
    for method, path, foreign, make in references:
        made_up = _made_up_like(foreign)
        answers = []
        for object_id in (foreign, made_up):
            send: dict[str, Any] = {} if make is None else {"json": make(object_id)}
            answers.append(me.http(path).request(method, path.format(object_id), **send))
        foreign_answer, missing_answer = answers
        assert foreign_answer.status_code in (400, 404), (method, path, foreign_answer.text)
        assert foreign_answer.status_code == missing_answer.status_code, (method, path)
        assert _comparable(foreign_answer).replace(foreign, "<id>") == _comparable(
            missing_answer
        ).replace(made_up, "<id>"), (method, path)
    # Listing one's own invoices by a foreign customer's handle finds none.
    for customer in (them.reepay_customer, them.customer_id):
        page = me.reepay.get("/v1/list/invoice", params={"customer": customer}).json()
        assert page["content"] == [], page
    assert snapshot(server.database_url, them) == before_rows
    assert api_view(them) == before_api


def test_every_route_is_classified(server: RunningServer) -> None:
    """Each route is covered above: by id, as a list, or as a write without an id."""
    covered_by_id = {(m, p) for m, p, _ in id_routes(server)}
    covered = covered_by_id | set(_writes_without_id(server))
    for route in all_routes(server):
        for method in route.methods or ():
            if (method, route.path) in covered:
                continue
            assert method in ("GET", "HEAD") and route.path in _list_routes(server), (
                method,
                route.path,
            )
