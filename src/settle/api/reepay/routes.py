"""The Reepay dialect's route table."""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settle.api.reepay.errors import error_table


@cache
def _error_codes_body() -> bytes:
    return msgspec.json.encode(
        [{k: row[k] for k in ("code", "error", "http_status")} for row in error_table()]
    )


async def error_codes(request: Request) -> Response:
    """The vendor's numeric error code table (public, as the vendor's is)."""
    return Response(_error_codes_body(), media_type="application/json")


@cache
def openapi_document() -> bytes:
    error: dict[str, Any] = {
        "type": "object",
        "required": ["code", "error", "http_status", "http_reason", "path", "timestamp"],
        "properties": {
            "code": {"type": "integer"},
            "error": {"type": "string"},
            "message": {"type": "string"},
            "path": {"type": "string"},
            "timestamp": {"type": "string"},
            "http_status": {"type": "integer"},
            "http_reason": {"type": "string"},
            "request_id": {"type": "string"},
        },
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Settle (Reepay dialect)", "version": "1"},
        "servers": [{"url": "/v1"}],
        "components": {
            "schemas": {"Error": error},
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "paths": {
            "/error_codes": {
                "get": {
                    "operationId": "getErrorCodes",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The error code table",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["code", "error"],
                                            "properties": {
                                                "code": {"type": "integer"},
                                                "error": {"type": "string"},
                                                "http_status": {"type": ["integer", "null"]},
                                            },
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            }
        },
    }
    return msgspec.json.encode(document)


async def openapi(request: Request) -> Response:
    return Response(openapi_document(), media_type="application/json")


ROUTES: Final = [
    Route("/error_codes", error_codes, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
