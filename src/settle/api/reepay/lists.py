"""``GET /v1/list/invoice`` and ``GET /v1/list/customer``: newest first, in pages of ``size``.

A page's ``next_page_token`` is the id of its last object, the cursor of the shared listing
(``settle.listing``): the next page starts right after that row, so a client walking the pages
sees every object once, however many arrive meanwhile (new ones are newer than its first page),
and the last page has no token. Filters are conditions of that one statement, the token's row
included, so a token keeps its place only under the filters it was given with.

Served: ``size``, ``next_page_token``, ``from`` (inclusive) and ``to`` (exclusive) on the
creation time (``range=created``; dates and times without a zone are UTC, the zone of every
project); invoices by ``handle``, ``handle_prefix``, ``customer`` (a handle), ``state`` and
``exclude_state``, ``currency``, ``type``, ``subscription`` and ``plan`` (none here: nothing
matches); customers by ``handle``, ``handle_prefix``, ``email``, ``email_prefix``,
``first_name``, ``last_name``, ``address``, ``address2``, ``postal_code``, ``city``,
``country``, ``phone``, ``company`` and ``vat`` (exact values). The vendor's other filters are
refused with code 43, never ignored (``UNSUPPORTED_*``): a filter silently dropped would answer
a different question.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from settle import grammar
from settle.api.lifecycle import Call
from settle.api.reepay import render
from settle.api.reepay.base import encode, start
from settle.api.reepay.invoices import not_implemented, rendered_invoices
from settle.clock import MAX_US, MIN_US, from_datetime, now_us, rfc3339
from settle.customers import service as customers
from settle.db.database import Tx
from settle.errors import ErrorCode, ValidationError, invalid
from settle.invoices import service as invoices
from settle.invoices import totals as invoice_totals
from settle.listing import PageQuery, fetch_page
from settle.money import currency_code
from settle.projects.models import Scope

DEFAULT_SIZE: Final = 20
MIN_SIZE: Final = 10
MAX_SIZE: Final = 100
# A page stops at this many bytes of objects (at least one), with a token to go on: an
# invoice may have 1,000 lines, and 100 such invoices would be tens of megabytes.
MAX_PAGE_BYTES: Final = 8 << 20
MAX_FILTER_CHARS: Final = 255

RANGE_CREATED: Final = "created"
UNSUPPORTED_INVOICE: Final = (
    "interval",
    "handle_contains",
    "accounting_number",
    "accounting_number_prefix",
    "accounting_number_contains",
    "amount",
    "refunded_amount",
    "authorized_amount",
    "settled_amount",
    "partial_settled",
    "debtor_id",
    "dunning_start",
    "dunning_success",
    "number",
    "due",
)
UNSUPPORTED_CUSTOMER: Final = ("interval", "handle_contains", "name", "debtor_id")
# Reepay's exact-value customer filters -> the domain's columns.
CUSTOMER_COLUMNS: Final = {
    "handle": "handle",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "address": "address1",
    "address2": "address2",
    "postal_code": "zip",
    "city": "city",
    "country": "country_code",
    "phone": "phone_number",
    "company": "company_name",
    "vat": "vat",
}
REEPAY_STATES: Final = (
    "created",
    "pending",
    "dunning",
    "settled",
    "authorized",
    "cancelled",
    "failed",
)
# Reepay state -> the domain's (SQL literals from this table only, never from input).
_DOMAIN_STATE: Final = {name: state.value for state, name in render.STATES.items()}
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
# A time with its seconds and its zone optional: completed, then read by the wire grammar.
_TIME_RE: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2})(:[0-9]{2}(?:\.[0-9]+)?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def _size(params: QueryParams) -> int:
    # Present but empty is no integer: a 400, as the document's type says, not the default.
    raw = params.get("size")
    if raw is None:
        return DEFAULT_SIZE
    size = grammar.parse_integer(raw, field="size")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise invalid("size", f"must be from {MIN_SIZE} to {MAX_SIZE}.", ErrorCode.INVALID_LIMIT)
    return size


def _instant(text: str, field: str) -> int:
    """``2024-05-01``, ``2024-05-01T12:30``, ``2024-05-01T12:30:15.250``, each in UTC (the
    zone of every project here) unless it names its zone (``Z``, ``+02:00``), as microseconds."""
    if len(text) == 10:
        day = grammar.parse_date(text, field=field)
        return from_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))
    parts = _TIME_RE.fullmatch(text)
    if parts is not None:
        text = f"{parts.group(1)}{parts.group(2) or ':00'}{parts.group(3) or 'Z'}"
    us = grammar.parse_timestamp(text, field=field)
    if not MIN_US <= us <= MAX_US:
        raise invalid(field, "must be between years 0001 and 9999.")
    return us


class Window:
    """The creation-time window of a list: ``from`` inclusive, ``to`` exclusive."""

    def __init__(self, params: QueryParams, ranges: tuple[str, ...]) -> None:
        range_ = params.get("range", RANGE_CREATED)  # present but empty is not "created"
        if range_ != RANGE_CREATED:
            if range_ in ranges:
                raise not_implemented("range", f"Listing by {range_!r} time")
            raise invalid("range", f"{range_[:40]!r} is not allowed; use created.")
        self.range = range_
        raw_from, raw_to = params.get("from") or None, params.get("to") or None
        self.start = None if raw_from is None else _instant(raw_from, "from")
        self.end = None if raw_to is None else _instant(raw_to, "to")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValidationError(
                "from: must not be after to.", code=ErrorCode.DATE_RANGE_INVALID, field="from"
            )

    def conditions(self) -> list[str]:
        # Integers computed above, never text from the request.
        found = []
        if self.start is not None:
            found.append(f"created_at >= {int(self.start)}")
        if self.end is not None:
            found.append(f"created_at < {int(self.end)}")
        return found

    def shown(self) -> tuple[str, str]:
        return rfc3339(self.start or 0), rfc3339(self.end if self.end is not None else now_us())


def _text(params: QueryParams, name: str) -> str | None:
    value = params.get(name)
    if not value:
        return None
    if len(value) > MAX_FILTER_CHARS or "\x00" in value:
        raise invalid(name, f"must be at most {MAX_FILTER_CHARS} characters, without NUL.")
    return value


def _values(params: QueryParams, name: str) -> list[str]:
    """``state=a&state=b``, ``state[]=a`` and ``state=a,b`` all mean [a, b]."""
    raw = [*params.getlist(name), *params.getlist(f"{name}[]")]
    return [part.strip() for value in raw for part in value.split(",") if part.strip()]


def _refuse(params: QueryParams, names: tuple[str, ...]) -> None:
    for name in names:
        if params.get(name):
            raise not_implemented(name, f"The filter {name!r}")


def _prefix(match: dict[str, Any], column: str, prefix: str | None) -> None:
    """A prefix filter as a ``match`` entry: ``substr(column, 1, n) = $k``, the prefix a
    parameter (both backends count characters alike)."""
    if prefix is not None:
        match[f"substr({column}, 1, {len(prefix)})"] = prefix


def _states(params: QueryParams, name: str) -> list[str] | None:
    wanted = _values(params, name)
    if not wanted:
        return None
    for state in wanted:
        if state not in REEPAY_STATES:
            raise invalid(
                name,
                f"{state[:40]!r} is not a state; use: {', '.join(REEPAY_STATES)}.",
                ErrorCode.INVALID_ENUM,
            )
    # "dunning" has no domain counterpart: it matches nothing.
    return sorted({_DOMAIN_STATE[s] for s in wanted if s in _DOMAIN_STATE})


def _in(column: str, values: list[str], *, negate: bool = False) -> str:
    """``column IN ('a', 'b')`` of values from this module's tables (never from input)."""
    if not values:
        return "1 = 1" if negate else "1 = 0"
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} {'NOT IN' if negate else 'IN'} ({listed})"


