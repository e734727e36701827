"""Every answer is read from one snapshot: under concurrent writes, no answer mixes two states.

Writers loop on one object while readers loop on every way to read it, for ``LOAD_SECONDS``;
each answer (the writers' included) is checked against an invariant that every write keeps,
so that an answer assembled from two committed states shows:

- an invoice: writers PUT ``{"amount": A, "details": [{"amount": H}, {"amount": H}]}`` with
  ``A = 2H`` and ``H`` new on every write, so the amount, both lines and the waiting
  transaction's amount move together in one write. Every answer must have amount ==
  sum(detail amount * quantity), two equal lines, and with ``expand=transaction`` the
  transaction's amount and currency equal to the invoice's. Read by id (plain, with
  ``expand=transaction``, with ``expand=project``) and in the list (plain and with
  ``expand=transaction``; the invoice is on the project's first page).
- a customer: writers alternate ``{"currency": "EUR", "balance": "1.00"}`` (100 minor units)
  and ``{"currency": "JPY", "balance": "150"}`` (150): a read must show one of these two pairs,
  never EUR "1.50" or JPY "100". Today a customer is one row, so this holds by construction;
  it guards the day a balance is derived from other rows (a ledger) or cached.

Both backends x 1 and 2 worker processes. ``SETTLE_SNAPSHOT_SECONDS`` sets the load time (for
invoices; customers get half);
``pytest -s`` shows one summary line per configuration (reads checked, torn, per endpoint).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from tests.concurrency import CONFIGS, Client, Reply, Target, serve

pytestmark = pytest.mark.slow

LOAD_SECONDS = float(os.environ.get("SETTLE_SNAPSHOT_SECONDS", "3"))
WRITERS = 2
READERS = 6
SHOWN = 3  # torn answers quoted per endpoint in a failure message

# label -> (path, query): every way to read the invoice; "{id}" is its id.
INVOICE_READS: dict[str, tuple[str, dict[str, str]]] = {
    "GET /invoices/{id}?expand=transaction": ("/invoices/{id}", {"expand": "transaction"}),
    "GET /invoices/{id}?expand=project": ("/invoices/{id}", {"expand": "project"}),
    "GET /invoices/{id}": ("/invoices/{id}", {}),
    "GET /invoices?expand=transaction": ("/invoices", {"expand": "transaction"}),
    "GET /invoices": ("/invoices", {}),
}
CUSTOMER_READS: dict[str, tuple[str, dict[str, str]]] = {
    "GET /customers/{id}": ("/customers/{id}", {}),
    "GET /customers": ("/customers", {}),
}
CUSTOMER_STATES = [("EUR", "1.00"), ("JPY", "150")]  # (currency, balance) as written


@dataclass
class Tally:
    checked: Counter[str] = field(default_factory=Counter)
    torn: dict[str, list[str]] = field(default_factory=dict)
    workers: Counter[int | None] = field(default_factory=Counter)  # answers per worker

    def record(self, label: str, reply: Reply, problem: str | None) -> None:
        self.checked[label] += 1
        self.workers[reply.worker] += 1
        if problem is not None:
            self.torn.setdefault(label, []).append(problem)

    def line(self) -> str:
        per = ", ".join(
            f"{label} {len(self.torn.get(label, []))}/{n}" for label, n in self.checked.items()
        )
        torn = sum(len(v) for v in self.torn.values())
        spread = (
            f"; answers per worker {'/'.join(str(n) for n in self.workers.values())}"
            if len(self.workers) > 1
            else ""
        )
        return f"{sum(self.checked.values())} answers checked, {torn} torn ({per}){spread}"

    def report(self, target: Target, what: str) -> str:
        lines = [f"{target.label}: {what}: {self.line()}"]
        for label, problems in self.torn.items():
            lines.append(f"  {label}: {len(problems)} of {self.checked[label]} torn, e.g.")
            lines += [f"    {p}" for p in problems[:SHOWN]]
        return "\n".join(lines)


@pytest.fixture(scope="module", params=CONFIGS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    backend, workers = request.param
    with serve(backend, workers, tmp_path_factory.mktemp(f"snap-{backend}-{workers}w")) as t:
        yield t
    for what, tally in t.stats.items():
        print(f"\n[snapshots {t.label}] {what}: {tally.line()}", end="")
    print()


def _cents(h: int) -> str:
    return f"{Decimal(h) / 100:.2f}"


def invoice_problem(iv: dict[str, Any]) -> str | None:
    """What in one rendered invoice no single write could have made, or None."""
    amount = Decimal(iv["amount"])
    lines = [(Decimal(d["amount"]), int(d["quantity"])) for d in iv["details"]]
    total = sum((a * q for a, q in lines), Decimal(0))
    seen = f"amount {iv['amount']} {iv['currency']}, details {[d['amount'] for d in iv['details']]}"
    tr = iv.get("transaction", {})
    if "transaction" in iv:
        seen += ", transaction " + ("null" if tr is None else f"{tr['amount']} {tr['currency']}")
    if total != amount:
        return f"lines sum to {total}, not the amount: {seen}"
    if len(lines) != 2 or lines[0] != lines[1]:
        return f"lines of different writes: {seen}"
    if tr is None:
        return f"no transaction: {seen}"
    if tr and (Decimal(tr["amount"]) != amount or tr["currency"] != iv["currency"]):
        return f"the transaction's amount is not the invoice's: {seen}"
    return None


def customer_problem(cu: dict[str, Any]) -> str | None:
    written = {(currency, Decimal(balance)) for currency, balance in CUSTOMER_STATES}
    if cu["balance"] is not None and (cu["currency"], Decimal(cu["balance"])) in written:
        return None
    return f"balance {cu['balance']!r} with currency {cu['currency']}: never written together"


def check_answer(
    reply: Reply, key: str, object_id: str, problem: Callable[[dict[str, Any]], str | None]
) -> str | None:
    if reply.status_code != 200:
        return f"status {reply.status_code}: {reply.text[:300]}"
    body = reply.json()
    if key in body:  # one object
        found: list[dict[str, Any]] = [body[key]]
    else:  # a list: every object of the page, and ours must be there
        found = body[key + "s"]
        if object_id not in {o["id"] for o in found}:
            return f"{object_id} is missing from the list ({len(found)} listed)"
    return next((why for why in map(problem, found) if why is not None), None)


async def under_load(
    client: Client,
    object_id: str,
    key: str,
    write_path: str,
    bodies: Iterator[dict[str, Any]],
    reads: dict[str, tuple[str, dict[str, str]]],
    problem: Callable[[dict[str, Any]], str | None],
    seconds: float,
) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    write_label = f"PUT {write_path.replace(object_id, '{id}')} (its answer)"

    async def writer() -> None:
        while time.monotonic() < deadline:
            reply = await client.request("PUT", write_path, json=next(bodies))
            tally.record(write_label, reply, check_answer(reply, key, "", problem))

    async def reader(offset: int) -> None:
        labels = itertools.islice(itertools.cycle(reads), offset, None)
        while time.monotonic() < deadline:
            label = next(labels)
            path, query = reads[label]
            reply = await client.get(path.format(id=object_id), params=query)
            tally.record(label, reply, check_answer(reply, key, object_id, problem))

    await asyncio.gather(*(writer() for _ in range(WRITERS)), *(reader(i) for i in range(READERS)))
    return tally


async def invoice_load(target: Target) -> Tally:
    async with target.client(WRITERS + READERS) as client:
        made = await client.post(
            "/invoices",
            json={
                "name": "snapshot",
                "amount": "2.00",
                "currency": "EUR",
                "details": [
                    {"name": "a", "amount": "1.00", "quantity": 1},
                    {"name": "b", "amount": "1.00", "quantity": 1},
                ],
            },
        )
        assert made.status_code == 200, made.text
        invoice_id = made.json()["invoice"]["id"]
        bodies = (
            {
                "amount": _cents(2 * h),
                "details": [
                    {"name": "a", "amount": _cents(h), "quantity": 1},
                    {"name": "b", "amount": _cents(h), "quantity": 1},
                ],
            }
            for h in itertools.count(101)
        )
        return await under_load(
            client,
            invoice_id,
            "invoice",
            f"/invoices/{invoice_id}",
            bodies,
            INVOICE_READS,
            invoice_problem,
            LOAD_SECONDS,
        )


async def customer_load(target: Target) -> Tally:
    async with target.client(WRITERS + READERS) as client:
        made = await client.post(
            "/customers", json={"email": "snap@example.com", "currency": "EUR", "balance": "1.00"}
        )
        assert made.status_code == 200, made.text
        customer_id = made.json()["customer"]["id"]
        bodies = (
            {"currency": currency, "balance": balance}
            for currency, balance in itertools.cycle(CUSTOMER_STATES)
        )
        return await under_load(
            client,
            customer_id,
            "customer",
            f"/customers/{customer_id}",
            bodies,
            CUSTOMER_READS,
            customer_problem,
            LOAD_SECONDS / 2,
        )


def test_invoice_answers_are_never_torn(target: Target) -> None:
    tally = asyncio.run(invoice_load(target))
    target.stats["invoice"] = tally
    assert tally.checked, "no answer was checked"
    if tally.torn:
        pytest.fail(tally.report(target, "invoice answers mixing two writes"), pytrace=False)


def test_customer_answers_are_never_torn(target: Target) -> None:
    tally = asyncio.run(customer_load(target))
    target.stats["customer"] = tally
    assert tally.checked, "no answer was checked"
    if tally.torn:
        pytest.fail(tally.report(target, "customer answers mixing two writes"), pytrace=False)
