"""What every page shares: the ASGI application around their routes, the security headers, the
error pages, and reading a form.

``Pages`` is mounted by ``settle.app`` beside the API dialects. It answers every failure as a
page for people (404, 405, 403, 413, 500), never as a JSON body, and puts these headers on
every answer that does not set its own:

- ``Content-Security-Policy``: everything from Settle itself, no framing, forms posted to
  Settle only (a page whose form's POST may be redirected to Settle's public address, when
  the payer reached it by another, names that origin too: browsers check ``form-action``
  along a POST's redirects, which is why a payment never ends by a redirect to a return
  URL, see settle.web.checkout.after_success);
- ``X-Frame-Options: DENY`` (older browsers), ``Referrer-Policy: no-referrer`` (the page's
  address is a payment link), ``Cache-Control: no-store`` (nothing of a payment is kept in a
  shared cache), ``X-Content-Type-Options: nosniff``.

The pages are not in ``settle.app.app_routes``: that table is the API's, walked by tests of
API contracts (credentials, JSON error bodies, the OpenAPI document) which a public HTML page
does not have. ``Pages`` keeps its router to itself; tests/web/ tests the pages' own contract
(unknown and foreign ids are 404 pages, forms need their CSRF token).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Router
from starlette.types import Message, Receive, Scope, Send

from settle.api.http import read_body
from settle.db.database import DatabaseUnavailable
from settle.errors import MalformedBody, PayloadTooLarge, UnavailableError
from settle.web.html import message_page

log = logging.getLogger("settle.web")

MAX_FORM_BYTES: Final = 16 * 1024  # a card form is well under 1 KiB
MAX_FORM_FIELDS: Final = 20

CSP: Final = (
    "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
    " object-src 'none'"
)
SECURITY_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def origin_of(url: str | None) -> str | None:
    """``https://shop.example:8443`` for an http(s) URL, None for anything else, or for an
    address that could not be named in a header safely."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return None
    if not all(c.isalnum() or c in ".-:[]" for c in host) or not host.isascii():
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def csp(*form_origins: str | None) -> str:
    """The policy, with forms allowed to end (after redirects) at ``form_origins`` too."""
    extra = "".join(f" {o}" for o in dict.fromkeys(form_origins) if o)
    return CSP.replace("form-action 'self'", f"form-action 'self'{extra}")


def html_page(
    content: str, status: int = 200, *, form_origins: Sequence[str | None] = ()
) -> HTMLResponse:
    response = HTMLResponse(content, status_code=status)
    if form_origins:
        response.headers["content-security-policy"] = csp(*form_origins)
    return response


def see_other(url: str) -> RedirectResponse:
    """After a POST: the browser GETs ``url`` (303, so a reload does not post again)."""
    return RedirectResponse(url, status_code=303)


def not_found() -> HTMLResponse:
    return html_page(
        message_page(
            "Page not found",
            "There is no payment page at this address. Check the link you were given, or ask"
            " the merchant for a new one.",
        ),
        404,
    )


def forbidden(back: str) -> HTMLResponse:
    return html_page(
        message_page(
            "This form has expired",
            "For your security, the form could not be accepted: it was not sent from this"
            " page, or your browser did not keep its security cookie. Nothing was charged."
            " Go back to the payment page and try again.",
            link=(back, "Back to the payment page"),
        ),
        403,
    )


async def read_form(request: Request) -> dict[str, str]:
    """The form a page posted (``application/x-www-form-urlencoded``, UTF-8), each field once.

    Raises MalformedBody (a 400 page) or PayloadTooLarge (413). The body is never logged.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise MalformedBody("The form was not sent as a form.")
    try:
        raw = await read_body(request, MAX_FORM_BYTES)
    except ClientDisconnect:
        raise MalformedBody("The form ended before its end.") from None
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedBody("The form could not be read.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise MalformedBody("The form sent a field twice.")
        form[name] = value
    return form


_REASONS: Final = {
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too much data", "The form sent more than a payment needs."),
}


class Pages:
    """An ASGI application: a router of pages, with the pages' headers and error pages."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._router = Router(list(routes), redirect_slashes=False, default=self._unknown)

    @staticmethod
    async def _unknown(scope: Scope, receive: Receive, send: Send) -> None:
        await not_found()(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self._router(scope, receive, send_with_headers)
        except Exception as exc:
            if started:
                raise
            response = self._failure(exc)
            await response(scope, receive, send_with_headers)

    @staticmethod
    def _failure(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            title, text = _REASONS.get(exc.status_code, ("Something went wrong", exc.detail))
            response = html_page(message_page(title, text), exc.status_code)
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        if isinstance(exc, PayloadTooLarge):
            return html_page(message_page(*_REASONS[413]), 413)
        if isinstance(exc, MalformedBody):
            return html_page(message_page("The form could not be read", exc.message), 400)
        if isinstance(exc, DatabaseUnavailable | UnavailableError):
            log.warning("page unavailable: %s", exc)
            return html_page(
                message_page(
                    "Please try again in a moment",
                    "Payments are unavailable for a moment. If you had submitted a payment,"
                    " reload its page before paying again: it shows whether it went through.",
                ),
                503,
            )
        log.exception("page failed")
        return html_page(
            message_page(
                "Something went wrong",
                "The page could not be shown. If you had submitted a payment, reload its page"
                " before paying again: it shows whether it went through.",
            ),
            500,
        )
