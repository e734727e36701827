"""Creating projects and authenticating API keys."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Final

from settle.clock import now_us
from settle.db.database import Database, Row, Tx
from settle.errors import AuthenticationError, ErrorCode, NotFoundError
from settle.ids import new_id
from settle.projects.keys import (
    hash_secret,
    hint,
    new_processout_secret,
    new_reepay_secret,
    processout_username,
)
from settle.projects.models import Dialect, IssuedKeys, Project, Scope

_INSERT_KEY: Final = (
    "INSERT INTO api_keys (id, project_id, sandbox, dialect, secret_hash, secret_hint,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


def _project(row: Row) -> Project:
    return Project(
        id=row["id"],
        name=row["name"],
        default_currency=row["default_currency"],
        created_at=row["created_at"],
    )


async def create_project(
    tx: Tx, name: str, *, sandbox: bool = True, default_currency: str | None = None
) -> IssuedKeys:
    now = now_us()
    project = Project(
        id=new_id("proj_"), name=name, default_currency=default_currency, created_at=now
    )
    await tx.execute(
        "INSERT INTO projects (id, name, default_currency, created_at) VALUES ($1, $2, $3, $4)",
        project.id,
        project.name,
        project.default_currency,
        project.created_at,
    )
    issued = IssuedKeys(
        project=project,
        sandbox=sandbox,
        processout_username=processout_username(project.id, sandbox),
        processout_password=new_processout_secret(sandbox),
        reepay_private_key=new_reepay_secret(),
    )
    await issue_key(tx, project.id, sandbox, "processout", issued.processout_password)
    await issue_key(tx, project.id, sandbox, "reepay", issued.reepay_private_key)
    return issued


async def issue_key(tx: Tx, project_id: str, sandbox: bool, dialect: Dialect, secret: str) -> None:
    await tx.execute(
        _INSERT_KEY,
        new_id("ak_"),
        project_id,
        sandbox,
        dialect,
        hash_secret(secret),
        hint(secret),
        now_us(),
    )


async def get_project(tx: Tx, project_id: str) -> Project:
    row = await tx.fetchrow(
        "SELECT id, name, default_currency, created_at FROM projects WHERE id = $1", project_id
    )
    if row is None:
        raise NotFoundError("project", project_id)
    return _project(row)


async def list_projects(tx: Tx) -> list[Project]:
    rows = await tx.fetch(
        "SELECT id, name, default_currency, created_at FROM projects ORDER BY created_at"
    )
    return [_project(r) for r in rows]


class KeyRing:
    """Resolves API secrets to scopes, with a short in-process cache.

    Only the SHA-256 of a secret is looked up or kept; a revoked key stops working within
    ``ttl`` seconds in every worker.
    """

    def __init__(self, db: Database, *, ttl: float = 30.0, max_entries: int = 10_000) -> None:
        self._db = db
        self._ttl = ttl
        self._max = max_entries
        self._cache: dict[tuple[Dialect, str], tuple[Scope, float]] = {}
        self._inflight: dict[tuple[Dialect, str], asyncio.Future[Scope | None]] = {}

    async def _lookup(self, dialect: Dialect, secret: str) -> Scope | None:
        digest = hash_secret(secret)
        key = (dialect, digest)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        # Single flight: when a busy key's entry expires, the requests that arrive meanwhile
        # wait for one database lookup instead of each making its own.
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Scope | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            scope = await self._fetch(digest, dialect)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(scope)
        finally:
            del self._inflight[key]
        if scope is None:
            self._cache.pop(key, None)
            return None
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[key] = (scope, now + self._ttl)
        return scope

    async def _fetch(self, digest: str, dialect: Dialect) -> Scope | None:
        async with self._db.read() as tx:
            row = await tx.fetchrow(
                "SELECT project_id, sandbox FROM api_keys"
                " WHERE secret_hash = $1 AND dialect = $2 AND revoked_at IS NULL",
                digest,
                dialect,
            )
        return (
            None
            if row is None
            else Scope(project_id=row["project_id"], sandbox=bool(row["sandbox"]))
        )

    async def processout(self, username: str, secret: str) -> Scope:
        scope = await self._lookup("processout", secret) if secret else None
        expected = processout_username(scope.project_id, scope.sandbox) if scope else ""
        # Compare in constant time even when the secret matched no key.
        if not hmac.compare_digest(expected.encode(), username.encode()) or scope is None:
            raise AuthenticationError(
                "The project id or secret key is wrong.",
                code=ErrorCode.AUTHENTICATION_INVALID,
            )
        return scope

    async def reepay(self, secret: str) -> Scope:
        scope = await self._lookup("reepay", secret) if secret else None
        if scope is None:
            raise AuthenticationError("The API key is wrong or revoked.")
        return scope
