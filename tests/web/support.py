"""Helpers of the hosted checkout's tests: invoices made over the API, the page's form read
like a browser reads it, and the payment looked up afterwards over the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.api.processout.invoices_support import create, find, guard
from tests.conftest import RunningServer
from tests.dbcheck import query

SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
THREE_D_S_CARD = "4000000000000101"

_TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@contextmanager
def browser(server: RunningServer) -> Iterator[httpx.Client]:
    """A payer's browser, as far as HTTP goes: no credentials, its own cookies, redirects
    seen one by one. Fails the test on any 5xx."""
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as c:
        yield guard(c)


def page_path(invoice: dict[str, Any]) -> str:
    """The checkout page's path, from the invoice's ``url``."""
    url: str = invoice["url"]
    return urlsplit(url).path


def token_of(page: httpx.Response) -> str:
    found = _TOKEN_RE.search(page.text)
    assert found, page.text
    return found.group(1)


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    """What a browser posts with the page's form besides what the payer types: its CSRF
    token, and the amount its button offers to pay."""
    fields = dict(_HIDDEN_RE.findall(page.text))
    assert "csrf_token" in fields, page.text
    return fields


def new_invoice(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    return create(api, **{"name": "Amazing item", **fields})


def transaction_of(api: httpx.Client, invoice_id: str) -> dict[str, Any]:
    transaction: dict[str, Any] = find(api, invoice_id, expand="transaction")["transaction"]
    return transaction


def card_form(number: str, **more: str) -> dict[str, str]:
    return {
        "number": number,
        "exp_month": "12",
        "exp_year": "35",
        "cvc": "123",
        "name": "Jane Doe",
        **more,
    }


def pay(b: httpx.Client, path: str, number: str, **more: str) -> httpx.Response:
    """Open the page and submit its form with ``number``: the POST's answer."""
    page = b.get(path)
    assert page.status_code == 200, page.text
    return b.post(path, data={**hidden_fields(page), **card_form(number, **more)})


def stored_text(server: RunningServer, project_id: str) -> str:
    """Every stored row of the project's cards and payments, and of the sandbox's own tables,
    as one text: where a card number must never appear."""
    rows: list[tuple[Any, ...]] = []
    for table in ("cards", "transactions", "transaction_operations"):
        rows += query(
            server.database_url, f"SELECT * FROM {table} WHERE project_id = $1", project_id
        )
    for table in ("sandbox_vault", "sandbox_operations"):
        rows += query(server.database_url, f"SELECT * FROM {table}")
    return repr(rows)


def assert_page(response: httpx.Response, status: int) -> str:
    """An HTML page (never a JSON body) with the pages' security headers."""
    assert response.status_code == status, (response.status_code, response.text[:2000])
    headers = response.headers
    assert headers["content-type"].startswith("text/html"), headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "form-action 'self'" in csp, csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert response.text.startswith("<!doctype html>")
    return response.text
