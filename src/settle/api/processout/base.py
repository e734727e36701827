"""What every ProcessOut handler shares: authentication, the success envelope, list queries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from settle.api.http import basic_auth
from settle.api.lifecycle import Call
from settle.errors import AuthenticationError, ErrorCode, invalid
from settle.listing import DEFAULT_LIMIT, MAX_LIMIT, PageQuery
from settle.projects.models import Scope
from settle.runtime import Runtime

encode: Final = msgspec.json.Encoder().encode


def ok(**payload: Any) -> Response:
    return Response(encode({"success": True, **payload}), media_type="application/json")


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def authenticate(request: Request, rt: Runtime) -> Scope:
    """HTTP Basic: the project id (``test-`` prefixed in sandbox) and a secret key."""
    creds = basic_auth(request)
    if creds is None:
        raise AuthenticationError(
            "Authenticate with HTTP Basic: your project id as the user name and your secret "
            "key as the password.",
            code=ErrorCode.AUTHENTICATION_MISSING,
        )
    return await rt.keys.processout(*creds)


async def start(request: Request) -> Call:
    return await Call.start(request, authenticate)


def _query_values(request: Request, name: str) -> list[str]:
    params = request.query_params
    return [*params.getlist(name), *params.getlist(f"{name}[]")]


def expands(request: Request, allowed: Iterable[str]) -> frozenset[str]:
    """``expand=a&expand=b``, ``expand[]=a`` and ``expand=a,b`` all mean {a, b}."""
    allowed = tuple(allowed)
    wanted = {
        part.strip()
        for value in _query_values(request, "expand")
        for part in value.split(",")
        if part.strip()
    }
    for name in wanted:
        if name not in allowed:
            raise invalid("expand", f"{name!r} cannot be expanded here; use: {', '.join(allowed)}.")
    return frozenset(wanted)


def page_query(request: Request) -> PageQuery:
    params = request.query_params
    raw_limit = params.get("limit", "")
    limit = DEFAULT_LIMIT
    if raw_limit != "":
        # isascii: str.isdigit() also accepts "²" and other digits int() refuses.
        if not (raw_limit.isascii() and raw_limit.isdigit()):
            raise invalid("limit", f"{raw_limit[:20]!r} is not a whole number.")
        # More than 6 digits is out of range anyway: PageQuery says so.
        limit = int(raw_limit) if len(raw_limit) <= 6 else MAX_LIMIT + 1
        # 0 (however written: "0", "00") means the default, as ProcessOut documents.
        limit = limit or DEFAULT_LIMIT
    order = params.get("order", "desc") or "desc"
    if order not in ("asc", "desc"):
        raise invalid("order", f"{order[:20]!r} is not allowed; use asc or desc.")
    return PageQuery(
        limit=limit,
        start_after=params.get("start_after") or None,
        end_before=params.get("end_before") or None,
        order="asc" if order == "asc" else "desc",
    )
