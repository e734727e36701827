"""Concurrent settling of one Reepay invoice can never succeed twice: two card settles, a
settle and a cancel, a manual settle and a cancel, and two creates-with-settle of one handle,
sent at once (each on its own connection; with 2 workers, through different workers), on
``settle serve`` child processes of both backends (``tests.concurrency``).

Each round makes a fresh invoice; the two answers and the final invoice must be those of one
serial order: exactly one of two settles succeeds (the other is refused as settled, 79, or as
in progress, 80) and the card is captured once; a settle and a cancel never both succeed, and
the invoice ends as the winner left it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.concurrency import CONFIGS, Client, Reply, Target, serve
from tests.dbcheck import query

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("SETTLE_RACE_ROUNDS", "12"))
LINES = [{"ordertext": "race", "amount": 1000, "vat": 0.25}]
TRANSFER = {"method": "cash", "payment_date": "2026-01-02"}
# Refusals that leave the invoice as the other request made it.
SETTLE_REFUSED = {79, 80, 82}
CANCEL_REFUSED = {30, 80}


class Racing:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.key = target.keys.reepay_private_key
        self.count = 0
        with httpx.Client(base_url=f"{target.url}/v1", auth=(self.key, ""), timeout=30) as client:
            assert client.post("/customer", json={"handle": "racer"}).status_code == 200
            card = client.post(
                "/customer/racer/payment_method",
                json={"number": "4242424242424242", "exp_month": 12, "exp_year": 2040},
            )
            assert card.status_code == 200, card.text
            self.method = card.json()["id"]
            # A customer of its own for retried charges: a declined card, then a good one.
            assert client.post("/customer", json={"handle": "retrier"}).status_code == 200
            methods = []
            for number in ("4000000000000002", "4242424242424242"):
                made = client.post(
                    "/customer/retrier/payment_method",
                    json={"number": number, "exp_month": 12, "exp_year": 2040},
                )
                assert made.status_code == 200, made.text
                methods.append(made.json()["id"])
            self.declined, self.good = methods

    def handle(self) -> str:
        self.count += 1
        return f"race-{self.count}"

    def client(self) -> Client:
        return self.target.client(connections=4, auth=(self.key, ""))


@pytest.fixture(scope="module", params=CONFIGS)
def racing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Racing]:
    backend, workers = request.param
    tmp: Path = tmp_path_factory.mktemp(f"reepay-races-{backend}-{workers}w")
    with serve(backend, workers, tmp) as target:
        yield Racing(target)


def _code(reply: Reply) -> int | None:
    if reply.status_code == 200:
        return None
    assert reply.status_code == 400, (reply.status_code, reply.text)
    code: int = reply.json()["code"]
    return code


async def _invoice(c: Client, racing: Racing) -> dict[str, Any]:
    made = await c.post(
        "/v1/customer/racer/invoice", {"handle": racing.handle(), "order_lines": LINES}
    )
    assert made.status_code == 200, made.text
    body: dict[str, Any] = made.json()
    return body


def _captures(racing: Racing, invoice_id: str) -> int:
    rows = query(
        racing.target.database_url,
        "SELECT COUNT(*) FROM transaction_operations o JOIN invoices i"
        " ON i.transaction_id = o.transaction_id WHERE i.id = $1 AND o.type = 'capture'"
        " AND o.status = 'succeeded'",
        invoice_id,
    )
    return int(rows[0][0])


async def _race(
    racing: Racing, first: tuple[str, Any], second: tuple[str, Any]
) -> list[tuple[int | None, int | None, dict[str, Any]]]:
    out = []
    async with racing.client() as c:
        for i in range(ROUNDS):
            invoice = await _invoice(c, racing)
            requests: list[tuple[str, str, Any, dict[str, str]]] = [
                ("POST", f"/v1/invoice/{invoice['id']}/{path}", body, {})
                for path, body in (first, second)
            ]
            a, b = await c.together(requests, rotate=i)
            final = (await c.get(f"/v1/invoice/{invoice['id']}")).json()
            out.append((_code(a), _code(b), final))
    return out


def test_two_card_settles_settle_once(racing: Racing) -> None:
    settle = ("settle", {"payment_method": racing.method})
    for a, b, final in asyncio.run(_race(racing, settle, settle)):
        assert [a, b].count(None) == 1, (a, b)
        assert {a, b} - {None} <= SETTLE_REFUSED, (a, b)
        assert final["state"] == "settled"
        assert final["settled_amount"] == 1000
        assert _captures(racing, final["id"]) == 1


def test_a_settle_and_a_cancel_never_both_succeed(racing: Racing) -> None:
    settle = ("settle", {"payment_method": "auto"})
    for a, b, final in asyncio.run(_race(racing, settle, ("cancel", None))):
        assert None in (a, b) and (a, b) != (None, None), (a, b)
        if a is None:  # settled: the cancel was refused
            assert b in CANCEL_REFUSED, b
            assert (final["state"], _captures(racing, final["id"])) == ("settled", 1)
        else:  # cancelled: the settle was refused, and no money moved
            assert a in SETTLE_REFUSED, a
            assert (final["state"], final["settled_amount"]) == ("cancelled", 0)
            assert _captures(racing, final["id"]) == 0


def test_a_manual_settle_and_a_cancel_never_both_succeed(racing: Racing) -> None:
    manual = ("manual_settle", TRANSFER)
    for a, b, final in asyncio.run(_race(racing, ("cancel", None), manual)):
        if a is None and b is None:  # cancelled, then settled by hand ("any unsettled")
            assert final["state"] == "settled"
        else:
            assert None in (a, b), (a, b)
            assert final["state"] == ("cancelled" if a is None else "settled")
        assert final["settled_amount"] in (0, 1000)
        assert _captures(racing, final["id"]) == (1 if final["state"] == "settled" else 0)


def test_two_creates_with_settle_of_one_handle_pay_once(racing: Racing) -> None:
    async def run() -> list[tuple[int | None, int | None, str]]:
        out = []
        async with racing.client() as c:
            for i in range(ROUNDS):
                handle = racing.handle()
                body = {
                    "handle": handle,
                    "order_lines": LINES,
                    "settle": {"payment_method": racing.method},
                }
                request: tuple[str, str, Any, dict[str, str]] = (
                    "POST",
                    "/v1/customer/racer/invoice",
                    body,
                    {},
                )
                a, b = await c.together([request, request], rotate=i)
                final = (await c.get(f"/v1/invoice/{handle}")).json()
                out.append((_code(a), _code(b), final["id"]))
        return out

    began = time.monotonic()
    for a, b, invoice_id in asyncio.run(run()):
        assert sorted([a, b], key=str) == sorted([None, 11], key=str), (a, b)
        assert _captures(racing, invoice_id) == 1
    assert time.monotonic() - began < 120


def test_two_charges_of_one_handle_pay_once(racing: Racing) -> None:
    """The charge's customer named by the vendor's ``customer`` object: one charge wins, the
    other is refused as a taken handle (11); the card is captured once."""

    async def run() -> list[tuple[int | None, int | None, dict[str, Any]]]:
        out = []
        async with racing.client() as c:
            for i in range(ROUNDS):
                handle = racing.handle()
                body = {
                    "handle": handle,
                    "source": "auto" if i % 2 else racing.method,
                    "customer": {"handle": "racer", "email": "race@example.com"},
                    "amount": 1000,
                    "settle": True,
                }
                request: tuple[str, str, Any, dict[str, str]] = ("POST", "/v1/charge", body, {})
                a, b = await c.together([request, request], rotate=i)
                final = (await c.get(f"/v1/charge/{handle}")).json()
                out.append((_code(a), _code(b), final))
        return out

    for a, b, final in asyncio.run(run()):
        # The loser is refused: the handle taken (11) when both created it, else as a retry
        # of the winner's charge is (in flight 80, settled 79).
        assert [a, b].count(None) == 1 and {a, b} - {None} <= {11, 79, 80}, (a, b)
        assert (final["state"], final["customer"]) == ("settled", "racer")
        invoice = (
            query(
                racing.target.database_url,
                "SELECT id FROM invoices WHERE handle = $1",
                final["handle"],
            )
        )[0][0]
        assert _captures(racing, invoice) == 1


def test_two_retries_of_a_declined_charge_pay_once(racing: Racing) -> None:
    """A charge declined, then retried twice at once with the same handle and a good card:
    one retry settles it, the other is refused as in flight (80) or settled (79); the card is
    captured once and the invoice keeps the declined attempt beside the settled one."""

    async def run() -> list[tuple[int | None, int | None, dict[str, Any]]]:
        out = []
        async with racing.client() as c:
            for i in range(ROUNDS):
                body = {
                    "handle": racing.handle(),
                    "source": racing.declined,
                    "customer_handle": "retrier",
                    "amount": 1000,
                    "settle": True,
                }
                first = await c.post("/v1/charge", body)
                assert first.status_code == 200 and first.json()["state"] == "failed", first.text
                retry: tuple[str, str, Any, dict[str, str]] = (
                    "POST",
                    "/v1/charge",
                    {**body, "source": racing.good},
                    {},
                )
                a, b = await c.together([retry, retry], rotate=i)
                final = (await c.get(f"/v1/invoice/{body['handle']}")).json()
                out.append((_code(a), _code(b), final))
        return out

    for a, b, final in asyncio.run(run()):
        assert [a, b].count(None) == 1 and {a, b} - {None} <= {79, 80}, (a, b)
        assert (final["state"], final["settled_amount"]) == ("settled", 1000)
        kinds = [(t["type"], t["state"]) for t in final["transactions"]]
        assert kinds == [
            ("settle", "failed"),
            ("authorization", "authorized"),
            ("settle", "settled"),
        ]
        assert _captures(racing, final["id"]) == 1
