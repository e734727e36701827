"""Projects, their API keys, and the scope every request acts in."""

from __future__ import annotations

from typing import Literal

import msgspec

Dialect = Literal["processout", "reepay"]


class Scope(msgspec.Struct, frozen=True):
    """Who is asking: one project, in one mode. Every query filters on both."""

    project_id: str
    sandbox: bool


class Project(msgspec.Struct, kw_only=True):
    id: str
    name: str
    default_currency: str | None
    created_at: int


class IssuedKeys(msgspec.Struct, kw_only=True):
    """The only moment secrets exist in clear: right after creation."""

    project: Project
    sandbox: bool
    processout_username: str
    processout_password: str
    reepay_private_key: str
