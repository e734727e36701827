"""Idempotency-Key: a retried write gets the answer recorded for it, not a second change.

A client that lost the answer to a POST (a timeout, a dropped connection) cannot know whether
the invoice exists; sending the same request again with the same ``Idempotency-Key`` header is
safe. The answer is recorded in the same transaction as the change it answers, so either both
exist or neither does: no crash or race can leave a change without its answer, or an answer
without its change.

- Keys are scoped to the project and mode and kept for ``KEY_TTL_US`` (24 hours, as the
  payment APIs that defined the header do); expired keys are purged in the background.
- A key reused for a different request (method, path, query or body) is refused.
- Only successful answers are recorded. A request that failed changed nothing, and running it
  again gives the same error or, if the cause was fixed meanwhile (the customer now exists),
  the success the client wanted.
- Two requests with one key at the same time: both may do the work, but only one transaction
  can commit its key (a unique index); the other rolls back whole and answers with the
  winner's recorded answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from settle.clock import now_us
from settle.db.database import Database, Tx, UniqueViolation
from settle.errors import ConflictError, ValidationError
from settle.projects.models import Scope

HEADER: Final = "idempotency-key"
KEY_TTL_US: Final = 24 * 3600 * 1_000_000
MAX_KEY_LENGTH: Final = 255

_SELECT: Final = (
    "SELECT fingerprint, status, body, created_at FROM idempotency_keys"
    " WHERE project_id = $1 AND sandbox = $2 AND idempotency_key = $3"
)
_INSERT: Final = (
    "INSERT INTO idempotency_keys"
    " (project_id, sandbox, idempotency_key, fingerprint, status, body, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes


def check_key(value: str) -> str:
    """The header's value, if usable as a key: 1 to 255 visible ASCII characters."""
    if not 0 < len(value) <= MAX_KEY_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise ValidationError(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} visible ASCII "
            "characters (no spaces).",
            code="request.idempotency-key.invalid",
            field="Idempotency-Key",
        )
    return value


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(body)
    return digest.hexdigest()


async def recall(tx: Tx, scope: Scope, key: str, print_: str) -> Answer | None:
    row = await tx.fetchrow(_SELECT, scope.project_id, scope.sandbox, key)
    if row is None:
        return None
    if row["created_at"] < now_us() - KEY_TTL_US:
        # Expired but not purged yet: the key is free again.
        await tx.execute(
            "DELETE FROM idempotency_keys"
            " WHERE project_id = $1 AND sandbox = $2 AND idempotency_key = $3",
            scope.project_id,
            scope.sandbox,
            key,
        )
        return None
    if row["fingerprint"] != print_:
        raise ConflictError(
            "This Idempotency-Key was already used for a different request; use a new key "
            "for a new request.",
            code="request.idempotency-key.reused",
            field="Idempotency-Key",
        )
    return Answer(status=int(row["status"]), body=row["body"].encode())


async def remember(tx: Tx, scope: Scope, key: str, print_: str, answer: Answer) -> None:
    await tx.execute(
        _INSERT,
        scope.project_id,
        scope.sandbox,
        key,
        print_,
        answer.status,
        answer.body.decode(),
        now_us(),
    )


async def once(
    db: Database,
    scope: Scope,
    key: str,
    print_: str,
    perform: Callable[[Tx], Awaitable[Answer]],
) -> tuple[Answer, bool]:
    """Run ``perform`` in one transaction with its answer recorded under ``key``, or give the
    answer already recorded. Returns (answer, True if ``perform`` ran and committed)."""
    try:
        async with db.transaction() as tx:
            recorded = await recall(tx, scope, key, print_)
            if recorded is not None:
                return recorded, False
            answer = await perform(tx)
            await remember(tx, scope, key, print_, answer)
    except UniqueViolation:
        # Perhaps a concurrent request with the same key committed first; then its answer is
        # ours. Otherwise the violation was the request's own (it is raised again).
        async with db.read() as tx:
            recorded = await recall(tx, scope, key, print_)
        if recorded is None:
            raise
        return recorded, False
    return answer, True


async def purge(tx: Tx, now: int | None = None) -> None:
    """Forget keys older than the time to live."""
    cutoff = (now_us() if now is None else now) - KEY_TTL_US
    await tx.execute("DELETE FROM idempotency_keys WHERE created_at < $1", cutoff)
