"""The request lifecycle every dialect shares: authenticate, read and decode the body, run one
write transaction (or an idempotent one), then the after-commit hooks.

A dialect's handler makes one ``Call`` and goes through it::

    call = await Call.start(request, authenticate)       # 401 in the dialect's own shape
    data = convert(await call.body(WireType))             # 400 naming the field
    return await call.write(perform)                      # perform(tx) -> Response

What used to travel between these steps through ``request.state`` (the raw body, the
renderings waiting for the commit) is held by the ``Call`` instead, in plain sight.

The runtime (settings, database, key ring) comes from the application's lifespan state, which
Starlette copies into every request's scope, mounted sub-applications included: each dialect
is mounted as an application of its own (its own error handlers and 404s), and all of them
reach the one runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from settle.api import idempotency
from settle.api.http import decode_body, read_body
from settle.billing import payments, recovery
from settle.db.database import Tx
from settle.errors import MalformedBody
from settle.payments.gateway import OperationResult
from settle.projects.models import Scope
from settle.runtime import Runtime
from settle.unique import atomic

T = TypeVar("T")
Authenticator = Callable[[Request, Runtime], Awaitable[Scope]]
# A payment's first step (``Call.pay``): told whether it may read optimistically.
Begin = Callable[[Tx, bool], Awaitable[payments.Attempt]]


def under_lock(begin: Callable[[Tx], Awaitable[payments.Attempt]]) -> Begin:
    """A first step that always reads under the invoice's lock (so it is never stale)."""

    async def locked(tx: Tx, optimistic: bool) -> payments.Attempt:
        return await begin(tx)

    return locked


RUNTIME_KEY = "runtime"


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.state.runtime
    return rt


