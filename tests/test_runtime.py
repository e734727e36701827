"""The runtime's background upkeep: expired idempotency keys and unanswered 3-D Secure
challenges go away by themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from settle.api import idempotency
from settle.billing import payments
from settle.billing import service as billing
from settle.clock import now_us
from settle.config import Settings
from settle.db.database import Tx
from settle.db.migrate import upgrade
from settle.invoices.models import InvoiceInput
from settle.payments import service as transactions
from settle.projects import service as projects
from settle.projects.models import Scope
from settle.runtime import Runtime
from tests.domain_fixtures import add_card


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


async def test_a_3ds_challenge_nobody_answers_is_declined_in_the_background(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'challenge.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url, payment_recovery_seconds=0.1, three_d_s_expiry_seconds=0.3
    )
    rt = await Runtime.start(settings)
    try:
        async with rt.db.write() as tx:
            keys = await projects.create_project(tx, "p")
            scope = Scope(project_id=keys.project.id, sandbox=True)
            invoice = await billing.create_invoice(
                tx, scope, InvoiceInput(amount=1000, currency="EUR")
            )
        card = await add_card(rt.db, scope, rt.gateway, "4000000000000101")

        async def begin(tx: Tx, optimistic: bool) -> payments.Attempt:
            return await payments.begin_authorize(
                tx, scope, invoice.id, card.id, gateway_name=rt.gateway.name, optimistic=optimistic
            )

        done = await payments.run(rt.db, rt.gateway, await payments.transact(rt.db, begin))
        assert done.customer_action is not None and done.transaction.status == "pending"
        for _ in range(250):
            async with rt.db.read() as tx:
                t = await transactions.get_transaction(tx, scope, invoice.transaction_id)
            if t.status != "pending":
                break
            await asyncio.sleep(0.02)
        assert t.status == "failed" and t.error_code == "card.failed-three-d-s"
    finally:
        await rt.stop()
