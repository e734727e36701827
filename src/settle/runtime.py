"""What a running app holds: settings, the database, the key ring, and its background upkeep.
Built at start-up only."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Final

from settle.api import idempotency
from settle.config import Settings
from settle.db.database import Database, DatabaseUnavailable, connect
from settle.projects.service import KeyRing

log = logging.getLogger("settle")

UPKEEP_SECONDS: Final = 600.0


@dataclass(slots=True)
class Runtime:
    settings: Settings
    db: Database
    keys: KeyRing
    _upkeep: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, settings: Settings, *, upkeep_seconds: float = UPKEEP_SECONDS) -> Runtime:
        db = await connect(settings.database_url)
        rt = cls(settings=settings, db=db, keys=KeyRing(db, ttl=settings.key_cache_seconds))
        rt._upkeep = asyncio.get_running_loop().create_task(rt._upkeep_loop(upkeep_seconds))
        return rt

    async def _upkeep_loop(self, every: float) -> None:
        """Purge expired idempotency keys now and then (each worker does; it is idempotent)."""
        while True:
            await asyncio.sleep(every)
            try:
                async with self.db.transaction() as tx:
                    await idempotency.purge(tx)
            except DatabaseUnavailable as exc:
                log.warning("upkeep skipped: %s", exc)

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            with suppress(asyncio.CancelledError):
                await self._upkeep
        await self.db.close()
