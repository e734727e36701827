"""Exactly once across crashes: clients that retry with an Idempotency-Key, as a payment client
should, end up with one invoice per order however often the server is SIGKILLed.

Per backend, ``ROUNDS`` rounds of: start the server, let clients create invoices (each order
with its own key), SIGKILL the process group while requests are in flight. A request whose
answer was lost is "in doubt": it may or may not have committed. After each restart the
clients first retry every order in doubt, with the same key and the same body, before new
orders. At the end every order sent has exactly one invoice, equal to the request that created
it; an order answered twice (once before the kill, once on retry) got the same invoice both
times; no half-written invoice exists (lines, transaction, and the recorded answer all
committed with it, or none of them).
"""

from __future__ import annotations

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
    Outcome,
    assert_clean_start,
    assert_matches_request,
    check_database,
    crash_pg_url,  # noqa: F401 (a fixture)
    invoice_body,
)
from tests.serverproc import ServerProcess

ROUNDS = int(os.environ.get("SETTLE_CRASH_RETRY_ROUNDS", "8"))
CLIENTS = 6
MIN_ACKS_BEFORE_KILL = 6

pytestmark = pytest.mark.slow


@dataclass
class Retries(Outcome):
    in_doubt: dict[str, dict[str, Any]] = field(default_factory=dict)  # order_id -> body
    answered: dict[str, list[str]] = field(default_factory=dict)  # order_id -> invoice ids
    retried: int = 0


def _send(client: httpx.Client, order_id: str, body: dict[str, Any], out: Retries) -> bool:
    """True if answered; False if the server died with the request in flight."""
    try:
        response = client.post("/invoices", json=body, headers={"Idempotency-Key": order_id})
    except httpx.TransportError:
        with out.lock:
            out.in_doubt[order_id] = body
        return False
    with out.lock:
        out.in_doubt.pop(order_id, None)
        if response.status_code != 200:
            out.errors.append(f"{order_id}: {response.status_code} {response.text[:300]}")
            return True
        invoice = response.json()["invoice"]
        out.acked[invoice["id"]] = invoice
        out.acked_order[invoice["id"]] = order_id
        out.answered.setdefault(order_id, []).append(invoice["id"])
    return True


def load(
    url: str,
    auth: tuple[str, str],
    prefix: str,
    out: Retries,
    retry: list[tuple[str, dict[str, Any]]],
    again: list[tuple[str, dict[str, Any]]],
    stop: threading.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, auth=auth, timeout=10) as client:
        for order_id, body in retry:  # the orders whose answer the last crash swallowed
            if stop.is_set() or not _send(client, order_id, body, out):
                return
            with out.lock:
                out.retried += 1
        for order_id, body in again:  # answered before a crash: must replay the same invoice
            if stop.is_set() or not _send(client, order_id, body, out):
                return
        n = 0
        while not stop.is_set():
            n += 1
            order_id = f"{prefix}-{n}"
            body = invoice_body(rng, order_id)
            with out.lock:
                out.sent[order_id] = body
            if not _send(client, order_id, body, out):
                time.sleep(0.01)


def retry_rounds(url: str, tmp_path: Path) -> None:
    upgrade(url)
    keys = create_project(url, "retries")
    auth = (keys.processout_username, keys.processout_password)
    port, log_path = free_port(), tmp_path / "server.log"
    out = Retries()
    rng = random.Random(20261121)
    servers: list[ServerProcess] = []
    try:
        for round_no in range(1, ROUNDS + 1):
            workers = 2 if round_no % 3 == 0 else 1
            server = ServerProcess(url, port, log_path, extra_args=("--workers", str(workers)))
            servers.append(server)
            offset = log_path.stat().st_size if log_path.exists() else 0
            server.start()
            if round_no > 1:
                assert_clean_start(log_path.read_text(errors="replace")[offset:])
            doubtful = sorted(out.in_doubt.items())
            answered = sorted(out.answered)
            again = [(o, out.sent[o]) for o in rng.sample(answered, min(CLIENTS, len(answered)))]
            stop = threading.Event()
            acked_before = len(out.acked)
            threads = [
                threading.Thread(
                    target=load,
                    args=(
                        server.url,
                        auth,
                        f"r{round_no}-c{c}",
                        out,
                        doubtful[c::CLIENTS],
                        again[c::CLIENTS],
                        stop,
                        rng.random(),
                    ),
                    daemon=True,
                )
                for c in range(CLIENTS)
            ]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 20
            while len(out.acked) - acked_before < MIN_ACKS_BEFORE_KILL + len(doubtful):
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
            for order_id, body in sorted(out.in_doubt.items()):
                assert _send(client, order_id, body, out)
                out.retried += 1
            assert not out.in_doubt and not out.errors, out.errors[:5]
            stored = check_database(url, keys.project.id, out)  # also: no order stored twice
            assert stored == len(out.sent), "an order without its invoice"
            for order_id, ids in out.answered.items():
                assert len(set(ids)) == 1, f"{order_id} answered with different invoices {ids}"
                found = client.get(f"/invoices/{ids[0]}").json()["invoice"]
                assert_matches_request(out.sent[order_id], found)
                assert found == out.acked[ids[0]]
        recorded = query(
            url, "SELECT count(*) FROM idempotency_keys WHERE project_id = $1", keys.project.id
        )[0][0]
        assert recorded == stored, "every invoice has its recorded answer, and no more"
    finally:
        for s in servers:
            s.kill()
    twice = sum(len(ids) > 1 for ids in out.answered.values())
    print(
        f"\n{url.split(':')[0]}: {ROUNDS} kills, {len(out.sent)} orders, {out.retried} retries"
        f" after a lost answer, {twice} orders answered twice (same invoice), {stored} stored"
    )
    assert out.retried > 0, "no kill caught a request in flight: the test proved nothing"
    assert twice > 0, "no answered order was sent again"


def test_retries_are_exactly_once_sqlite(tmp_path: Path) -> None:
    retry_rounds(f"sqlite:///{tmp_path / 'retries.db'}", tmp_path)


@pytest.mark.postgres
def test_retries_are_exactly_once_postgres(crash_pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    retry_rounds(crash_pg_url, tmp_path)
