"""Idempotency-Key: a retried write gets the answer recorded for it, not a second change.

A client that lost the answer to a POST (a timeout, a dropped connection) cannot know whether
the invoice exists; sending the same request again with the same ``Idempotency-Key`` header is
safe. The answer is recorded in the same transaction as the change it answers, so either both
exist or neither does: no crash or race can leave a change without its answer, or an answer
without its change.

- Keys are scoped to the project and mode and kept for ``KEY_TTL_US`` (24 hours, as the
  payment APIs that defined the header do); expired keys are purged in the background.
- A key reused for a different request is refused. "The same request" is compared parsed, not
  as bytes: the method, the path, the query parameters in any order, and the body as decoded
  into its wire type (so JSON with other whitespace or key order, or the same fields sent
  form-encoded, is the same request).
- Only successful answers are recorded. A request that failed changed nothing, and running it
  again gives the same error or, if the cause was fixed meanwhile (the customer now exists),
  the success the client wanted.
- The key is claimed before the work starts: the first statement of the transaction inserts
  it. A concurrent request with the same key blocks on that row (PostgreSQL waits for the
  unique index entry's transaction; SQLite's single writer runs one after the other), then
  finds the committed answer and replays it; if the first rolled back, it claims the key and
  does the work itself. So a retry never runs beside the first attempt: without the claim, two
  keyed DELETEs both ran, and the loser answered 404 for the object the winner had deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec

from settle.clock import now_us
from settle.db.database import Database, Lock, Tx
from settle.errors import ConflictError, ErrorCode, ValidationError
from settle.projects.models import Scope
from settle.unique import atomic

HEADER: Final = "idempotency-key"
KEY_TTL_US: Final = 24 * 3600 * 1_000_000
MAX_KEY_LENGTH: Final = 255
_CLAIMED: Final = 0  # the status of a key whose request is still running

_SCOPE: Final = "project_id = $1 AND sandbox = $2 AND idempotency_key = $3"
_CLAIM: Final = (
    "INSERT INTO idempotency_keys"
    " (project_id, sandbox, idempotency_key, fingerprint, status, body, created_at)"
    " VALUES ($1, $2, $3, $4, 0, '', $5)"
    " ON CONFLICT (project_id, sandbox, idempotency_key) DO NOTHING RETURNING seq"
)
_canonical = msgspec.json.Encoder(order="sorted").encode


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes


class InFlight(ConflictError):
    """The key's first request has not answered yet. ``operation_key``: the payment
    operation it started, if it was a payment (whose outcome may be known by now: recovery
    finishes an operation whose request died)."""

    def __init__(self, operation_key: str | None) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still in progress; retry later.",
            code=ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS,
            field="Idempotency-Key",
        )
        self.operation_key = operation_key


def check_key(value: str) -> str:
    """The header's value, if usable as a key: 1 to 255 visible ASCII characters."""
    if not 0 < len(value) <= MAX_KEY_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise ValidationError(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} visible ASCII "
            "characters (no spaces).",
            code=ErrorCode.IDEMPOTENCY_KEY_INVALID,
            field="Idempotency-Key",
        )
    return value


def fingerprint(method: str, path: str, query: str, body: Any) -> str:
    """What makes two requests the same: ``body`` is the decoded wire value (None if the
    endpoint takes none), encoded canonically (keys sorted, unset fields omitted)."""
    digest = hashlib.sha256()
    params = sorted(parse_qsl(query, keep_blank_values=True))
    for part in (method.encode(), path.encode(), _canonical(params), _canonical(body)):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.hexdigest()


async def recall(tx: Tx, scope: Scope, key: str, request_print: str) -> Answer | None:
    """The answer recorded for ``key``, read only (None: none yet, or expired); a key used
    for another request is refused as in ``claim``."""
    row = await tx.fetchrow(
        f"SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE {_SCOPE}",
        scope.project_id,
        scope.sandbox,
        key,
    )
    if row is None or row["status"] == _CLAIMED or row["created_at"] < now_us() - KEY_TTL_US:
        return None
    if row["fingerprint"] != request_print:
        raise _reused()
    return Answer(status=int(row["status"]), body=row["body"].encode())


