"""JSON columns are stored as text on both databases (asyncpg passes jsonb as text)."""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str:
    return _encoder.encode(value).decode()


def load_json(value: str | None) -> Any:
    return None if value is None else msgspec.json.decode(value)