class Call:
    """One request on its way through the lifecycle."""

    __slots__ = (
        "_after_commit",
        "_body_key",
        "_writing",
        "parsed",
        "request",
        "runtime",
        "scope",
    )

    def __init__(self, request: Request, runtime: Runtime, scope: Scope) -> None:
        self.request = request
        self.runtime = runtime
        self.scope = scope
        # The body as decoded into its wire type: what an Idempotency-Key's fingerprint covers.
        self.parsed: Any = None
        self._after_commit: list[Callable[[], None]] = []
        self._writing = False
        self._body_key: str | None = None

    @classmethod
    async def start(cls, request: Request, authenticate: Authenticator) -> Call:
        rt = runtime_of(request)
        return cls(request, rt, await authenticate(request, rt))

    async def body(self, wire_type: type[T], *, required: bool = False) -> T:
        """Read the body (bounded by the configured size) and decode it into ``wire_type``.

        An empty body reads as ``{}`` unless ``required``: then it is a 400, for operations
        whose document requires a body (a PUT without one would otherwise wipe what it sets).
        """
        try:
            raw = await read_body(self.request, self.runtime.settings.max_body_bytes)
        except ClientDisconnect:
            # The client went away before sending its whole body (or sent less than its
            # Content-Length said): nobody is left to answer, but it is no server error.
            raise MalformedBody("The request body ended before its Content-Length.") from None
        if required and not raw.strip():
            raise MalformedBody("The request body is required.")
        decoded = decode_body(raw, self.request.headers.get("content-type", ""), wire_type)
        self.parsed = decoded
        return decoded

    def read(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[Tx]:
        """One snapshot of committed data (see ``Database.read``)."""
        return self.runtime.db.read(one_statement=one_statement)

    @property
    def writing(self) -> bool:
        """Inside ``write``: what is built now may yet be rolled back."""
        return self._writing

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the write transaction has committed (at once outside a write).

        For caches: an entry made from a version that was then rolled back would later be
        served for a different content."""
        if self._writing:
            self._after_commit.append(hook)
        else:
            hook()

    def keyed_by(self, key: str) -> None:
        """Take ``key`` (given in the body: Reepay's refund ``key``) as the request's
        Idempotency-Key when it sends no header: a retry with the same key and body gets the
        first answer; the same key with another body, a 400."""
        self._body_key = key

    def _key(self) -> tuple[str, str] | None:
        """The request's Idempotency-Key and fingerprint, if it has a key."""
        header = self.request.headers.get(idempotency.HEADER, self._body_key)
        if header is None:
            return None
        url = self.request.url
        request_print = idempotency.fingerprint(
            self.request.method, url.path, url.query, self.parsed
        )
        return idempotency.check_key(header), request_print

    async def replayed(self) -> Response | None:
        """The recorded answer, if this keyed request was answered before: for work done
        before the write transaction (a card handed to the gateway's vault) that a retry must
        not do again."""
        keyed = self._key()
        if keyed is None:
            return None
        async with self.read(one_statement=True) as tx:
            recorded = await idempotency.recall(tx, self.scope, *keyed)
        return None if recorded is None else _replay(recorded)

    async def write(self, perform: Callable[[Tx], Awaitable[Response]]) -> Response:
        """Run ``perform`` in one write transaction; its response is built inside it.

        With an Idempotency-Key header the response is recorded in that transaction, and a
        retry gets the recorded one (marked ``Idempotent-Replayed: true``).
        """
        keyed = self._key()
        db = self.runtime.db
        self._writing = True
        try:
            if keyed is None:
                async with atomic(db) as tx:
                    response = await perform(tx)
                committed = True
            else:
                key, request_print = keyed

                async def answer(tx: Tx) -> idempotency.Answer:
                    done = await perform(tx)
                    return idempotency.Answer(status=done.status_code, body=bytes(done.body))

                recorded, committed = await idempotency.once(
                    db, self.scope, key, request_print, answer
                )
                response = _replay(recorded) if not committed else _response(recorded)
        finally:
            self._writing = False
            hooks, self._after_commit = self._after_commit, []
        if committed:
            for hook in hooks:
                hook()
        return response

    async def pay(
        self,
        begin: Begin,
        answer: Callable[[Tx, payments.Done], Awaitable[Response]],
    ) -> Response:
        """A payment operation in three steps (settle.billing.payments): ``begin`` writes it
        pending in one transaction, the gateway is called outside any, and the outcome and
        ``answer`` are written in a second (a sale repeats the last two for its capture).
        Each transaction runs through ``payments.transact``: ``begin(tx, optimistic)`` may
        read without the invoice's lock when told so (a concurrent writer then makes it run
        again under the lock).

        With an Idempotency-Key the key is claimed in the first transaction and answered in
        the last: a retry while the first attempt is in flight gets a clear conflict
        (``request.idempotency-key.in-progress``), never a second gateway call; afterwards, the
        recorded answer.
        """
        keyed = self._key()
        db, gateway = self.runtime.db, self.runtime.gateway

        async def first(tx: Tx, optimistic: bool) -> payments.Attempt | Response:
            if keyed is not None:
                recorded = await idempotency.claim(tx, self.scope, *keyed)
                if recorded is not None:
                    return _replay(recorded)
            attempt = await begin(tx, optimistic)
            if keyed is not None:
                await idempotency.started(tx, self.scope, keyed[0], attempt.operation.operation_key)
            return attempt

        try:
            step = await payments.transact(db, first)
        except idempotency.InFlight as in_flight:
            if keyed is None or in_flight.operation_key is None:
                raise
            return await self._answer_started(keyed[0], in_flight, answer)
        while isinstance(step, payments.Attempt):
            result = await payments.execute(gateway, step)

            async def last(
                tx: Tx,
                optimistic: bool,
                step: payments.Attempt = step,
                result: OperationResult | None = result,
            ) -> payments.Attempt | Response:
                done = await payments.finish(tx, step, result, optimistic=optimistic)
                if isinstance(done, payments.Attempt):
                    return done
                response = await answer(tx, done)
                if keyed is not None:
                    await self._record(tx, keyed[0], response)
                return response

            step = await payments.transact(db, last)
        return step

    async def _record(self, tx: Tx, key: str, response: Response) -> None:
        await idempotency.record(
            tx,
            self.scope,
            key,
            idempotency.Answer(status=response.status_code, body=bytes(response.body)),
        )

    async def _answer_started(
        self,
        key: str,
        in_flight: idempotency.InFlight,
        answer: Callable[[Tx, payments.Done], Awaitable[Response]],
    ) -> Response:
        """A retry of a payment whose first request died after starting it: once recovery
        has finished the operation, its outcome is the answer (recorded, and replayed from
        then on); until then, the in-progress refusal."""
        assert in_flight.operation_key is not None
        async with atomic(self.runtime.db) as tx:
            done = await recovery.outcome_of(tx, self.scope, in_flight.operation_key)
            if done is None:
                raise in_flight
            response = await answer(tx, done)
            await self._record(tx, key, response)
        response.headers["Idempotent-Replayed"] = "true"
        return response


def _response(answer: idempotency.Answer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type="application/json")


def _replay(answer: idempotency.Answer) -> Response:
    """A recorded answer, sent again (marked as such)."""
    response = _response(answer)
    response.headers["Idempotent-Replayed"] = "true"
    return response