def _reused() -> ConflictError:
    return ConflictError(
        "This Idempotency-Key was already used for a different request; use a new key "
        "for a new request.",
        code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
        field="Idempotency-Key",
    )


async def claim(tx: Tx, scope: Scope, key: str, request_print: str) -> Answer | None:
    """Claim ``key`` for this transaction (None), or return the answer recorded under it."""
    args = (scope.project_id, scope.sandbox, key)
    while True:
        if await tx.fetchval(_CLAIM, *args, request_print, now_us()) is not None:
            return None
        row = await tx.fetchrow(
            f"SELECT seq, fingerprint, status, body, created_at FROM idempotency_keys"
            f" WHERE {_SCOPE}",
            *args,
            lock=Lock.UPDATE,
        )
        if row is None:
            continue  # purged between the two statements: claim it afresh
        if row["created_at"] < now_us() - KEY_TTL_US:
            # Expired but not purged yet: the key is free again, and now ours.
            await tx.execute(
                "UPDATE idempotency_keys SET fingerprint = $2, status = 0, body = '',"
                " created_at = $3 WHERE seq = $1",
                row["seq"],
                request_print,
                now_us(),
            )
            return None
        if row["fingerprint"] != request_print:
            raise _reused()
        if row["status"] == _CLAIMED:
            # Seen committed only between a payment's two transactions (its claim's body is
            # then the key of the operation it wrote pending): see ``started``.
            raise InFlight(row["body"] or None)
        return Answer(status=int(row["status"]), body=row["body"].encode())


async def started(tx: Tx, scope: Scope, key: str, operation_key: str) -> None:
    """Note on ``key``'s claim the payment operation its request wrote pending: if the request
    dies before answering, a retry answers from that operation once recovery has finished
    it (rather than run again, and be refused as the payment already made)."""
    await tx.execute(
        f"UPDATE idempotency_keys SET body = $4 WHERE {_SCOPE} AND status = 0",
        scope.project_id,
        scope.sandbox,
        key,
        operation_key,
    )


async def once(
    db: Database,
    scope: Scope,
    key: str,
    request_print: str,
    perform: Callable[[Tx], Awaitable[Answer]],
) -> tuple[Answer, bool]:
    """Run ``perform`` in one transaction with its answer recorded under ``key``, or give the
    answer already recorded. Returns (answer, True if ``perform`` ran and committed)."""
    async with atomic(db) as tx:
        recorded = await claim(tx, scope, key, request_print)
        if recorded is not None:
            return recorded, False
        answer = await perform(tx)
        await record(tx, scope, key, answer)
    return answer, True


async def record(tx: Tx, scope: Scope, key: str, answer: Answer) -> None:
    """The answer to the request that claimed ``key`` (in the claiming transaction, or, for a
    payment, in the one that writes the gateway's answer)."""
    await tx.execute(
        f"UPDATE idempotency_keys SET status = $4, body = $5 WHERE {_SCOPE}",
        scope.project_id,
        scope.sandbox,
        key,
        answer.status,
        answer.body.decode(),
    )


async def release_stale_claims(tx: Tx, older_than_us: int) -> None:
    """Free keys whose request died holding them without having started an operation (a
    claim with one is answered from that operation by the retry: see ``started``)."""
    await tx.execute(
        "DELETE FROM idempotency_keys WHERE status = 0 AND body = '' AND created_at < $1",
        now_us() - older_than_us,
    )


# Keys forgotten per write transaction: the upkeep deletes ten minutes' worth of expired keys
# each round, which at 100 keyed requests a second is 60,000 rows, and on SQLite one DELETE of
# them all would hold the server's event loop and the file's write lock while it ran.
PURGE_BATCH: Final = 1000


async def purge(tx: Tx, now: int | None = None, *, limit: int = PURGE_BATCH) -> int:
    """Forget up to ``limit`` of the keys older than the time to live, oldest first; returns
    how many (call again, in another transaction, while that is ``limit``)."""
    cutoff = (now_us() if now is None else now) - KEY_TTL_US
    gone = await tx.fetch(
        "DELETE FROM idempotency_keys WHERE seq IN (SELECT seq FROM idempotency_keys"
        " WHERE created_at < $1 ORDER BY created_at LIMIT $2) RETURNING seq",
        cutoff,
        limit,
    )
    return len(gone)
