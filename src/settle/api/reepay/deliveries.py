"""A Reepay account's webhooks, with their state, and resending them.

- ``GET /v1/webhook``: the account's webhooks, newest first, in pages of ``size`` (10-100,
  default 20) with ``next_page_token``; ``event`` (an event id) and ``state`` filter them.
- ``GET /v1/webhook/{id}``: one webhook; ``GET /v1/webhook/{id}/request``: its every attempt.
- ``POST /v1/webhook/{id}/resend``: send it again from now on (with a fresh retry window).

A webhook is one event for one URL: ``{id, event, event_type, url, state, created, count,
success, last_fail, first_fail, last_http_status, last_error}``, ``state`` being ``pending``
(not tried yet), ``retrying`` (failed, will be tried again), ``completed`` (a 2xx came) or
``failed`` (given up after 3 days). These paths are not in the vendor's derived document
(its invoice surface only); their names follow the vendor's webhook resource.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.reepay import lists
from settle.api.reepay.base import json_response, start
from settle.clock import now_us, rfc3339
from settle.db.database import Row, Tx
from settle.errors import ErrorCode, NotFoundError, invalid
from settle.events import delivery_history
from settle.events.delivery_history import Attempt, Delivery
from settle.events.types import EventType
from settle.events.worker import backoff_of
from settle.ids import could_exist
from settle.listing import PageQuery, fetch_page
from settle.projects.models import Scope

DIALECT: Final = "reepay"
# Reepay's states, as conditions on a delivery row (SQL from the code, never input).
STATES: Final = {
    "pending": "state = 'pending' AND attempts = 0",
    "retrying": "state = 'pending' AND attempts > 0",
    "completed": "state = 'delivered'",
    "failed": "state = 'failed'",
}


def state_of(d: Delivery) -> str:
    if d.state == "delivered":
        return "completed"
    if d.state == "failed":
        return "failed"
    return "retrying" if d.attempts else "pending"


def webhook(d: Delivery) -> dict[str, Any]:
    from settle.api.reepay.webhooks import NAMES

    out: dict[str, Any] = {
        "id": d.id,
        "event": d.event_id,
        "url": d.url,
        "state": state_of(d),
        "created": rfc3339(d.created_at),
        "count": d.attempts,
    }
    name = NAMES.get(EventType(d.event_type))
    if name:
        out["event_type"] = name
    if d.delivered_at is not None:
        out["success"] = rfc3339(d.delivered_at)
    if d.first_failed_at is not None:
        out["first_fail"] = rfc3339(d.first_failed_at)
    if d.state != "delivered" and d.last_attempt_at is not None:
        out["last_fail"] = rfc3339(d.last_attempt_at)
    if d.last_status is not None:
        out["last_http_status"] = d.last_status
    if d.last_error is not None and d.state != "delivered":
        out["last_error"] = d.last_error
    return out


def request_of(a: Attempt) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "webhook": a.delivery_id,
        "url": a.url,
        "created": rfc3339(a.at),
        "success": a.success,
        "duration_ms": a.elapsed_ms,
    }
    if a.status_code is not None:
        out["http_status"] = a.status_code
    if a.error is not None:
        out["error"] = a.error
    return out


async def list_webhooks(request: Request) -> Response:
    call = await start(request)
    params = request.query_params
    size = lists._size(params)  # the list endpoints' rule
    token = params.get("next_page_token") or None
    match: dict[str, Any] = {"dialect": DIALECT}
    event = params.get("event")
    if event is not None:
        match["event_id"] = event
    state = params.get("state")
    if state is not None and state not in STATES:
        raise invalid(
            "state",
            f"{state[:40]!r} is not a state; use: {', '.join(STATES)}.",
            ErrorCode.INVALID_ENUM,
        )
    if event is not None and not could_exist(event):
        rows: list[Row] = []
        has_more = False
    else:
        async with call.read(one_statement=True) as tx:
            rows, has_more, _ = await fetch_page(
                tx,
                table="deliveries",
                columns=delivery_history.DELIVERY_COLUMNS,
                scope=call.scope,
                query=PageQuery(limit=size, start_after=token),
                live=STATES[state] if state else "",
                match=match,
            )
    content = [webhook(delivery_history.delivery_of(r)) for r in rows]
    answer: dict[str, Any] = {"size": size, "count": len(content), "content": content}
    if has_more and content:
        answer["next_page_token"] = content[-1]["id"]
    return json_response(answer)


async def _webhook_or_404(tx: Tx, scope: Scope, webhook_id: str) -> Delivery:
    found = await delivery_history.get_delivery(tx, scope, webhook_id, DIALECT)
    if found is None:
        raise NotFoundError("webhook", webhook_id)
    return found


async def get_webhook(request: Request) -> Response:
    call = await start(request)
    async with call.read(one_statement=True) as tx:
        found = await _webhook_or_404(tx, call.scope, request.path_params["id"])
    return json_response(webhook(found))


async def webhook_requests(request: Request) -> Response:
    call = await start(request)
    async with call.read() as tx:
        found = await _webhook_or_404(tx, call.scope, request.path_params["id"])
        attempts = await delivery_history.attempts_of_delivery(tx, call.scope, found.id)
    return json_response([request_of(a) for a in attempts])


async def resend_webhook(request: Request) -> Response:
    call = await start(request)
    webhook_id = request.path_params["id"]
    window_us = backoff_of(call.runtime.settings).window_us

    async def perform(tx: Tx) -> Response:
        done = await delivery_history.resend(
            tx, call.scope, webhook_id, DIALECT, now_us=now_us(), window_us=window_us
        )
        if not done:
            raise NotFoundError("webhook", webhook_id)
        return json_response(webhook(await _webhook_or_404(tx, call.scope, webhook_id)))

    response = await call.write(perform)
    if call.runtime.webhooks is not None:
        call.runtime.webhooks.wake()
    return response
