"""What one create-invoice costs PostgreSQL, in process: the ProcessOut create
(bench/invoice_body.json, one detail line) and the Reepay create-customer-invoice
(bench/reepay_invoice_body.json, three order lines, a fresh handle each, the customer held as the
Reepay route holds it), each in a write transaction of its own, ``--concurrency`` at a time, the
two interleaved round by round.

Per kind: the CPU of the server's PostgreSQL backends (``harness.pg_backend_cpu``: the
server's own connections, from ``/proc/<pid>/stat``) and of this process, per create. Medians over
the rounds. Another tree's code is measured with ``PYTHONPATH=<tree>/src`` (its own migrations
make the database).

    .venv/bin/python bench/create_cost.py --pg settle_bench_me    # the database is recreated
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import msgspec
import psycopg

import harness as h
from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.api.reepay import convert as reepay_convert
from settle.api.reepay import schemas as reepay_wire
from settle.billing import service as billing
from settle.customers import service as customers
from settle.customers.models import CustomerFields
from settle.db.database import connect
from settle.db.migrate import upgrade
from settle.invoices.models import InvoiceInput
from settle.projects import service as projects
from settle.projects.models import Scope

REEPAY_BODY = h.BENCH_DIR / "reepay_invoice_body.json"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", required=True, help="PostgreSQL bench database (settle_bench...)")
    parser.add_argument("--creates", type=int, default=4000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    assert args.pg.startswith("settle_bench")
    base = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {args.pg} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {args.pg}")
    url = f"{base}/{args.pg}"
    upgrade(url)
    admin = psycopg.connect(url, autocommit=True)
    db = await connect(url)
    async with db.write() as tx:
        keys = await projects.create_project(tx, "create cost", sandbox=True)
    scope = Scope(project_id=keys.project.id, sandbox=True)
    async with db.write() as tx:
        customer = await customers.create_customer(tx, scope, CustomerFields(handle="bench"))
    body = msgspec.json.decode(h.INVOICE_BODY.read_bytes(), type=wire.InvoiceCreate)
    processout = convert.invoice_input(body)
    template = REEPAY_BODY.read_text()
    made = [0]

    def reepay_input() -> InvoiceInput:
        made[0] += 1
        text = template.replace("{handle}", f"cost-{os.getpid()}-{made[0]}")
        parts = reepay_convert.invoice_parts(
            msgspec.json.decode(text.encode(), type=reepay_wire.CreateCustomerInvoice)
        )
        return InvoiceInput(
            amount=parts.amount,
            currency=parts.currency or "DKK",
            handle=parts.handle,
            customer_id=customer.id,
            metadata=parts.metadata,
            attributes=parts.attributes,
            lines=parts.lines,
        )

    async def create_processout(_: int) -> None:
        async with db.write() as tx:
            await billing.create_invoice(tx, scope, processout)

    async def create_reepay(i: int) -> None:
        data = inputs[i]
        async with db.write() as tx:
            # As the Reepay route does: the customer held, checked in the writes' statement.
            await customers.hold_customer(
                tx, scope, customer.id, missing=LookupError(), handle="bench"
            )
            await billing.create_invoice(tx, scope, data, customer_held=True)

    async def run(create: Callable[[int], Awaitable[None]], n: int) -> tuple[float, float]:
        async def worker(k: int) -> None:
            for i in range(k, n, args.concurrency):
                await create(i)

        pg0, t0 = h.pg_backend_cpu(admin, args.pg), time.process_time()
        await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
        pg1, t1 = h.pg_backend_cpu(admin, args.pg), time.process_time()
        return (pg1 - pg0) / n * 1e6, (t1 - t0) / n * 1e6

    kinds = {"processout": create_processout, "reepay": create_reepay}
    inputs = [reepay_input() for _ in range(500)]
    await run(create_processout, 500)  # warm up (caches, plans)
    await run(create_reepay, 500)
    admin.execute("ANALYZE")
    figures: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        inputs = [reepay_input() for _ in range(args.creates)]  # made outside the measurement
        for name in kinds if r % 2 == 0 else reversed(kinds):
            figures[name].append(await run(kinds[name], args.creates))
            pg, cpu = figures[name][-1]
            print(f"round {r + 1} {name:10} pg {pg:6.1f} us  client {cpu:6.1f} us", flush=True)
    await db.close()
    admin.close()
    print(f"\nmedians of {args.rounds} x {args.creates}, {args.concurrency} at a time")
    for name, runs in figures.items():
        pg = statistics.median(f[0] for f in runs)
        cpu = statistics.median(f[1] for f in runs)
        print(f"{name:10} PostgreSQL {pg:6.1f} us  client {cpu:6.1f} us per create")


if __name__ == "__main__":
    asyncio.run(main())
