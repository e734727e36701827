"""What the outbox costs one create-invoice, in process: ``billing.create_invoice`` of the bench
body (bench/invoice_body.json) in write transactions of 16, with the event row and without it
(``record`` replaced by a no-op), the variants interleaved round by round.

Per variant: this process's CPU per create (the server's share of a create, minus HTTP), and
on PostgreSQL the CPU of this process's connections (``harness.pg_backend_cpu``; the server
must be on this machine) and WAL bytes per create. Medians over the rounds.

    .venv/bin/python bench/outbox_cost.py                      # SQLite in a temporary directory
    .venv/bin/python bench/outbox_cost.py --pg settle_bench_me # a PostgreSQL database (recreated)

``OUTBOX_BATCH=1`` in the environment: one create per transaction, as over HTTP (default 16).
``--fan-out N``: every N creates, the delivery worker's fan-out of the events not fanned out yet
(one transaction, as the worker's loop makes it, the invoice's own dead ``webhook_url`` a
parked delivery each), counted in the cost per create. ``--no-url``: the bench body less its
``webhook_url`` (with ``--fan-out``, a fan-out that finds nobody to tell).

Variants: ``none`` (no event row), ``event`` (as the tree records it), ``empty`` (the event row
with ``data`` = ``{}``: the snapshot's share). ``--setup-sql`` runs once after the migrations;
``--sql-variant NAME="DO|UNDO"`` adds a variant whose SQL is applied before its runs and undone
after, e.g. ``nopk="ALTER TABLE events DROP CONSTRAINT pk_events|ALTER TABLE events ADD
CONSTRAINT pk_events PRIMARY KEY (seq)"`` (name it in ``--variants``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg

import harness as h
from settle.api.faces import webhook_faces
from settle.api.processout import convert
from settle.api.processout import schemas as wire
from settle.billing import service as billing
from settle.clock import now_us
from settle.db.database import Database, connect
from settle.db.migrate import upgrade
from settle.events import deliveries, outbox
from settle.projects import service as projects
from settle.projects.models import Scope

BATCH = int(os.environ.get("OUTBOX_BATCH", "16"))
# The bench invoice's own webhook_url, which does not resolve here (a dead receiver).
DEAD = "https://mycompany.com/webhook"


async def _no_record(*args: Any, **kwargs: Any) -> str:
    return ""


class _EmptyEncoder:
    def encode(self, obj: Any) -> bytes:
        return b"{}"


def _variants() -> dict[str, Callable[[], Callable[[], None]]]:
    """name -> apply(), which returns its undo."""

    def none() -> Callable[[], None]:
        setattr(billing, "record", _no_record)  # noqa: B010 (a name the module imported)
        return lambda: setattr(billing, "record", outbox.record)

    def event() -> Callable[[], None]:
        return lambda: None

    def empty() -> Callable[[], None]:
        saved = outbox._ENCODER
        outbox._ENCODER = _EmptyEncoder()  # type: ignore[misc, assignment]
        return lambda: setattr(outbox, "_ENCODER", saved)

    return {"none": none, "event": event, "empty": empty}


def _sql_variant(admin: Any, do: str, undo: str) -> Callable[[], Callable[[], None]]:
    def apply() -> Callable[[], None]:
        admin.execute(do)
        return lambda: admin.execute(undo)

    return apply


def _backend_cpu(admin: psycopg.Connection[Any] | None, dbname: str) -> tuple[float, int]:
    """(CPU seconds of the server's connections to the database, WAL position)."""
    if admin is None:
        return 0.0, 0
    lsn = admin.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return h.pg_backend_cpu(admin, dbname), int(lsn[0]) if lsn else 0


async def _run(
    db: Database,
    scope: Scope,
    data: Any,
    creates: int,
    admin: Any,
    dbname: str,
    fan_out: int = 0,
) -> tuple[float, float, float]:
    pg0, wal0 = _backend_cpu(admin, dbname)
    t0 = time.process_time()
    faces = webhook_faces()
    for n in range(creates // BATCH):
        async with db.write() as tx:
            for _ in range(BATCH):
                await billing.create_invoice(tx, scope, data)
        if fan_out and (n + 1) * BATCH % fan_out < BATCH:
            async with db.write() as tx:
                at = now_us()
                await deliveries.fan_out(
                    tx, faces, now_us=at, window_us=3 * 86_400 * 10**6, resting=[DEAD]
                )
    cpu = time.process_time() - t0
    pg1, wal1 = _backend_cpu(admin, dbname)
    n = creates // BATCH * BATCH
    return cpu / n * 1e6, (pg1 - pg0) / n * 1e6, (wal1 - wal0) / n


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", help="PostgreSQL bench database name (settle_bench...)")
    parser.add_argument("--creates", type=int, default=3200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="none,event,empty")
    parser.add_argument("--setup-sql", default="")
    parser.add_argument(
        "--sql-variant",
        action="append",
        default=[],
        metavar="NAME=DO|UNDO",
        help="a variant that runs SQL DO before its runs and UNDO after (PostgreSQL)",
    )
    parser.add_argument("--fan-out", type=int, default=0, metavar="N", help="fan out every N")
    parser.add_argument("--no-url", action="store_true", help="the bench body less its webhook_url")
    parser.add_argument("--prefill", type=int, default=0, help="creates before measuring")
    args = parser.parse_args()
    admin: psycopg.Connection[Any] | None = None
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
        url = f"sqlite:///{tempfile.mkdtemp()}/outbox.db"
        dbname = ""
    upgrade(url)
    if args.setup_sql:
        if admin is not None:
            admin.execute(args.setup_sql)
        else:
            import sqlite3

            with sqlite3.connect(url.removeprefix("sqlite:///")) as c:
                c.executescript(args.setup_sql)
    db = await connect(url)
    async with db.write() as tx:
        keys = await projects.create_project(tx, "outbox cost", sandbox=True)
    scope = Scope(project_id=keys.project.id, sandbox=True)
    body = msgspec.json.decode(h.INVOICE_BODY.read_bytes(), type=wire.InvoiceCreate)
    if args.no_url:  # an invoice whose events have nobody to tell: the fan-out finds no URL
        body = msgspec.structs.replace(body, webhook_url=None)
    data = convert.invoice_input(body)
    variants = _variants()
    for spec in args.sql_variant:
        name, sql = spec.split("=", 1)
        do, undo = sql.split("|", 1)
        variants[name] = _sql_variant(admin, do, undo)
    chosen = args.variants.split(",")
    await _run(db, scope, data, max(args.prefill, BATCH * 20), admin, dbname)  # warm up
    if admin is not None:
        admin.execute("ANALYZE")
    figures: dict[str, list[tuple[float, float, float]]] = {v: [] for v in chosen}
    for r in range(args.rounds):
        for name in chosen if r % 2 == 0 else reversed(chosen):
            undo = variants[name]()
            try:
                figures[name].append(
                    await _run(db, scope, data, args.creates, admin, dbname, args.fan_out)
                )
            finally:
                undo()
            cpu, pg, wal = figures[name][-1]
            print(f"round {r + 1} {name:6} {cpu:7.1f} us  pg {pg:7.1f} us  wal {wal:7.0f} B")
    async with db.read() as tx:
        size = await tx.fetchval("SELECT avg(length(data)) FROM events WHERE data <> '{}'")
    await db.close()
    backend = "sqlite" if admin is None else "postgres"
    print(f"\n{backend}: medians of {args.rounds} x {args.creates}")
    base_cpu = statistics.median(f[0] for f in figures[chosen[0]])
    for name, runs in figures.items():
        cpu = statistics.median(f[0] for f in runs)
        pg = statistics.median(f[1] for f in runs)
        wal = statistics.median(f[2] for f in runs)
        print(
            f"{name:6} client {cpu:6.1f} us ({cpu - base_cpu:+5.1f})  pg {pg:6.1f} us"
            f"  wal {wal:6.0f} B/create"
        )
    print(f"average event data: {float(size or 0):.0f} bytes")
    if admin is not None:
        admin.close()


if __name__ == "__main__":
    asyncio.run(main())
