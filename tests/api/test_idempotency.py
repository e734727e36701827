"""Idempotency-Key over HTTP: a retried write is answered from the record, never done twice."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from settle.api import idempotency
from settle.clock import now_us
from settle.db.database import Database, connect
from settle.projects.models import IssuedKeys, Scope
from tests.conftest import RunningServer
from tests.dbcheck import execute, query
from tests.domain_fixtures import domain_db_fixture, scope_fixture  # noqa: F401

BODY = {"name": "retry me", "amount": "10.00", "currency": "EUR"}


def count(server: RunningServer, project: IssuedKeys, table: str = "invoices") -> int:
    rows = query(
        server.database_url,
        f"SELECT count(*) FROM {table} WHERE project_id = $1",
        project.project.id,
    )
    return int(rows[0][0])


def test_a_retry_gets_the_first_answer_and_creates_nothing_more(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    first = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    again = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "order-1"})
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert count(server, project) == 1
    assert count(server, project, "idempotency_keys") == 1
    # Without a key, or with another one, the same body is a new invoice.
    assert (
        client.post("/invoices", json=BODY).json()["invoice"]["id"] != first.json()["invoice"]["id"]
    )
    other = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "order-2"})
    assert other.json()["invoice"]["id"] != first.json()["invoice"]["id"]
    assert count(server, project) == 3


def test_a_key_reused_for_another_request_is_refused(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    assert client.post("/invoices", json=BODY, headers={"Idempotency-Key": "k"}).status_code == 200
    for method, path, body in (
        ("POST", "/invoices", {**BODY, "amount": "11.00"}),
        ("POST", "/customers", {"email": "a@example.com"}),
        ("POST", "/invoices?expand=customer", BODY),
    ):
        r = client.request(method, path, json=body, headers={"Idempotency-Key": "k"})
        assert r.status_code == 400, r.text
        assert r.json()["error_type"] == "request.idempotency-key.reused"
        assert "Idempotency-Key" in r.json()["message"]
    assert count(server, project) == 1
    assert count(server, project, "customers") == 0


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9", "tab\tkey"])
def test_unusable_keys_are_refused_before_anything_is_written(
    client: httpx.Client, server: RunningServer, project: IssuedKeys, key: str
) -> None:
    r = client.post("/invoices", json=BODY, headers={b"Idempotency-Key": key.encode()})
    assert r.status_code == 400
    assert r.json()["error_type"] == "request.idempotency-key.invalid"
    assert count(server, project) == 0


def test_the_longest_key_is_accepted(client: httpx.Client) -> None:
    key = "k" * idempotency.MAX_KEY_LENGTH
    first = client.post("/invoices", json=BODY, headers={"Idempotency-Key": key})
    again = client.post("/invoices", json=BODY, headers={"Idempotency-Key": key})
    assert first.json()["invoice"]["id"] == again.json()["invoice"]["id"]


def test_failures_are_not_recorded(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    bad = {**BODY, "customer_id": "cust_doesnotexist00000000000000000"}
    for _ in range(2):
        r = client.post("/invoices", json=bad, headers={"Idempotency-Key": "later"})
        assert r.status_code == 404
    assert count(server, project, "idempotency_keys") == 0
    # Once the cause is gone, the same key goes through.
    ok = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "later"})
    assert ok.status_code == 200


def test_keys_belong_to_one_project_and_mode(client: httpx.Client, server: RunningServer) -> None:
    other = server.create_project("other")
    first = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "shared"})
    with httpx.Client(
        base_url=server.url, auth=(other.processout_username, other.processout_password)
    ) as c:
        theirs = c.post("/invoices", json=BODY, headers={"Idempotency-Key": "shared"})
    assert theirs.status_code == 200
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["invoice"]["id"] != first.json()["invoice"]["id"]


def test_every_write_endpoint_replays(client: httpx.Client) -> None:
    invoice = client.post("/invoices", json=BODY).json()["invoice"]
    customer = client.post("/customers", json={"email": "c@example.com"}).json()["customer"]
    iid, cid = invoice["id"], customer["id"]
    calls = [
        ("PUT", f"/invoices/{iid}", {"amount": "12.00"}),
        ("POST", f"/invoices/{iid}/customers", {"customer_id": cid}),
        ("PUT", f"/customers/{cid}", {"first_name": "Ada"}),
        ("POST", "/customers", {"email": "d@example.com"}),
        ("DELETE", f"/invoices/{iid}", None),
        ("DELETE", f"/customers/{cid}", None),
    ]
    for n, (method, path, body) in enumerate(calls):
        headers = {"Idempotency-Key": f"call-{n}"}
        first = client.request(method, path, json=body, headers=headers)
        assert first.status_code == 200, (method, path, first.text)
        again = client.request(method, path, json=body, headers=headers)
        assert again.status_code == 200, (method, path, again.text)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    # The deletes happened once: without the key they now find nothing.
    assert client.delete(f"/invoices/{iid}").status_code == 404


def test_concurrent_requests_with_one_key_make_one_invoice(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    def send(_: int) -> httpx.Response:
        with httpx.Client(
            base_url=server.url,
            auth=(project.processout_username, project.processout_password),
            timeout=30,
        ) as c:
            return c.post("/invoices", json=BODY, headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(send, range(24)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["invoice"]["id"] for a in answers}) == 1
    assert sum("idempotent-replayed" not in a.headers for a in answers) == 1
    assert count(server, project) == 1
    assert count(server, project, "transactions") == 1


def test_expired_keys_are_free_again_and_purged(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    first = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "old"})
    stale = now_us() - idempotency.KEY_TTL_US - 1
    execute(
        server.database_url,
        "UPDATE idempotency_keys SET created_at = $1 WHERE project_id = $2",
        stale,
        project.project.id,
    )
    again = client.post("/invoices", json=BODY, headers={"Idempotency-Key": "old"})
    assert again.status_code == 200
    assert "idempotent-replayed" not in again.headers
    assert again.json()["invoice"]["id"] != first.json()["invoice"]["id"]
    assert count(server, project, "idempotency_keys") == 1

    execute(
        server.database_url,
        "UPDATE idempotency_keys SET created_at = $1 WHERE project_id = $2",
        stale,
        project.project.id,
    )

    async def purge() -> None:
        db = await connect(server.database_url)
        try:
            async with db.write() as tx:
                assert await idempotency.purge(tx) == 1
        finally:
            await db.close()

    asyncio.run(purge())
    assert count(server, project, "idempotency_keys") == 0


def test_the_official_client_sends_its_key(sdk, server: RunningServer, project: IssuedKeys) -> None:  # type: ignore[no-untyped-def]
    fields = {"name": "sdk retry", "amount": "4.99", "currency": "AUD"}
    first = sdk.new_invoice().create({**fields, "idempotency_key": "sdk-1"})
    again = sdk.new_invoice().create({**fields, "idempotency_key": "sdk-1"})
    assert first.id == again.id
    assert count(server, project) == 1


def test_reads_ignore_the_header(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "has space"}  # would be refused on a write
    assert client.get("/invoices", headers=headers).status_code == 200


def test_concurrent_updates_with_one_key_change_the_invoice_once(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    invoice = client.post("/invoices", json=BODY).json()["invoice"]

    def send(_: int) -> httpx.Response:
        with httpx.Client(
            base_url=server.url,
            auth=(project.processout_username, project.processout_password),
            timeout=30,
        ) as c:
            return c.put(
                f"/invoices/{invoice['id']}",
                json={"amount": "12.00"},
                headers={"Idempotency-Key": "one-update"},
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(16)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    # Created at version 1: exactly one update was applied.
    (version,) = query(
        server.database_url, "SELECT version FROM invoices WHERE id = $1", invoice["id"]
    )[0]
    assert version == 2


def test_the_same_request_in_other_bytes_is_the_same_request(
    client: httpx.Client, server: RunningServer, project: IssuedKeys
) -> None:
    """The fingerprint covers the parsed request: other whitespace, key order, query order or
    body encoding under one key is a retry, not a reuse."""
    body = {"name": "same", "amount": "10.00", "currency": "EUR", "metadata": {"a": "1", "b": "2"}}
    headers = {"Idempotency-Key": "spelled-differently", "Content-Type": "application/json"}
    first = client.post("/invoices?expand=customer&x=1", json=body, headers=headers)
    assert first.status_code == 200
    respelled = (
        b'{ "metadata" : {"b":"2", "a":"1"},\n  "currency":"EUR", "amount":"10.00",'
        b' "name":"same", "customer_id": null }'
    )
    again = client.post("/invoices?x=1&expand=customer", content=respelled, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    form = client.post(
        "/invoices?expand=customer&x=1",
        content=b"amount=10.00&currency=EUR&name=same&metadata[b]=2&metadata[a]=1",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.headers.get("idempotent-replayed") == "true", form.text
    assert count(server, project) == 1
    changed = client.post(
        "/invoices?expand=customer&x=1", json={**body, "name": "other"}, headers=headers
    )
    assert changed.status_code == 400
    assert changed.json()["error_type"] == "request.idempotency-key.reused"


async def test_purge_forgets_expired_keys_oldest_first_in_bounded_batches(
    domain_db: Database, scope: Scope
) -> None:
    """The upkeep's purge deletes at most ``limit`` keys per transaction, the oldest first (on
    SQLite one DELETE of ten minutes' keys would hold the event loop), and only expired ones."""
    now = now_us()
    expired = now - idempotency.KEY_TTL_US - 1
    async with domain_db.write() as tx:
        for i, created in enumerate(
            [expired - 5, expired - 4, expired - 3, expired - 2, expired, now]
        ):
            await tx.execute(
                "INSERT INTO idempotency_keys (project_id, sandbox, idempotency_key, fingerprint,"
                " status, body, created_at) VALUES ($1, $2, $3, 'fp', 200, '{}', $4)",
                scope.project_id,
                scope.sandbox,
                f"key-{i}",
                created,
            )

    async def left() -> list[str]:
        async with domain_db.read() as tx:
            rows = await tx.fetch(
                "SELECT idempotency_key FROM idempotency_keys WHERE project_id = $1"
                " ORDER BY created_at",
                scope.project_id,
            )
        return [r["idempotency_key"] for r in rows]

    for purged, remaining in ((2, 4), (2, 2), (1, 1), (0, 1)):
        async with domain_db.write() as tx:
            assert await idempotency.purge(tx, now, limit=2) == purged
        assert await left() == [f"key-{i}" for i in range(6 - remaining, 6)]
