"""What a running app holds: settings, the database, the key ring, and its background upkeep.
Built at start-up only."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Final

from settle.api import idempotency
from settle.billing import recovery, states
from settle.config import Settings
from settle.customers.service import HandleHints
from settle.db.database import Database, DatabaseUnavailable, connect
from settle.events.worker import DeliveryWorker
from settle.payments.gateway import Gateway
from settle.payments.sandbox import SandboxGateway
from settle.projects.service import KeyRing

log = logging.getLogger("settle")

UPKEEP_SECONDS: Final = 600.0


@dataclass(slots=True)
class Runtime:
    settings: Settings
    db: Database
    keys: KeyRing
    gateway: Gateway
    # The webhook delivery loop of this process (None when ``webhooks_deliver`` is off).
    webhooks: DeliveryWorker | None = None
    # Customer ids by handle, as last looked up (a hint the writes check: HandleHints).
    customer_handles: HandleHints = field(default_factory=HandleHints)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _closing: list[Database] = field(default_factory=list, repr=False)

    @classmethod
    async def start(cls, settings: Settings, *, upkeep_seconds: float = UPKEEP_SECONDS) -> Runtime:
        db = await connect(settings.database_url)
        rt = cls(
            settings=settings,
            db=db,
            keys=KeyRing(db, ttl=settings.key_cache_seconds),
            gateway=SandboxGateway(
                db,
                settings.base_url,
                answer_delay=settings.sandbox_answer_delay_ms / 1000,
                call_delay=settings.sandbox_call_delay_ms / 1000,
            ),
        )
        loop = asyncio.get_running_loop()
        rt._tasks = [
            loop.create_task(rt._upkeep_loop(upkeep_seconds)),
            loop.create_task(
                rt._recovery_loop(
                    settings.payment_recovery_seconds, settings.three_d_s_expiry_seconds
                )
            ),
        ]
        if settings.webhooks_deliver:
            from settle.api.faces import webhook_faces  # the dialects import this module

            rt.webhooks = DeliveryWorker(await rt._worker_db(), settings, webhook_faces())
            rt._tasks.append(loop.create_task(rt.webhooks.run()))
        return rt

    async def _worker_db(self) -> Database:
        """The delivery loop's database. On PostgreSQL, connections of its own: in the
        requests' pool it waited behind them for each transaction (asyncpg's pool is not
        fair: a connection given back goes to whoever asks first, and a waiter woken too late
        queues again at the back), and delivered 3-49 webhooks/s while creates ran at full
        speed. On SQLite the one writer is shared on purpose: its queue is fair, and the
        loop's writes join the requests' group commit instead of adding commits of their own.
        """
        if self.db.backend != "postgresql":
            return self.db
        from settle.db.postgres import PostgresDatabase

        own = await PostgresDatabase.open(self.settings.database_url, min_size=1, max_size=4)
        self._closing.append(own)
        return own

    async def _upkeep_loop(self, every: float) -> None:
        """Purge expired idempotency keys now and then (each worker does; it is idempotent)."""
        while True:
            await asyncio.sleep(every)
            try:
                purged = idempotency.PURGE_BATCH
                while purged == idempotency.PURGE_BATCH:  # in bounded transactions
                    async with self.db.write() as tx:
                        purged = await idempotency.purge(tx)
            except DatabaseUnavailable as exc:
                log.warning("upkeep skipped: %s", exc)

    async def _recovery_loop(self, stale_seconds: float, challenge_seconds: float) -> None:
        """Finish payment operations a crash left pending (first at start-up) and 3-D Secure
        challenges older than ``challenge_seconds`` that no payer answered, and free the
        Idempotency-Keys their requests had claimed. Only operations older than
        ``stale_seconds`` are taken: a younger one may still be in flight in another worker."""
        stale_us = int(stale_seconds * 1_000_000)
        while True:
            try:
                finished = await recovery.recover(
                    self.db,
                    self.gateway,
                    older_than_us=stale_us,
                    challenge_us=int(challenge_seconds * 1_000_000),
                    after=states.recovered,
                )
                if finished:
                    log.warning("recovered %d payment operation(s) left pending", finished)
                async with self.db.write() as tx:
                    await idempotency.release_stale_claims(tx, stale_us)
            except DatabaseUnavailable as exc:
                log.warning("payment recovery skipped: %s", exc)
            except Exception:
                log.exception("payment recovery failed; it runs again")
            await asyncio.sleep(max(stale_seconds / 2, 0.05))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        for other in self._closing:
            await other.close()
        await self.db.close()
