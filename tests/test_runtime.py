"""The runtime's background upkeep: expired idempotency keys go away by themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from settle.api import idempotency
from settle.clock import now_us
from settle.config import Settings
from settle.db.database import Tx
from settle.db.migrate import upgrade
from settle.projects import service as projects
from settle.projects.models import Scope
from settle.runtime import Runtime


async def test_upkeep_purges_expired_idempotency_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'upkeep.db'}"
    upgrade(url)
    rt = await Runtime.start(Settings(database_url=url), upkeep_seconds=0.05)
    try:
        async with rt.db.write() as tx:
            keys = await projects.create_project(tx, "p")
        scope = Scope(project_id=keys.project.id, sandbox=True)
        answer = idempotency.Answer(status=200, body=b'{"success":true}')

        async def perform(tx: Tx) -> idempotency.Answer:
            return answer

        for key in ("fresh", "stale"):
            await idempotency.once(rt.db, scope, key, "f", perform)
        async with rt.db.write() as tx:
            await tx.execute(
                "UPDATE idempotency_keys SET created_at = $1 WHERE idempotency_key = 'stale'",
                now_us() - idempotency.KEY_TTL_US - 1,
            )
        for _ in range(100):
            async with rt.db.read() as tx:
                left = [
                    r["idempotency_key"]
                    for r in await tx.fetch(
                        "SELECT idempotency_key FROM idempotency_keys ORDER BY idempotency_key"
                    )
                ]
            if left == ["fresh"]:
                break
            await asyncio.sleep(0.02)
        assert left == ["fresh"]
    finally:
        await rt.stop()
    assert rt._tasks and all(task.done() for task in rt._tasks)
