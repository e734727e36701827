"""``GET /events/{id}/webhooks``: every attempt to deliver an event through this dialect (the
official client's ``Event.fetch_webhooks``, its ``Webhook`` objects), and ``POST
/events/{id}/webhooks``: send the event again (Settle's own; ProcessOut's dashboard has it).

A ``Webhook`` is one attempt: ``request_url``, ``request_method``, ``response_code`` (absent
when no answer came: refused address, timeout), ``response_body`` (its first KiB),
``response_time_ms``, ``status`` (1 delivered, 2 failed) and ``success``, ``created_at`` and
``release_at`` (when it was sent), and ``error`` (why it failed, when it did).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.faces import webhook_faces
from settle.api.processout.base import expands, ok, start
from settle.api.processout.events import SENT
from settle.clock import now_us, rfc3339
from settle.db.database import Tx
from settle.errors import NotFoundError
from settle.events import deliveries, delivery_history
from settle.events import service as events
from settle.events.delivery_history import Attempt
from settle.events.worker import backoff_of

DIALECT: Final = "processout"
DELIVERED: Final = 1
FAILED: Final = 2


def webhook(project_id: str, attempt: Attempt) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": attempt.id,
        "project_id": project_id,
        "event_id": attempt.event_id,
        "request_url": attempt.url,
        "request_method": "POST",
        "response_body": attempt.response_body or "",
        "response_time_ms": attempt.elapsed_ms,
        "status": DELIVERED if attempt.success else FAILED,
        "success": attempt.success,
        "created_at": rfc3339(attempt.at),
        "release_at": rfc3339(attempt.at),
    }
    if attempt.status_code is not None:
        out["response_code"] = attempt.status_code
    if attempt.error is not None:
        out["error"] = attempt.error
    return out


async def list_webhooks(request: Request) -> Response:
    call = await start(request)
    expands(request, ())
    event_id = request.path_params["event_id"]
    async with call.read() as tx:
        found = await events.get_event(tx, call.scope, event_id, types=SENT)
        attempts = await delivery_history.attempts_of_event(tx, call.scope, found.id, DIALECT)
    return ok(webhooks=[webhook(found.project_id, a) for a in attempts], has_more=False)


async def redeliver(request: Request) -> Response:
    call = await start(request)
    event_id = request.path_params["event_id"]
    window_us = backoff_of(call.runtime.settings).window_us

    async def perform(tx: Tx) -> Response:
        await events.get_event(tx, call.scope, event_id, types=SENT)  # 404 unless ours
        count = await deliveries.redeliver(
            tx,
            call.scope,
            event_id,
            webhook_faces(),
            now_us=now_us(),
            window_us=window_us,
            dialect=DIALECT,
        )
        if count is None:
            raise NotFoundError("event", event_id)
        return ok(webhooks_pending=count)

    response = await call.write(perform)
    if call.runtime.webhooks is not None:
        call.runtime.webhooks.wake()
    return response
