"""The hosted checkout in a real browser: Debian's headless Chromium, driven by Playwright
(never a browser Playwright downloads). Pays with the success card, is declined, goes through
3-D Secure; checks the page at phone width, by keyboard alone, and that every request stays
with Settle. Each page is photographed: into docs/screenshots/ with
``SETTLE_SCREENSHOTS=docs/screenshots``, else into the test's temporary folder.

Skipped, saying why, where /usr/bin/chromium is missing (``apt-get install chromium``; CI's
``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.api.processout.invoices_support import guard
from tests.conftest import RunningServer
from tests.web.support import new_invoice, transaction_of

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 375, "height": 812}

# CI installs Chromium and must not pass by skipping these: there, a missing browser fails.
if os.environ.get("CI") and not CHROMIUM.exists():
    raise RuntimeError("CI: /usr/bin/chromium is missing; .ci/run should have installed it")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser tests need Debian's Chromium at /usr/bin/chromium"
    " (apt-get install chromium; .ci/run installs it)",
)

ORDER = {"name": "Order 1042", "amount": "24.90", "currency": "EUR"}
DETAILS = [
    {"name": "Amazing item", "amount": "19.90", "quantity": 1},
    {"name": "Gift wrap", "amount": "2.50", "quantity": 2},
]


@pytest.fixture
def shop(server: RunningServer) -> Iterator[httpx.Client]:
    """The API, as a merchant named as on the screenshots."""
    keys = server.create_project("Acme Store")
    auth = (keys.processout_username, keys.processout_password)
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as c:
        yield guard(c)


@pytest.fixture
def chromium(shop: httpx.Client) -> Iterator[Browser]:
    """A browser of its own for each test, started after the test's project was made: while
    Playwright's synchronous API runs, its event loop is the thread's running loop, and the
    fixtures that make projects (``asyncio.run``) could not run."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """One payer's browser: its page, and every address it asked for."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))

    def assert_only_settle(self, server: RunningServer) -> None:
        assert self.requested
        for url in self.requested:
            assert url.startswith(server.url + "/"), url


