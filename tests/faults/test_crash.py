"""Crash consistency: SIGKILL ``settle serve`` under concurrent create-invoice load, restart it on
the same database, and check that nothing acknowledged was lost and nothing is half-written.

Per backend, ``KILLS`` rounds of: start the server as a child process, drive several
keep-alive clients creating invoices with lines, shipping, risk,
device, tax and metadata, SIGKILL the whole process group while requests are in flight, then
restart and check:

- every invoice whose 200 the client received is found, equal field by field to that 200 body;
- the database holds no half-written invoice: every invoice has its transaction (same amount)
  and exactly the lines its request carried (the count travels in its metadata), no line or
  transaction is orphaned, no request was stored twice;
- every invoice that exists (acknowledged or not) matches the request that created it;
- each start is clean: the server answers, and its log has no traceback or error.

Rounds alternate ``settle serve`` (which migrates first) and ``uvicorn --factory
settle.asgi:app``, some with two worker processes (the whole process group is killed).
PostgreSQL runs in a database of its own (``settle_crash_<pid>``, created and dropped here) so the
session fixtures are not disturbed. ``SETTLE_CRASH_KILLS`` changes the number of rounds.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from settle.db.migrate import upgrade
from tests.conftest import PG_URL, create_project, free_port
from tests.dbcheck import pg_dsn, query
from tests.serverproc import ServerProcess

KILLS = int(os.environ.get("SETTLE_CRASH_KILLS", "20"))  # at least 20 in CI
CLIENTS = 8
MIN_ACKS_BEFORE_KILL = 8
CRASH_DB = f"settle_crash_{os.getpid()}"  # per run: concurrent runs do not collide

pytestmark = pytest.mark.slow


@dataclass
class Outcome:
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # order_id -> request body
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)  # invoice id -> 200 body
    acked_order: dict[str, str] = field(default_factory=dict)  # invoice id -> order_id
    errors: list[str] = field(default_factory=list)  # non-200 answers (never expected)
    lock: threading.Lock = field(default_factory=threading.Lock)


def invoice_body(rng: random.Random, order_id: str) -> dict[str, Any]:
    lines = rng.randint(1, 5)
    details = []
    total = 0
    for i in range(lines):
        cents = rng.randint(1, 50_000)
        quantity = rng.randint(1, 3)
        total += cents * quantity
        details.append(
            {
                "name": f"item {i} of {order_id}",
                "type": "digital" if i % 2 else "physical",
                "amount": f"{Decimal(cents) / 100:.2f}",
                "quantity": quantity,
                "reference": f"sku-{rng.randint(1, 10**9)}",
                "brand": "Settle",
                "category": "technology",
                "condition": "new",
                "metadata": {"position": str(i), "colour": rng.choice(["red", "blue"])},
            }
        )
    return {
        "name": f"Crash order {order_id}",
        "order_id": order_id,
        "amount": f"{Decimal(total) / 100:.2f}",
        "currency": "EUR",
        "statement_descriptor": "crash test",
        "return_url": "https://shop.example/return",
        "metadata": {"lines": str(lines), "order": order_id, "note": "é \u2603"},
        "details": details,
        "shipping": {
            "amount": "4.90",
            "method": "home",
            "provider": "PostNL",
            "delay": "standard",
            "address1": "1 Kill Street",
            "city": "Amsterdam",
            "country_code": "NL",
            "zip": "1011AB",
            "phone": {"number": "612345678", "dialing_code": "+31"},
            "email": "buyer@example.com",
        },
        "risk": {"score": "12", "is_legit": True},
        "device": {"channel": "web", "ip_address": "192.0.2.10", "id": f"dev-{order_id}"},
        # Included in the amount, so at most the amount (an invoice of 0.01 has a 0.01 tax).
        "tax": {"amount": f"{Decimal(min(total, 100)) / 100:.2f}", "rate": "21"},
    }


def load(
    url: str, auth: tuple[str, str], prefix: str, outcome: Outcome, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    n = 0
    with httpx.Client(base_url=url, auth=auth, timeout=10) as client:
        while not stop.is_set():
            n += 1
            order_id = f"{prefix}-{n}"
            body = invoice_body(rng, order_id)
            with outcome.lock:
                outcome.sent[order_id] = body
            try:
                response = client.post("/invoices", json=body)
            except httpx.TransportError:
                # The server died with this request in flight: it may or may not exist.
                time.sleep(0.01)
                continue
            if response.status_code == 200:
                invoice = response.json()["invoice"]
                with outcome.lock:
                    outcome.acked[invoice["id"]] = invoice
                    outcome.acked_order[invoice["id"]] = order_id
            else:
                with outcome.lock:
                    outcome.errors.append(f"{response.status_code} {response.text[:300]}")


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def assert_matches_request(body: dict[str, Any], invoice: dict[str, Any]) -> None:
    """The stored invoice says what its request said (fields are normalised where the API
    normalises them: amounts as exact decimals, "+31" dialing codes as "0031")."""
    where = body["order_id"]
    assert invoice["order_id"] == body["order_id"], where
    assert invoice["name"] == body["name"], where
    assert _money(invoice["amount"]) == _money(body["amount"]), where
    assert invoice["currency"] == body["currency"], where
    assert invoice["metadata"] == body["metadata"], where
    assert invoice["statement_descriptor"] == body["statement_descriptor"], where
    assert invoice["return_url"] == body["return_url"], where
    assert len(invoice["details"]) == len(body["details"]), where
    for got, want in zip(invoice["details"], body["details"], strict=True):
        for key in ("name", "type", "quantity", "reference", "brand", "category", "condition"):
            assert got[key] == want[key], (where, key)
        assert _money(got["amount"]) == _money(want["amount"]), where
        assert got["metadata"] == want["metadata"], where
    shipping = invoice["shipping"]
    for key in ("method", "provider", "delay", "address1", "city", "country_code", "zip"):
        assert shipping[key] == body["shipping"][key], (where, key)
    assert _money(shipping["amount"]) == _money(body["shipping"]["amount"]), where
    assert shipping["phone"] == {"number": "612345678", "dialing_code": "0031"}, where
    for part in ("risk", "device"):
        for key, value in body[part].items():
            assert invoice[part][key] == value, (where, part, key)
    assert _money(invoice["tax"]["amount"]) == _money(body["tax"]["amount"]), where
    assert invoice["tax"]["rate"] == body["tax"]["rate"], where


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def check_database(url: str, project_id: str, outcome: Outcome) -> int:
    """Look behind the API: no half-written invoice. Returns the number of invoices."""
    orphan_invoices = query(
        url,
        "SELECT i.id FROM invoices i LEFT JOIN transactions t ON t.id = i.transaction_id"
        " WHERE i.project_id = $1 AND (t.id IS NULL OR t.invoice_id <> i.id"
        " OR t.amount <> i.amount OR t.currency <> i.currency)",
        project_id,
    )
    assert orphan_invoices == [], f"invoices without their transaction: {orphan_invoices}"
    orphan_transactions = query(
        url,
        "SELECT t.id FROM transactions t LEFT JOIN invoices i ON i.id = t.invoice_id"
        " WHERE t.project_id = $1 AND i.id IS NULL",
        project_id,
    )
    assert orphan_transactions == [], f"transactions without invoice: {orphan_transactions}"
    rows = query(
        url,
        "SELECT id, order_id, metadata, amount, lines FROM invoices WHERE project_id = $1",
        project_id,
    )
    seen_orders: set[str] = set()
    for invoice_id, order_id, metadata, amount, stored in rows:
        expected = int(_json(metadata)["lines"])
        lines = _json(stored)
        assert len(lines) == expected, (
            f"invoice {invoice_id} ({order_id}) has {len(lines)} of its {expected} lines"
        )
        total = sum(line["amount"] * line.get("quantity", 1) for line in lines)
        assert total == amount, f"invoice {invoice_id}: lines sum to {total}, not {amount}"
        assert order_id in outcome.sent, f"invoice {invoice_id} for an order never sent"
        assert order_id not in seen_orders, f"order {order_id} stored twice"
        seen_orders.add(order_id)
    return len(rows)


def _assert_acked(invoice_id: str, found: dict[str, Any], outcome: Outcome) -> None:
    acked = outcome.acked[invoice_id]
    for key in acked.keys() | found.keys():
        assert found.get(key) == acked.get(key), (invoice_id, key)
    assert_matches_request(outcome.sent[outcome.acked_order[invoice_id]], found)


def verify_round(
    url: str, auth: tuple[str, str], outcome: Outcome, ids: list[str], rng: random.Random
) -> None:
    """Every invoice acknowledged in the last round is there, equal field by field to its 200
    body: all of them through the listing (newest first), a sample through GET by id."""
    wanted = set(ids)
    with httpx.Client(base_url=url, auth=auth, timeout=30) as client:
        cursor = ""
        while wanted:
            page = client.get("/invoices", params={"limit": 100, "start_after": cursor}).json()
            for invoice in page["invoices"]:
                if invoice["id"] in wanted:
                    _assert_acked(invoice["id"], invoice, outcome)
                    wanted.discard(invoice["id"])
            if not page["has_more"]:
                break
            cursor = page["invoices"][-1]["id"]
        assert not wanted, f"acknowledged invoices lost: {sorted(wanted)}"
        for invoice_id in rng.sample(ids, min(10, len(ids))):
            response = client.get(f"/invoices/{invoice_id}")
            assert response.status_code == 200, f"acknowledged {invoice_id}: {response.text}"
            _assert_acked(invoice_id, response.json()["invoice"], outcome)


def verify_listing(url: str, auth: tuple[str, str], outcome: Outcome) -> int:
    """Walk the whole listing: every invoice there matches the request that created it, and
    every acknowledged one is there with its 200 body."""
    listed: dict[str, dict[str, Any]] = {}
    cursor = ""
    with httpx.Client(base_url=url, auth=auth, timeout=30) as client:
        while True:
            page = client.get("/invoices", params={"limit": 100, "start_after": cursor}).json()
            for invoice in page["invoices"]:
                listed[invoice["id"]] = invoice
            if not page["has_more"]:
                break
            cursor = page["invoices"][-1]["id"]
    for invoice in listed.values():
        assert_matches_request(outcome.sent[invoice["order_id"]], invoice)
    for invoice_id, acked in outcome.acked.items():
        assert listed.get(invoice_id) == acked, invoice_id
    return len(listed)


def assert_clean_start(log: str) -> None:
    for marker in ("Traceback", "ERROR", "Error", "CRITICAL"):
        assert marker not in log, f"unclean start ({marker!r}):\n{log[-3000:]}"
    assert "Application startup complete" in log, log[-3000:]


def crash_rounds(url: str, tmp_path: Path) -> None:
    servers: list[ServerProcess] = []
    try:
        _crash_rounds(url, tmp_path, servers)
    finally:  # a failed check must not leave a server running
        for server in servers:
            server.kill()


def _crash_rounds(url: str, tmp_path: Path, servers: list[ServerProcess]) -> None:
    upgrade(url)
    keys = create_project(url, "crash")
    auth = (keys.processout_username, keys.processout_password)
    port = free_port()
    log_path = tmp_path / "server.log"
    outcome = Outcome()
    rng = random.Random(20240601)
    started_at = time.monotonic()
    timings = {"start": 0.0, "verify": 0.0, "load": 0.0}
    for round_no in range(1, KILLS + 1):
        # Both documented ways to run it, some rounds with two worker processes.
        workers = 2 if round_no % 4 == 0 or round_no % 6 == 3 else 1
        entry = "cli" if round_no % 2 else "asgi"
        server = ServerProcess(
            url, port, log_path, extra_args=("--workers", str(workers)), entry=entry
        )
        servers.append(server)
        offset = log_path.stat().st_size if log_path.exists() else 0
        timings["start"] += server.start()
        # The restart after the previous kill: clean, and nothing acknowledged is lost.
        t0 = time.monotonic()
        if round_no > 1:
            assert_clean_start(log_path.read_text(errors="replace")[offset:])
            round_ids = [
                i for i, o in outcome.acked_order.items() if o.startswith(f"r{round_no - 1}-")
            ]
            verify_round(server.url, auth, outcome, round_ids, rng)
            check_database(url, keys.project.id, outcome)
        timings["verify"] += time.monotonic() - t0
        t0 = time.monotonic()
        stop = threading.Event()
        acked_before = len(outcome.acked)
        threads = [
            threading.Thread(
                target=load,
                args=(server.url, auth, f"r{round_no}-c{c}", outcome, stop, rng.random()),
                daemon=True,
            )
            for c in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(outcome.acked) - acked_before < MIN_ACKS_BEFORE_KILL:
            assert time.monotonic() < deadline, "no load got through"
            assert not outcome.errors, outcome.errors[:5]
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()
        assert not outcome.errors, outcome.errors[:5]
        timings["load"] += time.monotonic() - t0
    # A last restart: everything acknowledged in any round is there, nothing half-written.
    server = ServerProcess(url, port, log_path)
    servers.append(server)
    offset = log_path.stat().st_size
    server.start()
    try:
        assert_clean_start(log_path.read_text(errors="replace")[offset:])
        last = [i for i, o in outcome.acked_order.items() if o.startswith(f"r{KILLS}-")]
        verify_round(server.url, auth, outcome, last, rng)
        stored = check_database(url, keys.project.id, outcome)
        listed = verify_listing(server.url, auth, outcome)
    finally:
        code = server.stop()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert code in (0, -signal.SIGTERM), server.log_text()[-3000:]
    assert "Application shutdown complete" in server.log_text()[offset:]
    assert listed == stored >= len(outcome.acked) > KILLS * MIN_ACKS_BEFORE_KILL
    print(
        f"\n{url.split(':')[0]}: {KILLS} kills in {time.monotonic() - started_at:.1f}s,"
        f" {len(outcome.sent)} requests sent, {len(outcome.acked)} acknowledged,"
        f" {stored} stored ({stored - len(outcome.acked)} stored without an answer);"
        f" seconds in starts {timings['start']:.1f}, loads {timings['load']:.1f},"
        f" checks {timings['verify']:.1f}"
    )


def test_crash_consistency_sqlite(tmp_path: Path) -> None:
    crash_rounds(f"sqlite:///{tmp_path / 'crash.db'}", tmp_path)


@pytest.fixture
def crash_pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(
            "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
            "postgresql://postgres@127.0.0.1:5432/test)"
        )
    import psycopg

    parts = urlsplit(pg_dsn(PG_URL))
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {CRASH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {CRASH_DB}")
    try:
        yield urlunsplit(parts._replace(path=f"/{CRASH_DB}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {CRASH_DB} WITH (FORCE)")


@pytest.mark.postgres
def test_crash_consistency_postgres(crash_pg_url: str, tmp_path: Path) -> None:
    crash_rounds(crash_pg_url, tmp_path)
