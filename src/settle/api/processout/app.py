"""The ProcessOut dialect as an application of its own, mounted at the root: its routes, its
error bodies (unknown paths and methods included), its OpenAPI document, its render cache."""

from __future__ import annotations

from starlette.applications import Starlette

from settle.api.processout.cache import RenderCache
from settle.api.processout.errors import HANDLERS
from settle.api.processout.routes import ROUTES
from settle.config import Settings


def processout_app(settings: Settings) -> Starlette:
    app = Starlette(routes=ROUTES, exception_handlers=HANDLERS)
    # "/invoices/" is not "/invoices": a 404 in this dialect's shape, not a bodiless 307.
    app.router.redirect_slashes = False
    app.state.render_cache = RenderCache(
        settings.render_cache_entries, max_bytes=settings.render_cache_bytes
    )
    return app
