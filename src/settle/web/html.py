"""HTML for the pages Settle serves: escaping, the page frame, money for people, the CSS.

No template engine: a page is a few small functions that build strings, and every value that
did not come from this package goes through ``esc`` (``html.escape``, quotes included), so
it is safe in text and in a double-quoted attribute alike. What a function returns is HTML
already; what it takes is text, unless its parameter is named ``*_html``.

Everything a page needs is served by Settle itself (one stylesheet, no script, no font, no
image): the Content-Security-Policy says so to the browser (``default-src 'self'``).
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from importlib import resources
from typing import Final

from settle.money import EXPONENTS

CSS_PATH: Final = "/checkout/static/checkout.css"


def esc(value: object) -> str:
    """``value`` as text, safe in HTML text and in a double-quoted attribute."""
    return html.escape(str(value), quote=True)


@cache
def stylesheet() -> bytes:
    """The one stylesheet of every page (read once, from the package)."""
    return resources.files("settle.web").joinpath("static/checkout.css").read_bytes()


@cache
def stylesheet_href() -> str:
    """Its address, versioned by its content: browsers may keep it as long as they like."""
    digest = hashlib.sha256(stylesheet()).hexdigest()[:12]
    return f"{CSS_PATH}?v={digest}"


def money(minor: int, currency: str) -> str:
    """``1234567, "EUR"`` -> ``"EUR 12,345.67"``: every decimal the currency has, grouped."""
    exponent = EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    text = f"{whole:,}" + (f".{frac:0{exponent}d}" if exponent else "")
    return f"{currency} {sign}{text}"


def page(title: str, body_html: str, *, lang: str = "en", refresh: str | None = None) -> str:
    """A whole page: ``title`` (text) and ``body_html`` (HTML) in the shared frame. With
    ``refresh`` (a URL), the browser goes on there at once (an instant meta refresh, no
    script); the page should link there too, for a browser that does not."""
    # Unquoted after "url=": the browser takes the rest of the attribute, quotes and all.
    refresh_html = (
        f'<meta http-equiv="refresh" content="0; url={esc(refresh)}">\n' if refresh else ""
    )
    return f"""<!doctype html>
<html lang="{esc(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
{refresh_html}<title>{esc(title)}</title>
<link rel="stylesheet" href="{esc(stylesheet_href())}">
</head>
<body>
<main class="sheet">
{body_html}
</main>
<footer class="footer"><p>Payments processed by Settle</p></footer>
</body>
</html>
"""


def message_page(title: str, text: str, *, link: tuple[str, str] | None = None) -> str:
    """A page that only says something (404, 403, an error), with one way onwards."""
    onwards = ""
    if link is not None:
        href, label = link
        onwards = f'<p><a class="button button-secondary" href="{esc(href)}">{esc(label)}</a></p>'
    body = f"""<h1 id="page-title">{esc(title)}</h1>
<p>{esc(text)}</p>
{onwards}"""
    return page(title, body)


def notice(kind: str, title: str, text: str = "") -> str:
    """A boxed notice: ``kind`` is ``error``, ``success`` or ``info``. Errors are announced by
    screen readers as they appear (``role="alert"``); the others are read in page order."""
    role = ' role="alert"' if kind == "error" else ""
    more = f"<p>{esc(text)}</p>" if text else ""
    return f"""<div class="notice notice-{esc(kind)}"{role}>
<p class="notice-title">{esc(title)}</p>
{more}
</div>"""
