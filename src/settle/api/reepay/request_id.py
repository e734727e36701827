"""``Request-Id`` on every response of the Reepay dialect, the same id its error bodies carry.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs a task and a stream
per request): it names the request in its scope and adds the header when the response starts.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settle.ids import random_token

_KEY = "settle.request_id"


def request_id_of(request: Request) -> str:
    value = request.scope.get(_KEY)
    return value if isinstance(value, str) else ""


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = random_token(32)
        scope[_KEY] = request_id
        header = (b"request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
