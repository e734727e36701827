"""Shared helpers for the ProcessOut Invoice API tests (``test_invoices_*.py``).

Test modules bind the fixtures below under module-level names (``po = support.po``), so that
pytest collects them there. ``po`` is a client authenticated as a project shared by a whole
module: the many parametrized validation cases need no isolation from each other, and one
project per module keeps them fast. Tests that count or list invoices use the per-test
``client`` fixture of tests/conftest.py instead (or ``po_empty``, whose project never gets an
invoice).

Every client made here, and ``client``/``anon`` through ``no_server_errors``, fails the test on
a 5xx answer: a 500 must never appear, whatever the request.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from settle.db.database import connect
from settle.projects import service as projects
from settle.projects.keys import new_processout_secret, processout_username

DATA = Path(__file__).resolve().parents[2] / "data" / "processout"

INVOICE_ID_RE = re.compile(r"^iv_[A-Za-z0-9]{32}$")
DETAIL_ID_RE = re.compile(r"^iv_det_[A-Za-z0-9]{32}$")
TRANSACTION_ID_RE = re.compile(r"^tr_[A-Za-z0-9]{32}$")
CUSTOMER_ID_RE = re.compile(r"^cust_[A-Za-z0-9]{32}$")
PROJECT_ID_RE = re.compile(r"^proj_[A-Za-z0-9]{32}$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")

ERROR_KEYS = {"success", "error_type", "message"}


def _refuse_server_errors(response: httpx.Response) -> None:
    request = response.request
    assert response.status_code < 500, (
        f"{request.method} {request.url} answered {response.status_code}: {response.read()!r}"
    )


def guard(client: httpx.Client) -> httpx.Client:
    """Fail on any 5xx answer this client receives."""
    hooks = client.event_hooks["response"]
    if _refuse_server_errors not in hooks:
        client.event_hooks["response"] = [*hooks, _refuse_server_errors]
    return client


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest) -> None:
    for name in ("client", "anon"):
        if name in request.fixturenames:
            guard(request.getfixturevalue(name))


def project_client(server: Any, *, sandbox: bool = True) -> httpx.Client:
    keys = server.create_project(sandbox=sandbox)
    return guard(
        httpx.Client(
            base_url=server.url,
            auth=(keys.processout_username, keys.processout_password),
            timeout=30,
        )
    )


@pytest.fixture(scope="module")
def po(server: Any) -> Iterator[httpx.Client]:
    """A sandbox project shared by the module's tests (see the module docstring)."""
    with project_client(server) as c:
        yield c


@pytest.fixture(scope="module")
def po_empty(server: Any) -> Iterator[httpx.Client]:
    """A sandbox project in which no test may create an invoice: every request must fail."""
    with project_client(server) as c:
        yield c
        # All the module's rejected requests together wrote nothing.
        assert count_invoices(c) == 0


def issue_processout_key(database_url: str, project_id: str, *, sandbox: bool) -> tuple[str, str]:
    """Give an existing project ProcessOut credentials for the other mode (live/sandbox)."""

    async def run() -> str:
        secret = new_processout_secret(sandbox)
        db = await connect(database_url)
        try:
            async with db.write() as tx:
                await projects.issue_key(tx, project_id, sandbox, "processout", secret)
        finally:
            await db.close()
        return secret

    return processout_username(project_id, sandbox), asyncio.run(run())


def seed_invoice() -> dict[str, Any]:
    """The Invoice JSON object of seed 001 (the ProcessOut reference page), verbatim."""
    data: dict[str, Any] = json.loads((DATA / "invoice_seed_001.json").read_text())
    return copy.deepcopy(data)


def success(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True, body
    return body


def failure(
    response: httpx.Response,
    status: int,
    error_type: str | None = None,
    *,
    field: str | None = None,
) -> dict[str, Any]:
    """Assert the ProcessOut error shape; ``field`` must be named at the message's start."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["success"] is False
    assert isinstance(body["error_type"], str) and body["error_type"], body
    assert isinstance(body["message"], str) and body["message"], body
    if error_type is not None:
        assert body["error_type"] == error_type, body
    if field is not None:
        assert body["message"].startswith(f"{field}: "), body
    return body


def invalid(response: httpx.Response, field: str, error_type: str | None = None) -> dict[str, Any]:
    """A 400 that names ``field``."""
    return failure(response, 400, error_type, field=field)


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"amount": "10", "currency": "EUR", **fields}
    invoice: dict[str, Any] = success(client.post("/invoices", json=body))["invoice"]
    return invoice


def find(client: httpx.Client, invoice_id: str, **params: Any) -> dict[str, Any]:
    invoice: dict[str, Any] = success(client.get(f"/invoices/{invoice_id}", params=params))[
        "invoice"
    ]
    return invoice


def create_customer(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"email": "jane@example.com", "first_name": "Jane", **fields}
    customer: dict[str, Any] = success(client.post("/customers", json=body))["customer"]
    assert CUSTOMER_ID_RE.match(customer["id"])
    return customer


def all_invoice_ids(client: httpx.Client) -> list[str]:
    """Every invoice id of the client's project, newest first, walking the pages."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = success(client.get("/invoices", params=params))
        ids += [iv["id"] for iv in page["invoices"]]
        if not page["has_more"]:
            return ids
        params["start_after"] = ids[-1]


def count_invoices(client: httpx.Client) -> int:
    return len(all_invoice_ids(client))
