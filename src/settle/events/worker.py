"""The webhook delivery worker: turns recorded events into HTTP requests, at least once.

One loop per process (inside ``settle serve``'s every worker process, or alone as ``settle
webhooks deliver``), any number of them on one database:

1. fan out: events not fanned out yet become delivery rows (``settle.events.deliveries``),
   in one write transaction;
2. claim: due deliveries whose object has no earlier pending delivery, as many as there are
   free slots, in one write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: two workers
   never claim the same row; a claim is a lease, so a worker that dies mid-send leaves its rows
   due again);
3. send each claimed delivery, concurrently up to ``webhooks_concurrency``, OUTSIDE any
   database transaction (a slow receiver holds no lock and costs only its slot), with a
   deadline of ``webhooks_timeout_seconds``: only a 2xx answered within it counts;
4. record the attempt and what follows (delivered, retry later with backoff, or failed once
   the retry window has closed) in one write transaction.

A crash anywhere loses nothing: an event is fanned out in the transaction that marks it so; a
delivery stays pending until an attempt's success is recorded. What a crash can cause is a
repeat (sent, then killed before the record): at-least-once, as documented; the webhook's id
is the same on every attempt, so a receiver can drop repeats.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import Final

from settle.clock import now_us
from settle.config import Settings
from settle.db.database import Database, DatabaseUnavailable, Tx
from settle.events import deliveries
from settle.events.deliveries import Backoff, Due, Face, Outcome
from settle.events.transport import WebhookClient, redacted

log = logging.getLogger("settle.webhooks")

# A claim outlives the attempt's deadline by this much before another worker may take it.
LEASE_MARGIN_SECONDS: Final = 30.0
STOP_GRACE_SECONDS: Final = 2.0
# An attempt answered with a 2xx within this long marks its URL as healthy (see _fast).
FAST_MS: Final = 1000
HEALTHY_URLS_KEPT: Final = 100
# Attempts sent but not yet recorded, at most: past this no more are claimed.
UNRECORDED_MAX: Final = 256
# Deliveries claimed per sending slot, at most (waiting for a slot, or in flight): 1,024 with
# the default 128 slots. Measured on PostgreSQL under create load (with FAN_OUT_BATCH 500):
# 4 per slot delivered 170/s, 8 per slot 423-467/s (see deliveries.FAN_OUT_BATCH).
CLAIM_AHEAD: Final = 8


def backoff_of(settings: Settings) -> Backoff:
    return Backoff(
        base_us=int(settings.webhooks_backoff_seconds * 1_000_000),
        cap_us=int(settings.webhooks_backoff_max_seconds * 1_000_000),
        window_us=int(settings.webhooks_retry_seconds * 1_000_000),
    )


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        faces: Mapping[str, Face],
        *,
        client: WebhookClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.faces = dict(faces)
        # Tests may pass their own (e.g. one that allows private addresses).
        self.client = client
        self.backoff = backoff_of(settings)
        self.rng = rng or random.Random()  # jitter, not a secret
        self.concurrency = max(1, settings.webhooks_concurrency)
        self.fan_out_batch = (
            deliveries.FAN_OUT_BATCH_SQLITE if db.backend == "sqlite" else deliveries.FAN_OUT_BATCH
        )
        self._lease_us = int((settings.webhooks_timeout_seconds + LEASE_MARGIN_SECONDS) * 1e6)
        # A slow or dead receiver may hold this many of the slots, never all of them.
        self.per_url = max(1, self.concurrency // 4)  # 8 of the default 32
        self._sending = asyncio.Semaphore(self.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._urls: Counter[str] = Counter()  # deliveries in flight per URL
        # URLs whose last attempt was a 2xx within a second, most recent last: these may use
        # every slot (a receiver on the same network takes a few ms; capping it would cap
        # the throughput, measured: 20 deliveries/s to a local receiver under create load).
        self._fast: dict[str, None] = {}
        self._resting: dict[str, int] = {}  # URL -> until when (see _sent)
        self._wake = asyncio.Event()
        # Attempts waiting to be recorded, and the task recording them (see _record).
        self._to_record: list[tuple[Due, Outcome, asyncio.Future[str]]] = []
        self._recorder: asyncio.Task[None] | None = None
        # Counters for logs, tests and the benchmark.
        self.sent = 0
        self.delivered = 0

    def wake(self) -> None:
        """Look for work now rather than at the next poll (e.g. after a commit with events)."""
        self._wake.set()

    async def _any(self, sql: str, *args: object) -> bool:
        """Whether ``sql`` finds a row, read without the write lock: an idle loop polls with
        reads only (on SQLite a write transaction would take the one write lock each time)."""
        async with self.db.read(one_statement=True) as tx:
            return await tx.fetchval(sql, *args) is not None

    async def fan_out(self) -> int:
        if not await self._any(deliveries.ANY_UNFANNED):
            return 0
        async with self.db.write() as tx:
            events, _ = await self._fan_out(tx)
            return events

    async def _fan_out(
        self, tx: Tx, take: int = 0, claimed: Sequence[Due] = ()
    ) -> tuple[int, list[Due]]:
        """Fan out, and claim up to ``take`` of the new deliveries as they are made (beside
        those just ``claimed``, not yet counted in flight)."""
        now = now_us()
        events, _made, taken = await deliveries.fan_out_and_claim(
            tx,
            self.faces,
            now_us=now,
            window_us=self.backoff.window_us,
            limit=self.fan_out_batch,
            resting=frozenset(self._resting_urls(now)),
            slots=self._slots(take, now, claimed) if take > 0 else None,
        )
        return events, taken

    def _busy(self, now: int) -> set[str]:
        """URLs this loop claims nothing for now: those with their share in flight (but the
        healthy ones) and those resting."""
        return {
            u for u, n in self._urls.items() if n >= self.per_url and u not in self._fast
        } | set(self._resting_urls(now))

    def _healthy(self) -> list[str]:
        return list(self._fast)[-HEALTHY_URLS_KEPT:]

    def _slots(self, limit: int, now: int, claimed: Sequence[Due]) -> deliveries.Slots:
        return deliveries.Slots(
            limit=limit,
            lease_us=self._lease_us,
            per_url=self.per_url,
            in_flight=self._urls + Counter(d.url for d in claimed),
            busy=frozenset(self._busy(now)),
            healthy=frozenset(self._healthy()),
        )

    def _resting_urls(self, now: int) -> dict[str, int]:
        """URLs that gave no answer lately, and until when they rest (see ``_sent``)."""
        for url in [u for u, until in self._resting.items() if until <= now]:
            del self._resting[url]
        return self._resting

    async def claim(self, limit: int) -> list[Due]:
        if not await self._any(deliveries.ANY_DUE, now_us()):
            return []
        async with self.db.write() as tx:
            return await self._claim(tx, limit)

    async def _claim(self, tx: Tx, limit: int) -> list[Due]:
        now = now_us()
        return await deliveries.claim(
            tx,
            now_us=now,
            lease_us=self._lease_us,
            limit=limit,
            per_url=self.per_url,
            busy=sorted(self._busy(now)),
            healthy=self._healthy(),
        )

    async def send(self, client: WebhookClient, due: Due) -> Outcome:
        """One attempt, outside any database transaction."""
        at = now_us()
        began = time.monotonic()
        status: int | None = None
        kept = b""
        error: str | None = None
        try:
            body, headers = self.faces[due.dialect].request(due, at)
            async with asyncio.timeout(self.settings.webhooks_timeout_seconds):
                answer = await client.post(due.url, body, headers)
            status, kept = answer.status, answer.body
        except TimeoutError:
            error = f"no answer within {self.settings.webhooks_timeout_seconds:g} s"
            status = None
        except Exception as exc:  # the receiver's failure, whatever it is, is the attempt's
            error = _describe(exc)
        elapsed_ms = int((time.monotonic() - began) * 1000)
        success = status is not None and 200 <= status < 300 and error is None
        if error is None and not success:
            error = f"answered {status}"
        return Outcome(
            at=at,
            status_code=status,
            success=success,
            elapsed_ms=elapsed_ms,
            error=error,
            response_body=kept[: deliveries.RESPONSE_KEPT_BYTES].decode("utf-8", "replace") or None,
        )

    async def deliver(self, client: WebhookClient, due: Due) -> str:
        """Send one attempt and record it; the delivery's new state."""
        outcome = await self.send(client, due)
        self._sent(due, outcome)
        return await self._record(due, outcome)

    def _sent(self, due: Due, outcome: Outcome) -> None:
        self.sent += 1
        self._fast.pop(due.url, None)
        self._resting.pop(due.url, None)
        if outcome.success and outcome.elapsed_ms < FAST_MS:
            self._fast[due.url] = None
        elif outcome.status_code is None:
            # No answer at all (refused, unreachable, timed out): the URL rests for a first
            # retry's backoff. Its due rows are deferred as the attempt is recorded
            # (deliveries.record_many), this loop claims nothing for it meanwhile, and the
            # deliveries it makes for it meanwhile are parked (deliveries._rows) until the URL
            # answers again: an invoice's own webhook_url that never answers cost an attempt
            # per invoice (a DNS lookup, a claim and a record; measured +0.33 ms of server
            # CPU per create at full speed on SQLite), and a backlog made due at the rest's
            # end was moved again row by row at each failed retry (migration 0018).
            ended = outcome.at + outcome.elapsed_ms * 1000
            self._resting[due.url] = ended + self.backoff.delay_us(1, self.rng)

    def _record(self, due: Due, outcome: Outcome) -> asyncio.Future[str]:
        """Record an attempt, together with those that finish meanwhile: one write
        transaction for all of them (one each cost a transaction, and on SQLite a wait for
        the one writer behind the requests, per delivery)."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(partial(self._recorded, due=due, outcome=outcome))
        self._to_record.append((due, outcome, waiter))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_batches())
        return waiter

    def _recorded(self, waiter: asyncio.Future[str], *, due: Due, outcome: Outcome) -> None:
        if waiter.cancelled():
            return
        exc = waiter.exception()
        if isinstance(exc, DatabaseUnavailable):
            # Sent but not recorded: the claim's lease runs out and it is sent again.
            log.warning("webhook %s attempt not recorded: %s", due.id, exc)
        elif exc is not None:
            log.error("webhook %s attempt not recorded", due.id, exc_info=exc)
        elif outcome.success:
            self.delivered += 1
        elif waiter.result() == "failed":
            log.warning(
                "webhook %s to %s failed for good: %s", due.id, redacted(due.url), outcome.error
            )

    async def _record_batches(self) -> None:
        while self._to_record:
            batch, self._to_record = self._to_record, []
            try:
                async with self.db.write() as tx:
                    states = await deliveries.record_many(
                        tx, [(due, outcome) for due, outcome, _ in batch], self.backoff, self.rng
                    )
            except Exception as exc:
                for _, _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            except BaseException:  # cancelled: so are those waiting (sent again later)
                for _, _, waiter in self._to_record + batch:
                    waiter.cancel()
                raise
            for (_, _, waiter), state in zip(batch, states, strict=True):
                if not waiter.done():
                    waiter.set_result(state)

    async def _send_then_record(self, client: WebhookClient, due: Due, claimed_at: int) -> None:
        """Wait for a sending slot, send, then leave the attempt to be recorded: the slot is
        free once the answer is in (a slot held until the record's commit spent most of its
        time waiting for the writer behind the requests; measured: 196 deliveries/s during
        create load with 32 slots, each held ~150 ms). Nothing of the delivery can be claimed
        again meanwhile: its lease runs for the timeout plus LEASE_MARGIN_SECONDS, and an
        attempt that could not end within its lease is not started (the delivery is claimed
        again once the lease is over)."""
        async with self._sending:
            deadline = now_us() + int(self.settings.webhooks_timeout_seconds * 1_000_000)
            if deadline > claimed_at + self._lease_us:
                log.warning("webhook %s not sent: its claim ran out while it waited", due.id)
                return
            try:
                outcome = await self.send(client, due)
            except Exception:
                log.exception("webhook %s attempt failed", due.id)
                return
        self._sent(due, outcome)
        self._record(due, outcome)

    async def step(self, client: WebhookClient) -> bool:
        """Fan out, then claim and start sending as much as there are free slots for, in one
        write transaction. Returns whether there may be more work right away."""
        # Claimed ahead of the slots: a claim is a write transaction that costs the same for
        # 8 rows or 100 (measured on PostgreSQL under create load: 0.3-0.5 s per round of
        # fan-out and claim, so a claim per 32 slots capped deliveries at ~50/s).
        free = self.concurrency * CLAIM_AHEAD - len(self._in_flight)
        if len(self._to_record) >= UNRECORDED_MAX:
            free = 0  # the database is behind: send no more until it has caught up
        # Claims are taken in batches (a claim is a write transaction and ranks the due rows:
        # one per finished delivery cost more than the deliveries under load).
        wanted = free if free > 0 and (free >= self.per_url or not self._in_flight) else 0
        unfanned = await self._any(deliveries.ANY_UNFANNED)
        any_due = bool(wanted) and await self._any(deliveries.ANY_DUE, now_us())
        if not unfanned and not any_due:
            return False
        claimed_at = now_us()  # no later than the claim's own now: the lease ends after
        async with self.db.write() as tx:
            # What is due first (oldest first), then the new deliveries claimed as they are
            # made (deliveries._take) with the slots left: the claim's ranking runs only when
            # something is due (a retry, a row held back until now, a backlog), and new rows
            # never overtake older due ones.
            claimed = await self._claim(tx, wanted) if any_due else []
            fanned, taken = (
                await self._fan_out(tx, wanted - len(claimed), claimed) if unfanned else (0, [])
            )
            claimed += taken
        for due in claimed:
            self._urls[due.url] += 1
            task = asyncio.create_task(self._send_then_record(client, due, claimed_at))
            self._in_flight.add(task)
            task.add_done_callback(partial(self._done, url=due.url))
        return fanned >= self.fan_out_batch or (bool(claimed) and len(claimed) == wanted)

    def _done(self, task: asyncio.Task[None], *, url: str) -> None:
        self._in_flight.discard(task)
        self._urls[url] -= 1
        if self._urls[url] <= 0:
            del self._urls[url]
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        settings = self.settings
        poll = settings.webhooks_poll_seconds
        async with self.client or WebhookClient(
            allow_private=settings.webhooks_allow_private,
            kept_bytes=deliveries.RESPONSE_KEPT_BYTES,
            idle_per_origin=self.concurrency,
        ) as client:
            try:
                while True:
                    more = False
                    try:
                        more = await self.step(client)
                    except DatabaseUnavailable as exc:
                        log.warning("webhook delivery paused: %s", exc)
                    except Exception:
                        log.exception("webhook delivery round failed; it runs again")
                    if not more:
                        # asyncio.timeout, not wait_for: on Python 3.11, a cancel arriving as
                        # wait_for's own timeout fired was lost (the inner Event.wait() was
                        # never cancelled, and stopping the worker hung; seen 1 run in ~5 of
                        # tests/events/test_worker.py).
                        with suppress(TimeoutError):
                            async with asyncio.timeout(poll):
                                await self._wake.wait()
                    self._wake.clear()
            finally:
                # Stopping: attempts under way get a moment to be recorded (one not recorded
                # is sent again once its lease runs out), then are cancelled.
                if self._in_flight:
                    await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_SECONDS)
                for task in self._in_flight:
                    task.cancel()
                if self._in_flight:
                    await asyncio.gather(*self._in_flight, return_exceptions=True)
                # ... and the attempts sent get theirs to be recorded too.
                await self._flush_records(STOP_GRACE_SECONDS)

    async def _flush_records(self, grace: float | None = None) -> None:
        recorder = self._recorder
        if recorder is None or recorder.done():
            return
        await asyncio.wait({recorder}, timeout=grace)
        if not recorder.done():
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)

    async def drain(self, client: WebhookClient) -> None:
        """Deliver whatever is due now, until nothing is (tests, ``redeliver``)."""
        while await self.step(client) or self._in_flight or self._to_record:
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            await self._flush_records()
