"""The Reepay dialect as an application of its own, mounted at ``/v1``: its routes, its error
bodies (unknown paths and methods under /v1 included), ``Request-Id`` on every response."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from settle.api.reepay.errors import HANDLERS
from settle.api.reepay.request_id import RequestIdMiddleware
from settle.api.reepay.routes import ROUTES
from settle.config import Settings


def reepay_app(settings: Settings) -> Starlette:
    app = Starlette(
        routes=ROUTES,
        exception_handlers=HANDLERS,
        middleware=[Middleware(RequestIdMiddleware)],
    )
    app.router.redirect_slashes = False
    return app