async def _page(
    tx: Tx,
    scope: Scope,
    *,
    table: str,
    size: int,
    token: str | None,
    conditions: list[str],
    match: dict[str, Any],
) -> tuple[list[str], bool]:
    """The ids of one page, newest first, and whether more follow."""
    rows, has_more, _ = await fetch_page(
        tx,
        table=table,
        columns="id",
        scope=scope,
        query=PageQuery(limit=size, start_after=token),
        live=" AND ".join(["deleted_at IS NULL", *conditions]),
        match=match,
    )
    return [row["id"] for row in rows], has_more


def _answer(
    window: Window, size: int, ids: list[str], parts: list[bytes], has_more: bool
) -> Response:
    total, kept = 0, 0
    for part in parts:
        total += len(part)
        if kept and total > MAX_PAGE_BYTES:
            break
        kept += 1
    more = has_more or kept < len(parts)
    start_text, end_text = window.shown()
    body = render.page(
        size=size,
        range_=window.range,
        start=start_text,
        end=end_text,
        content=parts[:kept],
        token=ids[kept - 1] if more and kept else None,
    )
    return Response(body, media_type="application/json")


def _token(params: QueryParams) -> str | None:
    return params.get("next_page_token") or None


async def list_invoices(request: Request) -> Response:
    call: Call = await start(request)
    params = request.query_params
    _refuse(params, UNSUPPORTED_INVOICE)
    size, window = _size(params), Window(params, ("settled",))
    conditions = window.conditions()
    match: dict[str, Any] = {}
    handle = _text(params, "handle")
    if handle is not None:
        match["handle"] = handle
    _prefix(match, "handle", _text(params, "handle_prefix"))
    states = _states(params, "state")
    if states is not None:
        conditions.append(_in("state", states))
    excluded = _states(params, "exclude_state")
    if excluded is not None:
        conditions.append(_in("state", excluded, negate=True))
    currencies = sorted({currency_code(c[:10]) for c in _values(params, "currency")})
    if currencies:
        assert all(_CURRENCY_RE.fullmatch(c) for c in currencies)  # from the ISO table
        conditions.append(_in("currency", currencies))
    types = _values(params, "type")
    if types and render.INVOICE_TYPE not in types:
        conditions.append("1 = 0")  # every invoice here is a one-time customer invoice
    if _text(params, "subscription") or _text(params, "plan"):
        conditions.append("1 = 0")  # no invoice here belongs to a subscription
    customer = _text(params, "customer")
    async with call.read() as tx:
        if customer is not None:
            found = await customers.customer_id_of(tx, call.scope, customer)
            if found is None:
                conditions.append("1 = 0")
            else:
                match["customer_id"] = found
        ids, has_more = await _page(
            tx,
            call.scope,
            table="invoices",
            size=size,
            token=_token(params),
            conditions=conditions,
            match=match,
        )
        loaded = await invoices.get_invoices(tx, call.scope, ids)
        items = [loaded[i] for i in ids if i in loaded]
        parts = [encode(item) for item in await rendered_invoices(tx, call.scope, items)]
    return _answer(window, size, [iv.id for iv in items], parts, has_more)


async def list_customers(request: Request) -> Response:
    call: Call = await start(request)
    params = request.query_params
    _refuse(params, UNSUPPORTED_CUSTOMER)
    size, window = _size(params), Window(params, ())
    match: dict[str, Any] = {}
    for name, column in CUSTOMER_COLUMNS.items():
        value = _text(params, name)
        if value is not None:
            match[column] = value.upper() if name == "country" else value
    _prefix(match, "handle", _text(params, "handle_prefix"))
    _prefix(match, "email", _text(params, "email_prefix"))
    async with call.read() as tx:
        ids, has_more = await _page(
            tx,
            call.scope,
            table="customers",
            size=size,
            token=_token(params),
            conditions=window.conditions(),
            match=match,
        )
        loaded = await customers.get_customers(tx, call.scope, ids)
        items = [loaded[i] for i in ids if i in loaded]
        totals = await invoice_totals.customer_invoice_totals(tx, call.scope, [c.id for c in items])
    parts = [encode(render.customer(c, totals[c.id])) for c in items]
    return _answer(window, size, [c.id for c in items], parts, has_more)
