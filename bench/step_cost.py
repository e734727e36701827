"""What a payment step costs against a create-invoice, in process (no HTTP): the CPU of this
process and, on PostgreSQL, of its database connections (``harness.pg_backend_cpu``), per
request, for ``POST /invoices`` (bench/invoice_body.json), an authorization of a stored card and
a capture of it, each as the API runs it (``billing.payments.transact`` around steps 1 and 3, the
sandbox gateway between, the transaction rendered for the answer), ``--concurrency`` at a time.

Why: issue 9 asks each step for >= 80 % of create's req/s. On two cores a request's rate is
bounded by the CPU it costs everyone (the server, PostgreSQL, the load generator), so a step may
cost at most 1.25 times a create. This prints each step's CPU beside create's in the same run,
and the part of it no HTTP stack or Python tuning can remove: PostgreSQL's own work for the
step's mandated writes (the pending operation before the gateway call, the gateway's durable
record, the outcome after it, with their events).

    .venv/bin/python bench/step_cost.py                       # SQLite in a temporary directory
    .venv/bin/python bench/step_cost.py --pg settle_bench_me  # a PostgreSQL database (recreated)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg

import harness as h
from settle.api.processout import convert, render
from settle.api.processout import schemas as wire
from settle.billing import payments
from settle.billing import service as billing
from settle.db.database import Database, Tx, connect
from settle.db.migrate import upgrade
from settle.payments import cards
from settle.payments.gateway import CardData
from settle.payments.sandbox import SandboxGateway
from settle.projects import service as projects
from settle.projects.models import Scope

KINDS = ("create", "authorize", "capture")


async def _step(
    db: Database, gateway: SandboxGateway, begin: Callable[[Tx, bool], Awaitable[payments.Attempt]]
) -> None:
    """One payment operation as ``Call.pay`` runs it, without an Idempotency-Key."""
    step: payments.Attempt | payments.Done = await payments.transact(db, begin)
    while isinstance(step, payments.Attempt):
        result = await payments.execute(gateway, step)

        async def last(
            tx: Tx, optimistic: bool, step: payments.Attempt = step, result: Any = result
        ) -> payments.Attempt | payments.Done:
            done = await payments.finish(tx, step, result, optimistic=optimistic)
            if isinstance(done, payments.Done):
                msgspec.json.encode(render.transaction(done.transaction, done.log))
            return done

        step = await payments.transact(db, last)


async def _measure(
    work: Callable[[str], Awaitable[None]],
    targets: list[str],
    concurrency: int,
    admin: psycopg.Connection[Any] | None,
    dbname: str,
) -> tuple[float, float]:
    """(this process's CPU, PostgreSQL's) in microseconds per target."""
    pending = iter(targets)

    async def lane() -> None:
        for target in pending:
            await work(target)

    pg0 = h.pg_backend_cpu(admin, dbname) if admin is not None else 0.0
    t0 = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    cpu = time.process_time() - t0
    pg = (h.pg_backend_cpu(admin, dbname) - pg0) if admin is not None else 0.0
    return cpu / len(targets) * 1e6, pg / len(targets) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", help="PostgreSQL bench database name (settle_bench...)")
    parser.add_argument("--requests", type=int, default=2000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    admin: psycopg.Connection[Any] | None = None
    dbname = ""
    if args.pg:
        assert args.pg.startswith("settle_bench")
        base = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {args.pg} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {args.pg}")
        url = f"{base}/{args.pg}"
        admin = psycopg.connect(url, autocommit=True)
        dbname = args.pg
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/steps.db"
    upgrade(url)
    db = await connect(url)
    gateway = SandboxGateway(db, "http://127.0.0.1")
    async with db.write() as tx:
        keys = await projects.create_project(tx, "step cost", sandbox=True)
    scope = Scope(project_id=keys.project.id, sandbox=True)
    body = msgspec.json.decode(h.INVOICE_BODY.read_bytes(), type=wire.InvoiceCreate)
    data = convert.invoice_input(body)
    card_body = msgspec.json.decode((h.BENCH_DIR / "card_body.json").read_bytes())
    card_data = CardData(
        number=card_body["number"],
        exp_month=card_body["exp_month"],
        exp_year=card_body["exp_year"],
        cvc=card_body["cvc2"],
        name=card_body["name"],
    )
    vaulted = await gateway.vault(card_data)
    card = cards.new_card(
        scope,
        card_data,
        gateway_name=gateway.name,
        gateway_reference=vaulted.reference,
        metadata={},
    )
    async with db.write() as tx:
        await cards.insert_card(tx, card)
    made: list[str] = []

    async def create(_: str) -> None:
        async with db.write() as tx:
            invoice = await billing.create_invoice(tx, scope, data)
        made.append(invoice.id)

    async def authorize(invoice_id: str) -> None:
        async def begin(tx: Tx, optimistic: bool) -> payments.Attempt:
            return await payments.begin_authorize(
                tx, scope, invoice_id, card.id, gateway_name=gateway.name, optimistic=optimistic
            )

        await _step(db, gateway, begin)

    async def capture(invoice_id: str) -> None:
        async def begin(tx: Tx, optimistic: bool) -> payments.Attempt:
            return await payments.begin_capture(tx, scope, invoice_id, None, optimistic=optimistic)

        await _step(db, gateway, begin)

    # Warm up (statement caches, plans), then statistics as autovacuum would have them.
    warm = [""] * 200
    await _measure(create, warm, args.concurrency, admin, dbname)
    await _measure(authorize, made[:200], args.concurrency, admin, dbname)
    await _measure(capture, made[:200], args.concurrency, admin, dbname)
    if admin is not None:
        admin.execute("ANALYZE")
    figures: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
    for r in range(args.rounds):
        made.clear()
        figures["create"].append(
            await _measure(create, [""] * args.requests, args.concurrency, admin, dbname)
        )
        invoices = list(made)
        figures["authorize"].append(
            await _measure(authorize, invoices, args.concurrency, admin, dbname)
        )
        figures["capture"].append(
            await _measure(capture, invoices, args.concurrency, admin, dbname)
        )
        line = "  ".join(
            f"{k} {c:6.0f} + {p:6.0f} us" for k, (c, p) in ((k, figures[k][-1]) for k in KINDS)
        )
        print(f"round {r + 1}: {line}")
    await db.close()
    if admin is not None:
        admin.close()
    backend = "postgres" if args.pg else "sqlite"
    print(f"\n{backend}: medians of {args.rounds} x {args.requests}, {args.concurrency} at a time")
    create_us = sum(statistics.median(f[i] for f in figures["create"]) for i in (0, 1))
    print("| request | this process us | PostgreSQL us | both us | / create |")
    print("|---|---|---|---|---|")
    for kind in KINDS:
        cpu = statistics.median(f[0] for f in figures[kind])
        pg = statistics.median(f[1] for f in figures[kind])
        print(
            f"| {kind} | {cpu:,.0f} | {pg:,.0f} | {cpu + pg:,.0f} | {(cpu + pg) / create_us:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
