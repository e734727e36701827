"""The delivery worker against a real HTTP receiver on a loopback port, on each backend:
signatures that verify with the README's snippet, retries with backoff until a 2xx, order per
object, failure after the retry window, redelivery, and refusal of private addresses."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from settle.api.faces import webhook_faces
from settle.billing import service as billing
from settle.clock import now_us
from settle.config import Settings
from settle.customers import service as customers
from settle.customers.models import Customer, CustomerFields
from settle.db.database import Database
from settle.events import deliveries, delivery_history, outbox
from settle.events.transport import WebhookClient, public_address
from settle.events.types import EventType
from settle.events.worker import DeliveryWorker
from settle.invoices.models import Invoice, InvoiceInput
from settle.projects.models import Scope
from tests.domain_fixtures import domain_db_fixture, scope_fixture  # noqa: F401
from tests.events.receiver import Received, Receiver, receiving

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec_test_secret"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhooks_allow_private": True,
        "webhooks_backoff_seconds": 0.05,
        "webhooks_backoff_max_seconds": 0.2,
        "webhooks_poll_seconds": 0.02,
        "webhooks_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The verification snippet of the README, run as a reader would paste it."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (snippet,) = [b for b in blocks if "def verify(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    verify: Callable[[str, str, bytes], bool] = namespace["verify"]
    return verify


async def configure(
    db: Database,
    scope: Scope,
    dialect: str,
    urls: list[str],
    *,
    event_types: list[str] | None = None,
    disabled: bool = False,
) -> None:
    async with db.write() as tx:
        await tx.execute(
            "DELETE FROM webhook_endpoints WHERE project_id = $1 AND sandbox = $2 AND dialect = $3",
            scope.project_id,
            scope.sandbox,
            dialect,
        )
        await tx.execute(
            "INSERT INTO webhook_endpoints (project_id, sandbox, dialect, urls, secret, disabled,"
            " event_types, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            scope.project_id,
            scope.sandbox,
            dialect,
            json.dumps(urls),
            SECRET,
            disabled,
            json.dumps(event_types or []),
            now_us(),
        )


async def new_invoice(db: Database, scope: Scope, customer: Customer | None = None) -> Invoice:
    async with db.write() as tx:
        return await billing.create_invoice(
            tx,
            scope,
            InvoiceInput(amount=499, currency="EUR", customer_id=customer.id if customer else None),
        )


async def new_customer(db: Database, scope: Scope) -> Customer:
    async with db.write() as tx:
        return await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))


async def fire(
    db: Database, scope: Scope, type: EventType, of: Invoice | Customer, times: int = 1
) -> list[str]:
    ids = []
    for _ in range(times):  # one transaction each, as separate requests would
        async with db.write() as tx:
            ids.append(await outbox.record(tx, scope, type, of=of))
    return ids


@asynccontextmanager
async def running(db: Database, config: Settings) -> AsyncIterator[DeliveryWorker]:
    worker = DeliveryWorker(db, config, webhook_faces())
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def of_events(ids: list[str]) -> Callable[[Receiver], bool]:
    """Done when each of ``ids`` got a 2xx."""
    return lambda r: {b["event_id"] for b in r.bodies()} >= set(ids)


async def settled(db: Database, event_ids: list[str], timeout: float = 20.0) -> None:
    """Wait until no delivery of these events is pending (the worker recorded the outcome)."""
    marks = ", ".join(f"${i}" for i in range(1, len(event_ids) + 1))
    for _ in range(int(timeout / 0.02)):
        async with db.read() as tx:
            pending = await tx.fetchval(
                f"SELECT count(*) FROM deliveries WHERE state = 'pending'"
                f" AND event_id IN ({marks})",
                *event_ids,
            )
        if pending == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries of {event_ids} still pending")


async def stop_pending(db: Database, scope: Scope) -> None:
    """Leave no pending delivery of this test for the next test's worker (the module shares
    its database)."""
    async with db.write() as tx:
        await tx.execute(
            "UPDATE deliveries SET state = 'failed' WHERE project_id = $1 AND state = 'pending'",
            scope.project_id,
        )


# --- tests -----------------------------------------------------------------------------------


async def test_processout_deliveries_are_signed_as_the_readme_says(
    domain_db: Database, scope: Scope
) -> None:
    verify = readme_verify()
    with receiving() as receiver:
        await configure(domain_db, scope, "processout", [receiver.url + "/hook"])
        invoice = await new_invoice(domain_db, scope)
        ids = await fire(domain_db, scope, EventType.INVOICE_CHANGED, invoice, times=2)
        async with running(domain_db, settings()):
            await receiver.until(of_events(ids))
    mine = [r for r in receiver.received if r.json()["event_id"] in ids]
    assert [r.json() for r in mine] == [
        {"event_id": i, "event_type": "invoice.changed"} for i in ids
    ]
    for request in mine:
        header = request.headers["Settle-Signature"]
        assert request.path == "/hook"
        assert verify(SECRET, header, request.body)
        # The snippet refuses what it must: another secret, a changed body, an old timestamp.
        assert not verify("whsec_other", header, request.body)
        assert not verify(SECRET, header, request.body + b" ")
        assert not verify(SECRET, header, request.body, tolerance=-1)  # type: ignore[call-arg]
        assert request.headers["Settle-Webhook-Id"].startswith("whk_")
    await stop_pending(domain_db, scope)


async def test_reepay_deliveries_carry_the_vendors_body_and_signature(
    domain_db: Database, scope: Scope
) -> None:
    with receiving() as receiver:
        await configure(domain_db, scope, "reepay", [receiver.url])
        customer = await new_customer(domain_db, scope)
        invoice = await new_invoice(domain_db, scope, customer)
        settled = await fire(domain_db, scope, EventType.INVOICE_SETTLED, invoice)
        # Not a Reepay event: never sent through this dialect.
        await fire(domain_db, scope, EventType.INVOICE_DELETED, invoice)
        changed = await fire(domain_db, scope, EventType.CUSTOMER_CHANGED, customer)
        async with running(domain_db, settings()):
            await receiver.until(of_events(settled + changed))
            await asyncio.sleep(0.2)
    bodies = [b for b in receiver.bodies() if b["event_id"] in settled + changed]
    assert [b["event_type"] for b in bodies] == ["invoice_settled", "customer_changed"]
    first = bodies[0]
    assert first["invoice"] == invoice.id  # made without a handle: its id stands in
    assert first["customer"] == customer.id
    assert first["transaction"] == invoice.transaction_id
    assert "invoice" not in bodies[1]
    for body in bodies:
        assert body["id"].startswith("whk_")
        expected = hmac.new(
            SECRET.encode(), (body["timestamp"] + body["id"]).encode(), hashlib.sha256
        ).hexdigest()
        assert body["signature"] == expected
    assert all(b["event_type"] != "invoice_deleted" for b in receiver.bodies(None))
    await stop_pending(domain_db, scope)


async def test_a_receiver_failing_three_times_gets_the_event_once_after_retries(
    domain_db: Database, scope: Scope
) -> None:
    tries: Counter[str] = Counter()

    def answer(request: Received, before: int) -> int:
        event_id = request.json()["event_id"]
        tries[event_id] += 1
        return 503 if tries[event_id] <= 3 else 200

    invoice = await new_invoice(domain_db, scope)  # (its invoice.created is sent first)
    with receiving(answer) as receiver:
        await configure(domain_db, scope, "processout", [receiver.url])
        ids = await fire(domain_db, scope, EventType.INVOICE_CHANGED, invoice)
        async with running(domain_db, settings()):
            await receiver.until(of_events(ids))
            await settled(domain_db, ids)
            await asyncio.sleep(0.3)  # time for a wrong extra attempt to show
    mine = [r for r in receiver.received if r.json()["event_id"] == ids[0]]
    assert [r.status for r in mine] == [503, 503, 503, 200]
    assert len({r.body for r in mine}) == 1
    async with domain_db.read() as tx:
        (row,) = await tx.fetch(
            "SELECT state, attempts, last_status, delivered_at FROM deliveries WHERE event_id = $1",
            ids[0],
        )
        attempts = await delivery_history.attempts_of_event(tx, scope, ids[0], "processout")
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 4, 200)
    assert [(a.status_code, a.success) for a in attempts] == [
        (503, False),
        (503, False),
        (503, False),
        (200, True),
    ]
    # Backoff: each retry came later than the one before it, by more than the first delay/2.
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 25_000 for gap in gaps), gaps


async def test_a_failing_object_holds_back_its_own_events_only(
    domain_db: Database, scope: Scope
) -> None:
    stuck = await new_invoice(domain_db, scope)
    other = await new_invoice(domain_db, scope)
    release = asyncio.Event()

    def answer(request: Received, before: int) -> int:
        body = request.json()
        return 200 if body["event_id"] not in stuck_ids or release.is_set() else 500

    stuck_ids: list[str] = []
    with receiving(answer) as receiver:
        await configure(domain_db, scope, "processout", [receiver.url])
        stuck_ids += await fire(domain_db, scope, EventType.INVOICE_CHANGED, stuck, times=3)
        other_ids = await fire(domain_db, scope, EventType.INVOICE_CHANGED, other, times=3)
        async with running(domain_db, settings()):
            await receiver.until(of_events(other_ids))
            tried = [b["event_id"] for b in receiver.bodies(None) if b["event_id"] in stuck_ids]
            # Only the first of the stuck invoice's events was tried: it holds the others.
            assert set(tried) == {stuck_ids[0]}
            release.set()
            await receiver.until(of_events(stuck_ids))
    delivered = [b["event_id"] for b in receiver.bodies() if b["event_id"] in stuck_ids]
    assert delivered == stuck_ids  # in order, each once
    got_other = [b["event_id"] for b in receiver.bodies() if b["event_id"] in other_ids]
    assert got_other == other_ids


async def test_a_delivery_is_marked_failed_when_its_window_closes(
    domain_db: Database, scope: Scope, caplog: pytest.LogCaptureFixture
) -> None:
    with receiving(lambda request, before: 500) as receiver:
        # Credentials in the URL (sent as Basic auth) stay out of the log line that says so.
        url = receiver.url.replace("://", "://hooks:s3cr3t@")
        await configure(domain_db, scope, "processout", [url])
        invoice = await new_invoice(domain_db, scope)
        (event_id,) = await fire(domain_db, scope, EventType.INVOICE_CHANGED, invoice)
        async with running(domain_db, settings(webhooks_retry_seconds=0.3)):
            for _ in range(200):
                async with domain_db.read() as tx:
                    state = await tx.fetchval(
                        "SELECT state FROM deliveries WHERE event_id = $1", event_id
                    )
                if state == "failed":
                    break
                await asyncio.sleep(0.02)
        assert state == "failed"
        tries = len(receiver.received)
        assert tries >= 2
        failed = [r.getMessage() for r in caplog.records if "failed for good" in r.getMessage()]
        assert failed and "s3cr3t" not in failed[0] and "://***@127.0.0.1:" in failed[0]
        assert receiver.received[0].headers["Authorization"].startswith("Basic ")
        # Redelivery sends it again, with a fresh window.
        config = settings()
        async with domain_db.write() as tx:
            count = await deliveries.redeliver(
                tx, scope, event_id, webhook_faces(), now_us=now_us(), window_us=10**9
            )
        assert count == 1
        receiver.answer = lambda request, before: 200
        async with running(domain_db, config):
            await receiver.until(lambda r: len(r.bodies()) == 1)
            await settled(domain_db, [event_id])
    async with domain_db.read() as tx:
        state = await tx.fetchval("SELECT state FROM deliveries WHERE event_id = $1", event_id)
    assert state == "delivered"


@pytest.mark.parametrize("answer", [500, None, 200], ids=["failed", "no-answer", "delivered"])
async def test_a_redelivery_asked_for_while_an_attempt_is_in_flight_is_not_undone_by_it(
    domain_db: Database, scope: Scope, answer: int | None
) -> None:
    await configure(domain_db, scope, "processout", ["http://127.0.0.1:9/in-flight"])
    invoice = await new_invoice(domain_db, scope)  # its invoice.created is the event sent
    faces = webhook_faces()
    window = 10**6  # the attempt below ends after it: without redelivery, failed for good
    async with domain_db.write() as tx:
        await deliveries.fan_out(tx, faces, now_us=now_us(), window_us=window)
    async with domain_db.write() as tx:
        (due,) = [
            d
            for d in await deliveries.claim(tx, now_us=now_us(), lease_us=60 * 10**6, limit=100)
            if d.object_id == invoice.id
        ]
    event_id = due.event_id
    # The merchant asks for it again while the worker is sending it.
    async with domain_db.write() as tx:
        await deliveries.redeliver(tx, scope, event_id, faces, now_us=now_us(), window_us=10**9)
    outcome = deliveries.Outcome(
        at=now_us() + 2 * window,
        status_code=answer,
        success=answer == 200,
        elapsed_ms=3,
        error=None if answer else "connection refused",
    )
    backoff = deliveries.Backoff(base_us=10**6, cap_us=10**7, window_us=window)
    async with domain_db.write() as tx:
        (state,) = await deliveries.record_many(tx, [(due, outcome)], backoff, random.Random(1))
    # What the worker is told (it logs a failure for good): the row's state, not the outcome's.
    assert state == ("delivered" if answer == 200 else "pending")
    async with domain_db.read() as tx:
        row = await tx.fetchrow(
            "SELECT state, attempts, next_attempt_at, leased_until, last_status, retry_until"
            " FROM deliveries WHERE id = $1",
            due.id,
        )
        tried = await tx.fetchval(
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", due.id
        )
    assert row is not None
    # The attempt is on record; the redelivery stands: pending, due now, free to be claimed.
    assert (tried, row["attempts"], row["last_status"]) == (1, 1, answer)
    assert row["state"] == "pending" and row["leased_until"] is None
    assert row["next_attempt_at"] <= now_us() < row["retry_until"]
    async with domain_db.write() as tx:
        again = await deliveries.claim(tx, now_us=now_us(), lease_us=10**6, limit=100)
    assert due.id in {d.id for d in again}
    await stop_pending(domain_db, scope)


async def test_endpoint_filters_and_the_invoices_own_url(domain_db: Database, scope: Scope) -> None:
    with receiving() as project_receiver, receiving() as invoice_receiver:
        await configure(
            domain_db, scope, "processout", [project_receiver.url], event_types=["invoice.deleted"]
        )
        async with domain_db.write() as tx:
            invoice = await billing.create_invoice(
                tx,
                scope,
                InvoiceInput(amount=100, currency="EUR", webhook_url=invoice_receiver.url),
            )
        changed = await fire(domain_db, scope, EventType.INVOICE_CHANGED, invoice)
        deleted = await fire(domain_db, scope, EventType.INVOICE_DELETED, invoice)
        async with running(domain_db, settings()):
            await invoice_receiver.until(of_events(changed + deleted))
            await project_receiver.until(of_events(deleted))
            await asyncio.sleep(0.1)
    assert [b["event_id"] for b in project_receiver.bodies()] == deleted
    got = [b["event_id"] for b in invoice_receiver.bodies() if b["event_id"] in changed + deleted]
    assert got == changed + deleted


async def test_private_addresses_are_refused_without_the_setting(
    domain_db: Database, scope: Scope
) -> None:
    with receiving() as receiver:
        # "localhost" resolves to a loopback address: refused on the resolved address.
        url = f"http://localhost:{receiver.port}/"
        await configure(domain_db, scope, "processout", [url])
        invoice = await new_invoice(domain_db, scope)
        await fire(domain_db, scope, EventType.INVOICE_CHANGED, invoice)
        async with domain_db.read() as tx:  # the first event of the invoice is tried first
            first = await tx.fetchval(
                "SELECT id FROM events WHERE order_key = $1 ORDER BY seq LIMIT 1", invoice.id
            )
        async with running(domain_db, settings(webhooks_allow_private=False)):
            for _ in range(200):
                async with domain_db.read() as tx:
                    attempts = await delivery_history.attempts_of_event(
                        tx, scope, first, "processout"
                    )
                if attempts:
                    break
                await asyncio.sleep(0.02)
        assert receiver.received == []
    assert attempts and not attempts[0].success and attempts[0].status_code is None
    assert "not a public address" in (attempts[0].error or "")
    await stop_pending(domain_db, scope)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "2002:7f00:1::", "224.0.0.1",
     "255.255.255.255"],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not public_address(address)


# 64:ff9b::8.8.8.8: what DNS64 answers for an IPv4-only receiver on an IPv6-only host.
@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::8.8.8.8"]
)
def test_public_addresses(address: str) -> None:
    assert public_address(address)


async def test_a_slow_receiver_holds_only_its_share_of_the_slots(
    domain_db: Database, scope: Scope
) -> None:
    def slow(request: Received, before: int) -> int:
        time.sleep(5)  # (the receiver answers one request at a time)
        return 200

    with receiving(slow) as slow_receiver, receiving() as fast_receiver:
        # The slow receiver's deliveries are older: first in line.
        await configure(domain_db, scope, "processout", [slow_receiver.url])
        for _ in range(12):
            await new_invoice(domain_db, scope)
        await DeliveryWorker(domain_db, settings(), webhook_faces()).fan_out()
        await configure(domain_db, scope, "processout", [slow_receiver.url, fast_receiver.url])
        for _ in range(6):
            await new_invoice(domain_db, scope)
        async with running(domain_db, settings(webhooks_concurrency=8)):
            # Eight slots, two at most for one URL: the fast receiver is served at once, not
            # after the slow one's older deliveries have filled every slot (for 5 s).
            await fast_receiver.until(lambda r: len(r.bodies()) == 6, timeout=4)
    assert len(slow_receiver.received) <= 2
    await stop_pending(domain_db, scope)


async def test_a_url_that_does_not_answer_takes_its_other_due_rows_out_of_the_way(
    domain_db: Database, scope: Scope
) -> None:
    # Nothing listens on this port: every attempt is refused, with no answer.
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    with receiving() as receiver:
        await configure(domain_db, scope, "processout", [dead, receiver.url])
        for _ in range(5):
            await new_invoice(domain_db, scope)
        config = settings(webhooks_backoff_seconds=60.0, webhooks_backoff_max_seconds=60.0)
        worker = DeliveryWorker(domain_db, config, webhook_faces())
        await worker.fan_out()
        async with domain_db.write() as tx:
            (one,) = await deliveries.claim(
                tx, now_us=now_us(), lease_us=10**9, limit=1, busy=[receiver.url]
            )
        assert one.url == dead
        assert await worker.deliver(worker.client or WebhookClient(allow_private=True), one) == (
            "pending"
        )

        async def due(url: str) -> int:
            async with domain_db.read() as tx:
                found: int = await tx.fetchval(
                    "SELECT count(*) FROM deliveries WHERE project_id = $1 AND url = $2"
                    " AND state = 'pending' AND next_attempt_at <= $3",
                    scope.project_id,
                    url,
                    now_us(),
                )
            return found

        # The dead URL's four other deliveries wait for that attempt's retry (about a
        # minute); the receiver's five are due as before, and none was marked attempted.
        assert await due(dead) == 0
        assert await due(receiver.url) == 5
        # A new event's delivery to it waits as well (this loop knows it rests); the
        # receiver's is due at once.
        await new_invoice(domain_db, scope)
        assert await worker.fan_out() == 1
        assert await due(dead) == 0
        assert await due(receiver.url) == 6
        async with domain_db.read() as tx:
            attempts = await tx.fetch(
                "SELECT attempts FROM deliveries WHERE project_id = $1 AND url = $2",
                scope.project_id,
                dead,
            )
        assert sorted(r["attempts"] for r in attempts) == [0, 0, 0, 0, 0, 1]
    await stop_pending(domain_db, scope)


async def test_a_dead_urls_backlog_is_parked_until_it_answers_again(
    domain_db: Database, scope: Scope
) -> None:
    """While a URL rests (it gave no answer), the deliveries made for it are parked: the end
    of its rest makes due only what was due when it stopped answering (retried with its
    backoff), not the whole backlog, so a failed retry moves a few rows instead of all of them
    (migration 0018). The URL's first answer makes the parked rows due at once."""
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    await configure(domain_db, scope, "processout", [dead])
    await new_invoice(domain_db, scope)
    config = settings(webhooks_backoff_seconds=60.0, webhooks_backoff_max_seconds=60.0)
    worker = DeliveryWorker(domain_db, config, webhook_faces())
    client = worker.client or WebhookClient(allow_private=True)
    assert await worker.fan_out() == 1
    async with domain_db.write() as tx:
        (first,) = await deliveries.claim(tx, now_us=now_us(), lease_us=10**9, limit=1)
    assert await worker.deliver(client, first) == "pending"  # refused: the URL rests
    for _ in range(5):
        await new_invoice(domain_db, scope)
    assert await worker.fan_out() == 5

    async def rows() -> dict[str, Any]:
        async with domain_db.read() as tx:
            found = await tx.fetch(
                "SELECT id, seq, parked, next_attempt_at, retry_until FROM deliveries"
                " WHERE project_id = $1 AND url = $2 AND state = 'pending'",
                scope.project_id,
                dead,
            )
        return {r["id"]: r for r in found}

    async def due(at: int) -> set[str]:
        async with domain_db.read() as tx:
            found = await tx.fetch(
                "SELECT id FROM deliveries WHERE project_id = $1 AND url = $2"
                " AND state = 'pending' AND next_attempt_at <= $3",
                scope.project_id,
                dead,
                at,
            )
        return {r["id"] for r in found}

    backlog = {i: r for i, r in (await rows()).items() if i != first.id}
    assert len(backlog) == 5
    assert all(r["parked"] and r["next_attempt_at"] == r["retry_until"] for r in backlog.values())
    # Past the rest (a minute's backoff), long before the retry window closes: the first
    # delivery alone is due again, the backlog is not.
    assert await due(now_us() + 10 * 60 * 10**6) == {first.id}
    # The first's window closes with no answer: it fails for good, and the oldest parked
    # delivery takes over as the URL's probe (due then; the others stay parked).
    closed_at = first.retry_until
    async with domain_db.write() as tx:
        silent = deliveries.Outcome(
            at=closed_at, status_code=None, success=False, elapsed_ms=1, error="refused"
        )
        assert await deliveries.record(tx, first, silent, worker.backoff, worker.rng) == "failed"
    oldest = min(backlog, key=lambda i: backlog[i]["seq"])
    after = await rows()
    assert set(after) == set(backlog)
    assert {i for i, r in after.items() if not r["parked"]} == {oldest}
    assert after[oldest]["next_attempt_at"] == closed_at
    # The probe is answered (even an error status says the URL is up): every parked
    # delivery is due now.
    async with domain_db.write() as tx:
        (probe,) = await deliveries.claim(tx, now_us=closed_at, lease_us=10**9, limit=1)
        assert probe.id == oldest
        answered = deliveries.Outcome(
            at=closed_at + 1, status_code=500, success=False, elapsed_ms=3
        )
        await deliveries.record(tx, probe, answered, worker.backoff, worker.rng)
    after = await rows()
    assert set(after) == set(backlog)
    assert not any(r["parked"] for r in after.values())
    # All due by then (the probe waits for its own next retry).
    assert await due(closed_at + 1) == set(backlog) - {oldest}
    await stop_pending(domain_db, scope)


