"""What a running app holds: settings, the database, the key ring. Built at start-up only."""

from __future__ import annotations

from dataclasses import dataclass

from settle.config import Settings
from settle.db.database import Database, connect
from settle.projects.service import KeyRing


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    db: Database
    keys: KeyRing

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        db = await connect(settings.database_url)
        return cls(settings=settings, db=db, keys=KeyRing(db, ttl=settings.key_cache_seconds))

    async def stop(self) -> None:
        await self.db.close()
