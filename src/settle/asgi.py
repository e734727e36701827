"""Entry point for ASGI servers: ``uvicorn --factory settle.asgi:app``."""

from __future__ import annotations

from starlette.applications import Starlette

from settle.app import create_app
from settle.config import Settings


def app() -> Starlette:
    return create_app(Settings.from_env())