@pytest.fixture
def visit(
    chromium: Browser, server: RunningServer, request: pytest.FixtureRequest
) -> Iterator[Visit]:
    size: ViewportSize = getattr(request, "param", DESKTOP)
    context = chromium.new_context(viewport=size, locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        yield Visit(context)
    finally:
        context.close()


Shoot = Callable[[Page, str], Path]


@pytest.fixture
def shoot(tmp_path: Path) -> Shoot:
    """``shoot(page, name)``: a PNG of the whole page."""
    folder = Path(os.environ.get("SETTLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    return take


def fill_card(page: Page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Month (MM)").fill("12")
    page.get_by_label("Year (YY)").fill("30")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_label("Name on card").fill("Jane Doe")


def test_paying_with_the_success_card(
    server: RunningServer, shop: httpx.Client, visit: Visit, shoot: Shoot
) -> None:
    invoice = new_invoice(shop, details=DETAILS, **ORDER)
    page = visit.page
    page.goto(invoice["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Order 1042")
    expect(page.locator(".total")).to_contain_text("EUR 24.90")
    shoot(page, "checkout")
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay EUR 24.90").click()
    expect(page.get_by_text("Payment successful")).to_be_visible()
    expect(page.get_by_text("Visa ending in 4242")).to_be_visible()
    assert "4242 4242 4242 4242" not in page.content()
    shoot(page, "success")
    transaction = transaction_of(shop, invoice["id"])
    assert transaction["status"] == "completed"
    assert transaction["captured_amount"] == "24.9"
    visit.assert_only_settle(server)


def test_the_payer_reaches_a_return_url_that_redirects(
    server: RunningServer, shop: httpx.Client, visit: Visit
) -> None:
    # The return URL answers with a redirect to another origin (www., https, a login): the
    # payer ends on the shop's page. Straight from the form's POST, the redirect was blocked
    # by the page's form-action, after the payment was made (Chromium: "Sending form data
    # to ... violates the following Content Security Policy directive").
    with shop_pages() as (returns, thanks):
        invoice = new_invoice(shop, **ORDER, return_url=f"{returns}/return?order=1042")
        page = visit.page
        page.goto(invoice["url"])
        fill_card(page, "4242 4242 4242 4242")
        page.get_by_role("button", name="Pay EUR 24.90").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Thanks from the shop")
        assert page.url == f"{thanks}/thanks"
    assert transaction_of(shop, invoice["id"])["status"] == "completed"


@contextmanager
def shop_pages() -> Iterator[tuple[str, str]]:
    """Two origins of a shop on loopback ports: the first redirects /return to the second's
    /thanks, which says thanks."""
    thanks_origin: list[str] = []

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/return"):
                self.send_response(302)
                self.send_header("Location", f"{thanks_origin[0]}/thanks")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"<!doctype html><title>Shop</title><h1>Thanks from the shop</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Shop) for _ in range(2)]
    origins = [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    thanks_origin.append(origins[1])
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield origins[0], origins[1]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_a_declined_card(
    server: RunningServer, shop: httpx.Client, visit: Visit, shoot: Shoot
) -> None:
    invoice = new_invoice(shop, details=DETAILS, **ORDER)
    page = visit.page
    page.goto(invoice["url"])
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_role("button", name="Pay EUR 24.90").click()
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    # The form again, empty where the number was.
    expect(page.get_by_label("Card number")).to_have_value("")
    shoot(page, "declined")
    assert transaction_of(shop, invoice["id"])["status"] == "failed"
    visit.assert_only_settle(server)


def test_three_d_s(server: RunningServer, shop: httpx.Client, visit: Visit, shoot: Shoot) -> None:
    page = visit.page
    for decision in ("Approve", "Refuse"):
        invoice = new_invoice(shop, details=DETAILS, **ORDER)
        page.goto(invoice["url"])
        fill_card(page, "4000 0000 0000 0101")
        page.get_by_role("button", name="Pay EUR 24.90").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirm this payment")
        assert page.url.startswith(f"{server.url}/3ds/opk_")
        expect(page.locator(".facts")).to_contain_text("Visa ending in 0101")
        if decision == "Approve":
            shoot(page, "3ds")
        page.get_by_role("button", name=decision).click()
        transaction = transaction_of(shop, invoice["id"])
        if decision == "Approve":
            expect(page.get_by_text("Payment successful")).to_be_visible()
            assert transaction["status"] == "completed"
            assert transaction["three_d_s_status"] == "success"
        else:
            expect(page.get_by_role("alert")).to_contain_text("not confirmed with 3-D Secure")
            expect(page.get_by_label("Card number")).to_be_visible()
            assert transaction["status"] == "failed"
    visit.assert_only_settle(server)


@pytest.mark.parametrize("visit", [PHONE], indirect=True, ids=["phone"])
def test_at_phone_width_by_keyboard_alone(
    server: RunningServer, shop: httpx.Client, visit: Visit, shoot: Shoot
) -> None:
    invoice = new_invoice(
        shop,
        details=DETAILS,
        **ORDER,
        cancel_url="https://shop.example/cart",
    )
    page = visit.page
    page.goto(invoice["url"])
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scroll at 375 px: {width}"
    shoot(page, "checkout-phone")

    def tab_to(element_id: str) -> None:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == element_id
        # A focus ring the payer can see.
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", element_id

    # The tab order is the reading order; a first try with a mistyped number.
    typed = {
        "f-number": "4242 4242 4242 4241",
        "f-exp_month": "12",
        "f-exp_year": "30",
        "f-cvc": "123",
        "f-name": "Jane Doe",
    }
    for element_id, text in typed.items():
        tab_to(element_id)
        page.keyboard.type(text)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Check the card details")
    expect(page.locator("#f-number-error")).to_contain_text("not valid")
    expect(page.get_by_label("Card number")).to_have_value("")
    expect(page.get_by_label("Name on card")).to_have_value("Jane Doe")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scroll at 375 px: {width}"
    shoot(page, "card-errors-phone")
    # The first field to correct has the focus.
    assert page.evaluate("document.activeElement.id") == "f-number"
    # The error summary's link takes the focus to the field.
    page.get_by_role("link", name="This card number is not valid").click()
    assert page.evaluate("document.activeElement.id") == "f-number"
    page.keyboard.type("4242 4242 4242 4242")
    page.get_by_label("Security code (CVC)").focus()
    page.keyboard.type("123")
    page.keyboard.press("Enter")  # submits the form from a field, as browsers do
    expect(page.get_by_text("Payment successful")).to_be_visible()
    shoot(page, "success-phone")
    assert transaction_of(shop, invoice["id"])["status"] == "completed"
    visit.assert_only_settle(server)
