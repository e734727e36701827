"""Reepay card settles across a crash: SIGKILL ``settle serve`` between the gateway's answer to
a settle's authorization and the transaction that writes it, restart, and the invoice ends
where the request would have left it had it lived: ``failed`` for a declined card (the
Reepay-only move, ``settle.billing.states.recovered``), ``settled`` for one that pays.

Per backend and card, one round: start the server with the sandbox's answer delay
(``SETTLE_SANDBOX_ANSWER_DELAY_MS``: the gateway has recorded its outcome and not answered
yet); make a reference of each of the three ways a Reepay request settles by card (POST
/v1/invoice/{id}/settle, POST /v1/customer/{handle}/invoice with ``settle``, POST /v1/charge
with ``settle: true``), answered normally; then send the same three at once, each with an
Idempotency-Key, and SIGKILL the process group once the gateway has answered all three
authorizations and Settle has written none. Restart without the delay and with a 1 s
staleness (``SETTLE_PAYMENT_RECOVERY_SECONDS``), wait until recovery leaves nothing pending,
and check that each crashed invoice equals its reference (state, amounts, its transactions'
types, states and errors, the events it fired), and that a keyed retry answers it as it is.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from settle.db.migrate import upgrade
from tests.conftest import create_project, free_port
from tests.dbcheck import query
from tests.faults.test_crash import assert_clean_start
from tests.faults.test_payment_crash import database_url  # noqa: F401 (a fixture)
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

ANSWER_DELAY_MS = 1500  # the window: long enough to kill in, short of any staleness
RECOVERY_SECONDS = 1  # after the restart
DECLINED = "4000000000000002"
GOOD = "4242424242424242"
LINES = [{"ordertext": "shoes", "amount": 1000, "quantity": 1, "vat": 0.25}]
KINDS = ("settle", "create", "charge")


@dataclass
class Settle:
    """One Reepay request that settles an invoice by card, and the invoice's handle."""

    kind: str
    handle: str
    path: str
    body: dict[str, Any]
    answer: httpx.Response | None = None  # None: the kill took it

    @property
    def key(self) -> str:
        return f"key-{self.handle}"


def make(client: httpx.Client, kind: str, handle: str, customer: str, pm: str) -> Settle:
    """The request of ``kind`` for a new invoice ``handle`` (made now for a settle)."""
    if kind == "settle":
        made = client.post(
            f"/customer/{customer}/invoice", json={"handle": handle, "order_lines": LINES}
        )
        assert made.status_code == 200, made.text
        return Settle(kind, handle, f"/invoice/{made.json()['id']}/settle", {"payment_method": pm})
    body: dict[str, Any]
    if kind == "create":
        body = {"handle": handle, "order_lines": LINES, "settle": {"payment_method": pm}}
        return Settle(kind, handle, f"/customer/{customer}/invoice", body)
    body = {
        "handle": handle,
        "source": pm,
        "customer_handle": customer,
        "order_lines": LINES,
        "settle": True,
    }
    return Settle(kind, handle, "/charge", body)


def send(base: str, auth: tuple[str, str], settle: Settle, go: threading.Barrier) -> None:
    with httpx.Client(base_url=base, auth=auth, timeout=60) as client:
        go.wait()
        try:
            settle.answer = client.post(
                settle.path, json=settle.body, headers={"Idempotency-Key": settle.key}
            )
        except httpx.TransportError:
            settle.answer = None  # the server died with it in flight


def answered_unwritten(url: str, project_id: str) -> int:
    """Authorizations the sandbox has answered that Settle still has pending."""
    rows = query(
        url,
        "SELECT count(*) FROM transaction_operations o WHERE o.project_id = $1"
        " AND o.type = 'authorization' AND o.status = 'pending' AND EXISTS"
        " (SELECT 1 FROM sandbox_operations s WHERE s.operation_key = o.operation_key)",
        project_id,
    )
    return int(rows[0][0])


def pending(url: str, project_id: str) -> int:
    rows = query(
        url,
        "SELECT count(*) FROM transaction_operations WHERE project_id = $1 AND status = 'pending'",
        project_id,
    )
    return int(rows[0][0])


