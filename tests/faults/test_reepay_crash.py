"""Crash consistency of Reepay invoice creation: SIGKILL ``settle serve`` while clients create
customer invoices (POST /v1/customer/{handle}/invoice, order lines with VAT), restart it on the
same database, and check that each invoice exists whole or not at all and that retries answer
consistently.

Per backend, ``ROUNDS`` rounds of: start the server (some rounds with two worker processes),
let clients create invoices, each order with its own invoice handle and, for most orders, an
Idempotency-Key; SIGKILL the process group while requests are in flight. A request whose answer
the kill swallowed is "in doubt". After each restart the clients first retry the orders in
doubt with the same body (and the same key, if it had one), and send again a few orders that
were answered, then new ones. The rules:

- a keyed retry gets a 200, the same invoice as any earlier answer to that key (replayed, and
  marked ``Idempotent-Replayed: true`` when the first request had committed);
- an unkeyed retry gets a 200 (the first attempt never committed) or code 11, duplicate handle
  (it did): never a second invoice;
- at the end every order has exactly one invoice, found by its handle and equal to what it was
  answered with; the database holds no half-written invoice (its transaction with the same
  amount, exactly its lines, a recorded answer for each keyed order and no more).

Reuses the machinery of ``test_crash.py`` (servers as child processes, clean-start checks, the
PostgreSQL database of its own). ``SETTLE_REEPAY_CRASH_ROUNDS`` changes the number of rounds.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from settle.db.migrate import upgrade
from tests.conftest import create_project, free_port
from tests.dbcheck import query
from tests.faults.test_crash import (
    assert_clean_start,
    crash_pg_url,  # noqa: F401 (a fixture)
)
from tests.serverproc import ServerProcess

ROUNDS = int(os.environ.get("SETTLE_REEPAY_CRASH_ROUNDS", "8"))
CLIENTS = 6
MIN_ACKS_BEFORE_KILL = 6
UNKEYED_EVERY = 4  # one order in 4 is sent without an Idempotency-Key

pytestmark = pytest.mark.slow


def order_body(rng: random.Random, handle: str) -> dict[str, Any]:
    lines = rng.randint(1, 5)
    order_lines = [
        {
            "ordertext": f"item {i} of {handle} \u2603",
            "amount": rng.randint(1, 50_000),
            "quantity": rng.randint(1, 3),
            "vat": rng.choice([0, 0.25, 0.125]),
        }
        for i in range(lines)
    ]
    return {
        "handle": handle,
        "currency": rng.choice(["DKK", "EUR", "JPY"]),
        "order_lines": order_lines,
        "metadata": {"lines": str(lines)},
        "billing_address": {"address": "1 Kill Street", "city": "Aarhus", "country": "DK"},
    }


@dataclass
class Orders:
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # handle -> body
    customer: dict[str, str] = field(default_factory=dict)  # handle -> customer handle
    keyed: set[str] = field(default_factory=set)  # handles sent with an Idempotency-Key
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # handle -> 200 body
    in_doubt: set[str] = field(default_factory=set)
    doubted: int = 0  # answers a kill swallowed, all rounds
    errors: list[str] = field(default_factory=list)
    retried: int = 0
    duplicates: int = 0  # unkeyed retries answered code 11: the first attempt had committed
    replayed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(client: httpx.Client, out: Orders, handle: str) -> bool:
    """True if answered; False if the server died with the request in flight."""
    headers = {"Idempotency-Key": f"key-{handle}"} if handle in out.keyed else {}
    path = f"/v1/customer/{out.customer[handle]}/invoice"
    try:
        response = client.post(path, json=out.sent[handle], headers=headers)
    except httpx.TransportError:
        with out.lock:
            out.in_doubt.add(handle)
            out.doubted += 1
        return False
    with out.lock:
        was_in_doubt = handle in out.in_doubt
        out.in_doubt.discard(handle)
        body = response.json()
        if response.status_code == 200:
            earlier = out.answered.setdefault(handle, body)
            if earlier != body:
                out.errors.append(f"{handle}: answered {body} after {earlier}")
            if response.headers.get("idempotent-replayed") == "true":
                out.replayed += 1
        elif (
            response.status_code == 400
            and body.get("code") == 11
            and handle not in out.keyed
            and (was_in_doubt or handle in out.answered)
        ):
            out.duplicates += 1  # committed before: the handle is taken, by this very order
        else:
            out.errors.append(f"{handle}: {response.status_code} {response.text[:300]}")
    return True


def load(
    url: str,
    auth: tuple[str, str],
    customer: str,
    prefix: str,
    out: Orders,
    retry: list[str],
    stop: threading.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, auth=auth, timeout=10) as client:
        for handle in retry:  # in doubt after the last kill, or answered and sent again
            if stop.is_set() or not send(client, out, handle):
                return
            with out.lock:
                out.retried += 1
        n = 0
        while not stop.is_set():
            n += 1
            handle = f"{prefix}-{n}"
            with out.lock:
                out.sent[handle] = order_body(rng, handle)
                out.customer[handle] = customer
                if n % UNKEYED_EVERY:
                    out.keyed.add(handle)
            if not send(client, out, handle):
                time.sleep(0.01)


def check_database(url: str, project_id: str, out: Orders) -> int:
    """No half-written invoice, one per order. Returns the number of invoices."""
    orphans = query(
        url,
        "SELECT i.id FROM invoices i LEFT JOIN transactions t ON t.id = i.transaction_id"
        " WHERE i.project_id = $1 AND (t.id IS NULL OR t.invoice_id <> i.id"
        " OR t.amount <> i.amount OR t.currency <> i.currency)",
        project_id,
    )
    assert orphans == [], f"invoices without their transaction: {orphans}"
    rows = query(
        url,
        "SELECT id, handle, metadata, lines FROM invoices WHERE project_id = $1",
        project_id,
    )
    handles: set[str] = set()
    for invoice_id, handle, metadata, stored in rows:
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
        lines = json.loads(stored) if isinstance(stored, str) else stored
        expected = int(metadata["lines"])
        assert len(lines) == expected, (
            f"invoice {invoice_id} ({handle}) has {len(lines)} of its {expected} lines"
        )
        assert handle in out.sent, f"invoice {invoice_id} for an order never sent"
        assert handle not in handles, f"order {handle} stored twice"
        handles.add(handle)
    return len(rows)


def assert_matches_order(body: dict[str, Any], invoice: dict[str, Any]) -> None:
    where = body["handle"]
    assert invoice["handle"] == where and invoice["currency"] == body["currency"], where
    lines = body["order_lines"]
    assert len(invoice["order_lines"]) == len(lines), where
    assert invoice["amount"] == sum(line["amount"] * line["quantity"] for line in lines), where
    for got, want in zip(invoice["order_lines"], lines, strict=True):
        assert (got["ordertext"], got["quantity"]) == (want["ordertext"], want["quantity"])
    assert invoice["billing_address"]["city"] == "Aarhus", where


def reepay_crash_rounds(url: str, tmp_path: Path) -> None:
    upgrade(url)
    keys = create_project(url, "reepay-crash")
    auth = (keys.reepay_private_key, "")
    port, log_path = free_port(), tmp_path / "server.log"
    out = Orders()
    rng = random.Random(20261127)
    customers = [f"crash-customer-{c}" for c in range(CLIENTS)]
    servers: list[ServerProcess] = []
    try:
        for round_no in range(1, ROUNDS + 1):
            workers = 2 if round_no % 3 == 0 else 1
            entry = "cli" if round_no % 2 else "asgi"
            server = ServerProcess(
                url, port, log_path, extra_args=("--workers", str(workers)), entry=entry
            )
            servers.append(server)
            offset = log_path.stat().st_size if log_path.exists() else 0
            server.start()
            if round_no == 1:
                with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
                    for handle in customers:
                        made = client.post("/v1/customer", json={"handle": handle})
                        assert made.status_code == 200, made.text
            else:
                assert_clean_start(log_path.read_text(errors="replace")[offset:])
                check_database(url, keys.project.id, out)
            # Retried: the orders in doubt, and a few answered ones (they must answer alike).
            doubtful = sorted(out.in_doubt)
            again = rng.sample(sorted(out.answered), min(CLIENTS, len(out.answered)))
            retry = doubtful + again
            stop = threading.Event()
            answered_before = len(out.answered)
            threads = [
                threading.Thread(
                    target=load,
                    args=(
                        server.url,
                        auth,
                        customers[c],
                        f"r{round_no}-c{c}",
                        out,
                        retry[c::CLIENTS],
                        stop,
                        rng.random(),
                    ),
                    daemon=True,
                )
                for c in range(CLIENTS)
            ]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while len(out.answered) - answered_before < MIN_ACKS_BEFORE_KILL:
                assert time.monotonic() < deadline, "no load got through"
                assert not out.errors, out.errors[:5]
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.1))
            server.kill()
            stop.set()
            for t in threads:
                t.join(timeout=30)
                assert not t.is_alive()
            assert not out.errors, out.errors[:5]

        # The last restart: retry what is still in doubt, then look at everything.
        server = ServerProcess(url, port, log_path)
        servers.append(server)
        offset = log_path.stat().st_size
        server.start()
        assert_clean_start(log_path.read_text(errors="replace")[offset:])
        with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
            for handle in sorted(out.in_doubt):
                assert send(client, out, handle)
                out.retried += 1
            assert not out.in_doubt and not out.errors, out.errors[:5]
            stored = check_database(url, keys.project.id, out)
            assert stored == len(out.sent), "an order without its invoice"
            for handle, body in out.sent.items():
                found = client.get(f"/v1/invoice/{handle}")
                assert found.status_code == 200, found.text
                invoice = found.json()
                assert_matches_order(body, invoice)
                if handle in out.answered:
                    assert invoice == out.answered[handle], handle
        recorded = query(
            url, "SELECT count(*) FROM idempotency_keys WHERE project_id = $1", keys.project.id
        )[0][0]
        assert recorded == len(out.keyed), "every keyed order has its recorded answer, no more"
    finally:
        for s in servers:
            s.kill()
    print(
        f"\n{url.split(':')[0]}: {ROUNDS} kills, {len(out.sent)} Reepay orders"
        f" ({len(out.keyed)} keyed), {out.doubted} answers lost to a kill, {out.retried}"
        f" retries, {out.replayed} replayed,"
        f" {out.duplicates} unkeyed retries answered code 11, {stored} stored"
    )
    assert out.doubted > 0, "no kill caught a request in flight: the test proved nothing"
    assert out.replayed > 0, "no keyed retry was replayed"


def test_reepay_invoice_creation_survives_kills_sqlite(tmp_path: Path) -> None:
    reepay_crash_rounds(f"sqlite:///{tmp_path / 'reepay-crash.db'}", tmp_path)


@pytest.mark.postgres
def test_reepay_invoice_creation_survives_kills_postgres(
    crash_pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    reepay_crash_rounds(crash_pg_url, tmp_path)