async def test_a_parked_backlog_is_made_due_a_batch_per_answer_oldest_first(
    domain_db: Database, scope: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each answer of a URL that was resting makes the next ``UNPARK_BATCH`` of its parked
    deliveries due, oldest first, never a whole outage's backlog in one statement (on SQLite
    that statement holds the event loop and the write lock)."""
    monkeypatch.setattr(deliveries, "UNPARK_BATCH", 2)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    await configure(domain_db, scope, "processout", [dead])
    await new_invoice(domain_db, scope)
    config = settings(webhooks_backoff_seconds=60.0, webhooks_backoff_max_seconds=60.0)
    worker = DeliveryWorker(domain_db, config, webhook_faces())
    client = worker.client or WebhookClient(allow_private=True)
    assert await worker.fan_out() == 1
    async with domain_db.write() as tx:
        (first,) = await deliveries.claim(tx, now_us=now_us(), lease_us=10**9, limit=1)
    assert await worker.deliver(client, first) == "pending"  # refused: the URL rests
    for _ in range(5):
        await new_invoice(domain_db, scope)
    assert await worker.fan_out() == 5

    async def parked() -> list[int]:
        async with domain_db.read() as tx:
            found = await tx.fetch(
                "SELECT seq FROM deliveries WHERE project_id = $1 AND url = $2"
                " AND state = 'pending' AND parked ORDER BY seq",
                scope.project_id,
                dead,
            )
        return [r["seq"] for r in found]

    backlog = await parked()
    assert len(backlog) == 5
    async with domain_db.write() as tx:
        (retry,) = await deliveries.claim(tx, now_us=first.retry_until, lease_us=10**9, limit=1)
    assert retry.id == first.id
    for left in (backlog[2:], backlog[4:], []):
        # The URL answers (an error status: it is up all the same).
        answered = deliveries.Outcome(at=now_us(), status_code=500, success=False, elapsed_ms=2)
        async with domain_db.write() as tx:
            await deliveries.record(tx, retry, answered, worker.backoff, worker.rng)
        assert await parked() == left
    await stop_pending(domain_db, scope)


async def test_new_deliveries_are_claimed_as_they_are_made_in_order_per_object(
    domain_db: Database, scope: Scope
) -> None:
    url = "http://127.0.0.1:9/taken"  # nothing is sent: the rows' claims are what is tested
    await configure(domain_db, scope, "processout", [url])
    faces = webhook_faces()
    a, b, c = [await new_invoice(domain_db, scope) for _ in range(3)]
    window = 10**12

    async def delivered() -> None:
        async with domain_db.write() as tx:
            await tx.execute(
                "UPDATE deliveries SET state = 'delivered' WHERE project_id = $1",
                scope.project_id,
            )

    async with domain_db.write() as tx:  # the invoices' own invoice.created
        await deliveries.fan_out(tx, faces, now_us=now_us(), window_us=window)
    await delivered()
    # c's first event is fanned out and left pending (as if its receiver were failing).
    (c1,) = await fire(domain_db, scope, EventType.INVOICE_CHANGED, c)
    async with domain_db.write() as tx:
        await deliveries.fan_out(tx, faces, now_us=now_us(), window_us=window)
    a1, a2 = await fire(domain_db, scope, EventType.INVOICE_CHANGED, a, times=2)
    (b1,) = await fire(domain_db, scope, EventType.INVOICE_CHANGED, b)
    (c2,) = await fire(domain_db, scope, EventType.INVOICE_CHANGED, c)

    def slots(limit: int, **kw: Any) -> deliveries.Slots:
        values: dict[str, Any] = {
            "limit": limit, "lease_us": 60 * 10**6, "per_url": 8, "in_flight": {},
            "busy": frozenset(), "healthy": frozenset(),
        }  # fmt: skip
        return deliveries.Slots(**{**values, **kw})

    now = now_us()
    async with domain_db.write() as tx:
        events, made, taken = await deliveries.fan_out_and_claim(
            tx, faces, now_us=now, window_us=window, slots=slots(10)
        )
    assert (events, made) == (4, 4)
    # a2 waits for a1 (the same object, one batch), c2 for c1 (pending in the table).
    assert [d.event_id for d in taken] == [a1, b1]
    async with domain_db.write() as tx:
        due = await deliveries.claim(tx, now_us=now_us(), lease_us=10**6, limit=10)
    assert [d.event_id for d in due] == [c1]  # the taken rows are leased, a2 and c2 held back
    # A lease that runs out (the worker died mid-send) leaves its rows due again.
    async with domain_db.write() as tx:
        later = await deliveries.claim(tx, now_us=now + 61 * 10**6, lease_us=10**6, limit=10)
    assert [d.event_id for d in later] == [c1, a1, b1]  # not a2 nor c2: still held back
    assert {a2, c2}.isdisjoint(d.event_id for d in due + later)

    # Slots bound what is taken: the limit, the URL's share in flight, busy URLs.
    await delivered()
    for limited, expected in [
        (slots(1), 1),
        (slots(5, in_flight={url: 8}), 0),
        (slots(5, in_flight={url: 8}, healthy=frozenset({url})), 2),
        (slots(5, busy=frozenset({url})), 0),
    ]:
        await fire(domain_db, scope, EventType.INVOICE_CHANGED, a)
        await fire(domain_db, scope, EventType.INVOICE_CHANGED, b)
        async with domain_db.write() as tx:
            _, _, taken = await deliveries.fan_out_and_claim(
                tx, faces, now_us=now_us(), window_us=window, slots=limited
            )
        await delivered()
        assert len(taken) == expected, limited
    await stop_pending(domain_db, scope)


async def test_a_fan_out_that_fails_midway_loses_nothing(
    domain_db: Database, scope: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9/midway"  # nothing is sent
    await configure(domain_db, scope, "processout", [url])
    invoice = await new_invoice(domain_db, scope)
    await fire(domain_db, scope, EventType.INVOICE_CHANGED, invoice, times=2)
    faces = webhook_faces()
    slots = deliveries.Slots(
        limit=10, lease_us=60 * 10**6, per_url=8, in_flight={}, busy=frozenset(),
        healthy=frozenset(),
    )  # fmt: skip

    async def state() -> tuple[int, int, int]:
        async with domain_db.read() as tx:
            row = await tx.fetchrow(
                "SELECT (SELECT count(*) FROM events WHERE object_id = $1) AS recorded,"
                " (SELECT count(*) FROM unfanned_events u JOIN events e ON e.id = u.event_id"
                "  WHERE e.object_id = $1) AS waiting,"
                " (SELECT count(*) FROM deliveries d JOIN events e ON e.seq = d.event_seq"
                "  WHERE e.object_id = $1) AS made",
                invoice.id,
            )
        assert row is not None
        return (row["recorded"], row["waiting"], row["made"])

    assert await state() == (3, 3, 0)  # invoice.created and the two changes, waiting

    # The batch fails after its delivery rows were written and leased, before its commit (here
    # as it reads what sending them needs): its transaction takes all of it back.
    async def failing(tx: Any, ids: Any) -> list[deliveries.Due]:
        raise ConnectionResetError("the database went away mid-batch")

    monkeypatch.setattr(deliveries, "_due", failing)
    with pytest.raises(ConnectionResetError):
        async with domain_db.write() as tx:
            await deliveries.fan_out_and_claim(
                tx, faces, now_us=now_us(), window_us=10**12, slots=slots
            )
    monkeypatch.undo()
    assert await state() == (3, 3, 0)  # still waiting, none half made or leased

    async with domain_db.write() as tx:
        _, _, taken = await deliveries.fan_out_and_claim(
            tx, faces, now_us=now_us(), window_us=10**12, slots=slots
        )
    assert await state() == (3, 0, 3)
    # The first of the invoice's events is taken; the two later ones wait for it.
    assert [d.event_type for d in taken if d.url == url] == ["invoice.created"]
    await stop_pending(domain_db, scope)