def events_of(url: str, invoice_id: str) -> Counter[str]:
    rows = query(url, "SELECT type FROM events WHERE invoice_id = $1", invoice_id)
    return Counter(str(t) for (t,) in rows)


def outcome(client: httpx.Client, url: str, handle: str) -> dict[str, Any]:
    """What a settle left of an invoice, without what differs between any two invoices."""
    invoice = client.get(f"/invoice/{handle}").json()
    return {
        "state": invoice["state"],
        "amounts": [invoice[n] for n in ("amount", "settled_amount", "authorized_amount")],
        "transactions": [
            (t["type"], t["state"], t.get("card_transaction", {}).get("error"))
            for t in invoice["transactions"]
        ],
        "events": events_of(url, invoice["id"]),
    }


def crash_round(url: str, tmp_path: Path, number: str, expected: str) -> None:
    upgrade(url)
    keys = create_project(url, f"reepay settle crash {number}")
    auth = (keys.reepay_private_key, "")
    project_id = keys.project.id
    log_path = tmp_path / f"server-{number}.log"
    loaded = ServerProcess(
        url, free_port(), log_path, env={"SETTLE_SANDBOX_ANSWER_DELAY_MS": str(ANSWER_DELAY_MS)}
    )
    restarted = ServerProcess(
        url,
        free_port(),
        log_path,
        env={"SETTLE_PAYMENT_RECOVERY_SECONDS": str(RECOVERY_SECONDS)},
    )
    try:
        loaded.start()
        base = f"{loaded.url}/v1"
        with httpx.Client(base_url=base, auth=auth, timeout=60) as client:
            assert client.post("/customer", json={"handle": "cu"}).status_code == 200
            card = client.post(
                "/customer/cu/payment_method",
                json={"number": number, "exp_month": 12, "exp_year": 2040},
            )
            assert card.status_code == 200, card.text
            pm = card.json()["id"]
            references = {}
            for kind in KINDS:
                ref = make(client, kind, f"ref-{kind}", "cu", pm)
                answered = client.post(ref.path, json=ref.body)
                assert answered.status_code == 200, answered.text
                assert answered.json()["state"] == expected, answered.text
                references[kind] = outcome(client, url, ref.handle)
            crashed = [make(client, kind, f"crash-{kind}", "cu", pm) for kind in KINDS]
        go = threading.Barrier(len(crashed))
        threads = [
            threading.Thread(target=send, args=(base, auth, s, go), daemon=True) for s in crashed
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while answered_unwritten(url, project_id) < len(crashed):
            assert time.monotonic() < deadline, "the settles never reached the window"
            time.sleep(0.005)
        loaded.kill()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()
        assert [s.answer for s in crashed] == [None] * len(crashed)
        # Nothing finished them: each invoice (made by its request, or before it) is waiting.
        assert pending(url, project_id) == len(crashed)

        offset = log_path.stat().st_size
        restarted.start()
        deadline = time.monotonic() + 30
        while pending(url, project_id):
            assert time.monotonic() < deadline, "recovery left operations pending"
            time.sleep(0.05)
        with httpx.Client(base_url=f"{restarted.url}/v1", auth=auth, timeout=60) as client:
            for settle in crashed:
                found = outcome(client, url, settle.handle)
                assert found == references[settle.kind], (settle.kind, found)
                assert found["state"] == expected
                # A keyed retry answers the recovered settle as it is.
                retry = client.post(
                    settle.path, json=settle.body, headers={"Idempotency-Key": settle.key}
                )
                assert retry.status_code == 200, retry.text
                assert retry.json()["state"] == expected, retry.text
                assert retry.headers.get("idempotent-replayed") == "true"
                assert outcome(client, url, settle.handle) == found
        assert_clean_start(log_path.read_text(errors="replace")[offset:])
    finally:
        loaded.kill()
        restarted.kill()


def test_a_declined_reepay_settle_cut_short_fails_its_invoice(
    database_url: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    crash_round(database_url, tmp_path, DECLINED, "failed")


def test_a_reepay_settle_cut_short_that_pays_settles_its_invoice(
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    crash_round(database_url, tmp_path, GOOD, "settled")
