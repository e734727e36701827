"""CSRF protection of the pages' forms: a browser key in a cookie, and per-form tokens.

The first page a browser gets sets a random key in a cookie (HttpOnly, SameSite=Lax; with
the ``__Host-`` prefix and Secure over HTTPS, so no other site or sub-domain can plant one).
Lax, not Strict: the payer arrives from the merchant's site, and a Strict cookie would not come
with that first GET, so a second tab opened from the shop would replace the key and expire
the first tab's form; Lax still keeps the cookie off cross-site POSTs.
Each form carries ``HMAC-SHA256(key, purpose)``, where the purpose names the one thing the
form may do (``checkout:iv_...``, ``3ds:opk_...``). A POST is taken only if its token is the
one its cookie's key gives for that purpose: another site can make a browser send the cookie
(SameSite aside) but cannot read it, so it cannot make the token; and a token lifted from one
form is worth nothing for another invoice.

Why not a server secret (HMAC of a nonce under a key the server keeps): every worker process
would need the same secret, and Settle has none to share without a new setting. The key in
the cookie is the secret here, and it never leaves the browser it was made for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from settle.ids import random_token

FIELD: Final = "csrf_token"
_PLAIN: Final = "settle_csrf"
_SECURE: Final = "__Host-settle_csrf"
_KEY_RE: Final = re.compile(r"[A-Za-z0-9]{32}")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_name(request: Request) -> str:
    return _SECURE if _secure(request) else _PLAIN


def browser_key(request: Request) -> str | None:
    """The key this browser's cookie holds, if it holds a well-formed one."""
    key = request.cookies.get(cookie_name(request))
    return key if key is not None and _KEY_RE.fullmatch(key) else None


def key_for(request: Request) -> tuple[str, bool]:
    """The browser's key, and whether it is new (then ``set_cookie`` must send it)."""
    key = browser_key(request)
    return (key, False) if key is not None else (random_token(32), True)


def set_cookie(request: Request, response: Response, key: str) -> None:
    response.set_cookie(
        cookie_name(request),
        key,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )


def token(key: str, purpose: str) -> str:
    digest = hmac.new(key.encode(), purpose.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def valid(request: Request, given: str | None, purpose: str) -> bool:
    """Whether ``given`` (the form's token) is the one this browser's key makes for
    ``purpose``. No cookie, no token, or another purpose's token: not valid."""
    key = browser_key(request)
    if key is None or not given:
        return False
    return hmac.compare_digest(token(key, purpose).encode(), given.encode("utf-8", "replace"))
